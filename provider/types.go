package provider

import (
	"github.com/pulumi/pulumi-go-provider/infer"
)

// SecretKeyRef points at one key of an existing Kubernetes Secret.
type SecretKeyRef struct {
	Name      string  `pulumi:"name"`
	Key       string  `pulumi:"key"`
	Namespace *string `pulumi:"namespace,optional"`
}

// Annotate documents SecretKeyRef.
func (r *SecretKeyRef) Annotate(a infer.Annotator) {
	a.Describe(r, "A key of an existing Kubernetes Secret.")
	a.Describe(&r.Name, "Name of the Secret.")
	a.Describe(&r.Key, "Key inside the Secret's data.")
	a.Describe(&r.Namespace, "Namespace of the Secret. Defaults to the store's namespace; "+
		"required for a ClusterSecretStore unless `credentialsNamespace` is set.")
}

// CredentialSource says where a store credential comes from: exactly one of
// an existing Secret key or a Pulumi secret value.
type CredentialSource struct {
	SecretRef *SecretKeyRef `pulumi:"secretRef,optional"`
	Value     *string       `pulumi:"value,optional" provider:"secret"`
}

// Annotate documents CredentialSource.
func (c *CredentialSource) Annotate(a infer.Annotator) {
	a.Describe(c, "Where a store credential comes from. Set exactly one of `secretRef` or `value`.")
	a.Describe(&c.SecretRef, "Use a key of an existing Kubernetes Secret, e.g. `{ name: \"vault-token\", key: \"token\" }`.")
	a.Describe(&c.Value, "The credential itself, as a Pulumi secret. esosync writes it into a Secret it manages "+
		"(labelled `app.kubernetes.io/managed-by: esosync`) and points the store at that Secret.")
}

// StoreRef identifies a SecretStore or ClusterSecretStore; store resources
// output one as `ref`.
type StoreRef struct {
	// Kind is a plain string, not an enum: Pulumi YAML cannot assign an
	// enum-typed output (a store's `ref`) to an enum-typed input.
	Kind      string  `pulumi:"kind"`
	Name      string  `pulumi:"name"`
	Namespace *string `pulumi:"namespace,optional"`
}

// Annotate documents StoreRef.
func (r *StoreRef) Annotate(a infer.Annotator) {
	a.Describe(r, "A reference to a SecretStore or ClusterSecretStore. Pass a store resource's `ref` output.")
	a.Describe(&r.Kind, "`SecretStore` or `ClusterSecretStore`.")
	a.Describe(&r.Name, "Name of the store.")
	a.Describe(&r.Namespace, "Namespace of a SecretStore (informational: ESO resolves a SecretStore in the ExternalSecret's namespace).")
}

// Store kinds.
const (
	SecretStoreKind        = "SecretStore"
	ClusterSecretStoreKind = "ClusterSecretStore"
)

// VaultKVVersion is the KV secrets engine version of a Vault mount.
type VaultKVVersion string

// Values lists the KV versions for the schema.
func (VaultKVVersion) Values() []infer.EnumValue[VaultKVVersion] {
	return []infer.EnumValue[VaultKVVersion]{
		{Name: "V1", Value: "v1", Description: "KV version 1 (unversioned)."},
		{Name: "V2", Value: "v2", Description: "KV version 2 (versioned; the default)."},
	}
}

// CreationPolicy is ESO's target.creationPolicy.
type CreationPolicy string

// Values lists the creation policies for the schema.
func (CreationPolicy) Values() []infer.EnumValue[CreationPolicy] {
	return []infer.EnumValue[CreationPolicy]{
		{Name: "Owner", Value: "Owner", Description: "Create the Secret and own it (it is garbage collected with the ExternalSecret). The default."},
		{Name: "Orphan", Value: "Orphan", Description: "Create or update the Secret but do not own it."},
		{Name: "Merge", Value: "Merge", Description: "Merge into an existing Secret; never create one."},
		{Name: "None", Value: "None", Description: "Do not write a Secret."},
	}
}

// DeletionPolicy is ESO's target.deletionPolicy.
type DeletionPolicy string

// Values lists the deletion policies for the schema.
func (DeletionPolicy) Values() []infer.EnumValue[DeletionPolicy] {
	return []infer.EnumValue[DeletionPolicy]{
		{Name: "Retain", Value: "Retain", Description: "Keep the Secret when the remote data disappears (the default)."},
		{Name: "Delete", Value: "Delete", Description: "Delete the Secret when all remote data is gone (creationPolicy Owner only)."},
		{Name: "Merge", Value: "Merge", Description: "Keep the Secret, removing only the keys whose remote data is gone."},
	}
}

// DecodingStrategy is ESO's decodingStrategy.
type DecodingStrategy string

// Values lists the decoding strategies for the schema.
func (DecodingStrategy) Values() []infer.EnumValue[DecodingStrategy] {
	return []infer.EnumValue[DecodingStrategy]{
		{Name: "None", Value: "None", Description: "Use the value as is (the default)."},
		{Name: "Base64", Value: "Base64", Description: "Decode standard base64."},
		{Name: "Base64URL", Value: "Base64URL", Description: "Decode URL-safe base64."},
		{Name: "Auto", Value: "Auto", Description: "Decode base64 or base64url when the value is valid, else keep it."},
	}
}

// SyncMode chooses how `pulumi up` makes the target Secret current.
type SyncMode string

// Sync modes.
const (
	SyncController SyncMode = "controller"
	SyncProvider   SyncMode = "provider"
	SyncNone       SyncMode = "none"
)

// Values lists the sync modes for the schema.
func (SyncMode) Values() []infer.EnumValue[SyncMode] {
	return []infer.EnumValue[SyncMode]{
		{Name: "Controller", Value: SyncController, Description: "The in-cluster ESO controller fetches and writes the Secret (the default)."},
		{Name: "Provider", Value: SyncProvider, Description: "The provider fetches from the backend and writes the Secret exactly as ESO would, " +
			"so `pulumi up` returns with the Secret current; ESO can take over without a rewrite."},
		{Name: "None", Value: SyncNone, Description: "Only write the ExternalSecret resource; leave syncing to ESO."},
	}
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
