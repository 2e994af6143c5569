package reconcile

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
)

// TestCacheGet: concurrent askers of one key share one load; errors are
// not kept; an entry older than storeTTL is loaded again.
func TestCacheGet(t *testing.T) {
	var mu sync.Mutex
	var m map[string]*cached[string]
	var loads atomic.Int32
	release := make(chan struct{})
	load := func() (string, error) {
		loads.Add(1)
		<-release
		return "store", nil
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := get(context.Background(), &mu, &m, "k", load); v != "store" || err != nil {
				t.Errorf("get = %q, %v", v, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("20 concurrent gets loaded %d times, want 1", n)
	}

	fail := func() (string, error) { loads.Add(1); return "", errors.New("refused") }
	for range 2 {
		if _, err := get(context.Background(), &mu, &m, "bad", fail); err == nil {
			t.Error("the error was not returned")
		}
	}
	if n := loads.Load(); n != 3 {
		t.Errorf("a failed load was cached: %d loads, want 3", n)
	}

	m["k"].at = time.Now().Add(-storeTTL - time.Second)
	if _, err := get(context.Background(), &mu, &m, "k", func() (string, error) { loads.Add(1); return "new", nil }); err != nil {
		t.Fatal(err)
	}
	if n := loads.Load(); n != 4 {
		t.Errorf("a stale entry was not loaded again: %d loads, want 4", n)
	}
}

// TestForgetStore: writing a store drops it and its credentials, for
// every namespace they were resolved for, and nothing else.
func TestForgetStore(t *testing.T) {
	e := &Engine{}
	done := make(chan struct{})
	close(done)
	e.stores.stores = map[string]*cached[esv1.GenericStore]{}
	e.stores.openers = map[string]*cached[opener]{}
	for _, key := range []string{storeKey("ClusterSecretStore", "", "vault"), storeKey("SecretStore", "apps", "vault")} {
		e.stores.stores[key] = &cached[esv1.GenericStore]{done: done}
		e.stores.openers[key+"@apps@1"] = &cached[opener]{done: done}
		e.stores.openers[key+"@web@1"] = &cached[opener]{done: done}
	}
	e.forgetStore("ClusterSecretStore", "ignored", "vault")
	if len(e.stores.stores) != 1 || len(e.stores.openers) != 2 {
		t.Errorf("after forgetting the ClusterSecretStore: %d stores, %d openers; want 1 and 2", len(e.stores.stores), len(e.stores.openers))
	}
	if _, ok := e.stores.stores[storeKey("SecretStore", "apps", "vault")]; !ok {
		t.Error("the SecretStore of the same name was forgotten too")
	}
}
