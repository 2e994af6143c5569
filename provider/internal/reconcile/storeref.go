package reconcile

import (
	"context"
	"fmt"
	"sync"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// A store reference of the wrong kind (a ClusterSecretStore named with
// kind SecretStore) passes ESO's admission and fails only when ESO syncs,
// with "could not get SecretStore". esosync checks the reference at Check,
// so preview reports it, with the field to fix. A store that does not
// exist yet may be one the same program creates: stores declare
// themselves to the engine at their own Check. The Pulumi engine checks a
// resource when the program registers it, and a program registers an
// ExternalSecret that uses a store's `ref` output, or depends on it, only
// after the store; one with neither would race the store at `up` as well,
// so the message says how to wire it.

// declaredStores are the stores this provider's program declares.
type declaredStores struct {
	mu    sync.Mutex
	names map[string]bool // StoreID
}

// DeclareStore records that the program creates the store kind
// namespace/name (namespace empty for a ClusterSecretStore).
func (e *Engine) DeclareStore(kind, namespace, name string) {
	if e == nil {
		return // not configured: Check without a provider (tests)
	}
	e.declared.mu.Lock()
	defer e.declared.mu.Unlock()
	if e.declared.names == nil {
		e.declared.names = map[string]bool{}
	}
	e.declared.names[StoreID(kind, namespace, name)] = true
}

func (e *Engine) isDeclared(kind, namespace, name string) bool {
	e.declared.mu.Lock()
	defer e.declared.mu.Unlock()
	return e.declared.names[StoreID(kind, namespace, name)]
}

// StoreRefProblem is what is wrong with an ExternalSecret's store
// reference.
type StoreRefProblem struct {
	// Field is the input to fix: store.kind or store.name.
	Field string
	// Message says what was found and what to do.
	Message string
}

// storeLookupTimeout bounds the lookups, so a preview against a cluster
// that does not answer is not held up by this check.
const storeLookupTimeout = 5 * time.Second

// CheckStoreRef looks the store up in the cluster as an ExternalSecret in
// namespace would find it. It returns nil when the store exists, when the
// program declares it, or when nothing can be concluded (the cluster
// cannot be reached, ESO's CRDs are not installed yet).
func (e *Engine) CheckStoreRef(ctx context.Context, kind, namespace, name string) *StoreRefProblem {
	if e == nil {
		return nil
	}
	storeNS := namespace
	if kind == esv1.ClusterSecretStoreKind {
		storeNS = ""
	}
	if e.isDeclared(kind, storeNS, name) {
		return nil
	}
	other, otherNS := esv1.ClusterSecretStoreKind, ""
	if kind == esv1.ClusterSecretStoreKind {
		other, otherNS = esv1.SecretStoreKind, namespace
	}
	wrongKind := &StoreRefProblem{Field: "store.kind", Message: fmt.Sprintf("no %s named %q exists%s, but a %s of that name does; "+
		"set store.kind to %q", kind, name, inNamespace(kind, namespace), other, other)}
	if e.isDeclared(other, otherNS, name) {
		return wrongKind
	}
	ctx, cancel := context.WithTimeout(ctx, storeLookupTimeout)
	defer cancel()
	exists, err := e.storeExists(ctx, kind, namespace, name)
	if err != nil || exists {
		if exists { // remembered, so a thousand ExternalSecrets cost one lookup
			e.DeclareStore(kind, storeNS, name)
		}
		return nil
	}
	if found, err := e.storeExists(ctx, other, namespace, name); err == nil && found {
		return wrongKind
	}
	return &StoreRefProblem{Field: "store.name", Message: fmt.Sprintf("no %s named %q exists%s and the program declares none before "+
		"this ExternalSecret; fix the name, or, if the program creates the store (esosync:index:%s), pass its `ref` output as `store` "+
		"(or add dependsOn) so that the ExternalSecret waits for it", kind, name, inNamespace(kind, namespace), kind)}
}

// storeExists reports whether the store exists. An error means the
// question could not be answered.
func (e *Engine) storeExists(ctx context.Context, kind, namespace, name string) (bool, error) {
	k, err := e.clients()
	if err != nil {
		return false, err
	}
	_, err = GetStore(ctx, k, esv1.SecretStoreRef{Kind: kind, Name: name}, namespace)
	switch {
	case err == nil:
		return true, nil
	case kube.IsNoMatch(err):
		return false, err // ESO's CRDs are not installed (yet)
	case kube.IsGone(err):
		return false, nil
	}
	return false, err
}

func inNamespace(kind, namespace string) string {
	if kind == esv1.ClusterSecretStoreKind {
		return ""
	}
	return fmt.Sprintf(" in namespace %q", namespace)
}
