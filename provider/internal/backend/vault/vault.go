// Package vault is the HashiCorp Vault backend: it reads KV v1 and v2
// secrets with the semantics of External Secrets Operator v0.20.4's Vault
// provider (path building, gjson properties, value rendering, not-found
// handling), so that esosync writes the same Kubernetes Secrets ESO would.
//
// The code is our own, but every behaviour that decides what lands in a
// Secret mirrors ESO's pkg/provider/vault; the comments point at the ESO
// function each part reproduces.
package vault

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/external-secrets/external-secrets/pkg/esutils"
	vaultapi "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	authkubernetes "github.com/hashicorp/vault/api/auth/kubernetes"
	authuserpass "github.com/hashicorp/vault/api/auth/userpass"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// KV engine versions, spelled as ESO's SecretStore spells them.
const (
	// VersionV1 is the KV version 1 engine (no versioning, no data/ prefix).
	VersionV1 = "v1"
	// VersionV2 is the KV version 2 engine, ESO's default.
	VersionV2 = "v2"
)

// Default auth mount paths; they are the defaults of ESO's CRD, so a store
// that leaves them out logs in where ESO would.
const (
	// DefaultAppRolePath is where AppRole logs in when AppRole.Path is empty.
	DefaultAppRolePath = "approle"
	// DefaultKubernetesPath is where Kubernetes logs in when MountPath is empty.
	DefaultKubernetesPath = "kubernetes"
	// DefaultUserPassPath is where UserPass logs in when UserPass.Path is empty.
	DefaultUserPassPath = "userpass"
)

// Config is the part of an ESO Vault provider spec the backend needs, with
// every credential already resolved by the caller.
type Config struct {
	// Server is Vault's address, e.g. http://127.0.0.1:8200.
	Server string
	// Path is the KV mount path, e.g. "secret". Empty behaves like ESO's
	// unset path: the mount is taken from the first segment of each key.
	Path string
	// Version is "v1" or "v2"; empty means "v2" as in ESO.
	Version string
	// Namespace is the Vault Enterprise namespace, sent as X-Vault-Namespace.
	Namespace string
	// CABundle is PEM (or base64 of PEM, as ESO accepts) to trust for Server.
	CABundle []byte
	// Auth holds exactly one way to obtain a token.
	Auth Auth
	// Session, when set, shares reads with every other client of the same
	// server and identity in that session (one pulumi operation), coalesces
	// concurrent reads of one path, and counts requests. Nil, every call
	// reads Vault.
	Session *backend.Session
}

// Auth holds the credentials of exactly one auth method.
type Auth struct {
	// Token is a static Vault token; it is used as is and never revoked.
	Token string
	// AppRole logs in with a role ID and secret ID.
	AppRole *AppRole
	// Kubernetes logs in with a service-account JWT.
	Kubernetes *Kubernetes
	// UserPass logs in with a username and password.
	UserPass *UserPass
}

// AppRole is the approle auth method's login.
type AppRole struct {
	// Path is the auth mount path; empty means "approle".
	Path string
	// RoleID identifies the role; surrounding whitespace is trimmed as ESO does.
	RoleID string
	// SecretID is the role's secret ID.
	SecretID string
}

// Kubernetes is the kubernetes auth method's login.
type Kubernetes struct {
	// MountPath is the auth mount path; empty means "kubernetes".
	MountPath string
	// Role is the Vault role bound to the service account.
	Role string
	// JWT is the service account token; the caller obtains it (for example
	// through the TokenRequest API) because backends do not talk to Kubernetes.
	JWT string
}

// UserPass is the userpass auth method's login.
type UserPass struct {
	// Path is the auth mount path; empty means "userpass".
	Path string
	// Username is trimmed of surrounding whitespace as ESO does.
	Username string
	// Password is the user's password.
	Password string
}

// Client reads one Vault store. It is safe for concurrent use.
type Client struct {
	api *vaultapi.Client
	// path is nil when the store has no mount path: buildPath distinguishes
	// "unset" from any string, exactly as ESO's *string does.
	path    *string
	version string
	// scope partitions the read cache by server and identity; empty
	// when the client does not cache.
	scope   string
	session *backend.Session
	reads   *readCache

	mu sync.Mutex
	// loggedIn records that the token came from a login, so Close revokes
	// it; a static token belongs to someone else and must survive us.
	loggedIn bool
}

var _ backend.Client = (*Client)(nil)

// New checks cfg, builds the Vault API client and, for every auth method
// except a static token, logs in. A static token is not checked here (ESO
// does not either); Validate does that.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	version := cfg.Version
	if version == "" {
		version = VersionV2
	}

	apiCfg := vaultapi.DefaultConfig()
	if apiCfg.Error != nil {
		return nil, fmt.Errorf("vault: configuring the API client: %w", apiCfg.Error)
	}
	apiCfg.Address = cfg.Server
	// VAULT_AGENT_ADDR would silently win over the store's server.
	apiCfg.AgentAddress = ""
	if len(cfg.CABundle) > 0 {
		// ESO's own decoder, so a bundle ESO accepts (PEM or base64 of PEM) works here too.
		ca, err := esutils.FetchCACertFromSource(ctx, esutils.CreateCertOpts{CABundle: cfg.CABundle})
		if err != nil {
			return nil, fmt.Errorf("vault: caBundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("vault: caBundle: no certificate could be parsed")
		}
		transport, ok := apiCfg.HttpClient.Transport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("vault: unexpected HTTP transport %T", apiCfg.HttpClient.Transport)
		}
		transport.TLSClientConfig.RootCAs = pool
	}
	api, err := vaultapi.NewClient(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("vault: creating the API client for %q: %w", cfg.Server, err)
	}
	// The process environment (VAULT_TOKEN, VAULT_NAMESPACE) must not leak
	// into a store: only its own spec decides who we are and where.
	api.ClearToken()
	// Named, so Vault's audit log (and a proxy) tells esosync's reads from ESO's.
	api.AddHeader("User-Agent", backend.UserAgent)
	if cfg.Namespace != "" {
		api.SetNamespace(cfg.Namespace)
	} else {
		api.ClearNamespace()
	}

	c := &Client{api: api, version: version, session: cfg.Session}
	if cfg.Session != nil {
		c.scope = scopeOf(cfg)
		c.reads = backend.Slot(cfg.Session, "vault.reads", newReadCache)
	}
	if cfg.Path != "" {
		p := cfg.Path
		c.path = &p
	}
	if cfg.Auth.Token != "" {
		api.SetToken(cfg.Auth.Token)
		return c, nil
	}
	if err := c.login(ctx, cfg.Auth); err != nil {
		return nil, err
	}
	return c, nil
}

// check rejects configurations ESO would reject, and those that would make
// the Vault libraries fall back to ambient credentials (a missing JWT makes
// the kubernetes auth library read the pod's token file).
func (cfg Config) check() error {
	if strings.TrimSpace(cfg.Server) == "" {
		return errors.New("vault: server is required")
	}
	switch cfg.Version {
	case "", VersionV1, VersionV2:
	default:
		return fmt.Errorf("vault: version must be %q or %q, got %q", VersionV1, VersionV2, cfg.Version)
	}
	a := cfg.Auth
	set := 0
	for _, ok := range []bool{a.Token != "", a.AppRole != nil, a.Kubernetes != nil, a.UserPass != nil} {
		if ok {
			set++
		}
	}
	switch {
	case set == 0:
		return errors.New("vault: no auth method configured (need exactly one of token, appRole, kubernetes, userPass)")
	case set > 1:
		return errors.New("vault: more than one auth method configured (need exactly one of token, appRole, kubernetes, userPass)")
	}
	switch {
	case a.AppRole != nil:
		if strings.TrimSpace(a.AppRole.RoleID) == "" {
			return errors.New("vault: invalid Auth.AppRole: roleId is empty")
		}
		if a.AppRole.SecretID == "" {
			return errors.New("vault: invalid Auth.AppRole: secretId is empty")
		}
	case a.Kubernetes != nil:
		if a.Kubernetes.Role == "" {
			return errors.New("vault: invalid Auth.Kubernetes: role is empty")
		}
		if a.Kubernetes.JWT == "" {
			return errors.New("vault: invalid Auth.Kubernetes: no service account JWT")
		}
	case a.UserPass != nil:
		if strings.TrimSpace(a.UserPass.Username) == "" {
			return errors.New("vault: invalid Auth.UserPass: username is empty")
		}
		if a.UserPass.Password == "" {
			return errors.New("vault: invalid Auth.UserPass: password is empty")
		}
	}
	return nil
}

// login obtains a token the way ESO's setAuth does for the method that is set.
// Errors name the method and mount but never a credential: the Vault API's
// error text carries only the URL, status and Vault's reason.
func (c *Client) login(ctx context.Context, a Auth) error {
	var (
		method vaultapi.AuthMethod
		what   string
		err    error
	)
	switch {
	case a.AppRole != nil:
		mount := orDefault(a.AppRole.Path, DefaultAppRolePath)
		what = fmt.Sprintf("appRole auth at %q", mount)
		method, err = approle.NewAppRoleAuth(strings.TrimSpace(a.AppRole.RoleID),
			&approle.SecretID{FromString: a.AppRole.SecretID}, approle.WithMountPath(mount))
	case a.Kubernetes != nil:
		mount := orDefault(a.Kubernetes.MountPath, DefaultKubernetesPath)
		what = fmt.Sprintf("kubernetes auth at %q (role %q)", mount, a.Kubernetes.Role)
		method, err = authkubernetes.NewKubernetesAuth(a.Kubernetes.Role,
			authkubernetes.WithServiceAccountToken(a.Kubernetes.JWT), authkubernetes.WithMountPath(mount))
	case a.UserPass != nil:
		mount := orDefault(a.UserPass.Path, DefaultUserPassPath)
		what = fmt.Sprintf("userPass auth at %q", mount)
		method, err = authuserpass.NewUserpassAuth(strings.TrimSpace(a.UserPass.Username),
			&authuserpass.Password{FromString: a.UserPass.Password}, authuserpass.WithMountPath(mount))
	default:
		return errors.New("vault: no auth method configured")
	}
	if err != nil {
		return fmt.Errorf("vault: preparing %s: %w", what, err)
	}
	c.session.CountCall("vault.login")
	if _, err := c.api.Auth().Login(ctx, method); err != nil {
		return fmt.Errorf("vault: logging in with %s: %w", what, err)
	}
	c.mu.Lock()
	c.loggedIn = true
	c.mu.Unlock()
	return nil
}

// Close revokes the token if New obtained it by logging in, so that short
// syncs do not pile up live tokens until their TTL (ESO does the same when
// its client cache is off). A static token is left alone. Close is
// idempotent.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loggedIn {
		return nil
	}
	if err := c.api.Auth().Token().RevokeSelfWithContext(ctx, ""); err != nil {
		return fmt.Errorf("vault: revoking the login token: %w", err)
	}
	c.loggedIn = false
	c.api.ClearToken()
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, backend.ErrNotFound) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
