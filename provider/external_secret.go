package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	esutil "github.com/external-secrets/external-secrets/pkg/controllers/util"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/kube"
	"github.com/esosync/pulumi-esosync/provider/internal/sync"
)

// ExternalSecret is ESO's ExternalSecret, plus a choice of who syncs it.
type ExternalSecret struct{}

// ExternalSecretArgs are the inputs of an ExternalSecret.
type ExternalSecretArgs struct {
	Name            *string                  `pulumi:"name,optional"`
	Namespace       *string                  `pulumi:"namespace,optional"`
	Store           StoreRef                 `pulumi:"store"`
	RefreshInterval *string                  `pulumi:"refreshInterval,optional"`
	Target          *ExternalSecretTarget    `pulumi:"target,optional"`
	Data            []ExternalSecretData     `pulumi:"data,optional"`
	DataFrom        []ExternalSecretDataFrom `pulumi:"dataFrom,optional"`
	Sync            *SyncMode                `pulumi:"sync,optional"`
	Timeout         *string                  `pulumi:"timeout,optional"`
	Labels          map[string]string        `pulumi:"labels,optional"`
	Annotations     map[string]string        `pulumi:"annotations,optional"`
}

// ExternalSecretTarget is the Secret ESO writes.
type ExternalSecretTarget struct {
	Name           *string           `pulumi:"name,optional"`
	CreationPolicy *CreationPolicy   `pulumi:"creationPolicy,optional"`
	DeletionPolicy *DeletionPolicy   `pulumi:"deletionPolicy,optional"`
	Type           *string           `pulumi:"type,optional"`
	Labels         map[string]string `pulumi:"labels,optional"`
	Annotations    map[string]string `pulumi:"annotations,optional"`
	Immutable      *bool             `pulumi:"immutable,optional"`
	Template       *TargetTemplate   `pulumi:"template,optional"`
}

// ExternalSecretData maps one remote value to one Secret key.
type ExternalSecretData struct {
	SecretKey string    `pulumi:"secretKey"`
	RemoteRef RemoteRef `pulumi:"remoteRef"`
}

// RemoteRef names a remote value.
type RemoteRef struct {
	Key                string              `pulumi:"key"`
	Property           *string             `pulumi:"property,optional"`
	Version            *string             `pulumi:"version,optional"`
	DecodingStrategy   *DecodingStrategy   `pulumi:"decodingStrategy,optional"`
	ConversionStrategy *ConversionStrategy `pulumi:"conversionStrategy,optional"`
}

// ExternalSecretDataFrom copies many remote values at once.
type ExternalSecretDataFrom struct {
	Extract *RemoteRef `pulumi:"extract,optional"`
	Find    *FindRef   `pulumi:"find,optional"`
	Rewrite []Rewrite  `pulumi:"rewrite,optional"`
}

// ExternalSecretOutputs are what an ExternalSecret reports. None holds a value.
type ExternalSecretOutputs struct {
	SecretName     string            `pulumi:"secretName"`
	Keys           []string          `pulumi:"keys"`
	DataHash       string            `pulumi:"dataHash"`
	RemoteVersions map[string]string `pulumi:"remoteVersions"`
	SyncedAt       string            `pulumi:"syncedAt"`
	Ready          bool              `pulumi:"ready"`
	Reason         string            `pulumi:"reason"`
	Message        string            `pulumi:"message"`
}

// ExternalSecretState is the state of an ExternalSecret.
type ExternalSecretState struct {
	ExternalSecretArgs
	ExternalSecretOutputs
}

// Annotate documents ExternalSecret.
func (e *ExternalSecret) Annotate(a infer.Annotator) {
	a.Describe(e, "An External Secrets Operator ExternalSecret. With `sync: provider` the provider fetches from the backend "+
		"and writes the target Secret exactly as ESO would (same keys, bytes, labels and data-hash annotation), so the "+
		"Secret is current when `pulumi up` returns; `pulumi refresh` re-reads the backend and the Secret and reports drift. "+
		"Outputs carry key names, versions and hashes, never values.")
}

// Annotate documents ExternalSecretArgs.
func (e *ExternalSecretArgs) Annotate(a infer.Annotator) {
	a.Describe(&e.Name, "Name of the ExternalSecret. Defaults to the Pulumi resource name.")
	a.Describe(&e.Namespace, "Namespace of the ExternalSecret and its target Secret. Defaults to the provider's namespace.")
	a.Describe(&e.Store, "The store to read from; pass a SecretStore's or ClusterSecretStore's `ref` output.")
	a.Describe(&e.RefreshInterval, "How often ESO re-syncs in the cluster, as a Go duration (`1h`, `15m`, `0` for never). Default `1h`.")
	a.Describe(&e.Target, "The Secret to write. Defaults: name = the ExternalSecret's name, creationPolicy `Owner`, deletionPolicy `Retain`.")
	a.Describe(&e.Data, "Remote values, one per Secret key.")
	a.Describe(&e.DataFrom, "Remote secrets whose keys are all copied (`extract`).")
	a.Describe(&e.Sync, "Who makes the Secret current at `pulumi up`: `controller` (ESO in the cluster; default), "+
		"`provider` (the provider itself), `none` (only write the ExternalSecret).")
	a.Describe(&e.Timeout, "How long `pulumi up` waits for ESO to sync with `sync: controller`, as a Go duration. Default `5m`.")
	a.Describe(&e.Labels, "Labels for the ExternalSecret resource (ESO copies them to the Secret when no target labels are set).")
	a.Describe(&e.Annotations, "Annotations for the ExternalSecret resource.")
}

// Annotate documents ExternalSecretTarget.
func (t *ExternalSecretTarget) Annotate(a infer.Annotator) {
	a.Describe(t, "The Kubernetes Secret the ExternalSecret writes: name, policies, type, labels and template.")
	a.Describe(&t.Name, "Name of the Secret. Defaults to the ExternalSecret's name.")
	a.Describe(&t.CreationPolicy, "`Owner` (default), `Orphan`, `Merge` or `None`.")
	a.Describe(&t.DeletionPolicy, "`Retain` (default) or `Delete` (when every remote key is gone; needs creationPolicy `Owner`).")
	a.Describe(&t.Type, "Secret type, e.g. `kubernetes.io/dockerconfigjson`. Default `Opaque`.")
	a.Describe(&t.Labels, "Labels of the Secret.")
	a.Describe(&t.Annotations, "Annotations of the Secret.")
	a.Describe(&t.Immutable, "Make the Secret immutable.")
	a.Describe(&t.Template, "Render the Secret with ESO's template engine v2 (instead of the `type`/`labels`/`annotations` shorthands).")
}

// Annotate documents ExternalSecretData.
func (d *ExternalSecretData) Annotate(a infer.Annotator) {
	a.Describe(d, "One key of the target Secret and the remote value it holds, e.g. `{ secretKey: \"password\", remoteRef: { key: \"my-app/config\", property: \"password\" } }`.")
	a.Describe(&d.SecretKey, "Key in the Secret.")
	a.Describe(&d.RemoteRef, "The remote value, e.g. `{ key: \"my-app/config\", property: \"password\" }`.")
}

// Annotate documents RemoteRef.
func (r *RemoteRef) Annotate(a infer.Annotator) {
	a.Describe(r, "A remote value: a key in the store's backend, optionally one property of it and a pinned version.")
	a.Describe(&r.Key, "Remote key, e.g. the Vault path below the store's mount.")
	a.Describe(&r.Property, "Property inside the remote secret (gjson path for nested values). Empty means the whole secret as JSON.")
	a.Describe(&r.Version, "Remote version; default the current one.")
	a.Describe(&r.DecodingStrategy, "`None` (default), `Base64`, `Base64URL` or `Auto`.")
	a.Describe(&r.ConversionStrategy, "For `dataFrom.extract`: `Default` or `Unicode`, how to turn keys into valid Secret keys.")
}

// Annotate documents ExternalSecretDataFrom.
func (d *ExternalSecretDataFrom) Annotate(a infer.Annotator) {
	a.Describe(d, "Many keys at once: every key of one remote secret (`extract`) or of every secret a search finds (`find`), optionally renamed (`rewrite`).")
	a.Describe(&d.Extract, "Copy every key of a remote secret (or of the object at `property`).")
	a.Describe(&d.Find, "Copy every remote secret that matches (one key per secret).")
	a.Describe(&d.Rewrite, "Rewrite the keys of the extract or find result.")
}

// Annotate documents ExternalSecretOutputs.
func (o *ExternalSecretOutputs) Annotate(a infer.Annotator) {
	a.Describe(&o.SecretName, "Name of the target Secret.")
	a.Describe(&o.Keys, "Keys of the target Secret (names only).")
	a.Describe(&o.DataHash, "sha256 over the target Secret's data. Changes whenever the synced content changes: "+
		"put it in a pod template annotation to roll a Deployment when the secret rotates.")
	a.Describe(&o.RemoteVersions, "Backend version of each remote key read (Vault KV v2 version).")
	a.Describe(&o.SyncedAt, "When the Secret was last synced (RFC 3339).")
	a.Describe(&o.Ready, "Whether the Secret holds the backend's current values.")
	a.Describe(&o.Reason, "ESO-style reason: `SecretSynced`, `SecretSyncedError`, `SecretMissing`, `OutOfSync`, `Pending`, …")
	a.Describe(&o.Message, "Human-readable detail for `reason`.")
}

const reasonOutOfSync = "OutOfSync"

func (a ExternalSecretArgs) mode() SyncMode { return ptrOr(a.Sync, SyncController) }

// Check validates every input, with the field path in each failure, without
// touching the cluster.
func (ExternalSecret) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[ExternalSecretArgs], error) {
	args, failures, err := infer.DefaultCheck[ExternalSecretArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 {
		return infer.CheckResponse[ExternalSecretArgs]{Inputs: args, Failures: failures}, err
	}
	pr := newProblems(req.NewInputs)
	pr.objectName(args.Name, req.Name)
	pr.namespace("namespace", args.Namespace)
	oneOf(pr, "store.kind", &args.Store.Kind, SecretStoreKind, ClusterSecretStoreKind)
	pr.dnsName("store.name", args.Store.Name, true)
	if ri := args.RefreshInterval; ri != nil {
		if d, err := time.ParseDuration(*ri); err != nil {
			pr.add("refreshInterval", "%q is not a duration such as \"1h\" or \"15m\"", *ri)
		} else if d < 0 {
			pr.add("refreshInterval", "%q must not be negative", *ri)
		}
	}
	oneOf(pr, "sync", args.Sync, SyncController, SyncProvider, SyncNone)
	pr.duration("timeout", args.Timeout)
	if t := args.Target; t != nil {
		pr.dnsName("target.name", ptrOr(t.Name, ""), false)
		oneOf(pr, "target.creationPolicy", t.CreationPolicy, "Owner", "Orphan", "Merge", "None")
		oneOf(pr, "target.deletionPolicy", t.DeletionPolicy, "Retain", "Delete", "Merge")
		if t.Template != nil {
			if t.Type != nil || len(t.Labels) > 0 || len(t.Annotations) > 0 {
				pr.add("target.template", "set either template or the type/labels/annotations shorthands, not both")
			}
			checkTemplate(pr, "target.template", t.Template)
		}
		if ptrOr(t.DeletionPolicy, "Retain") == "Delete" && ptrOr(t.CreationPolicy, "Owner") != "Owner" {
			pr.add("target.deletionPolicy", "Delete needs creationPolicy Owner (esosync only deletes Secrets it owns)")
		}
	}
	if len(args.Data) == 0 && len(args.DataFrom) == 0 {
		pr.add("data", "set at least one data or dataFrom entry")
	}
	for i, d := range args.Data {
		at := fmt.Sprintf("data[%d]", i)
		pr.secretKey(at+".secretKey", d.SecretKey)
		checkRemoteRef(pr, at+".remoteRef", &d.RemoteRef)
	}
	for i, d := range args.DataFrom {
		at := fmt.Sprintf("dataFrom[%d]", i)
		switch {
		case (d.Extract == nil) == (d.Find == nil):
			pr.add(at, "set exactly one of extract or find")
		case d.Extract != nil:
			checkRemoteRef(pr, at+".extract", d.Extract)
			oneOf(pr, at+".extract.conversionStrategy", d.Extract.ConversionStrategy, "Default", "Unicode")
		default:
			checkFind(pr, at+".find", d.Find)
		}
		checkRewrites(pr, at, d.Rewrite)
	}
	if len(pr.failures) == 0 && args.mode() == SyncProvider {
		noteDemand(ctx, args)
	}
	return infer.CheckResponse[ExternalSecretArgs]{Inputs: args, Failures: pr.failures}, nil
}

// noteDemand tells batching backends which remote keys this ExternalSecret
// will read, so that one batch serves the whole deploy (see backend.NoteDemand).
// Pinned versions are read one by one and are left out.
func noteDemand(ctx context.Context, a ExternalSecretArgs) {
	if a.Store.Name == "" {
		return // not known yet at preview
	}
	ns := ptrOr(a.Namespace, defaultNamespace(ctx))
	if a.Store.Kind == ClusterSecretStoreKind {
		ns = ""
	}
	var keys []string
	for _, d := range a.Data {
		if d.RemoteRef.Version == nil && d.RemoteRef.Key != "" {
			keys = append(keys, d.RemoteRef.Key)
		}
	}
	for _, d := range a.DataFrom {
		if d.Extract != nil && d.Extract.Version == nil && d.Extract.Key != "" {
			keys = append(keys, d.Extract.Key)
		}
	}
	if len(keys) > 0 {
		backend.NoteDemand(sync.StoreID(a.Store.Kind, ns, a.Store.Name), keys...)
	}
}

func checkRemoteRef(pr *problems, at string, r *RemoteRef) {
	if strings.TrimSpace(r.Key) == "" {
		pr.add(at+".key", "must not be empty")
	}
	oneOf(pr, at+".decodingStrategy", r.DecodingStrategy, "None", "Base64", "Base64URL", "Auto")
	if r.Version != nil && *r.Version == "" {
		pr.add(at+".version", "must not be empty when set")
	}
}

// object builds ESO's ExternalSecret CR from the inputs.
func (a ExternalSecretArgs) object(ctx context.Context, name string) *esv1.ExternalSecret {
	es := &esv1.ExternalSecret{
		TypeMeta: metav1.TypeMeta{APIVersion: esv1.SchemeGroupVersion.String(), Kind: esv1.ExtSecretKind},
		ObjectMeta: metav1.ObjectMeta{Name: ptrOr(a.Name, name), Namespace: ptrOr(a.Namespace, defaultNamespace(ctx)),
			Labels: map[string]string{managedByLabel: managedByValue}, Annotations: a.Annotations},
	}
	maps.Copy(es.Labels, a.Labels)
	interval, _ := time.ParseDuration(ptrOr(a.RefreshInterval, "1h"))
	spec := &es.Spec
	spec.RefreshInterval = &metav1.Duration{Duration: interval}
	spec.SecretStoreRef = esv1.SecretStoreRef{Kind: string(a.Store.Kind), Name: a.Store.Name}
	t := ptrOr(a.Target, ExternalSecretTarget{})
	spec.Target = esv1.ExternalSecretTarget{
		Name:           ptrOr(t.Name, ""),
		CreationPolicy: esv1.ExternalSecretCreationPolicy(ptrOr(t.CreationPolicy, "Owner")),
		DeletionPolicy: esv1.ExternalSecretDeletionPolicy(ptrOr(t.DeletionPolicy, "Retain")),
		Immutable:      ptrOr(t.Immutable, false),
	}
	spec.Target.Template = esTemplate(t)
	ref := func(r RemoteRef) esv1.ExternalSecretDataRemoteRef {
		return esv1.ExternalSecretDataRemoteRef{
			Key: r.Key, Property: ptrOr(r.Property, ""), Version: ptrOr(r.Version, ""),
			MetadataPolicy:     esv1.ExternalSecretMetadataPolicyNone,
			ConversionStrategy: esv1.ExternalSecretConversionStrategy(ptrOr(r.ConversionStrategy, "Default")),
			DecodingStrategy:   esv1.ExternalSecretDecodingStrategy(ptrOr(r.DecodingStrategy, "None")),
		}
	}
	for _, d := range a.Data {
		spec.Data = append(spec.Data, esv1.ExternalSecretData{SecretKey: d.SecretKey, RemoteRef: ref(d.RemoteRef)})
	}
	for _, d := range a.DataFrom {
		from := esv1.ExternalSecretDataFromRemoteRef{Rewrite: esRewrites(d.Rewrite)}
		if d.Extract != nil {
			r := ref(*d.Extract)
			from.Extract = &r
		}
		if d.Find != nil {
			from.Find = esFind(d.Find)
		}
		spec.DataFrom = append(spec.DataFrom, from)
	}
	return es
}

func kubeOf(cluster *kube.Cluster) (sync.Kube, error) {
	c, err := cluster.Client()
	return sync.Kube{Client: c, Clientset: cluster.Clientset}, err
}

// Create writes the ExternalSecret CR and, with `sync: provider`, the target
// Secret. The backend is read before anything is written.
func (ExternalSecret) Create(ctx context.Context, req infer.CreateRequest[ExternalSecretArgs]) (infer.CreateResponse[ExternalSecretState], error) {
	es := req.Inputs.object(ctx, req.Name)
	id := es.Namespace + "/" + es.Name
	st := ExternalSecretState{ExternalSecretArgs: req.Inputs}
	st.SecretName = sync.TargetName(es)
	if req.DryRun {
		st.Keys = previewKeys(req.Inputs)
		return infer.CreateResponse[ExternalSecretState]{ID: id, Output: st}, nil
	}
	cluster, err := clusterOf(ctx)
	if err != nil {
		return infer.CreateResponse[ExternalSecretState]{}, err
	}
	k, err := kubeOf(cluster)
	if err != nil {
		return infer.CreateResponse[ExternalSecretState]{}, err
	}
	if err := refuseForeignTarget(ctx, k.Client, es); err != nil {
		return infer.CreateResponse[ExternalSecretState]{}, err
	}
	var fetched *sync.Fetched
	if req.Inputs.mode() == SyncProvider {
		if fetched, err = fetch(ctx, k, es); err != nil {
			return infer.CreateResponse[ExternalSecretState]{}, err
		}
	}
	if err := k.Client.Create(ctx, es); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return infer.CreateResponse[ExternalSecretState]{}, fmt.Errorf("ExternalSecret %s already exists; import it or choose another name", id)
		}
		return infer.CreateResponse[ExternalSecretState]{}, fmt.Errorf("creating ExternalSecret %s: %w", id, crdHint(err))
	}
	out, err := finish(ctx, k, es, req.Inputs, fetched)
	if err != nil && req.Inputs.mode() == SyncController {
		// ESO may still sync later: keep the resource, marked as not ready, so
		// the next `pulumi up` triggers and waits again.
		st.ExternalSecretOutputs = out
		st.SecretName = sync.TargetName(es)
		return infer.CreateResponse[ExternalSecretState]{ID: id, Output: st}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
	}
	if err != nil {
		// Nothing was synced: take the CR away again so the failed create leaves nothing behind.
		_ = k.Client.Delete(ctx, es)
		return infer.CreateResponse[ExternalSecretState]{}, err
	}
	st.ExternalSecretOutputs = out
	return infer.CreateResponse[ExternalSecretState]{ID: id, Output: st}, nil
}

// Update re-reads the backend (provider mode) before rewriting the CR and
// the Secret, so a backend failure leaves both as they were.
func (ExternalSecret) Update(ctx context.Context, req infer.UpdateRequest[ExternalSecretArgs, ExternalSecretState]) (infer.UpdateResponse[ExternalSecretState], error) {
	ns, name, _ := strings.Cut(req.ID, "/")
	es := req.Inputs.object(ctx, name)
	if req.Inputs.Namespace == nil {
		es.Namespace = ns
	}
	st := ExternalSecretState{ExternalSecretArgs: req.Inputs, ExternalSecretOutputs: req.State.ExternalSecretOutputs}
	if req.DryRun {
		return infer.UpdateResponse[ExternalSecretState]{Output: st}, nil
	}
	cluster, err := clusterOf(ctx)
	if err != nil {
		return infer.UpdateResponse[ExternalSecretState]{}, err
	}
	k, err := kubeOf(cluster)
	if err != nil {
		return infer.UpdateResponse[ExternalSecretState]{}, err
	}
	var fetched *sync.Fetched
	if req.Inputs.mode() == SyncProvider {
		if fetched, err = fetch(ctx, k, es); err != nil {
			return infer.UpdateResponse[ExternalSecretState]{}, err
		}
	}
	// ESO may write the status meanwhile: retry the read-modify-write on conflicts.
	live := &esv1.ExternalSecret{}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		switch err := k.Client.Get(ctx, client.ObjectKeyFromObject(es), live); {
		case apierrors.IsNotFound(err):
			if err := k.Client.Create(ctx, es); err != nil {
				return fmt.Errorf("re-creating ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
			}
			live = es
			return nil
		case err != nil:
			return fmt.Errorf("reading ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
		}
		live.Labels, live.Annotations, live.Spec = es.Labels, es.Annotations, es.Spec
		return k.Client.Update(ctx, live)
	})
	if err != nil {
		return infer.UpdateResponse[ExternalSecretState]{}, fmt.Errorf("updating ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
	}
	es = live
	out, err := finish(ctx, k, es, req.Inputs, fetched)
	if err != nil && req.Inputs.mode() == SyncController {
		st.ExternalSecretOutputs = out
		return infer.UpdateResponse[ExternalSecretState]{Output: st}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
	}
	if err != nil {
		return infer.UpdateResponse[ExternalSecretState]{}, err
	}
	st.ExternalSecretOutputs = out
	return infer.UpdateResponse[ExternalSecretState]{Output: st}, nil
}

// fetch opens the store es refers to and reads every remote value.
func fetch(ctx context.Context, k sync.Kube, es *esv1.ExternalSecret) (*sync.Fetched, error) {
	store, err := sync.GetStore(ctx, k, es.Spec.SecretStoreRef, es.Namespace)
	if err != nil {
		return nil, crdHint(err)
	}
	kind := es.Spec.SecretStoreRef.Kind
	if kind == "" {
		kind = esv1.SecretStoreKind
	}
	bc, err := sync.OpenStore(ctx, k, store, es.Namespace)
	if err != nil {
		return nil, fmt.Errorf("ExternalSecret %s/%s: %s %s: %w", es.Namespace, es.Name, kind, es.Spec.SecretStoreRef.Name, err)
	}
	defer func() { _ = bc.Close(ctx) }()
	f, err := sync.Fetch(ctx, es, bc)
	p.GetLogger(ctx).Debugf("backend calls of this provider process so far: %v", backend.CallCounts())
	if err != nil {
		return nil, fmt.Errorf("ExternalSecret %s/%s: %s %s: %w", es.Namespace, es.Name, kind, es.Spec.SecretStoreRef.Name, err)
	}
	return f, nil
}

// finish writes the target Secret (provider mode) and the CR's status, and
// computes the outputs.
func finish(ctx context.Context, k sync.Kube, es *esv1.ExternalSecret, args ExternalSecretArgs, fetched *sync.Fetched) (ExternalSecretOutputs, error) {
	switch mode := args.mode(); mode {
	case SyncNone:
		return observe(ctx, k, es, mode)
	case SyncController:
		timeout, _ := time.ParseDuration(ptrOr(args.Timeout, "5m"))
		return syncViaController(ctx, k, es, timeout)
	}
	outcome, err := sync.Write(ctx, k.Client, es, fetched)
	if err != nil {
		return ExternalSecretOutputs{}, fmt.Errorf("ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := writeStatus(ctx, k.Client, es, outcome, now); err != nil {
		p.GetLogger(ctx).Warningf("ExternalSecret %s/%s: the Secret is synced but its status could not be written: %v", es.Namespace, es.Name, err)
	}
	out := outputsOf(es, outcome.Secret)
	out.RemoteVersions = fetched.Versions
	out.SyncedAt = now.Format(time.RFC3339)
	out.Ready = outcome.Reason == sync.ReasonSynced || outcome.Reason == sync.ReasonSecretDeleted
	out.Reason, out.Message = outcome.Reason, outcome.Message
	if len(fetched.Missing) > 0 {
		out.Message += fmt.Sprintf("; remote keys not found and skipped: %s", strings.Join(fetched.Missing, ", "))
	}
	return out, nil
}

// writeStatus records the sync on the CR as ESO would, so kubectl users and
// ESO itself see it (ESO then skips a redundant refresh).
func writeStatus(ctx context.Context, c client.Client, es *esv1.ExternalSecret, o *sync.Outcome, now time.Time) error {
	status := corev1.ConditionTrue
	if o.Reason != sync.ReasonSynced && o.Reason != sync.ReasonSecretDeleted {
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

// observe reports what the cluster says (controller and none modes: ESO
// does the syncing).
func observe(ctx context.Context, k sync.Kube, es *esv1.ExternalSecret, mode SyncMode) (ExternalSecretOutputs, error) {
	live := &esv1.ExternalSecret{}
	if err := k.Client.Get(ctx, client.ObjectKeyFromObject(es), live); err != nil {
		return ExternalSecretOutputs{}, fmt.Errorf("reading ExternalSecret %s/%s: %w", es.Namespace, es.Name, err)
	}
	secret, err := targetSecret(ctx, k.Client, live)
	if err != nil {
		return ExternalSecretOutputs{}, err
	}
	out := outputsOf(live, secret)
	out.RemoteVersions = map[string]string{}
	out.Reason, out.Message = "Pending", fmt.Sprintf("waiting for the External Secrets Operator controller (sync: %s)", mode)
	for _, c := range live.Status.Conditions {
		if c.Type == esv1.ExternalSecretReady {
			out.Ready = c.Status == corev1.ConditionTrue
			out.Reason, out.Message = c.Reason, c.Message
		}
	}
	if !live.Status.RefreshTime.IsZero() {
		out.SyncedAt = live.Status.RefreshTime.UTC().Format(time.RFC3339)
	}
	return out, nil
}

func targetSecret(ctx context.Context, c client.Client, es *esv1.ExternalSecret) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: es.Namespace, Name: sync.TargetName(es)}, secret)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading target Secret %s/%s: %w", es.Namespace, sync.TargetName(es), err)
	}
	return secret, nil
}

func outputsOf(es *esv1.ExternalSecret, secret *corev1.Secret) ExternalSecretOutputs {
	out := ExternalSecretOutputs{SecretName: sync.TargetName(es), Keys: []string{}, RemoteVersions: map[string]string{}}
	if secret != nil {
		out.Keys = slices.Sorted(maps.Keys(secret.Data))
		out.DataHash = sync.DataHash(secret.Data)
	}
	return out
}

func previewKeys(a ExternalSecretArgs) []string {
	if len(a.DataFrom) > 0 {
		return nil
	}
	keys := []string{}
	for _, d := range a.Data {
		keys = append(keys, d.SecretKey)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// refuseForeignTarget fails when the target Secret exists and belongs to
// someone else, unless the creation policy merges into it (or writes nothing).
func refuseForeignTarget(ctx context.Context, c client.Client, es *esv1.ExternalSecret) error {
	policy := es.Spec.Target.CreationPolicy
	if policy == esv1.CreatePolicyMerge || policy == esv1.CreatePolicyNone {
		return nil
	}
	secret, err := targetSecret(ctx, c, es)
	if err != nil || secret == nil {
		return err
	}
	if !sync.OwnedBy(secret, es) {
		return fmt.Errorf("ExternalSecret %s/%s: target.name: Secret %s/%s already exists and is not managed by this ExternalSecret; "+
			"esosync will not take it over (use target.creationPolicy Merge to merge into it, or choose another target.name)",
			es.Namespace, es.Name, secret.Namespace, secret.Name)
	}
	return nil
}

// Read reports drift. It re-reads the CR and the target Secret and, in
// provider mode, the backend: a changed remote value, a hand-edited or
// deleted Secret, or a store that no longer works show as not ready.
// Unreachable servers keep the state (with a warning); only a deleted CR
// returns an empty ID.
func (ExternalSecret) Read(ctx context.Context, req infer.ReadRequest[ExternalSecretArgs, ExternalSecretState]) (infer.ReadResponse[ExternalSecretArgs, ExternalSecretState], error) {
	resp := infer.ReadResponse[ExternalSecretArgs, ExternalSecretState]{ID: req.ID, Inputs: req.Inputs, State: req.State}
	log := p.GetLogger(ctx)
	ns, name, _ := strings.Cut(req.ID, "/")
	cluster, err := clusterOf(ctx)
	if err != nil {
		log.Warningf("refresh of ExternalSecret %s kept the previous state: %v", req.ID, err)
		return resp, nil
	}
	k, err := kubeOf(cluster)
	if err != nil {
		log.Warningf("refresh of ExternalSecret %s kept the previous state: %v", req.ID, err)
		return resp, nil
	}
	live := &esv1.ExternalSecret{}
	if err := k.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, live); err != nil {
		if apierrors.IsNotFound(err) || isNoMatch(err) {
			resp.ID = ""
			return resp, nil
		}
		log.Warningf("refresh of ExternalSecret %s kept the previous state: %v", req.ID, err)
		return resp, nil
	}
	mode := req.State.mode()
	if mode == SyncNone {
		out, err := observe(ctx, k, live, mode)
		if err != nil {
			log.Warningf("refresh of ExternalSecret %s kept the previous state: %v", req.ID, err)
			return resp, nil
		}
		resp.State.ExternalSecretOutputs = out
		return resp, nil
	}
	secret, err := targetSecret(ctx, k.Client, live)
	if err != nil {
		log.Warningf("refresh of ExternalSecret %s kept the previous state: %v", req.ID, err)
		return resp, nil
	}
	out := outputsOf(live, secret)
	out.SyncedAt = req.State.SyncedAt
	out.RemoteVersions = req.State.RemoteVersions
	out.Ready, out.Reason, out.Message = true, sync.ReasonSynced, "secret synced"
	if mode == SyncController {
		// ESO's own report comes first; esosync adds its check of the Secret.
		out = fromESO(live, secret)
		out.RemoteVersions = req.State.RemoteVersions
		if problem := checkTarget(live, secret); out.Ready && problem != "" {
			out.Ready, out.Reason, out.Message = false, reasonOutOfSync, problem
		}
		if !out.Ready {
			resp.State.ExternalSecretOutputs = out
			return resp, nil
		}
	}
	fetched, err := fetch(ctx, k, live)
	switch {
	case err != nil && mode == SyncController:
		// ESO reads the backend from inside the cluster; the provider may
		// not reach it from here. ESO's report stands.
		log.Debugf("refresh of ExternalSecret %s: the backend could not be read from here: %v", req.ID, err)
	case err != nil && indeterminate(err):
		log.Warningf("refresh of ExternalSecret %s could not reach the backend and kept the previous state: %v", req.ID, err)
		return resp, nil
	case err != nil:
		out.Ready, out.Reason, out.Message = false, sync.ReasonSyncedError, err.Error()
	default:
		out.RemoteVersions = fetched.Versions
		if ready, reason, message := compare(ctx, k.Client, live, secret, fetched, req.State.RemoteVersions); !ready || mode == SyncProvider {
			out.Ready, out.Reason, out.Message = ready, reason, message
		}
	}
	resp.State.ExternalSecretOutputs = out
	return resp, nil
}

// compare decides whether the live Secret is what a sync would write now.
func compare(ctx context.Context, c client.Client, es *esv1.ExternalSecret, secret *corev1.Secret, fetched *sync.Fetched, oldVersions map[string]string) (bool, string, string) {
	policy := es.Spec.Target.CreationPolicy
	if policy == esv1.CreatePolicyNone {
		return true, sync.ReasonSynced, "secret creation skipped due to CreationPolicy=None"
	}
	if secret == nil {
		if len(fetched.Data) == 0 || policy == esv1.CreatePolicyMerge {
			return true, sync.ReasonSynced, "no data to sync"
		}
		return false, sync.ReasonSecretMissing, fmt.Sprintf("target Secret %s/%s does not exist (deleted out of band)", es.Namespace, sync.TargetName(es))
	}
	desired := secret.DeepCopy()
	if err := sync.Mutate(ctx, c, desired, es, fetched.Data); err != nil {
		return false, sync.ReasonSyncedError, err.Error()
	}
	if sync.DataHash(desired.Data) == sync.DataHash(secret.Data) && sync.Consistent(secret) {
		return true, sync.ReasonSynced, "secret synced"
	}
	var changed []string
	for key, v := range fetched.Versions {
		if old, ok := oldVersions[key]; ok && old != v {
			changed = append(changed, fmt.Sprintf("%s (version %s -> %s)", key, old, v))
		}
	}
	slices.Sort(changed)
	if len(changed) > 0 {
		return false, reasonOutOfSync, "remote value changed: " + strings.Join(changed, ", ")
	}
	if !sync.Consistent(secret) {
		return false, reasonOutOfSync, fmt.Sprintf("target Secret %s/%s was edited out of band", secret.Namespace, secret.Name)
	}
	return false, reasonOutOfSync, "target Secret differs from the backend's current values"
}

// indeterminate reports errors that say nothing about the resource: the
// server could not be reached or did not answer in time.
func indeterminate(err error) bool {
	var netErr net.Error
	var urlErr *url.Error
	return errors.As(err, &netErr) || errors.As(err, &urlErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, context.DeadlineExceeded) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServiceUnavailable(err)
}

// Diff updates when the inputs changed, or when refresh found the Secret
// out of sync (provider mode): that is how `pulumi up` heals drift.
func (ExternalSecret) Diff(ctx context.Context, req infer.DiffRequest[ExternalSecretArgs, ExternalSecretState]) (infer.DiffResponse, error) {
	d := diffFields(req.State.ExternalSecretArgs, req.Inputs, "name", "namespace")
	oldNS := ptrOr(req.State.Namespace, "")
	if req.Inputs.Namespace == nil && oldNS != "" && oldNS != defaultNamespace(ctx) {
		d["namespace"] = p.PropertyDiff{Kind: p.UpdateReplace}
	}
	if req.Inputs.mode() != SyncNone && !req.State.Ready {
		d["ready"] = p.PropertyDiff{Kind: p.Update}
	}
	return infer.DiffResponse{HasChanges: len(d) > 0, DetailedDiff: d, DeleteBeforeReplace: true}, nil
}

// Delete removes the CR and, under creationPolicy Owner, the target Secret
// if this ExternalSecret owns it (ESO's garbage collection would do the
// same, later). Orphan, Merge and None leave the Secret.
func (ExternalSecret) Delete(ctx context.Context, req infer.DeleteRequest[ExternalSecretState]) (infer.DeleteResponse, error) {
	ns, name, _ := strings.Cut(req.ID, "/")
	cluster, err := clusterOf(ctx)
	if err != nil {
		return infer.DeleteResponse{}, err
	}
	k, err := kubeOf(cluster)
	if err != nil {
		return infer.DeleteResponse{}, err
	}
	live := &esv1.ExternalSecret{}
	if err := k.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, live); err != nil {
		if apierrors.IsNotFound(err) || isNoMatch(err) {
			return infer.DeleteResponse{}, nil
		}
		return infer.DeleteResponse{}, fmt.Errorf("reading ExternalSecret %s: %w", req.ID, err)
	}
	if live.Spec.Target.CreationPolicy == esv1.CreatePolicyOwner {
		secret, err := targetSecret(ctx, k.Client, live)
		if err != nil {
			return infer.DeleteResponse{}, err
		}
		if secret != nil && sync.OwnedBy(secret, live) {
			if err := k.Client.Delete(ctx, secret); err != nil && !apierrors.IsNotFound(err) {
				return infer.DeleteResponse{}, fmt.Errorf("deleting target Secret %s/%s: %w", secret.Namespace, secret.Name, err)
			}
		}
	}
	if err := k.Client.Delete(ctx, live); err != nil && !apierrors.IsNotFound(err) {
		return infer.DeleteResponse{}, fmt.Errorf("deleting ExternalSecret %s: %w", req.ID, err)
	}
	return infer.DeleteResponse{}, nil
}
