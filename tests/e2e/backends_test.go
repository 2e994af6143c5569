package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/esosync/pulumi-esosync/tests/escserver"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

// putAWS seeds moto through the real Secrets Manager client (harness.PutAWSSecret).
func putAWS(t *testing.T, env *harness.Env, name, value string) {
	t.Helper()
	if err := env.PutAWSSecret(t.Context(), name, value, nil); err != nil {
		t.Fatal(err)
	}
}

// startESC runs the local ESC endpoint for one test, with token accepted.
func startESC(t *testing.T, token string) *escserver.Server {
	t.Helper()
	srv, err := escserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	srv.AddToken(token)
	return srv
}

// vaultReads counts Vault KV reads (GET /v1/<mount>/data/...) by path.
func vaultReads(r *http.Request) string {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/data/") {
		return "vault.read"
	}
	return ""
}
