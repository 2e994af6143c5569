package testbed

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blang/semver"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/integration"
	presource "github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/esosync/pulumi-esosync/provider"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

var (
	secretStores    = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "secretstores"}
	externalSecrets = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}
)

// TestESOController runs the real ESO v0.20.4 controller against the test
// bed: esosync's Operator installs the chart (ServiceAccount, RBAC) and the
// CRDs, the harness runs the controller as that ServiceAccount, and ESO
// itself validates a Vault SecretStore and syncs an ExternalSecret from KV
// v2. Then it is stopped by PID and started again.
func TestESOController(t *testing.T) {
	env := harness.Shared(t)
	ctx := t.Context()

	// Without the chart there is no identity to run the controller as.
	if proc, err := env.StartESO(ctx, harness.ESOOptions{}); err == nil {
		_ = env.StopESO()
		t.Fatalf("StartESO before the chart is installed started pid %d, want an error", proc.PID)
	} else if !strings.Contains(err.Error(), "ServiceAccount external-secrets/external-secrets not found") {
		t.Fatalf("StartESO before the chart is installed: %v, want the missing ServiceAccount named", err)
	}

	installESO(t, env)

	start := time.Now()
	first, err := env.StartESO(ctx, harness.ESOOptions{})
	if err != nil {
		t.Fatalf("StartESO: %v", err)
	}
	t.Cleanup(func() {
		if err := env.StopESO(); err != nil {
			t.Errorf("StopESO: %v", err)
		}
	})
	t.Logf("ESO controller pid %d ready in %s, log %s", first.PID, time.Since(start).Round(time.Millisecond), first.Log)
	if !harness.Alive(first.PID) {
		t.Fatalf("ESO controller pid %d is not running", first.PID)
	}
	if _, err := env.StartESO(ctx, harness.ESOOptions{}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second StartESO while running: %v, want already running", err)
	}

	// The value in Vault, KV v2 at secret/.
	vc, err := env.VaultClient()
	if err != nil {
		t.Fatal(err)
	}
	kv := vc.KVv2("secret")
	if _, err := kv.Put(ctx, "eso-check/app", map[string]any{"password": "from-vault-1"}); err != nil {
		t.Fatalf("kv put: %v", err)
	}

	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	const ns = "eso-check"
	if _, err := clients.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := clients.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-token"},
		Data:       map[string][]byte{"token": []byte(env.VaultToken)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	store := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
		"metadata": map[string]any{"name": "vault"},
		"spec": map[string]any{"provider": map[string]any{"vault": map[string]any{
			"server": env.VaultAddr, "path": "secret", "version": "v2",
			"auth": map[string]any{"tokenSecretRef": map[string]any{"name": "vault-token", "key": "token"}},
		}}},
	}}
	if _, err := dyn.Resource(secretStores).Namespace(ns).Create(ctx, store, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create SecretStore: %v", err)
	}
	es := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": "app"},
		"spec": map[string]any{
			"refreshInterval": "1h",
			"secretStoreRef":  map[string]any{"kind": "SecretStore", "name": "vault"},
			"target":          map[string]any{"name": "app-secret", "creationPolicy": "Owner"},
			"data": []any{map[string]any{
				"secretKey": "password",
				"remoteRef": map[string]any{"key": "eso-check/app", "property": "password"},
			}},
		},
	}}
	created, err := dyn.Resource(externalSecrets).Namespace(ns).Create(ctx, es, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ExternalSecret: %v", err)
	}

	// ESO validates the store against Vault and reports it Ready.
	waitUntil(t, 60*time.Second, "ESO to report the SecretStore Ready (Valid)", func() (bool, error) {
		s, err := dyn.Resource(secretStores).Namespace(ns).Get(ctx, "vault", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		status, reason, msg := readyCondition(s)
		if status == "True" && reason == "Valid" {
			return true, nil
		}
		return false, fmt.Errorf("Ready=%q reason %q: %s", status, reason, msg)
	})
	waitUntil(t, 60*time.Second, "ESO to report the ExternalSecret Ready", func() (bool, error) {
		e, err := dyn.Resource(externalSecrets).Namespace(ns).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		status, reason, msg := readyCondition(e)
		if status == "True" {
			if reason != "SecretSynced" {
				t.Errorf("ExternalSecret Ready reason = %q (%s), want SecretSynced", reason, msg)
			}
			return true, nil
		}
		return false, fmt.Errorf("Ready=%q reason %q: %s", status, reason, msg)
	})
	target := waitForSecretValue(t, env, ns, "app-secret", "password", "from-vault-1")
	if target.Labels["reconcile.external-secrets.io/managed"] != "true" {
		t.Errorf("target labels = %v, want ESO's managed label", target.Labels)
	}
	if refs := target.OwnerReferences; len(refs) != 1 || refs[0].Kind != "ExternalSecret" || refs[0].UID != created.GetUID() ||
		refs[0].Controller == nil || !*refs[0].Controller {
		t.Errorf("target owner references = %+v, want the ExternalSecret as controller", refs)
	}

	// Stop by PID: the process is gone.
	if err := env.StopESO(); err != nil {
		t.Fatalf("StopESO: %v", err)
	}
	if harness.Alive(first.PID) {
		t.Fatalf("ESO controller pid %d still running after StopESO", first.PID)
	}
	if err := env.StopESO(); err != nil {
		t.Errorf("StopESO with nothing running: %v", err)
	}

	// Start again; the new controller picks up a forced refresh of the
	// rotated value.
	second, err := env.StartESO(ctx, harness.ESOOptions{})
	if err != nil {
		t.Fatalf("StartESO again: %v", err)
	}
	if second.PID == first.PID || !harness.Alive(second.PID) {
		t.Fatalf("restarted ESO controller pid %d (first %d) not running", second.PID, first.PID)
	}
	if _, err := kv.Put(ctx, "eso-check/app", map[string]any{"password": "from-vault-2"}); err != nil {
		t.Fatalf("kv put: %v", err)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"force-sync":%q}}}`, strconv.FormatInt(time.Now().UnixNano(), 10))
	if _, err := dyn.Resource(externalSecrets).Namespace(ns).Patch(ctx, "app", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate ExternalSecret: %v", err)
	}
	waitForSecretValue(t, env, ns, "app-secret", "password", "from-vault-2")
}

// installESO installs ESO's chart and CRDs with esosync's Operator resource,
// in process, without waiting for the controller Deployment (no kubelet
// runs it; StartESO stands in for its pod). The webhook and cert controller
// are left out, as nothing runs them either.
func installESO(t *testing.T, env *harness.Env) {
	t.Helper()
	chartDir, err := harness.ESOChartDir()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := harness.ESOCRDBundle()
	if err != nil {
		t.Fatal(err)
	}
	prov, err := provider.New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := integration.NewServer(t.Context(), provider.Name, semver.MustParse(provider.Version), integration.WithProvider(prov))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Configure(p.ConfigureRequest{Args: property.NewMap(map[string]property.Value{
		"kubeconfig": property.New(env.Kubeconfig),
	})}); err != nil {
		t.Fatal(err)
	}
	urn := presource.URN("urn:pulumi:test::test::esosync:index:Operator::eso")
	checked, err := s.Check(p.CheckRequest{Urn: urn, Inputs: toPropertyMap(map[string]any{
		"namespace": "external-secrets", "chart": chartDir, "crds": bundle,
		"waitForController": false, "timeout": "2m",
		"values": map[string]any{
			"webhook":        map[string]any{"create": false},
			"certController": map[string]any{"create": false},
		},
	})})
	if err != nil || len(checked.Failures) > 0 {
		t.Fatalf("Operator Check: %v %+v", err, checked.Failures)
	}
	start := time.Now()
	created, err := s.Create(p.CreateRequest{Urn: urn, Properties: checked.Inputs})
	if err != nil {
		t.Fatalf("Operator Create: %v", err)
	}
	t.Logf("Operator %s installed in %s (chart %s)", created.ID, time.Since(start).Round(time.Millisecond),
		created.Properties.Get("chartVersion").AsString())
}

func toPropertyMap(m map[string]any) property.Map {
	out := map[string]property.Value{}
	for k, v := range m {
		out[k] = toProperty(v)
	}
	return property.NewMap(out)
}

func toProperty(v any) property.Value {
	switch v := v.(type) {
	case string:
		return property.New(v)
	case bool:
		return property.New(v)
	case map[string]any:
		return property.New(toPropertyMap(v))
	default:
		panic(fmt.Sprintf("toProperty: unsupported %T", v))
	}
}

// readyCondition returns the status, reason and message of an ESO object's
// Ready condition.
func readyCondition(obj *unstructured.Unstructured) (status, reason, message string) {
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		cond, _ := c.(map[string]any)
		if cond["type"] == "Ready" {
			status, _ = cond["status"].(string)
			reason, _ = cond["reason"].(string)
			message, _ = cond["message"].(string)
		}
	}
	return status, reason, message
}

func waitForSecretValue(t *testing.T, env *harness.Env, ns, name, key, want string) *corev1.Secret {
	t.Helper()
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	var secret *corev1.Secret
	waitUntil(t, 60*time.Second, fmt.Sprintf("ESO to write %s/%s with %s=%q", ns, name, key, want), func() (bool, error) {
		s, err := clients.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if got := string(s.Data[key]); got != want {
			return false, fmt.Errorf("%s = %q", key, got)
		}
		secret = s
		return true, nil
	})
	return secret
}
