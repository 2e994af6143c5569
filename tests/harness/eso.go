package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// esoModule is the module whose source tree carries the External Secrets
// Operator Helm chart and CRD bundle the test bed installs. go.mod pins its
// version, so tests exercise the same release the provider is built against.
const esoModule = "github.com/external-secrets/external-secrets"

var esoDir struct {
	once sync.Once
	dir  string
	err  error
}

// ESOModuleDir returns the directory of the external-secrets module in the Go
// module cache, downloading the module first if the cache lacks it. The
// directory is read-only, which Helm's chart loader does not mind.
func ESOModuleDir() (string, error) {
	esoDir.once.Do(func() { esoDir.dir, esoDir.err = locateESOModule() })
	return esoDir.dir, esoDir.err
}

// ESOChartDir is the external-secrets Helm chart directory inside the module.
//
// Unlike the packaged chart on charts.external-secrets.io, the source chart
// carries no CRD templates (see ESOCRDBundle) and its Chart.yaml version may
// lag the module's tag: release packaging stamps the version.
func ESOChartDir() (string, error) {
	dir, err := ESOModuleDir()
	if err != nil {
		return "", err
	}
	return existing(filepath.Join(dir, "deploy", "charts", "external-secrets"))
}

// ESOCRDBundle is the multi-document YAML file with every ESO CRD, which
// the released chart would otherwise template.
func ESOCRDBundle() (string, error) {
	dir, err := ESOModuleDir()
	if err != nil {
		return "", err
	}
	return existing(filepath.Join(dir, "deploy", "crds", "bundle.yaml"))
}

func existing(path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("harness: %s module layout changed: %w", esoModule, err)
	}
	return path, nil
}

func locateESOModule() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	goBin, err := goTool()
	if err != nil {
		return "", err
	}
	// `go list -m` answers from go.mod and the cache; Dir is empty when the
	// module is required but not downloaded yet.
	var mod struct{ Dir, Version string }
	if err := goJSON(root, goBin, &mod, "list", "-m", "-json", esoModule); err != nil {
		return "", err
	}
	if mod.Dir != "" {
		return mod.Dir, nil
	}
	if err := goJSON(root, goBin, &mod, "mod", "download", "-json", esoModule+"@"+mod.Version); err != nil {
		return "", err
	}
	if mod.Dir == "" {
		return "", fmt.Errorf("harness: go mod download %s@%s reported no directory", esoModule, mod.Version)
	}
	return mod.Dir, nil
}

func goJSON(dir, goBin string, out any, args ...string) error {
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("harness: go %v: %w: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("harness: go %v: %w", args, err)
	}
	return nil
}

// goTool finds the go command: PATH first, then the toolchain that built
// the test binary, since `go test` does not always put go on PATH.
func goTool() (string, error) {
	if path, err := exec.LookPath("go"); err == nil {
		return path, nil
	}
	if root := runtime.GOROOT(); root != "" {
		path := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", errors.New("harness: the go command is not on PATH")
}
