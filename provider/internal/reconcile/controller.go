package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	esutil "github.com/external-secrets/external-secrets/pkg/controllers/util"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AnnotationForceSync is the annotation ESO users bump to make the
// controller sync now; any change of an ExternalSecret's annotations makes
// its resource version differ from the one ESO last synced.
const AnnotationForceSync = esv1.AnnotationForceSync

// Trigger makes ESO sync es now: it sets the force-sync annotation to a
// fresh value and, because ESO never re-syncs an ExternalSecret whose
// refreshInterval is 0 once it has synced, also clears the synced resource
// version in that case. It returns the resource version ESO will report in
// status.syncedResourceVersion once it has synced this state.
func Trigger(ctx context.Context, c client.Client, es *esv1.ExternalSecret, now time.Time) (string, error) {
	// Patches, not updates: ESO writes the status of a fresh ExternalSecret
	// at the same time, and an update would lose that race with a conflict.
	orig := es.DeepCopy()
	if es.Annotations == nil {
		es.Annotations = map[string]string{}
	}
	es.Annotations[AnnotationForceSync] = now.UTC().Format(time.RFC3339Nano)
	if err := c.Patch(ctx, es, client.MergeFrom(orig)); err != nil {
		return "", fmt.Errorf("triggering a sync of ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
	}
	if es.Spec.RefreshInterval != nil && es.Spec.RefreshInterval.Duration <= 0 && es.Status.SyncedResourceVersion != "" {
		orig := es.DeepCopy()
		es.Status.SyncedResourceVersion = ""
		if err := c.Status().Patch(ctx, es, client.MergeFrom(orig)); err != nil {
			return "", fmt.Errorf("triggering a sync of ExternalSecret %s/%s (refreshInterval 0): %w", es.Namespace, es.Name, err)
		}
	}
	return esutil.GetResourceVersion(es.ObjectMeta), nil
}

// ErrNoReport means ESO never reported on the ExternalSecret: its
// controller is probably not running.
var ErrNoReport = errors.New("External Secrets Operator has not reported on it; is its controller running?")

// ReadyCondition returns ESO's Ready condition of es, if any.
func ReadyCondition(es *esv1.ExternalSecret) *esv1.ExternalSecretStatusCondition {
	for i := range es.Status.Conditions {
		if es.Status.Conditions[i].Type == esv1.ExternalSecretReady {
			return &es.Status.Conditions[i]
		}
	}
	return nil
}

// Await polls es until ESO has synced the resource version `expected` and
// reports Ready=True. progress hears each new condition reason. On timeout
// (ctx's deadline) it returns ESO's last reason and message as the error.
func Await(ctx context.Context, c client.Client, key client.ObjectKey, expected string, every time.Duration,
	progress func(reason, message string)) (*esv1.ExternalSecret, error) {
	var last *esv1.ExternalSecretStatusCondition
	lastSeen := ""
	for {
		es := &esv1.ExternalSecret{}
		err := c.Get(ctx, key, es)
		if err == nil {
			cond := ReadyCondition(es)
			if cond != nil {
				last = cond.DeepCopy()
				if seen := cond.Reason + "\x00" + cond.Message; seen != lastSeen && progress != nil {
					lastSeen = seen
					progress(cond.Reason, cond.Message)
				}
			}
			if es.Status.SyncedResourceVersion == expected && cond != nil && cond.Status == corev1.ConditionTrue {
				return es, nil
			}
		}
		select {
		case <-ctx.Done():
			switch {
			case err != nil:
				return nil, fmt.Errorf("waiting for ESO to sync ExternalSecret %s: %w", key, err)
			case last == nil:
				return nil, fmt.Errorf("ExternalSecret %s was not synced: %w", key, ErrNoReport)
			case last.Status == corev1.ConditionTrue:
				return nil, fmt.Errorf("ExternalSecret %s was not synced: ESO has not processed the change (its last report: %s: %s); "+
					"is its controller running?", key, last.Reason, last.Message)
			default:
				return nil, fmt.Errorf("ExternalSecret %s was not synced: ESO reports %s: %s", key, last.Reason, last.Message)
			}
		case <-time.After(every):
		}
	}
}

// AwaitStore polls a SecretStore or ClusterSecretStore until ESO reports it
// Ready with reason Valid. On timeout (ctx's deadline) the error carries
// ESO's last reason and message.
func AwaitStore(ctx context.Context, c client.Client, store esv1.GenericStore, every time.Duration,
	progress func(reason, message string)) error {
	key := client.ObjectKeyFromObject(store)
	var last *esv1.SecretStoreStatusCondition
	lastSeen := ""
	for {
		err := c.Get(ctx, key, store)
		if err == nil {
			for _, cond := range store.GetStatus().Conditions {
				if cond.Type != esv1.SecretStoreReady {
					continue
				}
				last = cond.DeepCopy()
				if seen := cond.Reason + "\x00" + cond.Message; seen != lastSeen && progress != nil {
					lastSeen = seen
					progress(cond.Reason, cond.Message)
				}
				if cond.Status == corev1.ConditionTrue && cond.Reason == esv1.ReasonStoreValid {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			switch {
			case err != nil:
				return fmt.Errorf("waiting for ESO to validate store %s: %w", key, err)
			case last == nil:
				return fmt.Errorf("store %s: External Secrets Operator has not validated it; is its controller running?", key)
			default:
				return fmt.Errorf("store %s is not ready: ESO reports %s: %s", key, last.Reason, last.Message)
			}
		case <-time.After(every):
		}
	}
}
