// Package e2e drives esosync programs through the real pulumi CLI against
// the loopback test bed.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

func TestMain(m *testing.M) {
	opts := harness.Full
	opts.AWS = true
	os.Exit(harness.Main(m, opts))
}

// newPulumi gives a test its own PULUMI_HOME and state with the esosync
// plugin installed from the freshly built binary.
func newPulumi(t *testing.T) *harness.Pulumi {
	t.Helper()
	pulumi, err := harness.NewPulumi(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	binary, err := harness.ProviderBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := pulumi.InstallProvider(t.Context(), binary); err != nil {
		t.Fatal(err)
	}
	return pulumi
}

// copyProgram copies a program directory so stack files stay out of the repo.
func copyProgram(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := harness.CopyProgram(src, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// copyGoProgram copies the Go program in src and points its replace
// directive for the Go SDK at the repository's sdk/go, which the copy's
// relative path no longer reaches.
func copyGoProgram(t *testing.T, src string) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := copyProgram(t, src)
	edit := exec.CommandContext(t.Context(), "go", "mod", "edit", "-replace=github.com/esosync/pulumi-esosync/sdk/go="+filepath.Join(root, "sdk", "go"))
	edit.Dir = dir
	if out, err := edit.CombinedOutput(); err != nil {
		t.Fatalf("go mod edit: %v\n%s", err, out)
	}
	return dir
}

// timings collects how long each up, refresh and destroy of an example
// took, for the log (the figures reported for every example).
type timings struct {
	name string
	d    map[string][]time.Duration
}

func newTimings(name string) *timings { return &timings{name: name, d: map[string][]time.Duration{}} }

func (tm *timings) add(cmd string, d time.Duration) {
	switch cmd {
	case "up", "refresh", "destroy", "preview":
		tm.d[cmd] = append(tm.d[cmd], d.Round(100*time.Millisecond))
	}
}

func (tm *timings) log(t *testing.T) {
	var parts []string
	for _, cmd := range []string{"preview", "up", "refresh", "destroy"} {
		if len(tm.d[cmd]) > 0 {
			parts = append(parts, fmt.Sprintf("%s=%v", cmd, tm.d[cmd]))
		}
	}
	line := fmt.Sprintf("example timings (%s): %s", tm.name, strings.Join(parts, " "))
	t.Log(line)
	fmt.Println(line)
}

// TestClusterInfoExample runs examples/yaml/cluster-info with `pulumi up`.
func TestClusterInfoExample(t *testing.T) {
	env := harness.Shared(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pulumi := newPulumi(t)
	pulumi.Env = append(pulumi.Env, "KUBECONFIG="+env.Kubeconfig)
	dir := copyProgram(t, filepath.Join(root, "examples", "yaml", "cluster-info"))
	ctx := t.Context()

	for _, args := range [][]string{
		{"stack", "init", "dev"},
		{"up", "--yes", "--skip-preview"},
	} {
		if _, err := pulumi.Run(ctx, dir, args...); err != nil {
			t.Fatal(err)
		}
	}
	out, err := pulumi.Run(ctx, dir, "stack", "output", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var outputs map[string]any
	if err := json.Unmarshal([]byte(out), &outputs); err != nil {
		t.Fatalf("stack output: %v\n%s", err, out)
	}
	// Other tests in the package install ESO's CRDs, which stay (deleting
	// CRDs deletes every object of their kinds); only the list's type is fixed.
	if _, ok := outputs["externalSecretsApiVersions"].([]any); !ok {
		t.Errorf("externalSecretsApiVersions = %v, want a list", outputs["externalSecretsApiVersions"])
	}
	delete(outputs, "externalSecretsApiVersions")
	want := map[string]any{
		"host": env.APIServer, "context": env.KubeContext, "namespace": "default",
		"serverVersion": "v1.34.10",
	}
	g, _ := json.Marshal(outputs)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("outputs = %s\nwant      %s", g, w)
	}
	for i := range 2 {
		if _, err := pulumi.Run(ctx, dir, "refresh", "--yes", "--skip-preview"); err != nil {
			t.Fatal(err)
		}
		if c := lastChanges(t, pulumi, dir, "refresh"); len(c.changed()) != 0 {
			t.Errorf("refresh %d reports changes: %v", i+1, c)
		}
	}
	if _, err := pulumi.Run(ctx, dir, "destroy", "--yes", "--skip-preview"); err != nil {
		t.Fatal(err)
	}
}

// TestPreviewWithoutCluster previews and deploys an explicit provider whose
// cluster cannot be reached: the provider must connect lazily. The inline
// kubeconfig holds a token that must not reach the state unencrypted.
func TestPreviewWithoutCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pulumi CLI and the plugin binary (run make test)")
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pulumi := newPulumi(t)
	dir := copyProgram(t, filepath.Join(root, "tests", "e2e", "testdata", "offline-provider"))
	ctx := t.Context()
	const token = "e2e-kubeconfig-token-4f1c9a"
	kubeconfig := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: ` + token + `}}]
contexts: [{name: unreachable, context: {cluster: c, user: u}}]
current-context: unreachable
`
	if _, err := pulumi.Run(ctx, dir, "stack", "init", "dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := pulumi.Run(ctx, dir, "config", "set", "--secret", "kubeconfigContent", "--", kubeconfig); err != nil {
		t.Fatal(err)
	}
	preview, err := pulumi.Run(ctx, dir, "preview", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if c := previewChanges(t, preview); c["create"] != 2 {
		t.Errorf("preview did not plan the stack and provider: %v\n%s", c, preview)
	}
	up, err := pulumi.Run(ctx, dir, "up", "--yes", "--skip-preview")
	if err != nil {
		t.Fatal(err)
	}
	state, err := pulumi.Run(ctx, dir, "stack", "export")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"preview output": preview, "up output": up, "exported state": state} {
		if strings.Contains(text, token) {
			t.Errorf("%s contains the kubeconfig token", name)
		}
	}
	if !strings.Contains(state, "ciphertext") {
		t.Error("exported state holds no encrypted value: the kubeconfig was not stored as a secret")
	}
	if _, err := pulumi.Run(ctx, dir, "destroy", "--yes", "--skip-preview"); err != nil {
		t.Fatal(err)
	}
}

// TestPreviewNamesBadConfig checks a bad context is reported at preview with
// the config key in the message.
func TestPreviewNamesBadConfig(t *testing.T) {
	env := harness.Shared(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pulumi := newPulumi(t)
	dir := copyProgram(t, filepath.Join(root, "examples", "yaml", "cluster-info"))
	ctx := t.Context()
	for _, args := range [][]string{
		{"stack", "init", "dev"},
		{"config", "set", "esosync:kubeconfig", env.Kubeconfig},
		{"config", "set", "esosync:context", "staging"},
	} {
		if _, err := pulumi.Run(ctx, dir, args...); err != nil {
			t.Fatal(err)
		}
	}
	out, err := pulumi.Run(ctx, dir, "preview")
	if err == nil {
		t.Fatalf("preview succeeded with an unknown context:\n%s", out)
	}
	for _, want := range []string{"esosync:context", `"staging"`, `"esosync-test"`} {
		if !strings.Contains(out, want) {
			t.Errorf("preview output does not mention %s:\n%s", want, out)
		}
	}
}

// example is one example program being driven through the pulumi CLI on
// the test bed: its own PULUMI_HOME and state, a log of everything the CLI
// printed (for the leak scan), the last command's output (for failure
// messages) and the timings of up/refresh/destroy.
type example struct {
	t      *testing.T
	pulumi *harness.Pulumi
	dir    string
	logs   strings.Builder
	last   string
	times  *timings
}

// startExample creates namespace ns and inits stack dev of the program in
// dir, a copy with the test bed's overrides applied (exampleProgram). env
// is extra environment for the CLI and the provider.
func startExample(t *testing.T, dir, ns string, env ...string) *example {
	t.Helper()
	bed := harness.Shared(t)
	clients, err := bed.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	x := &example{t: t, pulumi: newPulumi(t), dir: dir, times: newTimings(ns)}
	x.pulumi.Env = append(append(x.pulumi.Env, "KUBECONFIG="+bed.Kubeconfig), env...)
	t.Cleanup(func() { x.times.log(t) })
	// A test that fails half way must not leave its Helm release and
	// cluster-scoped stores to fail every test after it; t.Context() is
	// already cancelled when cleanups run.
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if out, err := x.pulumi.Run(ctx, x.dir, "destroy", "--yes", "--skip-preview"); err != nil {
				t.Logf("destroy after the failure: %v\n%s", err, tail(out, 10))
			}
		}
	})
	x.run("stack", "init", "dev")
	return x
}

// run runs `pulumi args...` in the program's directory, fails the test on
// an error, and returns the output.
func (x *example) run(args ...string) string {
	x.t.Helper()
	began := time.Now()
	out, err := x.pulumi.Run(x.t.Context(), x.dir, args...)
	x.times.add(args[0], time.Since(began))
	x.logs.WriteString(out)
	x.last = out
	if err != nil {
		x.t.Fatal(err)
	}
	return out
}

// verbose are the flags that make the provider log everything at debug
// level into the CLI's output, for the leak scan.
var verbose = []string{"-v=9", "--logtostderr", "--logflow"}

// up runs `pulumi up --yes --skip-preview` with extra args and returns what
// it changed.
func (x *example) up(args ...string) changeSummary {
	x.t.Helper()
	x.run(append([]string{"up", "--yes", "--skip-preview"}, args...)...)
	return lastChanges(x.t, x.pulumi, x.dir, "update")
}

// refresh runs `pulumi refresh --yes --skip-preview` and returns what it
// changed in the state.
func (x *example) refresh() changeSummary {
	x.t.Helper()
	x.run("refresh", "--yes", "--skip-preview")
	return lastChanges(x.t, x.pulumi, x.dir, "refresh")
}

// twoRefreshes runs `pulumi refresh` twice with nothing changed in
// between, then `refresh --preview-only` (what Pulumi Cloud's scheduled
// drift detection runs): the second refresh and the preview must change
// nothing, or a volatile output would alarm users on every run.
func (x *example) twoRefreshes() {
	x.t.Helper()
	first := x.refresh()
	if len(first.changed()) != 0 {
		x.t.Errorf("refresh right after up reports changes: %v\n%s", first.changed(), x.lastTail())
	}
	second := x.refresh()
	if len(second.changed()) != 0 {
		x.t.Errorf("a second refresh with nothing changed reports %v:\n%s", second.changed(), x.lastTail())
	}
	out := x.run("refresh", "--preview-only")
	if strings.Contains(out, "to update") || strings.Contains(out, "to delete") {
		x.t.Errorf("refresh --preview-only after two refreshes plans changes:\n%s", tail(out, 20))
	}
	x.t.Logf("two refreshes in a row: %v then %v; refresh --preview-only: no changes", first, second)
}

// preview runs `pulumi preview --json` and returns what it plans.
func (x *example) preview() changeSummary {
	x.t.Helper()
	return previewChanges(x.t, x.run("preview", "--json"))
}

// lastTail is the end of the last command's output, for failure messages.
func (x *example) lastTail() string { return tail(x.last, 20) }

// TestPreviewChecksStoreRef: the mistake users make most with stores (a
// ClusterSecretStore referenced with kind SecretStore) and a misspelt store
// name fail `pulumi preview` before anything exists, naming the field to
// fix. The ExternalSecrets depend on the store, as a program must for the
// store to exist when they sync.
func TestPreviewChecksStoreRef(t *testing.T) {
	env := harness.Shared(t)
	// ESO's CRDs served, so that "no such store" is a conclusion (without
	// them an Operator in the program may be about to install ESO).
	if err := env.InstallESOCRDs(t.Context()); err != nil {
		t.Fatal(err)
	}
	const store = `name: storeref
runtime: yaml
resources:
  vault:
    type: esosync:index:ClusterSecretStore
    properties:
      name: e2e-refstore
      skipValidation: true
      waitForReady: false
      backend:
        vault:
          server: http://127.0.0.1:1
          auth:
            token:
              secretRef: { name: vault-token, key: token, namespace: default }
  app:
    type: esosync:index:ExternalSecret
    properties:
      namespace: default
      store: { kind: %s, name: %s }
      target: { name: app }
      data:
        - secretKey: password
          remoteRef: { key: my-app/config, property: password }
    options:
      dependsOn: [ "${vault}" ]
`
	for _, tc := range []struct {
		name, kind, store string
		want              []string
	}{
		{"wrong kind", "SecretStore", "e2e-refstore", []string{"store.kind", `set store.kind to "ClusterSecretStore"`}},
		{"misspelt name", "ClusterSecretStore", "e2e-refstor", []string{"store.name", `no ClusterSecretStore named "e2e-refstor" exists`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte(fmt.Sprintf(store, tc.kind, tc.store)), 0o644); err != nil {
				t.Fatal(err)
			}
			pulumi := newPulumi(t)
			pulumi.Env = append(pulumi.Env, "KUBECONFIG="+env.Kubeconfig)
			if _, err := pulumi.Run(t.Context(), dir, "stack", "init", "dev"); err != nil {
				t.Fatal(err)
			}
			out, err := pulumi.Run(t.Context(), dir, "preview")
			if err == nil {
				t.Fatalf("preview succeeded:\n%s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("preview output does not say %q:\n%s", want, out)
				}
			}
			t.Logf("preview: %s", linesWith(out, "store."))
		})
	}
}
