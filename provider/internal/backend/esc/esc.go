// Package esc is the Pulumi ESC backend: it reads values from one ESC
// environment with the semantics of External Secrets Operator v0.20.4's
// `pulumi` provider (pkg/provider/pulumi): a remote key is an ESC property
// path (`app.db["pass word"]`, `list[0]`), strings are returned raw and
// every other value as ESO's esutils.GetByteValue renders it, GetSecretMap
// turns an object's members into keys, and dataFrom.find is not supported.
//
// Where it differs from ESO, on purpose:
//
//   - Cost. ESO opens the environment once per key (OpenEnvironment +
//     ReadEnvironmentProperty for every remote ref). Here an environment is
//     opened once per provider process (one pulumi operation) and
//     identity: the evaluated property tree is cached and every key is
//     resolved locally with a parser for ESC's path syntax. Concurrent
//     first reads share one open.
//   - Nested values. ESO renders an object or array it got from
//     ReadEnvironmentProperty with the API's {"value":…,"trace":…} wrappers
//     still inside (its own tests pin that). Here they are plain JSON, the
//     way `esc env get` and every other backend render them.
//   - Property. ESO ignores remoteRef.property for this provider; here it
//     selects inside the value at the key like the other backends do (a
//     literal member first, then a gjson path), so the sync engine stays
//     generic. Version is ignored, as in ESO.
//   - Decoding. ESO decodes the API's responses with esc-sdk's strict
//     models, so a change to them fails every read (it did on 2026-07-21,
//     external-secrets#6682). Here the SDK sends the requests and the
//     bodies are decoded leniently (wire.go): unknown members are ignored,
//     missing ones accepted.
//   - A path the environment does not have wraps backend.ErrNotFound (ESO
//     passes on the API's 404); GetSecretMap of a non-object is an error
//     (ESO silently returns an empty map); Validate opens the environment
//     (ESO's Validate checks nothing), so bad credentials show at preview.
package esc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	escsdk "github.com/pulumi/esc-sdk/sdk/go"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// DefaultAPIURL is ESO's default apiUrl for the pulumi provider.
const DefaultAPIURL = "https://api.pulumi.com/api/esc"

// ErrFindNotSupported is ESO's error for dataFrom.find against Pulumi ESC,
// verbatim, because users search their status conditions for it.
var ErrFindNotSupported = errors.New("getting all secrets is currently not supported by Pulumi")

// Config is the part of an ESO pulumi provider spec the backend needs,
// with the access token already resolved by the caller.
type Config struct {
	// APIURL is the ESC API base URL; empty means DefaultAPIURL.
	APIURL string
	// Organization, Project and Environment name the environment.
	Organization, Project, Environment string
	// AccessToken is a Pulumi access token, sent as "Authorization: token …".
	AccessToken string
	// Session, when set, shares opened environments with every other
	// client of the same API, environment and token in that session (one
	// pulumi operation) and counts requests. Nil, the client opens the
	// environment once for itself.
	Session *backend.Session
}

// Client reads one ESC environment. It is safe for concurrent use.
type Client struct {
	cfg Config
	api *escsdk.EscClient
	// scope is the cache key: API, environment and a hash of the token.
	scope  string
	opened *openCache
}

var _ backend.Client = (*Client)(nil)

// New checks cfg and builds a client. Like ESO it does not contact the
// API; the first read (or Validate) opens the environment.
func New(_ context.Context, cfg Config) (backend.Client, error) {
	return newClient(cfg)
}

func newClient(cfg Config) (*Client, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	// The SDK appends "/environments/…" to the base; a trailing slash
	// would produce a path the API does not serve.
	cfg.APIURL = strings.TrimRight(cfg.APIURL, "/")
	if err := cfg.check(); err != nil {
		return nil, err
	}
	sdkCfg := escsdk.NewConfiguration()
	sdkCfg.UserAgent = "pulumi-esosync"
	// Set Servers by hand, as ESO does: NewCustomBackendConfiguration
	// drops the port of a custom URL.
	sdkCfg.Servers = escsdk.ServerConfigurations{{URL: cfg.APIURL}}
	// Our own client, so nothing else in the process can change its
	// transport, and a hung API cannot block a deploy for ever.
	sdkCfg.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	return &Client{cfg: cfg, api: escsdk.NewClient(sdkCfg), scope: scopeOf(cfg), opened: backend.Slot(cfg.Session, "esc.opened", newOpenCache)}, nil
}

// check rejects what ESO rejects (in its order) and what the esc-sdk
// would only reject at the first request, with a clearer message.
func (cfg Config) check() error {
	switch {
	case cfg.Organization == "":
		return errors.New("esc: organization is required")
	case cfg.Environment == "":
		return errors.New("esc: environment is required")
	case cfg.Project == "":
		return errors.New("esc: project is required")
	case cfg.AccessToken == "":
		return errors.New("esc: accessToken is required")
	}
	// The esc-sdk refuses these lengths client-side.
	if n := len(cfg.Organization); n < 3 || n > 40 {
		return fmt.Errorf("esc: organization %q must be 3 to 40 characters long", cfg.Organization)
	}
	if n := len(cfg.Project); n > 100 {
		return fmt.Errorf("esc: project %q must be at most 100 characters long", cfg.Project)
	}
	if n := len(cfg.Environment); n > 100 {
		return fmt.Errorf("esc: environment %q must be at most 100 characters long", cfg.Environment)
	}
	u, err := url.Parse(cfg.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("esc: apiUrl %q is not an http(s) URL", cfg.APIURL)
	}
	return nil
}

// envName names the environment in errors the way Pulumi does.
func (c *Client) envName() string {
	return c.cfg.Organization + "/" + c.cfg.Project + "/" + c.cfg.Environment
}

// authContext carries the token the way the SDK's NewAuthContext does,
// but on the caller's context so that cancellation reaches the request.
func (c *Client) authContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, escsdk.ContextAPIKeys, map[string]escsdk.APIKey{
		"Authorization": {Key: c.cfg.AccessToken, Prefix: "token"},
	})
}

// Validate opens the environment (through the cache, so it costs nothing
// when a read already did): a bad token, a missing environment or an
// environment that does not evaluate is reported with the API's reason.
// ESO's Validate reports Ready without any check.
func (c *Client) Validate(ctx context.Context) error {
	_, err := c.tree(ctx)
	return err
}

// GetAllSecrets returns ESO's error: the pulumi provider has no find.
func (c *Client) GetAllSecrets(context.Context, backend.Find) (map[string][]byte, error) {
	return nil, ErrFindNotSupported
}

// Close does nothing: an open session expires on its own, and there is no
// API to close it.
func (c *Client) Close(context.Context) error { return nil }
