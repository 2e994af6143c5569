package reconcile

import (
	"context"
	"strings"
	"sync"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// storeTTL bounds how long a session trusts a store it read and the
// credentials it resolved for it. Service account tokens esosync requests
// live 10 minutes; a deploy longer than that resolves them again.
const storeTTL = 5 * time.Minute

// opener opens a backend client with credentials resolved earlier.
type opener func(ctx context.Context) (backend.Client, error)

// storeCache is what one provider session knows about the stores its
// ExternalSecrets read from: the store objects and their resolved
// credentials. Without it every ExternalSecret of a deploy costs a GET of
// its store and of each credentials Secret; with it a store costs one of
// each per session. Stores esosync writes are forgotten when written, so a
// program that changes a store and its ExternalSecrets in one `up` syncs
// them with the new store.
type storeCache struct {
	mu      sync.Mutex
	stores  map[string]*cached[esv1.GenericStore]
	openers map[string]*cached[opener]
}

// cached is one cache entry, filled once by whoever asked first while the
// others wait for it (a deploy asks for one store many times at once).
type cached[T any] struct {
	done  chan struct{}
	value T
	err   error
	at    time.Time
}

// lookup returns the fresh entry of key in m, or makes the caller fill a
// new one (fill reports true).
func lookup[T any](mu *sync.Mutex, m *map[string]*cached[T], key string) (entry *cached[T], fill bool) {
	mu.Lock()
	defer mu.Unlock()
	if *m == nil {
		*m = map[string]*cached[T]{}
	}
	if c, ok := (*m)[key]; ok {
		select {
		case <-c.done:
			if c.err == nil && time.Since(c.at) < storeTTL {
				return c, false
			}
		default:
			return c, false // being filled: wait for it
		}
	}
	c := &cached[T]{done: make(chan struct{})}
	(*m)[key] = c
	return c, true
}

// get returns key's value, computing it with load when it is not cached.
// Errors are returned to everyone waiting but not kept, so the next call
// tries again.
func get[T any](ctx context.Context, mu *sync.Mutex, m *map[string]*cached[T], key string, load func() (T, error)) (T, error) {
	c, fill := lookup(mu, m, key)
	if fill {
		c.value, c.err = load()
		c.at = time.Now()
		if c.err != nil {
			mu.Lock()
			if (*m)[key] == c {
				delete(*m, key)
			}
			mu.Unlock()
		}
		close(c.done)
		return c.value, c.err
	}
	select {
	case <-c.done:
		return c.value, c.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// store returns the store ref names for an ExternalSecret in namespace.
// The object is shared: callers copy it before changing it.
func (e *Engine) store(ctx context.Context, k kube.Clients, ref esv1.SecretStoreRef, namespace string) (esv1.GenericStore, error) {
	key := storeKey(ref.Kind, namespace, ref.Name)
	return get(ctx, &e.stores.mu, &e.stores.stores, key, func() (esv1.GenericStore, error) {
		return GetStore(ctx, k, ref, namespace)
	})
}

// openStore opens a backend client for store as seen from an ExternalSecret
// in namespace, resolving the store's credentials once per session.
func (e *Engine) openStore(ctx context.Context, k kube.Clients, store esv1.GenericStore, namespace string) (backend.Client, error) {
	key := storeKey(storeKind(store), store.GetNamespace(), store.GetName()) + "@" + namespace + "@" + store.GetResourceVersion()
	open, err := get(ctx, &e.stores.mu, &e.stores.openers, key, func() (opener, error) {
		return resolveStore(ctx, k, e.session, store, namespace)
	})
	if err != nil {
		return nil, err
	}
	return open(ctx)
}

// forgetStore drops what the session knows about a store, after esosync
// wrote it or asked ESO to validate it again.
func (e *Engine) forgetStore(kind, namespace, name string) {
	if e == nil {
		return
	}
	id := storeKey(kind, namespace, name)
	e.stores.mu.Lock()
	defer e.stores.mu.Unlock()
	delete(e.stores.stores, id)
	for key := range e.stores.openers {
		if strings.HasPrefix(key, id+"@") {
			delete(e.stores.openers, key)
		}
	}
}

// storeKey names a store in the cache: its kind ("" is SecretStore), its
// namespace (none for a ClusterSecretStore) and its name.
func storeKey(kind, namespace, name string) string {
	if kind == esv1.ClusterSecretStoreKind {
		return StoreID(kind, "", name)
	}
	return StoreID(esv1.SecretStoreKind, namespace, name)
}
