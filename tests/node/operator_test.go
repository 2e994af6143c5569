package node

import (
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/esosync/pulumi-esosync/tests/harness"
	"github.com/esosync/pulumi-esosync/tests/story"
)

var externalSecrets = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}

// TestOperatorWebhookWait installs ESO with the Operator's defaults and,
// the moment `pulumi up` returns, applies an invalid ExternalSecret, which
// ESO's webhook itself must reject (not connection refused: ESO issue
// 6450), and a valid one, which must be admitted. Refresh then reports the
// controller and webhook available and no change.
func TestOperatorWebhookWait(t *testing.T) {
	env := harness.Shared(t)
	ctx := t.Context()
	logf := report(t)
	stack, err := story.NewStack(ctx, env, t.TempDir(), filepath.Join("testdata", "operator"), logf)
	if err != nil {
		t.Fatal(err)
	}
	chart, crds, err := story.ESOChart()
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.Config(ctx, map[string]string{"esoChart": chart, "esoCrds": crds}, nil); err != nil {
		t.Fatal(err)
	}
	out, err := stack.Run(ctx, "up", "--yes", "--skip-preview")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	es := func(name, creation, deletion string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
			"metadata": map[string]any{"name": name, "namespace": "default"},
			"spec": map[string]any{
				"secretStoreRef": map[string]any{"name": "none", "kind": "ClusterSecretStore"},
				"target":         map[string]any{"creationPolicy": creation, "deletionPolicy": deletion},
				"data":           []any{map[string]any{"secretKey": "k", "remoteRef": map[string]any{"key": "k"}}},
			},
		}}
	}
	client := dyn.Resource(externalSecrets).Namespace("default")
	_, invalidErr := client.Create(ctx, es("invalid", "Merge", "Delete"), metav1.CreateOptions{})
	_, validErr := client.Create(ctx, es("valid", "Owner", "Retain"), metav1.CreateOptions{})
	for _, l := range story.OperatorWaits(out) {
		logf("Operator: %s", l)
	}
	if invalidErr == nil || !strings.Contains(invalidErr.Error(), `admission webhook "validate.externalsecret.external-secrets.io" denied the request`) {
		t.Fatalf("right after up, an invalid ExternalSecret was not rejected by ESO's webhook: %v", invalidErr)
	}
	logf("right after up: the invalid ExternalSecret was rejected by ESO's webhook: %v", invalidErr)
	if validErr != nil {
		t.Fatalf("right after up, a valid ExternalSecret was not admitted: %v", validErr)
	}
	logf("right after up: the valid ExternalSecret was admitted")
	if err := client.Delete(ctx, "valid", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	out, err = stack.Run(ctx, "refresh", "--yes", "--skip-preview")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "updated") {
		t.Errorf("refresh after up reports changes:\n%s", out)
	}
	outputs, err := stack.Outputs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if outputs["controllerAvailable"] != true || outputs["webhookAvailable"] != true {
		t.Errorf("refresh reports controllerAvailable=%v webhookAvailable=%v, want both true", outputs["controllerAvailable"], outputs["webhookAvailable"])
	}
	logf("refresh: controllerAvailable=%v webhookAvailable=%v, no changes", outputs["controllerAvailable"], outputs["webhookAvailable"])
	if _, err := stack.Run(ctx, "destroy", "--yes", "--skip-preview"); err != nil {
		t.Fatal(err)
	}
	reportSteps(t, stack.Steps)
}
