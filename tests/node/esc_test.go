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
	r, err := story.ESC(t.Context(), env, t.TempDir(), report(t))
	if err != nil {
		t.Fatal(err)
	}
	reportSteps(t, r.Steps)
}
