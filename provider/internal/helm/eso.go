package helm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// What esosync knows about External Secrets Operator's chart.
const (
	// ESOChartName is the chart's name in ESO's Helm repository.
	ESOChartName = "external-secrets"
	// ESOInstallCRDsValue is the chart value that makes ESO's released
	// chart template its CRDs.
	ESOInstallCRDsValue = "installCRDs"
)

// ESOCoreCRDs are the CRDs every esosync resource needs served before
// anything can use External Secrets Operator.
func ESOCoreCRDs() []string {
	return []string{
		"clustersecretstores.external-secrets.io",
		"externalsecrets.external-secrets.io",
		"secretstores.external-secrets.io",
	}
}

// CheckESO says why ESO's controller is not Available and why its webhook
// does not answer (nil for each that is fine; the webhook is fine when the
// release has none).
func CheckESO(ctx context.Context, cluster *kube.Cluster, rel *Release) (controllerErr, webhookErr error) {
	if name := esoControllerDeployment(rel); name == "" {
		controllerErr = errors.New("the release has no controller Deployment")
	} else {
		controllerErr = CheckDeployment(ctx, cluster.Clientset, rel.Namespace, name)
	}
	if probe, ok := esoWebhookProbe(rel); ok {
		webhookErr = ProbeWebhook(ctx, cluster.REST, probe)
	}
	return controllerErr, webhookErr
}

// esoControllerDeployment is the release's controller Deployment: the one
// that is neither the webhook nor the cert controller.
func esoControllerDeployment(rel *Release) string {
	for _, d := range rel.Deployments() {
		if !strings.HasSuffix(d, "-webhook") && !strings.HasSuffix(d, "-cert-controller") {
			return d
		}
	}
	return ""
}

// esoWebhookProbe is an ExternalSecret that only ESO's webhook rejects
// (deletionPolicy Delete needs creationPolicy Owner), for a release that
// registers ESO's ExternalSecret webhook.
func esoWebhookProbe(rel *Release) (WebhookProbe, bool) {
	const config = "externalsecret-validate"
	if !slices.Contains(rel.ValidatingWebhooks(), config) {
		return WebhookProbe{}, false
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1",
		"kind":       "ExternalSecret",
		"metadata":   map[string]any{"name": "esosync-webhook-probe", "namespace": rel.Namespace},
		"spec": map[string]any{
			"secretStoreRef": map[string]any{"name": "esosync-webhook-probe", "kind": "SecretStore"},
			"target":         map[string]any{"creationPolicy": "Merge", "deletionPolicy": "Delete"},
			"data":           []any{map[string]any{"secretKey": "probe", "remoteRef": map[string]any{"key": "probe"}}},
		},
	}}
	return WebhookProbe{
		Resource: schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"},
		Object:   obj,
		Webhook:  "validate.externalsecret.external-secrets.io",
	}, true
}

// InjectsInstallCRDs reports whether esosync sets the chart's installCRDs
// value itself: the CRDs come from a bundle, or from elsewhere.
func InjectsInstallCRDs(installCRDs bool, crds string) bool { return !installCRDs || crds != "" }

// Deploy-time tuning: ESO's chart runs one reconcile at a time with a
// client limit of 50 requests/s (burst 100), so a deploy of a few hundred
// ExternalSecrets waits minutes for ESO (ESO issues 3258 and 4180). The
// Operator gives ESO more unless the values say otherwise: eight reconciles
// at once (each mostly waits on the backend and the API server) and a
// client limit that lets them run; the API server's priority and fairness
// still protects the control plane.
const (
	// TunedConcurrent is the chart's `concurrent` the Operator sets.
	TunedConcurrent = 8
	concurrentValue = "concurrent"
	extraArgsValue  = "extraArgs"
)

// TunedExtraArgs are the controller flags (chart `extraArgs`) the
// Operator sets.
var TunedExtraArgs = map[string]string{"client-qps": "300", "client-burst": "600"}

// ChartValues is what the chart gets: the user's values, plus installCRDs
// false when the chart must not template CRDs, plus the deploy-time
// tuning the user did not set.
func ChartValues(values map[string]any, installCRDs bool, crds string) map[string]any {
	out := make(map[string]any, len(values)+3)
	for k, v := range values {
		out[k] = v
	}
	if InjectsInstallCRDs(installCRDs, crds) {
		out[ESOInstallCRDsValue] = false
	}
	if _, ok := out[concurrentValue]; !ok {
		out[concurrentValue] = TunedConcurrent
	}
	extra := map[string]any{}
	if user, ok := out[extraArgsValue].(map[string]any); ok {
		for k, v := range user {
			extra[k] = v
		}
	} else if out[extraArgsValue] != nil {
		return out // not a map: the chart will say what is wrong with it
	}
	for k, v := range TunedExtraArgs {
		if _, ok := extra[k]; !ok {
			extra[k] = v
		}
	}
	out[extraArgsValue] = extra
	return out
}

// untune removes from config (a release's values) the tuning ChartValues
// added to the user's values.
func untune(config, values map[string]any) {
	if _, set := values[concurrentValue]; !set && fmt.Sprint(config[concurrentValue]) == fmt.Sprint(TunedConcurrent) {
		delete(config, concurrentValue)
	}
	extra, ok := config[extraArgsValue].(map[string]any)
	if !ok {
		return
	}
	user, _ := values[extraArgsValue].(map[string]any)
	kept := map[string]any{}
	for k, v := range extra {
		if _, set := user[k]; !set && fmt.Sprint(v) == TunedExtraArgs[k] {
			continue
		}
		kept[k] = v
	}
	if _, set := values[extraArgsValue]; len(kept) == 0 && !set {
		delete(config, extraArgsValue)
		return
	}
	config[extraArgsValue] = kept
}

// UserValues undoes ChartValues on the values a release was rendered with
// (config), so what esosync injected does not show as drift.
func UserValues(config, values map[string]any, installCRDs bool, crds string) map[string]any {
	out := make(map[string]any, len(config))
	for k, v := range config {
		out[k] = v
	}
	if InjectsInstallCRDs(installCRDs, crds) {
		if v, ok := values[ESOInstallCRDsValue]; ok {
			out[ESOInstallCRDsValue] = v
		} else if out[ESOInstallCRDsValue] == false {
			delete(out, ESOInstallCRDsValue)
		}
	}
	untune(out, values)
	if len(out) == 0 && values == nil {
		return nil
	}
	return out
}
