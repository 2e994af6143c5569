package story

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// Stack is one program driven through the pulumi CLI on the test bed, with
// its own PULUMI_HOME and state, a record of everything the CLI printed
// (for the leak scan) and of how long each command took.
type Stack struct {
	Pulumi *harness.Pulumi
	Dir    string
	// Logf receives progress lines.
	Logf func(format string, args ...any)
	// Steps are the commands run so far, with their durations.
	Steps []Step
	out   strings.Builder
}

// Step is one timed action of a story.
type Step struct {
	Name string
	Took time.Duration
}

// NewStack copies program into work, installs the esosync plugin into a
// private PULUMI_HOME, points the CLI at the test bed's cluster and inits
// stack dev.
func NewStack(ctx context.Context, env *harness.Env, work, program string, logf func(string, ...any)) (*Stack, error) {
	binary, err := harness.ProviderBinary()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(work, "program")
	if err := harness.CopyProgram(program, dir); err != nil {
		return nil, err
	}
	pulumi, err := harness.NewPulumi(work)
	if err != nil {
		return nil, err
	}
	pulumi.Env = append(pulumi.Env, "KUBECONFIG="+env.Kubeconfig)
	if err := pulumi.InstallProvider(ctx, binary); err != nil {
		return nil, err
	}
	s := &Stack{Pulumi: pulumi, Dir: dir, Logf: logf}
	if _, err := s.Run(ctx, "stack", "init", "dev"); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs `pulumi args...` in the program's directory.
func (s *Stack) Run(ctx context.Context, args ...string) (string, error) {
	began := time.Now()
	out, err := s.Pulumi.Run(ctx, s.Dir, args...)
	s.out.WriteString(out)
	if path := os.Getenv("ESOSYNC_STORY_LOG"); path != "" { // for debugging a story
		if f, ferr := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); ferr == nil {
			fmt.Fprintf(f, "\n$ pulumi %s\n%s", strings.Join(args, " "), out)
			f.Close()
		}
	}
	switch args[0] {
	case "up", "refresh", "destroy", "preview":
		s.Steps = append(s.Steps, Step{Name: "pulumi " + args[0], Took: time.Since(began)})
	}
	return out, err
}

// Config sets plain and secret configuration values.
func (s *Stack) Config(ctx context.Context, plain, secret map[string]string) error {
	for k, v := range plain {
		if _, err := s.Run(ctx, "config", "set", k, v); err != nil {
			return err
		}
	}
	for k, v := range secret {
		if _, err := s.Run(ctx, "config", "set", "--secret", k, v); err != nil {
			return err
		}
	}
	return nil
}

// Outputs returns the stack's outputs (secrets masked).
func (s *Stack) Outputs(ctx context.Context) (map[string]any, error) {
	out, err := s.Pulumi.Run(ctx, s.Dir, "stack", "output", "--json")
	if err != nil {
		return nil, err
	}
	var outputs map[string]any
	if err := json.Unmarshal([]byte(out), &outputs); err != nil {
		return nil, fmt.Errorf("stack output: %w", err)
	}
	return outputs, nil
}

// LeakScan searches for each value fetched from a backend in the exported
// state (secrets shown), the stack outputs (secrets shown) and everything
// the CLI printed so far; and for each secret the user configured (a token
// in stack config) in the CLI output and the exported state as stored
// (where Pulumi keeps it encrypted). It names where a value was found,
// never the value.
func (s *Stack) LeakScan(ctx context.Context, fetched, inputs []string) (string, error) {
	shown, err := s.Pulumi.Run(ctx, s.Dir, "stack", "export", "--show-secrets")
	if err != nil {
		return "", err
	}
	stored, err := s.Pulumi.Run(ctx, s.Dir, "stack", "export")
	if err != nil {
		return "", err
	}
	outputs, err := s.Pulumi.Run(ctx, s.Dir, "stack", "output", "--json", "--show-secrets")
	if err != nil {
		return "", err
	}
	cli := s.out.String()
	search := func(kind string, values []string, texts map[string]string) error {
		for i, v := range values {
			for where, text := range texts {
				if strings.Contains(text, v) {
					return fmt.Errorf("leak: %s value #%d appears in the %s", kind, i+1, where)
				}
			}
		}
		return nil
	}
	if err := search("fetched", fetched, map[string]string{"exported state (secrets shown)": shown, "stack outputs (secrets shown)": outputs, "CLI and provider output": cli}); err != nil {
		return "", err
	}
	if err := search("configured secret", inputs, map[string]string{"exported state": stored, "CLI and provider output": withoutEngineRPCLines(cli)}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d fetched values searched in exported state and outputs with secrets shown and in %d KiB of CLI output "+
		"(incl. up -v=9 --logtostderr --logflow --debug), %d configured secrets in stored state and CLI output "+
		"(less the engine's own -v=9 RPC property dumps, which print configured secrets): none found",
		len(fetched), len(cli)/1024, len(inputs)), nil
}

// verbose are the flags of the `up` whose output the leak scan covers at
// the CLI's most verbose logging.
var verbose = []string{"--yes", "--skip-preview", "-v=9", "--logtostderr", "--logflow", "--debug"}

// waitLines are the Operator's timing lines in an `up`'s output.
var waitLines = regexp.MustCompile(`(deployments [^\n<"]* Available after [^\n<"]*|ESO's webhook [^\n<"]* answers admission requests[^\n<"]*)`)

// OperatorWaits extracts what the Operator reported about its waits.
func OperatorWaits(out string) []string {
	var lines []string
	for _, m := range waitLines.FindAllString(out, -1) {
		if line := strings.TrimSpace(m); !slices.Contains(lines, line) {
			lines = append(lines, line)
		}
	}
	return lines
}

// EnsureNamespace creates namespace ns if it is missing.
func EnsureNamespace(ctx context.Context, env *harness.Env, ns string) error {
	clients, err := env.Clientset()
	if err != nil {
		return err
	}
	_, err = clients.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// Random returns prefix-<16 hex digits>: values no log could contain by
// chance, so the leak scan means something.
func Random(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// withoutEngineRPCLines drops the lines in which the pulumi engine, at
// -v=9, dumps the properties it marshals over RPC: they include the
// secrets the user configured (the stack's own config), whatever provider
// runs. Values fetched from a backend never pass through them.
func withoutEngineRPCLines(out string) string {
	var kept []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "arshaling property for RPC[") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}
