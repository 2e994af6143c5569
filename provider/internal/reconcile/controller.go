package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	esutil "github.com/external-secrets/external-secrets/pkg/controllers/util"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
//
// A Ready=False condition left by an earlier failure is set to Unknown
// (reason Pending): ESO writes its status with an update, which conflicts
// unless ESO read the ExternalSecret as Trigger left it, so a False seen
// afterwards is ESO's verdict on this sync, never a reconcile that was
// already under way with older data (a store's old credentials, say).
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
	orig = es.DeepCopy()
	if es.Spec.RefreshInterval != nil && es.Spec.RefreshInterval.Duration <= 0 {
		es.Status.SyncedResourceVersion = ""
	}
	if cond := ReadyCondition(es); cond != nil && cond.Status == corev1.ConditionFalse {
		*cond = esv1.ExternalSecretStatusCondition{Type: esv1.ExternalSecretReady, Status: corev1.ConditionUnknown, Reason: ReasonPending,
			Message:            fmt.Sprintf("esosync triggered a sync; ESO's previous report: %s: %s", cond.Reason, cond.Message),
			LastTransitionTime: metav1.NewTime(now)}
	}
	if !equality.Semantic.DeepEqual(orig.Status, es.Status) {
		if err := c.Status().Patch(ctx, es, client.MergeFrom(orig)); err != nil {
			return "", fmt.Errorf("triggering a sync of ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
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
// reports Ready=True. progress hears each new condition reason, with ESO's
// latest Warning event when not ready. It fails early, naming ESO's error,
// once ESO reports Ready=False: after Trigger that is ESO's verdict on this
// sync, and waiting out the timeout would only hide it. On timeout (ctx's
// deadline) it returns ESO's last reason, message and Warning event as the
// error.
func Await(ctx context.Context, c client.Client, key client.ObjectKey, expected string, every time.Duration,
	progress func(reason, message string)) (*esv1.ExternalSecret, error) {
	var last *esv1.ExternalSecretStatusCondition
	var warning *Warning
	lastSeen := ""
	for {
		es := &esv1.ExternalSecret{}
		err := c.Get(ctx, key, es)
		if err == nil {
			cond := ReadyCondition(es)
			warning = nil
			if cond != nil && cond.Status == corev1.ConditionFalse { // ESO's verdict; Unknown is Trigger's
				warning = esWarning(ctx, c, es)
			}
			if cond != nil {
				last = cond.DeepCopy()
				message := withWarning(cond.Message, warning)
				if seen := cond.Reason + "\x00" + message; seen != lastSeen && progress != nil {
					lastSeen = seen
					progress(cond.Reason, message)
				}
			}
			if es.Status.SyncedResourceVersion == expected && cond != nil && cond.Status == corev1.ConditionTrue {
				return es, nil
			}
			if cond != nil && cond.Status == corev1.ConditionFalse {
				return nil, fmt.Errorf("ExternalSecret %s was not synced: ESO reports %s: %s", key, cond.Reason, withWarning(cond.Message, warning))
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
				return nil, fmt.Errorf("ExternalSecret %s was not synced: ESO reports %s: %s", key, last.Reason, withWarning(last.Message, warning))
			}
		case <-time.After(every):
		}
	}
}

// AwaitStore polls a SecretStore or ClusterSecretStore until ESO reports it
// Ready with reason Valid. Like Await it fails early, with ESO's Warning
// event, once ESO has reported the store invalid in a second after since's
// (events carry whole seconds, and ESO patches a store's status without a
// conflict check, so a validation already under way at since could
// otherwise pass for the verdict on the new spec); on timeout (ctx's
// deadline) the error carries ESO's last reason and message.
func AwaitStore(ctx context.Context, c client.Client, store esv1.GenericStore, since time.Time, every time.Duration,
	progress func(reason, message string)) error {
	key := client.ObjectKeyFromObject(store)
	kind := storeKind(store)
	var last *esv1.SecretStoreStatusCondition
	var warning *Warning
	lastSeen := ""
	for {
		err := c.Get(ctx, key, store)
		if cond := storeReadyCondition(store); err == nil && cond != nil {
			last = cond.DeepCopy()
			if cond.Status == corev1.ConditionTrue && cond.Reason == esv1.ReasonStoreValid {
				return nil
			}
			warning, _ = LatestWarning(ctx, c, kind, store, cond.Reason)
			message := withWarning(cond.Message, warning)
			if seen := cond.Reason + "\x00" + message; seen != lastSeen && progress != nil {
				lastSeen = seen
				progress(cond.Reason, message)
			}
			if cond.Status == corev1.ConditionFalse && warning != nil && warning.At.After(since) {
				return fmt.Errorf("store %s is not ready: ESO reports %s: %s", key, cond.Reason, message)
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
				return fmt.Errorf("store %s is not ready: ESO reports %s: %s", key, last.Reason, withWarning(last.Message, warning))
			}
		case <-time.After(every):
		}
	}
}

// AnnotationRevalidate is set on a store when esosync asks ESO to validate
// it again; any change of a store makes ESO reconcile it.
const AnnotationRevalidate = "esosync.io/revalidate-at"

// storeReadyCondition returns ESO's Ready condition of store, if any.
func storeReadyCondition(store esv1.GenericStore) *esv1.SecretStoreStatusCondition {
	conds := store.GetStatus().Conditions
	for i := range conds {
		if conds[i].Type == esv1.SecretStoreReady {
			return &conds[i]
		}
	}
	return nil
}

// storeNotReady reports whether ESO has marked store not ready.
func storeNotReady(store esv1.GenericStore) bool {
	cond := storeReadyCondition(store)
	return cond != nil && cond.Status != corev1.ConditionTrue
}

// ReviveStore has ESO validate a store again that it marked not ready, and
// waits (until ctx's deadline, or ESO's next failure) until it is Ready.
// ESO refuses to sync anything from a store it marked not ready, and after
// a backend outage it re-validates the store only when its retry backoff
// or its requeue interval (5 minutes) comes round: without this, an `up`
// after the backend is back would wait for ESO's clock, not for the
// backend.
func ReviveStore(ctx context.Context, c client.Client, store esv1.GenericStore, now time.Time, every time.Duration,
	progress func(reason, message string)) error {
	if !storeNotReady(store) {
		return nil
	}
	orig := store.Copy()
	ann := store.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationRevalidate] = now.UTC().Format(time.RFC3339Nano)
	store.SetAnnotations(ann)
	if err := c.Patch(ctx, store, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("asking ESO to validate store %s again: %w", store.GetName(), err)
	}
	return AwaitStore(ctx, c, store, now, every, progress)
}
