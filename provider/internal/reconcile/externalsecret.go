package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	esutil "github.com/external-secrets/external-secrets/pkg/controllers/util"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// Mode says who makes an ExternalSecret's target Secret current at deploy.
type Mode string

// Modes.
const (
	// ModeController triggers the in-cluster ESO controller and waits for it.
	ModeController Mode = "controller"
	// ModeProvider fetches and writes the Secret from the provider, as ESO would.
	ModeProvider Mode = "provider"
	// ModeNone only writes the ExternalSecret.
	ModeNone Mode = "none"
)

// Report is what esosync knows about an ExternalSecret and its target
// Secret. It never holds a value: key names, versions and hashes only.
type Report struct {
	SecretName     string
	Keys           []string
	DataHash       string
	RemoteVersions map[string]string
	SyncedAt       string
	Status
}

// Observation is an ExternalSecret as found in the cluster.
type Observation struct {
	// Found is false when the ExternalSecret no longer exists (or its kind
	// is not served).
	Found bool
	// Live is the ExternalSecret as read (nil when not found).
	Live *esv1.ExternalSecret
	// Report is what a refresh reports.
	Report Report
}

// PreviewReport is what a preview knows without the cluster.
func PreviewReport(es *esv1.ExternalSecret) Report {
	return Report{SecretName: TargetName(es), Keys: []string{}, RemoteVersions: map[string]string{}}
}

// ApplyExternalSecret creates (create) or updates es, then makes its target
// Secret current as mode says. In provider mode the backend is read before
// anything is written, so a backend failure leaves the cluster as it was.
// A controller-mode failure after the ExternalSecret was written is a
// NotReadyError carrying a Report with ESO's reason.
func (e *Engine) ApplyExternalSecret(ctx context.Context, log Logger, es *esv1.ExternalSecret, mode Mode, create bool) (Report, error) {
	k, err := e.clients()
	if err != nil {
		return Report{}, err
	}
	seen, err := firstLook(ctx, k.Client, es, mode, create)
	if err != nil {
		return Report{}, err
	}
	var fetched *Fetched
	if mode == ModeProvider {
		if fetched, err = e.fetch(ctx, log, k, es); err != nil {
			return Report{}, err
		}
	}
	h, err := e.hasher(ctx, k.Client, es.Namespace)
	if err != nil {
		return Report{}, err
	}
	if es, err = writeExternalSecret(ctx, k.Client, es, create); err != nil {
		return Report{}, err
	}
	out, err := e.finish(ctx, log, k, h, es, mode, fetched, seen)
	switch {
	case err != nil && mode == ModeController:
		// ESO may still sync later: keep the resource, marked as not ready,
		// so the next `pulumi up` triggers and waits again.
		return out, &NotReadyError{Err: err}
	case err != nil && create:
		// Nothing was synced: take the CR away again so the failed create
		// leaves nothing behind.
		_ = k.Client.Delete(ctx, es)
		return Report{}, err
	}
	return out, err
}

// firstLook is what a create knows of the target Secret before it writes.
// A new ExternalSecret's target normally does not exist yet, so in provider
// mode, when the sync would create it, it is assumed absent: the write
// creates it and reads it only if it exists after all (then refusing one
// that is not this ExternalSecret's). Otherwise it is read once, here,
// refusing a foreign one before anything is written.
func firstLook(ctx context.Context, c client.Client, es *esv1.ExternalSecret, mode Mode, create bool) (*Seen, error) {
	if !create {
		return nil, nil
	}
	if policy := es.Spec.Target.CreationPolicy; mode == ModeProvider && (policy == esv1.CreatePolicyOwner || policy == esv1.CreatePolicyOrphan) {
		return &Seen{}, nil
	}
	secret, err := targetSecret(ctx, c, es)
	if err != nil {
		return nil, err
	}
	if err := refuseForeignTarget(es, secret); err != nil {
		return nil, fmt.Errorf("ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
	}
	return &Seen{Secret: secret}, nil
}

// writeExternalSecret creates es, or updates the live one with es's labels,
// annotations and spec.
func writeExternalSecret(ctx context.Context, c client.Client, es *esv1.ExternalSecret, create bool) (*esv1.ExternalSecret, error) {
	id := es.Namespace + "/" + es.Name
	if create {
		if err := c.Create(ctx, es); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return nil, alreadyExists("ExternalSecret", id)
			}
			return nil, fmt.Errorf("creating ExternalSecret %s: %w", id, kube.CRDHint(err))
		}
		return es, nil
	}
	live, err := kube.Upsert(ctx, c, es, func() *esv1.ExternalSecret { return &esv1.ExternalSecret{} }, func(live *esv1.ExternalSecret) {
		live.Labels, live.Annotations, live.Spec = maps.Clone(es.Labels), keepForceSync(es.Annotations, live.Annotations), *es.Spec.DeepCopy()
	})
	if err != nil {
		return nil, fmt.Errorf("updating ExternalSecret %s: %w", id, err)
	}
	return live, nil
}

// keepForceSync is the desired annotations (a copy: the live object goes on
// to be patched, and desired's map may be the caller's) plus the live
// force-sync annotation: it is ESO's and esosync's trigger, not the user's,
// and dropping it would cost a write and a sync when nothing else changed.
func keepForceSync(desired, live map[string]string) map[string]string {
	out := maps.Clone(desired)
	if v, ok := live[AnnotationForceSync]; ok {
		if out == nil {
			out = map[string]string{}
		}
		if _, set := out[AnnotationForceSync]; !set {
			out[AnnotationForceSync] = v
		}
	}
	return out
}

// fetch opens the store es refers to and reads every remote value.
func (e *Engine) fetch(ctx context.Context, log Logger, k kube.Clients, es *esv1.ExternalSecret) (*Fetched, error) {
	store, err := e.store(ctx, k, es.Spec.SecretStoreRef, es.Namespace)
	if err != nil {
		return nil, kube.CRDHint(err)
	}
	kind := es.Spec.SecretStoreRef.Kind
	if kind == "" {
		kind = esv1.SecretStoreKind
	}
	bc, err := e.openStore(ctx, k, store, es.Namespace)
	if err != nil {
		return nil, fmt.Errorf("ExternalSecret %s/%s: %s %s: %w", es.Namespace, es.Name, kind, es.Spec.SecretStoreRef.Name, err)
	}
	defer func() { _ = bc.Close(ctx) }()
	f, err := Fetch(ctx, es, bc)
	log.Debugf("backend calls of this provider session so far: %v", e.session.CallCounts())
	if err != nil {
		return nil, fmt.Errorf("ExternalSecret %s/%s: %s %s: %w", es.Namespace, es.Name, kind, es.Spec.SecretStoreRef.Name, err)
	}
	return f, nil
}

// finish writes the target Secret (provider mode) and the CR's status, or
// has ESO do it (controller mode), and reports.
func (e *Engine) finish(ctx context.Context, log Logger, k kube.Clients, h Hasher, es *esv1.ExternalSecret, mode Mode, fetched *Fetched,
	seen *Seen) (Report, error) {
	switch mode {
	case ModeNone:
		return observe(ctx, k, h, es, mode)
	case ModeController:
		return e.syncViaController(ctx, log, k, h, es)
	}
	outcome, err := WriteFrom(ctx, k.Client, es, fetched, seen, seen != nil)
	if err != nil {
		return Report{}, fmt.Errorf("ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := writeStatus(ctx, k.Client, es, outcome, now); err != nil {
		log.Warningf("ExternalSecret %s/%s: the Secret is synced but its status could not be written: %v", es.Namespace, es.Name, err)
	}
	out := reportOf(es, outcome.Secret, h)
	out.RemoteVersions = fetched.Versions
	out.SyncedAt = now.Format(time.RFC3339)
	out.Status = Status{Ready: outcome.Reason == ReasonSynced || outcome.Reason == ReasonSecretDeleted, Reason: outcome.Reason, Message: outcome.Message}
	if len(fetched.Missing) > 0 {
		out.Message += fmt.Sprintf("; remote keys not found and skipped: %s", strings.Join(fetched.Missing, ", "))
	}
	return out, nil
}

// writeStatus records the sync on the CR as ESO would, so kubectl users and
// ESO itself see it (ESO then skips a redundant refresh).
func writeStatus(ctx context.Context, c client.Client, es *esv1.ExternalSecret, o *Outcome, now time.Time) error {
	status := corev1.ConditionTrue
	if o.Reason != ReasonSynced && o.Reason != ReasonSecretDeleted {
		status = corev1.ConditionFalse
	}
	orig := es.DeepCopy()
	es.Status.RefreshTime = metav1.NewTime(now)
	es.Status.SyncedResourceVersion = esutil.GetResourceVersion(es.ObjectMeta)
	if o.Secret != nil {
		es.Status.Binding = corev1.LocalObjectReference{Name: o.Secret.Name}
	}
	cond := esv1.ExternalSecretStatusCondition{Type: esv1.ExternalSecretReady, Status: status, Reason: o.Reason, Message: o.Message,
		LastTransitionTime: metav1.NewTime(now)}
	es.Status.Conditions = []esv1.ExternalSecretStatusCondition{cond}
	// A patch: ESO, if it runs, may write the status at the same time.
	return c.Status().Patch(ctx, es, client.MergeFrom(orig))
}

// observe reports what the cluster says (none mode: ESO does the syncing).
func observe(ctx context.Context, k kube.Clients, h Hasher, es *esv1.ExternalSecret, mode Mode) (Report, error) {
	live := &esv1.ExternalSecret{}
	if err := k.Client.Get(ctx, client.ObjectKeyFromObject(es), live); err != nil {
		return Report{}, fmt.Errorf("reading ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
	}
	secret, err := targetSecret(ctx, k.Client, live)
	if err != nil {
		return Report{}, err
	}
	out := fromESO(ctx, k.Client, live, secret, h)
	if ReadyCondition(live) == nil {
		out.Message = fmt.Sprintf("waiting for the External Secrets Operator controller (sync: %s)", mode)
	}
	return out, nil
}

// syncViaController is `sync: controller`: trigger ESO, wait until it has
// synced the ExternalSecret as it now is (until ctx's deadline), then
// check the target Secret ESO wrote. The report is filled even on failure
// (not ready, ESO's reason), so the state records what went wrong.
func (e *Engine) syncViaController(ctx context.Context, log Logger, k kube.Clients, h Hasher, es *esv1.ExternalSecret) (Report, error) {
	key := client.ObjectKeyFromObject(es)
	out := reportOf(es, nil, h)
	out.Status = notReady(ReasonPending, "waiting for External Secrets Operator")
	if store, err := e.store(ctx, k, es.Spec.SecretStoreRef, es.Namespace); err == nil && storeNotReady(store) {
		store = store.Copy() // shared through the session's cache
		defer e.forgetStore(storeKind(store), store.GetNamespace(), store.GetName())
		log.InfoStatusf("ESO marked %s %s not ready; asking it to validate the store again", storeKind(store), store.GetName())
		if err := ReviveStore(ctx, k.Client, store, time.Now(), 500*time.Millisecond, func(reason, message string) {
			log.InfoStatusf("External Secrets Operator: %s: %s", reason, message)
		}); err != nil {
			out.Status = notReady(ReasonSyncedError, err.Error())
			return out, fmt.Errorf("ExternalSecret %s cannot be synced: %w", key, err)
		}
	}
	expected, err := e.trigger(ctx, k.Client, es)
	if err != nil {
		return out, err
	}
	log.InfoStatusf("waiting%s for External Secrets Operator to sync %s", upTo(ctx), key)
	live, err := Await(ctx, k.Client, key, expected, 500*time.Millisecond, func(reason, message string) {
		log.InfoStatusf("External Secrets Operator: %s: %s", reason, message)
	})
	if err != nil {
		if last := (&esv1.ExternalSecret{}); k.Client.Get(context.WithoutCancel(ctx), key, last) == nil {
			if cond := ReadyCondition(last); cond != nil {
				warning := esWarning(context.WithoutCancel(ctx), k.Client, last)
				out.Reason, out.Message = cond.Reason, withWarning(cond.Message, warning)
			}
		}
		return out, err
	}
	secret, err := targetSecret(ctx, k.Client, live)
	if err != nil {
		return out, err
	}
	out = fromESO(ctx, k.Client, live, secret, h)
	if problem := checkTarget(live, secret); problem != "" {
		out.Status = notReady(ReasonOutOfSync, problem)
		return out, fmt.Errorf("ExternalSecret %s: ESO reports it synced, but %s", key, problem)
	}
	return out, nil
}

// trigger makes ESO sync es and returns the resource version ESO will
// report once it has. An ExternalSecret that was just created (no status
// yet) is synced by ESO anyway: triggering it too would cost a write and a
// second sync by ESO for nothing.
func (e *Engine) trigger(ctx context.Context, c client.Client, es *esv1.ExternalSecret) (string, error) {
	if es.Generation == 1 && len(es.Status.Conditions) == 0 && es.Status.SyncedResourceVersion == "" {
		return esutil.GetResourceVersion(es.ObjectMeta), nil
	}
	return Trigger(ctx, c, es, time.Now())
}

// upTo says how long a wait may take, for progress messages.
func upTo(ctx context.Context) string {
	if d, ok := ctx.Deadline(); ok {
		return " up to " + time.Until(d).Round(time.Second).String()
	}
	return ""
}

// fromESO reports what ESO says about es and the Secret it wrote: its
// Ready condition and, when not ready, its latest Warning event, which
// carries the error the condition only names.
func fromESO(ctx context.Context, c client.Reader, es *esv1.ExternalSecret, secret *corev1.Secret, h Hasher) Report {
	out := reportOf(es, secret, h)
	out.Status = notReady(ReasonPending, "External Secrets Operator has not reported on it yet")
	if cond := ReadyCondition(es); cond != nil {
		out.Status = Status{Ready: cond.Status == corev1.ConditionTrue, Reason: cond.Reason, Message: cond.Message}
		if !out.Ready {
			warning := esWarning(ctx, c, es)
			out.Message = withWarning(cond.Message, warning)
		}
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
		return fmt.Sprintf("target Secret %s/%s does not exist", es.Namespace, TargetName(es))
	case !Consistent(secret):
		return fmt.Sprintf("target Secret %s/%s does not match ESO's data-hash annotation (edited out of band)", secret.Namespace, secret.Name)
	}
	return ""
}

func targetSecret(ctx context.Context, c client.Client, es *esv1.ExternalSecret) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: es.Namespace, Name: TargetName(es)}, secret)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading target Secret %s/%s: %w", es.Namespace, TargetName(es), err)
	}
	return secret, nil
}

// reportOf names the target Secret and, when it exists, its keys and
// keyed hash.
func reportOf(es *esv1.ExternalSecret, secret *corev1.Secret, h Hasher) Report {
	out := Report{SecretName: TargetName(es), Keys: []string{}, RemoteVersions: map[string]string{}}
	if secret != nil {
		out.Keys = slices.Sorted(maps.Keys(secret.Data))
		out.DataHash = h.Sum(secret.Data)
	}
	return out
}

// refuseForeignTarget fails when the target Secret exists and belongs to
// someone else, unless the creation policy merges into it (or writes nothing).
func refuseForeignTarget(es *esv1.ExternalSecret, secret *corev1.Secret) error {
	policy := es.Spec.Target.CreationPolicy
	if secret == nil || policy == esv1.CreatePolicyMerge || policy == esv1.CreatePolicyNone {
		return nil
	}
	if !OwnedBy(secret, es) {
		return fmt.Errorf("target.name: Secret %s/%s already exists and is not managed by this ExternalSecret; "+
			"esosync will not take it over (use target.creationPolicy Merge to merge into it, or choose another target.name)",
			secret.Namespace, secret.Name)
	}
	return nil
}

// ObserveExternalSecret reports drift. It re-reads the CR and the target
// Secret and, in provider mode (and in controller mode when ESO says all
// is well), the backend: a changed remote value, a hand-edited or deleted
// Secret, or a store whose backend rejects it shows as not ready, with a
// warning, so that drift is never swallowed. An error means nothing could
// be concluded (the cluster could not be read): the caller keeps its
// previous state.
func (e *Engine) ObserveExternalSecret(ctx context.Context, log Logger, key client.ObjectKey, mode Mode, prev Report) (Observation, error) {
	k, err := e.clients()
	if err != nil {
		return Observation{}, err
	}
	live := &esv1.ExternalSecret{}
	if err := k.Client.Get(ctx, key, live); err != nil {
		if kube.IsGone(err) {
			return Observation{}, nil
		}
		return Observation{}, err
	}
	h, err := e.hasher(ctx, k.Client, key.Namespace)
	if err != nil {
		return Observation{}, err
	}
	obs := Observation{Found: true, Live: live}
	if mode == ModeNone {
		obs.Report, err = observe(ctx, k, h, live, mode)
		return obs, err
	}
	secret, err := targetSecret(ctx, k.Client, live)
	if err != nil {
		return Observation{}, err
	}
	out := reportOf(live, secret, h)
	out.SyncedAt, out.RemoteVersions = prev.SyncedAt, prev.RemoteVersions
	out.Status = ready(ReasonSynced, "secret synced")
	if mode == ModeController {
		// ESO's own report comes first; esosync adds its check of the Secret.
		out = fromESO(ctx, k.Client, live, secret, h)
		out.RemoteVersions = prev.RemoteVersions
		if problem := checkTarget(live, secret); out.Ready && problem != "" {
			out.Status = notReady(ReasonOutOfSync, problem)
		}
		if !out.Ready {
			log.Warningf("ExternalSecret %s is not ready: %s: %s", key, out.Reason, out.Message)
			obs.Report = out
			return obs, nil
		}
	}
	fetched, err := e.fetch(ctx, log, k, live)
	switch {
	case err != nil && mode == ModeController && (Indeterminate(err) || errors.Is(err, ErrInClusterCredentials)):
		// ESO reads the backend from inside the cluster, where the provider
		// may not reach it or may lack the credentials ESO has (its own
		// ServiceAccount). ESO's report stands.
		log.Debugf("refresh of ExternalSecret %s: the backend could not be reached from here: %v", key, err)
	case err != nil:
		// The backend answered and refused (credentials rejected, key
		// gone), or cannot be reached at all: ESO's next sync will fail
		// the same way, so the user learns it now.
		out.Status = notReady(ReasonSyncedError, "the backend could not be read: "+StableMessage(err.Error()))
		log.Warningf("ExternalSecret %s is not ready: %s", key, out.Message)
	default:
		out.RemoteVersions = fetched.Versions
		if st := compare(ctx, k.Client, live, secret, fetched, prev.RemoteVersions); !st.Ready || mode == ModeProvider {
			out.Status = st
		}
		if !out.Ready {
			log.Warningf("ExternalSecret %s is not ready: %s: %s", key, out.Reason, out.Message)
		}
	}
	obs.Report = out
	return obs, nil
}

// compare decides whether the live Secret is what a sync would write now.
func compare(ctx context.Context, c client.Client, es *esv1.ExternalSecret, secret *corev1.Secret, fetched *Fetched, oldVersions map[string]string) Status {
	policy := es.Spec.Target.CreationPolicy
	if policy == esv1.CreatePolicyNone {
		return ready(ReasonSynced, "secret creation skipped due to CreationPolicy=None")
	}
	if secret == nil {
		if len(fetched.Data) == 0 || policy == esv1.CreatePolicyMerge {
			return ready(ReasonSynced, "no data to sync")
		}
		return notReady(ReasonSecretMissing, fmt.Sprintf("target Secret %s/%s does not exist (deleted out of band)", es.Namespace, TargetName(es)))
	}
	desired := secret.DeepCopy()
	if err := Mutate(ctx, c, desired, es, fetched.Data); err != nil {
		return notReady(ReasonSyncedError, err.Error())
	}
	if sameData(desired.Data, secret.Data) && Consistent(secret) {
		return ready(ReasonSynced, "secret synced")
	}
	var changed []string
	for key, v := range fetched.Versions {
		if old, ok := oldVersions[key]; ok && old != v {
			changed = append(changed, fmt.Sprintf("%s (version %s -> %s)", key, old, v))
		}
	}
	slices.Sort(changed)
	switch {
	case len(changed) > 0:
		return notReady(ReasonOutOfSync, "remote value changed: "+strings.Join(changed, ", "))
	case !Consistent(secret):
		return notReady(ReasonOutOfSync, fmt.Sprintf("target Secret %s/%s was edited out of band", secret.Namespace, secret.Name))
	}
	return notReady(ReasonOutOfSync, "target Secret differs from the backend's current values")
}

// Indeterminate reports errors that say nothing about the resource: the
// server could not be reached or did not answer in time.
func Indeterminate(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, context.DeadlineExceeded) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServiceUnavailable(err)
}

// DeleteExternalSecret removes the CR and, under creationPolicy Owner, the
// target Secret if this ExternalSecret owns it (ESO's garbage collection
// would do the same, later). Orphan, Merge and None leave the Secret.
func (e *Engine) DeleteExternalSecret(ctx context.Context, key client.ObjectKey) error {
	if err := e.RemoveExternalSecret(ctx, key); err != nil {
		return err
	}
	return e.ReleaseNamespace(ctx, key.Namespace)
}

// ReleaseNamespace removes the namespace's HMAC key Secret when nothing
// of esosync's is left there. After many RemoveExternalSecret calls, one
// ReleaseNamespace does what each DeleteExternalSecret would.
func (e *Engine) ReleaseNamespace(ctx context.Context, namespace string) error {
	k, err := e.clients()
	if err != nil {
		return err
	}
	return e.release(ctx, k.Client, namespace)
}

// RemoveExternalSecret is DeleteExternalSecret without the namespace's
// release.
func (e *Engine) RemoveExternalSecret(ctx context.Context, key client.ObjectKey) error {
	k, err := e.clients()
	if err != nil {
		return err
	}
	live := &esv1.ExternalSecret{}
	if err := k.Client.Get(ctx, key, live); err != nil {
		if kube.IsGone(err) {
			return nil
		}
		return fmt.Errorf("reading ExternalSecret %s: %w", key, err)
	}
	// The CR goes first: while it exists, ESO (which watches the Secrets it
	// owns) would write a deleted target Secret again.
	if err := k.Client.Delete(ctx, live); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting ExternalSecret %s: %w", key, err)
	}
	if live.Spec.Target.CreationPolicy == esv1.CreatePolicyOwner {
		secret, err := targetSecret(ctx, k.Client, live)
		if err != nil {
			return err
		}
		if secret != nil && OwnedBy(secret, live) {
			if err := k.Client.Delete(ctx, secret); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("deleting target Secret %s/%s: %w", secret.Namespace, secret.Name, err)
			}
		}
	}
	return nil
}

// release removes the namespace's HMAC key when this was its last user.
func (e *Engine) release(ctx context.Context, c client.Client, namespace string) error {
	if err := e.releaseKey(ctx, c, namespace); err != nil {
		return fmt.Errorf("removing the HMAC key Secret %s/%s, which nothing uses any more: %w", namespace, HMACKeySecret, err)
	}
	return nil
}
