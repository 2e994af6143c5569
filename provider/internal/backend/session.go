package backend

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Session is what one configured provider shares between the reads of one
// pulumi operation: the backends' caches, the remote keys announced by
// Check (demand), and counters of backend requests. The provider creates a
// Session when it is configured and hands it down with every store it
// opens; nothing of it lives in package variables, so two providers in one
// process (tests, or a program with two provider instances) never share a
// cached value, and a new operation starts from a clean slate.
//
// A nil *Session is valid: it counts and remembers nothing, and each
// backend then keeps a private cache per client.
type Session struct {
	mu     sync.Mutex
	calls  map[string]int64
	demand map[string][]string // store id -> remote keys, in first-demand order
	seen   map[string]map[string]bool
	last   time.Time
	slots  map[string]any
}

// NewSession starts an empty session.
func NewSession() *Session {
	return &Session{calls: map[string]int64{}, demand: map[string][]string{}, seen: map[string]map[string]bool{}, slots: map[string]any{}}
}

// CountCall records one request of kind to a backend, for example
// "vault.read", "aws.BatchGetSecretValue" or "esc.open", so tests can prove
// what a deploy cost (N ExternalSecrets over M remote keys must cost M
// reads, not N) and the provider can log the figures at debug level.
func (s *Session) CountCall(kind string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.calls[kind]++
	s.mu.Unlock()
}

// CallCounts returns a snapshot of the counters.
func (s *Session) CallCounts() map[string]int64 {
	if s == nil {
		return map[string]int64{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// The engine checks every resource of a deploy before, and while, it
// creates them, a few at a time (pulumi's default parallelism is 4 per
// CPU). Backends that read in batches would see only those few keys per
// batch. So the provider records at Check which remote keys each store
// will be asked for (demand), and a batching backend waits, before it
// sends a batch, until checks have settled and then reads every demanded
// key at once: 200 ExternalSecrets over 40 AWS secrets cost two
// BatchGetSecretValue calls instead of one per handful of resources.

// NoteDemand records that an ExternalSecret of this operation will read
// keys from the store identified by storeID.
func (s *Session) NoteDemand(storeID string, keys ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.seen[storeID]
	if seen == nil {
		seen = map[string]bool{}
		s.seen[storeID] = seen
	}
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			s.demand[storeID] = append(s.demand[storeID], k)
		}
	}
	s.last = time.Now()
}

// Demanded returns the keys recorded for storeID.
func (s *Session) Demanded(storeID string) []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.demand[storeID])
}

// LastDemand is when demand was last recorded (zero: never).
func (s *Session) LastDemand() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Slot returns the value a backend keeps in s under name (its cache),
// creating it with create on first use. With a nil session every call
// creates a new value, i.e. nothing is shared.
func Slot[T any](s *Session, name string, create func() *T) *T {
	if s == nil {
		return create()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.slots[name].(*T); ok {
		return v
	}
	v := create()
	s.slots[name] = v
	return v
}
