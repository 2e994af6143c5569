package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blang/semver"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/integration"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/esosync/pulumi-esosync/provider"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Options{Kubernetes: true, Vault: true, AWS: true}))
}

func newServer(t *testing.T) integration.Server {
	t.Helper()
	prov, err := provider.New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := integration.NewServer(t.Context(), provider.Name, semver.MustParse(provider.Version), integration.WithProvider(prov))
	if err != nil {
		t.Fatal(err)
	}
	return &server{Server: s}
}

// server remembers the in-process server's configuration, so a test step
// can stand for a new pulumi operation: the engine configures the provider
// anew, which starts a fresh session (backend caches, demand, counters).
type server struct {
	integration.Server
	cfg *p.ConfigureRequest
}

// Configure configures the provider and remembers how.
func (s *server) Configure(req p.ConfigureRequest) error {
	s.cfg = &req
	return s.Server.Configure(req)
}

// newOperation configures s again, as the engine does for each operation.
func newOperation(t *testing.T, s integration.Server) {
	t.Helper()
	if w, ok := s.(*server); ok && w.cfg != nil {
		if err := w.Server.Configure(*w.cfg); err != nil {
			t.Fatalf("Configure: %v", err)
		}
	}
}

func config(kv map[string]string) p.ConfigureRequest {
	m := map[string]property.Value{}
	for k, v := range kv {
		m[k] = property.New(v)
	}
	return p.ConfigureRequest{Args: property.NewMap(m)}
}

func TestSchemaTokens(t *testing.T) {
	resp, err := newServer(t).GetSchema(p.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Name      string                     `json:"name"`
		Functions map[string]json.RawMessage `json:"functions"`
		Config    struct {
			Variables map[string]struct {
				Secret bool `json:"secret"`
			} `json:"variables"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(resp.Schema), &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Name != "esosync" {
		t.Errorf("package name = %q", spec.Name)
	}
	if _, ok := spec.Functions["esosync:index:getClusterInfo"]; !ok {
		t.Errorf("functions = %v, want esosync:index:getClusterInfo", keys(spec.Functions))
	}
	for _, key := range []string{"kubeconfig", "context", "namespace"} {
		if _, ok := spec.Config.Variables[key]; !ok {
			t.Errorf("config variable %q missing", key)
		}
	}
	if !spec.Config.Variables["kubeconfig"].Secret {
		t.Error("kubeconfig (which may hold credentials) is not marked secret")
	}
}

func TestConfigureValidation(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeKubeconfig(t, kubeconfig, "https://127.0.0.1:1")
	const credential = "super-secret-token-value"

	tests := []struct {
		name          string
		config        map[string]string
		kubeconfigEnv string   // KUBECONFIG; a missing file when empty
		wantErr       []string // substrings; empty means Configure succeeds
	}{
		{name: "no settings at all: preview must not need a cluster", config: map[string]string{}},
		{name: "unreachable cluster is fine until first use", config: map[string]string{"kubeconfig": kubeconfig}},
		{name: "known context", config: map[string]string{"kubeconfig": kubeconfig, "context": "ctx-a"}},
		{
			name:    "missing file",
			config:  map[string]string{"kubeconfig": filepath.Join(dir, "nope")},
			wantErr: []string{"esosync:kubeconfig", "nope", "no such file"},
		},
		{
			name:    "unknown context",
			config:  map[string]string{"kubeconfig": kubeconfig, "context": "prod"},
			wantErr: []string{"esosync:context", `"prod"`, `"ctx-a"`, `"ctx-b"`},
		},
		{
			name:          "unknown context in the default kubeconfig",
			config:        map[string]string{"context": "prod"},
			kubeconfigEnv: kubeconfig,
			wantErr:       []string{"esosync:context", `"prod"`, `"ctx-a"`},
		},
		{name: "context with no default kubeconfig to check it against", config: map[string]string{"context": "prod"}},
		{
			name:    "inline content that is not a kubeconfig",
			config:  map[string]string{"kubeconfig": "apiVersion: v1\nusers: {token: \"" + credential + "\"\n"},
			wantErr: []string{"esosync:kubeconfig", "not a valid kubeconfig"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// KUBECONFIG and HOME point nowhere so defaults cannot leak in.
			env := tt.kubeconfigEnv
			if env == "" {
				env = filepath.Join(dir, "absent")
			}
			t.Setenv("KUBECONFIG", env)
			t.Setenv("HOME", dir)
			err := newServer(t).Configure(config(tt.config))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Configure: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Configure succeeded, want error with %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), credential) {
				t.Errorf("error echoes the kubeconfig content: %q", err)
			}
		})
	}
}

func TestGetClusterInfo(t *testing.T) {
	env := harness.Shared(t)
	content, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		config        map[string]string
		env           map[string]string
		wantNamespace string
	}{
		{name: "kubeconfig path", config: map[string]string{"kubeconfig": env.Kubeconfig}, wantNamespace: "default"},
		{name: "inline kubeconfig and namespace", config: map[string]string{"kubeconfig": string(content), "namespace": "apps"}, wantNamespace: "apps"},
		{name: "KUBECONFIG default", env: map[string]string{"KUBECONFIG": env.Kubeconfig}, wantNamespace: "default"},
		{name: "~/.kube/config default", env: map[string]string{"HOME": homeWithKubeconfig(t, content)}, wantNamespace: "default"},
		{name: "explicit context", config: map[string]string{"kubeconfig": env.Kubeconfig, "context": env.KubeContext}, wantNamespace: "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s := newServer(t)
			if err := s.Configure(config(tt.config)); err != nil {
				t.Fatal(err)
			}
			got := invokeClusterInfo(t, s)
			// Which ESO versions are served depends on the package's other
			// tests; TestGetClusterInfoSeesExternalSecretsAPI checks it.
			if _, ok := got["externalSecretsApiVersions"].([]any); !ok {
				t.Errorf("externalSecretsApiVersions = %v, want a list", got["externalSecretsApiVersions"])
			}
			delete(got, "externalSecretsApiVersions")
			want := map[string]any{
				"host": env.APIServer, "context": env.KubeContext, "namespace": tt.wantNamespace,
				"serverVersion": "v1.34.10",
			}
			assertJSONEqual(t, got, want)
		})
	}
}

func TestGetClusterInfoSeesExternalSecretsAPI(t *testing.T) {
	env := harness.Shared(t)
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	crds := apiextensions.NewForConfigOrDie(cfg).ApiextensionsV1().CustomResourceDefinitions()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "probes.external-secrets.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "external-secrets.io",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "probes", Kind: "Probe"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object"}},
			}},
		},
	}
	if _, err := crds.Create(t.Context(), crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = crds.Delete(context.Background(), crd.Name, metav1.DeleteOptions{}) })

	s := newServer(t)
	if err := s.Configure(config(map[string]string{"kubeconfig": env.Kubeconfig})); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := invokeClusterInfo(t, s)
		// Other tests in the package may have installed ESO's full bundle,
		// which also serves v1alpha1.
		versions, _ := got["externalSecretsApiVersions"].([]any)
		if slices.Contains(versions, any("v1")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("externalSecretsApiVersions = %v, want it to contain v1", got["externalSecretsApiVersions"])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestGetClusterInfoUnreachable(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, kubeconfig, "https://127.0.0.1:1")
	s := newServer(t)
	if err := s.Configure(config(map[string]string{"kubeconfig": kubeconfig})); err != nil {
		t.Fatalf("Configure must not contact the cluster: %v", err)
	}
	_, err := s.Invoke(p.InvokeRequest{Token: "esosync:index:getClusterInfo", Args: property.Map{}})
	if err == nil || !strings.Contains(err.Error(), "https://127.0.0.1:1") {
		t.Fatalf("Invoke error = %v, want one naming the unreachable API server", err)
	}
}

func invokeClusterInfo(t *testing.T, s integration.Server) map[string]any {
	t.Helper()
	resp, err := s.Invoke(p.InvokeRequest{Token: "esosync:index:getClusterInfo", Args: property.Map{}})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if len(resp.Failures) > 0 {
		t.Fatalf("Invoke failures: %v", resp.Failures)
	}
	out := map[string]any{}
	for k, v := range resp.Return.All {
		out[k] = toGo(v)
	}
	return out
}

func toGo(v property.Value) any {
	switch {
	case v.IsString():
		return v.AsString()
	case v.IsArray():
		items := []any{}
		for _, item := range v.AsArray().All {
			items = append(items, toGo(item))
		}
		return items
	default:
		return v.GoString()
	}
}

func assertJSONEqual(t *testing.T, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("got  %s\nwant %s", g, w)
	}
}

func writeKubeconfig(t *testing.T, path, server string) {
	t.Helper()
	content := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "` + server + `", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: ctx-a
  context: {cluster: c, user: u}
- name: ctx-b
  context: {cluster: c, user: u, namespace: b}
current-context: ctx-a
`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func homeWithKubeconfig(t *testing.T, content []byte) string {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSchemaDescribesEverything: every resource, function, type, property,
// input, config variable and enum value carries a description, because the
// SDKs' doc comments and the registry docs come from nothing else.
func TestSchemaDescribesEverything(t *testing.T) {
	resp, err := newServer(t).GetSchema(p.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type prop struct {
		Description string `json:"description"`
	}
	type object struct {
		Description     string          `json:"description"`
		Type            string          `json:"type"`
		Properties      map[string]prop `json:"properties"`
		InputProperties map[string]prop `json:"inputProperties"`
		Enum            []struct {
			Value       any    `json:"value"`
			Description string `json:"description"`
		} `json:"enum"`
	}
	var spec struct {
		Resources map[string]object `json:"resources"`
		Types     map[string]object `json:"types"`
		Functions map[string]struct {
			Description string `json:"description"`
			Inputs      object `json:"inputs"`
			Outputs     object `json:"outputs"`
		} `json:"functions"`
		Config struct {
			Variables map[string]prop `json:"variables"`
		} `json:"config"`
		Provider object `json:"provider"`
	}
	if err := json.Unmarshal([]byte(resp.Schema), &spec); err != nil {
		t.Fatal(err)
	}
	var missing []string
	check := func(where string, o object) {
		if o.Description == "" && (o.Type == "" || o.Type == "object") && where != "provider" {
			missing = append(missing, where)
		}
		for name, p := range o.Properties {
			if p.Description == "" {
				missing = append(missing, where+"."+name)
			}
		}
		for name, p := range o.InputProperties {
			if p.Description == "" {
				missing = append(missing, where+" input "+name)
			}
		}
		for _, e := range o.Enum {
			if e.Description == "" {
				missing = append(missing, fmt.Sprintf("%s enum value %v", where, e.Value))
			}
		}
	}
	for name, r := range spec.Resources {
		check(name, r)
	}
	for name, ty := range spec.Types {
		check(name, ty)
	}
	for name, f := range spec.Functions {
		if f.Description == "" {
			missing = append(missing, name)
		}
		check(name+" outputs", object{Properties: f.Outputs.Properties, Description: "-"})
	}
	for name, v := range spec.Config.Variables {
		if v.Description == "" {
			missing = append(missing, "config "+name)
		}
	}
	check("provider", spec.Provider)
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("no description: %s", m)
	}
}

// TestConfigDiff: the schema's config defaults are no change (a stack
// written before they existed must not replace its provider, and with it
// every resource); a real change replaces the provider, as before.
func TestConfigDiff(t *testing.T) {
	t.Setenv("PULUMI_ACCESS_TOKEN", "")
	t.Setenv("ESC_API_URL", "")
	s := newServer(t)
	old := map[string]any{"version": "0.1.0", "namespace": "app"}
	withDefaults := map[string]any{"version": "0.1.0", "namespace": "app", "escApiUrl": "https://api.pulumi.com/api/esc",
		"escOrganization": "organization", "escAccessToken": ""}
	for _, tt := range []struct {
		name    string
		news    map[string]any
		replace []string
	}{
		{"defaults filled in", withDefaults, nil},
		{"nothing", old, nil},
		{"another ESC API", map[string]any{"version": "0.1.0", "namespace": "app", "escApiUrl": "https://esc.example"}, []string{"escApiUrl"}},
		{"another namespace", map[string]any{"version": "0.1.0", "namespace": "other"}, []string{"namespace"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.DiffConfig(p.DiffRequest{Urn: "urn:pulumi:test::test::pulumi:providers:esosync::default",
				State: props(old), OldInputs: props(old), Inputs: props(tt.news)})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for k, d := range resp.DetailedDiff {
				if d.Kind != p.UpdateReplace {
					t.Errorf("%s: %v, want a replacement", k, d.Kind)
				}
				got = append(got, k)
			}
			slices.Sort(got)
			if resp.HasChanges != (len(tt.replace) > 0) || !slices.Equal(got, tt.replace) {
				t.Errorf("DiffConfig = %+v, want replacements of %v", resp, tt.replace)
			}
		})
	}
}
