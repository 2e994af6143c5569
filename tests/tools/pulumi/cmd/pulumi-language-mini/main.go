// Command pulumi-language-mini is a small Pulumi language host that runs
// nodejs, python and go programs for the esosync test bed.
//
// The official pulumi-language-{nodejs,python,go} hosts live in untagged
// nested modules of the pulumi repository that the Go module proxy refuses,
// so they cannot be built offline. This host implements the part of the
// LanguageRuntime protocol that `pulumi up/preview/refresh/destroy` needs and
// starts each runtime the way the official host does (the SDK's own
// entry points: @pulumi/pulumi's cmd/run, pulumi-language-python-exec, a
// compiled Go binary). One binary serves all three runtimes: it is installed
// under the three official names and picks the runtime from argv[0].
//
// It does not implement codegen (`pulumi package gen-sdk`), `pulumi new`,
// `pulumi convert`, dependency installation or plugin discovery from
// package.json / requirements.txt: plugins come from PATH or PULUMI_HOME.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is reported to the engine as the host's plugin version.
const version = "3.259.0"

// bailExitCode is the exit code Pulumi's SDKs use after they have already
// reported the error to the engine: the host must not report it again.
const bailExitCode = 32

func main() {
	flag.String("tracing", "", "Emit tracing to a Zipkin-compatible endpoint (ignored)")
	flag.String("root", "", "Root of the program execution (ignored: Handshake and Run carry it)")
	flag.Bool("binary", false, "accepted for compatibility with the official go host (ignored)")
	flag.Parse()

	runtime := runtimeFromName(os.Args[0])
	if runtime == "" {
		cmdutil.Exit(fmt.Errorf("pulumi-language-mini must be invoked as pulumi-language-{nodejs,python,go}, not %q", os.Args[0]))
	}

	var engineAddress string
	cancel := make(chan bool)
	if args := flag.Args(); len(args) > 0 {
		engineAddress = args[0]
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		go func() {
			<-ctx.Done()
			stop()
			close(cancel)
		}()
		if err := rpcutil.Healthcheck(ctx, engineAddress, 5*time.Minute, stop); err != nil {
			cmdutil.Exit(fmt.Errorf("could not start health check: %w", err))
		}
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{runtime: runtime, engineAddress: engineAddress})
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start language host: %w", err))
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host stopped serving: %w", err))
	}
}

// runtimeFromName maps pulumi-language-<runtime> to <runtime>.
func runtimeFromName(argv0 string) string {
	name := strings.TrimPrefix(filepath.Base(argv0), "pulumi-language-")
	switch name {
	case "nodejs", "python", "go":
		return name
	}
	return ""
}

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	runtime       string
	engineAddress string
}

func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engineAddress = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) GetProgramDependencies(context.Context, *pulumirpc.GetProgramDependenciesRequest) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

func (h *host) InstallDependencies(*pulumirpc.InstallDependenciesRequest, grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse]) error {
	// Dependencies are installed by the test bed (npm ci, a venv, go modules).
	return nil
}

func (h *host) RuntimeOptionsPrompts(context.Context, *pulumirpc.RuntimeOptionsRequest) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *host) About(_ context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	exe, _ := os.Executable()
	return &pulumirpc.AboutResponse{Executable: exe, Version: version, Metadata: map[string]string{"runtime": h.runtime}}, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	programDir := req.GetPwd()
	entry := "."
	var options map[string]any
	if info := req.GetInfo(); info != nil {
		if info.GetProgramDirectory() != "" {
			programDir = info.GetProgramDirectory()
		}
		if info.GetEntryPoint() != "" {
			entry = info.GetEntryPoint()
		}
		options = info.GetOptions().AsMap()
	}

	config := req.GetConfig()
	if config == nil {
		config = map[string]string{} // the python SDK rejects null
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretKeysJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeysJSON),
	)

	var cmd *exec.Cmd
	switch h.runtime {
	case "nodejs":
		cmd, err = h.nodeCommand(ctx, req, programDir, entry, options)
	case "python":
		cmd, err = h.pythonCommand(ctx, req, programDir, entry, options)
	case "go":
		var cleanup func()
		cmd, cleanup, err = h.goCommand(ctx, req, programDir, options)
		if cleanup != nil {
			defer cleanup()
		}
		env = append(env, h.goEnv(req)...)
	}
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	cmd.Dir = req.GetPwd()
	cmd.Env = append(env, cmd.Env...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.ExitStatus() == bailExitCode {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited with %v", exit)}, nil
		}
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// commonArgs are the flags both the nodejs and python SDK entry points take,
// in their own spelling (sep is "-" for nodejs and "_" for python).
func (h *host) commonArgs(req *pulumirpc.RunRequest, sep string) []string {
	args := []string{
		"--monitor", req.GetMonitorAddress(),
		"--engine", h.engineAddress,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", req.GetPwd(),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
		"--organization", req.GetOrganization(),
	}
	if info := req.GetInfo(); info != nil && info.GetRootDirectory() != "" {
		args = append(args, "--root"+sep+"directory", info.GetRootDirectory())
	}
	return args
}

func (h *host) nodeCommand(ctx context.Context, req *pulumirpc.RunRequest, programDir, entry string, _ map[string]any) (*exec.Cmd, error) {
	runScript, err := findUp(programDir, filepath.Join("node_modules", "@pulumi", "pulumi", "cmd", "run"))
	if err != nil {
		return nil, fmt.Errorf("cannot find @pulumi/pulumi (run `npm ci` in the program directory): %w", err)
	}
	args := append([]string{runScript}, h.commonArgs(req, "-")...)
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	if req.GetQueryMode() {
		args = append(args, "--query-mode")
	}
	args = append(args, filepath.Join(programDir, entry))
	args = append(args, req.GetArgs()...)
	cmd := exec.CommandContext(ctx, "node", args...)
	// Without this the SDK loads .ts files as ES modules and fails.
	cmd.Env = []string{"PULUMI_NODEJS_TYPESCRIPT=true"}
	if tsconfig := filepath.Join(programDir, "tsconfig.json"); fileExists(tsconfig) {
		cmd.Env = append(cmd.Env, "PULUMI_NODEJS_TSCONFIG_PATH="+tsconfig)
	}
	return cmd, nil
}

func (h *host) pythonCommand(ctx context.Context, req *pulumirpc.RunRequest, programDir, entry string, options map[string]any) (*exec.Cmd, error) {
	python := os.Getenv("PULUMI_MINI_PYTHON")
	if venv, _ := options["virtualenv"].(string); venv != "" {
		if !filepath.IsAbs(venv) {
			venv = filepath.Join(programDir, venv)
		}
		python = filepath.Join(venv, "bin", "python")
	}
	if python == "" {
		python = "python3"
	}
	execScript := os.Getenv("PULUMI_MINI_PYTHON_EXEC")
	if execScript == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		// build.sh installs the SDK's exec script next to this binary.
		execScript = filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	}
	args := append([]string{"-u", execScript}, h.commonArgs(req, "_")...)
	args = append(args, "--dry_run", strconv.FormatBool(req.GetDryRun()))
	args = append(args, filepath.Join(programDir, entry))
	args = append(args, req.GetArgs()...)
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Env = []string{"PYTHONUNBUFFERED=1"}
	return cmd, nil
}

func (h *host) goCommand(ctx context.Context, req *pulumirpc.RunRequest, programDir string, options map[string]any) (*exec.Cmd, func(), error) {
	if binary, _ := options["binary"].(string); binary != "" {
		if !filepath.IsAbs(binary) {
			binary = filepath.Join(programDir, binary)
		}
		return exec.CommandContext(ctx, binary, req.GetArgs()...), nil, nil
	}
	tmp, err := os.MkdirTemp("", "pulumi-go-program-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(tmp) }
	bin := filepath.Join(tmp, "program")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = programDir
	build.Stdout = os.Stderr
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("go build of %s failed: %w", programDir, err)
	}
	return exec.CommandContext(ctx, bin, req.GetArgs()...), cleanup, nil
}

// goEnv is how the Go SDK receives what the other SDKs get as flags.
func (h *host) goEnv(req *pulumirpc.RunRequest) []string {
	env := []string{
		"PULUMI_MONITOR=" + req.GetMonitorAddress(),
		"PULUMI_ENGINE=" + h.engineAddress,
		"PULUMI_PROJECT=" + req.GetProject(),
		"PULUMI_STACK=" + req.GetStack(),
		"PULUMI_ORGANIZATION=" + req.GetOrganization(),
		"PULUMI_PARALLEL=" + strconv.Itoa(int(req.GetParallel())),
		"PULUMI_DRY_RUN=" + strconv.FormatBool(req.GetDryRun()),
		"PULUMI_QUERY_MODE=" + strconv.FormatBool(req.GetQueryMode()),
	}
	if info := req.GetInfo(); info != nil && info.GetRootDirectory() != "" {
		env = append(env, "PULUMI_ROOT_DIRECTORY="+info.GetRootDirectory())
	}
	return env
}

// findUp looks for rel in dir and its parents, as node's module resolution does.
func findUp(dir, rel string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, rel)
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found in %s or its parents", rel, dir)
		}
		dir = parent
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
