package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestESCExample runs examples/yaml/esc through the pulumi CLI against the
// local ESC endpoint and Vault: an ESC store, and a Vault store whose token
// comes from an ESC environment. The token is then rotated in ESC and the
// old one revoked in Vault: refresh must show the store drifted, and up
// must roll the new token into the cluster so its ExternalSecrets sync
// again. Nothing fetched (ESC values, the ESC-sourced tokens, Vault values)
// may appear in state, outputs or logs.
func TestESCExample(t *testing.T) {
	runESCScenario(t, filepath.Join("examples", "yaml", "esc"), "e2e-esc")
}

// TestESCExampleTypeScript runs the same scenario with examples/ts/esc.
func TestESCExampleTypeScript(t *testing.T) {
	runESCScenario(t, filepath.Join("examples", "ts", "esc"), "e2e-esc-ts")
}

// runESCScenario drives the ESC example program rel (relative to the
// repository root), with the test bed's overrides, through the pulumi CLI
// with its ExternalSecrets in namespace ns.
func runESCScenario(t *testing.T, rel, ns string) {
	env := harness.Shared(t)
	ctx := t.Context()
	vc := vaultClient(t, env)
	newToken := func() string {
		t.Helper()
		s, err := vc.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"root"}, TTL: "30m"})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken
	}
	putDB := func(pass string) {
		t.Helper()
		if _, err := vc.KVv2("secret").Put(ctx, "my-app/db", map[string]any{"user": "app", "pass": pass}); err != nil {
			t.Fatal(err)
		}
	}
	token1, pass1 := newToken(), randomValue(t, "db-pass")
	putDB(pass1)

	const escToken = "pul-e2e-esc-token"
	srv := startESC(t, escToken)
	hello, helloSecret := randomValue(t, "hello"), randomValue(t, "hello-secret")
	if err := srv.SetEnvironment("organization", "esosync-demo", "app", fmt.Sprintf(
		"values:\n  app:\n    hello: %s\n    hello-secret:\n      fn::secret: %s\n", hello, helloSecret)); err != nil {
		t.Fatal(err)
	}
	setVaultCreds := func(token string) {
		t.Helper()
		if err := srv.SetEnvironment("organization", "esosync-demo", "vault-creds", fmt.Sprintf(
			"values:\n  vault:\n    token:\n      fn::secret: %s\n", token)); err != nil {
			t.Fatal(err)
		}
	}
	setVaultCreds(token1)
	values := []string{hello, helloSecret, token1, pass1}

	x := startExample(t, exampleProgram(t, rel, newTestbed(t, ns)), ns)
	run := x.run
	run("config", "set", "escApiUrl", srv.URL())
	run("config", "set", "--secret", "escToken", escToken)
	run("config", "set", "vaultAddress", env.VaultAddr)

	x.up(verbose...)
	assertSecret(t, env, ns, "app-config", map[string]string{"hello": hello, "hello-secret": helloSecret})
	assertSecret(t, env, ns, "db-secret", map[string]string{"user": "app", "pass": pass1})
	assertCredentials(t, env, "vault", token1)
	hash1 := storeSourcesHash(t, run("stack", "export", "--show-secrets"), "vault")
	x.twoRefreshes()

	// Rotation: a new token in ESC, the old one revoked, and a new value
	// that only the new token can now bring in.
	token2, pass2 := newToken(), randomValue(t, "db-pass2")
	values = append(values, token2, pass2)
	setVaultCreds(token2)
	if err := vc.Auth().Token().RevokeOrphan(token1); err != nil {
		t.Fatal(err)
	}
	putDB(pass2)
	refresh, refreshOut := x.refresh(), x.last
	hash2 := storeSourcesHash(t, run("stack", "export", "--show-secrets"), "vault")
	if hash2 == hash1 || hash2 == "" {
		t.Errorf("refresh did not record the rotated ESC credential (credentialSourcesHash %q -> %q)", hash1, hash2)
	}
	t.Logf("refresh after the rotation: %v", refresh)
	if refresh["update"] == 0 {
		t.Errorf("refresh after the rotation does not show the store drifted: %v\n%s", refresh, refreshOut)
	}
	assertCredentials(t, env, "vault", token1) // refresh changes nothing in the cluster
	up := x.up()
	t.Logf("up after the rotation: %v", up)
	if up["update"] != 2 {
		t.Errorf("up after the rotation did not update the store and its ExternalSecret: %v\n%s", up, tail(x.last, 30))
	}
	assertCredentials(t, env, "vault", token2)
	assertSecret(t, env, ns, "db-secret", map[string]string{"user": "app", "pass": pass2})
	if c := x.up(); c["same"] != 7 || len(c.changed()) != 0 {
		t.Errorf("a second up is not a no-op: %v\n%s", c, x.lastTail())
	}

	state := run("stack", "export", "--show-secrets")
	shown := run("stack", "output", "--json", "--show-secrets")
	for _, v := range values {
		for name, text := range map[string]string{"exported state": state, "stack outputs": shown, "CLI and provider logs": x.logs.String()} {
			if strings.Contains(text, v) {
				t.Errorf("%s contain a value fetched from ESC or Vault", name)
			}
		}
	}
	run("destroy", "--yes", "--skip-preview")
	assertNothingLeft(t, env, ns)
}

// assertCredentials checks the managed credentials Secret of a
// ClusterSecretStore (in the default namespace) holds token.
func assertCredentials(t *testing.T, env *harness.Env, store, token string) {
	t.Helper()
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	s, err := clients.CoreV1().Secrets("default").Get(t.Context(), store+"-esosync-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("credentials Secret of %s: %v", store, err)
	}
	if string(s.Data["token"]) != token {
		t.Errorf("credentials Secret of %s does not hold the expected token", store)
	}
}

// storeSourcesHash returns the credentialSourcesHash output of the resource
// named name in an exported (secrets shown) deployment.
func storeSourcesHash(t *testing.T, export, name string) string {
	t.Helper()
	switch v := resourceOutputs(t, export, "::"+name)["credentialSourcesHash"].(type) {
	case string:
		return v
	case map[string]any: // a secret, shown: {"<sig>": ..., "plaintext": "\"hmac-sha256:...\""}
		var plain string
		if p, ok := v["plaintext"].(string); ok && json.Unmarshal([]byte(p), &plain) == nil {
			return plain
		}
	}
	return ""
}

// resourceOutputs are the outputs of the resource whose URN ends with
// suffix (a "::name" or a "$type::name" part) in an exported deployment.
func resourceOutputs(t *testing.T, export, suffix string) map[string]any {
	t.Helper()
	var d struct {
		Deployment struct {
			Resources []struct {
				URN     string         `json:"urn"`
				Outputs map[string]any `json:"outputs"`
			} `json:"resources"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal([]byte(export), &d); err != nil {
		t.Fatalf("stack export: %v", err)
	}
	for _, r := range d.Deployment.Resources {
		if strings.HasSuffix(r.URN, suffix) {
			return r.Outputs
		}
	}
	t.Fatalf("no resource %s in the state", suffix)
	return nil
}
