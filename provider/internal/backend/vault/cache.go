package vault

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// readCache holds reads for one provider session, which is one pulumi
// operation: N ExternalSecrets over M distinct Vault paths then cost M
// reads, and concurrent reads of one path are a single request. The cache
// is partitioned by scope (server, namespace and who is asking), so a store
// whose credentials may not read a path never receives another store's
// cached value. Values live only in memory.
type readCache struct {
	sync.Mutex
	entries map[string]readResult
	group   singleflight.Group
}

func newReadCache() *readCache { return &readCache{entries: map[string]readResult{}} }

type readResult struct {
	data map[string]any
	meta backend.Meta
	err  error // only not-found errors are cached
}

// cachedRead returns readSecret's result for path at version, reading Vault
// at most once per scope, path and version. Each caller gets its own
// top-level map, so one sync's changes cannot reach another's.
func (c *Client) cachedRead(ctx context.Context, path, version string) (map[string]any, backend.Meta, error) {
	if c.scope == "" {
		return c.readSecret(ctx, path, version)
	}
	reads := c.reads
	key := c.scope + "\x00" + path + "\x00" + version
	reads.Lock()
	r, ok := reads.entries[key]
	reads.Unlock()
	if ok {
		return maps.Clone(r.data), r.meta, r.err
	}
	v, err, _ := reads.group.Do(key, func() (any, error) {
		// A flight for key may have finished between the lookup above and
		// this one starting (singleflight forgets a key once its flight
		// returns): its result is in entries, and reading again would cost
		// a second Vault read of the path.
		reads.Lock()
		r, ok := reads.entries[key]
		reads.Unlock()
		if ok {
			return r, nil
		}
		data, meta, err := c.readSecret(ctx, path, version)
		if err != nil && !isNotFound(err) {
			// Transient and permission errors are not remembered: the next
			// resource retries rather than inheriting a failure.
			return nil, err
		}
		r = readResult{data: data, meta: meta, err: err}
		reads.Lock()
		reads.entries[key] = r
		reads.Unlock()
		return r, nil
	})
	if err != nil {
		return nil, backend.Meta{}, err
	}
	r = v.(readResult)
	return maps.Clone(r.data), r.meta, r.err
}

// scopeOf names who reads: the server, namespace and auth identity. Secret
// credentials enter only through a hash.
func scopeOf(cfg Config) string {
	h := sha256.New()
	w := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
	}
	w(cfg.Server, cfg.Namespace, cfg.Path, cfg.Version)
	a := cfg.Auth
	switch {
	case a.Token != "":
		w("token", a.Token)
	case a.AppRole != nil:
		w("approle", a.AppRole.Path, strings.TrimSpace(a.AppRole.RoleID), a.AppRole.SecretID)
	case a.UserPass != nil:
		w("userpass", a.UserPass.Path, strings.TrimSpace(a.UserPass.Username), a.UserPass.Password)
	case a.Kubernetes != nil:
		// A fresh service account token is requested for every client, so
		// the token itself cannot be the identity: its subject (the service
		// account) and the role are.
		w("kubernetes", a.Kubernetes.MountPath, a.Kubernetes.Role, jwtSubject(a.Kubernetes.JWT))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// jwtSubject returns the unverified sub claim of a JWT, or the whole token
// when it cannot be parsed (then nothing is shared, which is safe).
func jwtSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return token
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return token
	}
	var claims struct {
		Sub string `json:"sub"`
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Sub == "" {
		return token
	}
	return claims.Iss + "\x00" + claims.Sub
}
