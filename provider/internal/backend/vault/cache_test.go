package vault_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/vault"
)

// TestCacheReadsEachPathOnce is the batching promise for Vault: 200
// ExternalSecrets over 40 distinct paths cost 40 reads, however many
// clients (one per ExternalSecret) ask and however concurrently.
func TestCacheReadsEachPathOnce(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	token := b.token(t, "esosync-read-secret")
	const paths, reads = 40, 200
	for i := range paths {
		b.putV2(t, fmt.Sprintf("cache/app-%02d", i), map[string]any{"password": fmt.Sprintf("cache-value-%02d", i)})
	}
	session := backend.NewSession()
	cfg := vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: token}, Session: session}
	var wg sync.WaitGroup
	errs := make(chan error, reads)
	for i := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := mustOpen(t, cfg)
			key := fmt.Sprintf("cache/app-%02d", i%paths)
			v, _, err := c.GetSecret(context.Background(), backend.Ref{Key: key, Property: "password"})
			if err == nil && string(v) != fmt.Sprintf("cache-value-%02d", i%paths) {
				err = fmt.Errorf("%s: got another path's value", key)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if leaks.record(err) != nil {
			t.Fatal(err)
		}
	}
	n := session.CallCounts()["vault.read"]
	line := fmt.Sprintf("vault calls: read=%d (%d reads, %d paths)", n, reads, paths)
	t.Log(line)
	fmt.Println(line)
	if n != paths {
		t.Errorf("vault.read = %d, want %d", n, paths)
	}

	// Another identity does not see the cached values: a token without
	// access to secret/ is refused by Vault, not served from the cache.
	other := b.token(t, "esosync-only-kv1")
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: other}, Session: session})
	if _, _, err := c.GetSecret(context.Background(), backend.Ref{Key: "cache/app-00"}); leaks.record(err) == nil {
		t.Error("a token without access read a cached value")
	}
}
