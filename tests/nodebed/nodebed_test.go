// Package nodebed tests the node bed itself: a real kubelet with containerd
// becomes Ready, runs a pod that reads a Secret and reaches the API server
// through the `kubernetes` Service, and the teardown leaves the machine as
// it was, also when the test using it panics.
package nodebed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/esosync/pulumi-esosync/tests/harness"
	"github.com/esosync/pulumi-esosync/tests/story"
)

// TestNodeBed starts a node bed, runs a pod on it and stops it, requiring
// that Stop finds the machine as it was before the start.
func TestNodeBed(t *testing.T) {
	harness.SkipShort(t)
	began := time.Now()
	env, err := harness.Start(t.Context(), harness.Options{Node: true, Logf: t.Logf})
	if err != nil {
		if env != nil {
			t.Logf("stop after the failed start: %v", env.Stop())
		}
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = env.Stop()
		}
	}()
	report(t, "node bed: start to Node Ready %s", env.NodeReadyAfter.Round(10*time.Millisecond))

	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	podStart := time.Now()
	pod := runTestPod(t, clients, "bed-check", "value-from-secret")
	report(t, "node bed: test pod %s Running and Ready %s after create, IP %s", pod.Name, time.Since(podStart).Round(10*time.Millisecond), pod.Status.PodIP)

	var podEnv map[string]string
	getJSON(t, "http://"+pod.Status.PodIP+":8080/env", &podEnv)
	if podEnv["FROM_SECRET"] != "value-from-secret" {
		t.Errorf("the pod's FROM_SECRET = %q, want the Secret's value", podEnv["FROM_SECRET"])
	}
	probe := getText(t, "http://"+pod.Status.PodIP+":8080/probe")
	if !strings.HasPrefix(probe, "200 OK via 10.96.0.1:443") {
		t.Errorf("the pod did not reach the API server through the kubernetes Service: %s", probe)
	}
	report(t, "node bed: pod env from its Secret ok; pod -> kubernetes Service -> API server: %s", firstLine(probe))
	report(t, "node bed: memory (RSS) %s", nodeMemory(t, env))

	stopped = true
	stopBegan := time.Now()
	if err := env.Stop(); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	report(t, "node bed: teardown in %s: %s", time.Since(stopBegan).Round(10*time.Millisecond), env.TeardownReport)
	for _, p := range env.Processes() {
		if harness.Alive(p.PID) {
			t.Errorf("%s (pid %d) is still running", p.Name, p.PID)
		}
	}
	if _, err := os.Stat(env.Dir); !os.IsNotExist(err) {
		t.Errorf("the test bed's directory %s is still there (%v)", env.Dir, err)
	}
	report(t, "node bed: %d processes stopped by PID, directory removed; whole test %s", len(env.Processes()), time.Since(began).Round(10*time.Millisecond))
}

// TestNodeBedTeardownOnPanic runs a test that starts a node bed, runs a pod
// and panics, in a child process; the harness's cleanup must still tear the
// node down completely.
func TestNodeBedTeardownOnPanic(t *testing.T) {
	harness.SkipShort(t)
	if os.Getenv("ESOSYNC_NODEBED_PANIC_CHILD") != "" {
		panickingChild(t)
		return
	}
	pidFile := filepath.Join(t.TempDir(), "pids")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestNodeBedTeardownOnPanic$", "-test.v")
	cmd.Env = append(os.Environ(), "ESOSYNC_NODEBED_PANIC_CHILD="+pidFile)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child test did not fail:\n%s", out)
	}
	text := string(out)
	if !strings.Contains(text, "panic: deliberate panic with a pod running") {
		t.Fatalf("the child did not panic as planned (%v):\n%s", err, text)
	}
	if !strings.Contains(text, "node teardown: compared before start and after teardown") || !strings.Contains(text, "; 0 difference(s)") {
		t.Fatalf("the child's teardown did not find the machine restored:\n%s", text)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(data))
	for _, f := range pids {
		name, pid, _ := strings.Cut(f, "=")
		n, _ := strconv.Atoi(pid)
		if harness.Alive(n) {
			t.Errorf("%s (pid %d) of the panicking test is still running", name, n)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "node teardown:") {
			report(t, "after a panic: %s", strings.TrimSpace(line))
		}
	}
	report(t, "after a panic: the child's %d processes are gone", len(pids))
}

func panickingChild(t *testing.T) {
	env := harness.ForTest(t, harness.Options{Node: true})
	t.Cleanup(func() { fmt.Fprintf(os.Stderr, "child: %s\n", env.TeardownReport) })
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	runTestPod(t, clients, "doomed", "x")
	var pids []string
	for _, p := range env.Processes() {
		pids = append(pids, fmt.Sprintf("%s=%d", p.Name, p.PID))
	}
	if err := os.WriteFile(os.Getenv("ESOSYNC_NODEBED_PANIC_CHILD"), []byte(strings.Join(pids, " ")), 0o600); err != nil {
		t.Fatal(err)
	}
	panic("deliberate panic with a pod running")
}

// runTestPod runs the test application with an env var from a Secret and
// returns the pod once it is Running and Ready.
func runTestPod(t *testing.T, clients kubernetes.Interface, name, value string) *corev1.Pod {
	t.Helper()
	ctx := t.Context()
	if _, err := clients.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		StringData: map[string]string{"value": value},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "esosync.local/testapp:v1", ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "value"}}}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 1},
			}},
		},
	}
	if _, err := clients.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got, err := clients.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Phase == corev1.PodRunning && story.PodReady(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s not Running and Ready after 90s: phase %s, %s", name, got.Status.Phase, podEvents(ctx, clients, name))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func podEvents(ctx context.Context, clients kubernetes.Interface, name string) string {
	events, err := clients.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, e := range events.Items {
		lines = append(lines, e.Reason+": "+e.Message)
	}
	return "events: " + strings.Join(lines, "; ")
}

// nodeMemory sums the RSS of the node's own processes and containerd's
// shims (one per pod).
func nodeMemory(t *testing.T, env *harness.Env) string {
	var parts []string
	total := 0
	for _, p := range env.Processes() {
		switch p.Name {
		case "containerd", "kubelet", "kube-scheduler", "kube-proxy":
			kb := rssKB(p.PID)
			total += kb
			parts = append(parts, fmt.Sprintf("%s %d MiB", p.Name, kb/1024))
		}
	}
	shims := 0
	for _, pid := range env.ShimPIDs() {
		shims += rssKB(pid)
	}
	total += shims
	parts = append(parts, fmt.Sprintf("shims %d MiB", shims/1024))
	return fmt.Sprintf("%s; node total %d MiB", strings.Join(parts, ", "), total/1024)
}

func rssKB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return kb
		}
	}
	return 0
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getText(t, url)), v); err != nil {
		t.Fatal(err)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 120 {
		line = line[:120] + "…"
	}
	return line
}

// report logs a figure and prints it, so it shows in `make test` output.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf(format, args...)
	fmt.Printf(format+"\n", args...)
}
