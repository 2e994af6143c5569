package node

import (
	"testing"

	"github.com/esosync/pulumi-esosync/tests/harness"
	"github.com/esosync/pulumi-esosync/tests/story"
)

// TestESCStory runs the Pulumi blog story (examples/yaml/esc-app) with ESO
// as pods: see story.ESC and story.Flow.Run for every promise it checks.
func TestESCStory(t *testing.T) {
	env := harness.Shared(t)
	logf := report(t)
	r, err := story.ESC(t.Context(), env, t.TempDir(), logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Steps {
		logf("timing: %-32s %s", s.Name, s.Took.Round(100*1e6))
	}
}
