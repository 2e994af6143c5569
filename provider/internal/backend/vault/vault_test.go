package vault_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/contract"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/vault"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

// The test bed (kube-apiserver for kubernetes auth, and a Vault dev server)
// starts on the first test that needs it; pure unit tests run without it.
func TestMain(m *testing.M) {
	code := harness.Main(m, harness.Full)
	// A last sweep, for a credential registered after an error was seen.
	if findings := leaks.findings(); len(findings) > 0 {
		for _, f := range findings {
			fmt.Fprintln(os.Stderr, "leak check:", f)
		}
		code = 1
	}
	os.Exit(code)
}

// leaks collects every error the backend returned in these tests and every
// secret or credential the tests used, and fails when one shows up in the other.
var leaks leakRecorder

type leakRecorder struct {
	mu      sync.Mutex
	secrets []string
	errs    []string
}

func (l *leakRecorder) secret(values ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range values {
		if len(v) >= 6 {
			l.secrets = append(l.secrets, v)
		}
	}
}

// record notes err and returns it unchanged, so call sites stay one-liners.
func (l *leakRecorder) record(err error) error {
	if err != nil {
		l.mu.Lock()
		l.errs = append(l.errs, err.Error())
		l.mu.Unlock()
	}
	return err
}

func (l *leakRecorder) findings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.errs {
		for _, s := range l.secrets {
			if strings.Contains(e, s) {
				out = append(out, fmt.Sprintf("an error contains a secret or credential (%d chars, starts %q): %s", len(s), s[:3], e))
			}
		}
	}
	return out
}

// The leak check itself must catch what it is for.
func TestLeakRecorderCatches(t *testing.T) {
	var l leakRecorder
	l.secret("s3cr3t-value")
	_ = l.record(errors.New("vault: reading \"x\": got s3cr3t-value back"))
	_ = l.record(errors.New("vault: harmless"))
	if got := l.findings(); len(got) != 1 {
		t.Errorf("findings = %q, want exactly one", got)
	}
}

func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		for _, f := range leaks.findings() {
			t.Error(f)
		}
	})
}

// recording wraps a backend client so that every error it returns, also
// those the contract provokes, goes through the leak check.
type recording struct{ c backend.Client }

func (r recording) GetSecret(ctx context.Context, ref backend.Ref) ([]byte, backend.Meta, error) {
	v, m, err := r.c.GetSecret(ctx, ref)
	return v, m, leaks.record(err)
}

func (r recording) GetSecretMap(ctx context.Context, ref backend.Ref) (map[string][]byte, backend.Meta, error) {
	v, m, err := r.c.GetSecretMap(ctx, ref)
	return v, m, leaks.record(err)
}

func (r recording) Validate(ctx context.Context) error { return leaks.record(r.c.Validate(ctx)) }
func (r recording) Close(ctx context.Context) error    { return leaks.record(r.c.Close(ctx)) }

// open calls New with the leak check on its error, and closes the client
// when the test ends.
func open(t *testing.T, cfg vault.Config) (*vault.Client, error) {
	t.Helper()
	c, err := vault.New(context.Background(), cfg)
	if leaks.record(err) != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := leaks.record(c.Close(context.Background())); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, nil
}

func mustOpen(t *testing.T, cfg vault.Config) *vault.Client {
	t.Helper()
	c, err := open(t, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// testbed is the shared Vault plus a root API client for arranging state.
type testbed struct {
	env  *harness.Env
	root *vaultapi.Client
}

var (
	setupMu sync.Mutex
	done    = map[string]bool{}
)

// once runs setup the first time name is asked for in this test binary:
// the Vault dev server is shared by every test, and mounts, policies and
// auth methods can only be enabled once.
func once(t *testing.T, name string, setup func()) {
	t.Helper()
	setupMu.Lock()
	defer setupMu.Unlock()
	if !done[name] {
		setup()
		done[name] = true
	}
}

func bed(t *testing.T) *testbed {
	t.Helper()
	env := harness.Shared(t)
	leaks.secret(env.VaultToken, env.AdminToken)
	root, err := env.VaultClient()
	if err != nil {
		t.Fatal(err)
	}
	b := &testbed{env: env, root: root}
	once(t, "kv1 mount", func() {
		if err := root.Sys().Mount("kv1", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
			t.Fatalf("enabling kv1: %v", err)
		}
	})
	once(t, "policies", func() {
		b.policy(t, "esosync-read-secret", `
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read", "list"] }
path "kv1/*" { capabilities = ["read"] }
`)
		b.policy(t, "esosync-only-kv1", `path "kv1/*" { capabilities = ["read"] }`)
	})
	return b
}

func (b *testbed) policy(t *testing.T, name, hcl string) {
	t.Helper()
	if err := b.root.Sys().PutPolicy(name, hcl); err != nil {
		t.Fatalf("writing policy %s: %v", name, err)
	}
}

func (b *testbed) write(t *testing.T, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	s, err := b.root.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return s
}

func (b *testbed) putV2(t *testing.T, key string, data map[string]any) {
	t.Helper()
	if _, err := b.root.KVv2("secret").Put(context.Background(), key, data); err != nil {
		t.Fatalf("writing secret/%s: %v", key, err)
	}
}

func (b *testbed) token(t *testing.T, policies ...string) string {
	t.Helper()
	s, err := b.root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: policies, TTL: "15m", NoParent: true})
	if err != nil {
		t.Fatalf("creating token: %v", err)
	}
	leaks.secret(s.Auth.ClientToken)
	return s.Auth.ClientToken
}

// secretStrings registers the string leaves of data with the leak check.
func secretStrings(data map[string]any) {
	for _, v := range data {
		switch t := v.(type) {
		case string:
			leaks.secret(t)
		case map[string]any:
			secretStrings(t)
		}
	}
}

func TestContractKVv2(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	token := b.token(t, "esosync-read-secret")
	contract.Run(t, contract.Fixture{
		Put: func(t *testing.T, key string, data map[string]any) {
			secretStrings(data)
			b.putV2(t, key, data)
		},
		PutWithTags: func(t *testing.T, key string, data map[string]any, tags map[string]string) {
			secretStrings(data)
			b.putV2Tagged(t, key, data, tags)
		},
		Delete: func(t *testing.T, key string) {
			if err := b.root.KVv2("secret").DeleteMetadata(context.Background(), key); err != nil {
				t.Errorf("deleting secret/%s: %v", key, err)
			}
		},
		NewClient: func(t *testing.T) backend.Client {
			return recording{mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Version: "v2", Auth: vault.Auth{Token: token}})}
		},
		NewBadClient: func(t *testing.T) (backend.Client, error) {
			leaks.secret("hvs.not-a-real-token-contract")
			c, err := open(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: "hvs.not-a-real-token-contract"}})
			if err != nil {
				return nil, err
			}
			return recording{c}, nil
		},
		BadCredentialsReason: "permission denied",
	})
}

// Without a store path ESO takes the mount from the key's first segment
// and inserts data/ after it.
func TestContractKVv2WithoutStorePath(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	token := b.token(t, "esosync-read-secret")
	contract.Run(t, contract.Fixture{
		KeyPrefix: "secret/contract-nopath/",
		Put: func(t *testing.T, key string, data map[string]any) {
			secretStrings(data)
			b.putV2(t, strings.TrimPrefix(key, "secret/"), data)
		},
		PutWithTags: func(t *testing.T, key string, data map[string]any, tags map[string]string) {
			secretStrings(data)
			b.putV2Tagged(t, strings.TrimPrefix(key, "secret/"), data, tags)
		},
		// Without a store path, ESO finds below <mount>/data/<path> and names the results so.
		FindName: func(key string) string { return strings.Replace(key, "secret/", "secret/data/", 1) },
		Delete: func(t *testing.T, key string) {
			if err := b.root.KVv2("secret").DeleteMetadata(context.Background(), strings.TrimPrefix(key, "secret/")); err != nil {
				t.Errorf("deleting %s: %v", key, err)
			}
		},
		NewClient: func(t *testing.T) backend.Client {
			return recording{mustOpen(t, vault.Config{Server: b.env.VaultAddr, Auth: vault.Auth{Token: token}})}
		},
		NewBadClient: func(t *testing.T) (backend.Client, error) {
			c, err := open(t, vault.Config{Server: b.env.VaultAddr, Auth: vault.Auth{Token: "hvs.not-a-real-token-contract"}})
			if err != nil {
				return nil, err
			}
			return recording{c}, nil
		},
		BadCredentialsReason: "permission denied",
	})
}

func TestContractKVv1(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	// Find lists the mount, so the token also needs list on kv1.
	token := b.token(t, "esosync-read-secret", b.kv1ListPolicy(t))
	contract.Run(t, contract.Fixture{
		Put: func(t *testing.T, key string, data map[string]any) {
			secretStrings(data)
			b.write(t, "kv1/"+key, data)
		},
		Delete: func(t *testing.T, key string) {
			if _, err := b.root.Logical().Delete("kv1/" + key); err != nil {
				t.Errorf("deleting kv1/%s: %v", key, err)
			}
		},
		NewClient: func(t *testing.T) backend.Client {
			return recording{mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "kv1", Version: "v1", Auth: vault.Auth{Token: token}})}
		},
		NewBadClient: func(t *testing.T) (backend.Client, error) {
			c, err := open(t, vault.Config{Server: b.env.VaultAddr, Path: "kv1", Version: "v1", Auth: vault.Auth{Token: "hvs.not-a-real-token-contract"}})
			if err != nil {
				return nil, err
			}
			return recording{c}, nil
		},
		BadCredentialsReason: "permission denied",
	})
}

// ESO re-encodes a Vault secret with encoding/json: keys sorted, compact,
// HTML characters escaped. esosync must produce the very same bytes,
// including ESO's number quirks: a literal key keeps Vault's number text,
// GetSecretMap goes through float64 and formats without exponent.
func TestESOByteExactRendering(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	data := map[string]any{
		"zeta":  "<tag>&amp;",
		"alpha": 1,
		"mid":   map[string]any{"y": 2.5, "x": []any{true, nil}},
		// Vault itself keeps numbers as float64: this comes back as 12345678901234567000.
		"big": uint64(12345678901234567890),
		// Vault writes this as 1e+21.
		"huge": 1e21,
	}
	secretStrings(data)
	b.putV2(t, "render/exact", data)
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: b.env.VaultToken}})
	ctx := context.Background()

	got, _, err := c.GetSecret(ctx, backend.Ref{Key: "render/exact"})
	if leaks.record(err) != nil {
		t.Fatal(err)
	}
	want := `{"alpha":1,"big":12345678901234567000,"huge":1e+21,"mid":{"x":[true,null],"y":2.5},"zeta":"\u003ctag\u003e\u0026amp;"}`
	if string(got) != want {
		t.Errorf("whole secret:\n got %s\nwant %s", got, want)
	}
	for prop, want := range map[string]string{
		// A literal key renders through ESO's GetByteValue: number text as Vault sent it.
		"big":  "12345678901234567000",
		"huge": "1e+21",
		// A literal key holding an object is re-encoded with encoding/json.
		"mid": `{"x":[true,null],"y":2.5}`,
		// A literal string key returns its text, unescaped.
		"zeta": "<tag>&amp;",
		// A gjson path returns the raw JSON of what it selects...
		"mid.x": `[true,null]`,
		// ...and formats a non-integer number through float64.
		"mid.y": "2.5",
	} {
		got, _, err := c.GetSecret(ctx, backend.Ref{Key: "render/exact", Property: prop})
		if leaks.record(err) != nil || string(got) != want {
			t.Errorf("property %q: %q, %v; want %q", prop, got, err, want)
		}
	}
	m, _, err := c.GetSecretMap(ctx, backend.Ref{Key: "render/exact"})
	if leaks.record(err) != nil {
		t.Fatal(err)
	}
	wantMap := map[string]string{
		"alpha": "1",
		"big":   "12345678901234567000",
		// GetSecretMap decodes into float64 and formats with 'f': no exponent.
		"huge": "1000000000000000000000",
		"mid":  `{"x":[true,null],"y":2.5}`,
		"zeta": "<tag>&amp;",
	}
	for k, v := range wantMap {
		if string(m[k]) != v {
			t.Errorf("GetSecretMap[%q] = %q, want %q", k, m[k], v)
		}
	}
	if len(m) != len(wantMap) {
		t.Errorf("GetSecretMap has %d keys, want %d", len(m), len(wantMap))
	}
}

func TestKVv2VersionsAndDeletion(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	ctx := context.Background()
	b.putV2(t, "versions/app", map[string]any{"v": "first-version-value"})
	b.putV2(t, "versions/app", map[string]any{"v": "second-version-value"})
	leaks.secret("first-version-value", "second-version-value")
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: b.env.VaultToken}})

	got, meta, err := c.GetSecret(ctx, backend.Ref{Key: "versions/app", Property: "v"})
	if leaks.record(err) != nil || string(got) != "second-version-value" || meta.Version != "2" {
		t.Errorf("latest: %q, %+v, %v", got, meta, err)
	}
	got, meta, err = c.GetSecret(ctx, backend.Ref{Key: "versions/app", Property: "v", Version: "1"})
	if leaks.record(err) != nil || string(got) != "first-version-value" || meta.Version != "1" {
		t.Errorf("version 1: %q, %+v, %v", got, meta, err)
	}
	m, meta, err := c.GetSecretMap(ctx, backend.Ref{Key: "versions/app", Version: "1"})
	if leaks.record(err) != nil || string(m["v"]) != "first-version-value" || meta.Version != "1" {
		t.Errorf("map version 1: %q, %+v, %v", m, meta, err)
	}

	// A soft-deleted version answers 404 with data null: ESO's NoSecretError.
	if err := b.root.KVv2("secret").Delete(ctx, "versions/app"); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.GetSecret(ctx, backend.Ref{Key: "versions/app"})
	if !errors.Is(leaks.record(err), backend.ErrNotFound) {
		t.Errorf("soft-deleted latest version: want ErrNotFound, got %v", err)
	}
	if got, _, err := c.GetSecret(ctx, backend.Ref{Key: "versions/app", Property: "v", Version: "1"}); leaks.record(err) != nil || string(got) != "first-version-value" {
		t.Errorf("older version after soft delete: %q, %v", got, err)
	}
	if err := b.root.KVv2("secret").Destroy(ctx, "versions/app", []int{1}); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.GetSecret(ctx, backend.Ref{Key: "versions/app", Version: "1"})
	if !errors.Is(leaks.record(err), backend.ErrNotFound) {
		t.Errorf("destroyed version: want ErrNotFound, got %v", err)
	}
	if err := b.root.KVv2("secret").DeleteMetadata(ctx, "versions/app"); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.GetSecretMap(ctx, backend.Ref{Key: "versions/app"})
	if !errors.Is(leaks.record(err), backend.ErrNotFound) {
		t.Errorf("deleted metadata: want ErrNotFound, got %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), `"secret/data/versions/app"`) {
		t.Errorf("error does not name the path read: %v", err)
	}
}

func TestKVv1HasNoVersion(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	b.write(t, "kv1/meta/app", map[string]any{"k": "kv1-meta-value"})
	leaks.secret("kv1-meta-value")
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "kv1", Version: "v1", Auth: vault.Auth{Token: b.env.VaultToken}})
	got, meta, err := c.GetSecret(context.Background(), backend.Ref{Key: "meta/app", Property: "k"})
	if leaks.record(err) != nil || string(got) != "kv1-meta-value" || meta.Version != "" {
		t.Errorf("got %q, %+v, %v", got, meta, err)
	}
}

// ESO's path rules apply to keys that already carry the mount.
func TestKeysWithMountPrefix(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	b.putV2(t, "prefixed/app", map[string]any{"k": "prefixed-value"})
	leaks.secret("prefixed-value")
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: b.env.VaultToken}})
	for _, key := range []string{"prefixed/app", "secret/prefixed/app", "secret/data/prefixed/app"} {
		got, _, err := c.GetSecret(context.Background(), backend.Ref{Key: key, Property: "k"})
		if leaks.record(err) != nil || string(got) != "prefixed-value" {
			t.Errorf("key %q: %q, %v", key, got, err)
		}
	}
}

func TestCloseDoesNotRevokeStaticToken(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	token := b.token(t, "esosync-read-secret")
	c, err := vault.New(context.Background(), vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: token}})
	if leaks.record(err) != nil {
		t.Fatal(err)
	}
	if err := leaks.record(c.Close(context.Background())); err != nil {
		t.Fatal(err)
	}
	if _, err := b.root.Auth().Token().Lookup(token); err != nil {
		t.Errorf("Close revoked a static token: %v", err)
	}
}

// waitFor retries f for a while; RBAC changes reach the API server's
// authorizer through an informer, so a fresh binding may lag a moment.
func waitFor(t *testing.T, timeout time.Duration, f func() error) error {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
}
