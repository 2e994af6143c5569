// Package node runs esosync's seed flows on the node test bed, through the
// pulumi CLI, with ESO running in the cluster as pods installed by the
// Operator from its chart, and application pods reading the synced Secrets.
package node

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/esosync/pulumi-esosync/tests/harness"
	"github.com/esosync/pulumi-esosync/tests/story"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Options{Node: true, Vault: true, AWS: true}))
}

// report logs a line and prints it, so it shows in `make test` output.
func report(t *testing.T) func(format string, args ...any) {
	return func(format string, args ...any) {
		t.Helper()
		t.Logf(format, args...)
		fmt.Printf(t.Name()+": "+format+"\n", args...)
	}
}

// reportSteps prints how long each step of a flow took.
func reportSteps(t *testing.T, steps []story.Step) {
	logf := report(t)
	for _, s := range steps {
		logf("timing: %-32s %s", s.Name, s.Took.Round(100*time.Millisecond))
	}
}
