package provider

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/esosync/pulumi-esosync/provider/internal/backend/esc"
)

// Defaults of the ESC connection used by `esc` credential sources.
const (
	defaultESCAPIURL       = "https://api.pulumi.com/api/esc"
	defaultESCOrganization = "organization"
)

// escSource opens ESC environments for credential sources with the
// provider's token. Reads share the ESC backend's per-process cache, so a
// deploy opens each environment once however many stores use it.
type escSource struct {
	apiURL, token, org string
}

// escSourceOf builds the ESC connection from the provider configuration.
func escSourceOf(ctx context.Context) escSource {
	cfg := infer.GetConfig[Config](ctx)
	s := escSource{apiURL: deref(cfg.EscAPIURL), token: deref(cfg.EscAccessToken), org: deref(cfg.EscOrganization)}
	if s.apiURL == "" {
		s.apiURL = os.Getenv("ESC_API_URL")
	}
	if s.apiURL == "" {
		s.apiURL = defaultESCAPIURL
	}
	if s.token == "" {
		s.token = os.Getenv("PULUMI_ACCESS_TOKEN")
	}
	if s.org == "" {
		s.org = defaultESCOrganization
	}
	return s
}

// read returns the value at c.Path in c.Environment. Errors name the
// environment and path; they never carry a value.
func (s escSource) read(ctx context.Context, field string, c *ESCCredential) (string, error) {
	org, project, env, err := splitEnvironment(c.Environment, s.org)
	if err != nil {
		return "", fmt.Errorf("%s.esc.environment: %w", field, err)
	}
	if s.token == "" {
		return "", fmt.Errorf("%s.esc: no Pulumi access token to open ESC environment %s/%s/%s: "+
			"set the provider's escAccessToken or PULUMI_ACCESS_TOKEN", field, org, project, env)
	}
	v, err := esc.ReadValue(ctx, esc.Config{APIURL: s.apiURL, Organization: org, Project: project, Environment: env, AccessToken: s.token}, c.Path)
	if err != nil {
		return "", fmt.Errorf("%s.esc: %w", field, err)
	}
	return v, nil
}

// splitEnvironment parses `org/project/env` or `project/env`.
func splitEnvironment(ref, defaultOrg string) (org, project, env string, err error) {
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
