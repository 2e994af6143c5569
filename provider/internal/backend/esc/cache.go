package esc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// openTimeout bounds one shared open. The open runs detached from the
// caller that started it, so that one resource's cancellation does not
// fail every other resource waiting on the same environment.
const openTimeout = 2 * time.Minute

// openCache holds the environments opened in one provider session, which
// is one pulumi operation: an environment is opened once however many
// ExternalSecrets, keys and credential sources read it, and concurrent
// first reads share that one open. The cache is partitioned by scope (API,
// environment and token), so a store whose token may not open an
// environment never receives another store's tree. Trees live only in
// memory; errors are never cached, so the next read retries.
type openCache struct {
	sync.Mutex
	trees map[string]map[string]any
	group singleflight.Group
}

func newOpenCache() *openCache { return &openCache{trees: map[string]map[string]any{}} }

// scopeOf keys the cache. The token enters only through a hash.
func scopeOf(cfg Config) string {
	tok := sha256.Sum256([]byte(cfg.AccessToken))
	h := sha256.New()
	for _, p := range []string{cfg.APIURL, cfg.Organization, cfg.Project, cfg.Environment, hex.EncodeToString(tok[:])} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tree returns the environment's evaluated properties as plain values
// (map[string]any, []any, string, float64, bool, nil), opening the
// environment at most once per scope. Callers must not modify it.
func (c *Client) tree(ctx context.Context) (map[string]any, error) {
	opened := c.opened
	opened.Lock()
	t, ok := opened.trees[c.scope]
	opened.Unlock()
	if ok {
		return t, nil
	}
	ch := opened.group.DoChan(c.scope, func() (any, error) {
		// A flight that started after another one finished must not
		// open again: the earlier one has filled the cache.
		opened.Lock()
		t, ok := opened.trees[c.scope]
		opened.Unlock()
		if ok {
			return t, nil
		}
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), openTimeout)
		defer cancel()
		t, err := c.open(octx)
		if err != nil {
			return nil, err
		}
		opened.Lock()
		opened.trees[c.scope] = t
		opened.Unlock()
		return t, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(map[string]any), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("esc: opening environment %q: %w", c.envName(), ctx.Err())
	}
}

// open is ESO's OpenEnvironment followed by one ReadOpenEnvironment of the
// whole environment (what the SDK's OpenAndReadEnvironment does), through
// the raw API so that each step is counted and named in errors, and so
// that a value without trace.def.environment cannot panic the SDK's
// unwrapping (its getRange asserts the field). The SDK sends both
// requests; their bodies are decoded here (wire.go), because the SDK's
// strict models fail on any change to the API's responses.
func (c *Client) open(ctx context.Context) (map[string]any, error) {
	actx := c.authContext(ctx)
	org, project, env := c.cfg.Organization, c.cfg.Project, c.cfg.Environment
	c.cfg.Session.CountCall("esc.open")
	_, resp, err := c.api.EscAPI.OpenEnvironment(actx, org, project, env).Execute()
	body, err := c.responseBody("opening", resp, err)
	if err != nil {
		return nil, err
	}
	id, err := decodeOpen(body)
	if err != nil {
		return nil, c.malformed("opening", body, err)
	}
	if id == "" {
		return nil, fmt.Errorf("esc: opening environment %q: the API returned no session id", c.envName())
	}
	c.cfg.Session.CountCall("esc.read")
	_, resp, err = c.api.EscAPI.ReadOpenEnvironment(actx, org, project, env, id).Execute()
	body, err = c.responseBody("reading", resp, err)
	if err != nil {
		return nil, err
	}
	tree, err := decodeEnvironment(body)
	if err != nil {
		return nil, c.malformed("reading", body, err)
	}
	return tree, nil
}
