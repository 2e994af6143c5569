package esc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/contract"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/esc"
	"github.com/esosync/pulumi-esosync/tests/escserver"
)

const (
	org   = "esosync-org"
	token = "pul-esc-backend-token-4f1c9a"
)

// server starts a local ESC API for one test. Each server has its own
// port, so its environments have their own cache scope.
func server(t *testing.T) *escserver.Server {
	t.Helper()
	s, err := escserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the ESC server: %v", err)
		}
	})
	s.AddToken(token)
	return s
}

func config(s *escserver.Server, project, env string) esc.Config {
	return esc.Config{APIURL: s.URL(), Organization: org, Project: project, Environment: env, AccessToken: token}
}

func newClient(t *testing.T, cfg esc.Config) backend.Client {
	t.Helper()
	c, err := esc.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func set(t *testing.T, s *escserver.Server, project, env, yaml string) {
	t.Helper()
	if err := s.SetEnvironment(org, project, env, yaml); err != nil {
		t.Fatal(err)
	}
}

// The contract's remote keys are top-level properties of one environment:
// Put and Delete rewrite that environment's YAML. Every contract key is a
// valid ESC path (a bare name runs up to '.' or '['), so GetSecret reads
// it back by name.
func TestContract(t *testing.T) {
	s := server(t)
	const project, env = "contract", "store"
	var mu sync.Mutex
	values := map[string]any{}
	write := func(t *testing.T) {
		// JSON is YAML: the flow mapping keeps unicode and emoji keys
		// and the number types exactly as the contract wrote them.
		doc, err := json.Marshal(map[string]any{"values": values})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetEnvironment(org, project, env, string(doc)); err != nil {
			t.Fatal(err)
		}
	}
	set(t, s, project, env, "")
	contract.Run(t, contract.Fixture{
		Put: func(t *testing.T, key string, data map[string]any) {
			mu.Lock()
			defer mu.Unlock()
			values[key] = data
			write(t)
		},
		Delete: func(t *testing.T, key string) {
			mu.Lock()
			defer mu.Unlock()
			delete(values, key)
			write(t)
		},
		NewClient: func(t *testing.T) backend.Client {
			// The contract seeds before it builds the client; a client
			// without a session has its own cache and sees every seed.
			return newClient(t, config(s, project, env))
		},
		NewBadClient: func(t *testing.T) (backend.Client, error) {
			cfg := config(s, project, env)
			cfg.AccessToken = "not-a-valid-token"
			return esc.New(context.Background(), cfg)
		},
		BadCredentialsReason: "401 Unauthorized",
		NoFind:               true,
	})
}

const baseYAML = `values:
  shared:
    dbHost: db.internal
    port: 5432
`

const appYAML = `imports:
  - base/shared
values:
  app:
    db:
      host: ${shared.dbHost}
      url: postgres://${shared.dbHost}:${shared.port}/app
      user: app-user
      "pass word":
        fn::secret: s3cr3t-with space
    tokens:
      - first-token
      - fn::secret: second-token
    flags:
      enabled: true
      ratio: 0.25
      retries: 3
      nothing: null
    "key.with.dots": dotted-value
  list: [1, "two", {three: 3}]
`

func TestESCFeatures(t *testing.T) {
	s := server(t)
	set(t, s, "base", "shared", baseYAML)
	set(t, s, "apps", "app", appYAML)
	c := newClient(t, config(s, "apps", "app"))
	ctx := context.Background()

	for _, tc := range []struct {
		key, property, want string
	}{
		{key: "app.db.host", want: "db.internal"},                     // interpolation of an import
		{key: "app.db.url", want: "postgres://db.internal:5432/app"},  // interpolation into a string
		{key: `app.db["pass word"]`, want: "s3cr3t-with space"},       // fn::secret, quoted key with a space
		{key: `app["db"]["user"]`, want: "app-user"},                  // quoted names throughout
		{key: "app.tokens[1]", want: "second-token"},                  // secret list element
		{key: "app.tokens", want: `["first-token","second-token"]`},   // arrays are JSON
		{key: "app.flags.enabled", want: "true"},                      // bool as text
		{key: "app.flags.ratio", want: "0.25"},                        // number as text
		{key: "app.flags.retries", want: "3"},                         // integer without decimals
		{key: "app.flags.nothing", want: ""},                          // null renders as nothing, as in ESO
		{key: `app["key.with.dots"]`, want: "dotted-value"},           // a dotted name needs quotes
		{key: "list[2].three", want: "3"},                             // into an object inside an array
		{key: "list", want: `[1,"two",{"three":3}]`},                  // plain JSON, no API wrappers
		{key: "shared", want: `{"dbHost":"db.internal","port":5432}`}, // the merged import
		{key: "app.flags", want: `{"enabled":true,"nothing":null,"ratio":0.25,"retries":3}`},
		{key: "app.db", property: "pass word", want: "s3cr3t-with space"}, // literal member first
		{key: "app", property: "db.user", want: "app-user"},               // then a gjson path
		{key: "app", property: "key.with.dots", want: "dotted-value"},     // literal beats gjson
		{key: "app", property: "tokens.0", want: "first-token"},           // gjson index
	} {
		got, _, err := c.GetSecret(ctx, backend.Ref{Key: tc.key, Property: tc.property})
		if err != nil {
			t.Errorf("GetSecret(%q, %q): %v", tc.key, tc.property, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("GetSecret(%q, %q) = %q, want %q", tc.key, tc.property, got, tc.want)
		}
	}

	m, _, err := c.GetSecretMap(ctx, backend.Ref{Key: "app.db"})
	if err != nil {
		t.Fatalf("GetSecretMap: %v", err)
	}
	want := map[string]string{
		"host": "db.internal", "url": "postgres://db.internal:5432/app", "user": "app-user", "pass word": "s3cr3t-with space",
	}
	if got := asStrings(m); !reflect.DeepEqual(got, want) {
		t.Errorf("GetSecretMap(app.db) = %v, want %v", got, want)
	}
	m, _, err = c.GetSecretMap(ctx, backend.Ref{Key: "app"})
	if err != nil {
		t.Fatalf("GetSecretMap(app): %v", err)
	}
	if got := string(m["flags"]); got != `{"enabled":true,"nothing":null,"ratio":0.25,"retries":3}` {
		t.Errorf("nested member flags = %s, want plain JSON", got)
	}
	for _, key := range []string{"app.tokens", "app.db.user"} {
		if _, _, err := c.GetSecretMap(ctx, backend.Ref{Key: key}); err == nil || errors.Is(err, backend.ErrNotFound) ||
			!strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "app-user") {
			t.Errorf("GetSecretMap(%q) of a non-object: got %v, want a plain error naming the key and no value", key, err)
		}
	}
}

// asStrings turns a map of byte values into strings for comparison.
func asStrings(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func TestMissingPathIsNotFound(t *testing.T) {
	s := server(t)
	set(t, s, "base", "shared", baseYAML)
	set(t, s, "apps", "app", appYAML)
	c := newClient(t, config(s, "apps", "app"))
	for _, key := range []string{"nope", "app.db.nope", "app.tokens[7]", "app.tokens[-1]", "app.db.user.deeper", "list.x", `app["db"].host[0]`} {
		_, _, err := c.GetSecret(context.Background(), backend.Ref{Key: key})
		if !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("GetSecret(%q): got %v, want ErrNotFound", key, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("%q", key)) || !strings.Contains(msg, org+"/apps/app") {
			t.Errorf("GetSecret(%q): error %q does not name the path and the environment", key, msg)
		}
		if _, _, err := c.GetSecretMap(context.Background(), backend.Ref{Key: key}); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("GetSecretMap(%q): got %v, want ErrNotFound", key, err)
		}
	}
	// A missing property is ESO's plain "cannot find" error.
	_, _, err := c.GetSecret(context.Background(), backend.Ref{Key: "app.db", Property: "nope"})
	if err == nil || errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing property: got %v", err)
	}
	// A malformed path is an error of its own, before anything is opened.
	s.ResetCounts()
	_, _, err = c.GetSecret(context.Background(), backend.Ref{Key: `app["db`})
	if err == nil || errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), `app[\"db`) {
		t.Errorf("malformed path: got %v", err)
	}
	if n := s.Opens(org, "apps", "app"); n != 0 {
		t.Errorf("a malformed path opened the environment %d times", n)
	}
}

func TestTokenRejected(t *testing.T) {
	s := server(t)
	set(t, s, "apps", "app", appYAML)
	set(t, s, "base", "shared", baseYAML)
	cfg := config(s, "apps", "app")
	cfg.AccessToken = "pul-revoked-0000-token"
	c := newClient(t, cfg)
	for name, call := range map[string]func() error{
		"Validate": func() error { return c.Validate(context.Background()) },
		"GetSecret": func() error {
			_, _, err := c.GetSecret(context.Background(), backend.Ref{Key: "app.db.user"})
			return err
		},
		"GetSecretMap": func() error {
			_, _, err := c.GetSecretMap(context.Background(), backend.Ref{Key: "app.db"})
			return err
		},
		"readValue": func() error { _, err := readValue(cfg, "app.db.user"); return err },
	} {
		err := call()
		if err == nil {
			t.Errorf("%s: a rejected token was accepted", name)
			continue
		}
		msg := err.Error()
		for _, want := range []string{"401 Unauthorized", "No credentials provided or are invalid", `"` + org + `/apps/app"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not contain %q", name, msg, want)
			}
		}
		if strings.Contains(msg, cfg.AccessToken) || strings.Contains(msg, "app-user") {
			t.Errorf("%s: error leaks the token or a value: %q", name, msg)
		}
		if errors.Is(err, backend.ErrNotFound) {
			t.Errorf("%s: a rejected token must not look like a missing secret", name)
		}
	}
	// Failures are not cached: each of the four calls asked the API.
	if n := s.Opens(org, "apps", "app"); n != 4 {
		t.Errorf("opens = %d, want 4 (errors are retried, not cached)", n)
	}
}

func TestMissingEnvironment(t *testing.T) {
	s := server(t)
	c := newClient(t, config(s, "apps", "nowhere"))
	err := c.Validate(context.Background())
	if err == nil || !strings.Contains(err.Error(), "404 Not Found") || !strings.Contains(err.Error(), org+"/apps/nowhere") {
		t.Fatalf("Validate of a missing environment: %v", err)
	}
	// The whole store is misconfigured; that must not read as "this one
	// secret is absent" (which could delete target Secrets).
	_, _, err = c.GetSecret(context.Background(), backend.Ref{Key: "x"})
	if err == nil || errors.Is(err, backend.ErrNotFound) {
		t.Errorf("GetSecret in a missing environment: got %v, want a plain error", err)
	}
}

func TestEnvironmentThatDoesNotEvaluate(t *testing.T) {
	s := server(t)
	set(t, s, "apps", "broken", "imports: [base/gone]\nvalues:\n  a: b\n")
	c := newClient(t, config(s, "apps", "broken"))
	err := c.Validate(context.Background())
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), `environment "base/gone" not found`) {
		t.Errorf("Validate: got %v, want the API's diagnostics", err)
	}
}

// The point of the cache: 200 concurrent reads of one environment cost
// one open and one read of the API, and so do Validate and credential
// sources (ReadValue) of the same environment afterwards.
func TestOneOpenPerEnvironment(t *testing.T) {
	s := server(t)
	set(t, s, "base", "shared", baseYAML)
	set(t, s, "apps", "app", appYAML)
	s.ResetCounts()
	cfg := config(s, "apps", "app")
	cfg.Session = backend.NewSession()
	c := newClient(t, cfg)

	const reads = 200
	keys := []string{"app.db.host", "app.db.user", `app.db["pass word"]`, "app.tokens[0]", "app.flags.ratio"}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, reads)
	for i := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, _, err := c.GetSecret(context.Background(), backend.Ref{Key: keys[i%len(keys)]}); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	opens := s.Opens(org, "apps", "app")
	counts := cfg.Session.CallCounts()
	line := fmt.Sprintf("esc calls: open=%d (%d reads)", opens, reads)
	t.Log(line)
	fmt.Printf("%s\n", line)
	if opens != 1 || counts["esc.open"] != 1 || counts["esc.read"] != 1 {
		t.Errorf("server opens=%d, counted esc.open=%d esc.read=%d; want exactly 1 each", opens, counts["esc.open"], counts["esc.read"])
	}
	if got := s.Counts(); got[escserver.KindOpen] != 1 || got[escserver.KindRead] != 1 || got[escserver.KindProperty] != 0 {
		t.Errorf("server counts %v: want one open, one read, no per-key property reads", got)
	}

	// Same environment, same token: Validate, another client and a
	// credential source all reuse the open.
	if err := c.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, err := readValue(cfg, `app.db["pass word"]`); err != nil || v != "s3cr3t-with space" {
		t.Errorf("ReadValue = %q, %v", v, err)
	}
	if v, err := readValue(cfg, "app.flags"); err != nil || v != `{"enabled":true,"nothing":null,"ratio":0.25,"retries":3}` {
		t.Errorf("ReadValue of an object = %q, %v", v, err)
	}
	if _, _, err := newClient(t, cfg).GetSecretMap(context.Background(), backend.Ref{Key: "app.db"}); err != nil {
		t.Fatal(err)
	}
	if n := s.Opens(org, "apps", "app"); n != 1 {
		t.Errorf("opens after Validate, ReadValue and a second client = %d, want 1", n)
	}

	// Another token is another identity: its own open. A reset (a new
	// operation) opens again and sees a changed environment.
	s.AddToken("pul-second-token")
	other := cfg
	other.AccessToken = "pul-second-token"
	if _, err := readValue(other, "app.db.user"); err != nil {
		t.Fatal(err)
	}
	set(t, s, "apps", "app", "values:\n  app:\n    db:\n      user: rotated-user\n")
	if v, _ := readValue(cfg, "app.db.user"); v != "app-user" {
		t.Errorf("within one operation the opened environment is kept: got %q", v)
	}
	cfg.Session = backend.NewSession() // a new operation
	if v, err := readValue(cfg, "app.db.user"); err != nil || v != "rotated-user" {
		t.Errorf("after a reset: %q, %v", v, err)
	}
	if n := s.Opens(org, "apps", "app"); n != 3 {
		t.Errorf("opens = %d, want 3 (first token, second token, after reset)", n)
	}
}

// A caller that gives up does not fail the others sharing its open.
func TestCancelledCallerDoesNotFailTheFlight(t *testing.T) {
	s := server(t)
	set(t, s, "base", "shared", baseYAML)
	set(t, s, "apps", "app", appYAML)
	c := newClient(t, config(s, "apps", "app"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := c.GetSecret(ctx, backend.Ref{Key: "app.db.user"}); !errors.Is(err, context.Canceled) {
		// The open may have finished first; then the read succeeds.
		if err != nil {
			t.Errorf("cancelled caller: %v", err)
		}
	}
	if v, _, err := c.GetSecret(context.Background(), backend.Ref{Key: "app.db.user"}); err != nil || string(v) != "app-user" {
		t.Errorf("next caller: %q, %v", v, err)
	}
}

func TestConfig(t *testing.T) {
	ok := esc.Config{Organization: "acme", Project: "p", Environment: "e", AccessToken: "t"}
	for _, tc := range []struct {
		name   string
		mutate func(*esc.Config)
		want   string
	}{
		{"no organization", func(c *esc.Config) { c.Organization = "" }, "organization is required"},
		{"no environment", func(c *esc.Config) { c.Environment = "" }, "environment is required"},
		{"no project", func(c *esc.Config) { c.Project = "" }, "project is required"},
		{"no token", func(c *esc.Config) { c.AccessToken = "" }, "accessToken is required"},
		{"short organization", func(c *esc.Config) { c.Organization = "ab" }, "3 to 40 characters"},
		{"bad URL", func(c *esc.Config) { c.APIURL = "api.pulumi.com" }, "not an http(s) URL"},
	} {
		cfg := ok
		tc.mutate(&cfg)
		if _, err := esc.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := esc.New(context.Background(), ok); err != nil {
		t.Errorf("default API URL: %v", err)
	}
}

// The SDK's own unwrapping (OpenAndReadEnvironment) panics on a value
// without trace.def.environment; the backend unwraps itself and must not.
func TestToleratesValuesWithoutTraceEnvironment(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/open"):
			_, _ = w.Write([]byte(`{"id":"s1"}`))
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/open/s1"):
			_, _ = w.Write([]byte(`{"properties":{"app":{"value":{"user":{"value":"u","trace":{}},` +
				`"ports":{"value":[{"value":1,"trace":{}}],"trace":{"def":{"begin":{"line":1,"column":1,"byte":0},"end":{"line":1,"column":1,"byte":0}}}}},"trace":{}}}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	cfg := esc.Config{APIURL: ts.URL + "/api/esc", Organization: org, Project: "p", Environment: "e", AccessToken: token}
	for path, want := range map[string]string{"app.user": "u", "app.ports": "[1]", "app": `{"ports":[1],"user":"u"}`} {
		if v, err := readValue(cfg, path); err != nil || v != want {
			t.Errorf("ReadValue(%q) = %q, %v; want %q", path, v, err, want)
		}
	}
}

func TestGetAllSecretsIsESOsError(t *testing.T) {
	s := server(t)
	c := newClient(t, config(s, "apps", "app"))
	got, err := c.GetAllSecrets(context.Background(), backend.Find{NameRegexp: ".*"})
	if !errors.Is(err, esc.ErrFindNotSupported) || got != nil ||
		err.Error() != "getting all secrets is currently not supported by Pulumi" {
		t.Errorf("GetAllSecrets = %v, %v", got, err)
	}
}

// readValue reads one value the way a credential source does: through a
// client of cfg's session.
func readValue(cfg esc.Config, path string) (string, error) {
	c, err := esc.New(context.Background(), cfg)
	if err != nil {
		return "", err
	}
	b, _, err := c.GetSecret(context.Background(), backend.Ref{Key: path})
	return string(b), err
}
