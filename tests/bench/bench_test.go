package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statTail is fields 3..22 of /proc/PID/stat with ppid 7, utime 250,
// stime 50, starttime 9999.
const statTail = "S 7 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 9999 1234 56"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, data string
		want       procStat
		wantErr    bool
	}{
		{"plain", "42 (pulumi) " + statTail + " 0 0\n", procStat{42, 7, "pulumi", 300, 9999}, false},
		{"spaces", "42 (my proc) " + statTail, procStat{42, 7, "my proc", 300, 9999}, false},
		{"parens", "42 (a) S (b)) " + statTail, procStat{42, 7, "a) S (b)", 300, 9999}, false},
		{"no comm", "42 pulumi " + statTail, procStat{}, true},
		{"truncated", "42 (pulumi) S 7 1", procStat{}, true},
		{"bad number", "42 (x) " + strings.Replace(statTail, "250", "x", 1), procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.data)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStat = %+v, %v; want %+v, err %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"pulumi"}, GroupEngine},
		{[]string{"pulumi-language-nodejs"}, GroupLanguage},
		{[]string{"pulumi-resource-esosync", "pulumi-resource"}, GroupEsosync},
		{[]string{"pulumi-resource-kubernetes"}, GroupKubernetes},
		{[]string{"pulumi-resource-aws"}, GroupOtherProvider},
		{[]string{"node", "node", "node"}, ""},
		{[]string{"pulumi-resource"}, ""}, // a comm cut to 15 bytes says nothing
	}
	for _, tt := range tests {
		if got := classify(tt.names...); got != tt.want {
			t.Errorf("classify(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
}

// auditLine renders one audit event line.
func auditLine(stage, verb, ua, resource, sub string) string {
	ref := ""
	if resource != "" {
		ref = fmt.Sprintf(`,"objectRef":{"resource":%q,"subresource":%q,"namespace":"ns"}`, resource, sub)
	}
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":%q,`+
		`"requestURI":"/version?timeout=32s","verb":%q,"userAgent":%q%s,`+
		`"requestReceivedTimestamp":"2025-01-01T00:00:00.000000Z","stageTimestamp":"2025-01-01T00:00:00.001000Z"}`+"\n",
		stage, verb, ua, ref)
}

func TestReadAudit(t *testing.T) {
	esosync := "pulumi-resource-esosync/v0.1.0 (linux/amd64) kubernetes/$Format"
	complete := auditLine("ResponseComplete", "get", esosync, "secrets", "") +
		auditLine("ResponseComplete", "get", esosync, "secrets", "") +
		auditLine("ResponseComplete", "patch", esosync, "externalsecrets", "status") +
		auditLine("RequestReceived", "get", esosync, "secrets", "") +
		auditLine("ResponseComplete", "watch", "external-secrets/v0.20.4 (linux/amd64)", "secrets", "") +
		auditLine("ResponseComplete", "get", "kubectl", "", "") +
		"not json\n"
	partial := auditLine("ResponseComplete", "create", esosync, "secrets", "")
	partial = partial[:len(partial)/2]
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(complete+partial), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		from    int64
		want    map[string]string // client → Summary(client, 0)
		wantOff int64
	}{
		{"whole", 0, map[string]string{
			"pulumi-resource-esosync": "get secrets 2, patch externalsecrets/status 1",
			"external-secrets":        "watch secrets 1",
			"kubectl":                 "get /version 1",
		}, int64(len(complete))},
		{"at end", int64(len(complete)), map[string]string{}, int64(len(complete))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, off, err := ReadAudit(path, tt.from)
			if err != nil || off != tt.wantOff {
				t.Fatalf("ReadAudit = off %d, err %v; want off %d", off, err, tt.wantOff)
			}
			if len(calls) != len(tt.want) {
				t.Errorf("clients = %v, want %v", calls, tt.want)
			}
			for client, want := range tt.want {
				if got := calls.Summary(client, 0); got != want {
					t.Errorf("Summary(%s) = %q, want %q", client, got, want)
				}
			}
		})
	}
	if _, _, err := ReadAudit(path, int64(len(complete)+len(partial)+1)); err == nil {
		t.Error("ReadAudit past the end: want an error")
	}
}

func TestAPICallsSummary(t *testing.T) {
	a := APICalls{"c": {"get secrets": 5, "create secrets": 5, "list secrets": 9, "watch secrets": 1}, "d": {"x": 2}}
	tests := []struct {
		top  int
		want string
	}{
		{0, "list secrets 9, create secrets 5, get secrets 5, watch secrets 1"},
		{2, "list secrets 9, create secrets 5, …"},
		{4, "list secrets 9, create secrets 5, get secrets 5, watch secrets 1"},
	}
	for _, tt := range tests {
		if got := a.Summary("c", tt.top); got != tt.want {
			t.Errorf("Summary(c, %d) = %q, want %q", tt.top, got, tt.want)
		}
	}
	if a.Total("c") != 20 || a.GrandTotal() != 22 || a.Total("none") != 0 {
		t.Errorf("Total = %d, GrandTotal = %d", a.Total("c"), a.GrandTotal())
	}
}

// grpcEntries renders both entries pulumi's rpcdebug client interceptor
// writes for one unary call of method on package pkg, starting at offset ms
// after base and lasting dur ms.
func grpcEntries(method, pkg string, start, dur int) string {
	base := time.Date(2025, 1, 1, 12, 0, 0, 0, time.FixedZone("", 3600))
	begin := base.Add(time.Duration(start) * time.Millisecond)
	end := begin.Add(time.Duration(dur) * time.Millisecond)
	meta := fmt.Sprintf(`{"kind":"resource","mode":"client","name":%q}`, pkg)
	req := `{"urn":"urn:pulumi:dev::p::esosync:index:Thing::a","properties":{"big":"` + strings.Repeat("x", 5000) + `"}}`
	return fmt.Sprintf(`{"method":%q,"request":%s,"metadata":%s,"progress":"request_started","timestamp":%q}`+"\n",
		method, req, meta, begin.Format(time.RFC3339Nano)) +
		fmt.Sprintf(`{"method":%q,"request":%s,"response":{"id":"a"},"metadata":%s,"progress":"response_completed","timestamp":%q,"duration":%d}`+"\n",
			method, req, meta, end.Format(time.RFC3339Nano), time.Duration(dur)*time.Millisecond)
}

func TestReadGRPCLog(t *testing.T) {
	const rp = "/pulumirpc.ResourceProvider/"
	log := grpcEntries(rp+"Create", "esosync", 0, 100) + // [0,100]
		grpcEntries(rp+"Create", "esosync", 50, 100) + // [50,150] overlaps
		grpcEntries(rp+"Update", "kubernetes", 140, 20) + // [140,160] overlaps, other provider
		grpcEntries(rp+"Check", "esosync", 170, 1000) + // other method
		grpcEntries("/pulumirpc.ResourceMonitor/RegisterResource", "", 170, 1000) +
		grpcEntries(rp+"Delete", "esosync", 300, 50) + // [300,350] disjoint
		`{"method":"` + rp + `Create","request":{},"progress":"request_started","timestamp":"2025-01-01T12:00:01+01:00"}` + "\n" + // in flight
		`{"method":"` + rp + `Create","requ` // being written
	path := filepath.Join(t.TempDir(), "grpc.log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	tests := []struct {
		name       string
		pkg        string
		methods    []string
		calls      map[string]int
		busy, span time.Duration
	}{
		{"cud", "", []string{"Create", "Update", "Delete"}, map[string]int{"Create": 2, "Update": 1, "Delete": 1}, 210 * ms, 350 * ms},
		{"esosync only", "esosync", []string{"Create", "Update", "Delete"}, map[string]int{"Create": 2, "Delete": 1}, 200 * ms, 350 * ms},
		{"one call", "", []string{"Update"}, map[string]int{"Update": 1}, 20 * ms, 20 * ms},
		{"none", "", []string{"Read"}, map[string]int{}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadGRPCLogFor(path, tt.pkg, tt.methods...)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.Calls) != fmt.Sprint(tt.calls) || got.Busy != tt.busy || got.Span != tt.span {
				t.Errorf("got %v busy %v span %v; want %v busy %v span %v", got.Calls, got.Busy, got.Span, tt.calls, tt.busy, tt.span)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b time.Duration
		want string
	}{
		{123 * time.Second, 10 * time.Second, "12.3x"},
		{time.Second, 2 * time.Second, "0.5x"},
		{time.Second, 0, "n/a"},
	}
	for _, tt := range tests {
		if got := Ratio(tt.a, tt.b); got != tt.want {
			t.Errorf("Ratio(%v, %v) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestPrintTable(t *testing.T) {
	var b strings.Builder
	PrintTable(&b, "bench", []Row{{
		Name: "create 1000", Wall: 12340 * time.Millisecond,
		CPU:      map[string]float64{GroupEsosync: 3.2},
		PeakRSS:  map[string]uint64{GroupEsosync: 100 << 20},
		PeakAnon: map[string]uint64{GroupEsosync: 37 << 20},
		API:      APICalls{ClientEsosync: {"get secrets": 3}, "eso": {"list secrets": 1}},
		Backend:  map[string]int{"vault.read": 100}, Note: "cold",
	}})
	t.Log("\n" + b.String())
	for _, want := range []string{"12.3", "3.2", "100", "37", "vault.read=100", "get secrets 3; cold"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestSamplerLive samples the test process itself: a watched busy loop must
// show CPU, and a child must join the tree, inheriting the unnamed root's group.
func TestSamplerLive(t *testing.T) {
	s := NewSampler(20 * time.Millisecond)
	s.Watch(os.Getpid(), "self")
	s.Tree(os.Getpid())
	s.Start()
	child := exec.Command("sleep", "0.3")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
	}
	_ = child.Wait()
	u := s.Stop()
	if u.CPU["self"] <= 0 || u.PeakRSS["self"] == 0 || u.PeakAnon["self"] == 0 || u.PeakAnon["self"] > u.PeakRSS["self"] ||
		u.Processes[GroupEngine] < 2 {
		t.Errorf("usage = %+v", u)
	}
}

func TestParseMemory(t *testing.T) {
	for _, tt := range []struct {
		status string
		want   memory
	}{
		{"Name:\tx\nVmHWM:\t  93008 kB\nVmRSS:\t 90000 kB\nRssAnon:\t   15408 kB\nRssFile:\t 77600 kB\n", memory{93008 << 10, 15408 << 10}},
		{"VmHWM:\t12 kB\n", memory{hwm: 12 << 10}},
		{"RssAnon:\tjunk kB\nVmHWM:\t1 kB\n", memory{hwm: 1 << 10}},
		{"", memory{}},
	} {
		if got := parseMemory(tt.status); got != tt.want {
			t.Errorf("parseMemory(%q) = %+v, want %+v", tt.status, got, tt.want)
		}
	}
}
