package node

import (
	"context"
	"path/filepath"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/esosync/pulumi-esosync/tests/harness"
	"github.com/esosync/pulumi-esosync/tests/story"
)

// TestVaultFlow runs tests/node/testdata/vault: one store whose Vault token
// comes from an existing Secret, one with Kubernetes auth where ESO's pod
// presents its own ServiceAccount token and Vault checks it with the API
// server's TokenReview. The app serves both values; a change at the token
// store's path must show at refresh, and after up and the rollout the app
// serves it.
func TestVaultFlow(t *testing.T) {
	env := harness.Shared(t)
	ctx := t.Context()
	const ns = "node-vault"
	vc, err := env.VaultClient()
	if err != nil {
		t.Fatal(err)
	}
	token := setUpVault(t, env, vc)
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	if err := story.EnsureNamespace(ctx, env, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := clients.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-token"}, StringData: map[string]string{"token": token},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	put := func(db, api string) error {
		if _, err := vc.KVv2("secret").Put(ctx, "my-app/db", map[string]any{"password": db}); err != nil {
			return err
		}
		_, err := vc.KVv2("secret").Put(ctx, "my-app/api", map[string]any{"key": api})
		return err
	}
	db, api := story.Random("db-pass"), story.Random("api-key")
	if err := put(db, api); err != nil {
		t.Fatal(err)
	}
	flow := &story.Flow{
		Program:   filepath.Join("testdata", "vault"),
		Namespace: ns,
		Config:    map[string]string{"vaultAddress": env.VaultAddr, "tokenSecret": "vault-token"},
		Secret:    "db-secret",
		Env:       map[string]string{"DB_PASSWORD": "password", "API_KEY": "api-secret:key"},
		Want:      map[string]string{"DB_PASSWORD": db, "API_KEY": api},
		// Only the token store's path changes: esosync can read it at
		// refresh and report the drift. The Kubernetes-auth store has no
		// serviceAccountRef (ESO logs in with its pod's own token), which
		// esosync cannot present from outside the pod, so its drift is ESO's
		// to find on its refreshInterval.
		Rotate: func(context.Context) (map[string]string, error) {
			db2 := story.Random("db-pass2")
			return map[string]string{"DB_PASSWORD": db2, "API_KEY": api}, put(db2, api)
		},
		Fetched: []string{token},
	}
	runFlow(t, env, flow)
}

// setUpVault gives Vault a read policy, a token with it (returned), and
// Kubernetes auth: role "eso" for the chart's ServiceAccount
// external-secrets/external-secrets, reviewed with the token of a
// ServiceAccount allowed to create TokenReviews.
func setUpVault(t *testing.T, env *harness.Env, vc *vaultapi.Client) string {
	t.Helper()
	ctx := t.Context()
	if err := vc.Sys().PutPolicyWithContext(ctx, "app-read", `path "secret/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := vc.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"app-read"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	reviewer := reviewerToken(t, env)
	if err := vc.Sys().EnableAuthWithOptionsWithContext(ctx, "kubernetes", &vaultapi.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string]map[string]any{
		"auth/kubernetes/config": {"kubernetes_host": env.APIServer, "kubernetes_ca_cert": string(env.CACertPEM), "token_reviewer_jwt": reviewer},
		"auth/kubernetes/role/eso": {"bound_service_account_names": "external-secrets", "bound_service_account_namespaces": "external-secrets",
			"policies": "app-read", "ttl": "1h"},
	} {
		if _, err := vc.Logical().WriteWithContext(ctx, path, data); err != nil {
			t.Fatalf("vault write %s: %v", path, err)
		}
	}
	return tok.Auth.ClientToken
}

// reviewerToken is a token of a ServiceAccount bound to
// system:auth-delegator, which Vault uses to call TokenReview.
func reviewerToken(t *testing.T, env *harness.Env) string {
	t.Helper()
	ctx := context.Background()
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer", Namespace: "default"}}
	if _, err := clients.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := clients.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "vault-reviewer", Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ttl := int64(3600)
	tr, err := clients.CoreV1().ServiceAccounts("default").CreateToken(ctx, "vault-reviewer",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}
