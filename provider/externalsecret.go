package provider

import (
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/esosync/pulumi-esosync/provider/internal/reconcile"
)

// Defaults of ExternalSecret inputs, also in the schema.
const (
	defaultRefreshInterval = "1h"
	// defaultSyncWait bounds a controller-mode wait when neither
	// customTimeouts nor the deprecated timeout input is given.
	defaultSyncWait = "5m"
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
	// RolloutRestartTargets are restarted when the synced content changes.
	RolloutRestartTargets []RolloutRestartTarget `pulumi:"rolloutRestartTargets,optional"`
}

// RolloutRestartTarget is a workload whose pods restart when the
// ExternalSecret's content changes.
type RolloutRestartTarget struct {
	Kind      WorkloadKind `pulumi:"kind"`
	Name      string       `pulumi:"name"`
	Namespace *string      `pulumi:"namespace,optional"`
}

// WorkloadKind is a kind of workload esosync can restart.
type WorkloadKind string

// Values lists the workload kinds for the schema.
func (WorkloadKind) Values() []infer.EnumValue[WorkloadKind] {
	return []infer.EnumValue[WorkloadKind]{
		{Name: "Deployment", Value: reconcile.KindDeployment, Description: "An apps/v1 Deployment."},
		{Name: "StatefulSet", Value: reconcile.KindStatefulSet, Description: "An apps/v1 StatefulSet."},
		{Name: "DaemonSet", Value: reconcile.KindDaemonSet, Description: "An apps/v1 DaemonSet."},
	}
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

// ExternalSecretState is the state of an ExternalSecret: its inputs, what
// it reports of its Secret (as a set's item does), and its rollouts.
type ExternalSecretState struct {
	ExternalSecretArgs
	ExternalSecretOutputs
	// RolloutPending are the rollout restart targets not yet carrying
	// DataHash, as Kind/namespace/name.
	RolloutPending []string `pulumi:"rolloutPending,optional"`
}

// Annotate documents what ExternalSecretState adds to the outputs.
func (s *ExternalSecretState) Annotate(a infer.Annotator) {
	a.Describe(&s.RolloutPending, "Rollout restart targets whose pod template does not carry `dataHash` yet (or that do not "+
		"exist), as `Kind/namespace/name`: what the next `pulumi up` restarts. Absent when every target is current.")
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
	a.Describe(&e.RefreshInterval, "How often ESO re-syncs in the cluster, as a Go duration (`1h`, `15m`, `0` for never).")
	a.SetDefault(&e.RefreshInterval, defaultRefreshInterval)
	a.Describe(&e.Target, "The Secret to write. Defaults: name = the ExternalSecret's name, creationPolicy `Owner`, deletionPolicy `Retain`.")
	a.Describe(&e.Data, "Remote values, one per Secret key.")
	a.Describe(&e.DataFrom, "Remote secrets whose keys are all copied (`extract`).")
	a.Describe(&e.Sync, "Who makes the Secret current at `pulumi up`: `controller` (ESO in the cluster), "+
		"`provider` (the provider itself), `none` (only write the ExternalSecret).")
	a.SetDefault(&e.Sync, SyncController)
	a.Describe(&e.Timeout, "Deprecated: use the `customTimeouts` resource option. How long `pulumi up` waits for ESO to sync "+
		"with `sync: controller`, as a Go duration, when no customTimeouts is given.")
	a.Deprecate(&e.Timeout, "Use the customTimeouts resource option (create/update); timeout is honoured only when none is given.")
	a.Describe(&e.Labels, "Labels for the ExternalSecret resource (ESO copies them to the Secret when no target labels are set).")
	a.Describe(&e.Annotations, "Annotations for the ExternalSecret resource.")
	a.Describe(&e.RolloutRestartTargets, "Workloads to restart when the synced content changes, as Vault Secrets Operator's "+
		"`rolloutRestartTargets` does (ESO itself never restarts anything). When an `up` leaves the Secret with another "+
		"`dataHash` than a target's pod template carries, esosync sets the pod template annotation "+
		"`esosync.io/rollout.<ExternalSecret name>` to that hash, so the workload rolls once per content change and never "+
		"when nothing changed. A target that does not exist fails an update (a create skips it: a workload created after its "+
		"Secret starts with the current content); `refresh` reports targets that are behind, for example after ESO changed "+
		"the Secret between deploys, in `rolloutPending`, and the next `up` rolls them. "+
		"E.g. `[{ kind: \"Deployment\", name: \"app\" }]`.")
}

// Annotate documents RolloutRestartTarget.
func (t *RolloutRestartTarget) Annotate(a infer.Annotator) {
	a.Describe(t, "A workload restarted when the content changes, e.g. `{ kind: \"Deployment\", name: \"app\" }`.")
	a.Describe(&t.Kind, "`Deployment`, `StatefulSet` or `DaemonSet`.")
	a.Describe(&t.Name, "Name of the workload.")
	a.Describe(&t.Namespace, "Namespace of the workload. Defaults to the ExternalSecret's namespace.")
}

// Annotate documents ExternalSecretTarget.
func (t *ExternalSecretTarget) Annotate(a infer.Annotator) {
	a.Describe(t, "The Kubernetes Secret the ExternalSecret writes: name, policies, type, labels and template.")
	a.Describe(&t.Name, "Name of the Secret. Defaults to the ExternalSecret's name.")
	a.Describe(&t.CreationPolicy, "`Owner`, `Orphan`, `Merge` or `None`.")
	a.SetDefault(&t.CreationPolicy, CreationPolicy("Owner"))
	a.Describe(&t.DeletionPolicy, "`Retain`, `Delete` (when every remote key is gone; needs creationPolicy `Owner`) or `Merge`.")
	a.SetDefault(&t.DeletionPolicy, DeletionPolicy("Retain"))
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
	a.Describe(&r.DecodingStrategy, "`None`, `Base64`, `Base64URL` or `Auto`.")
	a.SetDefault(&r.DecodingStrategy, DecodingStrategy("None"))
	a.Describe(&r.ConversionStrategy, "For `dataFrom.extract`: `Default` or `Unicode`, how to turn keys into valid Secret keys.")
	a.SetDefault(&r.ConversionStrategy, ConversionStrategy("Default"))
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
	describeSyncOutputs(a, &o.SecretName, &o.Keys, &o.DataHash, &o.RemoteVersions, &o.SyncedAt, &o.Ready, &o.Reason, &o.Message)
}

// describeSyncOutputs documents what esosync reports about one
// ExternalSecret: the resource's outputs and a set item's status.
func describeSyncOutputs(a infer.Annotator, secretName *string, keys *[]string, dataHash *string, remoteVersions *map[string]string,
	syncedAt *string, ready *bool, reason, message *string) {
	a.Describe(secretName, "Name of the target Secret.")
	a.Describe(keys, "Keys of the target Secret (names only).")
	a.Describe(dataHash, "HMAC-SHA256 over the target Secret's data, keyed with the `esosync-hmac-key` Secret esosync keeps in "+
		"the namespace: it changes whenever the synced content changes (put it in a pod template annotation to roll a "+
		"Deployment when the secret rotates), yet cannot be matched against guessed values without that key.")
	a.Describe(remoteVersions, "Backend version of each remote key read (Vault KV v2 version).")
	a.Describe(syncedAt, "When the Secret was last synced (RFC 3339).")
	a.Describe(ready, "Whether the Secret holds the backend's current values.")
	a.Describe(reason, "ESO-style reason: `SecretSynced`, `SecretSyncedError`, `SecretMissing`, `OutOfSync`, `Pending`, …")
	a.Describe(message, "Human-readable detail for `reason`.")
}

// ConversionStrategy is ESO's conversionStrategy for keys of extracted or
// found secrets.
type ConversionStrategy string

// Values lists the conversion strategies for the schema.
func (ConversionStrategy) Values() []infer.EnumValue[ConversionStrategy] {
	return []infer.EnumValue[ConversionStrategy]{
		{Name: "Default", Value: "Default", Description: "Keep keys as they are (invalid Secret keys fail)."},
		{Name: "Unicode", Value: "Unicode", Description: "Replace characters not allowed in Secret keys with `_U<codepoint>_`."},
	}
}

// FindRef is ESO's dataFrom.find.
type FindRef struct {
	Path               *string             `pulumi:"path,optional"`
	Name               *FindName           `pulumi:"name,optional"`
	Tags               map[string]string   `pulumi:"tags,optional"`
	ConversionStrategy *ConversionStrategy `pulumi:"conversionStrategy,optional"`
	DecodingStrategy   *DecodingStrategy   `pulumi:"decodingStrategy,optional"`
}

// Annotate documents FindRef.
func (f *FindRef) Annotate(a infer.Annotator) {
	a.Describe(f, "Find remote secrets by path, name and tags; each found secret becomes one key (its name), valued with the whole secret.")
	a.Describe(&f.Path, "Only secrets below this path.")
	a.Describe(&f.Name, "Only secrets whose name matches.")
	a.Describe(&f.Tags, "Only secrets with all these tags (Vault: custom metadata).")
	a.Describe(&f.ConversionStrategy, "`Default` or `Unicode`: how to turn names into valid Secret keys.")
	a.SetDefault(&f.ConversionStrategy, ConversionStrategy("Default"))
	a.Describe(&f.DecodingStrategy, "`None`, `Base64`, `Base64URL` or `Auto`.")
	a.SetDefault(&f.DecodingStrategy, DecodingStrategy("None"))
}

// FindName matches secret names.
type FindName struct {
	Regexp string `pulumi:"regexp"`
}

// Annotate documents FindName.
func (f *FindName) Annotate(a infer.Annotator) {
	a.Describe(f, "Selects remote secrets by name.")
	a.Describe(&f.Regexp, "Regular expression (Go syntax) the secret name must match, e.g. `^db-`.")
}

// Rewrite is one of ESO's dataFrom.rewrite operations.
type Rewrite struct {
	Regexp    *RewriteRegexp    `pulumi:"regexp,optional"`
	Transform *RewriteTransform `pulumi:"transform,optional"`
}

// Annotate documents Rewrite.
func (r *Rewrite) Annotate(a infer.Annotator) {
	a.Describe(r, "Rewrites the keys of an extract or find result, in order. Set exactly one of `regexp` or `transform`.")
	a.Describe(&r.Regexp, "Replace the regular expression `source` with `target` in every key.")
	a.Describe(&r.Transform, "Render every key through a Go template (`{{ .value }}` is the key).")
}

// RewriteRegexp is a regexp rewrite.
type RewriteRegexp struct {
	Source string `pulumi:"source"`
	Target string `pulumi:"target"`
}

// Annotate documents RewriteRegexp.
func (r *RewriteRegexp) Annotate(a infer.Annotator) {
	a.Describe(r, "Renames keys by regular expression, e.g. `{ source: \"^db-\", target: \"\" }`.")
	a.Describe(&r.Source, "Regular expression to match, e.g. `^db-(.*)`.")
	a.Describe(&r.Target, "Replacement, e.g. `$1`.")
}

// RewriteTransform is a template rewrite.
type RewriteTransform struct {
	Template string `pulumi:"template"`
}

// Annotate documents RewriteTransform.
func (r *RewriteTransform) Annotate(a infer.Annotator) {
	a.Describe(r, "Renames keys with a Go template, e.g. `{{ .value | upper }}`.")
	a.Describe(&r.Template, "Go template applied to each key, e.g. `{{ .value | upper }}`.")
}

// TargetTemplate is ESO's target.template (engine v2).
type TargetTemplate struct {
	Type        *string           `pulumi:"type,optional"`
	MergePolicy *MergePolicy      `pulumi:"mergePolicy,optional"`
	Labels      map[string]string `pulumi:"labels,optional"`
	Annotations map[string]string `pulumi:"annotations,optional"`
	Data        map[string]string `pulumi:"data,optional"`
}

// Annotate documents TargetTemplate.
func (t *TargetTemplate) Annotate(a infer.Annotator) {
	a.Describe(t, "ESO's template (engine v2, ESO's own function set): render the Secret's keys, labels and annotations from the fetched data, "+
		"e.g. `data: { url: \"postgres://{{ .username }}:{{ .password }}@db\" }`.")
	a.Describe(&t.Type, "Secret type.")
	a.Describe(&t.MergePolicy, "`Replace` (only templated keys) or `Merge` (templated keys on top of the fetched ones).")
	a.SetDefault(&t.MergePolicy, MergePolicy("Replace"))
	a.Describe(&t.Labels, "Label templates.")
	a.Describe(&t.Annotations, "Annotation templates.")
	a.Describe(&t.Data, "Key templates.")
}

// MergePolicy is ESO's target.template.mergePolicy.
type MergePolicy string

// Values lists the merge policies for the schema.
func (MergePolicy) Values() []infer.EnumValue[MergePolicy] {
	return []infer.EnumValue[MergePolicy]{
		{Name: "Replace", Value: "Replace", Description: "The Secret holds only the templated keys (the default)."},
		{Name: "Merge", Value: "Merge", Description: "Templated keys on top of the fetched ones."},
	}
}
