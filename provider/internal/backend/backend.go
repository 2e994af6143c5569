// Package backend is the one small interface every secret backend (Vault,
// AWS Secrets Manager, Pulumi ESC) implements. It is modelled on External
// Secrets Operator's SecretsClient, so that the sync engine can apply ESO's
// semantics (decoding, conversion, templates) on top of any backend.
//
// Backends never import Kubernetes packages: whatever a backend needs from
// the cluster (a token, a service account JWT) is resolved by the caller and
// handed over in the backend's Config.
package backend

import (
	"context"
	"errors"
)

// ErrNotFound is returned (wrapped) when the remote secret does not exist.
// It is ESO's NoSecretError: the sync engine treats it as "no data" where
// ESO does. A missing property is a plain error, as in ESO.
var ErrNotFound = errors.New("secret not found")

// UserAgent is how esosync names itself to backends, so their audit logs
// tell its requests from ESO's.
const UserAgent = "pulumi-resource-esosync"

// AppID is esosync's AWS SDK application id (User-Agent `app/esosync`).
const AppID = "esosync"

// Ref names one remote secret, as ESO's ExternalSecretDataRemoteRef does.
type Ref struct {
	// Key is the backend's name for the secret, e.g. a Vault path below the mount.
	Key string
	// Property selects one value inside a structured secret; empty means the whole secret.
	Property string
	// Version pins a backend version; empty means the current one.
	Version string
}

// Meta describes the remote secret a read came from. It never holds a value.
type Meta struct {
	// Version is the backend's version id of what was read (Vault KV v2
	// version, AWS VersionId, ESC revision); empty when the backend has none.
	Version string
}

// Find selects remote secrets the way ESO's dataFrom.find does. Empty
// fields do not filter.
type Find struct {
	// Path limits the search to secrets below this path.
	Path string
	// NameRegexp keeps secrets whose name (key) matches this regular expression.
	NameRegexp string
	// Tags keeps secrets carrying all these tags (Vault: custom metadata).
	Tags map[string]string
}

// Client reads secrets from one configured store.
type Client interface {
	// GetSecret returns one value: the property when ref.Property is set,
	// otherwise the whole remote secret (JSON-encoded when it is structured).
	GetSecret(ctx context.Context, ref Ref) ([]byte, Meta, error)
	// GetSecretMap returns the key/value pairs of the remote secret, or of
	// the object at ref.Property. Nested values are JSON-encoded.
	GetSecretMap(ctx context.Context, ref Ref) (map[string][]byte, Meta, error)
	// GetAllSecrets returns every remote secret Find selects, keyed by its
	// name as ESO keys it, each value the whole secret (JSON-encoded when
	// structured). A search that matches nothing returns an empty map.
	GetAllSecrets(ctx context.Context, find Find) (map[string][]byte, error)
	// Validate checks that the credentials work and grant access to the
	// store's scope. The error carries the backend's own reason.
	Validate(ctx context.Context) error
	// Close releases what the client holds (for example revokes a login token).
	Close(ctx context.Context) error
}
