package backend

import (
	"slices"
	"sync"
	"time"
)

// The engine checks every resource of a deploy before, and while, it
// creates them, a few at a time (pulumi's default parallelism is 4 per
// CPU). Backends that read in batches would see only those few keys per
// batch. So the provider records at Check which remote keys each store
// will be asked for (demand), and a batching backend waits, before it
// sends a batch, until checks have settled and then reads every demanded
// key at once: 200 ExternalSecrets over 40 AWS secrets cost two
// BatchGetSecretValue calls instead of one per handful of resources.
var demand = struct {
	sync.Mutex
	keys map[string][]string // store id -> remote keys, in first-demand order
	seen map[string]map[string]bool
	last time.Time
}{keys: map[string][]string{}, seen: map[string]map[string]bool{}}

// NoteDemand records that an ExternalSecret of this process will read keys
// from the store identified by storeID.
func NoteDemand(storeID string, keys ...string) {
	demand.Lock()
	defer demand.Unlock()
	seen := demand.seen[storeID]
	if seen == nil {
		seen = map[string]bool{}
		demand.seen[storeID] = seen
	}
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			demand.keys[storeID] = append(demand.keys[storeID], k)
		}
	}
	demand.last = time.Now()
}

// Demanded returns the keys recorded for storeID.
func Demanded(storeID string) []string {
	demand.Lock()
	defer demand.Unlock()
	return slices.Clone(demand.keys[storeID])
}

// LastDemand is when demand was last recorded (zero: never).
func LastDemand() time.Time {
	demand.Lock()
	defer demand.Unlock()
	return demand.last
}

// ResetDemand forgets every recorded demand (tests).
func ResetDemand() {
	demand.Lock()
	demand.keys = map[string][]string{}
	demand.seen = map[string]map[string]bool{}
	demand.last = time.Time{}
	demand.Unlock()
}
