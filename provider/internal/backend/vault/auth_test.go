package vault_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/vault"
)

// seedAuthSecret writes the secret every login test reads back, so a
// working login is proven by a read under the role's policy.
func seedAuthSecret(t *testing.T, b *testbed) {
	once(t, "auth secret", func() {
		b.putV2(t, "auth/app", map[string]any{"password": "auth-test-secret-value"})
	})
	leaks.secret("auth-test-secret-value")
}

// assertWorks validates c and reads the seeded secret through it.
func assertWorks(t *testing.T, c *vault.Client) {
	t.Helper()
	if err := leaks.record(c.Validate(context.Background())); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	got, meta, err := c.GetSecret(context.Background(), backend.Ref{Key: "auth/app", Property: "password"})
	if leaks.record(err) != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	if string(got) != "auth-test-secret-value" || meta.Version == "" {
		t.Errorf("GetSecret = %q, %+v", got, meta)
	}
}

// assertRevokedOnClose closes c and checks with the root token that its
// login token no longer exists.
func assertRevokedOnClose(t *testing.T, b *testbed, c *vault.Client) {
	t.Helper()
	token := vault.LoginToken(c)
	leaks.secret(token)
	if err := leaks.record(c.Close(context.Background())); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := b.root.Auth().Token().Lookup(token); err == nil {
		t.Error("the login token still exists after Close")
	}
	// Idempotent: the cleanup registered by open closes it again.
	if err := leaks.record(c.Close(context.Background())); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func assertMentions(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error mentioning %q, got none", parts)
	}
	t.Logf("error (as expected): %v", err)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not mention %q: %v", p, err)
		}
	}
}

func TestTokenAuth(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	seedAuthSecret(t, b)
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Version: "v2", Auth: vault.Auth{Token: b.token(t, "esosync-read-secret")}})
	assertWorks(t, c)
}

func approleCreds(t *testing.T, b *testbed) (roleID, secretID string) {
	t.Helper()
	once(t, "approle", func() {
		if err := b.root.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
			t.Fatalf("enabling approle: %v", err)
		}
		b.write(t, "auth/approle/role/esosync", map[string]any{"token_policies": "esosync-read-secret", "token_ttl": "10m"})
	})
	s, err := b.root.Logical().Read("auth/approle/role/esosync/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID, _ = s.Data["role_id"].(string)
	secretID, _ = b.write(t, "auth/approle/role/esosync/secret-id", nil).Data["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatal("approle: no role_id or secret_id")
	}
	leaks.secret(roleID, secretID)
	return roleID, secretID
}

func TestAppRoleAuth(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	seedAuthSecret(t, b)
	roleID, secretID := approleCreds(t, b)
	// Surrounding whitespace on the role ID is trimmed, as ESO does.
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{AppRole: &vault.AppRole{RoleID: " " + roleID + "\n", SecretID: secretID}}})
	assertWorks(t, c)
	assertRevokedOnClose(t, b, c)
}

func TestAppRoleWrongSecretID(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	roleID, _ := approleCreds(t, b)
	wrong := "wrong-secret-id-" + randomHex(t)
	leaks.secret(wrong)
	_, err := open(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{AppRole: &vault.AppRole{RoleID: roleID, SecretID: wrong}}})
	assertMentions(t, err, "appRole", "invalid role or secret ID", "Code: 400")
	if err != nil && strings.Contains(err.Error(), wrong) {
		t.Errorf("error carries the secret ID: %v", err)
	}
}

func TestAppRoleWrongMount(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	roleID, secretID := approleCreds(t, b)
	_, err := open(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{AppRole: &vault.AppRole{Path: "no-such-approle", RoleID: roleID, SecretID: secretID}}})
	assertMentions(t, err, `"no-such-approle"`)
}

func TestUserPassAuth(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	seedAuthSecret(t, b)
	password := "userpass-password-" + randomHex(t)
	leaks.secret(password)
	once(t, "userpass", func() {
		// A non-default mount path, to prove Path is honoured.
		if err := b.root.Sys().EnableAuthWithOptions("esosync-userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
			t.Fatalf("enabling userpass: %v", err)
		}
	})
	b.write(t, "auth/esosync-userpass/users/esosync-user", map[string]any{"password": password, "token_policies": "esosync-read-secret"})
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{UserPass: &vault.UserPass{Path: "esosync-userpass", Username: "esosync-user", Password: password}}})
	assertWorks(t, c)
	assertRevokedOnClose(t, b, c)

	wrong := "wrong-password-" + randomHex(t)
	leaks.secret(wrong)
	_, err := open(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{UserPass: &vault.UserPass{Path: "esosync-userpass", Username: "esosync-user", Password: wrong}}})
	assertMentions(t, err, "userPass", "invalid username or password")
}

// kubeAuth sets up Vault's kubernetes auth against the test bed's real
// API server. No token_reviewer_jwt is configured, so Vault calls the
// TokenReview API with the JWT being logged in with, and that service
// account needs system:auth-delegator.
type kubeAuth struct {
	cs        *kubernetes.Clientset
	namespace string
}

func setupKubeAuth(t *testing.T, b *testbed) *kubeAuth {
	t.Helper()
	once(t, "kubernetes auth", func() {
		if len(b.env.CACertPEM) == 0 {
			t.Fatal("harness did not expose the API server CA")
		}
		if err := b.root.Sys().EnableAuthWithOptions("kubernetes", &vaultapi.EnableAuthOptions{Type: "kubernetes"}); err != nil {
			t.Fatalf("enabling kubernetes auth: %v", err)
		}
		b.write(t, "auth/kubernetes/config", map[string]any{
			"kubernetes_host":      b.env.APIServer,
			"kubernetes_ca_cert":   string(b.env.CACertPEM),
			"disable_local_ca_jwt": true,
		})
	})
	cs, err := b.env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	k := &kubeAuth{cs: cs, namespace: "vault-auth-" + randomHex(t)}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), k.namespace, metav1.DeleteOptions{})
	})
	return k
}

// serviceAccount creates a service account, optionally allowed to call
// TokenReview, and a Vault role bound to it.
func (k *kubeAuth) serviceAccount(t *testing.T, b *testbed, name string, delegator bool) (role string, sa *corev1.ServiceAccount) {
	t.Helper()
	ctx := context.Background()
	sa, err := k.cs.CoreV1().ServiceAccounts(k.namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if delegator {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: k.namespace + "-" + name + "-tokenreview"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: k.namespace}},
		}
		if _, err := k.cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = k.cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
		})
	}
	role = k.namespace + "-" + name
	b.write(t, "auth/kubernetes/role/"+role, map[string]any{
		"bound_service_account_names":      name,
		"bound_service_account_namespaces": k.namespace,
		"token_policies":                   "esosync-read-secret",
		"token_ttl":                        "10m",
	})
	return role, sa
}

// jwt requests a token for the service account through the TokenRequest
// API, as the sync engine does for a store's serviceAccountRef.
func (k *kubeAuth) jwt(t *testing.T, name string) string {
	t.Helper()
	exp := int64(600)
	tr, err := k.cs.CoreV1().ServiceAccounts(k.namespace).CreateToken(context.Background(), name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s: %v", name, err)
	}
	leaks.secret(tr.Status.Token)
	return tr.Status.Token
}

func TestKubernetesAuth(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	seedAuthSecret(t, b)
	k := setupKubeAuth(t, b)
	role, _ := k.serviceAccount(t, b, "esosync-reader", true)
	jwt := k.jwt(t, "esosync-reader")
	cfg := vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Kubernetes: &vault.Kubernetes{Role: role, JWT: jwt}}}
	var c *vault.Client
	// The fresh ClusterRoleBinding reaches the API server's authorizer
	// through an informer; give it a moment.
	err := waitFor(t, 20*time.Second, func() error {
		var err error
		c, err = vault.New(context.Background(), cfg)
		return leaks.record(err)
	})
	if err != nil {
		t.Fatalf("kubernetes login: %v", err)
	}
	assertWorks(t, c)
	assertRevokedOnClose(t, b, c)
}

// Without system:auth-delegator the TokenReview Vault makes with the
// account's own JWT is forbidden, so the login fails: proof that the JWT
// really goes through the API server.
func TestKubernetesAuthNeedsTokenReview(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	k := setupKubeAuth(t, b)
	role, _ := k.serviceAccount(t, b, "no-delegator", false)
	_, err := open(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Kubernetes: &vault.Kubernetes{Role: role, JWT: k.jwt(t, "no-delegator")}}})
	assertMentions(t, err, "kubernetes auth", "Code: 403")
}

// A JWT with the right claims but not signed by the cluster is refused by
// TokenReview, even though Vault itself cannot check its signature.
func TestKubernetesAuthForgedJWT(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	k := setupKubeAuth(t, b)
	role, sa := k.serviceAccount(t, b, "forged", true)
	forged := forgeJWT(t, k.namespace, sa)
	leaks.secret(forged)
	_, err := open(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Kubernetes: &vault.Kubernetes{Role: role, JWT: forged}}})
	assertMentions(t, err, "kubernetes auth")
}

func TestKubernetesAuthWrongRole(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	k := setupKubeAuth(t, b)
	k.serviceAccount(t, b, "esosync-reader", true)
	other, _ := k.serviceAccount(t, b, "someone-else", true)
	// The JWT is valid but the role is bound to another account.
	_, err := open(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Kubernetes: &vault.Kubernetes{Role: other, JWT: k.jwt(t, "esosync-reader")}}})
	assertMentions(t, err, "kubernetes auth", "service account name not authorized")
}

func forgeJWT(t *testing.T, namespace string, sa *corev1.ServiceAccount) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	unsigned := enc(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "forged"}) + "." + enc(map[string]any{
		"iss": "https://kubernetes.default.svc.cluster.local",
		"aud": []string{"https://kubernetes.default.svc.cluster.local"},
		"sub": "system:serviceaccount:" + namespace + ":" + sa.Name,
		"iat": now, "nbf": now, "exp": now + 600,
		"kubernetes.io": map[string]any{
			"namespace":      namespace,
			"serviceaccount": map[string]any{"name": sa.Name, "uid": string(sa.UID)},
		},
	})
	sum := sha256.Sum256([]byte(unsigned))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestValidateTokenWithoutMountAccess(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	token := b.token(t, "esosync-only-kv1")
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: token}})
	err := leaks.record(c.Validate(context.Background()))
	assertMentions(t, err, `mount "secret"`, "Code: 403")
	// The same token is fine for the mount its policy covers.
	c1 := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "kv1", Version: "v1", Auth: vault.Auth{Token: token}})
	if err := leaks.record(c1.Validate(context.Background())); err != nil {
		t.Errorf("Validate on kv1: %v", err)
	}
}

func TestValidateMountVersion(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	for _, tc := range []struct {
		path, version, want string
	}{
		{"kv1", "v2", `vault: mount "kv1" is KV v1 but the store says version v2`},
		{"kv1", "", `vault: mount "kv1" is KV v1 but the store says version v2`},
		{"secret", "v1", `vault: mount "secret" is KV v2 but the store says version v1`},
		{"cubbyhole", "v1", `vault: mount "cubbyhole" is a "cubbyhole" secrets engine, not kv`},
		{"secret", "v2", ""},
		{"kv1", "v1", ""},
		// A store path below the mount is checked against its mount.
		{"secret/team/app", "v2", ""},
		{"/secret/", "v2", ""},
	} {
		c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: tc.path, Version: tc.version, Auth: vault.Auth{Token: b.env.VaultToken}})
		err := leaks.record(c.Validate(context.Background()))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %s: %v", tc.path, tc.version, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%s %s: got %v, want %s", tc.path, tc.version, err, tc.want)
		}
	}
}

func TestValidateBadToken(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	bad := "hvs.not-a-real-token-" + randomHex(t)
	leaks.secret(bad)
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: bad}})
	err := leaks.record(c.Validate(context.Background()))
	assertMentions(t, err, "invalid vault credentials", "Code: 403", "permission denied")
}

// Vault down: a loopback port nobody listens on. Nothing shared is stopped.
func TestVaultUnreachable(t *testing.T) {
	checkLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	_ = l.Close()
	token := "hvs.unreachable-token-" + randomHex(t)
	secretID := "unreachable-secret-id-" + randomHex(t)
	leaks.secret(token, secretID)

	c := mustOpen(t, vault.Config{Server: addr, Path: "secret", Auth: vault.Auth{Token: token}})
	assertMentions(t, leaks.record(c.Validate(context.Background())), "connection refused", l.Addr().String())
	_, _, err = c.GetSecret(context.Background(), backend.Ref{Key: "app"})
	assertMentions(t, leaks.record(err), "connection refused", `"secret/data/app"`)
	if errors.Is(err, backend.ErrNotFound) {
		t.Error("an unreachable Vault must not read as a missing secret")
	}
	_, err = open(t, vault.Config{Server: addr, Path: "secret", Auth: vault.Auth{AppRole: &vault.AppRole{RoleID: "role", SecretID: secretID}}})
	assertMentions(t, err, "connection refused", "appRole")
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
