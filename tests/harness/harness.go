// Package harness starts the esosync test bed: a real etcd, kube-apiserver
// (TLS, token auth, RBAC) and kube-controller-manager, a Vault dev server,
// and moto emulating AWS Secrets Manager. The loopback bed puts each on a
// free 127.0.0.1 port. The node bed (Options.Node) adds a real node:
// containerd, the kubelet, kube-scheduler and kube-proxy, so pods run; its
// servers listen on NodeIP, an address on a bridge the harness creates, and
// a guard rule keeps pod traffic on the machine. Integration and
// end-to-end tests, and `make demo`, use it.
//
// Binaries come from `make tools` (.tools/bin in the repository, or the
// directory in ESOSYNC_TOOLS_BIN). Every process is stopped by PID; children
// also die with the test binary if it panics or is killed.
package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options selects what the test bed runs.
type Options struct {
	// Kubernetes starts etcd and kube-apiserver.
	Kubernetes bool
	// ControllerManager also starts kube-controller-manager (garbage
	// collection, namespace deletion, service accounts). Needs Kubernetes.
	ControllerManager bool
	// Vault starts a Vault dev server with KV v2 mounted at secret/.
	Vault bool
	// AWS starts a moto server emulating AWS Secrets Manager (with STS and
	// IAM), with IAM auth on: requests must be SigV4-signed with the keys of
	// an IAM user moto knows, and that user's policies are enforced.
	AWS bool
	// Node adds a real node to Kubernetes (implies ControllerManager):
	// containerd with the images of `make tools`, the kubelet,
	// kube-scheduler and kube-proxy. Needs root; one node bed runs per
	// machine at a time (Start waits for the machine's lock). The API
	// server and every server the bed runs listen on NodeIP, reachable from
	// the host and from pods. Stop removes every process, mount, interface,
	// iptables rule, cgroup and runtime directory it made and restores the
	// sysctls it changed.
	Node bool
	// AuditLog has kube-apiserver write an audit log (level Metadata, one
	// JSON event per completed request) to Env.AuditLogPath, so benchmarks
	// count API calls by client, verb and resource.
	AuditLog bool
	// Dir holds state, credentials and logs; a temporary directory if empty.
	Dir string
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// Full is the whole test bed: Kubernetes with a controller manager, and Vault.
var Full = Options{Kubernetes: true, ControllerManager: true, Vault: true}

// Env is a running test bed.
type Env struct {
	// Dir holds the test bed's state, credentials and logs.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig (bearer-token auth,
	// context "esosync-test").
	Kubeconfig string
	// KubeContext is the context name in Kubeconfig.
	KubeContext string
	// APIServer is the kube-apiserver URL.
	APIServer string
	// AdminToken is the bearer token of a system:masters user.
	AdminToken string
	// CACertPEM is the PEM of the CA that signed kube-apiserver's serving
	// certificate, for clients configured outside a kubeconfig (for example
	// Vault's kubernetes auth, which calls the TokenReview API).
	CACertPEM []byte
	// VaultAddr is the Vault dev server's address, e.g. http://127.0.0.1:41234.
	VaultAddr string
	// VaultToken is Vault's root token.
	VaultToken string
	// AWSEndpoint is where clients reach moto, e.g. http://127.0.0.1:41235;
	// it serves Secrets Manager, STS and IAM on the same port (through a
	// thin front that puts moto's auth errors into AWS's wire format).
	AWSEndpoint string
	// AWSRegion is the region the test bed uses: "us-east-1".
	AWSRegion string
	// AWSAccessKeyID and AWSSecretAccessKey are the keys of an IAM user
	// allowed secretsmanager:*, sts:* and iam:*.
	AWSAccessKeyID     string
	AWSSecretAccessKey string
	// ListenHost is the address the test bed's servers listen on:
	// 127.0.0.1, or NodeIP on the node bed (so pods reach them too). Tests
	// that start servers of their own (the ESC endpoint) use it as well.
	ListenHost string
	// AuditLogPath is kube-apiserver's audit log when Options.AuditLog is set.
	AuditLogPath string
	// NodeReadyAfter is how long the node bed took from Start to Node Ready.
	NodeReadyAfter time.Duration
	// TeardownReport says, after Stop of a node bed, what was compared
	// between the machine before the start and after the teardown.
	TeardownReport string

	opts      Options
	node      *node
	ownsDir   bool
	processes []*Process
	// closers stop in-process helpers (moto's error-translating front).
	closers []func() error
	started time.Time
}

// Start brings up the selected servers and waits until they are ready. On
// error everything already started is stopped again.
func Start(ctx context.Context, opts Options) (env *Env, err error) {
	if opts.Node {
		opts.Kubernetes, opts.ControllerManager = true, true
	}
	if opts.ControllerManager && !opts.Kubernetes {
		return nil, errors.New("harness: ControllerManager needs Kubernetes")
	}
	bin, err := ToolsBin()
	if err != nil {
		return nil, err
	}
	env = &Env{opts: opts, Dir: opts.Dir, started: time.Now(), ListenHost: "127.0.0.1"}
	if opts.Node {
		env.ListenHost = NodeIP
	}
	if env.Dir == "" {
		if env.Dir, err = os.MkdirTemp("", "esosync-testbed-"); err != nil {
			return nil, err
		}
		env.ownsDir = true
	}
	defer func() {
		if err != nil {
			_ = env.Stop()
		}
	}()
	if opts.Node {
		if err := env.prepareNode(ctx, bin); err != nil {
			return env, err
		}
	}
	if opts.Kubernetes {
		if err := env.startKubernetes(ctx, bin); err != nil {
			return env, err
		}
	}
	if opts.Vault {
		if err := env.startVault(ctx, bin); err != nil {
			return env, err
		}
	}
	if opts.AWS {
		if err := env.startAWS(ctx, bin); err != nil {
			return env, err
		}
	}
	env.logf("test bed ready in %s", time.Since(env.started).Round(10*time.Millisecond))
	return env, nil
}

// Processes lists the servers in start order.
func (e *Env) Processes() []*Process { return append([]*Process(nil), e.processes...) }

// Stop stops every process in reverse start order, by PID, and removes the
// state directory if the harness created it. It is safe to call twice.
func (e *Env) Stop() error {
	var errs []error
	if err := e.stopNode(); err != nil {
		errs = append(errs, err)
	}
	for _, c := range e.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	e.closers = nil
	for i := len(e.processes) - 1; i >= 0; i-- {
		p := e.processes[i]
		if err := p.stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range e.processes {
		if Alive(p.PID) {
			errs = append(errs, fmt.Errorf("%s (pid %d) is still running after stop", p.Name, p.PID))
		}
	}
	if e.ownsDir && len(errs) == 0 {
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RESTConfig returns an admin client configuration for the cluster.
func (e *Env) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
}

// Clientset returns an admin typed client for the cluster.
func (e *Env) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := e.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func (e *Env) logf(format string, args ...any) {
	if e.opts.Logf != nil {
		e.opts.Logf("harness: "+format, args...)
	}
}

// ToolsBin finds the directory with the test bed's binaries.
func ToolsBin() (string, error) {
	if dir := os.Getenv("ESOSYNC_TOOLS_BIN"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".tools", "bin")
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		return "", fmt.Errorf("harness: test bed binaries are missing in %s: run `make tools` first", dir)
	}
	return dir, nil
}

// RepoRoot is the directory of the esosync go.mod above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(data), "module github.com/esosync/pulumi-esosync\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: not inside the esosync repository")
		}
		dir = parent
	}
}

func (e *Env) start(name, bin string, args []string, env ...string) (*Process, error) {
	p, err := startProcess(name, bin, args, env, filepath.Join(e.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	e.processes = append(e.processes, p)
	e.logf("started %s (pid %d, log %s)", name, p.PID, p.Log)
	return p, nil
}

// waitFor polls check until it succeeds, the process dies or the deadline passes.
func waitFor(ctx context.Context, p *Process, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited during startup (%v); log tail:\n%s", p.Name, p.err, tail(p.Log, 3000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v; log tail:\n%s", p.Name, timeout, last, tail(p.Log, 3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func httpGetOK(client *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func (e *Env) startKubernetes(ctx context.Context, bin string) error {
	pkiDir := filepath.Join(e.Dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return err
	}
	keys, err := newPKI(pkiDir)
	if err != nil {
		return fmt.Errorf("harness: generating PKI: %w", err)
	}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kcmPort := ports[0], ports[1], ports[2], ports[3]
	apiHost := "127.0.0.1"
	if e.node != nil {
		apiHost, apiPort = NodeIP, nodeAPIPort
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcd, err := e.start("etcd", filepath.Join(bin, "etcd"), []string{
		"--name=esosync", "--data-dir=" + filepath.Join(e.Dir, "etcd-data"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=esosync=" + peerURL, "--unsafe-no-fsync=true", "--log-level=warn",
	})
	if err != nil {
		return err
	}
	plain := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(ctx, etcd, 30*time.Second, func() error { return httpGetOK(plain, etcdURL+"/health", "") }); err != nil {
		return err
	}

	e.APIServer = "https://" + apiHost + ":" + strconv.Itoa(apiPort)
	e.AdminToken = keys.adminToken
	e.CACertPEM = keys.caPEM
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--cert-dir=" + filepath.Join(e.Dir, "apiserver-certs"),
		"--tls-cert-file=" + keys.servingCert, "--tls-private-key-file=" + keys.servingKey,
		"--client-ca-file=" + keys.caCert, "--token-auth-file=" + keys.tokens,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + keys.saPub, "--service-account-signing-key-file=" + keys.saKey,
		"--profiling=false",
	}
	if e.opts.AuditLog {
		audit, err := e.auditArgs()
		if err != nil {
			return err
		}
		args = append(args, audit...)
	}
	if e.node != nil {
		args = append(args, nodeAPIServerArgs(keys)...)
	} else {
		args = append(args,
			"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
			"--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=RBAC",
			// With a loopback advertise address the endpoint reconciler logs every 10 s.
			"--endpoint-reconciler-type=none")
	}
	apiserver, err := e.start("kube-apiserver", filepath.Join(bin, "kube-apiserver"), args)
	if err != nil {
		return err
	}
	if err := e.waitAPIServer(ctx, apiserver, keys.caPEM, keys.adminToken); err != nil {
		return err
	}
	e.logf("kube-apiserver ready at %s (%s)", e.APIServer, time.Since(e.started).Round(10*time.Millisecond))

	e.KubeContext = "esosync-test"
	e.Kubeconfig = filepath.Join(e.Dir, "admin.kubeconfig")
	if err := writeKubeconfig(e.Kubeconfig, e.KubeContext, e.APIServer, keys.caPEM, "esosync-admin", keys.adminToken); err != nil {
		return err
	}
	if !e.opts.ControllerManager {
		return nil
	}

	kcmConfig := filepath.Join(e.Dir, "kcm.kubeconfig")
	if err := writeKubeconfig(kcmConfig, "kcm", e.APIServer, keys.caPEM, "system:kube-controller-manager", keys.kcmToken); err != nil {
		return err
	}
	kcmURL := "https://127.0.0.1:" + strconv.Itoa(kcmPort)
	kcm, err := e.start("kube-controller-manager", filepath.Join(bin, "kube-controller-manager"), []string{
		"--kubeconfig=" + kcmConfig,
		"--authentication-kubeconfig=" + kcmConfig, "--authorization-kubeconfig=" + kcmConfig,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(kcmPort),
		"--cert-dir=" + filepath.Join(e.Dir, "kcm-certs"),
		"--leader-elect=false",
		// Each controller runs as its own service account, as kubeadm sets it up.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + keys.saKey, "--root-ca-file=" + keys.caCert,
		"--profiling=false",
	})
	if err != nil {
		return err
	}
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // kcm's self-signed loopback cert
	if err := waitFor(ctx, kcm, 90*time.Second, func() error { return httpGetOK(insecure, kcmURL+"/healthz", "") }); err != nil {
		return err
	}
	// Pods and token requests need the default service account, which the
	// service-account controller creates shortly after it starts.
	clients, err := e.Clientset()
	if err != nil {
		return err
	}
	if err := waitFor(ctx, kcm, 60*time.Second, func() error {
		_, err := clients.CoreV1().ServiceAccounts(corev1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return errors.New("default service account not created yet")
		}
		return err
	}); err != nil {
		return err
	}
	e.logf("kube-controller-manager ready (%s)", time.Since(e.started).Round(10*time.Millisecond))
	if e.node != nil {
		return e.startNodeAgents(ctx, bin, keys)
	}
	return nil
}

// auditPolicy records every request at level Metadata (who, verb,
// resource, timings; never a body, so never a Secret's data) once its
// response is complete.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
`

// auditArgs writes the audit policy and returns kube-apiserver's flags for
// an unbuffered JSON audit log at e.AuditLogPath.
func (e *Env) auditArgs() ([]string, error) {
	policy := filepath.Join(e.Dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	e.AuditLogPath = filepath.Join(e.Dir, "audit.log")
	return []string{"--audit-policy-file=" + policy, "--audit-log-path=" + e.AuditLogPath,
		"--audit-log-format=json", "--audit-log-mode=blocking",
		// In megabytes; 0 would mean the rotation library's default of 100 MB.
		"--audit-log-maxsize=100000"}, nil
}

func (e *Env) startVault(ctx context.Context, bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	token, err := randomToken()
	if err != nil {
		return err
	}
	e.VaultAddr = "http://" + e.ListenHost + ":" + strconv.Itoa(port)
	e.VaultToken = "hvs-esosync-" + token
	home := filepath.Join(e.Dir, "vault-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	vault, err := e.start("vault", filepath.Join(bin, "vault"), []string{
		"server", "-dev",
		"-dev-listen-address=" + e.ListenHost + ":" + strconv.Itoa(port),
		"-dev-root-token-id=" + e.VaultToken,
		"-dev-no-store-token",
	},
		// Keep Vault's token helper and any other dotfiles out of the user's home.
		"HOME="+home, "VAULT_ADDR="+e.VaultAddr,
	)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if err := waitFor(ctx, vault, 60*time.Second, func() error {
		return httpGetOK(client, e.VaultAddr+"/v1/sys/health", "")
	}); err != nil {
		return err
	}
	e.logf("vault ready at %s (%s)", e.VaultAddr, time.Since(e.started).Round(10*time.Millisecond))
	return nil
}

// waitAPIServer waits until kube-apiserver (process p) answers /readyz,
// trusting caPEM and presenting token.
func (e *Env) waitAPIServer(ctx context.Context, p *Process, caPEM []byte, token string) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	secure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return waitFor(ctx, p, 90*time.Second, func() error {
		return httpGetOK(secure, e.APIServer+"/readyz", token)
	})
}

func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	ports := make([]int, 0, n)
	for len(ports) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

func writeKubeconfig(path, contextName, server string, caPEM []byte, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["esosync-test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: "esosync-test", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = contextName
	return clientcmd.WriteToFile(*cfg, path)
}
