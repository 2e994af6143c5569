package escserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Faulty serves a Server's API on a listener of its own, with a fault
// switch: while Fail is set, every request is answered with that status
// (in the API's error shape) instead of reaching the Server. Clients
// configured with Faulty's URL see the ESC endpoint fail and recover as a
// whole, while the Server's own URL keeps working for the test.
type Faulty struct {
	s      *Server
	ln     net.Listener
	srv    *http.Server
	status atomic.Int32
	failed atomic.Int64
}

// StartFaulty listens on addr (default "127.0.0.1:0") and serves s's API
// there until Close, answering normally until Fail is called.
func (s *Server) StartFaulty(addr string) (*Faulty, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("escserver: listening on %s: %w", addr, err)
	}
	f := &Faulty{s: s, ln: ln}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// URL is the API base URL of the faulty listener (like Server.URL).
func (f *Faulty) URL() string { return "http://" + f.ln.Addr().String() + BasePath }

// Fail makes every later request get status (e.g. 500) with the API's
// error body; 0 serves normally again.
func (f *Faulty) Fail(status int) { f.status.Store(int32(status)) }

// Failed is how many requests were answered with the fault so far.
func (f *Faulty) Failed() int64 { return f.failed.Load() }

// ServeHTTP answers with the fault when one is set, else as the Server.
func (f *Faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if code := int(f.status.Load()); code != 0 {
		f.failed.Add(1)
		writeError(w, code, "%s (fault injected by the test)", http.StatusText(code))
		return
	}
	f.s.ServeHTTP(w, r)
}

// Close stops the faulty listener and drops its connections; the Server
// keeps running.
func (f *Faulty) Close() error {
	err := f.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
