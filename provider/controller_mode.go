package provider

import (
	"context"
	"fmt"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	p "github.com/pulumi/pulumi-go-provider"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/esosync/pulumi-esosync/provider/internal/sync"
)

// syncViaController is `sync: controller`: trigger ESO, wait until it has
// synced the ExternalSecret as it now is, then check the target Secret
// ESO wrote. The outputs are filled even on failure (not ready, ESO's
// reason), so the state records what went wrong.
func syncViaController(ctx context.Context, k sync.Kube, es *esv1.ExternalSecret, timeout time.Duration) (ExternalSecretOutputs, error) {
	log := p.GetLogger(ctx)
	key := client.ObjectKeyFromObject(es)
	out := outputsOf(es, nil)
	out.Reason, out.Message = "Pending", "waiting for External Secrets Operator"
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	expected, err := sync.Trigger(wctx, k.Client, es, time.Now())
	if err != nil {
		return out, err
	}
	log.InfoStatusf("waiting up to %s for External Secrets Operator to sync %s", timeout, key)
	live, err := sync.Await(wctx, k.Client, key, expected, 500*time.Millisecond, func(reason, message string) {
		log.InfoStatusf("External Secrets Operator: %s: %s", reason, message)
	})
	if err != nil {
		if last := &(esv1.ExternalSecret{}); k.Client.Get(ctx, key, last) == nil {
			if cond := sync.ReadyCondition(last); cond != nil {
				out.Reason, out.Message = cond.Reason, cond.Message
			}
		}
		return out, err
	}
	secret, err := targetSecret(ctx, k.Client, live)
	if err != nil {
		return out, err
	}
	out = fromESO(live, secret)
	if problem := checkTarget(live, secret); problem != "" {
		out.Ready, out.Reason, out.Message = false, reasonOutOfSync, problem
		return out, fmt.Errorf("ExternalSecret %s: ESO reports it synced, but %s", key, problem)
	}
	return out, nil
}

// fromESO reports what ESO says about es and the Secret it wrote.
func fromESO(es *esv1.ExternalSecret, secret *corev1.Secret) ExternalSecretOutputs {
	out := outputsOf(es, secret)
	out.Reason, out.Message = "Pending", "External Secrets Operator has not reported on it yet"
	if cond := sync.ReadyCondition(es); cond != nil {
		out.Ready = cond.Status == corev1.ConditionTrue
		out.Reason, out.Message = cond.Reason, cond.Message
	}
	if !es.Status.RefreshTime.IsZero() {
		out.SyncedAt = es.Status.RefreshTime.UTC().Format(time.RFC3339)
	}
	return out
}

// checkTarget is esosync's own check of a Secret ESO manages: it exists
// where it should, and its data still matches ESO's data-hash annotation
// (a hand edit breaks that). Empty means fine.
func checkTarget(es *esv1.ExternalSecret, secret *corev1.Secret) string {
	switch policy := es.Spec.Target.CreationPolicy; {
	case policy == esv1.CreatePolicyNone:
		return ""
	case secret == nil && (policy == esv1.CreatePolicyMerge || es.Spec.Target.DeletionPolicy == esv1.DeletionPolicyDelete):
		return ""
	case secret == nil:
		return fmt.Sprintf("target Secret %s/%s does not exist", es.Namespace, sync.TargetName(es))
	case !sync.Consistent(secret):
		return fmt.Sprintf("target Secret %s/%s does not match ESO's data-hash annotation (edited out of band)", secret.Namespace, secret.Name)
	}
	return ""
}
