package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// The table of ESO's buildPath comment and TestGetSecretPath, plus the
// quirks ESO has and esosync keeps.
func TestBuildPath(t *testing.T) {
	mount := "secret/path"
	for _, tc := range []struct {
		name    string
		version string
		path    *string
		key     string
		want    string
	}{
		{"v2 simple", "v2", &mount, "foo", "secret/path/data/foo"},
		{"v1 simple", "v1", &mount, "foo", "secret/path/foo"},
		{"v2 inherits mount", "v2", &mount, "secret/path/foo", "secret/path/data/foo"},
		{"v2 inherits mount and data", "v2", &mount, "secret/path/data/foo", "secret/path/data/foo"},
		{"v1 inherits mount", "v1", &mount, "secret/path/foo", "secret/path/foo"},
		{"v2 no store path", "v2", nil, "secret/path/foo", "secret/data/path/foo"},
		{"v2 no store path with data", "v2", nil, "secret/path/data/foo", "secret/path/data/foo"},
		{"v1 no store path", "v1", nil, "secret/path/foo", "secret/path/foo"},
		// ESO's TestGetSecretPath.
		{"PathWithoutFormatV2", "v2", &mount, "secret/path/data/test", "secret/path/data/test"},
		{"PathWithoutFormatV2_NoData", "v2", &mount, "secret/path/test", "secret/path/data/test"},
		{"PathWithoutFormatV2_NoPath", "v2", nil, "secret/test/big/path", "secret/data/test/big/path"},
		{"PathWithoutFormatV2_NoPathWithData", "v2", nil, "secret/test/data/not/the/first/and/data/twice", "secret/test/data/not/the/first/and/data/twice"},
		{"PathWithoutFormatV1", "v1", &mount, "secret/path/test", "secret/path/test"},
		{"PathWithoutFormatV1_NoPath", "v1", nil, "secret/test", "secret/test"},
		{"WithoutPathButMountpointV2", "v2", &mount, "test", "secret/path/data/test"},
		{"WithoutPathButMountpointV1", "v1", &mount, "test", "secret/path/test"},
		// Quirks: a secret named like its mount loses that prefix (ESO's
		// comment calls it a bug), and v1 keeps a literal data/ segment.
		{"v2 secret named like the mount", "v2", ptr("secret"), "secret/foo", "secret/data/foo"},
		{"v1 data segment is a name", "v1", ptr("secret"), "secret/data/foo", "secret/data/foo"},
		{"v2 no store path, single segment", "v2", nil, "secret", "secret/data"},
		{"v2 prefix needs the slash", "v2", ptr("secret"), "secretive/foo", "secret/data/secretive/foo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{path: tc.path, version: tc.version}
			if got := c.buildPath(tc.key); got != tc.want {
				t.Errorf("buildPath(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestGetSecretValue(t *testing.T) {
	data := map[string]any{"a.b": "dotted", "a": map[string]any{"b": "nested"}, "n": json.Number("7")}
	if _, err := getSecretValue(nil, ""); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("nil data: want ErrNotFound, got %v", err)
	}
	_, err := getSecretValue(data, "x.y")
	if err == nil || err.Error() != `cannot find secret data for key: "x.y"` || errors.Is(err, backend.ErrNotFound) {
		t.Errorf("missing property: got %v, want ESO's plain error", err)
	}
	for prop, want := range map[string]string{"": `{"a":{"b":"nested"},"a.b":"dotted","n":7}`, "a.b": "dotted", "a": `{"b":"nested"}`, "n": "7"} {
		got, err := getSecretValue(data, prop)
		if err != nil || string(got) != want {
			t.Errorf("property %q: %q, %v; want %q", prop, got, err, want)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	const cred = "credential-never-in-errors"
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no server", Config{Auth: Auth{Token: cred}}, "server is required"},
		{"bad version", Config{Server: "http://x", Version: "v3", Auth: Auth{Token: cred}}, `got "v3"`},
		{"no auth", Config{Server: "http://x"}, "no auth method"},
		{"two auths", Config{Server: "http://x", Auth: Auth{Token: cred, UserPass: &UserPass{Username: "u", Password: cred}}}, "more than one auth method"},
		{"approle without role", Config{Server: "http://x", Auth: Auth{AppRole: &AppRole{RoleID: "  ", SecretID: cred}}}, "roleId is empty"},
		{"approle without secret", Config{Server: "http://x", Auth: Auth{AppRole: &AppRole{RoleID: cred}}}, "secretId is empty"},
		{"kubernetes without role", Config{Server: "http://x", Auth: Auth{Kubernetes: &Kubernetes{JWT: cred}}}, "role is empty"},
		// The kubernetes auth library would otherwise read the pod's own token file.
		{"kubernetes without jwt", Config{Server: "http://x", Auth: Auth{Kubernetes: &Kubernetes{Role: "r"}}}, "no service account JWT"},
		{"userpass without user", Config{Server: "http://x", Auth: Auth{UserPass: &UserPass{Password: cred}}}, "username is empty"},
		{"userpass without password", Config{Server: "http://x", Auth: Auth{UserPass: &UserPass{Username: "u"}}}, "password is empty"},
		{"bad CA", Config{Server: "https://x", CABundle: []byte("not a certificate"), Auth: Auth{Token: cred}}, "caBundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "vault: ") || strings.Contains(err.Error(), cred) {
				t.Errorf("error must start with \"vault: \" and carry no credential: %v", err)
			}
		})
	}
}

// fakeVault is a TLS server answering just what Validate asks, recording
// the headers it receives.
type fakeVault struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newFakeVault(t *testing.T) *fakeVault {
	f := &fakeVault{}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.headers = append(f.headers, r.Header.Clone())
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/auth/token/lookup-self":
			_, _ = w.Write([]byte(`{"data":{"type":"service","ttl":3600,"expire_time":"2999-01-01T00:00:00Z"}}`))
		case "/v1/sys/internal/ui/mounts/secret":
			_, _ = w.Write([]byte(`{"data":{"type":"kv","path":"secret/","options":{"version":"2"}}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":[]}`))
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeVault) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
}

func TestCABundleNamespaceAndEnvironment(t *testing.T) {
	f := newFakeVault(t)
	// The process environment must not override the store's settings.
	t.Setenv("VAULT_TOKEN", "env-token-must-not-be-used")
	t.Setenv("VAULT_NAMESPACE", "env-namespace")
	t.Setenv("VAULT_AGENT_ADDR", "http://127.0.0.1:1")

	for name, bundle := range map[string][]byte{
		"PEM": f.caPEM(),
		// ESO also accepts the PEM base64-encoded once more.
		"base64 PEM": []byte(base64.StdEncoding.EncodeToString(f.caPEM())),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := New(context.Background(), Config{Server: f.URL, Path: "secret", Namespace: "team-a", CABundle: bundle, Auth: Auth{Token: "store-token"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(context.Background()); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			f.mu.Lock()
			last := f.headers[len(f.headers)-1]
			f.mu.Unlock()
			if got := last.Get("X-Vault-Namespace"); got != "team-a" {
				t.Errorf("X-Vault-Namespace = %q, want team-a", got)
			}
			if got := last.Get("X-Vault-Token"); got != "store-token" {
				t.Errorf("the request did not carry the store's token")
			}
		})
	}
	t.Run("no namespace", func(t *testing.T) {
		c, err := New(context.Background(), Config{Server: f.URL, Path: "secret", CABundle: f.caPEM(), Auth: Auth{Token: "store-token"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		last := f.headers[len(f.headers)-1]
		f.mu.Unlock()
		if _, ok := last["X-Vault-Namespace"]; ok {
			t.Errorf("a namespace header was sent: %q", last.Get("X-Vault-Namespace"))
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		c, err := New(context.Background(), Config{Server: f.URL, Path: "secret", Auth: Auth{Token: "store-token"}})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Validate(context.Background())
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("want a certificate error without the CA bundle, got %v", err)
		}
	})
}
