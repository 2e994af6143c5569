package backend

import (
	"maps"
	"sync"
)

// Backend requests are counted per kind, for example "vault.read",
// "aws.BatchGetSecretValue" or "esc.open", so tests can prove what a deploy
// cost (N ExternalSecrets over M remote keys must cost M reads, not N) and
// the provider can log the figures at debug level. The counters live for
// the provider process, which is one pulumi operation.
var calls = struct {
	sync.Mutex
	n map[string]int64
}{n: map[string]int64{}}

// CountCall records one request of kind to a backend.
func CountCall(kind string) {
	calls.Lock()
	calls.n[kind]++
	calls.Unlock()
}

// CallCounts returns a snapshot of the counters.
func CallCounts() map[string]int64 {
	calls.Lock()
	defer calls.Unlock()
	return maps.Clone(calls.n)
}

// ResetCallCounts zeroes every counter.
func ResetCallCounts() {
	calls.Lock()
	calls.n = map[string]int64{}
	calls.Unlock()
}

// Backends cache reads for the life of the process (one pulumi operation).
// They register a reset here so that tests simulating several operations in
// one process can start each from a clean slate.
var caches struct {
	sync.Mutex
	resets []func()
}

// RegisterCache records a function that empties one backend's cache.
func RegisterCache(reset func()) {
	caches.Lock()
	caches.resets = append(caches.resets, reset)
	caches.Unlock()
}

// ResetCaches empties every registered backend cache.
func ResetCaches() {
	caches.Lock()
	defer caches.Unlock()
	for _, reset := range caches.resets {
		reset()
	}
}
