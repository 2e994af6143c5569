package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The node bed's fixed addresses. They are per machine (one node bed at a
// time, see nodeLock): the node IP lives on a bridge the harness creates,
// and everything else it addresses is routed to that bridge or to the pods'
// bridge, so no packet of the node bed follows the machine's default route.
const (
	// NodeIP is the node's address: the API server, the kubelet and every
	// server the node bed runs for pods (Vault, moto, the ESC endpoint)
	// listen on it; it is local to this machine.
	NodeIP = "10.88.0.1"
	// NodeName is the name of the node bed's Node.
	NodeName = "esosync-node"

	// nodeBridge is a port-less bridge that holds NodeIP and swallows
	// packets routed to unused Service and pod addresses (this kernel has no
	// dummy device, which would be the usual choice).
	nodeBridge = "esonode0"
	// cniBridge is the pods' bridge, made by the CNI bridge plugin.
	cniBridge       = "esocni0"
	podCIDR         = "10.244.0.0/24"
	podSupernet     = "10.244.0.0/16"
	nodeServiceCIDR = "10.96.0.0/24"
	nodeServiceIP   = "10.96.0.1"
	nodeAPIPort     = 6443
	// guardChain keeps pod traffic on the machine: a pod may reach the
	// node, other pods and Services, and nothing that would be forwarded
	// out of another interface.
	guardChain = "ESOSYNC-NODE-GUARD"
)

// nodeSysctls are the kernel settings the node bed (or the kubelet and the
// CNI plugin it runs) may change; their values are recorded before the
// start and written back at teardown.
var nodeSysctls = []string{
	"net/ipv4/ip_forward",
	"net/bridge/bridge-nf-call-iptables",
	"net/ipv4/conf/all/route_localnet",
	// The kubelet's kernel tunables (protectKernelDefaults: false).
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// readSysctls returns the current values of names that exist.
func readSysctls(names []string) map[string]string {
	values := map[string]string{}
	for _, name := range names {
		if data, err := os.ReadFile(filepath.Join("/proc/sys", name)); err == nil {
			values[name] = strings.TrimSpace(string(data))
		}
	}
	return values
}

// writeSysctls writes values back, reporting the ones that did not take.
func writeSysctls(values map[string]string) error {
	var errs []error
	for name, v := range values {
		path := filepath.Join("/proc/sys", name)
		if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == v {
			continue
		}
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring sysctl %s=%s: %w", name, v, err))
		}
	}
	return errors.Join(errs...)
}

// run runs a host networking command and returns its error with output.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setUpNodeNetwork creates the node's bridge and address, routes the
// Service range and the pod supernet into it, turns on forwarding (for
// pod-to-Service traffic) and installs the guard.
func setUpNodeNetwork() error {
	steps := [][]string{
		{"ip", "link", "add", nodeBridge, "type", "bridge"},
		{"ip", "addr", "add", NodeIP + "/32", "dev", nodeBridge},
		{"ip", "link", "set", nodeBridge, "up"},
		{"ip", "route", "add", nodeServiceCIDR, "dev", nodeBridge},
		{"ip", "route", "add", podSupernet, "dev", nodeBridge},
		{"iptables", "-w", "-N", guardChain},
		{"iptables", "-w", "-A", guardChain, "-i", cniBridge, "-o", cniBridge, "-j", "RETURN"},
		{"iptables", "-w", "-A", guardChain, "-i", cniBridge, "-j", "REJECT"},
		{"iptables", "-w", "-I", "FORWARD", "1", "-j", guardChain},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return writeSysctls(map[string]string{"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"})
}

// keepGuardFirst moves the guard's jump back to the top of FORWARD, above
// the chains kube-proxy inserts there when it starts (which accept some
// forwarded traffic before the guard would see it).
func keepGuardFirst() error {
	if err := run("iptables", "-w", "-D", "FORWARD", "-j", guardChain); err != nil {
		return err
	}
	return run("iptables", "-w", "-I", "FORWARD", "1", "-j", guardChain)
}

// guardIsFirst reports whether the first FORWARD rule jumps to the guard.
func guardIsFirst() (bool, error) {
	out, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output()
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A FORWARD") {
			return line == "-A FORWARD -j "+guardChain, nil
		}
	}
	return false, nil
}

// tearDownNodeNetwork removes what setUpNodeNetwork and the CNI plugin
// made. Each step is attempted; what is already gone is not an error, so it
// also cleans up after a test binary that was killed.
func tearDownNodeNetwork() error {
	var errs []error
	for _, link := range []string{cniBridge, nodeBridge} { // routes go with the link
		if linkExists(link) {
			if err := run("ip", "link", "del", link); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if exec.Command("iptables", "-w", "-n", "-L", guardChain).Run() == nil {
		for exec.Command("iptables", "-w", "-C", "FORWARD", "-j", guardChain).Run() == nil {
			if err := run("iptables", "-w", "-D", "FORWARD", "-j", guardChain); err != nil {
				errs = append(errs, err)
				break
			}
		}
		for _, s := range [][]string{{"-F", guardChain}, {"-X", guardChain}} {
			if err := run("iptables", append([]string{"-w"}, s...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// removeAddedKubeRules deletes the KUBE-* chains, and the rules jumping to
// them, that iptables and ip6tables did not have before (kube-proxy
// --cleanup leaves KUBE-FIREWALL behind).
func removeAddedKubeRules(before []string) error {
	now, err := iptablesRules()
	if err != nil {
		return err
	}
	var errs []error
	var chains [][3]string
	for _, r := range now {
		if slices.Contains(before, r) {
			continue
		}
		family, rest, _ := strings.Cut(r, " ")
		table, rule, _ := strings.Cut(rest, " ")
		fields := strings.Fields(rule)
		switch {
		case len(fields) == 2 && fields[0] == "-N" && strings.HasPrefix(fields[1], "KUBE-"):
			chains = append(chains, [3]string{family, table, fields[1]})
		case len(fields) > 2 && fields[0] == "-A" && strings.Contains(rule, "-j KUBE-") && !strings.HasPrefix(fields[1], "KUBE-"):
			fields[0] = "-D"
			if err := run(family, append([]string{"-w", "-t", table}, fields...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, c := range chains {
		for _, op := range []string{"-F", "-X"} {
			if err := run(c[0], "-w", "-t", c[1], op, c[2]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
