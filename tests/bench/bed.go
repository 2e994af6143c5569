package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// bed is the running test bed with what every phase shares.
type bed struct {
	cfg     config
	env     *harness.Env
	work    string
	pulumi  *harness.Pulumi
	kube    *kubernetes.Clientset
	vault   *harness.CountingProxy
	aws     *harness.CountingProxy
	modules string
	// values[j] is the password stored at remote key bench/key-j.
	values []string
	// esoTuned are the arguments the Operator's Deployment gives ESO.
	esoTuned []string
	esoEnv   []string
	esoMode  string // "" (stopped), "default" or "tuned"
	audit    int64  // audit log offset consumed so far
	// providerBusy is the grpc-timed phase's esosync busy time, by form.
	providerBusy map[string]time.Duration
}

// start brings up the test bed, seeds the backends and installs ESO and
// the stores with esosync.
func start(ctx context.Context, cfg config) (*bed, error) {
	work, err := os.MkdirTemp("", "esosync-bench-")
	if err != nil {
		return nil, err
	}
	b := &bed{cfg: cfg, work: work, providerBusy: map[string]time.Duration{}}
	b.env, err = harness.Start(ctx, harness.Options{Kubernetes: true, ControllerManager: true, Vault: true, AWS: true,
		AuditLog: true, Dir: filepath.Join(work, "bed"), Logf: func(f string, a ...any) { fmt.Printf("    "+f+"\n", a...) }})
	if err != nil {
		if b.env != nil {
			_ = b.env.Stop()
		}
		return nil, err
	}
	if err := b.prepare(ctx); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// stop stops everything by PID and removes the work directory.
func (b *bed) stop() {
	if b.vault != nil {
		_ = b.vault.Close()
	}
	if b.aws != nil {
		_ = b.aws.Close()
	}
	if err := b.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test bed:", err)
	}
	if b.cfg.keep {
		fmt.Println("work directory kept:", b.work)
		return
	}
	_ = os.RemoveAll(b.work)
}

func (b *bed) prepare(ctx context.Context) error {
	var err error
	if b.kube, err = b.env.Clientset(); err != nil {
		return err
	}
	b.vault, err = harness.StartCountingProxy(b.env.VaultAddr, vaultCall)
	if err != nil {
		return err
	}
	b.aws, err = harness.StartCountingProxy(b.env.AWSEndpoint, awsCall)
	if err != nil {
		return err
	}
	// ESO's AWS provider and esosync's read the same variables.
	b.esoEnv = []string{"AWS_SECRETSMANAGER_ENDPOINT=" + b.aws.URL, "AWS_STS_ENDPOINT=" + b.aws.URL}
	if err := b.seed(ctx); err != nil {
		return err
	}
	if b.pulumi, err = harness.NewPulumi(filepath.Join(b.work, "pulumi")); err != nil {
		return err
	}
	b.pulumi.Env = append([]string{"KUBECONFIG=" + b.env.Kubeconfig}, b.esoEnv...)
	if b.cfg.cli != "" {
		b.pulumi.Bin = b.cfg.cli // its language hosts and plugins stay the test bed's
	}
	if err := b.installPlugins(ctx); err != nil {
		return err
	}
	if b.modules, err = nodeModules(b.work); err != nil {
		return err
	}
	if err := b.installBase(ctx); err != nil {
		return err
	}
	// Phases count only their own API calls.
	info, err := os.Stat(b.env.AuditLogPath)
	if err != nil {
		return err
	}
	b.audit = info.Size()
	return nil
}

// caller names who sent a backend request, from its User-Agent: "" for
// esosync, which names itself, "floor " for the floor loop and "eso " for
// the ESO controller (the only other client of the proxies).
func caller(r *http.Request) string {
	ua := r.UserAgent()
	switch {
	case strings.Contains(ua, "pulumi-resource-esosync"), strings.Contains(ua, "app/esosync"):
		return ""
	case strings.Contains(ua, floorAgent):
		return "floor "
	}
	return "eso "
}

// vaultCall counts Vault requests: KV reads, logins and the rest, by caller.
func vaultCall(r *http.Request) string {
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/secret/data/"):
		return caller(r) + "vault.read"
	case strings.HasPrefix(r.URL.Path, "/v1/auth/"):
		return caller(r) + "vault.login"
	}
	return caller(r) + "vault." + strings.ToLower(r.Method) + " " + r.URL.Path
}

// awsCall counts AWS calls by operation and caller.
func awsCall(r *http.Request) string { return caller(r) + harness.AWSTarget(r) }

// seed writes M random passwords to Vault (KV v2 at secret/bench/key-j)
// and the same to AWS Secrets Manager (bench/key-j, JSON).
func (b *bed) seed(ctx context.Context) error {
	b.values = make([]string, b.cfg.m)
	sm := secretsmanager.NewFromConfig(b.env.AWSConfig())
	for j := range b.values {
		b.values[j] = randomHex(12)
		body, _ := json.Marshal(map[string]any{"data": map[string]string{"password": b.values[j]}})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/v1/secret/data/bench/key-%d", b.env.VaultAddr, j), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("X-Vault-Token", b.env.VaultToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("seeding Vault: %s", resp.Status)
		}
		secret := fmt.Sprintf(`{"password":%q}`, b.values[j])
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: ptr(fmt.Sprintf("bench/key-%d", j)), SecretString: &secret}); err != nil {
			return fmt.Errorf("seeding AWS: %w", err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// installPlugins installs esosync's and pulumi-kubernetes' plugins into
// the bench's PULUMI_HOME from the local binaries.
func (b *bed) installPlugins(ctx context.Context) error {
	binary, err := harness.ProviderBinary()
	if err != nil {
		return err
	}
	if err := b.pulumi.InstallProvider(ctx, binary); err != nil {
		return err
	}
	bin, err := harness.ToolsBin()
	if err != nil {
		return err
	}
	k8s := filepath.Join(bin, "pulumi-resource-kubernetes")
	if _, err := os.Stat(k8s); err != nil {
		return fmt.Errorf("pulumi-resource-kubernetes is missing (make tools): %w", err)
	}
	_, err = b.pulumi.Run(ctx, "", "plugin", "install", "resource", "kubernetes", "4.25.0", "--file", k8s)
	return err
}

// installBase installs ESO (its chart's RBAC and CRDs; the controller runs
// as a local process) and the stores, and reads how the Operator tunes ESO.
func (b *bed) installBase(ctx context.Context) error {
	chart, err := harness.ESOChartDir()
	if err != nil {
		return err
	}
	crds, err := harness.ESOCRDBundle()
	if err != nil {
		return err
	}
	dir := filepath.Join(b.work, "base")
	if err := writeYAMLProgram(dir, baseProgram(chart, crds, b.vault.URL)); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"stack", "init", "base"},
		{"config", "set", "--secret", "vaultToken", b.env.VaultToken},
		{"config", "set", "--secret", "awsAccessKeyId", b.env.AWSAccessKeyID},
		{"config", "set", "--secret", "awsSecretAccessKey", b.env.AWSSecretAccessKey},
		{"up", "--yes", "--skip-preview"},
	} {
		if _, err := b.pulumi.Run(ctx, dir, args...); err != nil {
			return err
		}
	}
	dep, err := b.kube.AppsV1().Deployments("external-secrets").Get(ctx, "external-secrets", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("the Operator's ESO Deployment: %w", err)
	}
	for _, arg := range dep.Spec.Template.Spec.Containers[0].Args {
		// Addresses are the harness's to choose on this host.
		if !strings.HasPrefix(arg, "--metrics-addr") && !strings.HasPrefix(arg, "--live-addr") {
			b.esoTuned = append(b.esoTuned, arg)
		}
	}
	fmt.Printf("    the Operator runs ESO with %s\n", strings.Join(b.esoTuned, " "))
	return nil
}

// eso runs the ESO controller as mode says: "default" (the chart's
// defaults), "tuned" (the Operator's Deployment's arguments) or "" (off).
func (b *bed) eso(ctx context.Context, mode string) error {
	if mode == b.esoMode {
		return nil
	}
	if err := b.env.StopESO(); err != nil {
		return err
	}
	b.esoMode = ""
	if mode == "" {
		return nil
	}
	opts := harness.ESOOptions{Env: b.esoEnv}
	if mode == "tuned" {
		opts.ExtraArgs = b.esoTuned
	}
	if _, err := b.env.StartESO(ctx, opts); err != nil {
		return err
	}
	b.esoMode = mode
	return nil
}

// esoPID is the running ESO controller's PID (0 when stopped).
func (b *bed) esoPID() int {
	for _, p := range b.env.Processes() {
		if p.Name == "eso" && !p.Exited() {
			return p.PID
		}
	}
	return 0
}

// namespace creates a fresh namespace for a phase.
func (b *bed) namespace(ctx context.Context, name string) error {
	_, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// current counts the Secrets es-0..es-N-1 in namespace that hold their
// remote key's current value.
func (b *bed) current(ctx context.Context, namespace string) (int, error) {
	list, err := b.kube.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	want := map[string]string{}
	for i := range b.cfg.n {
		want[fmt.Sprintf("es-%d", i)] = b.values[i%b.cfg.m]
	}
	n := 0
	for _, s := range list.Items {
		if v, ok := want[s.Name]; ok && string(s.Data["password"]) == v {
			n++
		}
	}
	return n, nil
}

// stackDir writes a TypeScript program for a phase and initializes its
// stack with config.
func (b *bed) stackDir(ctx context.Context, name, source string, config map[string]string) (string, error) {
	dir := filepath.Join(b.work, name)
	if err := writeTSProgram(dir, name, source, b.modules); err != nil {
		return "", err
	}
	if _, err := b.pulumi.Run(ctx, dir, "stack", "init", name); err != nil {
		return "", err
	}
	keys := slices.Sorted(maps.Keys(config))
	for _, k := range keys {
		args := []string{"config", "set", k, config[k]}
		if k == "vaultToken" {
			args = []string{"config", "set", "--secret", k, config[k]}
		}
		if _, err := b.pulumi.Run(ctx, dir, args...); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// enginePar is the engine's default parallelism on this machine (pulumi
// runs 4 steps per CPU at once unless --parallel says otherwise).
func enginePar() int { return 4 * runtime.NumCPU() }

// pulumiCmd runs `pulumi args...` in dir with extra environment, started
// so its process tree can be sampled; it returns once the command exits.
func (b *bed) pulumiCmd(ctx context.Context, dir string, extraEnv []string, onStart func(pid int), args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, b.pulumi.Bin, args...)
	cmd.Dir = dir
	cmd.Env = append(b.pulumi.Environ(), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	onStart(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		return out.String(), fmt.Errorf("pulumi %s: %w\n%s", strings.Join(args, " "), err, tailLines(out.String(), 40))
	}
	return out.String(), nil
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitCurrent polls until every Secret in namespace is current or the
// limit passes; it returns how long after since that was.
func (b *bed) waitCurrent(ctx context.Context, namespace string, since time.Time, limit time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(limit)
	for {
		n, err := b.current(ctx, namespace)
		if err == nil && n == b.cfg.n {
			return time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d Secrets current in %s after %s (last error: %v)", n, b.cfg.n, namespace, limit, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// sampler watches the test bed's long-lived servers (kube-apiserver,
// etcd and, when it runs, ESO) for one row.
func (b *bed) sampler() *Sampler {
	s := NewSampler(100 * time.Millisecond)
	for _, p := range b.env.Processes() {
		switch p.Name {
		case "kube-apiserver":
			s.Watch(p.PID, GroupAPIServer)
		case "etcd":
			s.Watch(p.PID, GroupEtcd)
		}
	}
	if pid := b.esoPID(); pid != 0 {
		s.Watch(pid, GroupESO)
	}
	return s
}

// apiCalls are the API calls logged since the previous row's.
func (b *bed) apiCalls() (APICalls, error) {
	api, off, err := ReadAudit(b.env.AuditLogPath, b.audit)
	b.audit = off
	return api, err
}
