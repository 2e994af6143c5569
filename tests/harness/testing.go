package harness

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// ForTest starts a test bed for one test and stops it in t.Cleanup, which
// also runs when the test fails or panics.
func ForTest(t testing.TB, opts Options) *Env {
	t.Helper()
	SkipShort(t)
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	env, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("starting test bed: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping test bed: %v", err)
		}
	})
	return env
}

// shared is the package-wide test bed that Main manages.
var shared struct {
	sync.Mutex
	opts    *Options
	env     *Env
	err     error
	started bool
}

// Main runs a package's tests with one shared test bed, started on the
// first call to Shared, and stops it afterwards. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Full)) }
//
// After the tests, Main checks by PID that no test-bed process is still
// running and fails the package if one is.
func Main(m *testing.M, opts Options) int {
	shared.Lock()
	shared.opts = &opts
	shared.Unlock()

	code := m.Run()

	shared.Lock()
	defer shared.Unlock()
	if shared.env == nil {
		return code
	}
	procs := shared.env.Processes()
	if err := shared.env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "harness: stopping shared test bed: %v\n", err)
		code = 1
	}
	left := 0
	for _, p := range procs {
		if Alive(p.PID) {
			fmt.Fprintf(os.Stderr, "harness: %s (pid %d) is still running\n", p.Name, p.PID)
			left++
		}
	}
	if left > 0 {
		code = 1
	}
	fmt.Printf("harness: stopped %d test-bed processes by PID; %d still running\n", len(procs), left)
	return code
}

// Shared returns the package's shared test bed, starting it on first use.
// The package's TestMain must call Main.
func Shared(t testing.TB) *Env {
	t.Helper()
	SkipShort(t)
	shared.Lock()
	defer shared.Unlock()
	if shared.opts == nil {
		t.Fatal("harness.Shared needs TestMain to call harness.Main")
	}
	if !shared.started {
		shared.started = true
		opts := *shared.opts
		if opts.Logf == nil {
			opts.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
		}
		shared.env, shared.err = Start(context.Background(), opts)
	}
	if shared.err != nil {
		t.Fatalf("starting shared test bed: %v", shared.err)
	}
	return shared.env
}

// SkipShort skips a test that needs the test bed under `go test -short`
// (`make unit`): those run in `make test`.
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the test bed (run make test)")
	}
}
