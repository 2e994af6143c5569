package harness

import (
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
)

// CountingProxy is a reverse proxy on loopback that counts the requests it
// forwards, by a kind the caller derives from each request. Tests put it
// between the provider and a backend to measure, at the wire, what a
// deploy costs (for example AWS calls by X-Amz-Target, Vault reads by path).
type CountingProxy struct {
	// URL is where clients send requests instead of the backend.
	URL string

	server *http.Server
	mu     sync.Mutex
	counts map[string]int
}

// StartCountingProxy forwards to target and counts each request under
// kind(r); an empty kind is not counted.
func StartCountingProxy(target string, kind func(*http.Request) string) (*CountingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &CountingProxy{URL: "http://" + ln.Addr().String(), counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := kind(r); k != "" {
			p.mu.Lock()
			p.counts[k]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.server.Serve(ln) }()
	return p, nil
}

// AWSTarget counts AWS JSON-protocol calls by operation, e.g.
// "secretsmanager.BatchGetSecretValue".
func AWSTarget(r *http.Request) string { return r.Header.Get("X-Amz-Target") }

// Counts returns a snapshot of the counters.
func (p *CountingProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

// Reset zeroes the counters.
func (p *CountingProxy) Reset() {
	p.mu.Lock()
	p.counts = map[string]int{}
	p.mu.Unlock()
}

// Close stops the proxy.
func (p *CountingProxy) Close() error { return p.server.Close() }
