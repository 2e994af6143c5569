package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Group names. Tree assigns the first five by itself; the last three are the
// names the bench passes to Watch, and the ones PrintTable looks up.
const (
	GroupEngine        = "engine"
	GroupLanguage      = "language host"
	GroupEsosync       = "provider esosync"
	GroupKubernetes    = "provider kubernetes"
	GroupOtherProvider = "provider other"
	GroupAPIServer     = "apiserver"
	GroupEtcd          = "etcd"
	GroupESO           = "eso"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. Linux has
// reported 100 via sysconf(_SC_CLK_TCK) on every mainstream architecture for
// decades (and does on the bench machine); reading it would need cgo.
const clockTicks = 100

// Usage is what a Sampler measured between Start and Stop, keyed by group.
type Usage struct {
	// CPU is user+system seconds per group.
	CPU map[string]float64
	// PeakRSS is the largest VmHWM (bytes) seen of any single process in the
	// group. VmHWM is a lifetime peak, so for a watched process it may predate Start.
	PeakRSS map[string]uint64
	// PeakAnon is the largest RssAnon (bytes) sampled of any single process
	// in the group: the memory the process allocated, without the pages of
	// its executable (RssFile) that VmHWM also counts. Sampled, so a peak
	// shorter than an interval may be missed.
	PeakAnon map[string]uint64
	// Processes is how many distinct processes contributed to each group.
	Processes map[string]int
}

// procStat is the part of /proc/PID/stat the sampler needs.
type procStat struct {
	pid   int
	ppid  int
	comm  string
	ticks uint64 // utime+stime, in clockTicks
	start uint64 // starttime: tells a reused PID from the process seen before
}

// procKey identifies one process over time despite PID reuse.
type procKey struct {
	pid   int
	start uint64
}

// treeProc is the last-seen state of one process of a watched tree.
type treeProc struct {
	comm  string // comm at the last classification; exec changes it
	class string // group from the process's own name, "" if it has none
	group string
	ticks uint64
	hwm   uint64
	anon  uint64
}

// watchedProc is a long-lived process measured as Stop minus Start.
type watchedProc struct {
	group      string
	seen       bool
	base, last uint64
	hwm, anon  uint64
}

// Sampler polls /proc to attribute CPU time and peak memory to groups of
// processes. Linux only. A Sampler measures one interval: Start once, Stop once.
//
// Tree processes are counted by their last-seen cumulative CPU, so a process
// that exits between two samples loses the CPU it used since the last sample
// (at most one interval per core it ran on), and one that lives less than an
// interval may be missed entirely. Watched processes outlive the measurement
// and are exact up to the sampling instants.
type Sampler struct {
	every time.Duration

	mu      sync.Mutex
	roots   map[int]uint64 // pid → starttime, 0 until first seen
	watched map[int]*watchedProc
	tree    map[procKey]*treeProc

	stop chan struct{}
	done chan struct{}
}

// NewSampler returns a Sampler that polls every interval once started
// (100ms keeps the bench's own overhead low and the exit loss small).
func NewSampler(every time.Duration) *Sampler {
	return &Sampler{
		every:   every,
		roots:   map[int]uint64{},
		watched: map[int]*watchedProc{},
		tree:    map[procKey]*treeProc{},
	}
}

// Watch measures a long-lived process (apiserver, etcd, ESO controller) as the
// CPU it used between the first sample that sees it and Stop. Only the process
// itself counts, not its children.
func (s *Sampler) Watch(pid int, group string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watched[pid] = &watchedProc{group: group}
}

// Tree measures rootPID (a pulumi CLI run) and every descendant seen while
// sampling, each classified into a group by its executable name (see classify).
func (s *Sampler) Tree(rootPID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roots[rootPID] = 0
}

// Start takes a first sample right away, so watched processes get their
// baseline now, and then keeps sampling in the background.
func (s *Sampler) Start() {
	s.sample()
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.loop()
}

// Stop ends the sampling, takes a final sample and returns the usage.
func (s *Sampler) Stop() Usage {
	if s.stop != nil {
		close(s.stop)
		<-s.done
		s.stop = nil
	}
	s.sample()
	return s.usage()
}

// loop samples until Stop.
func (s *Sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

// sample reads every process once; the tree needs the whole parent map anyway.
func (s *Sampler) sample() {
	procs := scanProcs()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sampleWatched(procs)
	s.sampleTree(procs)
}

// sampleWatched updates each watched process still alive.
func (s *Sampler) sampleWatched(procs map[int]procStat) {
	for pid, w := range s.watched {
		p, ok := procs[pid]
		if !ok {
			continue // gone: keep its last value
		}
		if !w.seen {
			w.seen, w.base = true, p.ticks
		}
		w.last = p.ticks
		m := readMemory(pid)
		w.hwm, w.anon = max(w.hwm, m.hwm), max(w.anon, m.anon)
	}
}

// sampleTree finds the tree members among procs and records them.
func (s *Sampler) sampleTree(procs map[int]procStat) {
	groups := map[int]string{} // this tick: pid → group, "" = not in tree
	for pid := range procs {
		s.treeGroup(procs, groups, pid)
	}
	for pid, g := range groups {
		if g == "" {
			continue
		}
		p := procs[pid]
		t := s.tree[procKey{pid, p.start}]
		t.group, t.ticks = g, p.ticks
		m := readMemory(pid)
		t.hwm, t.anon = max(t.hwm, m.hwm), max(t.anon, m.anon)
	}
}

// treeGroup returns pid's group this tick, or "" when pid is not in a tree.
// A process belongs if it is a root, was already known (so orphans reparented
// to init stay counted), or its parent belongs.
func (s *Sampler) treeGroup(procs map[int]procStat, groups map[int]string, pid int) string {
	if g, ok := groups[pid]; ok {
		return g
	}
	groups[pid] = "" // guards against a (theoretical) ppid cycle
	p, ok := procs[pid]
	if !ok || pid <= 0 {
		return ""
	}
	key := procKey{pid, p.start}
	known := s.tree[key]
	root := s.isRoot(p)
	parent := ""
	if !root {
		parent = s.treeGroup(procs, groups, p.ppid)
	}
	if known == nil && !root && parent == "" {
		return ""
	}
	if known == nil {
		known = &treeProc{}
		s.tree[key] = known
	}
	g := pickGroup(s.classifyCached(known, p), parent, known.group)
	groups[pid] = g
	return g
}

// isRoot reports whether p is a registered root, pinning the root's start
// time at first sight so a later process reusing the PID is not mistaken for it.
func (s *Sampler) isRoot(p procStat) bool {
	start, ok := s.roots[p.pid]
	if !ok {
		return false
	}
	if start == 0 {
		s.roots[p.pid] = p.start
		return true
	}
	return start == p.start
}

// classifyCached classifies by name only when comm changed, i.e. after an
// exec; a fork of pulumi is briefly "pulumi" before it becomes a plugin.
func (s *Sampler) classifyCached(t *treeProc, p procStat) string {
	if t.comm != p.comm {
		t.comm = p.comm
		t.class = classify(procNames(p)...)
	}
	return t.class
}

// pickGroup prefers the process's own name, then its parent's group, then
// what it had before (an orphan), and finally engine (an unnamed root).
func pickGroup(own, parent, before string) string {
	for _, g := range []string{own, parent, before} {
		if g != "" {
			return g
		}
	}
	return GroupEngine
}

// usage folds the samples into per-group totals.
func (s *Sampler) usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := Usage{CPU: map[string]float64{}, PeakRSS: map[string]uint64{}, PeakAnon: map[string]uint64{}, Processes: map[string]int{}}
	for _, t := range s.tree {
		u.add(t.group, t.ticks, memory{t.hwm, t.anon})
	}
	for _, w := range s.watched {
		if w.seen {
			u.add(w.group, w.last-w.base, memory{w.hwm, w.anon})
		}
	}
	return u
}

// add counts one process into its group.
func (u Usage) add(group string, ticks uint64, m memory) {
	u.CPU[group] += float64(ticks) / clockTicks
	u.PeakRSS[group] = max(u.PeakRSS[group], m.hwm)
	if u.PeakAnon != nil {
		u.PeakAnon[group] = max(u.PeakAnon[group], m.anon)
	}
	u.Processes[group]++
}

// classify maps the first recognised name to a group, "" if none is known.
// Several names are tried because comm is cut to 15 bytes
// ("pulumi-resource-esosync" shows as "pulumi-resource").
func classify(names ...string) string {
	for _, n := range names {
		switch {
		case n == "pulumi":
			return GroupEngine
		case strings.HasPrefix(n, "pulumi-language-"):
			return GroupLanguage
		case n == "pulumi-resource-esosync":
			return GroupEsosync
		case n == "pulumi-resource-kubernetes":
			return GroupKubernetes
		case strings.HasPrefix(n, "pulumi-resource-"):
			return GroupOtherProvider
		}
	}
	return ""
}

// procNames lists the names a process goes by: exe basename, argv[0]
// basename, comm. Unreadable ones are skipped.
func procNames(p procStat) []string {
	dir := "/proc/" + strconv.Itoa(p.pid)
	var names []string
	if exe, err := os.Readlink(dir + "/exe"); err == nil {
		names = append(names, filepath.Base(strings.TrimSuffix(exe, " (deleted)")))
	}
	if cmd, err := os.ReadFile(dir + "/cmdline"); err == nil && len(cmd) > 0 {
		argv0, _, _ := strings.Cut(string(cmd), "\x00")
		names = append(names, filepath.Base(argv0))
	}
	return append(names, p.comm)
}

// scanProcs reads /proc/PID/stat of every process; processes that vanish
// mid-scan are simply absent.
func scanProcs() map[int]procStat {
	procs := map[int]procStat{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return procs
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if p, err := parseStat(string(data)); err == nil && p.pid == pid {
			procs[pid] = p
		}
	}
	return procs
}

// parseStat parses /proc/PID/stat. comm is in parentheses and may itself
// contain spaces and parentheses, so the numeric fields start after the last ')'.
func parseStat(data string) (procStat, error) {
	open := strings.IndexByte(data, '(')
	end := strings.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return procStat{}, errors.New("stat: no (comm)")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(data[:open]))
	if err != nil {
		return procStat{}, err
	}
	// f[0] is field 3 (state), so field n (1-based, as in proc(5)) is f[n-3].
	f := strings.Fields(data[end+1:])
	if len(f) < 20 {
		return procStat{}, errors.New("stat: too few fields")
	}
	field := func(n int) (uint64, error) { return strconv.ParseUint(f[n-3], 10, 64) }
	p := procStat{pid: pid, comm: data[open+1 : end]}
	ppid, err1 := field(4)
	utime, err2 := field(14)
	stime, err3 := field(15)
	start, err4 := field(22)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return procStat{}, err
	}
	p.ppid, p.ticks, p.start = int(ppid), utime+stime, start
	return p, nil
}

// memory is what /proc/PID/status says of a process's memory, in bytes.
type memory struct {
	hwm  uint64 // VmHWM: peak resident set, executable pages included
	anon uint64 // RssAnon: resident anonymous memory now
}

// readMemory returns pid's VmHWM and RssAnon, zero where unreadable.
func readMemory(pid int) memory {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memory{}
	}
	return parseMemory(string(data))
}

// parseMemory reads VmHWM and RssAnon from the text of /proc/PID/status.
func parseMemory(status string) memory {
	var m memory
	for line := range strings.Lines(status) {
		key, rest, ok := strings.Cut(line, ":")
		if !ok || (key != "VmHWM" && key != "RssAnon") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			continue
		}
		if key == "VmHWM" {
			m.hwm = kb * 1024
		} else {
			m.anon = kb * 1024
		}
	}
	return m
}
