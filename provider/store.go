package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	esmeta "github.com/external-secrets/external-secrets/apis/meta/v1"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
	"github.com/esosync/pulumi-esosync/provider/internal/sync"
)

// Labels and annotations esosync puts on what it creates.
const (
	managedByLabel  = "app.kubernetes.io/managed-by"
	managedByValue  = "esosync"
	storeOwnerAnnot = "esosync.io/store"
	// credentialsChangedAnnot is set on a store when esosync rewrote its
	// credentials, so that ESO re-validates it at once.
	credentialsChangedAnnot = "esosync.io/credentials-changed-at"
	credentialsSuffix       = "-esosync-credentials"
	defaultVaultMount       = "secret"
	defaultKVVersion        = "v2"
	defaultESONamspace      = "external-secrets"
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
	a.Describe(&v.Path, "Mount path of the KV engine, e.g. `secret` (the default).")
	a.Describe(&v.Version, "KV engine version: `v2` (default) or `v1`.")
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
	a.Describe(&v.Path, "Mount path of the AppRole auth method; default `approle`.")
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
	a.Describe(&v.MountPath, "Mount path of the Kubernetes auth method; default `kubernetes`.")
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
	a.Describe(&v.Path, "Mount path of the userpass auth method; default `userpass`.")
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
}

// Annotate documents StoreOutputs.
func (o *StoreOutputs) Annotate(a infer.Annotator) {
	a.Describe(&o.Ref, "Reference to this store; pass it as an ExternalSecret's `store`.")
	a.Describe(&o.CredentialsSecret, "Name of the Secret esosync manages for `value` credentials, if any.")
	a.Describe(&o.SpecHash, "Hash of the store CR's spec as last seen in the cluster; changes when it is edited out of band.")
	a.Describe(&o.CredentialsHash, "Hash of the managed credentials as last seen in the cluster.")
	a.Describe(&o.SourcesHash, "Hash of the credentials read from Pulumi ESC environments, as last read (at deploy or refresh). "+
		"It changes when a value in ESC is rotated; the next `pulumi up` then rewrites the credentials Secret.")
}

// storeInputs is what SecretStore and ClusterSecretStore have in common.
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
	timeout        string
	esc            escSource
}

// checkStore validates a store's inputs; path prefixes are the input names.
func checkStore(pr *problems, s storeInputs, clusterScoped bool) {
	b := s.backend
	set := 0
	for _, on := range []bool{b.Vault != nil, b.AWS != nil, b.ESC != nil} {
		if on {
			set++
		}
	}
	if set != 1 {
		pr.add("backend", "set exactly one backend: vault, aws or esc (%d set)", set)
		return
	}
	switch {
	case b.Vault != nil:
		checkVault(pr, b.Vault, clusterScoped)
	case b.AWS != nil:
		checkAWS(pr, b.AWS, clusterScoped)
	case b.ESC != nil:
		checkESC(pr, b.ESC, clusterScoped)
	}
}

func checkVault(pr *problems, v *VaultBackend, clusterScoped bool) {
	pr.httpURL("backend.vault.server", v.Server)
	oneOf(pr, "backend.vault.version", v.Version, "v1", "v2")
	if v.Path != nil && (*v.Path == "" || (*v.Path)[0] == '/' || (*v.Path)[len(*v.Path)-1] == '/') {
		pr.add("backend.vault.path", "%q must be a mount path without leading or trailing slash, e.g. \"secret\"", *v.Path)
	}
	pr.pemBundle("backend.vault.caBundle", v.CABundle)
	a := v.Auth
	set := 0
	for _, on := range []bool{a.Token != nil, a.AppRole != nil, a.Kubernetes != nil, a.UserPass != nil} {
		if on {
			set++
		}
	}
	if set != 1 {
		pr.add("backend.vault.auth", "set exactly one of token, appRole, kubernetes or userPass (%d set)", set)
	}
	if a.Token != nil {
		pr.credential("backend.vault.auth.token", a.Token, clusterScoped)
	}
	if a.AppRole != nil {
		pr.credential("backend.vault.auth.appRole.roleId", &a.AppRole.RoleID, clusterScoped)
		pr.credential("backend.vault.auth.appRole.secretId", &a.AppRole.SecretID, clusterScoped)
	}
	if k := a.Kubernetes; k != nil {
		if k.Role == "" {
			pr.add("backend.vault.auth.kubernetes.role", "must not be empty")
		}
		if k.ServiceAccountRef != nil {
			pr.dnsName("backend.vault.auth.kubernetes.serviceAccountRef.name", k.ServiceAccountRef.Name, true)
			pr.namespace("backend.vault.auth.kubernetes.serviceAccountRef.namespace", k.ServiceAccountRef.Namespace)
		}
	}
	if u := a.UserPass; u != nil {
		if u.Username == "" {
			pr.add("backend.vault.auth.userPass.username", "must not be empty")
		}
		pr.credential("backend.vault.auth.userPass.password", &u.Password, clusterScoped)
	}
}

// awsRegion is the shape of every AWS region name (us-east-1, ap-southeast-4, us-gov-west-1, eu-isoe-west-1).
var awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)

func checkAWS(pr *problems, b *AWSBackend, clusterScoped bool) {
	oneOf(pr, "backend.aws.service", b.Service, AWSSecretsManager)
	if !awsRegion.MatchString(b.Region) {
		pr.add("backend.aws.region", "%q is not an AWS region such as \"us-east-1\"", b.Region)
	}
	if b.Role != nil && !strings.HasPrefix(*b.Role, "arn:") {
		pr.add("backend.aws.role", "%q is not an IAM role ARN such as \"arn:aws:iam::123456789012:role/reader\"", *b.Role)
	}
	if b.Auth == nil {
		return
	}
	if (b.Auth.SecretRef != nil) == (b.Auth.JWT != nil) {
		pr.add("backend.aws.auth", "set exactly one of secretRef or jwt (or leave auth unset for the default credential chain)")
		return
	}
	if c := b.Auth.SecretRef; c != nil {
		pr.credential("backend.aws.auth.secretRef.accessKeyId", &c.AccessKeyID, clusterScoped)
		pr.credential("backend.aws.auth.secretRef.secretAccessKey", &c.SecretAccessKey, clusterScoped)
		if c.SessionToken != nil {
			pr.credential("backend.aws.auth.secretRef.sessionToken", c.SessionToken, clusterScoped)
		}
	}
	if j := b.Auth.JWT; j != nil {
		pr.dnsName("backend.aws.auth.jwt.serviceAccountRef.name", j.ServiceAccountRef.Name, true)
		pr.namespace("backend.aws.auth.jwt.serviceAccountRef.namespace", j.ServiceAccountRef.Namespace)
	}
}

func checkESC(pr *problems, b *ESCBackend, clusterScoped bool) {
	// The same limits the ESC API (and esc-sdk, client-side) enforces.
	if n := len(b.Organization); n < 3 || n > 40 {
		pr.add("backend.esc.organization", "%q must be 3 to 40 characters", b.Organization)
	}
	for _, f := range []struct{ path, v string }{{"backend.esc.project", b.Project}, {"backend.esc.environment", b.Environment}} {
		if n := len(f.v); n < 1 || n > 100 || strings.ContainsAny(f.v, "/ ") {
			pr.add(f.path, "%q must be 1 to 100 characters without slashes or spaces", f.v)
		}
	}
	if b.APIURL != nil {
		pr.httpURL("backend.esc.apiUrl", *b.APIURL)
	}
	pr.credential("backend.esc.auth.accessToken", &b.Auth.AccessToken, clusterScoped)
}

// credentials collects the managed credentials while a spec is built:
// value and esc sources land in the Secret esosync manages, secretRef
// sources are referenced where they are.
type credentials struct {
	ctx    context.Context
	s      storeInputs
	creds  map[string][]byte
	fromES map[string][]byte // the subset read from ESC
	err    error
}

// ref returns the selector the store spec points at for the credential at
// field (a schema path, for errors) stored under key.
func (c *credentials) ref(field, key string, src *CredentialSource) esmeta.SecretKeySelector {
	if src.SecretRef != nil {
		return esmeta.SecretKeySelector{Name: src.SecretRef.Name, Key: src.SecretRef.Key, Namespace: src.SecretRef.Namespace}
	}
	switch {
	case src.Esc != nil:
		v, err := c.s.esc.read(c.ctx, field, src.Esc)
		if err != nil && c.err == nil {
			c.err = err
		}
		c.creds[key] = []byte(v)
		c.fromES[key] = []byte(v)
	default:
		c.creds[key] = []byte(deref(src.Value))
	}
	sel := esmeta.SecretKeySelector{Name: c.s.name + credentialsSuffix, Key: key}
	if c.s.kind == ClusterSecretStoreKind {
		sel.Namespace = &c.s.credNamespace
	}
	return sel
}

// spec builds ESO's store spec and the managed credentials it points at,
// opening ESC environments for esc credential sources. sourcesHash is the
// hash of the ESC-read values ("" when there are none).
func (s storeInputs) spec(ctx context.Context) (spec esv1.SecretStoreSpec, creds map[string][]byte, sourcesHash string, err error) {
	c := &credentials{ctx: ctx, s: s, creds: map[string][]byte{}, fromES: map[string][]byte{}}
	provider := &esv1.SecretStoreProvider{}
	switch b := s.backend; {
	case b.Vault != nil:
		provider.Vault = s.vaultSpec(c)
	case b.AWS != nil:
		provider.AWS = s.awsSpec(c)
	case b.ESC != nil:
		provider.Pulumi = s.escSpec(c)
	}
	if c.err != nil {
		return spec, nil, "", c.err
	}
	spec = esv1.SecretStoreSpec{Provider: provider, Controller: deref(s.controller)}
	if len(c.creds) == 0 {
		c.creds = nil
	}
	if len(c.fromES) > 0 {
		sourcesHash = hashCreds(c.fromES)
	}
	return spec, c.creds, sourcesHash, nil
}

func (s storeInputs) vaultSpec(c *credentials) *esv1.VaultProvider {
	v := s.backend.Vault
	vp := &esv1.VaultProvider{
		Server:    v.Server,
		Path:      strPtr(ptrOr(v.Path, defaultVaultMount)),
		Version:   esv1.VaultKVStoreVersion(ptrOr(v.Version, defaultKVVersion)),
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
		sel := c.ref(at+"token", "token", a.Token)
		vp.Auth.TokenSecretRef = &sel
	case a.AppRole != nil:
		ar := &esv1.VaultAppRole{Path: ptrOr(a.AppRole.Path, "approle"), SecretRef: c.ref(at+"appRole.secretId", "appRole.secretId", &a.AppRole.SecretID)}
		roleRef := c.ref(at+"appRole.roleId", "appRole.roleId", &a.AppRole.RoleID)
		ar.RoleRef = &roleRef
		vp.Auth.AppRole = ar
	case a.Kubernetes != nil:
		ka := &esv1.VaultKubernetesAuth{Path: ptrOr(a.Kubernetes.MountPath, "kubernetes"), Role: a.Kubernetes.Role}
		if sa := a.Kubernetes.ServiceAccountRef; sa != nil {
			ka.ServiceAccountRef = &esmeta.ServiceAccountSelector{Name: sa.Name, Namespace: sa.Namespace, Audiences: sa.Audiences}
		}
		vp.Auth.Kubernetes = ka
	case a.UserPass != nil:
		vp.Auth.UserPass = &esv1.VaultUserPassAuth{Path: ptrOr(a.UserPass.Path, "userpass"), Username: a.UserPass.Username,
			SecretRef: c.ref(at+"userPass.password", "userPass.password", &a.UserPass.Password)}
	}
	return vp
}

func (s storeInputs) awsSpec(c *credentials) *esv1.AWSProvider {
	b := s.backend.AWS
	ap := &esv1.AWSProvider{
		Service:    esv1.AWSServiceType(ptrOr(b.Service, AWSSecretsManager)),
		Region:     b.Region,
		Role:       deref(b.Role),
		ExternalID: deref(b.ExternalID),
		Prefix:     deref(b.Prefix),
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
			sel := c.ref(at+"secretRef.sessionToken", "sessionToken", k.SessionToken)
			ref.SessionToken = &sel
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
		APIURL:       ptrOr(b.APIURL, defaultESCAPIURL),
		AccessToken:  &esv1.PulumiProviderSecretRef{SecretRef: &sel},
		Organization: b.Organization,
		Project:      b.Project,
		Environment:  b.Environment,
	}
}

func (s storeInputs) object(spec esv1.SecretStoreSpec) esv1.GenericStore {
	meta := metav1.ObjectMeta{Name: s.name, Namespace: s.namespace, Labels: map[string]string{managedByLabel: managedByValue}, Annotations: s.annotations}
	maps.Copy(meta.Labels, s.labels)
	if s.kind == ClusterSecretStoreKind {
		return &esv1.ClusterSecretStore{ObjectMeta: meta, Spec: spec}
	}
	return &esv1.SecretStore{ObjectMeta: meta, Spec: spec}
}

func (s storeInputs) outputs(spec esv1.SecretStoreSpec, creds map[string][]byte, sourcesHash string) StoreOutputs {
	out := StoreOutputs{Ref: StoreRef{Kind: s.kind, Name: s.name}, SpecHash: hashJSON(spec), CredentialsHash: hashCreds(creds), SourcesHash: sourcesHash}
	if s.kind == SecretStoreKind {
		out.Ref.Namespace = strPtr(s.namespace)
	}
	if creds != nil {
		out.CredentialsSecret = strPtr(s.name + credentialsSuffix)
	}
	return out
}

// apply writes the managed credentials, validates the store against its
// backend, then creates or updates the store CR. Nothing is left behind when
// validation fails on create.
func (s storeInputs) apply(ctx context.Context, cluster *kube.Cluster, create bool) (StoreOutputs, error) {
	spec, creds, sourcesHash, err := s.spec(ctx)
	if err != nil {
		return StoreOutputs{}, err
	}
	c, err := cluster.Client()
	if err != nil {
		return StoreOutputs{}, err
	}
	obj := s.object(spec)
	if create {
		existing := s.object(esv1.SecretStoreSpec{})
		if err := c.Get(ctx, client.ObjectKeyFromObject(existing), existing); err == nil {
			return StoreOutputs{}, fmt.Errorf("%s %s already exists; import it or choose another name", s.kind, s.describe())
		} else if !apierrors.IsNotFound(err) && !isNoMatch(err) {
			return StoreOutputs{}, fmt.Errorf("reading %s %s: %w", s.kind, s.describe(), err)
		}
	}
	// What the credentials Secret held before, so a failed update can put
	// it back: the store must keep working with its old credentials.
	var previous map[string][]byte
	if !create {
		live := &corev1.Secret{}
		if err := c.Get(ctx, s.credentialsKey(), live); err == nil && live.Annotations[storeOwnerAnnot] == s.owner() {
			previous = live.Data
		}
	}
	createdCreds, changedCreds, err := s.writeCredentials(ctx, c, creds)
	if err != nil {
		return StoreOutputs{}, err
	}
	if changedCreds && !create {
		// ESO does not watch the credentials Secret: touching the store makes
		// it validate the new credentials now rather than at its next resync.
		ann := maps.Clone(obj.GetAnnotations())
		if ann == nil {
			ann = map[string]string{}
		}
		ann[credentialsChangedAnnot] = time.Now().UTC().Format(time.RFC3339Nano)
		obj.SetAnnotations(ann)
	}
	fail := func(err error) (StoreOutputs, error) {
		switch {
		case createdCreds:
			_ = s.deleteCredentials(ctx, c)
		case changedCreds && previous != nil:
			if _, _, rerr := s.writeCredentials(ctx, c, previous); rerr != nil {
				err = fmt.Errorf("%w (and restoring the previous credentials failed: %v)", err, rerr)
			}
		}
		return StoreOutputs{}, err
	}
	if !s.skipValidation {
		err := validateStore(ctx, cluster, obj, s.credNamespace)
		switch {
		case errors.Is(err, sync.ErrInClusterCredentials) && s.waitForReady:
			// ESO's validation below is the only one possible.
			p.GetLogger(ctx).Infof("%s %s: not validated from outside the cluster (%v); waiting for ESO's validation instead", s.kind, s.describe(), err)
		case err != nil:
			return fail(err)
		}
	}
	if create {
		if err := c.Create(ctx, obj); err != nil {
			return fail(fmt.Errorf("creating %s %s: %w", s.kind, s.describe(), crdHint(err)))
		}
	} else {
		// ESO writes the store's status meanwhile: retry on conflicts.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			live := s.object(esv1.SecretStoreSpec{})
			if err := c.Get(ctx, client.ObjectKeyFromObject(live), live); err != nil {
				if !apierrors.IsNotFound(err) {
					return fmt.Errorf("reading %s %s: %w", s.kind, s.describe(), err)
				}
				if err := c.Create(ctx, obj); err != nil {
					return fmt.Errorf("re-creating %s %s: %w", s.kind, s.describe(), crdHint(err))
				}
				return nil
			}
			setStore(live, obj)
			return c.Update(ctx, live)
		})
		if err != nil {
			return fail(fmt.Errorf("updating %s %s: %w", s.kind, s.describe(), err))
		}
		if creds == nil {
			if err := s.deleteCredentials(ctx, c); err != nil {
				return StoreOutputs{}, err
			}
		}
	}
	if s.waitForReady {
		timeout, _ := time.ParseDuration(s.timeout)
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		log := p.GetLogger(ctx)
		log.InfoStatusf("waiting up to %s for External Secrets Operator to validate %s %s", timeout, s.kind, s.describe())
		if err := sync.AwaitStore(wctx, c, s.object(esv1.SecretStoreSpec{}), 500*time.Millisecond, func(reason, message string) {
			log.InfoStatusf("External Secrets Operator: %s: %s", reason, message)
		}); err != nil {
			return s.outputs(spec, creds, sourcesHash), err
		}
	}
	return s.outputs(spec, creds, sourcesHash), nil
}

func setStore(live, desired esv1.GenericStore) {
	live.SetLabels(desired.GetLabels())
	live.SetAnnotations(desired.GetAnnotations())
	*live.GetSpec() = *desired.GetSpec()
}

// validateStore logs in to the backend with the store's credentials, as ESO
// would, and checks access to the store's scope.
func validateStore(ctx context.Context, cluster *kube.Cluster, store esv1.GenericStore, namespace string) error {
	c, err := cluster.Client()
	if err != nil {
		return err
	}
	k := sync.Kube{Client: c, Clientset: cluster.Clientset}
	bc, err := sync.OpenStore(ctx, k, store, namespace)
	if err != nil {
		return fmt.Errorf("store %s is not valid: %w", store.GetName(), err)
	}
	defer func() { _ = bc.Close(ctx) }()
	if err := bc.Validate(ctx); err != nil {
		return fmt.Errorf("store %s is not valid: %w", store.GetName(), err)
	}
	return nil
}

func (s storeInputs) describe() string {
	if s.namespace != "" {
		return s.namespace + "/" + s.name
	}
	return s.name
}

func (s storeInputs) credentialsKey() client.ObjectKey {
	return client.ObjectKey{Namespace: s.credNamespace, Name: s.name + credentialsSuffix}
}

func (s storeInputs) owner() string { return string(s.kind) + "/" + s.describe() }

// writeCredentials creates or updates the managed credentials Secret. It
// refuses to touch a Secret of that name that esosync does not manage.
func (s storeInputs) writeCredentials(ctx context.Context, c client.Client, creds map[string][]byte) (created, changed bool, err error) {
	if creds == nil {
		return false, false, nil
	}
	key := s.credentialsKey()
	live := &corev1.Secret{}
	err = c.Get(ctx, key, live)
	switch {
	case apierrors.IsNotFound(err):
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace,
				Labels:      map[string]string{managedByLabel: managedByValue},
				Annotations: map[string]string{storeOwnerAnnot: s.owner()}},
			Type: corev1.SecretTypeOpaque,
			Data: creds,
		}
		if err := c.Create(ctx, secret); err != nil {
			return false, false, fmt.Errorf("creating credentials Secret %s: %w", key, err)
		}
		return true, true, nil
	case err != nil:
		return false, false, fmt.Errorf("reading credentials Secret %s: %w", key, err)
	}
	if live.Annotations[storeOwnerAnnot] != s.owner() {
		return false, false, fmt.Errorf("credentials Secret %s exists and is not managed by esosync for %s; esosync will not overwrite it", key, s.owner())
	}
	if hashCreds(live.Data) == hashCreds(creds) {
		return false, false, nil
	}
	live.Data = creds
	if err := c.Update(ctx, live); err != nil {
		return false, false, fmt.Errorf("updating credentials Secret %s: %w", key, err)
	}
	return false, true, nil
}

// deleteCredentials deletes the managed credentials Secret if esosync owns it.
func (s storeInputs) deleteCredentials(ctx context.Context, c client.Client) error {
	live := &corev1.Secret{}
	if err := c.Get(ctx, s.credentialsKey(), live); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading credentials Secret %s: %w", s.credentialsKey(), err)
	}
	if live.Annotations[storeOwnerAnnot] != s.owner() {
		return nil
	}
	if err := c.Delete(ctx, live); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting credentials Secret %s: %w", s.credentialsKey(), err)
	}
	return nil
}

// read reports the store as it is in the cluster. found is false only when
// the CR is really gone.
func (s storeInputs) read(ctx context.Context, cluster *kube.Cluster, prev StoreOutputs) (out StoreOutputs, found bool, err error) {
	c, err := cluster.Client()
	if err != nil {
		return prev, true, err
	}
	live := s.object(esv1.SecretStoreSpec{})
	if err := c.Get(ctx, client.ObjectKeyFromObject(live), live); err != nil {
		if apierrors.IsNotFound(err) || isNoMatch(err) {
			return prev, false, nil
		}
		return prev, true, err
	}
	out = prev
	out.SpecHash = hashJSON(*live.GetSpec())
	if prev.CredentialsSecret != nil {
		secret := &corev1.Secret{}
		switch err := c.Get(ctx, s.credentialsKey(), secret); {
		case apierrors.IsNotFound(err):
			out.CredentialsHash = hashCreds(nil)
		case err != nil:
			return prev, true, err
		default:
			out.CredentialsHash = hashCreds(secret.Data)
		}
	}
	// Re-read ESC sources: a rotated value is drift even though the cluster
	// still holds the old one. Without ESC sources spec does no I/O and
	// cannot fail.
	if _, _, sourcesHash, err := s.spec(ctx); err != nil {
		p.GetLogger(ctx).Warningf("refresh of %s %s could not read its ESC credential sources and kept their previous hash: %v",
			s.kind, s.describe(), err)
	} else {
		out.SourcesHash = sourcesHash
	}
	return out, true, nil
}

func (s storeInputs) delete(ctx context.Context, cluster *kube.Cluster) error {
	c, err := cluster.Client()
	if err != nil {
		return err
	}
	obj := s.object(esv1.SecretStoreSpec{})
	if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) && !isNoMatch(err) {
		return fmt.Errorf("deleting %s %s: %w", s.kind, s.describe(), err)
	}
	return s.deleteCredentials(ctx, c)
}

func hashJSON(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func hashCreds(creds map[string][]byte) string {
	if creds == nil {
		return ""
	}
	return sync.DataHash(creds)
}

func strPtr(s string) *string { return &s }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
