package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Row is one bench phase as printed by PrintTable.
type Row struct {
	Name    string
	Wall    time.Duration
	Current time.Duration // until every Secret is current; 0 = n/a
	CPU     map[string]float64
	PeakRSS map[string]uint64
	// PeakAnon is the sampled peak of anonymous memory (see Usage).
	PeakAnon map[string]uint64
	API      APICalls
	Backend  map[string]int // backend calls by kind, e.g. "vault.read"
	Note     string
}

// column is one table column: header, width and how to render a row.
type column struct {
	head  string
	width int
	value func(Row) string
}

// columns are the table's fixed columns after the phase name; the last one
// (backend detail) is left-aligned and unbounded.
var columns = []column{
	{"wall s", 7, func(r Row) string { return seconds(r.Wall) }},
	{"current s", 9, func(r Row) string { return orDash(r.Current > 0, seconds(r.Current)) }},
	{"eng", 6, cpuCol(GroupEngine)},
	{"lang", 6, cpuCol(GroupLanguage)},
	{"esosync", 7, cpuCol(GroupEsosync)},
	{"k8s", 6, cpuCol(GroupKubernetes)},
	{"apisrv", 6, cpuCol(GroupAPIServer)},
	{"eso", 6, cpuCol(GroupESO)},
	{"RSS MiB", 7, rssCol},
	{"anon MiB", 8, anonCol},
	{"API all", 7, func(r Row) string { return strconv.Itoa(r.API.GrandTotal()) }},
	{"API esosync", 11, func(r Row) string { return strconv.Itoa(r.API.Total(ClientEsosync)) }},
	{"backend", 7, func(r Row) string { return strconv.Itoa(sum(r.Backend)) }},
	{"backend detail", 0, func(r Row) string { return summarize(r.Backend, 0, "=") }},
}

// PrintTable writes rows as a fixed-width table under title, then one line
// per row with the esosync provider's top API calls and the row's note.
func PrintTable(w io.Writer, title string, rows []Row) {
	nameWidth := len("phase")
	for _, r := range rows {
		nameWidth = max(nameWidth, len(r.Name))
	}
	fmt.Fprintf(w, "%s\n", title)
	fmt.Fprintf(w, "(eng..eso: CPU seconds user+sys per process group; RSS: esosync provider peak VmHWM, its executable's pages included; anon: its sampled peak RssAnon)\n")
	fmt.Fprintln(w, tableLine(nameWidth, "phase", func(c column) string { return c.head }))
	for _, r := range rows {
		fmt.Fprintln(w, tableLine(nameWidth, r.Name, func(c column) string { return c.value(r) }))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-*s  esosync API: %s", nameWidth, r.Name, orDash(len(r.API[ClientEsosync]) > 0, r.API.Summary(ClientEsosync, 6)))
		if r.Note != "" {
			fmt.Fprintf(w, "; %s", r.Note)
		}
		fmt.Fprintln(w)
	}
}

// tableLine renders one line: the name left-aligned, numbers right-aligned.
func tableLine(nameWidth int, name string, cell func(column) string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s", nameWidth, name)
	for _, c := range columns {
		if c.width == 0 {
			fmt.Fprintf(&b, "  %s", cell(c))
			continue
		}
		fmt.Fprintf(&b, "  %*s", c.width, cell(c))
	}
	return strings.TrimRight(b.String(), " ")
}

// cpuCol renders one group's CPU seconds, "-" when the group was not measured.
func cpuCol(group string) func(Row) string {
	return func(r Row) string {
		v, ok := r.CPU[group]
		return orDash(ok, fmt.Sprintf("%.1f", v))
	}
}

// rssCol renders the esosync provider's peak RSS in MiB.
func rssCol(r Row) string {
	v, ok := r.PeakRSS[GroupEsosync]
	return orDash(ok && v > 0, fmt.Sprintf("%.0f", float64(v)/(1<<20)))
}

// anonCol renders the esosync provider's sampled peak RssAnon in MiB.
func anonCol(r Row) string {
	v, ok := r.PeakAnon[GroupEsosync]
	return orDash(ok && v > 0, fmt.Sprintf("%.0f", float64(v)/(1<<20)))
}

// seconds renders d in seconds with one decimal.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1f", d.Seconds())
}

// orDash returns s if ok, else "-" so missing data is not read as zero.
func orDash(ok bool, s string) string {
	if ok {
		return s
	}
	return "-"
}

// sum adds up the counts.
func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Ratio renders a/b as e.g. "12.3x", "n/a" when b is zero.
func Ratio(a, b time.Duration) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1fx", float64(a)/float64(b))
}
