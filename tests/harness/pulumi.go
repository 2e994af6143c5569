package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Pulumi runs the test bed's pulumi CLI fully offline: a private
// PULUMI_HOME, a file state backend, no update checks and no plugin
// downloads. The esosync plugin is installed from a local binary.
type Pulumi struct {
	// Bin is the pulumi CLI.
	Bin string
	// Home is PULUMI_HOME.
	Home string
	// Backend is the file:// state backend URL.
	Backend string
	// Env is extra environment for every command (KUBECONFIG, ...).
	Env []string
	// Stdout, if set, also receives each command's output as it runs.
	Stdout io.Writer
}

// NewPulumi prepares a CLI environment under dir.
func NewPulumi(dir string) (*Pulumi, error) {
	bin, err := ToolsBin()
	if err != nil {
		return nil, err
	}
	p := &Pulumi{
		Bin:     filepath.Join(bin, "pulumi"),
		Home:    filepath.Join(dir, "pulumi-home"),
		Backend: "file://" + filepath.Join(dir, "state"),
	}
	for _, d := range []string{p.Home, filepath.Join(dir, "state")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// environ is the environment every pulumi command runs with.
func (p *Pulumi) environ() []string {
	bin := filepath.Dir(p.Bin)
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PULUMI_HOME="+p.Home,
		"PULUMI_BACKEND_URL="+p.Backend,
		"PULUMI_CONFIG_PASSPHRASE=esosync-test",
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
		"PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true",
		"PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true",
		"PULUMI_COLOR=never",
	)
	return append(env, p.Env...)
}

// Environ is the environment pulumi commands run with, for programs (a
// pytest suite, say) that drive the CLI themselves.
func (p *Pulumi) Environ() []string { return p.environ() }

// Run runs `pulumi args...` in dir and returns its combined output.
func (p *Pulumi) Run(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, p.Bin, args...)
	cmd.Dir = dir
	cmd.Env = p.environ()
	var out bytes.Buffer
	var w io.Writer = &out
	if p.Stdout != nil {
		w = io.MultiWriter(&out, p.Stdout)
	}
	cmd.Stdout = w
	cmd.Stderr = w
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("pulumi %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// ProviderName is the esosync plugin's package name (provider.Name). The
// harness repeats it rather than import the provider package, so that the
// test bed does not compile the product.
const ProviderName = "esosync"

// InstallProvider installs the esosync plugin binary under the version it
// was built with (ProviderVersion).
func (p *Pulumi) InstallProvider(ctx context.Context, binary string) error {
	version, err := ProviderVersion()
	if err != nil {
		return err
	}
	_, err = p.Run(ctx, "", "plugin", "install", "resource", ProviderName, version, "--file", binary)
	return err
}

// versionLine is the line of provider/provider.go the Makefile reads the
// default VERSION from (its sed 's/^var Version = "\(.*\)"$/\1/p').
var versionLine = regexp.MustCompile(`(?m)^var Version = "(.*)"$`)

// ProviderVersion is the version the esosync plugin binary carries:
// ESOSYNC_PROVIDER_VERSION if set (pair it with ESOSYNC_PROVIDER_BINARY for
// a binary built with another VERSION), else the default `make build`
// stamps into it, read from provider/provider.go as the Makefile reads it.
func ProviderVersion() (string, error) {
	if v := os.Getenv("ESOSYNC_PROVIDER_VERSION"); v != "" {
		return v, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	src, err := os.ReadFile(filepath.Join(root, "provider", "provider.go"))
	if err != nil {
		return "", fmt.Errorf("harness: the provider version: %w (or set ESOSYNC_PROVIDER_VERSION)", err)
	}
	m := versionLine.FindSubmatch(src)
	if m == nil || len(m[1]) == 0 {
		return "", errors.New(`harness: provider/provider.go has no line 'var Version = "..."' (the Makefile reads the same line); set ESOSYNC_PROVIDER_VERSION`)
	}
	return string(m[1]), nil
}

// CopyProgram copies the files of a program directory (not subdirectories)
// into dst, so stack files and build output stay out of the repository.
func CopyProgram(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ProviderBinary is the esosync plugin built by `make build`
// (ESOSYNC_PROVIDER_BINARY overrides it).
func ProviderBinary() (string, error) {
	if b := os.Getenv("ESOSYNC_PROVIDER_BINARY"); b != "" {
		return b, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	b := filepath.Join(root, "bin", "pulumi-resource-esosync")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("provider binary %s is missing: run `make build` first", b)
	}
	return b, nil
}
