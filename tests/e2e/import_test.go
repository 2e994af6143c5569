package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestImport adopts existing ESO objects the way users do: a stack that
// did not create them runs `pulumi import` for the ClusterSecretStore and
// the ExternalSecret another stack (the Vault example) made. The inputs
// are rebuilt from the cluster, a refresh right after reports nothing, and
// no value fetched from Vault reaches the adopting stack's state.
func TestImport(t *testing.T) {
	env := harness.Shared(t)
	ns := "e2e-import"
	vc := vaultClient(t, env)
	username, password := randomValue(t, "user"), randomValue(t, "pw")
	if _, err := vc.KVv2("secret").Put(t.Context(), "my-app/config", map[string]any{"username": username, "password": password}); err != nil {
		t.Fatal(err)
	}
	owner := startExample(t, exampleProgram(t, filepath.Join("examples", "yaml", "vault"), newTestbed(t, ns)), ns)
	owner.run("config", "set", "vaultAddress", env.VaultAddr)
	owner.run("config", "set", "--secret", "vaultToken", env.VaultToken)
	owner.up()
	// Deferred, not a Cleanup: the CLI runs under the test's context.
	defer owner.run("destroy", "--yes", "--skip-preview")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte("name: adopt\nruntime: yaml\nresources: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	adopter := startExample(t, dir, ns)
	// The owner destroys the objects; the adopter only forgets them.
	defer adopter.run("stack", "rm", "--force", "--yes")
	for _, r := range [][2]string{{"esosync:index:ClusterSecretStore", "vault"}, {"esosync:index:ExternalSecret", ns + "/app"}} {
		name := r[1][strings.LastIndex(r[1], "/")+1:]
		adopter.run("import", r[0], name, r[1], "--yes", "--protect=false", "--generate-code=false")
	}

	state := adopter.run("stack", "export", "--show-secrets")
	inputs := importedInputs(t, state)
	store, es := inputs["vault"], inputs["app"]
	if vault, _ := store["backend"].(map[string]any)["vault"].(map[string]any); vault == nil || vault["server"] != env.VaultAddr {
		t.Errorf("imported store inputs = %v, want backend.vault.server %s", store, env.VaultAddr)
	}
	if ref, _ := es["store"].(map[string]any); ref["kind"] != "ClusterSecretStore" || ref["name"] != "vault" {
		t.Errorf("imported ExternalSecret store = %v", es["store"])
	}
	if data, _ := es["data"].([]any); len(data) != 2 {
		t.Errorf("imported ExternalSecret data = %v, want the 2 entries", es["data"])
	}
	if target, _ := es["target"].(map[string]any); target["name"] != "app-secret" {
		t.Errorf("imported ExternalSecret target = %v", es["target"])
	}
	if c := adopter.refresh(); len(c.changed()) != 0 {
		t.Errorf("refresh right after import reports changes: %v\n%s", c, adopter.lastTail())
	}
	state = adopter.run("stack", "export", "--show-secrets")
	for _, v := range []string{username, password} {
		if strings.Contains(state, v) {
			t.Error("the adopting stack's state holds a value fetched from Vault")
		}
	}
}

// importedInputs maps each esosync resource's name to its inputs in an
// exported state.
func importedInputs(t *testing.T, export string) map[string]map[string]any {
	t.Helper()
	var deployment struct {
		Deployment struct {
			Resources []struct {
				URN    string         `json:"urn"`
				Type   string         `json:"type"`
				Inputs map[string]any `json:"inputs"`
			} `json:"resources"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(export), &deployment); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, r := range deployment.Deployment.Resources {
		if strings.HasPrefix(r.Type, "esosync:index:") {
			out[r.URN[strings.LastIndex(r.URN, "::")+2:]] = r.Inputs
		}
	}
	if len(out) != 2 {
		t.Fatalf("the adopting stack holds %d esosync resources, want 2", len(out))
	}
	return out
}
