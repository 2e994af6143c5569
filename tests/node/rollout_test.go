package node

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/esosync/pulumi-esosync/tests/harness"
	"github.com/esosync/pulumi-esosync/tests/story"
)

// rolloutAnnotation is the pod-template annotation rolloutRestartTargets
// set for the program's ExternalSecret "db" (documented in the schema).
const rolloutAnnotation = "esosync.io/rollout.db"

// rolloutBed is tests/node/testdata/rollout running on the node bed.
type rolloutBed struct {
	t       *testing.T
	logf    func(string, ...any)
	vault   *vaultapi.Client
	clients *kubernetes.Clientset
	dyn     dynamic.Interface
	stack   *story.Stack
	app     *story.App
	ns      string
	fetched []string
}

// TestRolloutRestart runs an ExternalSecret with rolloutRestartTargets
// through the pulumi CLI with ESO as pods: the app Deployment, created
// after the ExternalSecret, rolls exactly once per content change, whether
// the change comes from `up` (a Vault change that refresh reports) or from
// ESO between deploys (refresh lists the Deployment in rolloutPending and
// the next up rolls it), and never on a no-op up. Pod template revisions
// are counted from the Deployment's ReplicaSets.
func TestRolloutRestart(t *testing.T) {
	env := harness.Shared(t)
	ctx := t.Context()
	b := newRolloutBed(t, env, "node-rollout")
	destroyed := false
	defer func() {
		if !destroyed {
			_, _ = b.stack.Run(context.WithoutCancel(ctx), "destroy", "--yes", "--skip-preview")
		}
	}()

	v1 := b.put(ctx, "v1")
	out := b.run(ctx, "up", "--yes", "--skip-preview")
	b.logf("pulumi up (ESO as pods, the store, the ExternalSecret; the app does not exist yet): %s", summaryLine(out))
	if err := b.app.Deploy(ctx); err != nil {
		t.Fatal(err)
	}
	b.expectServed(ctx, v1)
	counts := []string{b.revisions(ctx, 1, "after the app was created")}

	// A Vault change: refresh shows it, up syncs it and rolls the app once.
	v2 := b.put(ctx, "v2")
	out = b.run(ctx, "refresh", "--yes", "--skip-preview")
	b.logf("pulumi refresh after Vault changed: %s", summaryLine(out))
	if !strings.Contains(out, "updated") {
		t.Fatalf("refresh after the backend changed reports no drift:\n%s", out)
	}
	// At the CLI's most verbose logging: the leak scan covers its output.
	hash2 := b.upAndRoll(ctx, "pulumi up after the Vault change", "-v=9", "--logtostderr", "--logflow", "--debug")
	b.expectServed(ctx, v2)
	counts = append(counts, b.revisions(ctx, 2, "after that up"))
	b.noOpUp(ctx)
	counts = append(counts, b.revisions(ctx, 2, "after a no-op up"))

	// ESO changes the Secret between deploys: refresh names the app as
	// behind, and the next up rolls it without changing the Secret itself.
	v3 := b.put(ctx, "v3")
	b.esoSyncs(ctx, "db", "db-secret", v3)
	out = b.run(ctx, "refresh", "--yes", "--skip-preview")
	b.logf("pulumi refresh after ESO changed the Secret: %s", summaryLine(out))
	pending := b.rolloutPending(ctx)
	if !slices.Equal(pending, []string{"Deployment/" + b.ns + "/app"}) {
		t.Fatalf("refresh after ESO changed the Secret: rolloutPending = %v, want the app\n%s", pending, out)
	}
	if !strings.Contains(out, "started with other content than the Secret holds") {
		t.Errorf("refresh did not warn about the app:\n%s", out)
	}
	b.logf("refresh: rolloutPending = %v", pending)
	if hash3 := b.upAndRoll(ctx, "pulumi up after ESO's change"); hash3 == hash2 {
		t.Fatalf("dataHash did not change with ESO's sync (%s)", hash3)
	}
	b.expectServed(ctx, v3)
	counts = append(counts, b.revisions(ctx, 3, "after that up"))
	b.noOpUp(ctx)
	counts = append(counts, b.revisions(ctx, 3, "after a no-op up"))
	if pending := b.rolloutPending(ctx); len(pending) > 0 {
		t.Errorf("rolloutPending after the up = %v", pending)
	}
	b.logf("rollout: pod template revisions (ReplicaSets of the app): %s", strings.Join(counts, "; "))

	scan, err := b.stack.LeakScan(ctx, b.fetched, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.logf("leak scan: %s", scan)
	if err := b.app.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	destroyed = true
	out = b.run(ctx, "destroy", "--yes", "--skip-preview")
	b.logf("pulumi destroy: %s", summaryLine(out))
	reportSteps(t, b.stack.Steps)
}

// newRolloutBed gives Vault a token that reads rollout/*, puts it in a
// Secret of ns and configures the program's stack.
func newRolloutBed(t *testing.T, env *harness.Env, ns string) *rolloutBed {
	ctx := t.Context()
	b := &rolloutBed{t: t, logf: report(t), ns: ns}
	var err error
	if b.vault, err = env.VaultClient(); err != nil {
		t.Fatal(err)
	}
	if err := b.vault.Sys().PutPolicyWithContext(ctx, "rollout-read", `path "secret/data/rollout/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := b.vault.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"rollout-read"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if b.clients, err = env.Clientset(); err != nil {
		t.Fatal(err)
	}
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if b.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if err := story.EnsureNamespace(ctx, env, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := b.clients.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "vault-token"},
		StringData: map[string]string{"token": tok.Auth.ClientToken}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b.fetched = append(b.fetched, tok.Auth.ClientToken)
	if b.stack, err = story.NewStack(ctx, env, t.TempDir(), filepath.Join("testdata", "rollout"), b.logf); err != nil {
		t.Fatal(err)
	}
	chart, crds, err := story.ESOChart()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.stack.Config(ctx, map[string]string{"vaultAddress": env.VaultAddr, "tokenSecret": "vault-token", "appNamespace": ns,
		"esoChart": chart, "esoCrds": crds}, nil); err != nil {
		t.Fatal(err)
	}
	b.app = &story.App{Clients: b.clients, Namespace: ns, Name: "app", Secret: "db-secret",
		Env: map[string]string{"DB_PASSWORD": "password"}, HashAnnotation: rolloutAnnotation}
	return b
}

// put writes a new random password to Vault and returns it.
func (b *rolloutBed) put(ctx context.Context, label string) string {
	b.t.Helper()
	v := story.Random("rollout-" + label)
	if _, err := b.vault.KVv2("secret").Put(ctx, "rollout/db", map[string]any{"password": v}); err != nil {
		b.t.Fatal(err)
	}
	b.fetched = append(b.fetched, v)
	return v
}

// run runs a pulumi command and fails the test when it fails.
func (b *rolloutBed) run(ctx context.Context, args ...string) string {
	b.t.Helper()
	out, err := b.stack.Run(ctx, args...)
	if err != nil {
		b.t.Fatalf("pulumi %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// upAndRoll runs `pulumi up` (with flags) and waits until the app's only
// pod carries the new dataHash; it returns that hash.
func (b *rolloutBed) upAndRoll(ctx context.Context, what string, flags ...string) string {
	b.t.Helper()
	out := b.run(ctx, append([]string{"up", "--yes", "--skip-preview"}, flags...)...)
	hash := b.output(ctx, "dataHash")
	began := time.Now()
	pod, err := b.app.WaitRolledOut(ctx, hash)
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, out)
	}
	b.logf("%s: %s; the app rolled to %s=%s…: pod %s (%.1fs after up returned)", what, summaryLine(out), rolloutAnnotation,
		hash[:min(len(hash), 24)], pod, time.Since(began).Seconds())
	return hash
}

// noOpUp runs `pulumi up` with nothing changed and checks that it changes
// nothing.
func (b *rolloutBed) noOpUp(ctx context.Context) {
	b.t.Helper()
	out := b.run(ctx, "up", "--yes", "--skip-preview")
	if strings.Contains(out, "updated") || strings.Contains(out, "created") {
		b.t.Fatalf("a no-op up changed something:\n%s", out)
	}
	b.logf("no-op pulumi up: %s", summaryLine(out))
}

// expectServed checks that the app's pod serves want.
func (b *rolloutBed) expectServed(ctx context.Context, want string) {
	b.t.Helper()
	env, pod, err := b.app.Served(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	if env["DB_PASSWORD"] != want {
		b.t.Fatalf("pod %s serves another DB_PASSWORD than Vault holds", pod)
	}
	b.logf("pod %s serves DB_PASSWORD = Vault's current value", pod)
}

// revisions counts the app's ReplicaSets (one per pod template the
// Deployment ever had), fails unless there are want, and describes them.
func (b *rolloutBed) revisions(ctx context.Context, want int, when string) string {
	b.t.Helper()
	rss, err := b.clients.AppsV1().ReplicaSets(b.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=app"})
	if err != nil {
		b.t.Fatal(err)
	}
	if len(rss.Items) != want {
		b.t.Fatalf("%s: the app has %d ReplicaSets, want %d", when, len(rss.Items), want)
	}
	return fmt.Sprintf("%d %s", len(rss.Items), when)
}

// esoSyncs makes ESO sync ExternalSecret name now (as a user's force-sync
// would) and waits until the Secret holds want.
func (b *rolloutBed) esoSyncs(ctx context.Context, name, secret, want string) {
	b.t.Helper()
	gvr := schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		"force-sync": time.Now().Format(time.RFC3339Nano)}}})
	if _, err := b.dyn.Resource(gvr).Namespace(b.ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		b.t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		s, err := b.clients.CoreV1().Secrets(b.ns).Get(ctx, secret, metav1.GetOptions{})
		if err == nil && string(s.Data["password"]) == want {
			b.logf("ESO synced the new Vault value into Secret %s between deploys", secret)
			return
		}
	}
	b.t.Fatalf("ESO did not sync Secret %s/%s within a minute", b.ns, secret)
}

// output is a stack output as a string.
func (b *rolloutBed) output(ctx context.Context, name string) string {
	b.t.Helper()
	outs, err := b.stack.Outputs(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	s, _ := outs[name].(string)
	return s
}

// rolloutPending is the ExternalSecret's rolloutPending as the state holds
// it (refresh does not update stack outputs).
func (b *rolloutBed) rolloutPending(ctx context.Context) []string {
	b.t.Helper()
	export := b.run(ctx, "stack", "export")
	var d struct {
		Deployment struct {
			Resources []struct {
				URN     string `json:"urn"`
				Outputs struct {
					RolloutPending []string `json:"rolloutPending"`
				} `json:"outputs"`
			} `json:"resources"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(export), &d); err != nil {
		b.t.Fatal(err)
	}
	for _, r := range d.Deployment.Resources {
		if strings.HasSuffix(r.URN, "esosync:index:ExternalSecret::db") {
			return r.Outputs.RolloutPending
		}
	}
	b.t.Fatal("no ExternalSecret db in the state")
	return nil
}

// summaryLine is the resource summary of a pulumi command's output.
func summaryLine(out string) string {
	var parts []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch trimmed := strings.TrimSpace(line); {
		case trimmed == "Resources:":
			in = true
		case in && trimmed == "":
			if len(parts) > 0 {
				return strings.Join(parts, ", ")
			}
		case in:
			parts = append(parts, trimmed)
		}
	}
	return strings.Join(parts, ", ")
}
