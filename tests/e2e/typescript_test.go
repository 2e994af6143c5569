package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestVaultExampleTypeScript runs the Vault scenario with examples/ts/vault:
// the generated SDK in sdk/nodejs is compiled with tsc against
// @pulumi/pulumi 3.259.0 from the npm registry (`make tools`), and the
// program runs through @pulumi/pulumi's own entry point.
func TestVaultExampleTypeScript(t *testing.T) {
	runVaultScenario(t, filepath.Join("examples", "ts", "vault"), "e2e-vault-ts")
}

// typeScriptProgram copies the TypeScript program in src and gives it a
// node_modules: the test bed's packages, and the generated SDK compiled
// from sdk/nodejs as @esosync/pulumi-esosync. Everything resolves to one
// copy of @pulumi/pulumi, as a real install would.
func typeScriptProgram(t *testing.T, src string) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := harness.ToolsBin()
	if err != nil {
		t.Fatal(err)
	}
	modules, err := filepath.EvalSymlinks(filepath.Join(bin, "esosync-node-modules"))
	if err != nil {
		t.Fatalf("the Node.js toolchain is missing (make tools): %v", err)
	}
	// Compile the SDK the way its package is built: tsc, then package.json
	// next to the output, which is the package's root.
	sdk := filepath.Join(t.TempDir(), "nodejs")
	if err := os.CopyFS(sdk, os.DirFS(filepath.Join(root, "sdk", "nodejs"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(sdk, "node_modules")); err != nil {
		t.Fatal(err)
	}
	tsc := exec.CommandContext(t.Context(), filepath.Join(modules, ".bin", "tsc"), "-p", sdk)
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("compiling the generated TypeScript SDK: %v\n%s", err, out)
	}
	pkg, err := os.ReadFile(filepath.Join(sdk, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sdk, "bin", "package.json"), pkg, 0o644); err != nil {
		t.Fatal(err)
	}

	dir := copyProgram(t, src)
	nm := filepath.Join(dir, "node_modules")
	entries, err := os.ReadDir(modules)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(nm, "@esosync"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(modules, e.Name()), filepath.Join(nm, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(sdk, "bin"), filepath.Join(nm, "@esosync", "pulumi-esosync")); err != nil {
		t.Fatal(err)
	}
	return dir
}
