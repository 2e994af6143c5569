package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ESO controller defaults: the namespace esosync's Operator installs into and
// the ServiceAccount the chart creates for release "external-secrets" (the
// chart's fullname, which is the release name when it contains the chart name).
const (
	esoDefaultNamespace      = "external-secrets"
	esoDefaultServiceAccount = "external-secrets"
	esoBinary                = "external-secrets"
	// esoProcessName names the process and its log, e.Dir/eso.log.
	esoProcessName = "eso"
	esoStartup     = 90 * time.Second
	esoTokenTTL    = 24 * time.Hour
)

// ESOOptions configures StartESO.
type ESOOptions struct {
	// Namespace of the ESO Helm release whose ServiceAccount and RBAC the
	// controller runs with; "external-secrets" if empty.
	Namespace string
	// ServiceAccount is the controller's ServiceAccount in Namespace;
	// "external-secrets" (the chart's name for release "external-secrets")
	// if empty.
	ServiceAccount string
	// ExtraArgs are appended to the chart's default arguments; a repeated
	// flag overrides the default (the last value wins).
	ExtraArgs []string
	// Env holds extra KEY=value environment entries for the controller.
	Env []string
}

// StartESO runs the real External Secrets Operator controller (v0.20.4, from
// `make tools`) as a local process against the test bed's API server, the
// way the chart's Deployment runs it in a pod: the chart's default
// arguments and the identity of the chart's ServiceAccount, through a
// kubeconfig with a TokenRequest token (24 h), the API server URL and its CA.
// The webhook and cert controller are not run.
//
// The chart must already be installed (esosync's Operator resource, with
// ESO's CRDs): StartESO fails with a clear error if the ServiceAccount, its
// RBAC or the CRDs are missing. It returns once the controller's health and
// metrics endpoints answer and its SecretStore and ExternalSecret
// controllers have started their workers (their caches have synced). The
// process is one of e.Processes, so Env.Stop and Main stop and check it by
// PID; StopESO stops it earlier, and StartESO may then start it again. Its
// output goes to e.Dir/eso.log (appended to across restarts).
func (e *Env) StartESO(ctx context.Context, opts ESOOptions) (*Process, error) {
	if e.APIServer == "" {
		return nil, errors.New("harness: StartESO needs a test bed with Kubernetes")
	}
	if p := e.runningESO(); p != nil {
		return nil, fmt.Errorf("harness: the ESO controller is already running (pid %d); StopESO first", p.PID)
	}
	if opts.Namespace == "" {
		opts.Namespace = esoDefaultNamespace
	}
	if opts.ServiceAccount == "" {
		opts.ServiceAccount = esoDefaultServiceAccount
	}
	bin, err := ToolsBin()
	if err != nil {
		return nil, err
	}
	binary := filepath.Join(bin, esoBinary)
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("harness: the ESO controller binary is missing (%v): run `make tools` first", err)
	}
	token, err := e.esoToken(ctx, opts.Namespace, opts.ServiceAccount)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(e.Dir, "eso.kubeconfig")
	user := "system:serviceaccount:" + opts.Namespace + ":" + opts.ServiceAccount
	if err := writeKubeconfig(kubeconfig, "eso", e.APIServer, e.CACertPEM, user, token); err != nil {
		return nil, err
	}
	home := filepath.Join(e.Dir, "eso-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}

	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	liveAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	args := []string{
		// What the chart's Deployment passes with default values (v0.20.4:
		// concurrent 1, metrics port 8080, log level info, epoch times; no
		// leader election, every reconciler on, so no flags for those).
		"--concurrent=1",
		"--metrics-addr=" + metricsAddr,
		"--loglevel=info",
		"--zap-time-encoding=epoch",
		// The chart passes no --live-addr by default, so in a pod the health
		// probe listens on the binary's default :8082. Here it must be a free
		// loopback port, like the metrics address above.
		"--live-addr=" + liveAddr,
	}
	args = append(args, opts.ExtraArgs...)

	// The pod's environment has no VAULT_* variables; the developer's shell
	// (e.g. after `go run ./tests/demo -keep`) may, and Vault's client would
	// pick them up, so they are blanked.
	env := []string{"KUBECONFIG=" + kubeconfig, "HOME=" + home}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "VAULT_") {
			env = append(env, k+"=")
		}
	}
	env = append(env, opts.Env...)

	logPath := filepath.Join(e.Dir, esoProcessName+".log")
	offset := int64(0)
	if info, err := os.Stat(logPath); err == nil {
		offset = info.Size()
	}
	started := time.Now()
	p, err := e.start(esoProcessName, binary, args, env...)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(ctx, p, esoStartup, func() error {
		if err := httpGetOK(client, "http://"+liveAddr+"/healthz", ""); err != nil {
			return err
		}
		if err := httpGetOK(client, "http://"+metricsAddr+"/metrics", ""); err != nil {
			return err
		}
		return esoWorkersStarted(logPath, offset, "SecretStore", "ExternalSecret")
	}); err != nil {
		_ = p.stop(10 * time.Second)
		return nil, err
	}
	e.logf("ESO controller ready as %s (pid %d, metrics %s, %s)", user, p.PID, metricsAddr,
		time.Since(started).Round(10*time.Millisecond))
	return p, nil
}

// StopESO stops the ESO controller that StartESO started, by PID (SIGTERM,
// then SIGKILL after 10 s), and checks that the PID is gone. It does nothing
// if the controller is not running.
func (e *Env) StopESO() error {
	p := e.runningESO()
	if p == nil {
		return nil
	}
	if err := p.stop(10 * time.Second); err != nil {
		return err
	}
	if Alive(p.PID) {
		return fmt.Errorf("harness: ESO controller (pid %d) is still running after stop", p.PID)
	}
	e.logf("stopped ESO controller (pid %d)", p.PID)
	return nil
}

// runningESO is the ESO controller process that has not exited, if any.
func (e *Env) runningESO() *Process {
	for _, p := range e.processes {
		if p.Name == esoProcessName && !p.Exited() {
			return p
		}
	}
	return nil
}

// esoToken checks that the chart's ServiceAccount, its RBAC and ESO's CRDs
// exist, and requests a token for the ServiceAccount.
func (e *Env) esoToken(ctx context.Context, namespace, serviceAccount string) (string, error) {
	clients, err := e.Clientset()
	if err != nil {
		return "", err
	}
	install := "install ESO's chart and CRDs first (esosync's Operator resource); StartESO runs only the controller"
	if _, err := clients.CoreV1().ServiceAccounts(namespace).Get(ctx, serviceAccount, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("harness: ServiceAccount %s/%s not found: %s", namespace, serviceAccount, install)
		}
		return "", fmt.Errorf("harness: reading ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
	}
	resources, err := clients.Discovery().ServerResourcesForGroupVersion("external-secrets.io/v1")
	if err != nil {
		return "", fmt.Errorf("harness: ESO's CRDs are not served (external-secrets.io/v1: %v): %s", err, install)
	}
	served := map[string]bool{}
	for _, r := range resources.APIResources {
		served[r.Name] = true
	}
	for _, r := range []string{"externalsecrets", "secretstores", "clustersecretstores"} {
		if !served[r] {
			return "", fmt.Errorf("harness: external-secrets.io/v1 %s is not served: %s", r, install)
		}
	}

	// A few of the permissions the chart's ClusterRole grants the controller.
	user := "system:serviceaccount:" + namespace + ":" + serviceAccount
	for _, ra := range []authorizationv1.ResourceAttributes{
		{Group: "external-secrets.io", Resource: "externalsecrets", Verb: "watch"},
		{Group: "external-secrets.io", Resource: "secretstores", Verb: "watch"},
		{Group: "external-secrets.io", Resource: "externalsecrets", Subresource: "status", Verb: "update"},
		{Resource: "secrets", Verb: "create"},
	} {
		sar, err := clients.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               user,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
				ResourceAttributes: &ra,
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return "", fmt.Errorf("harness: checking %s's RBAC: %w", user, err)
		}
		if !sar.Status.Allowed {
			what := ra.Verb + " " + ra.Resource
			if ra.Subresource != "" {
				what += "/" + ra.Subresource
			}
			return "", fmt.Errorf("harness: %s may not %s (the chart's RBAC is missing or rbac.create is false): %s", user, what, install)
		}
	}

	ttl := int64(esoTokenTTL / time.Second)
	tr, err := clients.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("harness: requesting a token for ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
	}
	return tr.Status.Token, nil
}

// esoWorkersStarted reports whether the controller's log, from offset on,
// says the named controllers started their workers, which controller-runtime
// logs once their caches have synced. ESO logs JSON lines (zap production).
func esoWorkersStarted(logPath string, offset int64, kinds ...string) error {
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	started := map[string]bool{}
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for scanner.Scan() {
		line := scanner.Bytes()
		if !strings.Contains(string(line), "Starting workers") {
			continue
		}
		var entry struct {
			Msg  string `json:"msg"`
			Kind string `json:"controllerKind"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Msg == "Starting workers" {
			started[entry.Kind] = true
		}
	}
	var waiting []string
	for _, k := range kinds {
		if !started[k] {
			waiting = append(waiting, k)
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("controllers %s have not started their workers yet", strings.Join(waiting, ", "))
	}
	return nil
}
