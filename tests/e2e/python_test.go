package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestVaultExamplePython runs tests/e2e/python under pytest, with the test
// bed's Python (the pulumi SDK 3.259.0 from PyPI, `make tools`) and the
// generated SDK from sdk/python installed into a scratch directory: the
// pytest suite drives examples/python/vault, with the test bed's
// overrides, through the pulumi CLI.
func TestVaultExamplePython(t *testing.T) {
	const ns = "e2e-vault-python"
	env := harness.Shared(t)
	ctx := t.Context()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := harness.ToolsBin()
	if err != nil {
		t.Fatal(err)
	}
	python := filepath.Join(bin, "esosync-python")
	site := filepath.Join(t.TempDir(), "site")
	// setuptools builds in the source tree (build/, *.egg-info): build a
	// copy, so sdk/ stays exactly what `make sdk` generates.
	sdk := filepath.Join(t.TempDir(), "python")
	if err := os.CopyFS(sdk, os.DirFS(filepath.Join(root, "sdk", "python"))); err != nil {
		t.Fatal(err)
	}
	install := exec.CommandContext(ctx, python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
		"--no-deps", "--no-build-isolation", "--target", site, sdk)
	install.Dir = sdk
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("installing the generated Python SDK: %v\n%s", err, out)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, env.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pulumi := newPulumi(t)
	pulumi.Env = append(pulumi.Env,
		"KUBECONFIG="+env.Kubeconfig,
		"PULUMI_MINI_PYTHON="+python,
		"PYTHONPATH="+site,
		"ESOSYNC_PROGRAM_DIR="+exampleProgram(t, filepath.Join("examples", "python", "vault"), newTestbed(t, ns)),
		"ESOSYNC_NAMESPACE="+ns,
		"ESOSYNC_KUBE_SERVER="+env.APIServer,
		"ESOSYNC_KUBE_TOKEN="+env.AdminToken,
		"ESOSYNC_KUBE_CA="+ca,
		"VAULT_ADDR="+env.VaultAddr,
		"VAULT_TOKEN="+env.VaultToken,
	)
	pytest := exec.CommandContext(ctx, python, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
		filepath.Join(root, "tests", "e2e", "python"))
	pytest.Env = pulumi.Environ()
	out, err := pytest.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "passed") || strings.Contains(line, "failed") || strings.Contains(line, "timings") || strings.Contains(line, "two refreshes") {
			t.Log(line)
		}
	}
	if err != nil {
		t.Fatalf("pytest: %v\n%s", err, out)
	}
}
