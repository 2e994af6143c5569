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
// an existing Secret key, a Pulumi secret value, or a Pulumi ESC environment.
type CredentialSource struct {
	SecretRef *SecretKeyRef  `pulumi:"secretRef,optional"`
	Value     *string        `pulumi:"value,optional" provider:"secret"`
	Esc       *ESCCredential `pulumi:"esc,optional"`
}

// Annotate documents CredentialSource.
func (c *CredentialSource) Annotate(a infer.Annotator) {
	a.Describe(c, "Where a store credential comes from. Set exactly one of `secretRef`, `value` or `esc`.")
	a.Describe(&c.SecretRef, "Use a key of an existing Kubernetes Secret, e.g. `{ name: \"vault-token\", key: \"token\" }`.")
	a.Describe(&c.Value, "The credential itself, as a Pulumi secret. esosync writes it into a Secret it manages "+
		"(labelled `app.kubernetes.io/managed-by: esosync`) and points the store at that Secret.")
	a.Describe(&c.Esc, "Read the credential from a Pulumi ESC environment, e.g. "+
		"`{ environment: \"platform/vault-creds\", path: \"vault.token\" }`. esosync opens the environment at deploy and "+
		"at refresh, writes the value into the Secret it manages and keeps only a hash in state, so a rotated value "+
		"shows as drift at `pulumi refresh` and the next `pulumi up` rewrites the Secret.")
}

// ESCCredential names one value inside a Pulumi ESC environment.
type ESCCredential struct {
	Environment string `pulumi:"environment"`
	Path        string `pulumi:"path"`
}

// Annotate documents ESCCredential.
func (e *ESCCredential) Annotate(a infer.Annotator) {
	a.Describe(e, "A value inside a Pulumi ESC environment, opened with the provider's `escAccessToken`.")
	a.Describe(&e.Environment, "`org/project/environment`, or `project/environment` in the provider's `escOrganization`.")
	a.Describe(&e.Path, "Path of the value in the environment's properties, in ESC syntax, e.g. `vault.token`, "+
		"`aws.login.accessKeyId` or `app[\"pass word\"]`. Short-lived values from `fn::open::aws-login` or `vault-login` work: "+
		"each refresh opens the environment again.")
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
