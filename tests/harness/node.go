package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The node bed is one per machine: its addresses, the kubelet's ports and
// cgroups and kube-proxy's iptables chains are machine-wide. nodeLockFile
// serializes node beds across processes (packages run in parallel under
// `go test ./...`); nodeRecordFile says what a node bed made, so that the
// next one can clean up after a test binary that was killed outright.
const (
	nodeRunDir     = "/run/esosync-node-bed"
	nodeLockFile   = nodeRunDir + "/lock"
	nodeRecordFile = nodeRunDir + "/record.json"
	nodeStartup    = 120 * time.Second
)

// node is the node bed's part of an Env.
type node struct {
	dir    string // e.Dir/node: containerd, kubelet, CNI state
	socket string // containerd's CRI socket
	lock   *os.File
	record nodeRecord
	// imported receives the result of importing the images into containerd,
	// which runs while the control plane starts.
	imported chan error
}

// nodeRecord is where a node bed keeps its state and what the machine
// looked like before it started.
type nodeRecord struct {
	Dir       string     `json:"dir"`
	Socket    string     `json:"socket"`
	KubeProxy string     `json:"kubeProxy"`
	Before    *HostState `json:"before"`
}

// prepareNode takes the machine's node-bed lock, cleans up after a killed
// predecessor, records the machine's state, sets up the network and starts
// containerd, importing the images in the background.
func (e *Env) prepareNode(ctx context.Context, bin string) error {
	if os.Geteuid() != 0 {
		return errors.New("harness: the node bed needs root (containerd, the kubelet, iptables)")
	}
	for _, tool := range []string{"containerd", "runc", "ctr", "iptables", "ip", "conntrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("harness: the node bed needs %s (Debian packages containerd runc containernetworking-plugins iptables conntrack iproute2; .ci/run installs them)", tool)
		}
	}
	n := &node{dir: filepath.Join(e.Dir, "node")}
	n.socket = filepath.Join(n.dir, "containerd", "containerd.sock")
	if err := os.MkdirAll(nodeRunDir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(nodeLockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	e.logf("waiting for the machine's node-bed lock %s", nodeLockFile)
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return err
	}
	n.lock = lock
	e.node = n
	if err := cleanUpStaleNode(); err != nil {
		return fmt.Errorf("harness: cleaning up after an earlier node bed: %w", err)
	}
	before, err := SnapshotHost()
	if err != nil {
		return err
	}
	n.record = nodeRecord{Dir: n.dir, Socket: n.socket, KubeProxy: filepath.Join(bin, "kube-proxy"), Before: before}
	data, _ := json.Marshal(n.record)
	if err := os.WriteFile(nodeRecordFile, data, 0o600); err != nil {
		return err
	}
	if err := setUpNodeNetwork(); err != nil {
		return err
	}
	e.logf("node network: %s %s, routes %s %s -> %s, FORWARD guard %s", nodeBridge, NodeIP, nodeServiceCIDR, podSupernet, nodeBridge, guardChain)
	if err := e.startContainerd(ctx); err != nil {
		return err
	}
	images, err := ImagesDir()
	if err != nil {
		return err
	}
	n.imported = make(chan error, 1)
	go func() { n.imported <- importImages(n.socket, images) }()
	return nil
}

// ImagesDir is the directory of the node bed's image tarballs (the images
// tools component), ESOSYNC_TOOLS_IMAGES or .tools/images.
func ImagesDir() (string, error) {
	dir := os.Getenv("ESOSYNC_TOOLS_IMAGES")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, ".tools", "images")
	}
	if _, err := os.Stat(filepath.Join(dir, "pause.tar")); err != nil {
		return "", fmt.Errorf("harness: the node bed's images are missing in %s: run `make tools` (or `make demo-tools`) first", dir)
	}
	return dir, nil
}

func importImages(socket, dir string) error {
	tars, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return err
	}
	for _, tar := range tars {
		out, err := exec.Command("ctr", "--address", socket, "-n", "k8s.io", "images", "import", tar).CombinedOutput()
		if err != nil {
			return fmt.Errorf("importing %s: %v: %s", tar, err, out)
		}
	}
	return nil
}

func (e *Env) startContainerd(ctx context.Context) error {
	n := e.node
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam", "kubelet", "manifests", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o700); err != nil {
			return err
		}
	}
	config := filepath.Join(n.dir, "containerd", "config.toml")
	if err := os.WriteFile(config, []byte(containerdConfig(n.dir, n.socket)), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.dir, "cni", "net.d", "10-esosync.conflist"), []byte(cniConfig(n.dir)), 0o600); err != nil {
		return err
	}
	p, err := e.start("containerd", "containerd", []string{"--config", config})
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 30*time.Second, func() error {
		return exec.Command("ctr", "--address", n.socket, "version").Run()
	})
}

// containerdConfig is containerd 1.6's configuration with every path under
// dir. restrict_oom_score_adj is needed here: the VM lacks CAP_SYS_RESOURCE,
// so runc cannot lower the pause container's OOM score and fails the sandbox
// ("can't get final child's PID from pipe: EOF").
func containerdConfig(dir, socket string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  level = "warn"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "esosync.local/pause:3.10"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[5]q
`, filepath.Join(dir, "containerd", "root"), filepath.Join(dir, "containerd", "state"), socket, socket+".ttrpc",
		filepath.Join(dir, "cni", "net.d"))
}

// cniConfig puts pods on cniBridge with addresses from podCIDR and no
// masquerading: pod traffic is for the node and its pods only.
func cniConfig(dir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "esosync",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, cniBridge, filepath.Join(dir, "cni", "ipam"), podCIDR)
}

// nodeAPIServerArgs are the API server flags the node bed adds or changes:
// it listens on the node IP, which the `kubernetes` Service's endpoint
// points at (a loopback advertise address is refused), authorizes kubelets
// as Nodes and calls them with a client certificate by IP.
func nodeAPIServerArgs(keys *pki) []string {
	return []string{
		"--bind-address=" + NodeIP, "--advertise-address=" + NodeIP, "--secure-port=" + strconv.Itoa(nodeAPIPort),
		// The harness publishes the `kubernetes` Service's endpoint itself
		// (publishAPIEndpoint): the lease reconciler's removal of it at
		// shutdown held the API server past its SIGTERM grace.
		"--endpoint-reconciler-type=none",
		// With the Node authorizer the API server watches itself through its
		// loopback client; without a grace period for watches its graceful
		// shutdown waits on them until it is killed.
		"--shutdown-watch-termination-grace-period=2s",
		"--service-cluster-ip-range=" + nodeServiceCIDR,
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate=" + keys.kubeletClientCert, "--kubelet-client-key=" + keys.kubeletClientKey,
		"--kubelet-preferred-address-types=InternalIP",
	}
}

// startNodeAgents starts kube-scheduler, the kubelet and kube-proxy and
// waits until the Node is Ready.
func (e *Env) startNodeAgents(ctx context.Context, bin string, keys *pki) error {
	n := e.node
	if err := e.publishAPIEndpoint(ctx); err != nil {
		return err
	}
	configs := map[string]string{"scheduler": keys.schedulerToken, "kubelet": keys.nodeToken, "kube-proxy": keys.proxyToken}
	users := map[string]string{"scheduler": "system:kube-scheduler", "kubelet": "system:node:" + NodeName, "kube-proxy": "system:kube-proxy"}
	for name, token := range configs {
		if err := writeKubeconfig(filepath.Join(n.dir, name+".kubeconfig"), name, e.APIServer, keys.caPEM, users[name], token); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	schedConfig := filepath.Join(n.dir, "scheduler.kubeconfig")
	if err := e.startNodeProcess("kube-scheduler", filepath.Join(bin, "kube-scheduler"),
		"--kubeconfig="+schedConfig, "--authentication-kubeconfig="+schedConfig, "--authorization-kubeconfig="+schedConfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port), "--leader-elect=false", "--profiling=false"); err != nil {
		return err
	}
	if err := <-n.imported; err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	e.logf("images imported into containerd (%s)", time.Since(e.started).Round(10*time.Millisecond))
	if err := e.startKubelet(bin, keys); err != nil {
		return err
	}
	if err := e.startKubeProxy(bin); err != nil {
		return err
	}
	if err := e.waitNodeReady(ctx); err != nil {
		return err
	}
	return e.guardAboveKubeProxy(ctx)
}

// publishAPIEndpoint points the `kubernetes` Service at the API server on
// the node IP, as the API server's own endpoint reconciler would: an
// Endpoints object (kept out of EndpointSlice mirroring) and the
// EndpointSlice that kube-proxy reads.
func (e *Env) publishAPIEndpoint(ctx context.Context) error {
	clients, err := e.Clientset()
	if err != nil {
		return err
	}
	port := int32(nodeAPIPort)
	name, proto := "https", corev1.ProtocolTCP
	endpoints := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: NodeIP}},
			Ports:     []corev1.EndpointPort{{Name: name, Port: port, Protocol: proto}},
		}},
	}
	if _, err := clients.CoreV1().Endpoints(corev1.NamespaceDefault).Create(ctx, endpoints, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("harness: publishing the kubernetes Service's endpoint: %w", err)
	}
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Labels: map[string]string{
			discoveryv1.LabelServiceName: "kubernetes", discoveryv1.LabelManagedBy: "esosync-harness"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{NodeIP}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	if _, err := clients.DiscoveryV1().EndpointSlices(corev1.NamespaceDefault).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("harness: publishing the kubernetes Service's EndpointSlice: %w", err)
	}
	return nil
}

func (e *Env) startNodeProcess(name, bin string, args ...string) error {
	_, err := e.start(name, bin, args)
	return err
}

func (e *Env) startKubelet(bin string, keys *pki) error {
	n := e.node
	config := filepath.Join(n.dir, "kubelet.yaml")
	if err := os.WriteFile(config, []byte(kubeletConfig(n.dir, n.socket, keys.caCert)), 0o600); err != nil {
		return err
	}
	return e.startNodeProcess("kubelet", filepath.Join(bin, "kubelet"),
		"--config="+config, "--kubeconfig="+filepath.Join(n.dir, "kubelet.kubeconfig"),
		"--hostname-override="+NodeName, "--node-ip="+NodeIP,
		"--root-dir="+filepath.Join(n.dir, "kubelet"), "--cert-dir="+filepath.Join(n.dir, "kubelet", "pki"), "--v=1")
}

// kubeletConfig keeps the kubelet's state and logs under dir and its hands
// off the machine: no iptables chains of its own, no OOM score it may not
// set here, no image garbage collection (local images cannot be pulled
// again), no DNS for pods (everything they reach is addressed by IP).
func kubeletConfig(dir, socket, caCert string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%[1]s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
makeIPTablesUtilChains: false
staticPodPath: %[2]s/manifests
podLogsDir: %[2]s/pod-logs
address: %[3]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[4]s}
authorization:
  mode: Webhook
clusterDomain: cluster.local
resolvConf: ""
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
serializeImagePulls: false
maxPods: 60
`, socket, dir, NodeIP, caCert)
}

func (e *Env) startKubeProxy(bin string) error {
	n := e.node
	config := filepath.Join(n.dir, "kube-proxy.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %s}
mode: iptables
hostnameOverride: %s
clusterCIDR: %s
nodePortAddresses: ["%s/32"]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables: {localhostNodePorts: false}
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, filepath.Join(n.dir, "kube-proxy.kubeconfig"), NodeName, podCIDR, NodeIP)), 0o600); err != nil {
		return err
	}
	return e.startNodeProcess("kube-proxy", filepath.Join(bin, "kube-proxy"), "--config="+config)
}

func (e *Env) waitNodeReady(ctx context.Context) error {
	clients, err := e.Clientset()
	if err != nil {
		return err
	}
	kubeletStarted := time.Now()
	err = waitFor(ctx, e.processByName("kubelet"), nodeStartup, func() error {
		node, err := clients.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s is not Ready yet", NodeName)
	})
	if err != nil {
		return err
	}
	e.NodeReadyAfter = time.Since(e.started)
	e.logf("node %s Ready %s after the kubelet started (%s)", NodeName, time.Since(kubeletStarted).Round(10*time.Millisecond),
		e.NodeReadyAfter.Round(10*time.Millisecond))
	return nil
}

// guardAboveKubeProxy moves the guard back above the jumps kube-proxy
// prepends to FORWARD. kube-proxy adds them during its first syncs, one
// check-then-insert each, and never moves an existing one, so the guard is
// moved until it has stayed first for a while after KUBE-FORWARD appeared.
func (e *Env) guardAboveKubeProxy(ctx context.Context) error {
	if err := waitFor(ctx, e.processByName("kube-proxy"), 60*time.Second, func() error {
		return exec.Command("iptables", "-w", "-C", "FORWARD", "-m", "comment", "--comment", "kubernetes forwarding rules", "-j", "KUBE-FORWARD").Run()
	}); err != nil {
		return err
	}
	stable := 0
	for deadline := time.Now().Add(30 * time.Second); stable < 5; {
		first, err := guardIsFirst()
		if err != nil {
			return err
		}
		if first {
			stable++
		} else {
			stable = 0
			if err := keepGuardFirst(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("harness: kube-proxy keeps inserting FORWARD rules above the guard chain %s", guardChain)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// stopNode tears the node down before the control plane stops: nothing
// may start pods while they are removed, pods go through CRI (so
// containerd runs CNI DEL and unmounts their volumes and namespaces), then
// kube-proxy's rules, containerd and its shims, mounts, the network, the
// sysctls, the kubelet's cgroups and runtime directories. Every step is
// attempted; their errors are joined.
func (e *Env) stopNode() error {
	n := e.node
	if n == nil {
		return nil
	}
	var errs []error
	stopAll := func(names ...string) {
		for _, name := range names {
			if p := e.processByName(name); p != nil {
				if err := p.stop(15 * time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	// The API server goes before the pods: it closes its connections to
	// them (ESO's watches) while they can still answer; a pod removed first
	// leaves connections without a peer that hold the API server's
	// graceful shutdown past its SIGTERM grace.
	stopAll("kube-scheduler", "kubelet", "kube-controller-manager", "kube-apiserver")
	if p := e.processByName("containerd"); p != nil && !p.Exited() {
		removed, err := removePodSandboxes(n.socket)
		if err != nil {
			errs = append(errs, err)
		}
		e.logf("node teardown: removed %d pod sandbox(es) through CRI", removed)
	}
	stopAll("kube-proxy", "containerd")
	errs = append(errs, cleanUpNodeHost(n.record))
	errs = append(errs, e.checkHostRestored(n.record.Before))
	if errors.Join(errs...) == nil {
		_ = os.Remove(nodeRecordFile)
	}
	if n.lock != nil {
		_ = syscall.Flock(int(n.lock.Fd()), syscall.LOCK_UN)
		n.lock.Close()
		n.lock = nil
	}
	e.node = nil
	return errors.Join(errs...)
}

// checkHostRestored compares the machine with its state before the node
// bed started (taken under the same lock, so no other node bed interferes)
// and records what was compared in e.TeardownReport.
func (e *Env) checkHostRestored(before *HostState) error {
	after, err := SnapshotHost()
	if err != nil {
		return err
	}
	left := before.Diff(after)
	e.TeardownReport = fmt.Sprintf("compared before start and after teardown: %s; %d difference(s)", after.Summary(), len(left))
	e.logf("node teardown: %s", e.TeardownReport)
	if len(left) > 0 {
		return fmt.Errorf("harness: the node bed left the machine changed:\n  %s", strings.Join(left, "\n  "))
	}
	return nil
}

// cleanUpNodeHost undoes, from a record alone, what a node bed changed on
// the machine once its processes are gone.
func cleanUpNodeHost(r nodeRecord) error {
	var errs []error
	for _, pid := range shimPIDs(r.Socket) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if r.KubeProxy != "" {
		if out, err := exec.Command(r.KubeProxy, "--cleanup").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy --cleanup: %v: %s", err, outputTail(out)))
		}
	}
	errs = append(errs, unmountUnder(r.Dir), tearDownNodeNetwork())
	if b := r.Before; b != nil {
		errs = append(errs, removeAddedKubeRules(b.IPTables), writeSysctls(b.Sysctls), removeCgroups(b.Cgroups), removeHostPaths(r.Dir, b.Paths))
	}
	return errors.Join(errs...)
}

// cleanUpStaleNode cleans up after a node bed whose test binary was killed
// before its teardown ran (its record is still there).
func cleanUpStaleNode() error {
	data, err := os.ReadFile(nodeRecordFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var r nodeRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: %w", nodeRecordFile, err)
	}
	if err := cleanUpNodeHost(r); err != nil {
		return err
	}
	return os.Remove(nodeRecordFile)
}

// removePodSandboxes stops and removes every pod sandbox containerd knows.
func removePodSandboxes(socket string) (int, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rt := cri.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	list, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		return 0, fmt.Errorf("listing pod sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range list.Items {
		if _, err := rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stopping pod sandbox %s: %w", sb.Metadata.GetName(), err))
		}
		if _, err := rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("removing pod sandbox %s: %w", sb.Metadata.GetName(), err))
		}
	}
	return len(list.Items), errors.Join(errs...)
}

func (e *Env) processByName(name string) *Process {
	for _, p := range e.processes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func outputTail(out []byte) string {
	s := strings.TrimSpace(string(out))
	if len(s) > 500 {
		s = s[len(s)-500:]
	}
	return s
}

// ShimPIDs are the PIDs of the containerd shims of this node bed (one per
// running pod), for memory figures.
func (e *Env) ShimPIDs() []int {
	if e.node == nil {
		return nil
	}
	return shimPIDs(e.node.socket)
}
