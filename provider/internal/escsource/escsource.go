// Package escsource reads store credentials from Pulumi ESC environments:
// a credential source `{ environment, path }` resolves to one value, which
// the reconcile engine writes into the Secret esosync manages for the
// store. Reads go through the ESC backend's client with the provider's
// session, so a deploy opens each environment once however many stores and
// ExternalSecrets read it.
package escsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/esc"
)

// Defaults of the ESC connection.
const (
	// DefaultAPIURL is Pulumi Cloud's ESC API.
	DefaultAPIURL = esc.DefaultAPIURL
	// DefaultOrganization is the organization of every stack on a
	// self-managed (DIY) backend.
	DefaultOrganization = "organization"
)

// Source opens ESC environments with the provider's token.
type Source struct {
	// APIURL is the ESC API base URL; empty means DefaultAPIURL.
	APIURL string
	// Token is the Pulumi access token; empty fails every read with advice.
	Token string
	// Organization is used for `project/environment` references; empty
	// means DefaultOrganization.
	Organization string
	// Session shares opened environments for one pulumi operation.
	Session *backend.Session
}

// Ref names one value: the environment (`org/project/env` or
// `project/env`) and the path of the value in its properties.
type Ref struct {
	Environment, Path string
}

// Read returns the value at r.Path in r.Environment. field is the input's
// schema path, for errors; errors name the environment and path and never
// carry a value.
func (s Source) Read(ctx context.Context, field string, r Ref) (string, error) {
	org := s.Organization
	if org == "" {
		org = DefaultOrganization
	}
	org, project, env, err := SplitEnvironment(r.Environment, org)
	if err != nil {
		return "", fmt.Errorf("%s.esc.environment: %w", field, err)
	}
	if s.Token == "" {
		return "", fmt.Errorf("%s.esc: no Pulumi access token to open ESC environment %s/%s/%s: "+
			"set the provider's escAccessToken or PULUMI_ACCESS_TOKEN", field, org, project, env)
	}
	apiURL := s.APIURL
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	c, err := esc.New(ctx, esc.Config{APIURL: apiURL, Organization: org, Project: project, Environment: env,
		AccessToken: s.Token, Session: s.Session})
	if err != nil {
		return "", fmt.Errorf("%s.esc: %w", field, err)
	}
	v, _, err := c.GetSecret(ctx, backend.Ref{Key: r.Path})
	if err != nil {
		return "", fmt.Errorf("%s.esc: %w", field, err)
	}
	return string(v), nil
}

// SplitEnvironment parses `org/project/env` or `project/env`.
func SplitEnvironment(ref, defaultOrg string) (org, project, env string, err error) {
	parts := strings.Split(ref, "/")
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			parts = nil
			break
		}
	}
	switch len(parts) {
	case 2:
		return defaultOrg, parts[0], parts[1], nil
	case 3:
		return parts[0], parts[1], parts[2], nil
	}
	return "", "", "", fmt.Errorf("%q is not an ESC environment: write \"org/project/environment\" or \"project/environment\"", ref)
}
