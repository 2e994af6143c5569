package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestVaultExampleControllerMode runs examples/yaml/vault with
// `sync: controller` and the real ESO controller: up returns with the
// Secret current; a Vault change seen at refresh is synced by up without
// waiting for refreshInterval (dataHash changes, a second up is a no-op);
// with ESO stopped up fails within the timeout naming ESO's last report;
// with ESO restarted up succeeds.
func TestVaultExampleControllerMode(t *testing.T) {
	env := harness.Shared(t)
	ctx := t.Context()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "e2e-controller"
	rel := filepath.Join("examples", "yaml", "vault")
	vc := vaultClient(t, env)
	put := func(data map[string]any) {
		t.Helper()
		if _, err := vc.KVv2("secret").Put(ctx, "my-app/config", data); err != nil {
			t.Fatal(err)
		}
	}
	username, password := randomValue(t, "user"), randomValue(t, "pw")
	put(map[string]any{"username": username, "password": password})

	// ESO's controller needs the chart's ServiceAccount and RBAC before it
	// can start, so the first up installs the chart with the provider
	// syncing (the test bed's sync: provider). The wait for ESO to sync is
	// bounded by customTimeouts of 30 s.
	tb := newTestbed(t, ns)
	tb.SyncTimeout = "30s"
	x := startExample(t, exampleProgram(t, rel, tb), ns)
	run := x.run
	run("config", "set", "vaultAddress", env.VaultAddr)
	run("config", "set", "--secret", "vaultToken", env.VaultToken)
	x.up()

	if _, err := env.StartESO(ctx, harness.ESOOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.StopESO() })
	tb.Sync, tb.StoreWaitForReady = "controller", true
	tb.writeYAML(t, filepath.Join(root, rel), x.dir)
	start := time.Now()
	x.up()
	t.Logf("up in controller mode took %s", time.Since(start).Round(time.Millisecond))
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password})
	outputs := stackOutputs(t, run("stack", "output", "--json"))
	if outputs["ready"] != true {
		t.Fatalf("outputs after up: %v", outputs)
	}
	firstHash := outputs["dataHash"]

	// A Vault change: refresh sees it, up makes ESO sync now (refreshInterval is 1h).
	password2 := randomValue(t, "pw2")
	put(map[string]any{"username": username, "password": password2})
	if c := x.refresh(); c["update"] != 1 {
		t.Errorf("refresh after a Vault change does not report drift: %v\n%s", c, x.last)
	}
	x.up()
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password2})
	outputs = stackOutputs(t, run("stack", "output", "--json"))
	if outputs["dataHash"] == firstHash {
		t.Error("dataHash did not change after a Vault change + refresh + up")
	}
	if c := x.up(); c["same"] != 4 || len(c.changed()) != 0 {
		t.Errorf("up without a Vault change is not a no-op: %v\n%s", c, x.last)
	}
	x.twoRefreshes()

	// ESO stopped: up fails within the timeout and names ESO's last report.
	if err := env.StopESO(); err != nil {
		t.Fatal(err)
	}
	password3 := randomValue(t, "pw3")
	put(map[string]any{"username": username, "password": password3})
	x.refresh()
	start = time.Now()
	out, err := x.pulumi.Run(ctx, x.dir, "up", "--yes", "--skip-preview")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("up succeeded with the ESO controller stopped:\n%s", out)
	}
	if !strings.Contains(out, "was not synced") || !strings.Contains(out, "SecretSynced") {
		t.Errorf("up's failure does not name ESO's last report:\n%s", out)
	}
	if took > 90*time.Second {
		t.Errorf("up took %s to fail with a 30s timeout", took)
	}

	// ESO back: up succeeds and the Secret is current.
	if _, err := env.StartESO(ctx, harness.ESOOptions{}); err != nil {
		t.Fatal(err)
	}
	x.up()
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password3})

	run("destroy", "--yes", "--skip-preview")
	assertNothingLeft(t, env, ns)
}
