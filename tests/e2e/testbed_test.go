package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// testbed is everything the loopback test bed changes in an example
// program: the examples are what a user writes, with every default, and the
// e2e tests run a copy of each with these overrides applied to its esosync
// resources. The loopback bed has no kubelet, so ESO's pods never start:
// the Operator installs the chart of the ESO Go module with its CRD bundle,
// without the webhook and cert controller and without waiting for pods. No
// ESO controller runs unless a test starts one as a local process, so by
// default stores do not wait for ESO to validate them and ExternalSecrets
// are synced by the provider. Each test puts its ExternalSecrets in a
// namespace of its own.
//
// YAML programs get the overrides written into their Pulumi.yaml
// (writeYAML). TypeScript, Python and Go programs get testbed-overrides.json and the
// prelude of their language from testdata/testbed, which registers a Pulumi
// resource transform applying them (addPrelude).
type testbed struct {
	// Chart and CRDs replace the Operator's chart (its chartVersion is
	// dropped: a local chart's Chart.yaml decides) and set its CRD bundle.
	Chart string `json:"chart"`
	CRDs  string `json:"crds"`
	// Namespace is every ExternalSecret's namespace.
	Namespace string `json:"namespace"`
	// Sync is every ExternalSecret's sync mode.
	Sync string `json:"sync"`
	// StoreWaitForReady is every store's waitForReady.
	StoreWaitForReady bool `json:"storeWaitForReady"`
	// SyncTimeout, when set, replaces every ExternalSecret's customTimeouts
	// (create and update). YAML programs only.
	SyncTimeout string `json:"-"`
}

// newTestbed is the loopback bed's default overrides for a test whose
// ExternalSecrets live in namespace ns.
func newTestbed(t *testing.T, ns string) testbed {
	t.Helper()
	chart, err := harness.ESOChartDir()
	if err != nil {
		t.Fatal(err)
	}
	crds, err := harness.ESOCRDBundle()
	if err != nil {
		t.Fatal(err)
	}
	return testbed{Chart: chart, CRDs: crds, Namespace: ns, Sync: "provider", StoreWaitForReady: false}
}

// exampleProgram copies the example program rel (relative to the repository
// root) into a new directory, readies the copy for its language (the Go
// SDK's replace directive, a node_modules), applies tb and returns the
// directory.
func exampleProgram(t *testing.T, rel string, tb testbed) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, rel)
	runtime := programRuntime(t, src)
	var dir string
	switch runtime {
	case "yaml", "python":
		dir = copyProgram(t, src)
	case "nodejs":
		dir = typeScriptProgram(t, src)
	case "go":
		dir = copyGoProgram(t, src)
	default:
		t.Fatalf("%s: runtime %q has no test-bed overrides", rel, runtime)
	}
	if runtime == "yaml" {
		tb.writeYAML(t, src, dir)
	} else {
		tb.addPrelude(t, dir, runtime)
	}
	return dir
}

// programRuntime is the runtime named in the Pulumi.yaml of the program in dir.
func programRuntime(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "Pulumi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var project struct {
		Runtime string `json:"runtime"`
	}
	if err := yaml.Unmarshal(data, &project); err != nil {
		t.Fatalf("%s/Pulumi.yaml: %v", dir, err)
	}
	return project.Runtime
}

// esosync resource types the overrides apply to.
const (
	operatorType           = "esosync:index:Operator"
	secretStoreType        = "esosync:index:SecretStore"
	clusterSecretStoreType = "esosync:index:ClusterSecretStore"
	externalSecretType     = "esosync:index:ExternalSecret"
	externalSecretSetType  = "esosync:index:ExternalSecretSet"
)

// writeYAML writes the Pulumi.yaml of the YAML program in src into dst with
// tb applied to its resources. Calling it again on the same dst replaces
// the overrides (a test switching the sync mode between two ups).
func (tb testbed) writeYAML(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(src, "Pulumi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var program map[string]any
	if err := yaml.Unmarshal(data, &program); err != nil {
		t.Fatalf("%s/Pulumi.yaml: %v", src, err)
	}
	resources, _ := program["resources"].(map[string]any)
	for name, r := range resources {
		res, ok := r.(map[string]any)
		if !ok {
			t.Fatalf("%s/Pulumi.yaml: resource %s is not a map", src, name)
		}
		props := child(res, "properties")
		switch res["type"] {
		case operatorType:
			delete(props, "chartVersion")
			props["chart"] = tb.Chart
			props["crds"] = tb.CRDs
			props["waitForController"] = false
			values := child(props, "values")
			values["webhook"] = map[string]any{"create": false}
			values["certController"] = map[string]any{"create": false}
		case secretStoreType, clusterSecretStoreType:
			props["waitForReady"] = tb.StoreWaitForReady
		case externalSecretType, externalSecretSetType:
			props["namespace"] = tb.Namespace
			props["sync"] = tb.Sync
			if tb.SyncTimeout != "" {
				child(res, "options")["customTimeouts"] = map[string]any{"create": tb.SyncTimeout, "update": tb.SyncTimeout}
			}
		}
	}
	out, err := yaml.Marshal(program)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "Pulumi.yaml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// child returns the map under key in m, creating it if m has none.
func child(m map[string]any, key string) map[string]any {
	c, ok := m[key].(map[string]any)
	if !ok {
		c = map[string]any{}
		m[key] = c
	}
	return c
}

// addPrelude adds the test bed's overrides to the copy in dir of a program
// in runtime "nodejs", "python" or "go": testbed-overrides.json, the language's
// prelude from testdata/testbed, and the one line that runs the prelude
// before the program's first resource.
func (tb testbed) addPrelude(t *testing.T, dir, runtime string) {
	t.Helper()
	data, err := json.Marshal(tb)
	if err != nil {
		t.Fatal(err)
	}
	// Not testbed.json: Node.js resolves `import "./testbed"` to a .json
	// file before a .ts one, and the prelude would never run.
	if err := os.WriteFile(filepath.Join(dir, "testbed-overrides.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var prelude, entry, anchor, hook string
	switch runtime {
	case "nodejs":
		prelude, entry, hook = "testbed.ts", "index.ts", "import \"./testbed\"; // the test bed's overrides (tests/e2e)\n"
	case "python":
		prelude, entry, hook = "testbed.py", "__main__.py", "import testbed  # noqa: F401  the test bed's overrides (tests/e2e)\n"
	case "go":
		prelude, entry = "testbed.go", "main.go"
		anchor = "pulumi.Run(func(ctx *pulumi.Context) error {\n"
		hook = "if err := registerTestbed(ctx); err != nil {\nreturn err\n}\n"
	default:
		t.Fatalf("no test-bed prelude for runtime %q", runtime)
	}
	code, err := os.ReadFile(filepath.Join("testdata", "testbed", prelude))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, prelude), code, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, entry)
	program, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(program)
	if anchor == "" {
		// Imports run in order: the transform is registered before the
		// program's own code declares anything.
		text = hook + text
	} else {
		if n := strings.Count(text, anchor); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want once (where the test bed's transform is registered)", entry, anchor, n)
		}
		text = strings.Replace(text, anchor, anchor+hook, 1)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// changeSummary is what one pulumi operation did, or a preview plans: the
// number of resources per operation as the engine counts them ("create",
// "update", "same", "delete", "replace", ...), which the CLI prints as
// "4 to create", "1 updated", "4 unchanged".
type changeSummary map[string]int

// changed is the summary without the unchanged resources: empty when the
// operation changed nothing.
func (c changeSummary) changed() changeSummary {
	d := changeSummary{}
	for op, n := range c {
		if op != "same" && n != 0 {
			d[op] = n
		}
	}
	return d
}

// lastChanges is the change summary of the latest operation on the stack
// of the program in dir, from `pulumi stack history --json` (the record the
// Automation API reads for its UpdateSummary). That operation must be of
// kind ("update" for up, "refresh", "destroy") and have succeeded.
func lastChanges(t *testing.T, pulumi *harness.Pulumi, dir, kind string) changeSummary {
	t.Helper()
	out, err := pulumi.Run(t.Context(), dir, "stack", "history", "--json", "--page-size", "1")
	if err != nil {
		t.Fatal(err)
	}
	var history []struct {
		Kind            string        `json:"kind"`
		Result          string        `json:"result"`
		ResourceChanges changeSummary `json:"resourceChanges"`
	}
	if err := decodeJSON(out, &history); err != nil {
		t.Fatalf("stack history --json: %v\n%s", err, out)
	}
	if len(history) == 0 {
		t.Fatal("stack history is empty")
	}
	latest := history[0]
	if latest.Kind != kind || latest.Result != "succeeded" {
		t.Fatalf("latest operation in the stack history is a %s that %s, want a %s that succeeded", latest.Kind, latest.Result, kind)
	}
	if latest.ResourceChanges == nil {
		return changeSummary{}
	}
	return latest.ResourceChanges
}

// previewChanges is the change summary in the output of `pulumi preview
// --json`.
func previewChanges(t *testing.T, out string) changeSummary {
	t.Helper()
	var digest struct {
		ChangeSummary changeSummary `json:"changeSummary"`
	}
	if err := decodeJSON(out, &digest); err != nil {
		t.Fatalf("preview --json: %v\n%s", err, out)
	}
	if digest.ChangeSummary == nil {
		return changeSummary{}
	}
	return digest.ChangeSummary
}

// decodeJSON decodes the JSON document in the combined output of a pulumi
// command: the first one that starts a line, so that anything written to
// stderr around it does not matter.
func decodeJSON(out string, v any) error {
	for start := 0; start < len(out); {
		if out[start] == '{' || out[start] == '[' {
			return json.NewDecoder(strings.NewReader(out[start:])).Decode(v)
		}
		next := strings.IndexByte(out[start:], '\n')
		if next < 0 {
			break
		}
		start += next + 1
	}
	return errors.New("no JSON document in the output")
}
