package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/esosync/pulumi-esosync/provider/internal/escsource"
	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// credentialsChangedAnnotation is set on a store when esosync rewrote its
// credentials, so that ESO re-validates it at once (ESO does not watch the
// credentials Secret).
const credentialsChangedAnnotation = "esosync.io/credentials-changed-at"

// StoreRequest is a SecretStore or ClusterSecretStore as the program
// declares it.
type StoreRequest struct {
	// Kind is esv1.SecretStoreKind or esv1.ClusterSecretStoreKind.
	Kind string
	// Name and Namespace locate the store; Namespace is empty for a
	// ClusterSecretStore.
	Name, Namespace string
	// CredentialsNamespace is where the managed credentials Secret lives.
	CredentialsNamespace string
	// Spec is ESO's store spec; selectors of managed credentials already
	// point at CredentialsSecretName(Name).
	Spec esv1.SecretStoreSpec
	// Labels and Annotations of the store CR.
	Labels, Annotations map[string]string
	// Credentials are the values of the managed credentials Secret.
	Credentials []Credential
	// SkipValidation skips logging in to the backend before writing.
	SkipValidation bool
	// WaitForReady waits (until ctx's deadline) for ESO to report the store
	// Ready.
	WaitForReady bool
}

// Credential is one key of the managed credentials Secret: a literal value
// or a value read from a Pulumi ESC environment.
type Credential struct {
	// Field is the input's schema path, for errors.
	Field string
	// Key is the key in the managed Secret.
	Key string
	// Value is the literal value (when ESC is nil).
	Value string
	// ESC names the value in an ESC environment.
	ESC *escsource.Ref
}

// StoreReport is what esosync knows about a store. Hashes only, no values.
type StoreReport struct {
	// SpecHash is the hash of the store's spec as last seen in the cluster.
	SpecHash string
	// CredentialsHash is the hash of the managed credentials as last seen
	// in the cluster ("" without managed credentials).
	CredentialsHash string
	// SourcesHash is the hash of the credentials read from ESC ("" without
	// ESC sources).
	SourcesHash string
	// CredentialsSecret is the managed credentials Secret's name, if any.
	CredentialsSecret string
	Status
}

// StoreObservation is a store as found in the cluster.
type StoreObservation struct {
	Found  bool
	Live   esv1.GenericStore
	Report StoreReport
}

// CredentialsSecretName is the name of the Secret esosync manages for a
// store's `value` and `esc` credentials.
func CredentialsSecretName(store string) string { return store + "-esosync-credentials" }

// Describe names a store in messages: namespace/name, or name.
func (r StoreRequest) Describe() string {
	if r.Namespace != "" {
		return r.Namespace + "/" + r.Name
	}
	return r.Name
}

func (r StoreRequest) owner() string { return r.Kind + "/" + r.Describe() }

func (r StoreRequest) credentialsKey() client.ObjectKey {
	return client.ObjectKey{Namespace: r.CredentialsNamespace, Name: CredentialsSecretName(r.Name)}
}

// object is the store CR the request describes.
func (r StoreRequest) object() esv1.GenericStore {
	meta := metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace, Labels: map[string]string{kube.ManagedByLabel: kube.ManagedByValue},
		Annotations: r.Annotations}
	maps.Copy(meta.Labels, r.Labels)
	if r.Kind == esv1.ClusterSecretStoreKind {
		return &esv1.ClusterSecretStore{ObjectMeta: meta, Spec: r.Spec}
	}
	return &esv1.SecretStore{ObjectMeta: meta, Spec: r.Spec}
}

// emptyStore is an empty object of the request's kind, named like it.
func (r StoreRequest) emptyStore() esv1.GenericStore {
	return StoreRequest{Kind: r.Kind, Name: r.Name, Namespace: r.Namespace}.object()
}

// PreviewStore is what a preview knows without any I/O. The credential
// hashes are keyed with a key held in the cluster, so a preview leaves
// them to the caller (an update keeps the previous ones).
func PreviewStore(r StoreRequest) StoreReport {
	out := StoreReport{SpecHash: HashJSON(r.Spec), Status: Status{Ready: true}}
	if len(r.Credentials) > 0 {
		out.CredentialsSecret = CredentialsSecretName(r.Name)
	}
	return out
}

// resolveCredentials returns the managed credentials (nil when there are
// none), opening ESC environments for esc sources, and the values read
// from ESC (nil when there are none).
func (e *Engine) resolveCredentials(ctx context.Context, r StoreRequest) (map[string][]byte, map[string][]byte, error) {
	if len(r.Credentials) == 0 {
		return nil, nil, nil
	}
	creds, fromESC := map[string][]byte{}, map[string][]byte{}
	for _, c := range r.Credentials {
		if c.ESC == nil {
			creds[c.Key] = []byte(c.Value)
			continue
		}
		v, err := e.esc.Read(ctx, c.Field, *c.ESC)
		if err != nil {
			return nil, nil, err
		}
		creds[c.Key], fromESC[c.Key] = []byte(v), []byte(v)
	}
	if len(fromESC) == 0 {
		fromESC = nil
	}
	return creds, fromESC, nil
}

// report is the StoreReport of what apply wrote, its credentials hashed
// with the key of their namespace.
func (r StoreRequest) report(h Hasher, creds, fromESC map[string][]byte) StoreReport {
	out := StoreReport{SpecHash: HashJSON(r.Spec), CredentialsHash: h.Sum(creds), SourcesHash: h.Sum(fromESC), Status: Status{Ready: true}}
	if creds != nil {
		out.CredentialsSecret = CredentialsSecretName(r.Name)
	}
	return out
}

// credentialsHasher is the Hasher of the store's credentials namespace,
// loaded only when the store has managed credentials.
func (e *Engine) credentialsHasher(ctx context.Context, k kube.Clients, r StoreRequest, creds map[string][]byte) (Hasher, error) {
	if creds == nil {
		return Hasher{}, nil
	}
	return e.hasher(ctx, k.Client, r.CredentialsNamespace)
}

// ApplyStore writes the managed credentials, validates the store against
// its backend, then creates (create) or updates the store CR and, with
// WaitForReady, waits until ctx's deadline for ESO to report it Ready.
// Nothing is left behind when validation fails on create, and a failed
// update puts the previous credentials back.
func (e *Engine) ApplyStore(ctx context.Context, log Logger, r StoreRequest, create bool) (StoreReport, error) {
	started := time.Now()
	creds, fromESC, err := e.resolveCredentials(ctx, r)
	if err != nil {
		return StoreReport{}, err
	}
	k, err := e.clients()
	if err != nil {
		return StoreReport{}, err
	}
	h, err := e.credentialsHasher(ctx, k, r, creds)
	if err != nil {
		return StoreReport{}, err
	}
	obj := r.object()
	if create {
		existing := r.emptyStore()
		if err := k.Client.Get(ctx, client.ObjectKeyFromObject(existing), existing); err == nil {
			return StoreReport{}, alreadyExists(r.Kind, r.Describe())
		} else if !kube.IsGone(err) {
			return StoreReport{}, fmt.Errorf("reading %s %s: %w", r.Kind, r.Describe(), err)
		}
	}
	credsWrite, err := writeCredentials(ctx, k.Client, r, creds, create)
	if err != nil {
		return StoreReport{}, err
	}
	if credsWrite.changed && !create {
		ann := maps.Clone(obj.GetAnnotations())
		if ann == nil {
			ann = map[string]string{}
		}
		ann[credentialsChangedAnnotation] = time.Now().UTC().Format(time.RFC3339Nano)
		obj.SetAnnotations(ann)
	}
	if err := e.writeStore(ctx, log, k, r, obj, create); err != nil {
		return StoreReport{}, credsWrite.rollback(ctx, k.Client, r, err)
	}
	if creds == nil && !create {
		if err := kube.DeleteOwnedSecret(ctx, k.Client, r.credentialsKey(), r.owner()); err != nil {
			return StoreReport{}, fmt.Errorf("%s %s: managed credentials: %w", r.Kind, r.Describe(), err)
		}
	}
	out := r.report(h, creds, fromESC)
	if r.WaitForReady {
		log.InfoStatusf("waiting%s for External Secrets Operator to validate %s %s", upTo(ctx), r.Kind, r.Describe())
		if err := AwaitStore(ctx, k.Client, r.emptyStore(), started, 500*time.Millisecond, func(reason, message string) {
			log.InfoStatusf("External Secrets Operator: %s: %s", reason, message)
		}); err != nil {
			return out, err
		}
	}
	return out, nil
}

// credentialsWrite is what writeCredentials did, so a failure can undo it.
type credentialsWrite struct {
	created, changed bool
	// previous is what the Secret held before an update.
	previous map[string][]byte
}

// writeCredentials writes the managed credentials Secret (if any),
// remembering what it held before.
func writeCredentials(ctx context.Context, c client.Client, r StoreRequest, creds map[string][]byte, create bool) (credentialsWrite, error) {
	var w credentialsWrite
	if creds == nil {
		return w, nil
	}
	if !create {
		previous, found, err := kube.ReadOwnedSecret(ctx, c, r.credentialsKey(), r.owner())
		if err == nil && found {
			w.previous = previous
		}
	}
	var err error
	w.created, w.changed, err = kube.WriteOwnedSecret(ctx, c, r.credentialsKey(), r.owner(), creds)
	if err != nil {
		return w, fmt.Errorf("%s %s: managed credentials: %w", r.Kind, r.Describe(), err)
	}
	return w, nil
}

// rollback undoes a credentials write after err: the store must keep
// working with its old credentials, and a failed create leaves nothing.
func (w credentialsWrite) rollback(ctx context.Context, c client.Client, r StoreRequest, err error) error {
	switch {
	case w.created:
		_ = kube.DeleteOwnedSecret(ctx, c, r.credentialsKey(), r.owner())
	case w.changed && w.previous != nil:
		if _, _, rerr := kube.WriteOwnedSecret(ctx, c, r.credentialsKey(), r.owner(), w.previous); rerr != nil {
			err = fmt.Errorf("%w (and restoring the previous credentials failed: %v)", err, rerr)
		}
	}
	return err
}

// writeStore validates the store against its backend (unless skipped) and
// creates or updates the CR.
func (e *Engine) writeStore(ctx context.Context, log Logger, k kube.Clients, r StoreRequest, obj esv1.GenericStore, create bool) error {
	defer e.forgetStore(r.Kind, r.Namespace, r.Name)
	if !r.SkipValidation {
		err := e.validateStore(ctx, k, obj, r.CredentialsNamespace)
		switch {
		case errors.Is(err, ErrInClusterCredentials) && r.WaitForReady:
			// ESO's validation is the only one possible.
			log.Infof("%s %s: not validated from outside the cluster (%v); waiting for ESO's validation instead", r.Kind, r.Describe(), err)
		case err != nil:
			return err
		}
	}
	if create {
		if err := k.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s %s: %w", r.Kind, r.Describe(), kube.CRDHint(err))
		}
		return nil
	}
	_, err := kube.Upsert(ctx, k.Client, obj, r.emptyStore, func(live esv1.GenericStore) {
		live.SetLabels(maps.Clone(obj.GetLabels()))
		live.SetAnnotations(maps.Clone(obj.GetAnnotations()))
		*live.GetSpec() = *obj.GetSpec().DeepCopy()
	})
	if err != nil {
		return fmt.Errorf("updating %s %s: %w", r.Kind, r.Describe(), err)
	}
	return nil
}

// validateStore logs in to the backend with the store's credentials, as ESO
// would, and checks access to the store's scope.
func (e *Engine) validateStore(ctx context.Context, k kube.Clients, store esv1.GenericStore, namespace string) error {
	bc, err := OpenStore(ctx, k, e.session, store, namespace)
	if err != nil {
		return fmt.Errorf("store %s is not valid: %w", store.GetName(), err)
	}
	defer func() { _ = bc.Close(ctx) }()
	if err := bc.Validate(ctx); err != nil {
		return fmt.Errorf("store %s is not valid: %w", store.GetName(), err)
	}
	return nil
}

// ReadStore returns the store of kind at namespace/name, or nil when it
// does not exist (or its kind is not served).
func (e *Engine) ReadStore(ctx context.Context, kind, namespace, name string) (esv1.GenericStore, error) {
	k, err := e.clients()
	if err != nil {
		return nil, err
	}
	live := StoreRequest{Kind: kind, Name: name, Namespace: namespace}.emptyStore()
	if err := k.Client.Get(ctx, client.ObjectKeyFromObject(live), live); err != nil {
		if kube.IsGone(err) {
			return nil, nil
		}
		return nil, err
	}
	return live, nil
}

// ObserveStore reports drift: the CR's spec edited out of band, the
// managed credentials Secret edited or deleted, or an ESC credential
// source rotated (the Secret still holds the old value). An error means
// nothing could be concluded: the caller keeps its previous state.
func (e *Engine) ObserveStore(ctx context.Context, log Logger, r StoreRequest, prev StoreReport) (StoreObservation, error) {
	live, err := e.ReadStore(ctx, r.Kind, r.Namespace, r.Name)
	if err != nil || live == nil {
		return StoreObservation{}, err
	}
	k, err := e.clients()
	if err != nil {
		return StoreObservation{}, err
	}
	out := prev
	out.SpecHash = HashJSON(*live.GetSpec())
	out.Status = esoStoreStatus(ctx, k.Client, r.Kind, live)
	var have map[string][]byte
	var h Hasher // loaded when there are credentials to hash
	if prev.CredentialsSecret != "" || len(r.Credentials) > 0 {
		data, found, err := kube.ReadOwnedSecret(ctx, k.Client, r.credentialsKey(), r.owner())
		if err != nil {
			return StoreObservation{}, err
		}
		if found {
			have = data
		}
		if h, err = e.hasher(ctx, k.Client, r.CredentialsNamespace); err != nil {
			return StoreObservation{}, err
		}
		out.CredentialsHash = h.Sum(have)
	}
	want, fromESC, err := e.resolveCredentials(ctx, r)
	if err != nil {
		// ESC could not be read: nothing is known about rotation.
		log.Warningf("refresh of %s %s could not read its ESC credential sources and kept their previous hash: %v", r.Kind, r.Describe(), err)
		return StoreObservation{Found: true, Live: live, Report: out}, nil
	}
	out.SourcesHash = h.Sum(fromESC) // ESC values imply credentials, so h is loaded; none hash to ""
	if (want == nil) != (have == nil) || !sameData(want, have) {
		out.Status = notReady(ReasonCredentialsDrift, fmt.Sprintf("the managed credentials Secret %s does not hold the "+
			"credentials the inputs give (edited or deleted out of band, or rotated in an ESC environment); "+
			"`pulumi up` rewrites it", r.credentialsKey()))
	}
	if !out.Ready {
		log.Warningf("%s %s is not ready: %s: %s", r.Kind, r.Describe(), out.Reason, out.Message)
	}
	return StoreObservation{Found: true, Live: live, Report: out}, nil
}

// esoStoreStatus is ESO's verdict on a store: not ready, with its latest
// Warning event, when ESO reports the store invalid; ready otherwise
// (also when no ESO controller has reported: esosync validated it).
func esoStoreStatus(ctx context.Context, c client.Client, kind string, live esv1.GenericStore) Status {
	if cond := storeReadyCondition(live); cond != nil && cond.Status == corev1.ConditionFalse {
		warning, _ := LatestWarning(ctx, c, kind, live, cond.Reason)
		return notReady(cond.Reason, withWarning(cond.Message, warning))
	}
	return Status{Ready: true}
}

// DeleteStore removes the store CR and the credentials Secret esosync
// manages for it.
func (e *Engine) DeleteStore(ctx context.Context, r StoreRequest) error {
	defer e.forgetStore(r.Kind, r.Namespace, r.Name)
	k, err := e.clients()
	if err != nil {
		return err
	}
	if err := k.Client.Delete(ctx, r.emptyStore()); err != nil && !kube.IsGone(err) {
		return fmt.Errorf("deleting %s %s: %w", r.Kind, r.Describe(), err)
	}
	if err := kube.DeleteOwnedSecret(ctx, k.Client, r.credentialsKey(), r.owner()); err != nil {
		return fmt.Errorf("%s %s: managed credentials: %w", r.Kind, r.Describe(), err)
	}
	if r.CredentialsNamespace == "" {
		return nil
	}
	return e.release(ctx, k.Client, r.CredentialsNamespace)
}

// HashJSON is the sha256 of v's JSON encoding, for specs (not values).
func HashJSON(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
