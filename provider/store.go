package provider

import (
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/esosync/pulumi-esosync/provider/internal/escsource"
)

// SecretStore is ESO's namespaced SecretStore.
type SecretStore struct{}

// SecretStoreArgs are the inputs of a SecretStore.
type SecretStoreArgs struct {
	Name           *string           `pulumi:"name,optional"`
	Namespace      *string           `pulumi:"namespace,optional"`
	Backend        StoreBackend      `pulumi:"backend"`
	Controller     *string           `pulumi:"controller,optional"`
	Labels         map[string]string `pulumi:"labels,optional"`
	Annotations    map[string]string `pulumi:"annotations,optional"`
	SkipValidation *bool             `pulumi:"skipValidation,optional"`
	WaitForReady   *bool             `pulumi:"waitForReady,optional"`
	Timeout        *string           `pulumi:"timeout,optional"`
}

// SecretStoreState is the state of a SecretStore.
type SecretStoreState struct {
	SecretStoreArgs
	StoreOutputs
}

// ClusterSecretStore is ESO's cluster-wide ClusterSecretStore.
type ClusterSecretStore struct{}

// ClusterSecretStoreArgs are the inputs of a ClusterSecretStore.
type ClusterSecretStoreArgs struct {
	Name                 *string           `pulumi:"name,optional"`
	Backend              StoreBackend      `pulumi:"backend"`
	CredentialsNamespace *string           `pulumi:"credentialsNamespace,optional"`
	Controller           *string           `pulumi:"controller,optional"`
	Labels               map[string]string `pulumi:"labels,optional"`
	Annotations          map[string]string `pulumi:"annotations,optional"`
	SkipValidation       *bool             `pulumi:"skipValidation,optional"`
	WaitForReady         *bool             `pulumi:"waitForReady,optional"`
	Timeout              *string           `pulumi:"timeout,optional"`
}

// ClusterSecretStoreState is the state of a ClusterSecretStore.
type ClusterSecretStoreState struct {
	ClusterSecretStoreArgs
	StoreOutputs
}

// Annotate documents SecretStore.
func (s *SecretStore) Annotate(a infer.Annotator) {
	a.Describe(s, "An External Secrets Operator SecretStore (namespaced). At create and update esosync logs in to the backend "+
		"with the store's credentials and checks access to its mount, failing with the backend's reason. "+
		"Credentials given as `value` go into a Secret esosync manages next to the store.")
}

// Annotate documents SecretStoreArgs.
func (s *SecretStoreArgs) Annotate(a infer.Annotator) {
	a.Describe(&s.Name, "Name of the SecretStore. Defaults to the Pulumi resource name.")
	a.Describe(&s.Namespace, "Namespace of the SecretStore. Defaults to the provider's namespace.")
	a.Describe(&s.Backend, "The backend (ESO's `spec.provider`).")
	a.Describe(&s.Controller, "ESO controller class that should handle this store.")
	a.Describe(&s.Labels, "Labels for the SecretStore resource.")
	a.Describe(&s.Annotations, "Annotations for the SecretStore resource.")
	a.Describe(&s.SkipValidation, "Do not log in to the backend at create/update (for backends only reachable from inside the cluster).")
	a.SetDefault(&s.SkipValidation, false)
	a.Describe(&s.WaitForReady, waitForReadyDoc)
	a.SetDefault(&s.WaitForReady, true)
	a.Describe(&s.Timeout, storeTimeoutDoc)
	a.Deprecate(&s.Timeout, timeoutDeprecation)
}

// Annotate documents ClusterSecretStore.
func (s *ClusterSecretStore) Annotate(a infer.Annotator) {
	a.Describe(s, "An External Secrets Operator ClusterSecretStore, usable by ExternalSecrets in every namespace. "+
		"Validated against the backend at create and update. Credentials given as `value` go into a Secret "+
		"esosync manages in `credentialsNamespace`.")
}

// Annotate documents ClusterSecretStoreArgs.
func (s *ClusterSecretStoreArgs) Annotate(a infer.Annotator) {
	a.Describe(&s.Name, "Name of the ClusterSecretStore. Defaults to the Pulumi resource name.")
	a.Describe(&s.Backend, "The backend (ESO's `spec.provider`).")
	a.Describe(&s.CredentialsNamespace, "Namespace of the Secret esosync writes for `value` credentials. "+
		"Defaults to the provider's namespace.")
	a.Describe(&s.Controller, "ESO controller class that should handle this store.")
	a.Describe(&s.Labels, "Labels for the ClusterSecretStore resource.")
	a.Describe(&s.Annotations, "Annotations for the ClusterSecretStore resource.")
	a.Describe(&s.SkipValidation, "Do not log in to the backend at create/update.")
	a.SetDefault(&s.SkipValidation, false)
	a.Describe(&s.WaitForReady, waitForReadyDoc)
	a.SetDefault(&s.WaitForReady, true)
	a.Describe(&s.Timeout, storeTimeoutDoc)
	a.Deprecate(&s.Timeout, timeoutDeprecation)
}

const (
	waitForReadyDoc = "Wait until the External Secrets Operator controller in the cluster reports the store Ready (reason `Valid`), " +
		"and fail with ESO's message otherwise, as `sync: controller` (the default) relies on it. Default true; set false where no " +
		"ESO controller runs (only `sync: provider` ExternalSecrets)."
	storeTimeoutDoc = "Deprecated: use the `customTimeouts` resource option. How long to wait for ESO with `waitForReady`, " +
		"as a Go duration, when no customTimeouts is given. Default `2m`."
	// timeoutDeprecation is the deprecation message of every `timeout` input.
	timeoutDeprecation = "Use the customTimeouts resource option; timeout is honoured only when none is given."
)

// StoreBackend holds exactly one backend configuration. ESO calls this
// field `provider`, a name Pulumi reserves.
type StoreBackend struct {
	Vault *VaultBackend `pulumi:"vault,optional"`
	AWS   *AWSBackend   `pulumi:"aws,optional"`
	ESC   *ESCBackend   `pulumi:"esc,optional"`
}

// Annotate documents StoreBackend.
func (b *StoreBackend) Annotate(a infer.Annotator) {
	a.Describe(b, "The secret backend of the store (ESO's `spec.provider`). Set exactly one backend.")
	a.Describe(&b.Vault, "HashiCorp Vault (KV v1 or v2).")
	a.Describe(&b.AWS, "AWS Secrets Manager.")
	a.Describe(&b.ESC, "A Pulumi ESC environment (ESO's `pulumi` provider).")
}

// VaultBackend is ESO's Vault provider.
type VaultBackend struct {
	Server    string          `pulumi:"server"`
	Path      *string         `pulumi:"path,optional"`
	Version   *VaultKVVersion `pulumi:"version,optional"`
	Namespace *string         `pulumi:"namespace,optional"`
	CABundle  *string         `pulumi:"caBundle,optional"`
	Auth      VaultAuth       `pulumi:"auth"`
}

// Annotate documents VaultBackend.
func (v *VaultBackend) Annotate(a infer.Annotator) {
	a.Describe(v, "A HashiCorp Vault KV secrets engine.")
	a.Describe(&v.Server, "Vault address, e.g. `https://vault.example:8200`.")
	a.Describe(&v.Path, "Mount path of the KV engine, e.g. `secret`.")
	a.SetDefault(&v.Path, defaultVaultMount)
	a.Describe(&v.Version, "KV engine version: `v2` or `v1`.")
	a.SetDefault(&v.Version, VaultKVVersion(defaultKVVersion))
	a.Describe(&v.Namespace, "Vault Enterprise namespace.")
	a.Describe(&v.CABundle, "PEM CA bundle used to verify the Vault server's certificate.")
	a.Describe(&v.Auth, "How to authenticate to Vault. Set exactly one method.")
}

// VaultAuth holds exactly one Vault auth method.
type VaultAuth struct {
	Token      *CredentialSource    `pulumi:"token,optional"`
	AppRole    *VaultAppRole        `pulumi:"appRole,optional"`
	Kubernetes *VaultKubernetesAuth `pulumi:"kubernetes,optional"`
	UserPass   *VaultUserPass       `pulumi:"userPass,optional"`
}

// Annotate documents VaultAuth.
func (v *VaultAuth) Annotate(a infer.Annotator) {
	a.Describe(v, "Vault auth method. Set exactly one.")
	a.Describe(&v.Token, "A Vault token.")
	a.Describe(&v.AppRole, "AppRole auth (role id + secret id).")
	a.Describe(&v.Kubernetes, "Kubernetes auth with a service account token (Vault validates it through TokenReview).")
	a.Describe(&v.UserPass, "Username and password auth.")
}

// VaultAppRole is AppRole auth.
type VaultAppRole struct {
	Path     *string          `pulumi:"path,optional"`
	RoleID   CredentialSource `pulumi:"roleId"`
	SecretID CredentialSource `pulumi:"secretId"`
}

// Annotate documents VaultAppRole.
func (v *VaultAppRole) Annotate(a infer.Annotator) {
	a.Describe(v, "Vault AppRole auth: a role id and a secret id.")
	a.Describe(&v.Path, "Mount path of the AppRole auth method.")
	a.SetDefault(&v.Path, "approle")
	a.Describe(&v.RoleID, "The role id.")
	a.Describe(&v.SecretID, "The secret id.")
}

// VaultKubernetesAuth is Kubernetes auth.
type VaultKubernetesAuth struct {
	MountPath         *string            `pulumi:"mountPath,optional"`
	Role              string             `pulumi:"role"`
	ServiceAccountRef *ServiceAccountRef `pulumi:"serviceAccountRef,optional"`
}

// Annotate documents VaultKubernetesAuth.
func (v *VaultKubernetesAuth) Annotate(a infer.Annotator) {
	a.Describe(v, "Vault Kubernetes auth: a service account token that Vault checks through the TokenReview API.")
	a.Describe(&v.MountPath, "Mount path of the Kubernetes auth method.")
	a.SetDefault(&v.MountPath, "kubernetes")
	a.Describe(&v.Role, "Vault role to log in as.")
	a.Describe(&v.ServiceAccountRef, "Service account whose token (from the TokenRequest API) is presented to Vault. "+
		"Required for `sync: provider`; ESO in the cluster can fall back to its own service account.")
}

// ServiceAccountRef names a Kubernetes service account.
type ServiceAccountRef struct {
	Name      string   `pulumi:"name"`
	Namespace *string  `pulumi:"namespace,optional"`
	Audiences []string `pulumi:"audiences,optional"`
}

// Annotate documents ServiceAccountRef.
func (s *ServiceAccountRef) Annotate(a infer.Annotator) {
	a.Describe(s, "A Kubernetes service account, for token-based auth.")
	a.Describe(&s.Name, "Service account name.")
	a.Describe(&s.Namespace, "Namespace (ClusterSecretStore only; a SecretStore uses its own namespace).")
	a.Describe(&s.Audiences, "Audiences of the requested token.")
}

// VaultUserPass is userpass auth.
type VaultUserPass struct {
	Path     *string          `pulumi:"path,optional"`
	Username string           `pulumi:"username"`
	Password CredentialSource `pulumi:"password"`
}

// Annotate documents VaultUserPass.
func (v *VaultUserPass) Annotate(a infer.Annotator) {
	a.Describe(v, "Vault userpass auth: a username and a password.")
	a.Describe(&v.Path, "Mount path of the userpass auth method.")
	a.SetDefault(&v.Path, "userpass")
	a.Describe(&v.Username, "The username.")
	a.Describe(&v.Password, "The password.")
}

// StoreOutputs are what both store kinds report.
type StoreOutputs struct {
	Ref               StoreRef `pulumi:"ref"`
	CredentialsSecret *string  `pulumi:"credentialsSecret,optional"`
	SpecHash          string   `pulumi:"specHash"`
	CredentialsHash   string   `pulumi:"credentialsHash" provider:"secret"`
	// SourcesHash is empty unless a credential comes from ESC.
	SourcesHash string `pulumi:"credentialSourcesHash,optional" provider:"secret"`
	// Ready, Reason and Message are what refresh found; optional so that
	// states written before they existed decode (nil Ready: ready).
	Ready   *bool   `pulumi:"ready,optional"`
	Reason  *string `pulumi:"reason,optional"`
	Message *string `pulumi:"message,optional"`
}

// Annotate documents StoreOutputs.
func (o *StoreOutputs) Annotate(a infer.Annotator) {
	a.Describe(&o.Ref, "Reference to this store; pass it as an ExternalSecret's `store`.")
	a.Describe(&o.CredentialsSecret, "Name of the Secret esosync manages for `value` credentials, if any.")
	a.Describe(&o.SpecHash, "Hash of the store CR's spec as last seen in the cluster; changes when it is edited out of band.")
	a.Describe(&o.CredentialsHash, "HMAC of the managed credentials as last seen in the cluster, keyed with the `esosync-hmac-key` Secret of "+
		"their namespace.")
	a.Describe(&o.SourcesHash, "HMAC of the credentials read from Pulumi ESC environments (keyed like credentialsHash), as last read (at deploy or refresh). "+
		"It changes when a value in ESC is rotated; the next `pulumi up` then rewrites the credentials Secret.")
	a.Describe(&o.Ready, "Whether the store in the cluster matches its inputs, as last observed: false when refresh found its "+
		"managed credentials Secret edited, deleted or behind a rotated ESC value. The next `pulumi up` repairs it.")
	a.Describe(&o.Reason, "Why the store is not ready, e.g. `CredentialsDrift`.")
	a.Describe(&o.Message, "Human-readable detail for `reason`.")
}

// AWSService is the AWS secrets service a store reads.
type AWSService string

// AWS services; only Secrets Manager is implemented.
const (
	AWSSecretsManager AWSService = "SecretsManager"
)

// Values lists the enum for the schema.
func (AWSService) Values() []infer.EnumValue[AWSService] {
	return []infer.EnumValue[AWSService]{
		{Name: "SecretsManager", Value: AWSSecretsManager, Description: "AWS Secrets Manager."},
	}
}

// AWSBackend is ESO's AWS provider.
type AWSBackend struct {
	Service    *AWSService `pulumi:"service,optional"`
	Region     string      `pulumi:"region"`
	Prefix     *string     `pulumi:"prefix,optional"`
	Role       *string     `pulumi:"role,optional"`
	ExternalID *string     `pulumi:"externalId,optional"`
	Auth       *AWSAuth    `pulumi:"auth,optional"`
}

// Annotate documents AWSBackend.
func (b *AWSBackend) Annotate(a infer.Annotator) {
	a.Describe(b, "AWS Secrets Manager (ESO's `aws` provider).")
	a.Describe(&b.Service, "The AWS service: `SecretsManager`.")
	a.SetDefault(&b.Service, AWSSecretsManager)
	a.Describe(&b.Region, "AWS region, e.g. `eu-west-1`.")
	a.Describe(&b.Prefix, "Prefix added to every remote key, e.g. `prod/` makes key `db` read secret `prod/db`.")
	a.Describe(&b.Role, "IAM role ARN to assume (STS AssumeRole) with the base credentials.")
	a.Describe(&b.ExternalID, "External ID passed when assuming `role`.")
	a.Describe(&b.Auth, "How to authenticate. Leave unset for the default credential chain (ESO: the controller pod's; "+
		"`sync: provider`: the environment where Pulumi runs).")
}

// AWSAuth holds exactly one AWS auth method.
type AWSAuth struct {
	SecretRef *AWSStaticCredentials `pulumi:"secretRef,optional"`
	JWT       *AWSJWTAuth           `pulumi:"jwt,optional"`
}

// Annotate documents AWSAuth.
func (x *AWSAuth) Annotate(a infer.Annotator) {
	a.Describe(x, "AWS auth method. Set exactly one.")
	a.Describe(&x.SecretRef, "Static access keys.")
	a.Describe(&x.JWT, "A Kubernetes service account token exchanged through STS AssumeRoleWithWebIdentity "+
		"(IRSA: the role comes from the service account's `eks.amazonaws.com/role-arn` annotation).")
}

// AWSStaticCredentials are access keys, each from a credential source.
type AWSStaticCredentials struct {
	AccessKeyID     CredentialSource  `pulumi:"accessKeyId"`
	SecretAccessKey CredentialSource  `pulumi:"secretAccessKey"`
	SessionToken    *CredentialSource `pulumi:"sessionToken,optional"`
}

// Annotate documents AWSStaticCredentials.
func (c *AWSStaticCredentials) Annotate(a infer.Annotator) {
	a.Describe(c, "AWS access keys, each from a credential source.")
	a.Describe(&c.AccessKeyID, "The access key id.")
	a.Describe(&c.SecretAccessKey, "The secret access key.")
	a.Describe(&c.SessionToken, "A session token, for temporary credentials (for example from an ESC `fn::open::aws-login`).")
}

// AWSJWTAuth is service-account token auth.
type AWSJWTAuth struct {
	ServiceAccountRef ServiceAccountRef `pulumi:"serviceAccountRef"`
}

// Annotate documents AWSJWTAuth.
func (j *AWSJWTAuth) Annotate(a infer.Annotator) {
	a.Describe(j, "AWS auth with a Kubernetes service account token (IRSA).")
	a.Describe(&j.ServiceAccountRef, "The service account whose token is exchanged.")
}

// ESCBackend is ESO's `pulumi` provider: values of a Pulumi ESC environment.
type ESCBackend struct {
	Organization string  `pulumi:"organization"`
	Project      string  `pulumi:"project"`
	Environment  string  `pulumi:"environment"`
	APIURL       *string `pulumi:"apiUrl,optional"`
	Auth         ESCAuth `pulumi:"auth"`
}

// Annotate documents ESCBackend.
func (b *ESCBackend) Annotate(a infer.Annotator) {
	a.Describe(b, "A Pulumi ESC environment (ESO's `pulumi` provider). Remote keys are paths in the environment's "+
		"properties in ESC syntax, e.g. `app.db[\"pass word\"]` or `list[0]`.")
	a.Describe(&b.Organization, "Pulumi organization.")
	a.Describe(&b.Project, "ESC project.")
	a.Describe(&b.Environment, "ESC environment name.")
	a.Describe(&b.APIURL, "Base URL of the ESC API.")
	a.SetDefault(&b.APIURL, escsource.DefaultAPIURL)
	a.Describe(&b.Auth, "How to authenticate to Pulumi Cloud.")
}

// ESCAuth holds the Pulumi access token.
type ESCAuth struct {
	AccessToken CredentialSource `pulumi:"accessToken"`
}

// Annotate documents ESCAuth.
func (x *ESCAuth) Annotate(a infer.Annotator) {
	a.Describe(x, "How the store authenticates to Pulumi Cloud.")
	a.Describe(&x.AccessToken, "A Pulumi access token allowed to open the environment.")
}
