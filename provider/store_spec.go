package provider

import (
	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	esmeta "github.com/external-secrets/external-secrets/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/esosync/pulumi-esosync/provider/internal/escsource"
	"github.com/esosync/pulumi-esosync/provider/internal/reconcile"
)

// Defaults of store inputs.
const (
	defaultVaultMount = "secret"
	defaultKVVersion  = "v2"
	defaultStoreWait  = "2m"
)

// storeInputs is what SecretStore and ClusterSecretStore have in common,
// with names and namespaces resolved.
type storeInputs struct {
	kind           string
	name           string
	namespace      string // SecretStore namespace; "" for a ClusterSecretStore
	credNamespace  string // where the managed credentials Secret lives
	backend        StoreBackend
	controller     *string
	labels         map[string]string
	annotations    map[string]string
	skipValidation bool
	waitForReady   bool
	timeout        *string
}

// request builds the engine's request: ESO's store spec and the managed
// credentials it points at. It does no I/O: ESC sources are read by the
// engine when it applies or observes the store.
func (s storeInputs) request() reconcile.StoreRequest {
	c := &credentials{s: s}
	provider := &esv1.SecretStoreProvider{}
	switch b := s.backend; {
	case b.Vault != nil:
		provider.Vault = s.vaultSpec(c)
	case b.AWS != nil:
		provider.AWS = s.awsSpec(c)
	case b.ESC != nil:
		provider.Pulumi = s.escSpec(c)
	}
	return reconcile.StoreRequest{
		Kind: s.kind, Name: s.name, Namespace: s.namespace, CredentialsNamespace: s.credNamespace,
		Spec:   esv1.SecretStoreSpec{Provider: provider, Controller: ptr.Deref(s.controller, "")},
		Labels: s.labels, Annotations: s.annotations, Credentials: c.list,
		SkipValidation: s.skipValidation, WaitForReady: s.waitForReady,
	}
}

// credentials collects the managed credentials while a spec is built:
// value and esc sources land in the Secret esosync manages, secretRef
// sources are referenced where they are.
type credentials struct {
	s    storeInputs
	list []reconcile.Credential
}

// ref returns the selector the store spec points at for the credential at
// field (a schema path, for errors), stored under key when managed.
func (c *credentials) ref(field, key string, src *CredentialSource) esmeta.SecretKeySelector {
	if src.SecretRef != nil {
		return esmeta.SecretKeySelector{Name: src.SecretRef.Name, Key: src.SecretRef.Key, Namespace: src.SecretRef.Namespace}
	}
	cred := reconcile.Credential{Field: field, Key: key, Value: ptr.Deref(src.Value, "")}
	if src.Esc != nil {
		cred.ESC = &escsource.Ref{Environment: src.Esc.Environment, Path: src.Esc.Path}
	}
	c.list = append(c.list, cred)
	sel := esmeta.SecretKeySelector{Name: reconcile.CredentialsSecretName(c.s.name), Key: key}
	if c.s.kind == ClusterSecretStoreKind {
		sel.Namespace = ptr.To(c.s.credNamespace)
	}
	return sel
}

func (s storeInputs) vaultSpec(c *credentials) *esv1.VaultProvider {
	v := s.backend.Vault
	vp := &esv1.VaultProvider{
		Server:    v.Server,
		Path:      ptr.To(ptr.Deref(v.Path, defaultVaultMount)),
		Version:   esv1.VaultKVStoreVersion(ptr.Deref(v.Version, defaultKVVersion)),
		Namespace: v.Namespace,
		Auth:      &esv1.VaultAuth{},
	}
	if v.CABundle != nil {
		vp.CABundle = []byte(*v.CABundle)
	}
	a := v.Auth
	const at = "backend.vault.auth."
	switch {
	case a.Token != nil:
		vp.Auth.TokenSecretRef = ptr.To(c.ref(at+"token", "token", a.Token))
	case a.AppRole != nil:
		ar := &esv1.VaultAppRole{Path: ptr.Deref(a.AppRole.Path, "approle"), SecretRef: c.ref(at+"appRole.secretId", "appRole.secretId", &a.AppRole.SecretID)}
		ar.RoleRef = ptr.To(c.ref(at+"appRole.roleId", "appRole.roleId", &a.AppRole.RoleID))
		vp.Auth.AppRole = ar
	case a.Kubernetes != nil:
		ka := &esv1.VaultKubernetesAuth{Path: ptr.Deref(a.Kubernetes.MountPath, "kubernetes"), Role: a.Kubernetes.Role}
		if sa := a.Kubernetes.ServiceAccountRef; sa != nil {
			ka.ServiceAccountRef = &esmeta.ServiceAccountSelector{Name: sa.Name, Namespace: sa.Namespace, Audiences: sa.Audiences}
		}
		vp.Auth.Kubernetes = ka
	case a.UserPass != nil:
		vp.Auth.UserPass = &esv1.VaultUserPassAuth{Path: ptr.Deref(a.UserPass.Path, "userpass"), Username: a.UserPass.Username,
			SecretRef: c.ref(at+"userPass.password", "userPass.password", &a.UserPass.Password)}
	}
	return vp
}

func (s storeInputs) awsSpec(c *credentials) *esv1.AWSProvider {
	b := s.backend.AWS
	ap := &esv1.AWSProvider{
		Service:    esv1.AWSServiceType(ptr.Deref(b.Service, AWSSecretsManager)),
		Region:     b.Region,
		Role:       ptr.Deref(b.Role, ""),
		ExternalID: ptr.Deref(b.ExternalID, ""),
		Prefix:     ptr.Deref(b.Prefix, ""),
	}
	if b.Auth == nil {
		return ap
	}
	const at = "backend.aws.auth."
	if k := b.Auth.SecretRef; k != nil {
		ref := &esv1.AWSAuthSecretRef{
			AccessKeyID:     c.ref(at+"secretRef.accessKeyId", "accessKeyId", &k.AccessKeyID),
			SecretAccessKey: c.ref(at+"secretRef.secretAccessKey", "secretAccessKey", &k.SecretAccessKey),
		}
		if k.SessionToken != nil {
			ref.SessionToken = ptr.To(c.ref(at+"secretRef.sessionToken", "sessionToken", k.SessionToken))
		}
		ap.Auth.SecretRef = ref
	}
	if j := b.Auth.JWT; j != nil {
		sa := j.ServiceAccountRef
		ap.Auth.JWTAuth = &esv1.AWSJWTAuth{ServiceAccountRef: &esmeta.ServiceAccountSelector{Name: sa.Name, Namespace: sa.Namespace, Audiences: sa.Audiences}}
	}
	return ap
}

func (s storeInputs) escSpec(c *credentials) *esv1.PulumiProvider {
	b := s.backend.ESC
	sel := c.ref("backend.esc.auth.accessToken", "accessToken", &b.Auth.AccessToken)
	return &esv1.PulumiProvider{
		APIURL:       ptr.Deref(b.APIURL, escsource.DefaultAPIURL),
		AccessToken:  &esv1.PulumiProviderSecretRef{SecretRef: &sel},
		Organization: b.Organization,
		Project:      b.Project,
		Environment:  b.Environment,
	}
}

// backendOf rebuilds the backend input from a store's spec, for `pulumi
// import`. Every credential becomes a secretRef to where the spec points
// (values are never read back into inputs).
func backendOf(spec *esv1.SecretStoreSpec) StoreBackend {
	var b StoreBackend
	if spec == nil || spec.Provider == nil {
		return b
	}
	switch pr := spec.Provider; {
	case pr.Vault != nil:
		b.Vault = vaultBackendOf(pr.Vault)
	case pr.AWS != nil:
		b.AWS = awsBackendOf(pr.AWS)
	case pr.Pulumi != nil:
		b.ESC = &ESCBackend{Organization: pr.Pulumi.Organization, Project: pr.Pulumi.Project, Environment: pr.Pulumi.Environment,
			APIURL: nonEmpty(pr.Pulumi.APIURL)}
		if t := pr.Pulumi.AccessToken; t != nil && t.SecretRef != nil {
			b.ESC.Auth.AccessToken = secretRefOf(*t.SecretRef)
		}
	}
	return b
}

func vaultBackendOf(v *esv1.VaultProvider) *VaultBackend {
	out := &VaultBackend{Server: v.Server, Path: v.Path, Namespace: v.Namespace, Version: (*VaultKVVersion)(nonEmpty(string(v.Version)))}
	if len(v.CABundle) > 0 {
		out.CABundle = ptr.To(string(v.CABundle))
	}
	if v.Auth == nil {
		return out
	}
	switch a := v.Auth; {
	case a.TokenSecretRef != nil:
		out.Auth.Token = ptr.To(secretRefOf(*a.TokenSecretRef))
	case a.AppRole != nil:
		ar := &VaultAppRole{Path: nonEmpty(a.AppRole.Path), SecretID: secretRefOf(a.AppRole.SecretRef)}
		if a.AppRole.RoleRef != nil {
			ar.RoleID = secretRefOf(*a.AppRole.RoleRef)
		} else {
			ar.RoleID = CredentialSource{Value: ptr.To(a.AppRole.RoleID)}
		}
		out.Auth.AppRole = ar
	case a.Kubernetes != nil:
		k := &VaultKubernetesAuth{MountPath: nonEmpty(a.Kubernetes.Path), Role: a.Kubernetes.Role}
		if sa := a.Kubernetes.ServiceAccountRef; sa != nil {
			k.ServiceAccountRef = &ServiceAccountRef{Name: sa.Name, Namespace: sa.Namespace, Audiences: sa.Audiences}
		}
		out.Auth.Kubernetes = k
	case a.UserPass != nil:
		out.Auth.UserPass = &VaultUserPass{Path: nonEmpty(a.UserPass.Path), Username: a.UserPass.Username, Password: secretRefOf(a.UserPass.SecretRef)}
	}
	return out
}

func awsBackendOf(a *esv1.AWSProvider) *AWSBackend {
	out := &AWSBackend{Service: (*AWSService)(nonEmpty(string(a.Service))), Region: a.Region, Prefix: nonEmpty(a.Prefix),
		Role: nonEmpty(a.Role), ExternalID: nonEmpty(a.ExternalID)}
	switch {
	case a.Auth.SecretRef != nil:
		r := a.Auth.SecretRef
		creds := &AWSStaticCredentials{AccessKeyID: secretRefOf(r.AccessKeyID), SecretAccessKey: secretRefOf(r.SecretAccessKey)}
		if r.SessionToken != nil {
			creds.SessionToken = ptr.To(secretRefOf(*r.SessionToken))
		}
		out.Auth = &AWSAuth{SecretRef: creds}
	case a.Auth.JWTAuth != nil && a.Auth.JWTAuth.ServiceAccountRef != nil:
		sa := a.Auth.JWTAuth.ServiceAccountRef
		out.Auth = &AWSAuth{JWT: &AWSJWTAuth{ServiceAccountRef: ServiceAccountRef{Name: sa.Name, Namespace: sa.Namespace, Audiences: sa.Audiences}}}
	}
	return out
}

func secretRefOf(sel esmeta.SecretKeySelector) CredentialSource {
	return CredentialSource{SecretRef: &SecretKeyRef{Name: sel.Name, Key: sel.Key, Namespace: sel.Namespace}}
}
