package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ClientEsosync is the apiserver client name of the esosync provider
// (provider/internal/kube sets this userAgent).
const ClientEsosync = "pulumi-resource-esosync"

// APICalls counts Kubernetes API requests: client → "verb resource[/subresource]" → count.
// Requests without a resource (discovery, /healthz) use the URL path instead.
type APICalls map[string]map[string]int

// auditEvent is the part of an audit.k8s.io/v1 Event the bench reads.
type auditEvent struct {
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	UserAgent  string `json:"userAgent"`
	RequestURI string `json:"requestURI"`
	ObjectRef  *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
}

// ReadAudit counts the ResponseComplete events in the apiserver audit log
// (JSON lines) from byte offset from to the end of the file, and returns the
// offset to pass next time, so the bench gets per-phase deltas. A trailing
// line the apiserver has not finished writing is neither counted nor consumed.
// Watches complete only when they end, so they count in the phase that ends them.
func ReadAudit(path string, from int64) (APICalls, int64, error) {
	calls := APICalls{}
	f, err := os.Open(path)
	if err != nil {
		return calls, from, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return calls, from, err
	}
	if st.Size() < from {
		return calls, from, fmt.Errorf("audit log %s is shorter than offset %d (rotated?)", path, from)
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return calls, from, err
	}
	off, err := calls.readLines(bufio.NewReaderSize(f, 1<<20), from)
	return calls, off, err
}

// readLines counts every complete line of r and returns the offset after the last one.
func (a APICalls) readLines(r *bufio.Reader, off int64) (int64, error) {
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return off, nil // line, if any, is partial: leave it for next time
		}
		if err != nil {
			return off, err
		}
		off += int64(len(line))
		a.addLine(line)
	}
}

// addLine counts one audit event; lines that are not events are skipped.
func (a APICalls) addLine(line []byte) {
	var ev auditEvent
	if json.Unmarshal(line, &ev) != nil || ev.Stage != "ResponseComplete" {
		return
	}
	client := clientName(ev.UserAgent)
	if a[client] == nil {
		a[client] = map[string]int{}
	}
	a[client][callName(ev)]++
}

// callName is "verb resource[/subresource]", or "verb /path" for
// non-resource requests.
func callName(ev auditEvent) string {
	if ev.ObjectRef != nil && ev.ObjectRef.Resource != "" {
		res := ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			res += "/" + ev.ObjectRef.Subresource
		}
		return ev.Verb + " " + res
	}
	path, _, _ := strings.Cut(ev.RequestURI, "?")
	return ev.Verb + " " + path
}

// clientName shortens a userAgent to the program name: client-go agents are
// "name/version (os/arch) kubernetes/commit".
func clientName(ua string) string {
	name, _, _ := strings.Cut(ua, "/")
	if name == "" {
		return "(none)"
	}
	if r := []rune(name); len(r) > 40 {
		return string(r[:40])
	}
	return name
}

// Total is the number of calls made by client.
func (a APICalls) Total(client string) int {
	n := 0
	for _, c := range a[client] {
		n += c
	}
	return n
}

// GrandTotal is the number of calls made by all clients.
func (a APICalls) GrandTotal() int {
	n := 0
	for client := range a {
		n += a.Total(client)
	}
	return n
}

// Summary lists client's top calls, e.g. "get secrets 1000, create secrets 1000, …",
// most frequent first; top <= 0 lists them all.
func (a APICalls) Summary(client string, top int) string {
	return summarize(a[client], top, " ")
}

// summarize renders counts as "name<sep>count", most frequent first then by
// name, with "…" when cut to top (top <= 0: no cut).
func summarize(counts map[string]int, top int, sep string) string {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		ci, cj := counts[names[i]], counts[names[j]]
		return ci > cj || ci == cj && names[i] < names[j]
	})
	cut := top > 0 && len(names) > top
	if cut {
		names = names[:top]
	}
	parts := make([]string, 0, len(names)+1)
	for _, n := range names {
		parts = append(parts, n+sep+strconv.Itoa(counts[n]))
	}
	if cut {
		parts = append(parts, "…")
	}
	return strings.Join(parts, ", ")
}
