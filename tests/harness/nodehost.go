package harness

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// hostPaths are the machine-wide directories that containerd, runc, the
// CNI plugins and the kubelet use whatever their configuration says (the
// rest of their state is under the test bed's directory).
var hostPaths = []string{
	"/run/containerd",
	"/var/lib/cni",
	"/var/log/containers",
	"/var/log/pods",
}

// HostState is what the node bed can change on the machine outside its own
// directory: network links, iptables chains and rules, mounts, sysctls,
// runtime directories and the kubelet's cgroups. The node bed's test takes
// one before Start and one after Stop and requires them to be equal.
type HostState struct {
	// Links are the network interfaces.
	Links []string
	// IPTables are the rules of every table of iptables and ip6tables, as
	// `-S` prints them, prefixed with family and table.
	IPTables []string
	// Mounts are the mount points.
	Mounts []string
	// Sysctls are the values of the settings the node bed may change.
	Sysctls map[string]string
	// Paths are the machine-wide runtime directories that exist, with
	// their entries.
	Paths []string
	// Cgroups are the kubelet's cgroup directories (kubepods*).
	Cgroups []string
	// Shims are the PIDs of the containerd shims on the machine.
	Shims []int
}

// SnapshotHost reads the machine's HostState.
func SnapshotHost() (*HostState, error) {
	s := &HostState{Sysctls: readSysctls(nodeSysctls)}
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		s.Links = append(s.Links, e.Name())
	}
	if s.IPTables, err = iptablesRules(); err != nil {
		return nil, err
	}
	if s.Mounts, err = mountPoints(); err != nil {
		return nil, err
	}
	for _, p := range hostPaths {
		_ = filepath.WalkDir(p, func(path string, _ os.DirEntry, err error) error {
			if err == nil {
				s.Paths = append(s.Paths, path)
			}
			return nil
		})
	}
	s.Cgroups = kubeletCgroups()
	s.Shims = shimPIDs("")
	return s, nil
}

// Diff lists what differs between s (before) and after, one line per item;
// nothing means the machine is as it was.
func (s *HostState) Diff(after *HostState) []string {
	var out []string
	diffList := func(what string, a, b []string) {
		for _, x := range b {
			if !slices.Contains(a, x) {
				out = append(out, fmt.Sprintf("%s added: %s", what, x))
			}
		}
		for _, x := range a {
			if !slices.Contains(b, x) {
				out = append(out, fmt.Sprintf("%s removed: %s", what, x))
			}
		}
	}
	diffList("link", s.Links, after.Links)
	diffList("iptables rule", s.IPTables, after.IPTables)
	diffList("mount", s.Mounts, after.Mounts)
	diffList("path", s.Paths, after.Paths)
	diffList("cgroup", s.Cgroups, after.Cgroups)
	diffList("containerd shim pid", itoas(s.Shims), itoas(after.Shims))
	for name, v := range s.Sysctls {
		if after.Sysctls[name] != v {
			out = append(out, fmt.Sprintf("sysctl %s: %s -> %s", name, v, after.Sysctls[name]))
		}
	}
	return out
}

// Summary says what a snapshot covers, for test logs.
func (s *HostState) Summary() string {
	return fmt.Sprintf("%d links, %d iptables rules (v4+v6, all tables), %d mounts, %d sysctls, %d runtime paths, %d kubelet cgroups, %d containerd shims",
		len(s.Links), len(s.IPTables), len(s.Mounts), len(s.Sysctls), len(s.Paths), len(s.Cgroups), len(s.Shims))
}

func itoas(ns []int) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = fmt.Sprint(n)
	}
	return out
}

func iptablesRules() ([]string, error) {
	var rules []string
	for _, family := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			out, err := exec.Command(family, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue // a table the kernel lacks
			}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				rules = append(rules, family+" "+table+" "+line)
			}
		}
	}
	if len(rules) == 0 {
		return nil, errors.New("harness: cannot read iptables rules (is iptables installed?)")
	}
	return rules, nil
}

// mountPoints lists the mount points in this mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Field 5 is the mount point, with spaces escaped as \040.
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			points = append(points, strings.ReplaceAll(fields[4], `\040`, " "))
		}
	}
	return points, sc.Err()
}

// unmountUnder unmounts every mount point at or below dir, deepest first
// (the kubelet bind-mounts its root directory onto itself and puts Secret
// volumes on tmpfs below it).
func unmountUnder(dir string) error {
	points, err := mountPoints()
	if err != nil {
		return err
	}
	var mine []string
	for _, p := range points {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			mine = append(mine, p)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mine)))
	var errs []error
	for _, p := range mine {
		if err := syscall.Unmount(p, 0); err != nil && !errors.Is(err, syscall.EINVAL) {
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// kubeletCgroups lists the kubelet's cgroup directories (cgroupfs driver:
// <hierarchy>/kubepods...).
func kubeletCgroups() []string {
	var dirs []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, root := range append(roots, "/sys/fs/cgroup") {
		matches, _ := filepath.Glob(filepath.Join(root, "kubepods*"))
		for _, m := range matches {
			_ = filepath.WalkDir(m, func(path string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, path)
				}
				return nil
			})
		}
	}
	return dirs
}

// removeCgroups removes the kubelet's cgroup directories that were not
// there before (deepest first; a cgroup with processes refuses, which is
// reported).
func removeCgroups(before []string) error {
	dirs := kubeletCgroups()
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	var errs []error
	for _, d := range dirs {
		if slices.Contains(before, d) {
			continue
		}
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// removeHostPaths removes what the runtime left in the machine-wide
// directories: links into dir (the kubelet's container log links) and
// directories that are empty, but only paths that did not exist before.
func removeHostPaths(dir string, before []string) error {
	var found []string
	for _, p := range hostPaths {
		_ = filepath.WalkDir(p, func(path string, _ os.DirEntry, err error) error {
			if err == nil && !slices.Contains(before, path) {
				found = append(found, path)
			}
			return nil
		})
	}
	sort.Sort(sort.Reverse(sort.StringSlice(found)))
	var errs []error
	for _, p := range found {
		info, err := os.Lstat(p)
		if err != nil {
			continue
		}
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			if target, _ := os.Readlink(p); strings.HasPrefix(target, dir+"/") {
				_ = os.Remove(p)
			}
		case info.IsDir():
			_ = os.Remove(p) // only if empty
		}
		if _, err := os.Lstat(p); err == nil {
			errs = append(errs, fmt.Errorf("%s is left over (not a link into %s, or not empty)", p, dir))
		}
	}
	return errors.Join(errs...)
}

// shimPIDs are the PIDs of containerd shims, of the containerd listening on
// socket if it is not empty. A shim outlives containerd by design; these
// are killed by PID at teardown when they have not exited.
func shimPIDs(socket string) []int {
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		var pid int
		if _, err := fmt.Sscan(p.Name(), &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		if socket == "" || slices.Contains(args, socket) {
			pids = append(pids, pid)
		}
	}
	return pids
}
