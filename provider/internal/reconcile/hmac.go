package reconcile

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"slices"
	"sync"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// A hash of secret content kept in Pulumi state must not let anyone who
// reads the state recover a value by hashing guesses: a 4-digit PIN is
// 10,000 sha256 calls away. So every such hash (dataHash, a store's
// credentialsHash and credentialSourcesHash) is an HMAC whose key lives in
// the cluster, in a Secret esosync creates in the namespace of the data it
// hashes (as Vault Secrets Operator's hmacSecretData does). Whoever can
// read that key can already read the Secrets beside it, so the key adds no
// exposure; whoever holds only the state learns nothing but equality.

// HMACKeySecret is the name of the Secret holding a namespace's HMAC key.
const HMACKeySecret = "esosync-hmac-key"

// hmacKeyField is the key of the Secret's data that holds the key bytes.
const hmacKeyField = "key"

// hmacKeyBytes is the key length: sha256's block-sized security level.
const hmacKeyBytes = 32

// HashPrefix marks a keyed hash, so a state written with an older, plain
// sha256 is told apart (it changes once, at the first refresh or update).
const HashPrefix = "hmac-sha256:"

// Hasher computes keyed hashes of secret content for one namespace.
type Hasher struct{ key []byte }

// Sum is the keyed hash of data: keys in order, each key and value
// length-prefixed so that no two maps collide. Empty data hashes to "".
func (h Hasher) Sum(data map[string][]byte) string {
	if data == nil {
		return ""
	}
	mac := hmac.New(sha256.New, h.key)
	writeData(mac, data)
	return HashPrefix + hex.EncodeToString(mac.Sum(nil))
}

// writeData feeds data to w in a canonical, unambiguous order.
func writeData(w hash.Hash, data map[string][]byte) {
	for _, k := range slices.Sorted(maps.Keys(data)) {
		fmt.Fprintf(w, "%d:%s%d:", len(k), k, len(data[k]))
		w.Write(data[k])
	}
}

// hmacKeys caches the keys read or created in one provider session.
type hmacKeys struct {
	mu   sync.Mutex
	keys map[string][]byte
}

// hmacKeys is the session's key cache.
func (e *Engine) hmacKeys() *hmacKeys {
	return backend.Slot(e.session, "reconcile.hmacKeys", func() *hmacKeys { return &hmacKeys{keys: map[string][]byte{}} })
}

// hasher returns the Hasher of namespace, reading its key Secret or
// creating it on first use. Keys are cached for the session.
func (e *Engine) hasher(ctx context.Context, c client.Client, namespace string) (Hasher, error) {
	cache := e.hmacKeys()
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if key, ok := cache.keys[namespace]; ok {
		return Hasher{key: key}, nil
	}
	key, err := loadOrCreateKey(ctx, c, namespace)
	if err != nil {
		return Hasher{}, fmt.Errorf("HMAC key Secret %s/%s (keys the hashes kept in state): %w", namespace, HMACKeySecret, err)
	}
	cache.keys[namespace] = key
	return Hasher{key: key}, nil
}

// loadOrCreateKey reads the namespace's key, creating it if it does not
// exist. Two providers racing to create it agree on the winner's key.
func loadOrCreateKey(ctx context.Context, c client.Client, namespace string) ([]byte, error) {
	ref := client.ObjectKey{Namespace: namespace, Name: HMACKeySecret}
	for range 2 {
		secret := &corev1.Secret{}
		err := c.Get(ctx, ref, secret)
		if err == nil {
			key := secret.Data[hmacKeyField]
			if len(key) < hmacKeyBytes {
				return nil, fmt.Errorf("its %q holds %d bytes, want at least %d; delete the Secret to have esosync create a new key "+
					"(every dataHash and credentialsHash then changes once)", hmacKeyField, len(key), hmacKeyBytes)
			}
			return key, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		key := make([]byte, hmacKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: HMACKeySecret, Namespace: namespace,
				Labels: map[string]string{kube.ManagedByLabel: kube.ManagedByValue}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{hmacKeyField: key},
		}
		err = c.Create(ctx, secret)
		if err == nil {
			return key, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("created and deleted concurrently")
}

// sameData reports whether two Secrets' data are equal, byte for byte.
func sameData(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, bytes.Equal)
}

// releaseScan bounds the ExternalSecrets releaseKey lists: enough to see
// past those still finishing their deletion, few enough that destroying a
// thousand does not list a thousand each time.
const releaseScan = 50

// releaseKey deletes the namespace's HMAC key once nothing of esosync's is
// left there to hash (no ExternalSecret it manages, no Secret it manages
// but the key), so `pulumi destroy` leaves the namespace as it found it.
// A later deploy creates a new key; the hashes in state change once.
func (e *Engine) releaseKey(ctx context.Context, c client.Client, namespace string) error {
	managed := client.MatchingLabels{kube.ManagedByLabel: kube.ManagedByValue}
	// Metadata only: deletion timestamps are all this needs.
	ess := &metav1.PartialObjectMetadataList{}
	ess.SetGroupVersionKind(esv1.SchemeGroupVersion.WithKind("ExternalSecretList"))
	if err := c.List(ctx, ess, client.InNamespace(namespace), managed, client.Limit(releaseScan)); err != nil && !kube.IsNoMatch(err) {
		return err
	}
	if len(ess.Items) == releaseScan {
		return nil // more may follow; the last delete releases the key
	}
	for _, es := range ess.Items {
		if es.DeletionTimestamp == nil { // one being deleted waits only for ESO's finalizer
			return nil
		}
	}
	secrets := &corev1.SecretList{}
	if err := c.List(ctx, secrets, client.InNamespace(namespace), managed, client.Limit(2)); err != nil {
		return err
	}
	for _, s := range secrets.Items {
		if s.Name != HMACKeySecret {
			return nil
		}
	}
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: HMACKeySecret, Namespace: namespace}}
	if err := c.Delete(ctx, key); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	cache := e.hmacKeys()
	cache.mu.Lock()
	delete(cache.keys, namespace)
	cache.mu.Unlock()
	return nil
}
