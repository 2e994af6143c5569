package e2e

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestBrokenCredentials: a store's Vault token revoked out of band, with the
// ExternalSecret synced by the provider and by the ESO controller. Refresh
// must report the ExternalSecret not ready with Vault's own reason and a
// warning (ESO still says Ready in controller mode: its next sync is an
// hour away), a second refresh must agree, and `up` must fail soon (well
// within the sync timeout) naming Vault's error; a new token heals it.
func TestBrokenCredentials(t *testing.T) {
	for _, mode := range []string{"provider", "controller"} {
		t.Run(mode, func(t *testing.T) { brokenCredentials(t, mode) })
	}
}

func brokenCredentials(t *testing.T, mode string) {
	env := harness.Shared(t)
	ctx := t.Context()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ns := "e2e-creds-" + mode
	rel := filepath.Join("examples", "yaml", "vault")
	vc := vaultClient(t, env)
	if err := vc.Sys().PutPolicy("e2e-creds-read", `path "secret/*" { capabilities = ["read", "list"] }`); err != nil {
		t.Fatal(err)
	}
	newToken := func() string {
		t.Helper()
		s, err := vc.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"e2e-creds-read"}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken
	}
	username, password := randomValue(t, "user"), randomValue(t, "pw")
	if _, err := vc.KVv2("secret").Put(ctx, "my-app/config", map[string]any{"username": username, "password": password}); err != nil {
		t.Fatal(err)
	}
	token := newToken()
	tb := newTestbed(t, ns)
	tb.SyncTimeout = "60s"
	x := startExample(t, exampleProgram(t, rel, tb), ns)
	x.run("config", "set", "vaultAddress", env.VaultAddr)
	x.run("config", "set", "--secret", "vaultToken", token)
	x.up() // provider mode: installs the chart ESO's controller needs
	if mode == "controller" {
		if _, err := env.StartESO(ctx, harness.ESOOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = env.StopESO() }()
		tb.Sync, tb.StoreWaitForReady = "controller", true
		tb.writeYAML(t, filepath.Join(root, rel), x.dir)
		x.up()
	}
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password})

	if err := vc.Auth().Token().RevokeOrphan(token); err != nil {
		t.Fatal(err)
	}
	refresh := x.refresh()
	refreshOut := x.last
	first := esOutputs(t, x.run("stack", "export"))
	if refresh["update"] != 1 || first["ready"] != false || !strings.Contains(fmt.Sprint(first["message"]), "permission denied") {
		t.Errorf("refresh with the token revoked: %v, state %v; want the ExternalSecret not ready with Vault's reason\n%s", refresh, first, tail(refreshOut, 30))
	}
	if !strings.Contains(refreshOut, "warning:") || !strings.Contains(refreshOut, "permission denied") {
		t.Errorf("refresh does not warn with Vault's reason:\n%s", tail(refreshOut, 30))
	}
	// Still broken, so refresh still shows the drift (Pulumi diffs the
	// refreshed state against the program); but nothing in it may change.
	x.refresh()
	if second := esOutputs(t, x.run("stack", "export")); !maps.EqualFunc(first, second, func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Errorf("a second refresh changed the ExternalSecret's state:\n%v\n%v", first, second)
	}
	t.Logf("%s mode, refresh with the store's token revoked: %v\n%s\nstate: ready=%v reason=%v message=%v",
		mode, refresh, warnings(refreshOut), first["ready"], first["reason"], first["message"])

	start := time.Now()
	out, err := x.pulumi.Run(ctx, x.dir, "up", "--yes", "--skip-preview")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("up succeeded with the store's token revoked:\n%s", out)
	}
	if !strings.Contains(out, "permission denied") {
		t.Errorf("up's failure does not name Vault's error:\n%s", tail(out, 30))
	}
	if took > 45*time.Second {
		t.Errorf("the failing up took %s (sync timeout 60s): it did not fail as soon as ESO reported", took.Round(time.Second))
	}
	t.Logf("%s mode, up with the store's token revoked failed after %s:\n%s", mode, took.Round(100*time.Millisecond), errorBlock(out))
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password})

	x.run("config", "set", "--secret", "vaultToken", newToken())
	x.up()
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": username, "password": password})
	if outputs := stackOutputs(t, x.run("stack", "output", "--json")); outputs["ready"] != true {
		t.Errorf("after a new token and up: ready %v", outputs["ready"])
	}
	x.run("destroy", "--yes", "--skip-preview")
	assertNothingLeft(t, env, ns)
}

// esOutputs are the outputs of the example's ExternalSecret (app) in an
// exported state.
func esOutputs(t *testing.T, export string) map[string]any {
	t.Helper()
	return resourceOutputs(t, export, "esosync:index:ExternalSecret::app")
}

// warnings are the warning lines of a pulumi command's output.
func warnings(out string) string {
	return linesWith(out, "warning:")
}

// errorBlock is the first error of a pulumi command's output, with the
// lines that continue it.
func errorBlock(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, "error:") {
			return strings.Join(lines[i:min(i+16, len(lines))], "\n")
		}
	}
	return ""
}

func linesWith(out, marker string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, marker) {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return strings.Join(lines, "\n")
}
