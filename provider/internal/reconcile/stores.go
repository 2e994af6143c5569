package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	esmeta "github.com/external-secrets/external-secrets/apis/meta/v1"
	"github.com/external-secrets/external-secrets/pkg/esutils/resolvers"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/aws"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/esc"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/vault"
	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// GetStore reads the store an ExternalSecret in namespace refers to.
func GetStore(ctx context.Context, k kube.Clients, ref esv1.SecretStoreRef, namespace string) (esv1.GenericStore, error) {
	var store esv1.GenericStore
	key := client.ObjectKey{Name: ref.Name}
	if ref.Kind == esv1.ClusterSecretStoreKind {
		store = &esv1.ClusterSecretStore{}
	} else {
		store = &esv1.SecretStore{}
		key.Namespace = namespace
	}
	if err := k.Client.Get(ctx, key, store); err != nil {
		return nil, fmt.Errorf("could not get %s %q: %w", storeKind(store), ref.Name, err)
	}
	return store, nil
}

// OpenStore builds a backend client for store, resolving its credentials
// from the cluster the way ESO does for an ExternalSecret in namespace (for
// a SecretStore, its own namespace). Reads share session's caches. It logs
// in; callers Close the client.
func OpenStore(ctx context.Context, k kube.Clients, session *backend.Session, store esv1.GenericStore, namespace string) (backend.Client, error) {
	open, err := resolveStore(ctx, k, session, store, namespace)
	if err != nil {
		return nil, err
	}
	return open(ctx)
}

// resolveStore reads store's credentials from the cluster now and returns
// how to open a backend client with them, so that a session resolves them
// once and opens many clients.
func resolveStore(ctx context.Context, k kube.Clients, session *backend.Session, store esv1.GenericStore, namespace string) (opener, error) {
	spec := store.GetSpec()
	if spec == nil || spec.Provider == nil {
		return nil, errors.New("store has no provider")
	}
	if ss, ok := store.(*esv1.SecretStore); ok {
		namespace = ss.Namespace
	}
	switch {
	case spec.Provider.Vault != nil:
		cfg, err := vaultConfig(ctx, k, storeKind(store), namespace, spec.Provider.Vault)
		if err != nil {
			return nil, err
		}
		cfg.Session = session
		return func(ctx context.Context) (backend.Client, error) {
			c, err := vault.New(ctx, cfg)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return c, nil
		}, nil
	case spec.Provider.AWS != nil:
		cfg, err := awsConfig(ctx, k, storeKind(store), namespace, spec.Provider.AWS)
		if err != nil {
			return nil, err
		}
		cfg.DemandID = StoreID(storeKind(store), store.GetNamespace(), store.GetName())
		cfg.Session = session
		return func(ctx context.Context) (backend.Client, error) { return aws.New(ctx, cfg) }, nil
	case spec.Provider.Pulumi != nil:
		cfg, err := escConfig(ctx, k, storeKind(store), namespace, spec.Provider.Pulumi)
		if err != nil {
			return nil, err
		}
		cfg.Session = session
		return func(ctx context.Context) (backend.Client, error) { return esc.New(ctx, cfg) }, nil
	default:
		return nil, errors.New("store backend is not supported by esosync yet (supported: vault, aws, pulumi)")
	}
}

// Custom endpoints, read from the same environment variables ESO's AWS
// provider reads, so one setting points both ESO and esosync at a local
// endpoint (LocalStack, moto, a VPC endpoint).
const (
	envSecretsManagerEndpoint = "AWS_SECRETSMANAGER_ENDPOINT"
	envSTSEndpoint            = "AWS_STS_ENDPOINT"
	// irsaRoleAnnotation is where ESO's jwt auth finds the role to assume.
	irsaRoleAnnotation = "eks.amazonaws.com/role-arn"
)

// awsConfig turns ESO's AWS provider spec into the backend's Config.
func awsConfig(ctx context.Context, k kube.Clients, kind, namespace string, a *esv1.AWSProvider) (aws.Config, error) {
	if a.Service != esv1.AWSServiceSecretsManager {
		return aws.Config{}, fmt.Errorf("aws service %q is not supported by esosync yet (supported: SecretsManager)", a.Service)
	}
	cfg := aws.Config{
		Region:      a.Region,
		Endpoint:    os.Getenv(envSecretsManagerEndpoint),
		STSEndpoint: os.Getenv(envSTSEndpoint),
		Prefix:      a.Prefix,
		Role:        a.Role,
		ExternalID:  a.ExternalID,
	}
	secret := func(what string, ref esmeta.SecretKeySelector) (string, error) {
		return secretKey(ctx, k, kind, namespace, what, ref)
	}
	switch {
	case a.Auth.SecretRef != nil:
		r := a.Auth.SecretRef
		st := &aws.StaticCredentials{}
		var err error
		if st.AccessKeyID, err = secret("auth.secretRef.accessKeyIDSecretRef", r.AccessKeyID); err != nil {
			return cfg, err
		}
		if st.SecretAccessKey, err = secret("auth.secretRef.secretAccessKeySecretRef", r.SecretAccessKey); err != nil {
			return cfg, err
		}
		if r.SessionToken != nil {
			if st.SessionToken, err = secret("auth.secretRef.sessionTokenSecretRef", *r.SessionToken); err != nil {
				return cfg, err
			}
		}
		cfg.Static = st
	case a.Auth.JWTAuth != nil && a.Auth.JWTAuth.ServiceAccountRef != nil:
		ref := *a.Auth.JWTAuth.ServiceAccountRef
		ns := namespace
		if kind == esv1.ClusterSecretStoreKind && ref.Namespace != nil {
			ns = *ref.Namespace
		}
		sa, err := k.Clientset.CoreV1().ServiceAccounts(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return cfg, fmt.Errorf("auth.jwt: reading service account %s/%s: %w", ns, ref.Name, err)
		}
		role := sa.Annotations[irsaRoleAnnotation]
		if role == "" {
			return cfg, fmt.Errorf("auth.jwt: service account %s/%s has no %s annotation", ns, ref.Name, irsaRoleAnnotation)
		}
		if len(ref.Audiences) == 0 {
			ref.Audiences = []string{"sts.amazonaws.com"}
		}
		token, err := serviceAccountToken(ctx, k, kind, namespace, ref)
		if err != nil {
			return cfg, fmt.Errorf("auth.jwt: %w", err)
		}
		cfg.WebIdentity = &aws.WebIdentity{RoleARN: role, Token: token}
	}
	return cfg, nil
}

// escConfig turns ESO's pulumi provider spec into the ESC backend's Config.
func escConfig(ctx context.Context, k kube.Clients, kind, namespace string, p *esv1.PulumiProvider) (esc.Config, error) {
	cfg := esc.Config{APIURL: p.APIURL, Organization: p.Organization, Project: p.Project, Environment: p.Environment}
	if p.AccessToken == nil || p.AccessToken.SecretRef == nil {
		return cfg, errors.New("pulumi store has no accessToken.secretRef")
	}
	token, err := secretKey(ctx, k, kind, namespace, "accessToken.secretRef", *p.AccessToken.SecretRef)
	cfg.AccessToken = token
	return cfg, err
}

// secretKey reads the Secret key a store's spec points at, resolved the way
// ESO resolves it for a store of kind used from namespace. Errors name the
// spec field (what), never the value.
func secretKey(ctx context.Context, k kube.Clients, kind, namespace, what string, ref esmeta.SecretKeySelector) (string, error) {
	val, err := resolvers.SecretKeyRef(ctx, k.Client, kind, namespace, &ref)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", what, err)
	}
	return val, nil
}

// StoreID names a store for Session.NoteDemand: kind, namespace (empty for
// a ClusterSecretStore) and name.
func StoreID(kind, namespace, name string) string {
	return kind + "/" + namespace + "/" + name
}

func storeKind(store esv1.GenericStore) string {
	if _, ok := store.(*esv1.ClusterSecretStore); ok {
		return esv1.ClusterSecretStoreKind
	}
	return esv1.SecretStoreKind
}

// vaultConfig turns ESO's Vault provider spec into the backend's Config.
func vaultConfig(ctx context.Context, k kube.Clients, kind, namespace string, v *esv1.VaultProvider) (vault.Config, error) {
	cfg := vault.Config{
		Server:    v.Server,
		Path:      ptr.Deref(v.Path, ""),
		Version:   string(v.Version),
		Namespace: ptr.Deref(v.Namespace, ""),
		CABundle:  v.CABundle,
	}
	if v.Auth == nil {
		return cfg, errors.New("vault store has no auth")
	}
	secret := func(what string, ref esmeta.SecretKeySelector) (string, error) {
		return secretKey(ctx, k, kind, namespace, what, ref)
	}
	a := v.Auth
	var err error
	switch {
	case a.TokenSecretRef != nil:
		cfg.Auth.Token, err = secret("auth.tokenSecretRef", *a.TokenSecretRef)
	case a.AppRole != nil:
		ar := &vault.AppRole{Path: a.AppRole.Path, RoleID: a.AppRole.RoleID}
		if ar.RoleID == "" && a.AppRole.RoleRef != nil {
			if ar.RoleID, err = secret("auth.appRole.roleRef", *a.AppRole.RoleRef); err != nil {
				return cfg, err
			}
		}
		ar.SecretID, err = secret("auth.appRole.secretRef", a.AppRole.SecretRef)
		cfg.Auth.AppRole = ar
	case a.UserPass != nil:
		up := &vault.UserPass{Path: a.UserPass.Path, Username: a.UserPass.Username}
		up.Password, err = secret("auth.userPass.secretRef", a.UserPass.SecretRef)
		cfg.Auth.UserPass = up
	case a.Kubernetes != nil:
		ka := &vault.Kubernetes{MountPath: a.Kubernetes.Path, Role: a.Kubernetes.Role}
		switch {
		case a.Kubernetes.ServiceAccountRef != nil:
			ka.JWT, err = serviceAccountToken(ctx, k, kind, namespace, *a.Kubernetes.ServiceAccountRef)
		case a.Kubernetes.SecretRef != nil:
			ref := *a.Kubernetes.SecretRef
			if ref.Key == "" {
				ref.Key = "token"
			}
			ka.JWT, err = secret("auth.kubernetes.secretRef", ref)
		default:
			err = ErrInClusterCredentials
		}
		cfg.Auth.Kubernetes = ka
	default:
		err = errors.New("vault store auth method is not supported by esosync yet (supported: token, appRole, kubernetes, userPass)")
	}
	return cfg, err
}

// ErrInClusterCredentials is returned for a store whose credentials exist
// only inside ESO's pod: Vault Kubernetes auth without serviceAccountRef or
// secretRef, where ESO presents its own pod's ServiceAccount token. esosync
// cannot log in with it from where Pulumi runs; ESO can.
var ErrInClusterCredentials = errors.New("auth.kubernetes: without serviceAccountRef ESO logs in with its own pod's " +
	"ServiceAccount token, which esosync cannot present from outside the cluster; set serviceAccountRef for `sync: provider`")

// serviceAccountToken asks the API server for a short-lived token of the
// service account, with ESO's audiences and lifetime.
func serviceAccountToken(ctx context.Context, k kube.Clients, kind, namespace string, ref esmeta.ServiceAccountSelector) (string, error) {
	if kind == esv1.ClusterSecretStoreKind && ref.Namespace != nil {
		namespace = *ref.Namespace
	}
	expiration := int64(600)
	req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{Audiences: ref.Audiences, ExpirationSeconds: &expiration}}
	resp, err := k.Clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, ref.Name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("cannot request Kubernetes service account token for service account %q: %w", ref.Name, err)
	}
	return resp.Status.Token, nil
}
