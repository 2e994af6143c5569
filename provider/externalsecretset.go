package provider

import (
	"github.com/pulumi/pulumi-go-provider/infer"
)

// defaultSetWait bounds a set's `up` when no customTimeouts is given: it
// syncs many ExternalSecrets in one step.
const defaultSetWait = "15m"

// ExternalSecretSet is many ExternalSecrets as one Pulumi resource: each
// item is still an ESO ExternalSecret in the cluster, but a deploy of a
// thousand costs the Pulumi engine one step instead of a thousand.
type ExternalSecretSet struct{}

// ExternalSecretSetArgs are the inputs of an ExternalSecretSet: defaults
// shared by every item, and the items by name.
type ExternalSecretSetArgs struct {
	Namespace       *string                          `pulumi:"namespace,optional"`
	Store           *StoreRef                        `pulumi:"store,optional"`
	RefreshInterval *string                          `pulumi:"refreshInterval,optional"`
	Sync            *SyncMode                        `pulumi:"sync,optional"`
	Labels          map[string]string                `pulumi:"labels,optional"`
	Annotations     map[string]string                `pulumi:"annotations,optional"`
	Items           map[string]ExternalSecretSetItem `pulumi:"items"`
}

// ExternalSecretSetItem is one ExternalSecret of a set; its name is its
// key in `items`.
type ExternalSecretSetItem struct {
	Store           *StoreRef                `pulumi:"store,optional"`
	RefreshInterval *string                  `pulumi:"refreshInterval,optional"`
	Target          *ExternalSecretTarget    `pulumi:"target,optional"`
	Data            []ExternalSecretData     `pulumi:"data,optional"`
	DataFrom        []ExternalSecretDataFrom `pulumi:"dataFrom,optional"`
	Labels          map[string]string        `pulumi:"labels,optional"`
	Annotations     map[string]string        `pulumi:"annotations,optional"`
}

// ExternalSecretStatus is what a set reports about one of its items,
// the outputs of an ExternalSecret. None holds a value.
type ExternalSecretStatus struct {
	SecretName     string            `pulumi:"secretName"`
	Keys           []string          `pulumi:"keys"`
	DataHash       string            `pulumi:"dataHash"`
	RemoteVersions map[string]string `pulumi:"remoteVersions"`
	SyncedAt       string            `pulumi:"syncedAt"`
	Ready          bool              `pulumi:"ready"`
	Reason         string            `pulumi:"reason"`
	Message        string            `pulumi:"message"`
}

// ExternalSecretSetOutputs are what a set reports.
type ExternalSecretSetOutputs struct {
	Statuses map[string]ExternalSecretStatus `pulumi:"statuses"`
	Ready    bool                            `pulumi:"ready"`
	NotReady []string                        `pulumi:"notReady"`
}

// ExternalSecretSetState is the state of an ExternalSecretSet.
type ExternalSecretSetState struct {
	ExternalSecretSetArgs
	ExternalSecretSetOutputs
}

// Annotate documents ExternalSecretSet.
func (s *ExternalSecretSet) Annotate(a infer.Annotator) {
	a.Describe(s, "Many ExternalSecrets as one resource, for teams with hundreds or thousands of secrets. Each item is an "+
		"ESO ExternalSecret in the cluster, exactly as the ExternalSecret resource writes it (ESO keeps it fresh between "+
		"deploys), but the Pulumi engine handles one resource instead of one per secret, and the provider syncs the items "+
		"in parallel with one read per remote key. `pulumi refresh` names the items that drifted; `up` touches only items "+
		"that were added, changed, removed or drifted. Use ExternalSecret when each secret needs its own resource options "+
		"(dependsOn, protect, its dataHash wired into one workload); use a set for a fleet.\n\n"+
		"Example (TypeScript): `new esosync.ExternalSecretSet(\"apps\", { store: vault.ref, sync: \"provider\", items: "+
		"{ \"app-a\": { data: [{ secretKey: \"password\", remoteRef: { key: \"apps/a\", property: \"password\" } }] } } })`.")
}

// Annotate documents ExternalSecretSetArgs.
func (s *ExternalSecretSetArgs) Annotate(a infer.Annotator) {
	a.Describe(&s.Namespace, "Namespace of every item's ExternalSecret and target Secret. Defaults to the provider's namespace.")
	a.Describe(&s.Store, "The store items read from unless they name their own; pass a store resource's `ref` output.")
	a.Describe(&s.RefreshInterval, "How often ESO re-syncs each item in the cluster unless the item sets its own (Go duration).")
	a.SetDefault(&s.RefreshInterval, defaultRefreshInterval)
	a.Describe(&s.Sync, "Who makes the items' Secrets current at `pulumi up`: `controller` (ESO), `provider` (the provider "+
		"itself, fastest at scale) or `none`.")
	a.SetDefault(&s.Sync, SyncController)
	a.Describe(&s.Labels, "Labels for every item's ExternalSecret (an item's own labels add to them).")
	a.Describe(&s.Annotations, "Annotations for every item's ExternalSecret (an item's own annotations add to them).")
	a.Describe(&s.Items, "The ExternalSecrets, by name (each key is an ExternalSecret's name in the namespace).")
}

// Annotate documents ExternalSecretSetItem.
func (i *ExternalSecretSetItem) Annotate(a infer.Annotator) {
	a.Describe(i, "One ExternalSecret of a set: the same target, data and dataFrom as the ExternalSecret resource, "+
		"e.g. `{ target: { name: \"app-a\" }, data: [{ secretKey: \"password\", remoteRef: { key: \"apps/a\", property: \"password\" } }] }`.")
	a.Describe(&i.Store, "The store to read from, instead of the set's.")
	a.Describe(&i.RefreshInterval, "How often ESO re-syncs this item, instead of the set's refreshInterval.")
	a.Describe(&i.Target, "The Secret to write. Defaults: name = the item's name, creationPolicy `Owner`, deletionPolicy `Retain`.")
	a.Describe(&i.Data, "Remote values, one per Secret key.")
	a.Describe(&i.DataFrom, "Remote secrets whose keys are all copied (`extract`) or found (`find`).")
	a.Describe(&i.Labels, "Labels for this item's ExternalSecret, added to the set's.")
	a.Describe(&i.Annotations, "Annotations for this item's ExternalSecret, added to the set's.")
}

// Annotate documents ExternalSecretStatus.
func (o *ExternalSecretStatus) Annotate(a infer.Annotator) {
	a.Describe(o, "What the set knows about one item: names, versions and a keyed hash, never a value.")
	describeSyncOutputs(a, &o.SecretName, &o.Keys, &o.DataHash, &o.RemoteVersions, &o.SyncedAt, &o.Ready, &o.Reason, &o.Message)
}

// Annotate documents ExternalSecretSetOutputs.
func (o *ExternalSecretSetOutputs) Annotate(a infer.Annotator) {
	a.Describe(&o.Statuses, "Each item's status, by name; an item whose ExternalSecret does not exist in the cluster is absent.")
	a.Describe(&o.Ready, "Whether every item's Secret holds the backend's current values.")
	a.Describe(&o.NotReady, "Names of the items that are not ready or do not exist, sorted: what the next `pulumi up` syncs.")
}
