// Package testbed checks the test bed itself against the real servers:
// Kubernetes objects through client-go, KV v2 through Vault's API client,
// and that no server outlives the tests.
package testbed

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Full)) }

func TestKubernetesObjects(t *testing.T) {
	t.Parallel() // namespace testbed and CRD widgets.testbed.esosync.io are its own
	env := harness.Shared(t)
	ctx := t.Context()
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}

	version, err := clients.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if version.GitVersion != "v1.34.10" {
		t.Errorf("server version = %s, want v1.34.10", version.GitVersion)
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "testbed"}}
	if _, err := clients.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "testbed"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"password": []byte("s3cr3t\x00bin")},
	}
	if _, err := clients.CoreV1().Secrets("testbed").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret: %v", err)
	}
	got, err := clients.CoreV1().Secrets("testbed").Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get secret: %v", err)
	}
	if string(got.Data["password"]) != "s3cr3t\x00bin" {
		t.Errorf("secret data = %q", got.Data["password"])
	}

	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	crdClient := apiextensions.NewForConfigOrDie(cfg)
	crd := widgetCRD()
	if _, err := crdClient.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create CRD: %v", err)
	}
	waitUntil(t, 30*time.Second, "CRD Established", func() (bool, error) {
		c, err := crdClient.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range c.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})

	dyn := dynamic.NewForConfigOrDie(cfg)
	widgets := dyn.Resource(schema.GroupVersionResource{Group: "testbed.esosync.io", Version: "v1", Resource: "widgets"}).Namespace("testbed")
	widget := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "testbed.esosync.io/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1"},
		"spec":     map[string]any{"size": int64(3)},
	}}
	// A freshly Established CRD is served a few seconds later.
	waitUntil(t, 30*time.Second, "custom object created", func() (bool, error) {
		_, err := widgets.Create(ctx, widget, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	bad := widget.DeepCopy()
	bad.SetName("w2")
	bad.Object["spec"] = map[string]any{"size": "large"}
	if _, err := widgets.Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("schema-violating object: err = %v, want Invalid", err)
	}
	w, err := widgets.Get(ctx, "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get custom object: %v", err)
	}
	if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 3 {
		t.Errorf("spec.size = %d, want 3", size)
	}
}

func TestControllerManagerRuns(t *testing.T) {
	t.Parallel() // namespace kcm-check is its own
	env := harness.Shared(t)
	ctx := t.Context()
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kcm-check"}}
	if _, err := clients.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The service-account controller gives every new namespace a default account.
	waitUntil(t, 30*time.Second, "default service account in new namespace", func() (bool, error) {
		_, err := clients.CoreV1().ServiceAccounts("kcm-check").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})

	// The garbage collector deletes dependents of a deleted owner (what ESO's
	// creationPolicy Owner relies on).
	owner, err := clients.CoreV1().ConfigMaps("kcm-check").Create(ctx,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dependent := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: "dependent", Namespace: "kcm-check",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID}},
	}}
	if _, err := clients.CoreV1().Secrets("kcm-check").Create(ctx, dependent, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := clients.CoreV1().ConfigMaps("kcm-check").Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "garbage collection of the owned Secret", func() (bool, error) {
		_, err := clients.CoreV1().Secrets("kcm-check").Get(ctx, "dependent", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func TestVaultKV2(t *testing.T) {
	t.Parallel() // Vault path my-app/config is its own
	env := harness.Shared(t)
	client, err := env.VaultClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	kv := client.KVv2("secret")
	if _, err := kv.Put(ctx, "my-app/config", map[string]any{"username": "admin", "password": "first"}); err != nil {
		t.Fatalf("kv put: %v", err)
	}
	if _, err := kv.Put(ctx, "my-app/config", map[string]any{"username": "admin", "password": "rotated"}); err != nil {
		t.Fatalf("kv put: %v", err)
	}
	s, err := kv.Get(ctx, "my-app/config")
	if err != nil {
		t.Fatalf("kv get: %v", err)
	}
	if s.Data["password"] != "rotated" || s.VersionMetadata.Version != 2 {
		t.Errorf("kv get = %v (version %d), want password rotated at version 2", s.Data, s.VersionMetadata.Version)
	}
	old, err := kv.GetVersion(ctx, "my-app/config", 1)
	if err != nil {
		t.Fatal(err)
	}
	if old.Data["password"] != "first" {
		t.Errorf("version 1 = %v", old.Data)
	}
	health, err := client.Sys().Health()
	if err != nil {
		t.Fatal(err)
	}
	if health.Version != "1.19.5" {
		t.Errorf("vault version = %s, want 1.19.5", health.Version)
	}
}

// TestStopsByPID starts a second, private test bed, stops it and checks by
// PID that every process is gone.
func TestStopsByPID(t *testing.T) {
	harness.SkipShort(t)
	env, err := harness.Start(t.Context(), harness.Options{Kubernetes: true, Vault: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	procs := env.Processes()
	if len(procs) != 3 {
		t.Fatalf("processes = %d, want etcd, kube-apiserver and vault", len(procs))
	}
	for _, p := range procs {
		if !harness.Alive(p.PID) {
			t.Errorf("%s (pid %d) not running before stop", p.Name, p.PID)
		}
	}
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if harness.Alive(p.PID) {
			t.Errorf("%s (pid %d) still running after Stop", p.Name, p.PID)
		}
	}
	if _, err := os.Stat(env.Dir); !os.IsNotExist(err) {
		t.Errorf("state directory %s left behind", env.Dir)
	}
}

// TestAbortLeavesNothingRunning runs a test in a child process that starts
// a test bed and then dies: by panic (t.Cleanup must stop the servers) and
// by SIGKILL (no Go code runs; the kernel must take the servers down with it).
func TestAbortLeavesNothingRunning(t *testing.T) {
	harness.SkipShort(t)
	if os.Getenv(childEnv) != "" {
		t.Skip("runs only in the parent")
	}
	for _, mode := range []string{"panic", "sigkill"} {
		t.Run(mode, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids.json")
			cmd := exec.Command(os.Args[0], "-test.run=^TestAbortChild$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"="+mode+":"+pidFile)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("child test did not die:\n%s", out)
			}
			if mode == "panic" && !strings.Contains(string(out), "deliberate panic") {
				t.Fatalf("child test did not panic as planned (%v):\n%s", err, out)
			}
			data, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatalf("child wrote no pids: %v\n%s", err, out)
			}
			var pids map[string]int
			if err := json.Unmarshal(data, &pids); err != nil {
				t.Fatal(err)
			}
			if len(pids) != 3 {
				t.Fatalf("child started %v, want etcd, kube-apiserver and vault", pids)
			}
			waitUntil(t, 15*time.Second, "servers of the dead test to exit", func() (bool, error) {
				for _, pid := range pids {
					if harness.Alive(pid) {
						return false, nil
					}
				}
				return true, nil
			})
			t.Logf("%s: all of %v gone", mode, pids)
		})
	}
}

const childEnv = "ESOSYNC_TESTBED_ABORT_CHILD"

// TestAbortChild is the child half of TestAbortLeavesNothingRunning.
func TestAbortChild(t *testing.T) {
	mode, pidFile, ok := strings.Cut(os.Getenv(childEnv), ":")
	if !ok {
		t.Skip("runs only as the child of TestAbortLeavesNothingRunning")
	}
	env := harness.ForTest(t, harness.Options{Kubernetes: true, Vault: true})
	pids := map[string]int{}
	for _, p := range env.Processes() {
		pids[p.Name] = p.PID
	}
	data, _ := json.Marshal(pids)
	if err := os.WriteFile(pidFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if mode == "sigkill" {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	panic("deliberate panic with " + strconv.Itoa(len(pids)) + " servers running")
}

func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.testbed.esosync.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "testbed.esosync.io",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"size": {Type: "integer"}}},
					},
				}},
			}},
		},
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
