package escserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	escsdk "github.com/pulumi/esc-sdk/sdk/go"

	"github.com/esosync/pulumi-esosync/tests/escserver"
)

const (
	org   = "esosync-org"
	token = "pul-test-token-0123456789"
)

// start runs a server for one test and returns an esc-sdk client pointed
// at it, configured the way ESO configures it (Servers set by hand, since
// NewCustomBackendConfiguration would drop the port).
func start(t *testing.T) (*escserver.Server, *escsdk.EscClient, context.Context) {
	t.Helper()
	s, err := escserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	s.AddToken(token)
	return s, newClient(s), escsdk.NewAuthContext(token)
}

func newClient(s *escserver.Server) *escsdk.EscClient {
	cfg := escsdk.NewConfiguration()
	cfg.Servers = escsdk.ServerConfigurations{{URL: s.URL()}}
	return escsdk.NewClient(cfg)
}

const baseYAML = `values:
  common:
    user: alice
    region: eu-west-1
`

const appYAML = `imports:
  - base/common
values:
  app:
    user: ${common.user}
    greeting: hello ${common.user} in ${common.region}
    password:
      fn::secret: s3cr3t-pa55
    "pass word": spaced-value
    ports: [80, 443]
    enabled: true
    ratio: 0.5
    nested:
      deep:
        key: deep-value
    login: ${context.pulumi.user.login}
`

// seed stores the two environments through the API, as a user would.
func seed(t *testing.T, c *escsdk.EscClient, ctx context.Context) {
	t.Helper()
	for _, e := range []struct{ project, name, yaml string }{
		{"base", "common", baseYAML},
		{"apps", "app", appYAML},
	} {
		if err := c.CreateEnvironment(ctx, org, e.project, e.name); err != nil {
			t.Fatalf("CreateEnvironment %s/%s: %v", e.project, e.name, err)
		}
		diags, err := c.UpdateEnvironmentYaml(ctx, org, e.project, e.name, e.yaml)
		if err != nil {
			t.Fatalf("UpdateEnvironmentYaml %s/%s: %v %s", e.project, e.name, err, body(err))
		}
		if diags != nil && len(diags.Diagnostics) > 0 {
			t.Fatalf("UpdateEnvironmentYaml %s/%s: diagnostics %+v", e.project, e.name, diags.Diagnostics)
		}
	}
}

func body(err error) string {
	var g *escsdk.GenericOpenAPIError
	if errors.As(err, &g) {
		return string(g.Body())
	}
	return ""
}

func status(err error) string {
	var g *escsdk.GenericOpenAPIError
	if errors.As(err, &g) {
		return g.Error()
	}
	return "no API error: " + fmt.Sprint(err)
}

func TestOpenAndReadEvaluatesWithPulumisEvaluator(t *testing.T) {
	_, c, ctx := start(t)
	seed(t, c, ctx)

	env, values, err := c.OpenAndReadEnvironment(ctx, org, "apps", "app")
	if err != nil {
		t.Fatalf("OpenAndReadEnvironment: %v %s", err, body(err))
	}
	want := map[string]any{
		// The import is merged into the importing environment.
		"common": map[string]any{"user": "alice", "region": "eu-west-1"},
		"app": map[string]any{
			"user":      "alice",
			"greeting":  "hello alice in eu-west-1",
			"password":  "s3cr3t-pa55",
			"pass word": "spaced-value",
			"ports":     []any{float64(80), float64(443)},
			"enabled":   true,
			"ratio":     0.5,
			"nested":    map[string]any{"deep": map[string]any{"key": "deep-value"}},
			"login":     escserver.Login,
		},
	}
	if !reflect.DeepEqual(values, want) {
		t.Errorf("values = %#v\nwant     %#v", values, want)
	}
	props := *env.Properties
	app := props["app"].Value.(map[string]escsdk.Value)
	if pw := app["password"]; pw.Secret == nil || !*pw.Secret {
		t.Errorf("fn::secret value is not marked secret: %+v", pw)
	}
	if u := app["user"]; u.Secret != nil && *u.Secret {
		t.Errorf("plain value marked secret")
	}
	if def := app["user"].Trace.Def; def == nil || def.Environment != "apps/app" {
		t.Errorf("trace.def = %+v, want environment apps/app", def)
	}
}

func TestReadEnvironmentPropertyUsesTheDoubleSlashRoute(t *testing.T) {
	s, c, ctx := start(t)
	seed(t, c, ctx)
	open, err := c.OpenEnvironment(ctx, org, "apps", "app")
	if err != nil {
		t.Fatalf("OpenEnvironment: %v", err)
	}
	for _, tc := range []struct {
		path string
		want any
	}{
		{"app.user", "alice"},
		{"app.password", "s3cr3t-pa55"},
		{`app["pass word"]`, "spaced-value"},
		{"app.ports[1]", float64(443)},
		{`app["nested"].deep["key"]`, "deep-value"},
		{"common.region", "eu-west-1"},
	} {
		v, primitive, err := c.ReadEnvironmentProperty(ctx, org, "apps", "app", open.Id, tc.path)
		if err != nil {
			t.Errorf("%s: %v %s", tc.path, err, body(err))
			continue
		}
		if primitive != tc.want || v.Value != tc.want {
			t.Errorf("%s = %#v (value %#v), want %#v", tc.path, primitive, v.Value, tc.want)
		}
	}
	if got := s.Counts()[escserver.KindProperty]; got != 6 {
		t.Errorf("property reads counted %d, want 6", got)
	}

	_, _, err = c.ReadEnvironmentProperty(ctx, org, "apps", "app", open.Id, "app.no-such-key")
	if !strings.HasPrefix(status(err), "404") {
		t.Errorf("missing property: got %v, want 404", err)
	}

	// The raw route: no redirect for the double slash, and the
	// single-slash form the esc CLI uses answers the same.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, sep := range []string{"//", "/"} {
		u := s.URL() + "/environments/" + org + "/apps/app/open" + sep + open.Id + "?property=app.user"
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "token "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"value":"alice"`) {
			t.Errorf("GET open%s{id}?property: %d %s", sep, resp.StatusCode, b)
		}
	}
}

func TestEveryValueCarriesTraceEnvironment(t *testing.T) {
	s, c, ctx := start(t)
	seed(t, c, ctx)
	open, err := c.OpenEnvironment(ctx, org, "apps", "app")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/environments/"+org+"/apps/app/open/"+open.Id, nil)
	req.Header.Set("Authorization", "token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	n := 0
	var check func(path string, v any)
	check = func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a wrapped value: %#v", path, v)
		}
		if _, ok := m["value"]; !ok {
			t.Errorf("%s: no \"value\"", path)
		}
		def, _ := m["trace"].(map[string]any)["def"].(map[string]any)
		if e, _ := def["environment"].(string); e == "" {
			t.Errorf("%s: trace.def.environment missing: %#v", path, m["trace"])
		}
		n++
		switch inner := m["value"].(type) {
		case map[string]any:
			for k, e := range inner {
				check(path+"."+k, e)
			}
		case []any:
			for i, e := range inner {
				check(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	for k, v := range env.Properties {
		check(k, v)
	}
	if n < 15 {
		t.Errorf("checked only %d values", n)
	}
}

func TestAuthentication(t *testing.T) {
	s, c, ctx := start(t)
	seed(t, c, ctx)

	_, err := c.OpenEnvironment(escsdk.NewAuthContext("wrong-token"), org, "apps", "app")
	if !strings.HasPrefix(status(err), "401") {
		t.Fatalf("wrong token: got %v, want 401", err)
	}
	var g *escsdk.GenericOpenAPIError
	errors.As(err, &g)
	if m, ok := g.Model().(escsdk.Error); !ok || m.Code != 401 || !strings.Contains(m.Message, "Unauthorized") {
		t.Errorf("401 model = %#v, want the API's Error shape", g.Model())
	}
	if _, err := c.ListEnvironments(context.Background(), org, nil); !strings.HasPrefix(status(err), "401") {
		t.Errorf("no token: got %v, want 401", err)
	}

	s.RevokeToken(token)
	if _, err := c.OpenEnvironment(ctx, org, "apps", "app"); !strings.HasPrefix(status(err), "401") {
		t.Errorf("revoked token: got %v, want 401", err)
	}
	s.AddToken(token)
	if _, err := c.OpenEnvironment(ctx, org, "apps", "app"); err != nil {
		t.Errorf("re-added token: %v", err)
	}
	if got := s.Counts()[escserver.KindUnauthorized]; got != 3 {
		t.Errorf("unauthorized counted %d, want 3", got)
	}
	if got := s.Opens(org, "apps", "app"); got != 3 {
		t.Errorf("Opens = %d, want 3 (rejected opens count too)", got)
	}
}

func TestEnvironmentLifecycle(t *testing.T) {
	s, c, ctx := start(t)
	seed(t, c, ctx)

	def, yaml, err := c.GetEnvironment(ctx, org, "apps", "app")
	if err != nil {
		t.Fatalf("GetEnvironment: %v", err)
	}
	if yaml != appYAML {
		t.Errorf("GetEnvironment YAML = %q", yaml)
	}
	if def == nil || def.Imports == nil || len(def.Imports) != 1 || def.Imports[0] != "base/common" {
		t.Errorf("decoded definition imports = %+v", def)
	}

	// Create twice: the second is a conflict.
	if err := c.CreateEnvironment(ctx, org, "apps", "app"); !strings.HasPrefix(status(err), "409") {
		t.Errorf("duplicate create: got %v, want 409", err)
	}

	// An update is checked: a missing import is rejected with diagnostics.
	_, err = c.UpdateEnvironmentYaml(ctx, org, "apps", "app", "imports:\n  - base/nope\nvalues:\n  a: b\n")
	if !strings.HasPrefix(status(err), "400") || !strings.Contains(body(err), "base/nope") {
		t.Errorf("update with a missing import: got %v %s", err, body(err))
	}
	var g *escsdk.GenericOpenAPIError
	if errors.As(err, &g) {
		if d, ok := g.Model().(escsdk.EnvironmentDiagnostics); !ok || len(d.Diagnostics) == 0 {
			t.Errorf("400 model = %#v, want EnvironmentDiagnostics", g.Model())
		}
	}

	// A new revision; the old one stays readable and openable.
	if _, err := c.UpdateEnvironmentYaml(ctx, org, "apps", "app", "values:\n  app:\n    user: bob\n"); err != nil {
		t.Fatalf("update: %v", err)
	}
	_, values, err := c.OpenAndReadEnvironment(ctx, org, "apps", "app")
	if err != nil || !reflect.DeepEqual(values, map[string]any{"app": map[string]any{"user": "bob"}}) {
		t.Errorf("after update: %v %v", values, err)
	}
	if _, old, err := c.GetEnvironmentAtVersion(ctx, org, "apps", "app", "2"); err != nil || old != appYAML {
		t.Errorf("revision 2: %q %v", old, err)
	}
	_, values, err = c.OpenAndReadEnvironmentAtVersion(ctx, org, "apps", "app", "2")
	if err != nil || values["app"].(map[string]any)["user"] != "alice" {
		t.Errorf("open at revision 2: %v %v", values, err)
	}
	got, _, _ := s.Environment(org, "apps", "app")
	if got != "values:\n  app:\n    user: bob\n" {
		t.Errorf("Environment() = %q", got)
	}

	// List, with pagination beyond one page.
	for i := range 120 {
		if err := s.SetEnvironment(org, "bulk", fmt.Sprintf("env-%03d", i), "values:\n  i: "+fmt.Sprint(i)+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	var next *string
	for page := 0; ; page++ {
		list, err := c.ListEnvironments(ctx, org, next)
		if err != nil {
			t.Fatalf("ListEnvironments: %v", err)
		}
		for _, e := range list.Environments {
			names = append(names, e.Project+"/"+e.Name)
		}
		if list.NextToken == nil || *list.NextToken == "" {
			break
		}
		next = list.NextToken
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(names) != 122 || names[0] != "apps/app" || names[1] != "base/common" {
		t.Errorf("listed %d environments, first %q", len(names), names[:2])
	}

	if err := c.DeleteEnvironment(ctx, org, "apps", "app"); err != nil {
		t.Fatalf("DeleteEnvironment: %v", err)
	}
	if _, err := c.OpenEnvironment(ctx, org, "apps", "app"); !strings.HasPrefix(status(err), "404") ||
		!strings.Contains(body(err), "apps/app") {
		t.Errorf("open after delete: got %v %s, want 404 naming the environment", err, body(err))
	}
	if err := c.DeleteEnvironment(ctx, org, "apps", "app"); !strings.HasPrefix(status(err), "404") {
		t.Errorf("second delete: got %v, want 404", err)
	}

	counts := s.Counts()
	for kind, min := range map[string]int{
		escserver.KindCreate: 3, escserver.KindUpdate: 4, escserver.KindGet: 2, escserver.KindList: 2,
		escserver.KindOpen: 3, escserver.KindRead: 2, escserver.KindDelete: 2,
	} {
		if counts[kind] != min {
			t.Errorf("count %s = %d, want %d (all: %v)", kind, counts[kind], min, counts)
		}
	}
	s.ResetCounts()
	if len(s.Counts()) != 0 || s.Opens(org, "apps", "app") != 0 {
		t.Error("ResetCounts left counts behind")
	}
}

func TestCheckEnvironmentYaml(t *testing.T) {
	_, c, ctx := start(t)
	seed(t, c, ctx)
	check, err := c.CheckEnvironmentYaml(ctx, org, "imports: [base/common]\nvalues:\n  x: ${common.user}\n")
	if err != nil {
		t.Fatalf("check: %v %s", err, body(err))
	}
	if check.Properties == nil || (*check.Properties)["x"].Value != "alice" {
		t.Errorf("checked properties = %+v", check.Properties)
	}
	check, err = c.CheckEnvironmentYaml(ctx, org, "values:\n  x: ${nope.user}\n")
	if !strings.HasPrefix(status(err), "400") || check == nil || len(check.Diagnostics) == 0 {
		t.Errorf("check of a bad reference: %v, %+v", err, check)
	}
}

// Features the endpoint cannot provide fail at open with a diagnostic
// instead of producing a value.
func TestUnsupportedFeaturesAreDiagnosed(t *testing.T) {
	s, c, ctx := start(t)
	for name, tc := range map[string]struct{ yaml, diag string }{
		"fnopen": {"values:\n  aws:\n    fn::open::aws-login:\n      oidc:\n        roleArn: arn\n        sessionName: x\n",
			"does not support fn::open"},
		// A well-formed envelope ("escx", version 1, bytes, crc32), so the
		// evaluator reaches the decrypter.
		"ciphertext": {"values:\n  s:\n    fn::secret:\n      ciphertext: ZXNjeAAAAAFvcGFxdWUtY2lwaGVydGV4dCwD1xI=\n",
			"does not support encrypted secrets"},
		"badimport": {"imports: [base/missing]\nvalues:\n  a: b\n", `environment \"base/missing\" not found`},
	} {
		yaml := tc.yaml
		if err := s.SetEnvironment(org, "unsup", name, yaml); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err := c.OpenEnvironment(ctx, org, "unsup", name)
		if !strings.HasPrefix(status(err), "400") {
			t.Errorf("%s: open got %v %s, want 400 with diagnostics", name, err, body(err))
			continue
		}
		if !strings.Contains(body(err), tc.diag) {
			t.Errorf("%s: diagnostics %s do not say %q", name, body(err), tc.diag)
		}
		t.Logf("%s: %s", name, body(err))
	}
	if err := s.SetEnvironment(org, "unsup", "syntax", "values: [unclosed\n"); err == nil {
		t.Error("SetEnvironment accepted a YAML syntax error")
	}
	if err := s.SetEnvironment("ab", "p", "e", ""); err == nil {
		t.Error("SetEnvironment accepted a 2-character organization the SDK cannot address")
	}
}

func TestUnknownRoutes(t *testing.T) {
	s, _, _ := start(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/environments"},
		{http.MethodGet, "/environments/" + org + "/p/e/webhooks"},
		{http.MethodPut, "/environments/" + org + "/p/e"},
	} {
		req, _ := http.NewRequest(tc.method, s.URL()+tc.path, nil)
		req.Header.Set("Authorization", "token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode < 400 || e.Code != resp.StatusCode || e.Message == "" {
			t.Errorf("%s %s: %d %+v", tc.method, tc.path, resp.StatusCode, e)
		}
	}
}

// PATCH honours an ETag from GET (sent as If-Match, or as ETag like the
// esc CLI does): an update made from a stale read is a 409.
func TestUpdateWithStaleETag(t *testing.T) {
	s, c, ctx := start(t)
	seed(t, c, ctx)
	get := func() string {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/environments/"+org+"/base/common", nil)
		req.Header.Set("Authorization", "token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Pulumi-ESC-Revision") == "" || resp.Header.Get("Content-Type") != "application/x-yaml" {
			t.Errorf("GET headers: %v", resp.Header)
		}
		return resp.Header.Get("ETag")
	}
	patch := func(header, tag string) int {
		req, _ := http.NewRequest(http.MethodPatch, s.URL()+"/environments/"+org+"/base/common",
			strings.NewReader("values:\n  common:\n    user: carol\n"))
		req.Header.Set("Authorization", "token "+token)
		req.Header.Set("Content-Type", "application/x-yaml")
		req.Header.Set(header, tag)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tag := get()
	if code := patch("If-Match", tag); code != http.StatusOK {
		t.Fatalf("PATCH with the current ETag: %d", code)
	}
	if code := patch("ETag", tag); code != http.StatusConflict {
		t.Errorf("PATCH with a stale ETag: %d, want 409", code)
	}
	if code := patch("If-Match", get()); code != http.StatusOK {
		t.Errorf("PATCH with the new ETag: %d", code)
	}

	// A GET on the open route is a 405, and not an open.
	s.ResetCounts()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/environments/"+org+"/base/common/open", nil)
	req.Header.Set("Authorization", "token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || s.Opens(org, "base", "common") != 0 {
		t.Errorf("GET /open: %d, opens %d", resp.StatusCode, s.Opens(org, "base", "common"))
	}
}
