package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/esosync/pulumi-esosync/tests/escserver"
	"github.com/esosync/pulumi-esosync/tests/harness"
	"github.com/esosync/pulumi-esosync/tests/story"
)

// The fault table's world: tests/node/testdata/faults and what it reads.
const (
	faultNS    = "node-faults"
	faultCreds = "faults-creds" // the stores' credentials (an existing Secret)
	faultRound = "esosync.io/fault-round"
	// ESO as the Operator installs it (release external-secrets).
	faultESONS          = "external-secrets"
	faultControllerPods = "app.kubernetes.io/name=external-secrets,app.kubernetes.io/instance=external-secrets"
	faultWebhookPods    = "app.kubernetes.io/name=external-secrets-webhook,app.kubernetes.io/instance=external-secrets"
	faultWebhookDeploy  = "external-secrets-webhook"
	// faultESCOrg is ${pulumi.organization} on a DIY backend.
	faultESCOrg     = "organization"
	faultESCProject = "faults"
	// faultUpLimit bounds a faulted `pulumi up`; the CLI is killed after it.
	faultUpLimit = 8 * time.Minute
)

// faultBackends are the program's backends; each holds one remote secret
// {"password": ...} that two ExternalSecrets extract.
var faultBackends = []string{"vault", "aws", "esc"}

// faultTargets are the program's target Secrets: per backend one synced
// by the ESO controller (-ctl) and one by the provider (-prv).
var faultTargets = []string{"vault-ctl", "vault-prv", "aws-ctl", "aws-prv", "esc-ctl", "esc-prv"}

// faultResources are the esosync resources the program's state must hold.
var faultResources = map[string]int{"esosync:index:Operator": 1, "esosync:index:ClusterSecretStore": 3, "esosync:index:ExternalSecret": 6}

// TestFaultTable survives a table of faults on the node bed and prints the
// table. Each row bumps the program's round and writes new values to every
// backend, snapshots the six target Secrets, injects its fault (before
// `pulumi up`, or once the up is writing the round's ExternalSecrets),
// records what the user saw, checks that every Secret holds either its old
// bytes or the new values (never half-written, never deleted) and that the
// state is consistent (export parses, holds every resource, preview plans
// no create, delete or replace), removes the fault and runs `pulumi up`
// again: healed means that up succeeds, every Secret holds the backend's
// current values and `pulumi preview --expect-no-changes` passes.
func TestFaultTable(t *testing.T) {
	env := harness.Shared(t)
	ctx := t.Context()
	b := newFaultBed(t, env)
	var rows []faultRow
	for _, f := range faultCases() {
		r := b.run(ctx, f)
		b.logf("row %q: saw: %s; intact: %s; state: %s; healed: %s", r.fault, r.saw, r.intact, r.state, r.healed)
		rows = append(rows, r)
	}
	printFaultTable(b.logf, rows)
	for _, r := range rows {
		if len(r.problems) > 0 {
			t.Errorf("%s: %s", r.fault, strings.Join(r.problems, "; "))
		}
	}
}

// faultCase is one fault of the table.
type faultCase struct {
	name string
	// before injects the fault before the up starts.
	before func(b *faultBed, ctx context.Context) error
	// during injects it once the up has written an ExternalSecret of this
	// round; it returns a note on what it did.
	during func(b *faultBed, ctx context.Context, up *runningUp) (string, error)
	// clear removes the fault (nil: nothing to remove).
	clear func(b *faultBed, ctx context.Context) error
	// up replaces the first stack's faulted up (and the round bump).
	up func(b *faultBed, ctx context.Context) upResult
	// check is a further check after the faulted up; an error is lost data.
	check func(b *faultBed, ctx context.Context) error
	// wantError, if set, is text the faulted up must fail with.
	wantError string
}

// faultCases are the table's rows, in order.
func faultCases() []faultCase {
	return []faultCase{
		{name: "ESO controller pod deleted during up", during: (*faultBed).deleteControllerPod, clear: (*faultBed).controllerBack},
		{name: "kube-apiserver restarted during up", during: (*faultBed).restartAPIServer, clear: (*faultBed).controllerBack},
		{name: "Vault sealed", before: (*faultBed).sealVault, clear: (*faultBed).unsealVault},
		{name: "moto (AWS) stopped", before: (*faultBed).stopMoto, clear: (*faultBed).startMoto},
		{name: "ESC endpoint answers 500", before: (*faultBed).escFails, clear: (*faultBed).escServes},
		{name: "ESO webhook pod down", before: (*faultBed).webhookDown, clear: (*faultBed).webhookUp},
		{name: "provider SIGKILLed during up, up again", during: (*faultBed).killProvider},
		{name: "second stack targets the same Secret", up: (*faultBed).secondStackUp, clear: (*faultBed).secondStackGone,
			check: (*faultBed).noIntruder, wantError: "is not managed by this ExternalSecret"},
	}
}

// faultRow is one printed row.
type faultRow struct {
	fault, saw, intact, state, healed string
	// problems fail the test: data lost or not healed.
	problems []string
}

// failed ends a row early.
func (r faultRow) failed(format string, args ...any) faultRow {
	msg := fmt.Sprintf(format, args...)
	r.problems = append(r.problems, msg)
	r.healed = "NO: " + msg
	return r
}

// faultBed is the running program and everything the faults act on.
type faultBed struct {
	t        *testing.T
	env      *harness.Env
	logf     func(format string, args ...any)
	clients  *kubernetes.Clientset
	dyn      dynamic.Interface
	vault    *vaultapi.Client
	esc      *escserver.Server
	front    *escserver.Faulty // the ESC URL the program uses
	escToken string
	stack    *story.Stack
	second   *story.Stack // the second stack, while it exists
	round    int
	values   map[string]string // backend -> the password it holds now
}

// newFaultBed seeds the backends and the credentials Secret, starts the
// ESC endpoint, and runs the first `pulumi up` (which installs ESO); the
// stack is destroyed in t.Cleanup.
func newFaultBed(t *testing.T, env *harness.Env) *faultBed {
	t.Helper()
	ctx := t.Context()
	b := &faultBed{t: t, env: env, logf: report(t), values: map[string]string{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	b.clients, err = env.Clientset()
	must(err)
	cfg, err := env.RESTConfig()
	must(err)
	b.dyn, err = dynamic.NewForConfig(cfg)
	must(err)
	b.vault, err = env.VaultClient()
	must(err)
	b.esc, err = escserver.Start(env.ListenHost + ":0")
	must(err)
	t.Cleanup(func() { _ = b.esc.Close() })
	b.front, err = b.esc.StartFaulty(env.ListenHost + ":0")
	must(err)
	t.Cleanup(func() { _ = b.front.Close() })
	b.escToken = story.Random("pul-eso")
	b.esc.AddToken(b.escToken)
	must(story.EnsureNamespace(ctx, env, faultNS))
	must(b.writeCreds(ctx))
	t.Cleanup(func() {
		_ = b.clients.CoreV1().Secrets(faultNS).Delete(context.Background(), faultCreds, metav1.DeleteOptions{})
	})
	for _, backend := range faultBackends {
		must(b.seed(ctx, backend, story.Random(backend+"-r0")))
	}
	b.stack, err = story.NewStack(ctx, env, t.TempDir(), filepath.Join("testdata", "faults"), b.logf)
	must(err)
	b.stack.Pulumi.Env = append(b.stack.Pulumi.Env,
		"AWS_SECRETSMANAGER_ENDPOINT="+env.AWSEndpoint, "AWS_STS_ENDPOINT="+env.AWSEndpoint)
	chart, crds, err := story.ESOChart()
	must(err)
	must(b.stack.Config(ctx, map[string]string{
		"appNamespace": faultNS, "credsSecret": faultCreds, "round": "r0", "esoChart": chart, "esoCrds": crds,
		"vaultAddress": env.VaultAddr, "awsEndpoint": env.AWSEndpoint, "awsRegion": env.AWSRegion, "escApiUrl": b.front.URL(),
	}, nil))
	t.Cleanup(b.destroy)
	if out, err := b.stack.Run(ctx, "up", "--yes", "--skip-preview"); err != nil {
		t.Fatalf("the first up: %s\n%s", firstError(out), out)
	}
	if stale := b.stale(ctx); len(stale) > 0 {
		t.Fatalf("after the first up: %s", strings.Join(stale, "; "))
	}
	b.logf("first up done: ESO as pods, 3 stores, 6 ExternalSecrets, 6 Secrets current")
	return b
}

// destroy removes the stack (pending operations first, so nothing blocks it).
func (b *faultBed) destroy() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_ = clearPending(ctx, b.stack)
	if _, err := b.stack.Run(ctx, "destroy", "--yes", "--skip-preview"); err != nil {
		b.t.Errorf("destroying the fault stack: %v", err)
	}
}

// run plays one row: round, snapshot, fault and up, checks, removal, heal.
func (b *faultBed) run(ctx context.Context, f faultCase) faultRow {
	r := faultRow{fault: f.name}
	b.logf("fault %q: begins", f.name)
	if f.up == nil {
		if err := b.nextRound(ctx); err != nil {
			return r.failed("starting round %d: %v", b.round, err)
		}
	}
	before, err := b.snapshot(ctx)
	if err != nil {
		return r.failed("snapshot: %v", err)
	}
	cleared := f.clear == nil
	defer func() {
		if !cleared {
			if err := f.clear(b, context.WithoutCancel(ctx)); err != nil {
				b.t.Errorf("%s: removing the fault: %v", f.name, err)
			}
		}
	}()
	res := b.faultedUp(ctx, f)
	r.saw = res.saw()
	b.logf("fault %q: %s; %s", f.name, res.note, r.saw)
	b.t.Logf("output of the faulted up:\n%s", res.out)
	if res.injectErr != nil {
		r.problems = append(r.problems, "injecting the fault: "+res.injectErr.Error())
	}
	if f.wantError != "" && (res.err == nil || !strings.Contains(res.out, f.wantError)) {
		r.problems = append(r.problems, fmt.Sprintf("the up did not fail with %q", f.wantError))
	}
	var lost []string
	r.intact, lost = b.checkIntact(ctx, before)
	if f.check != nil {
		if err := f.check(b, ctx); err != nil {
			r.intact, lost = "NO: "+err.Error(), append(lost, err.Error())
		}
	}
	r.problems = append(r.problems, lost...)
	st, exportErr := exportState(ctx, b.stack)
	if !cleared {
		cleared = true
		if err := f.clear(b, ctx); err != nil {
			return r.failed("removing the fault: %v", err)
		}
	}
	r.state = b.checkState(ctx, st, exportErr)
	r.healed = b.heal(ctx, &r)
	return r
}

// nextRound writes new values to every backend and bumps the round.
func (b *faultBed) nextRound(ctx context.Context) error {
	b.round++
	for _, backend := range faultBackends {
		if err := b.seed(ctx, backend, story.Random(fmt.Sprintf("%s-r%d", backend, b.round))); err != nil {
			return err
		}
	}
	return b.stack.Config(ctx, map[string]string{"round": b.roundValue()}, nil)
}

// roundValue is the round as the program's config and annotation carry it.
func (b *faultBed) roundValue() string { return "r" + strconv.Itoa(b.round) }

// seed makes value the password the backend holds.
func (b *faultBed) seed(ctx context.Context, backend, value string) error {
	var err error
	switch backend {
	case "vault":
		_, err = b.vault.KVv2("secret").Put(ctx, "faults/app", map[string]any{"password": value})
	case "aws":
		err = b.env.PutAWSSecret(ctx, "faults-app", fmt.Sprintf(`{"password":%q}`, value), nil)
	case "esc":
		err = b.esc.SetEnvironment(faultESCOrg, faultESCProject, "app", fmt.Sprintf("values:\n  app:\n    password: %q\n", value))
	default:
		err = fmt.Errorf("unknown backend %q", backend)
	}
	if err != nil {
		return fmt.Errorf("seeding %s: %w", backend, err)
	}
	b.values[backend] = value
	return nil
}

// writeCreds writes the stores' credentials Secret from the bed's
// current credentials.
func (b *faultBed) writeCreds(ctx context.Context) error {
	data := map[string][]byte{
		"vaultToken":         []byte(b.env.VaultToken),
		"awsAccessKeyId":     []byte(b.env.AWSAccessKeyID),
		"awsSecretAccessKey": []byte(b.env.AWSSecretAccessKey),
		"escToken":           []byte(b.escToken),
	}
	secrets := b.clients.CoreV1().Secrets(faultNS)
	cur, err := secrets.Get(ctx, faultCreds, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: faultCreds}, Data: data}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cur.Data = data
	_, err = secrets.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// ---- the faulted up ----

// upResult is how a `pulumi up` ended.
type upResult struct {
	out       string
	err       error
	took      time.Duration
	note      string // how the fault met the up
	injectErr error  // the fault could not be injected
}

// saw is what the user saw: the outcome and the first error line.
func (u upResult) saw() string {
	if u.injectErr != nil && u.out == "" {
		return "the fault could not be injected: " + u.injectErr.Error()
	}
	if u.err == nil {
		return fmt.Sprintf("up succeeded (%.1fs)", u.took.Seconds())
	}
	code := -1
	var exit *exec.ExitError
	if errors.As(u.err, &exit) {
		code = exit.ExitCode()
	}
	return fmt.Sprintf("up failed, exit %d (%.1fs): %s", code, u.took.Seconds(), firstError(u.out))
}

// runningUp is a `pulumi up` of the stack running in the background.
type runningUp struct {
	cmd          *exec.Cmd
	out          bytes.Buffer
	began, ended time.Time
	done         chan struct{}
	err          error
}

// startUp starts `pulumi up` of s without waiting for it.
func startUp(ctx context.Context, s *story.Stack) (*runningUp, error) {
	u := &runningUp{began: time.Now(), done: make(chan struct{})}
	u.cmd = exec.CommandContext(ctx, s.Pulumi.Bin, "up", "--yes", "--skip-preview")
	u.cmd.Dir, u.cmd.Env = s.Dir, s.Pulumi.Environ()
	u.cmd.Stdout, u.cmd.Stderr = &u.out, &u.out
	if err := u.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		u.err = u.cmd.Wait()
		u.ended = time.Now()
		close(u.done)
	}()
	return u, nil
}

// running reports whether the up has not ended yet.
func (u *runningUp) running() bool {
	select {
	case <-u.done:
		return false
	default:
		return true
	}
}

// wait waits for the up to end; after limit it kills the CLI by its PID.
func (u *runningUp) wait(limit time.Duration) upResult {
	note := ""
	select {
	case <-u.done:
	case <-time.After(limit):
		_ = u.cmd.Process.Kill()
		<-u.done
		note = fmt.Sprintf("the CLI was killed after %s", limit)
	}
	return upResult{out: u.out.String(), err: u.err, took: u.ended.Sub(u.began), note: note}
}

// faultedUp injects f around the first stack's up (or runs f.up instead).
func (b *faultBed) faultedUp(ctx context.Context, f faultCase) upResult {
	if f.up != nil {
		return f.up(b, ctx)
	}
	if f.before != nil {
		if err := f.before(b, ctx); err != nil {
			return upResult{err: err, injectErr: err}
		}
	}
	up, err := startUp(ctx, b.stack)
	if err != nil {
		return upResult{err: err}
	}
	note, injectErr := "fault in place for the whole up", error(nil)
	if f.during != nil {
		note, injectErr = "not injected", errors.New("the up ended before it wrote an ExternalSecret of this round")
		if b.waitRoundWritten(ctx, up) {
			at := time.Since(up.began)
			note, injectErr = f.during(b, ctx, up)
			note = fmt.Sprintf("%s %.1fs into the up (up still running afterwards: %v)", note, at.Seconds(), up.running())
		}
	}
	res := up.wait(faultUpLimit)
	res.note, res.injectErr = strings.TrimPrefix(res.note+"; "+note, "; "), injectErr
	return res
}

// waitRoundWritten waits until an ExternalSecret carries this round's
// annotation: the up is under way and its provider is syncing. It reports
// false if the up ended first.
func (b *faultBed) waitRoundWritten(ctx context.Context, up *runningUp) bool {
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline) && up.running(); {
		list, err := b.dyn.Resource(externalSecrets).Namespace(faultNS).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, es := range list.Items {
				if es.GetAnnotations()[faultRound] == b.roundValue() {
					return up.running()
				}
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// ---- checks ----

// secretData reads a target Secret, retrying errors other than not found
// (the API server may be coming back).
func (b *faultBed) secretData(ctx context.Context, name string) (map[string][]byte, bool, error) {
	var err error
	for range 20 {
		var s *corev1.Secret
		s, err = b.clients.CoreV1().Secrets(faultNS).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		if err == nil {
			return s.Data, true, nil
		}
		time.Sleep(time.Second)
	}
	return nil, false, err
}

// snapshot is every target Secret's data (nil when it does not exist).
func (b *faultBed) snapshot(ctx context.Context) (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	for _, name := range faultTargets {
		data, _, err := b.secretData(ctx, name)
		if err != nil {
			return nil, err
		}
		out[name] = data
	}
	return out, nil
}

// intended is what target name holds when it is current.
func (b *faultBed) intended(name string) map[string][]byte {
	backend, _, _ := strings.Cut(name, "-")
	return map[string][]byte{"password": []byte(b.values[backend])}
}

// sameData reports whether two Secrets' data are byte-identical.
func sameData(a, b map[string][]byte) bool { return maps.EqualFunc(a, b, bytes.Equal) }

// checkIntact compares every target Secret with its snapshot and with the
// new values; anything else is lost data.
func (b *faultBed) checkIntact(ctx context.Context, before map[string]map[string][]byte) (string, []string) {
	var lost []string
	unchanged, current := 0, 0
	for _, name := range faultTargets {
		data, found, err := b.secretData(ctx, name)
		switch {
		case err != nil:
			lost = append(lost, fmt.Sprintf("%s unreadable: %v", name, err))
		case !found:
			lost = append(lost, name+" deleted")
		case sameData(data, before[name]):
			unchanged++
		case sameData(data, b.intended(name)):
			current++
		default:
			lost = append(lost, name+" holds neither its old bytes nor the new values")
		}
	}
	if len(lost) > 0 {
		return "NO: " + strings.Join(lost, "; "), lost
	}
	return fmt.Sprintf("yes (%d new, %d old)", current, unchanged), nil
}

// stale lists the target Secrets that do not hold the backends' values.
func (b *faultBed) stale(ctx context.Context) []string {
	var out []string
	for _, name := range faultTargets {
		data, found, err := b.secretData(ctx, name)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("%s unreadable: %v", name, err))
		case !found:
			out = append(out, name+" missing")
		case !sameData(data, b.intended(name)):
			out = append(out, name+" not current")
		}
	}
	return out
}

// exportedState is what the checks read of `pulumi stack export`.
type exportedState struct {
	Deployment struct {
		Resources []struct {
			URN  string `json:"urn"`
			Type string `json:"type"`
		} `json:"resources"`
		PendingOperations []json.RawMessage `json:"pending_operations"`
	} `json:"deployment"`
}

// exportPath is where the stack's export is written (beside its program).
func exportPath(s *story.Stack) string { return filepath.Join(filepath.Dir(s.Dir), "export.json") }

// exportState exports s's state to a file and parses it.
func exportState(ctx context.Context, s *story.Stack) (*exportedState, error) {
	if out, err := s.Pulumi.Run(ctx, s.Dir, "stack", "export", "--file", exportPath(s)); err != nil {
		return nil, fmt.Errorf("stack export: %s", firstError(out))
	}
	data, err := os.ReadFile(exportPath(s))
	if err != nil {
		return nil, err
	}
	var st exportedState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("stack export does not parse: %w", err)
	}
	return &st, nil
}

// countTypes counts the state's resources by type.
func (st *exportedState) countTypes() map[string]int {
	n := map[string]int{}
	for _, r := range st.Deployment.Resources {
		n[r.Type]++
	}
	return n
}

// clearPending removes the pending operations from s's state (export,
// drop pending_operations, import), as a user would after a crash.
func clearPending(ctx context.Context, s *story.Stack) error {
	if out, err := s.Pulumi.Run(ctx, s.Dir, "stack", "export", "--file", exportPath(s)); err != nil {
		return fmt.Errorf("stack export: %s", firstError(out))
	}
	data, err := os.ReadFile(exportPath(s))
	if err != nil {
		return err
	}
	var doc, deployment map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	if err := json.Unmarshal(doc["deployment"], &deployment); err != nil {
		return fmt.Errorf("stack export has no deployment: %w", err)
	}
	if _, ok := deployment["pending_operations"]; !ok {
		return nil
	}
	delete(deployment, "pending_operations")
	if doc["deployment"], err = json.Marshal(deployment); err != nil {
		return err
	}
	if data, err = json.Marshal(doc); err != nil {
		return err
	}
	if err := os.WriteFile(exportPath(s), data, 0o600); err != nil {
		return err
	}
	if out, err := s.Pulumi.Run(ctx, s.Dir, "stack", "import", "--file", exportPath(s)); err != nil {
		return fmt.Errorf("stack import: %s", firstError(out))
	}
	return nil
}

// checkState judges the state the faulted up left (st, read while the
// fault was in place): it parses and holds every resource; pending
// operations are cleared; then a preview, with the fault removed, must
// plan no create, delete or replace.
func (b *faultBed) checkState(ctx context.Context, st *exportedState, exportErr error) string {
	if exportErr != nil {
		return "NO: " + exportErr.Error()
	}
	counts := st.countTypes()
	for typ, want := range faultResources {
		if counts[typ] != want {
			return fmt.Sprintf("NO: state holds %d %s, want %d", counts[typ], typ, want)
		}
	}
	var notes []string
	if n := len(st.Deployment.PendingOperations); n > 0 {
		if err := clearPending(ctx, b.stack); err != nil {
			return fmt.Sprintf("NO: %d pending operation(s) could not be cleared: %v", n, err)
		}
		notes = append(notes, fmt.Sprintf("%d pending op(s) cleared", n))
	}
	out, err := b.stack.Run(ctx, "preview")
	if err != nil {
		return "NO: preview failed: " + firstError(out)
	}
	plan := planned(out)
	for _, bad := range []string{"to create", "to delete", "to replace"} {
		if strings.Contains(plan, bad) {
			return "NO: preview plans " + plan
		}
	}
	return "yes (" + strings.Join(append(notes, "preview: "+plan), ", ") + ")"
}

// heal runs `pulumi up` with the fault removed and checks that it healed.
func (b *faultBed) heal(ctx context.Context, r *faultRow) string {
	began := time.Now()
	out, err := b.stack.Run(ctx, "up", "--yes", "--skip-preview")
	took := time.Since(began)
	if err != nil {
		b.t.Logf("output of the healing up:\n%s", out)
		msg := "up failed: " + firstError(out)
		r.problems = append(r.problems, "not healed: "+msg)
		return "NO: " + msg
	}
	if stale := b.stale(ctx); len(stale) > 0 {
		msg := strings.Join(stale, "; ")
		r.problems = append(r.problems, "not healed: "+msg)
		return "NO: " + msg
	}
	if out, err := b.stack.Run(ctx, "preview", "--expect-no-changes", "--diff"); err != nil {
		b.t.Logf("output of the preview after the heal:\n%s", out)
		if exp, err := b.stack.Run(ctx, "stack", "export"); err == nil {
			b.t.Logf("state after the heal:\n%s", exp)
		}
		msg := "preview after the heal plans " + planned(out)
		r.problems = append(r.problems, "not healed: "+msg)
		return "NO: " + msg
	}
	return fmt.Sprintf("yes (%.1fs)", took.Seconds())
}

// firstError is the first `error:` line of a pulumi command's output,
// preferring a resource's error to the closing "update failed".
func firstError(out string) string {
	fallback := "(no error line)"
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		msg, ok := strings.CutPrefix(strings.TrimSpace(line), "error: ")
		if !ok {
			continue
		}
		msg = strings.Join(strings.Fields(msg), " ")
		if msg == "update failed" || msg == "preview failed" {
			fallback = msg
			continue
		}
		// pulumi-go-provider lists a resource's errors under "1 error
		// occurred:"; the error itself is on the next line.
		if strings.HasSuffix(msg, "occurred:") && i+1 < len(lines) {
			msg = strings.TrimPrefix(strings.Join(strings.Fields(lines[i+1]), " "), "* ")
		}
		return msg
	}
	return fallback
}

// planned is the change lines of a preview's resource summary.
func planned(out string) string {
	lines := strings.Split(out, "\n")
	var changes []string
	for i, l := range lines {
		if strings.TrimSpace(l) != "Resources:" {
			continue
		}
		for _, next := range lines[i+1:] {
			next = strings.TrimSpace(next)
			if next == "" {
				break
			}
			if strings.Contains(next, " to ") {
				changes = append(changes, strings.Join(strings.Fields(next), " "))
			}
		}
	}
	if len(changes) == 0 {
		return "no changes"
	}
	return strings.Join(changes, ", ")
}

// printFaultTable prints the rows with fixed-width columns.
func printFaultTable(logf func(string, ...any), rows []faultRow) {
	line := func(a, b, c, d, e string) string {
		return fmt.Sprintf("%-38s | %-120s | %-18s | %-40s | %s", clip(a, 38), clip(b, 120), clip(c, 18), clip(d, 40), e)
	}
	logf("fault table:")
	logf("%s", line("fault", "what the user saw", "Secrets intact", "state consistent", "healed"))
	logf("%s", strings.Repeat("-", 38)+"-+-"+strings.Repeat("-", 120)+"-+-"+strings.Repeat("-", 18)+"-+-"+strings.Repeat("-", 40)+"-+-"+strings.Repeat("-", 12))
	for _, r := range rows {
		logf("%s", line(r.fault, r.saw, r.intact, r.state, r.healed))
	}
}

// clip shortens s to n runes.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// ---- the faults ----

// deleteControllerPod deletes ESO's controller pod(s), as kubectl would.
func (b *faultBed) deleteControllerPod(ctx context.Context, _ *runningUp) (string, error) {
	pods := b.clients.CoreV1().Pods(faultESONS)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: faultControllerPods})
	if err != nil {
		return "", err
	}
	var names []string
	for _, p := range list.Items {
		if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			return "", err
		}
		names = append(names, p.Name)
	}
	if len(names) == 0 {
		return "", errors.New("no ESO controller pod to delete")
	}
	return "deleted pod " + strings.Join(names, ", "), nil
}

// controllerBack waits for one ready ESO controller pod and a webhook that
// answers.
func (b *faultBed) controllerBack(ctx context.Context) error {
	if err := b.waitPods(ctx, faultControllerPods, 1, 3*time.Minute); err != nil {
		return err
	}
	return b.waitWebhook(ctx)
}

// restartAPIServer stops kube-apiserver by PID and starts it again.
func (b *faultBed) restartAPIServer(ctx context.Context, _ *runningUp) (string, error) {
	gone, err := b.env.RestartAPIServer(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("restarted kube-apiserver (gone %.1fs)", gone.Seconds()), nil
}

// sealVault seals Vault (its data and tokens stay).
func (b *faultBed) sealVault(ctx context.Context) error { return b.env.SealVault(ctx) }

// unsealVault unseals Vault with the dev server's unseal key.
func (b *faultBed) unsealVault(ctx context.Context) error { return b.env.UnsealVault(ctx) }

// stopMoto stops moto by PID.
func (b *faultBed) stopMoto(context.Context) error { return b.env.StopMoto() }

// startMoto starts moto again (empty, with a new admin key), puts the new
// key into the credentials Secret and seeds the current value again.
func (b *faultBed) startMoto(ctx context.Context) error {
	if err := b.env.StartMoto(ctx); err != nil {
		return err
	}
	if err := b.writeCreds(ctx); err != nil {
		return err
	}
	return b.seed(ctx, "aws", b.values["aws"])
}

// escFails makes the ESC URL the program uses answer every request with 500.
func (b *faultBed) escFails(context.Context) error {
	b.front.Fail(http.StatusInternalServerError)
	return nil
}

// escServes makes the ESC URL serve again.
func (b *faultBed) escServes(context.Context) error {
	b.front.Fail(0)
	b.logf("ESC endpoint answered %d request(s) with 500", b.front.Failed())
	return nil
}

// webhookDown scales ESO's webhook to zero and waits until its pod is gone.
func (b *faultBed) webhookDown(ctx context.Context) error {
	if err := b.scaleWebhook(ctx, 0); err != nil {
		return err
	}
	return b.waitPods(ctx, faultWebhookPods, 0, 2*time.Minute)
}

// webhookUp scales ESO's webhook back to one and waits until it answers.
func (b *faultBed) webhookUp(ctx context.Context) error {
	if err := b.scaleWebhook(ctx, 1); err != nil {
		return err
	}
	if err := b.waitPods(ctx, faultWebhookPods, 1, 3*time.Minute); err != nil {
		return err
	}
	return b.waitWebhook(ctx)
}

// scaleWebhook sets the replicas of ESO's webhook Deployment.
func (b *faultBed) scaleWebhook(ctx context.Context, replicas int) error {
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas))
	_, err := b.clients.AppsV1().Deployments(faultESONS).Patch(ctx, faultWebhookDeploy, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// killProvider sends SIGKILL, by PID, to the esosync provider process(es)
// that the up's pulumi CLI started.
func (b *faultBed) killProvider(_ context.Context, up *runningUp) (string, error) {
	pids := providerPIDs(up.cmd.Process.Pid)
	if len(pids) == 0 {
		return "", errors.New("no esosync provider process below the pulumi CLI")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return "", fmt.Errorf("sending SIGKILL to pid %d: %w", pid, err)
		}
	}
	return fmt.Sprintf("SIGKILL to provider pid(s) %v", pids), nil
}

// secondStackUp creates a second stack whose ExternalSecret targets the
// Secret of the first stack's vault-prv, and runs its up.
func (b *faultBed) secondStackUp(ctx context.Context) upResult {
	s, err := story.NewStack(ctx, b.env, b.t.TempDir(), filepath.Join("testdata", "faults", "second"), b.logf)
	if err != nil {
		return upResult{err: err, injectErr: err}
	}
	b.second = s
	if err := s.Config(ctx, map[string]string{"appNamespace": faultNS, "storeName": "faults-vault", "targetName": "vault-prv"}, nil); err != nil {
		return upResult{err: err, injectErr: err}
	}
	began := time.Now()
	out, err := s.Run(ctx, "up", "--yes", "--skip-preview")
	return upResult{out: out, err: err, took: time.Since(began), note: "the second stack's up"}
}

// noIntruder checks that the second stack's failed create left nothing:
// no ExternalSecret in the cluster, none in its state.
func (b *faultBed) noIntruder(ctx context.Context) error {
	_, err := b.dyn.Resource(externalSecrets).Namespace(faultNS).Get(ctx, "intruder", metav1.GetOptions{})
	switch {
	case err == nil:
		return errors.New("the second stack's ExternalSecret intruder exists in the cluster")
	case !apierrors.IsNotFound(err):
		return err
	}
	if b.second == nil {
		return nil
	}
	st, err := exportState(ctx, b.second)
	if err != nil {
		return err
	}
	if n := st.countTypes()["esosync:index:ExternalSecret"]; n > 0 {
		return fmt.Errorf("the second stack's state holds %d ExternalSecret(s)", n)
	}
	return nil
}

// secondStackGone destroys the second stack and removes it.
func (b *faultBed) secondStackGone(ctx context.Context) error {
	s := b.second
	if s == nil {
		return nil
	}
	b.second = nil
	if _, err := s.Run(ctx, "destroy", "--yes", "--skip-preview"); err != nil {
		return err
	}
	_, err := s.Run(ctx, "stack", "rm", "--yes")
	return err
}

// ---- waits and processes ----

// waitPods waits until exactly want pods match selector in ESO's
// namespace, all Ready and none terminating.
func (b *faultBed) waitPods(ctx context.Context, selector string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		list, err := b.clients.CoreV1().Pods(faultESONS).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			ready := 0
			for i := range list.Items {
				if list.Items[i].DeletionTimestamp == nil && story.PodReady(&list.Items[i]) {
					ready++
				}
			}
			if len(list.Items) == want && ready == want {
				return nil
			}
			last = fmt.Sprintf("%d pod(s), %d ready", len(list.Items), ready)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pods %s: want %d ready, have %s", selector, want, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitWebhook waits until ESO's webhook itself denies an invalid
// ExternalSecret (a server-side dry run), not the API server's "no
// endpoints" or connection errors.
func (b *faultBed) waitWebhook(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	client := b.dyn.Resource(externalSecrets).Namespace(faultNS)
	for {
		invalid := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
			"metadata": map[string]any{"name": "webhook-probe", "namespace": faultNS},
			"spec": map[string]any{
				"secretStoreRef": map[string]any{"name": "none", "kind": "ClusterSecretStore"},
				"target":         map[string]any{"creationPolicy": "Merge", "deletionPolicy": "Delete"},
				"data":           []any{map[string]any{"secretKey": "k", "remoteRef": map[string]any{"key": "k"}}},
			},
		}}
		_, err := client.Create(ctx, invalid, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "denied the request") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the webhook of ESO does not answer: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// providerPIDs are the PIDs of esosync provider processes among the
// descendants of root, found by walking /proc.
func providerPIDs(root int) []int {
	parents := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After the command name in parentheses: state, then the parent's PID.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		if fields := strings.Fields(string(stat[i+1:])); len(fields) > 1 {
			parents[pid], _ = strconv.Atoi(fields[1])
		}
	}
	var pids []int
	for pid := range parents {
		if !descendsFrom(parents, pid, root) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if filepath.Base(argv0) == "pulumi-resource-"+harness.ProviderName {
			pids = append(pids, pid)
		}
	}
	return pids
}

// descendsFrom reports whether root is an ancestor of pid.
func descendsFrom(parents map[int]int, pid, root int) bool {
	for range 64 {
		pid = parents[pid]
		if pid == root {
			return true
		}
		if pid <= 1 {
			return false
		}
	}
	return false
}
