package provider_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	vaultapi "github.com/hashicorp/vault/api"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

func tokenStore(env *harness.Env, token map[string]any) map[string]any {
	return map[string]any{"backend": map[string]any{"vault": map[string]any{
		"server": env.VaultAddr, "path": "secret", "version": "v2", "auth": map[string]any{"token": token},
	}}}
}

func providerES(ns, storeKind, storeName, target string, data ...[2]string) map[string]any {
	var entries []any
	for _, d := range data {
		key, prop, _ := strings.Cut(d[1], "#")
		entries = append(entries, map[string]any{"secretKey": d[0], "remoteRef": map[string]any{"key": key, "property": prop}})
	}
	return map[string]any{
		"namespace": ns, "sync": "provider",
		"store":  map[string]any{"kind": storeKind, "name": storeName},
		"target": map[string]any{"name": target},
		"data":   entries,
	}
}

func getSecret(t *testing.T, env *harness.Env, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := clientset(t, env).CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Secret %s/%s: %v", ns, name, err)
	}
	return s
}

func secretGone(t *testing.T, env *harness.Env, ns, name string) bool {
	t.Helper()
	_, err := clientset(t, env).CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

func wantData(t *testing.T, s *corev1.Secret, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for k, v := range s.Data {
		got[k] = string(v)
	}
	if !maps.Equal(got, want) {
		t.Errorf("Secret %s/%s data keys %v do not hold the expected values", s.Namespace, s.Name, sortedKeys(got))
	}
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// TestSecretStoreLifecycle: a namespaced store with a `value` token: create
// writes the managed credentials and the CR, refresh sees hand edits of the
// credentials, update heals them, delete removes both.
func TestSecretStoreLifecycle(t *testing.T) {
	s, env := configured(t)
	ensureESOCRDs(t, env)
	ns := namespace(t, env, "lc-store")
	ctx := context.Background()
	store := newResource(t, s, "SecretStore", "vault", map[string]any{"namespace": ns, "backend": tokenStore(env, map[string]any{"value": env.VaultToken})["backend"]})
	// As the engine sends it: the token is a Pulumi secret.
	store.inputs = store.inputs.Set("backend", store.inputs.Get("backend").WithSecret(true))
	store.mustCreate()
	if !store.state.Get("backend").HasSecrets() {
		t.Error("the state's backend lost the secretness of the token given as a Pulumi secret")
	}
	if store.read(); !store.state.Get("backend").HasSecrets() {
		t.Error("refresh wrote the token given as a Pulumi secret into the state's backend in plain text")
	}
	creds := getSecret(t, env, ns, "vault-esosync-credentials")
	if string(creds.Data["token"]) != env.VaultToken || creds.Labels["app.kubernetes.io/managed-by"] != "esosync" {
		t.Errorf("managed credentials Secret is not as expected: labels %v keys %v", creds.Labels, len(creds.Data))
	}
	ref := store.state.Get("ref").AsMap()
	if ref.Get("kind").AsString() != "SecretStore" || ref.Get("name").AsString() != "vault" || ref.Get("namespace").AsString() != ns {
		t.Errorf("ref = %v", ref)
	}
	if d := store.diff(store.inputs); d.HasChanges {
		t.Errorf("diff without changes: %+v", d.DetailedDiff)
	}

	// Drift: someone edits the managed credentials.
	creds.Data["token"] = []byte("tampered")
	if _, err := clientset(t, env).CoreV1().Secrets(ns).Update(ctx, creds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if id := store.read(); id == "" {
		t.Fatal("Read lost the store")
	}
	if d := store.diff(store.inputs); !d.HasChanges {
		t.Error("refresh did not surface the edited credentials as a change")
	}
	store.mustUpdate(store.inputs)
	if got := string(getSecret(t, env, ns, "vault-esosync-credentials").Data["token"]); got != env.VaultToken {
		t.Error("update did not heal the credentials")
	}

	// Update: switch to a secretRef; the managed credentials go away.
	if _, err := clientset(t, env).CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "my-vault-token", Namespace: ns},
		Data:       map[string][]byte{"token": []byte(env.VaultToken)},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	next := props(map[string]any{"namespace": ns, "waitForReady": false, "backend": tokenStore(env, map[string]any{"secretRef": map[string]any{"name": "my-vault-token", "key": "token"}})["backend"]})
	if d := store.diff(next); !d.HasChanges {
		t.Fatal("diff missed the auth change")
	}
	store.mustUpdate(next)
	if !secretGone(t, env, ns, "vault-esosync-credentials") {
		t.Error("managed credentials Secret left behind after switching to secretRef")
	}

	store.delete()
	if store.read() != "" {
		t.Error("Read after delete still finds the store")
	}
	if secretGone(t, env, ns, "my-vault-token") {
		t.Error("delete removed a Secret esosync does not own")
	}
}

// TestStoreValidationFails: a wrong token fails create with Vault's reason,
// leaves nothing behind, and never echoes the token.
func TestStoreValidationFails(t *testing.T) {
	s, env := configured(t)
	ensureESOCRDs(t, env)
	const bad = "hvs.not-a-real-token-0123456789"
	store := newResource(t, s, "ClusterSecretStore", "bad-token", tokenStore(env, map[string]any{"value": bad}))
	err := store.create()
	if err == nil {
		t.Fatal("create with a bad token succeeded")
	}
	if !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("error does not carry Vault's reason: %v", err)
	}
	if strings.Contains(err.Error(), bad) {
		t.Error("error contains the token")
	}
	if !secretGone(t, env, "default", "bad-token-esosync-credentials") {
		t.Error("failed create left the managed credentials Secret")
	}
}

// TestExternalSecretLifecycle: sync: provider, against the real Vault and
// apiserver: create, backend change seen at refresh and healed by update,
// hand edit and deletion of the Secret seen and healed, delete.
func TestExternalSecretLifecycle(t *testing.T) {
	s, env := configured(t)
	ensureESOCRDs(t, env)
	ns := namespace(t, env, "lc-es")
	v := rootVault(t, env)
	putKV(t, v, "lc/app", map[string]any{"username": "admin", "password": "s3cr3t-1", "nested": map[string]any{"port": 5432}})

	store := newResource(t, s, "ClusterSecretStore", "lc-vault", tokenStore(env, map[string]any{"value": env.VaultToken}))
	store.mustCreate()
	defer store.delete()
	es := newResource(t, s, "ExternalSecret", "app", providerES(ns, "ClusterSecretStore", "lc-vault", "app-secret",
		[2]string{"username", "lc/app#username"}, [2]string{"password", "lc/app#password"}, [2]string{"port", "lc/app#nested.port"}))
	es.mustCreate()
	secret := getSecret(t, env, ns, "app-secret")
	wantData(t, secret, map[string]string{"username": "admin", "password": "s3cr3t-1", "port": "5432"})
	if owner := metav1.GetControllerOf(secret); owner == nil || owner.Kind != "ExternalSecret" || owner.Name != "app" {
		t.Errorf("Secret is not controlled by the ExternalSecret: %v", secret.OwnerReferences)
	}
	if !es.boolean("ready") || es.str("reason") != "SecretSynced" || !strings.HasPrefix(es.str("dataHash"), "hmac-sha256:") {
		t.Errorf("outputs: ready=%v reason=%q dataHash=%q", es.boolean("ready"), es.str("reason"), es.str("dataHash"))
	}
	if got := es.state.Get("remoteVersions").AsMap().Get("lc/app"); !got.IsString() || got.AsString() != "1" {
		t.Errorf("remoteVersions = %v", es.state.Get("remoteVersions"))
	}
	if es.read() == "" || !es.boolean("ready") {
		t.Fatalf("refresh right after create is not clean: %s %s", es.str("reason"), es.str("message"))
	}
	if d := es.diff(es.inputs); d.HasChanges {
		t.Errorf("diff without changes: %+v", d.DetailedDiff)
	}
	hash1 := es.str("dataHash")

	// Backend change.
	putKV(t, v, "lc/app", map[string]any{"username": "admin", "password": "s3cr3t-2", "nested": map[string]any{"port": 5432}})
	es.read()
	if es.boolean("ready") || es.str("reason") != "OutOfSync" || !strings.Contains(es.str("message"), "version 1 -> 2") {
		t.Errorf("refresh after a Vault change: ready=%v reason=%q message=%q", es.boolean("ready"), es.str("reason"), es.str("message"))
	}
	if d := es.diff(es.inputs); !d.HasChanges {
		t.Error("diff does not ask for an update after drift")
	}
	es.mustUpdate(es.inputs)
	wantData(t, getSecret(t, env, ns, "app-secret"), map[string]string{"username": "admin", "password": "s3cr3t-2", "port": "5432"})
	if es.str("dataHash") == hash1 || !es.boolean("ready") {
		t.Error("update did not report the new content")
	}

	// Hand edit of the Secret.
	secret = getSecret(t, env, ns, "app-secret")
	secret.Data["password"] = []byte("by-hand")
	if _, err := clientset(t, env).CoreV1().Secrets(ns).Update(context.Background(), secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	es.read()
	if es.boolean("ready") || !strings.Contains(es.str("message"), "edited out of band") {
		t.Errorf("refresh after a hand edit: ready=%v message=%q", es.boolean("ready"), es.str("message"))
	}
	es.mustUpdate(es.inputs)
	wantData(t, getSecret(t, env, ns, "app-secret"), map[string]string{"username": "admin", "password": "s3cr3t-2", "port": "5432"})

	// Secret deleted by hand.
	if err := clientset(t, env).CoreV1().Secrets(ns).Delete(context.Background(), "app-secret", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	es.read()
	if es.boolean("ready") || es.str("reason") != "SecretMissing" {
		t.Errorf("refresh after deleting the Secret: ready=%v reason=%q", es.boolean("ready"), es.str("reason"))
	}
	es.mustUpdate(es.inputs)
	wantData(t, getSecret(t, env, ns, "app-secret"), map[string]string{"username": "admin", "password": "s3cr3t-2", "port": "5432"})

	// Input change: drop a key.
	next := es.inputs.Set("data", property.New(property.NewArray([]property.Value{es.inputs.Get("data").AsArray().Get(1)})))
	if d := es.diff(next); !d.HasChanges {
		t.Fatal("diff missed the data change")
	}
	es.mustUpdate(next)
	wantData(t, getSecret(t, env, ns, "app-secret"), map[string]string{"password": "s3cr3t-2"})

	es.delete()
	if !secretGone(t, env, ns, "app-secret") {
		t.Error("delete left the owned target Secret")
	}
	if es.read() != "" {
		t.Error("Read after delete still finds the ExternalSecret")
	}
}

// TestExternalSecretRefusesForeignSecret: an existing Secret esosync does not
// own is never taken over (Owner) but can be merged into (Merge).
func TestExternalSecretRefusesForeignSecret(t *testing.T) {
	s, env := configured(t)
	ensureESOCRDs(t, env)
	ns := namespace(t, env, "lc-foreign")
	putKV(t, rootVault(t, env), "lc/foreign", map[string]any{"token": "from-vault"})
	if _, err := clientset(t, env).CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ns},
		Data:       map[string][]byte{"mine": []byte("keep me")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	store := newResource(t, s, "SecretStore", "vault", map[string]any{"namespace": ns, "backend": tokenStore(env, map[string]any{"value": env.VaultToken})["backend"]})
	store.mustCreate()
	defer store.delete()

	es := newResource(t, s, "ExternalSecret", "grab", providerES(ns, "SecretStore", "vault", "taken", [2]string{"token", "lc/foreign#token"}))
	err := es.create()
	if err == nil || !strings.Contains(err.Error(), "not managed by this ExternalSecret") || !strings.Contains(err.Error(), "target.name") {
		t.Fatalf("create over a foreign Secret: %v", err)
	}
	wantData(t, getSecret(t, env, ns, "taken"), map[string]string{"mine": "keep me"})

	in := providerES(ns, "SecretStore", "vault", "taken", [2]string{"token", "lc/foreign#token"})
	in["target"] = map[string]any{"name": "taken", "creationPolicy": "Merge"}
	merge := newResource(t, s, "ExternalSecret", "merge", in)
	merge.mustCreate()
	wantData(t, getSecret(t, env, ns, "taken"), map[string]string{"mine": "keep me", "token": "from-vault"})
	merge.delete()
	if secretGone(t, env, ns, "taken") {
		t.Error("deleting a Merge ExternalSecret deleted the Secret it merged into")
	}
}

// TestVaultDownKeepsSecret: with Vault unreachable, update fails with the
// connection error and the target Secret stays byte-identical; refresh keeps
// the state.
func TestVaultDownKeepsSecret(t *testing.T) {
	s, env := configured(t)
	ensureESOCRDs(t, env)
	ns := namespace(t, env, "lc-down")
	ctx := context.Background()
	own, err := harness.Start(ctx, harness.Options{Vault: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = own.Stop() })
	putKV(t, rootVault(t, own), "down/app", map[string]any{"password": "before"})
	storeIn := map[string]any{"namespace": ns, "backend": map[string]any{"vault": map[string]any{
		"server": own.VaultAddr, "auth": map[string]any{"token": map[string]any{"value": own.VaultToken}}}}}
	store := newResource(t, s, "SecretStore", "vault", storeIn)
	store.mustCreate()
	es := newResource(t, s, "ExternalSecret", "app", providerES(ns, "SecretStore", "vault", "down-secret", [2]string{"password", "down/app#password"}))
	es.mustCreate()
	before := getSecret(t, env, ns, "down-secret")

	if err := own.Stop(); err != nil {
		t.Fatal(err)
	}
	// Refresh cannot read Vault: not ready, with the cause, and the same
	// state from a second refresh (scheduled drift detection must not see
	// a change every run).
	es.read()
	first := [3]string{fmt.Sprint(es.boolean("ready")), es.str("reason"), es.str("message")}
	if es.boolean("ready") || es.str("reason") != "SecretSyncedError" || !strings.Contains(es.str("message"), "connection refused") {
		t.Errorf("refresh with Vault down: ready %v, %s: %s; want not ready with the cause", es.boolean("ready"), es.str("reason"), es.str("message"))
	}
	es.read()
	if again := [3]string{fmt.Sprint(es.boolean("ready")), es.str("reason"), es.str("message")}; again != first {
		t.Errorf("a second refresh with Vault down reports %v, the first %v", again, first)
	}
	next := es.inputs.Set("refreshInterval", property.New("30m"))
	err = es.update(next)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("update with Vault down: %v", err)
	}
	after := getSecret(t, env, ns, "down-secret")
	if after.ResourceVersion != before.ResourceVersion || string(after.Data["password"]) != "before" {
		t.Error("the target Secret changed although Vault was down")
	}
	es.delete()
	store.delete()
}

// TestVaultAuthMethods syncs through a ClusterSecretStore with each Vault
// auth method, set up for real on the dev server; Kubernetes auth has Vault
// validate a service account token through the apiserver's TokenReview.
func TestVaultAuthMethods(t *testing.T) {
	s, env := configured(t)
	ensureESOCRDs(t, env)
	ns := namespace(t, env, "lc-auth")
	ctx := context.Background()
	v := rootVault(t, env)
	putKV(t, v, "auth/app", map[string]any{"password": "auth-value"})
	if err := v.Sys().PutPolicy("esosync-read", `path "secret/data/auth/*" { capabilities = ["read"] }
path "secret/metadata/auth/*" { capabilities = ["read", "list"] }`); err != nil {
		t.Fatal(err)
	}
	enable := func(path, typ string) {
		if err := v.Sys().EnableAuthWithOptions(path, &vaultapi.EnableAuthOptions{Type: typ}); err != nil && !strings.Contains(err.Error(), "already in use") {
			t.Fatal(err)
		}
	}
	write := func(path string, data map[string]any) *vaultapi.Secret {
		t.Helper()
		sec, err := v.Logical().Write(path, data)
		if err != nil {
			t.Fatalf("vault write %s: %v", path, err)
		}
		return sec
	}
	// AppRole.
	enable("approle", "approle")
	write("auth/approle/role/esosync", map[string]any{"token_policies": "esosync-read"})
	roleID, err := v.Logical().Read("auth/approle/role/esosync/role-id")
	if err != nil {
		t.Fatal(err)
	}
	secretID := write("auth/approle/role/esosync/secret-id", nil)
	// userpass.
	enable("userpass", "userpass")
	write("auth/userpass/users/esosync", map[string]any{"password": "userpass-pw", "token_policies": "esosync-read"})
	// Kubernetes: Vault reviews the presented token with the apiserver.
	raw, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ca := raw.Clusters[raw.Contexts[raw.CurrentContext].Cluster].CertificateAuthorityData
	enable("kubernetes", "kubernetes")
	write("auth/kubernetes/config", map[string]any{"kubernetes_host": env.APIServer, "kubernetes_ca_cert": string(ca)})
	write("auth/kubernetes/role/esosync", map[string]any{"bound_service_account_names": "vault-auth",
		"bound_service_account_namespaces": ns, "token_policies": "esosync-read"})
	cs := clientset(t, env)
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "vault-auth"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "esosync-vault-auth-delegator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "vault-auth", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		auth map[string]any
	}{
		{"token", map[string]any{"token": map[string]any{"value": env.VaultToken}}},
		{"approle", map[string]any{"appRole": map[string]any{
			"roleId":   map[string]any{"value": fmt.Sprint(roleID.Data["role_id"])},
			"secretId": map[string]any{"value": fmt.Sprint(secretID.Data["secret_id"])}}}},
		{"userpass", map[string]any{"userPass": map[string]any{"username": "esosync", "password": map[string]any{"value": "userpass-pw"}}}},
		{"kubernetes", map[string]any{"kubernetes": map[string]any{"role": "esosync",
			"serviceAccountRef": map[string]any{"name": "vault-auth", "namespace": ns}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newResource(t, s, "ClusterSecretStore", "auth-"+tt.name, map[string]any{"credentialsNamespace": ns,
				"backend": map[string]any{"vault": map[string]any{"server": env.VaultAddr, "path": "secret", "version": "v2", "auth": tt.auth}}})
			store.mustCreate()
			defer store.delete()
			target := "auth-" + tt.name
			es := newResource(t, s, "ExternalSecret", "auth-"+tt.name, providerES(ns, "ClusterSecretStore", "auth-"+tt.name, target,
				[2]string{"password", "auth/app#password"}))
			es.mustCreate()
			wantData(t, getSecret(t, env, ns, target), map[string]string{"password": "auth-value"})
			es.delete()
		})
	}

	// A policy that does not reach the store's mount fails validation.
	t.Run("no access to the mount", func(t *testing.T) {
		if err := v.Sys().PutPolicy("esosync-none", `path "cubbyhole/*" { capabilities = ["read"] }`); err != nil {
			t.Fatal(err)
		}
		tok, err := v.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"esosync-none"}, NoDefaultPolicy: false})
		if err != nil {
			t.Fatal(err)
		}
		store := newResource(t, s, "ClusterSecretStore", "auth-denied", map[string]any{"credentialsNamespace": ns,
			"backend": map[string]any{"vault": map[string]any{"server": env.VaultAddr, "path": "secret", "version": "v2",
				"auth": map[string]any{"token": map[string]any{"value": tok.Auth.ClientToken}}}}})
		err = store.create()
		if err == nil || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("create with a token that cannot reach the mount: %v", err)
		}
		if strings.Contains(err.Error(), tok.Auth.ClientToken) {
			t.Error("error contains the token")
		}
	})
}

// TestClusterSecretStoreLifecycle: a store CR edited out of band shows as
// drift at refresh and is healed by update; an input change updates it;
// delete removes the CR and its managed credentials.
func TestClusterSecretStoreLifecycle(t *testing.T) {
	s, env := configured(t)
	ensureESOCRDs(t, env)
	ns := namespace(t, env, "lc-css")
	ctx := context.Background()
	store := newResource(t, s, "ClusterSecretStore", "lc-css", map[string]any{"credentialsNamespace": ns,
		"backend": tokenStore(env, map[string]any{"value": env.VaultToken})["backend"]})
	store.mustCreate()
	if got := string(getSecret(t, env, ns, "lc-css-esosync-credentials").Data["token"]); got != env.VaultToken {
		t.Error("managed credentials do not hold the token")
	}
	live := &esv1.ClusterSecretStore{}
	c := crClient(t, env)
	if err := c.Get(ctx, client.ObjectKey{Name: "lc-css"}, live); err != nil {
		t.Fatal(err)
	}
	if live.Spec.Provider.Vault.Auth.TokenSecretRef == nil || *live.Spec.Provider.Vault.Auth.TokenSecretRef.Namespace != ns {
		t.Errorf("store does not point at the managed credentials: %+v", live.Spec.Provider.Vault.Auth)
	}

	// Someone points the store at another server.
	live.Spec.Provider.Vault.Server = "http://127.0.0.1:1"
	if err := c.Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	if store.read() == "" {
		t.Fatal("Read lost the store")
	}
	if d := store.diff(store.inputs); !d.HasChanges {
		t.Error("refresh did not surface the edited store spec")
	}
	store.mustUpdate(store.inputs)
	if err := c.Get(ctx, client.ObjectKey{Name: "lc-css"}, live); err != nil {
		t.Fatal(err)
	}
	if live.Spec.Provider.Vault.Server != env.VaultAddr {
		t.Errorf("update did not heal the server: %s", live.Spec.Provider.Vault.Server)
	}
	if d := store.diff(store.inputs); d.HasChanges {
		t.Errorf("diff after heal: %+v", d.DetailedDiff)
	}

	// Input change: KV v1 mount path is validated against Vault and rejected.
	next := store.inputs.Set("backend", property.New(props(map[string]any{"vault": map[string]any{
		"server": env.VaultAddr, "path": "secret", "version": "v1", "auth": map[string]any{"token": map[string]any{"value": env.VaultToken}}}})))
	if err := store.update(next); err == nil || !strings.Contains(err.Error(), "v1") {
		t.Errorf("update to a wrong KV version: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "lc-css"}, live); err != nil {
		t.Fatal(err)
	}
	if live.Spec.Provider.Vault.Version != "v2" {
		t.Error("a rejected update changed the store")
	}

	store.delete()
	if store.read() != "" {
		t.Error("Read after delete still finds the store")
	}
	if !secretGone(t, env, ns, "lc-css-esosync-credentials") {
		t.Error("delete left the managed credentials")
	}
}

func crClient(t *testing.T, env *harness.Env) client.Client {
	t.Helper()
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStoreRefChecked: an ExternalSecret naming a store of the other kind,
// or one that neither exists nor is declared by the program, fails Check
// (so preview) at store.kind or store.name; a store the program declares
// passes before it exists.
func TestStoreRefChecked(t *testing.T) {
	s, env := configured(t)
	ensureESOCRDs(t, env)
	ns := namespace(t, env, "lc-storeref")
	cluster := newResource(t, s, "ClusterSecretStore", "storeref-cluster", tokenStore(env, map[string]any{"value": env.VaultToken}))
	cluster.mustCreate()
	defer cluster.delete()
	checkES := func(kind, name string) []p.CheckFailure {
		t.Helper()
		in := props(providerES(ns, kind, name, "storeref", [2]string{"k", "x/y#k"}))
		resp, err := s.Check(p.CheckRequest{Urn: urn("ExternalSecret", "storeref-"+name), Inputs: in})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Failures
	}
	for _, tc := range []struct {
		name, kind, store string
		field, says       string
	}{
		{"other kind", "SecretStore", "storeref-cluster", "store.kind", `set store.kind to "ClusterSecretStore"`},
		{"missing", "ClusterSecretStore", "storeref-nowhere", "store.name", "the program declares none"},
		{"missing namespaced", "SecretStore", "storeref-nowhere", "store.name", `in namespace "` + ns + `"`},
		{"exists", "ClusterSecretStore", "storeref-cluster", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failures := checkES(tc.kind, tc.store)
			switch {
			case tc.field == "" && len(failures) > 0:
				t.Errorf("failures for an existing store: %+v", failures)
			case tc.field != "" && (len(failures) != 1 || failures[0].Property != tc.field || !strings.Contains(failures[0].Reason, tc.says)):
				t.Errorf("failures %+v, want one at %s saying %q", failures, tc.field, tc.says)
			default:
				t.Logf("%s: %+v", tc.name, failures)
			}
		})
	}
	// A store this program declares (its Check ran) passes before it exists.
	declared := newResource(t, s, "SecretStore", "storeref-declared", map[string]any{"namespace": ns,
		"backend": tokenStore(env, map[string]any{"value": env.VaultToken})["backend"]})
	declared.check(declared.inputs)
	if failures := checkES("SecretStore", "storeref-declared"); len(failures) > 0 {
		t.Errorf("failures for a store the program declares: %+v", failures)
	}
}
