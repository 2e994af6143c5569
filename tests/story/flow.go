package story

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// Flow is one seed flow on the node bed: a program whose ExternalSecret
// syncs a Secret that an application Deployment reads, driven through the
// pulumi CLI with ESO running as pods.
type Flow struct {
	// Program is the program's directory; Namespace the app's namespace.
	Program   string
	Namespace string
	// Config and SecretConfig are the stack's configuration (the app
	// namespace and ESO's chart and CRDs are set as well).
	Config, SecretConfig map[string]string
	// CLIEnv is extra environment for the pulumi CLI and the provider.
	CLIEnv []string
	// Secret is the synced Secret; Env maps the app's variables to its
	// keys (or to "secret:key", see App).
	Secret string
	Env    map[string]string
	// Want is what the app must serve (variable -> value) after the first up.
	Want map[string]string
	// Rotate changes the backend and returns what the app must serve after
	// the next up and rollout.
	Rotate func(ctx context.Context) (map[string]string, error)
	// Fetched are further backend values for the leak scan (Want's values
	// are always searched); Inputs the secrets configured in the stack.
	Fetched, Inputs []string
}

// Report is what a flow observed.
type Report struct {
	// Steps are the timed actions in order.
	Steps []Step
	// OperatorWaits are the Operator's lines about its waits in the first
	// up (Deployments Available, webhook answering).
	OperatorWaits []string
	// Up, Refresh and Heal are the resource summaries of the first up, the
	// refresh after the rotation and the up after it.
	Up, Refresh, Heal string
	// LeakScan says what the leak scan searched.
	LeakScan string
}

// Run drives the flow: up (which installs ESO) → the app pod serves Want →
// Rotate → refresh reports drift → up → dataHash changed → the app rolls
// with it → the new pod serves the rotated values → a second up changes
// nothing → leak scan → destroy. Any broken promise is an error.
func (f *Flow) Run(ctx context.Context, env *harness.Env, work string, logf func(string, ...any)) (*Report, error) {
	r := &Report{}
	fetched := append(slices.Collect(maps.Values(f.Want)), f.Fetched...)
	if err := EnsureNamespace(ctx, env, f.Namespace); err != nil {
		return nil, err
	}
	stack, err := NewStack(ctx, env, work, f.Program, logf)
	if err != nil {
		return nil, err
	}
	stack.Pulumi.Env = append(stack.Pulumi.Env, f.CLIEnv...)
	chart, crds, err := ESOChart()
	if err != nil {
		return nil, err
	}
	config := map[string]string{"appNamespace": f.Namespace, "esoChart": chart, "esoCrds": crds}
	maps.Copy(config, f.Config)
	if err := stack.Config(ctx, config, f.SecretConfig); err != nil {
		return nil, err
	}
	// Whatever fails from here on, the stack is destroyed, so the next flow
	// on the same node bed finds no ESO release or app left behind.
	destroyed := false
	defer func() {
		if !destroyed {
			_, _ = stack.Run(context.WithoutCancel(ctx), "destroy", "--yes", "--skip-preview")
		}
	}()
	out, err := stack.Run(ctx, append([]string{"up"}, verbose...)...)
	if err != nil {
		return nil, err
	}
	r.OperatorWaits, r.Up = OperatorWaits(out), summary(out)
	logf("pulumi up (installs ESO as pods, then the store and the ExternalSecret): %s", r.Up)
	for _, l := range r.OperatorWaits {
		logf("  Operator: %s", l)
	}
	hash1, err := stackString(ctx, stack, "dataHash")
	if err != nil {
		return nil, err
	}
	clients, err := env.Clientset()
	if err != nil {
		return nil, err
	}
	app := &App{Clients: clients, Namespace: f.Namespace, Name: "app", Secret: f.Secret, Env: f.Env}
	began := time.Now()
	if err := app.Deploy(ctx); err != nil {
		return nil, err
	}
	r.Steps = append(r.Steps, Step{Name: "app Deployment ready", Took: time.Since(began)})
	if err := expectEnv(ctx, app, f.Want, logf); err != nil {
		return nil, err
	}

	want, err := f.Rotate(ctx)
	if err != nil {
		return nil, err
	}
	fetched = append(fetched, slices.Collect(maps.Values(want))...)
	if out, err = stack.Run(ctx, "refresh", "--yes", "--skip-preview"); err != nil {
		return nil, err
	}
	r.Refresh = summary(out)
	logf("pulumi refresh after the backend changed: %s", r.Refresh)
	if !strings.Contains(out, "updated") {
		return nil, fmt.Errorf("refresh after the backend changed reports no drift:\n%s", out)
	}
	if out, err = stack.Run(ctx, "up", "--yes", "--skip-preview"); err != nil {
		return nil, err
	}
	r.Heal = summary(out)
	logf("pulumi up: %s", r.Heal)
	hash2, err := stackString(ctx, stack, "dataHash")
	if err != nil {
		return nil, err
	}
	if hash2 == "" || hash2 == hash1 {
		return nil, fmt.Errorf("dataHash did not change with the content (%q -> %q)", hash1, hash2)
	}
	began = time.Now()
	pod, err := app.Roll(ctx, hash2)
	if err != nil {
		return nil, err
	}
	r.Steps = append(r.Steps, Step{Name: "app rolled to the new dataHash", Took: time.Since(began)})
	logf("app rolled with %s=%s: new pod %s", DataHashAnnotation, hash2, pod)
	if err := expectEnv(ctx, app, want, logf); err != nil {
		return nil, err
	}
	if out, err = stack.Run(ctx, "up", "--yes", "--skip-preview"); err != nil {
		return nil, err
	}
	if strings.Contains(out, "updated") || strings.Contains(out, "created") {
		return nil, fmt.Errorf("a second up changed something:\n%s", out)
	}
	logf("second pulumi up: %s", summary(out))
	if err := TwoRefreshes(ctx, stack, logf); err != nil {
		return nil, err
	}

	if r.LeakScan, err = stack.LeakScan(ctx, fetched, f.Inputs); err != nil {
		return nil, err
	}
	logf("leak scan: %s", r.LeakScan)
	if err := app.Delete(ctx); err != nil {
		return nil, err
	}
	destroyed = true
	if out, err = stack.Run(ctx, "destroy", "--yes", "--skip-preview"); err != nil {
		return nil, err
	}
	logf("pulumi destroy: %s", summary(out))
	r.Steps = append(stack.Steps, r.Steps...)
	return r, nil
}

// TwoRefreshes runs `pulumi refresh` twice and then `refresh
// --preview-only` (what Pulumi Cloud's scheduled drift detection runs)
// with nothing changed in between: the second refresh and the preview
// must report no change, or a volatile output would alarm users on every
// scheduled run.
func TwoRefreshes(ctx context.Context, stack *Stack, logf func(string, ...any)) error {
	var summaries []string
	for i, args := range [][]string{{"refresh", "--yes", "--skip-preview"}, {"refresh", "--yes", "--skip-preview"}, {"refresh", "--preview-only"}} {
		out, err := stack.Run(ctx, args...)
		if err != nil {
			return err
		}
		summaries = append(summaries, summary(out))
		if i > 0 && (strings.Contains(out, "updated") || strings.Contains(out, "to update") || strings.Contains(out, "deleted")) {
			return fmt.Errorf("`pulumi %s` after a refresh with nothing changed reports changes:\n%s", strings.Join(args, " "), out)
		}
	}
	logf("two refreshes in a row, then refresh --preview-only: %s", strings.Join(summaries, " | "))
	return nil
}

// stackString is a string output of the stack.
func stackString(ctx context.Context, s *Stack, name string) (string, error) {
	outputs, err := s.Outputs(ctx)
	if err != nil {
		return "", err
	}
	v, _ := outputs[name].(string)
	return v, nil
}

// expectEnv reads the app pod's environment over HTTP and compares it.
func expectEnv(ctx context.Context, app *App, want map[string]string, logf func(string, ...any)) error {
	got, pod, err := app.Served(ctx)
	if err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(want))
	for _, k := range keys {
		if got[k] != want[k] {
			return fmt.Errorf("pod %s serves %s that is not the backend's current value", pod, k)
		}
	}
	logf("pod %s serves /env with %s = the backend's current values", pod, strings.Join(keys, ", "))
	return nil
}

// summary is the resource-count line of a pulumi command's output.
func summary(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "Resources:" {
			var parts []string
			for _, next := range lines[i+1:] {
				next = strings.TrimSpace(next)
				if next == "" {
					break
				}
				parts = append(parts, next)
			}
			return strings.Join(parts, ", ")
		}
	}
	return "(no resource summary)"
}

// ESOChart is ESO's chart and CRD bundle from the module go.mod pins.
func ESOChart() (chart, crds string, err error) {
	if chart, err = harness.ESOChartDir(); err != nil {
		return "", "", err
	}
	crds, err = harness.ESOCRDBundle()
	return chart, crds, err
}
