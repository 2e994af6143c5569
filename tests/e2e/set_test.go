package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestExternalSecretSet runs examples/yaml/set through the pulumi CLI: three
// ExternalSecrets as one resource. A Vault change and a hand edit show at
// refresh by item name, and up touches only the items that drifted; adding
// and removing an item touches only that item in the cluster; nothing
// fetched leaks; destroy leaves nothing.
func TestExternalSecretSet(t *testing.T) {
	env := harness.Shared(t)
	ctx := t.Context()
	const ns = "e2e-set"
	rel := filepath.Join("examples", "yaml", "set")
	vc := vaultClient(t, env)
	values := map[string]string{}
	put := func(key string) string {
		t.Helper()
		v := randomValue(t, key)
		if _, err := vc.KVv2("secret").Put(ctx, "fleet/"+key, map[string]any{"password": v}); err != nil {
			t.Fatal(err)
		}
		values[key] = v
		return v
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		put(k)
	}
	tb := newTestbed(t, ns)
	x := startExample(t, exampleProgram(t, rel, tb), ns)
	x.run("config", "set", "vaultAddress", env.VaultAddr)
	x.run("config", "set", "--secret", "vaultToken", env.VaultToken)
	x.up(verbose...)
	secrets := map[string]string{"app-a": "a", "app-b": "b", "app-c-credentials": "c"}
	for name, key := range secrets {
		assertSecret(t, env, ns, name, map[string]string{"password": values[key]})
	}
	outputs := stackOutputs(t, x.run("stack", "output", "--json"))
	if outputs["ready"] != true {
		t.Fatalf("outputs after up: %v", outputs)
	}
	x.twoRefreshes()

	// A Vault change of one item's key: refresh names that item, up syncs it alone.
	put("b")
	before := versions(t, env, ns)
	x.refresh()
	if !strings.Contains(x.last, `ExternalSecretSet`) || !strings.Contains(x.last, "app-b") || strings.Contains(warnings(x.last), "app-a") {
		t.Errorf("refresh does not name the drifted item app-b (and only it):\n%s", x.lastTail())
	}
	// Refresh updates the resource's state, not the stack's outputs.
	outputs = resourceOutputs(t, x.run("stack", "export"), "::apps")
	if outputs["ready"] != false || !sameList(outputs["notReady"], "app-b") {
		t.Errorf("the set's outputs after the refresh: ready %v, notReady %v", outputs["ready"], outputs["notReady"])
	}
	x.up(verbose...)
	assertSecret(t, env, ns, "app-b", map[string]string{"password": values["b"]})
	assertTouched(t, before, versions(t, env, ns), "app-b")

	// A hand edit of one Secret: refresh names it, up heals only it.
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	s, err := clients.CoreV1().Secrets(ns).Get(ctx, "app-c-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data["password"] = []byte("edited-by-hand")
	if _, err := clients.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	before = versions(t, env, ns)
	x.refresh()
	if !strings.Contains(warnings(x.last), "app-c") {
		t.Errorf("refresh after a hand edit does not name app-c:\n%s", x.lastTail())
	}
	x.up()
	assertSecret(t, env, ns, "app-c-credentials", map[string]string{"password": values["c"]})
	assertTouched(t, before, versions(t, env, ns), "app-c")

	// Add one item and remove another: only those two change in the cluster.
	program := filepath.Join(x.dir, "Pulumi.yaml")
	data, err := os.ReadFile(program)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "app-a:", "app-d:", 1)
	edited = strings.Replace(edited, "key: fleet/a", "key: fleet/d", 1)
	if edited == string(data) {
		t.Fatal("could not edit the program")
	}
	if err := os.WriteFile(program, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	before = versions(t, env, ns)
	if c := x.up(verbose...); c["update"] != 1 {
		t.Errorf("adding and removing an item is not one update of the set: %v\n%s", c, x.lastTail())
	}
	assertSecret(t, env, ns, "app-d", map[string]string{"password": values["d"]})
	after := versions(t, env, ns)
	if _, ok := after["Secret/app-a"]; ok {
		t.Error("the removed item's Secret app-a still exists")
	}
	if _, ok := after["ExternalSecret/app-a"]; ok {
		t.Error("the removed item's ExternalSecret app-a still exists")
	}
	assertTouched(t, before, after, "app-a", "app-d")
	if c := x.up(); len(c.changed()) != 0 {
		t.Errorf("a second up is not a no-op: %v\n%s", c, x.lastTail())
	}

	// Leak scan: state, outputs and every log line so far.
	state := x.run("stack", "export", "--show-secrets")
	shown := x.run("stack", "output", "--json", "--show-secrets")
	for _, v := range values {
		for name, text := range map[string]string{"exported state": state, "stack outputs": shown, "CLI and provider logs": x.logs.String()} {
			if strings.Contains(text, v) {
				t.Errorf("%s contain a value fetched from Vault", name)
			}
		}
	}
	x.run("destroy", "--yes", "--skip-preview")
	assertNothingLeft(t, env, ns)
}

// versions are the resourceVersions of the namespace's ExternalSecrets and
// Secrets, as "Kind/name".
func versions(t *testing.T, env *harness.Env, ns string) map[string]string {
	t.Helper()
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for kind, gvr := range map[string]schema.GroupVersionResource{
		"ExternalSecret": {Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"},
		"Secret":         {Version: "v1", Resource: "secrets"},
	} {
		list, err := dyn.Resource(gvr).Namespace(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			out[kind+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	return out
}

// assertTouched fails unless exactly the objects of the named items (their
// ExternalSecret and target Secret) changed between before and after.
func assertTouched(t *testing.T, before, after map[string]string, items ...string) {
	t.Helper()
	mine := func(key string) bool {
		for _, item := range items {
			if strings.HasSuffix(key, "/"+item) || strings.HasPrefix(key, "Secret/"+item+"-") {
				return true
			}
		}
		return false
	}
	for key, v := range after {
		if before[key] != v && !mine(key) {
			t.Errorf("%s changed, but only %v should have", key, items)
		}
	}
	for key := range before {
		if _, ok := after[key]; !ok && !mine(key) {
			t.Errorf("%s disappeared, but only %v should have changed", key, items)
		}
	}
}

// sameList reports whether an output list holds exactly want.
func sameList(v any, want ...string) bool {
	list, _ := v.([]any)
	if len(list) != len(want) {
		return false
	}
	for i, w := range want {
		if list[i] != w {
			return false
		}
	}
	return true
}
