package helm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// ValidatingWebhooks names the release's ValidatingWebhookConfigurations.
func (r *Release) ValidatingWebhooks() []string {
	return r.namesOfKind("ValidatingWebhookConfiguration")
}

// WebhookProbe is an object that a validating webhook must reject: a
// server-side dry-run create of it reaches the webhook through the API
// server exactly as a real apply does, without storing anything.
type WebhookProbe struct {
	// Resource is the probe's resource.
	Resource schema.GroupVersionResource
	// Object is the invalid object, with its namespace set.
	Object *unstructured.Unstructured
	// Webhook is the name of the webhook expected to deny it, as it
	// appears in the API server's "admission webhook %q denied the
	// request" message.
	Webhook string
}

// ErrWebhookNotAnswering reports a probe that did not reach the webhook.
var ErrWebhookNotAnswering = errors.New("the webhook does not answer admission requests yet")

// ProbeWebhook sends the probe once. It returns nil when the webhook
// itself denied it, and otherwise an error wrapping ErrWebhookNotAnswering
// with what the API server said instead (connection refused, no endpoints,
// an unknown certificate authority, or an accepted probe, which a webhook
// with failurePolicy Ignore that cannot be reached lets through).
func ProbeWebhook(ctx context.Context, config *rest.Config, probe WebhookProbe) error {
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		return err
	}
	_, err = client.Resource(probe.Resource).Namespace(probe.Object.GetNamespace()).
		Create(ctx, probe.Object.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return fmt.Errorf("%w: an invalid %s was accepted without the webhook's verdict", ErrWebhookNotAnswering, probe.Object.GetKind())
	case strings.Contains(err.Error(), fmt.Sprintf("admission webhook %q denied the request", probe.Webhook)):
		return nil
	default:
		return fmt.Errorf("%w: %v", ErrWebhookNotAnswering, err)
	}
}

// WaitForWebhook probes until the webhook answers or ctx ends (ESO issue
// 6450: the webhook configuration is registered before its pod serves, and
// every apply fails until it does). progress receives each failed probe.
func WaitForWebhook(ctx context.Context, config *rest.Config, probe WebhookProbe, poll time.Duration, progress func(error)) error {
	for {
		err := ProbeWebhook(ctx, config, probe)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrWebhookNotAnswering) {
			return err
		}
		if progress != nil {
			progress(err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("webhook %s: %w (last: %v)", probe.Webhook, ctx.Err(), err)
		case <-time.After(poll):
		}
	}
}
