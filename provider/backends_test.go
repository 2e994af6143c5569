package provider_test

import (
	"context"
	"strings"
	"testing"

	"github.com/esosync/pulumi-esosync/tests/escserver"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

func awsStore(env *harness.Env, secretKey string) map[string]any {
	return map[string]any{"backend": map[string]any{"aws": map[string]any{
		"region": env.AWSRegion,
		"auth": map[string]any{"secretRef": map[string]any{
			"accessKeyId":     map[string]any{"value": env.AWSAccessKeyID},
			"secretAccessKey": map[string]any{"value": secretKey},
		}},
	}}}
}

func seedAWS(t *testing.T, env *harness.Env, name, value string) {
	t.Helper()
	if err := env.PutAWSSecret(context.Background(), name, value, nil); err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err names every piece in names and leaks none of secrets.
func wantErr(t *testing.T, what string, err error, names []string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want an error", what)
		return
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%s: error does not name %q: %v", what, n, err)
		}
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("%s: error contains a secret value", what)
		}
	}
}

// TestAWSStoreLifecycle: an AWS Secrets Manager store and a provider-mode
// ExternalSecret against moto, then every way it can fail (wrong keys,
// unknown secret): each a clear error naming store and key, and the
// existing Secret and store credentials left as they were.
func TestAWSStoreLifecycle(t *testing.T) {
	s, env := configured(t)
	ensureESOCRDs(t, env)
	t.Setenv("AWS_SECRETSMANAGER_ENDPOINT", env.AWSEndpoint)
	t.Setenv("AWS_STS_ENDPOINT", env.AWSEndpoint)
	ns := namespace(t, env, "lc-aws")
	seedAWS(t, env, "lc-aws/app", `{"user":"aws-user-1","pass":"aws-pass-1"}`)

	store := newResource(t, s, "ClusterSecretStore", "lc-aws", awsStore(env, env.AWSSecretAccessKey))
	store.mustCreate()
	defer store.delete()
	es := newResource(t, s, "ExternalSecret", "aws-app", providerES(ns, "ClusterSecretStore", "lc-aws", "aws-app",
		[2]string{"user", "lc-aws/app#user"}, [2]string{"pass", "lc-aws/app#pass"}))
	es.mustCreate()
	defer es.delete()
	before := getSecret(t, env, ns, "aws-app")
	wantData(t, before, map[string]string{"user": "aws-user-1", "pass": "aws-pass-1"})

	// Unknown secret: the update fails naming store and key; the Secret stays.
	err := es.update(props(providerES(ns, "ClusterSecretStore", "lc-aws", "aws-app", [2]string{"user", "lc-aws/no-such-secret#user"})))
	wantErr(t, "unknown secret", err, []string{"ClusterSecretStore lc-aws", "lc-aws/no-such-secret"}, "aws-pass-1")
	if after := getSecret(t, env, ns, "aws-app"); after.ResourceVersion != before.ResourceVersion {
		t.Error("a failed sync rewrote the Secret")
	}

	// Wrong keys on a new store: rejected by AWS at create, nothing left.
	bad := newResource(t, s, "ClusterSecretStore", "lc-aws-bad", awsStore(env, "wrong-secret-key-0123456789"))
	wantErr(t, "wrong keys on create", bad.create(), []string{"lc-aws-bad"}, "wrong-secret-key-0123456789")
	if !secretGone(t, env, "default", "lc-aws-bad-esosync-credentials") {
		t.Error("failed create left the managed credentials Secret")
	}
	// Wrong keys on the working store: the update fails and the store keeps
	// its working credentials, so the ExternalSecret still syncs.
	err = store.update(props(awsStore(env, "wrong-secret-key-0123456789")))
	wantErr(t, "wrong keys on update", err, []string{"lc-aws"}, "wrong-secret-key-0123456789")
	creds := getSecret(t, env, "default", "lc-aws-esosync-credentials")
	if string(creds.Data["secretAccessKey"]) != env.AWSSecretAccessKey {
		t.Error("a failed store update left the wrong credentials in place")
	}
	seedAWS(t, env, "lc-aws/app", `{"user":"aws-user-1","pass":"aws-pass-2"}`)
	es.mustUpdate(props(providerES(ns, "ClusterSecretStore", "lc-aws", "aws-app",
		[2]string{"user", "lc-aws/app#user"}, [2]string{"pass", "lc-aws/app#pass"})))
	wantData(t, getSecret(t, env, ns, "aws-app"), map[string]string{"user": "aws-user-1", "pass": "aws-pass-2"})
}

// TestESCStoreLifecycle: an ESC store and a Vault store whose token comes
// from ESC, against the local ESC endpoint; a rejected ESC token and a
// missing ESC path each fail clearly, leaving the existing Secret alone.
func TestESCStoreLifecycle(t *testing.T) {
	env := harness.Shared(t)
	ensureESOCRDs(t, env)
	const token = "pul-lc-token"
	srv, err := escserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddToken(token)
	if err := srv.SetEnvironment("organization", "lc", "app", "values:\n  app:\n    hello: esc-world\n    secret:\n      fn::secret: esc-hidden-1\n"); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetEnvironment("organization", "lc", "creds", "values:\n  vault:\n    token:\n      fn::secret: "+env.VaultToken+"\n"); err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	if err := s.Configure(config(map[string]string{"kubeconfig": env.Kubeconfig, "escApiUrl": srv.URL(), "escAccessToken": token})); err != nil {
		t.Fatal(err)
	}
	ns := namespace(t, env, "lc-esc")
	escStore := func(tok string) map[string]any {
		return map[string]any{"backend": map[string]any{"esc": map[string]any{
			"organization": "organization", "project": "lc", "environment": "app", "apiUrl": srv.URL(),
			"auth": map[string]any{"accessToken": map[string]any{"value": tok}},
		}}}
	}
	store := newResource(t, s, "ClusterSecretStore", "lc-esc", escStore(token))
	store.mustCreate()
	defer store.delete()
	extract := func(key string) map[string]any {
		return map[string]any{"namespace": ns, "sync": "provider", "store": map[string]any{"kind": "ClusterSecretStore", "name": "lc-esc"},
			"target": map[string]any{"name": "esc-app"}, "dataFrom": []any{map[string]any{"extract": map[string]any{"key": key}}}}
	}
	es := newResource(t, s, "ExternalSecret", "esc-app", extract("app"))
	es.mustCreate()
	defer es.delete()
	before := getSecret(t, env, ns, "esc-app")
	wantData(t, before, map[string]string{"hello": "esc-world", "secret": "esc-hidden-1"})

	// A path the environment does not have.
	err = es.update(props(extract("app.missing")))
	wantErr(t, "missing ESC path", err, []string{"ClusterSecretStore lc-esc", "app.missing"}, "esc-hidden-1")
	if after := getSecret(t, env, ns, "esc-app"); after.ResourceVersion != before.ResourceVersion {
		t.Error("a failed sync rewrote the Secret")
	}

	// A token the ESC API rejects.
	bad := newResource(t, s, "ClusterSecretStore", "lc-esc-bad", escStore("pul-revoked-token"))
	wantErr(t, "rejected ESC token", bad.create(), []string{"lc-esc-bad"}, "pul-revoked-token")

	// A Vault store whose token comes from ESC: works, and a missing path
	// fails at create naming the field and the path.
	vaultESC := func(path string) map[string]any {
		return tokenStore(env, map[string]any{"esc": map[string]any{"environment": "lc/creds", "path": path}})
	}
	vs := newResource(t, s, "ClusterSecretStore", "lc-vault-esc", vaultESC("vault.token"))
	vs.mustCreate()
	defer vs.delete()
	if string(getSecret(t, env, "default", "lc-vault-esc-esosync-credentials").Data["token"]) != env.VaultToken {
		t.Error("the ESC-sourced token did not reach the credentials Secret")
	}
	if vs.str("credentialSourcesHash") == "" {
		t.Error("credentialSourcesHash is empty for an ESC-sourced credential")
	}
	missing := newResource(t, s, "ClusterSecretStore", "lc-vault-esc-missing", vaultESC("vault.nope"))
	wantErr(t, "missing ESC credential path", missing.create(), []string{"backend.vault.auth.token.esc", "vault.nope"}, env.VaultToken)
}
