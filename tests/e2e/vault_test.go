package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

func randomValue(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func vaultClient(t *testing.T, env *harness.Env) *vaultapi.Client {
	t.Helper()
	c, err := env.VaultClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestVaultExample runs examples/yaml/vault through the pulumi CLI:
// up, backend change seen by refresh and healed by up, a hand edit seen by
// refresh and healed by up, destroy; and checks no fetched value leaks into
// state, outputs or verbose provider logs.
func TestVaultExample(t *testing.T) {
	runVaultScenario(t, filepath.Join("examples", "yaml", "vault"), "e2e-vault")
}

// TestVaultExampleGo runs the same scenario with examples/go/vault, a
// program on the generated Go SDK (built by the language host with `go
// build`, the SDK taken from sdk/go through a replace directive).
func TestVaultExampleGo(t *testing.T) {
	runVaultScenario(t, filepath.Join("examples", "go", "vault"), "e2e-vault-go")
}

// runVaultScenario drives the Vault example program rel (relative to the
// repository root), with the test bed's overrides, through the pulumi CLI
// with its ExternalSecret in namespace ns.
func runVaultScenario(t *testing.T, rel, ns string) {
	env := harness.Shared(t)
	ctx := t.Context()
	vc := vaultClient(t, env)
	username, password := randomValue(t, "user"), randomValue(t, "pw")
	put := func(data map[string]any) {
		t.Helper()
		if _, err := vc.KVv2("secret").Put(ctx, "my-app/config", data); err != nil {
			t.Fatal(err)
		}
	}
	put(map[string]any{"username": username, "password": password})
	values := []string{username, password}

	x := startExample(t, exampleProgram(t, rel, newTestbed(t, ns)), ns)
	run := x.run
	run("config", "set", "vaultAddress", env.VaultAddr)
	run("config", "set", "--secret", "vaultToken", env.VaultToken)

	// The first preview runs before ESO's CRDs exist.
	if c := x.preview(); c["create"] != 4 {
		t.Errorf("preview does not plan the stack: %v\n%s", c, x.last)
	}
	x.up(verbose...)
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password})
	outputs := stackOutputs(t, run("stack", "output", "--json", "--show-secrets"))
	if outputs["secretName"] != "app-secret" || outputs["ready"] != true {
		t.Errorf("outputs = %v", outputs)
	}
	firstHash := outputs["dataHash"]
	x.twoRefreshes()

	// Backend change: refresh reports it, up heals it.
	password2 := randomValue(t, "pw2")
	values = append(values, password2)
	put(map[string]any{"username": username, "password": password2})
	if c := x.refresh(); c["update"] != 1 {
		t.Errorf("refresh after a Vault change does not report the ExternalSecret changed: %v\n%s", c, x.last)
	}
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password})
	if c := x.up(verbose...); c["update"] != 1 {
		t.Errorf("up after drift did not update the ExternalSecret: %v\n%s", c, x.lastTail())
	}
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password2})
	outputs = stackOutputs(t, run("stack", "output", "--json", "--show-secrets"))
	if outputs["dataHash"] == firstHash {
		t.Error("dataHash did not change with the synced content")
	}

	// Hand edit: refresh reports it, up heals it.
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := clients.CoreV1().Secrets(ns).Get(ctx, "app-secret", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret.Data["password"] = []byte("edited-by-hand")
	if _, err := clients.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := x.refresh(); c["update"] != 1 {
		t.Errorf("refresh after a hand edit does not report drift: %v\n%s", c, x.last)
	}
	x.up(verbose...)
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password2})
	if c := x.up(); c["same"] != 4 || len(c.changed()) != 0 {
		t.Errorf("a second up is not a no-op: %v\n%s", c, x.lastTail())
	}

	// Leak scan: state with secrets shown, outputs, and every log line so far.
	state := run("stack", "export", "--show-secrets")
	shown := run("stack", "output", "--json", "--show-secrets")
	for _, v := range values {
		for name, text := range map[string]string{"exported state": state, "stack outputs": shown, "CLI and provider logs": x.logs.String()} {
			if strings.Contains(text, v) {
				t.Errorf("%s contain a value fetched from Vault", name)
			}
		}
	}
	// The store's token is a configured Pulumi secret: stored state (not
	// decrypted) must hold it only as ciphertext, also after the refreshes.
	if strings.Contains(run("stack", "export"), env.VaultToken) {
		t.Error("stored state holds the store's token, a configured secret, in plain text")
	}

	run("destroy", "--yes", "--skip-preview")
	assertNothingLeft(t, env, ns)
}

func stackOutputs(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("stack output: %v\n%s", err, out)
	}
	return m
}

func assertSecret(t *testing.T, env *harness.Env, ns, name string, want map[string]string) {
	t.Helper()
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	s, err := clients.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("target Secret: %v", err)
	}
	if len(s.Data) != len(want) {
		t.Errorf("Secret %s/%s has keys %v, want %v", ns, name, keysOf(s.Data), want)
	}
	for k, v := range want {
		if string(s.Data[k]) != v {
			t.Errorf("Secret %s/%s key %q does not hold the Vault value", ns, name, k)
		}
	}
	if s.Labels["reconcile.external-secrets.io/managed"] != "true" || s.Annotations["reconcile.external-secrets.io/data-hash"] == "" {
		t.Errorf("Secret lacks ESO's managed label or data-hash annotation: labels %v annotations %v", s.Labels, s.Annotations)
	}
}

func keysOf(m map[string][]byte) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// assertNothingLeft checks destroy removed every esosync object: the CRs,
// the managed credentials, the target Secret and the Helm release.
func assertNothingLeft(t *testing.T, env *harness.Env, ns string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []string{"externalsecrets", "secretstores", "clustersecretstores"} {
		list, err := dyn.Resource(schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: res}).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("listing %s: %v", res, err)
		}
		for _, item := range list.Items {
			if item.GetLabels()["app.kubernetes.io/managed-by"] == "esosync" {
				t.Errorf("%s %s/%s left behind", res, item.GetNamespace(), item.GetName())
			}
		}
	}
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := clients.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		managed := s.Labels["app.kubernetes.io/managed-by"] == "esosync" || s.Labels["reconcile.external-secrets.io/managed"] == "true"
		release := s.Type == "helm.sh/release.v1" && s.Labels["name"] == "external-secrets"
		if managed || release || (s.Namespace == ns && s.Name == "app-secret") {
			t.Errorf("Secret %s/%s left behind", s.Namespace, s.Name)
		}
	}
}
