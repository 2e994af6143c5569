package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulumi/providertest"
	"github.com/pulumi/providertest/pulumitest"
	"github.com/pulumi/providertest/pulumitest/assertpreview"
	"github.com/pulumi/providertest/pulumitest/opttest"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// baselineVersion is the release whose recorded state the current provider
// must preview without changes. Bump it (and record, below) at each release.
const baselineVersion = "0.1.0"

// sigKey marks a secret value in Pulumi's state JSON.
const sigKey = "4dabf18193072939515e22adb298388d"

// TestProviderUpgrade is providertest's upgrade check: the state that the
// baseline release wrote for testdata/upgrade (recorded under
// testdata/recorded/TestProviderUpgrade/upgrade/<version>/stack.json) is
// previewed with the provider built from this tree, and the preview must
// show no changes: a schema or behaviour change that would touch existing
// stacks fails here.
//
// providertest records a baseline by downloading the released plugin,
// which cannot happen offline; set ESOSYNC_RECORD_UPGRADE=1 to record it
// with the current build instead (right after cutting that release).
func TestProviderUpgrade(t *testing.T) {
	env := harness.Shared(t)
	binary, err := harness.ProviderBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", env.Kubeconfig)
	test := pulumitest.NewPulumiTest(t, filepath.Join("testdata", "upgrade"),
		opttest.LocalProviderPath(harness.ProviderName, filepath.Dir(binary)),
		opttest.SkipInstall())
	cache := filepath.Join(providertest.GetUpgradeCacheDir("upgrade", baselineVersion), "stack.json")
	if _, err := os.Stat(cache); err != nil {
		if os.Getenv("ESOSYNC_RECORD_UPGRADE") == "" {
			t.Fatalf("no recorded baseline at %s: run with ESOSYNC_RECORD_UPGRADE=1 on the release's build", cache)
		}
		record(t, env, test, cache)
	}
	preview := providertest.PreviewProviderUpgrade(t, test, harness.ProviderName, baselineVersion)
	assertpreview.HasNoChanges(t, preview)
	t.Logf("preview of the %s state with this build: %v", baselineVersion, preview.ChangeSummary)
}

// record writes the state of an up of the program with the current build,
// secrets sanitized, where providertest looks for the baseline.
func record(t *testing.T, env *harness.Env, test *pulumitest.PulumiTest, path string) {
	if err := env.InstallESOCRDs(t.Context()); err != nil {
		t.Fatal(err)
	}
	run := test.CopyToTempDir(t)
	run.Up(t)
	state := run.ExportStack(t)
	run.Destroy(t)
	// providertest would replace every secret with a placeholder, but a
	// placeholder where the provider recorded a hash reads as drift. The
	// program holds no secret values, so the only secrets in its state are
	// the empty credential hashes; keep them, after checking exactly that.
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case map[string]any:
			if _, secret := v[sigKey]; secret {
				if v["plaintext"] != `""` {
					return fmt.Errorf("the state holds a non-empty secret; it must not be committed")
				}
				return nil
			}
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var tree any
	if err := json.Unmarshal(state.Deployment, &tree); err != nil {
		t.Fatal(err)
	}
	if err := walk(tree); err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded the %s baseline at %s", baselineVersion, path)
}
