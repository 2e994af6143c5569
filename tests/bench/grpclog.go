package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// providerMethodPrefix selects engine → provider calls in the gRPC log.
const providerMethodPrefix = "/pulumirpc.ResourceProvider/"

// RPCStats summarises the selected provider calls of one pulumi run.
type RPCStats struct {
	// Calls counts completed calls by method short name, e.g. "Create".
	Calls map[string]int
	// Busy is the length of the union of the calls' intervals: how long the
	// provider had at least one of those calls in flight, i.e. the deploy with
	// the engine's own work between calls (checkpoints, step generation) taken out.
	Busy time.Duration
	// Span is from the first call's start to the last call's end.
	Span time.Duration
}

// grpcEntry is the part of a pulumi rpcdebug log entry the bench reads.
// Request and response payloads are deliberately absent: the decoder skips
// them instead of copying them.
//
// pulumi 3.259.0 (sdk/go/pulumi-internal/rpcdebug) writes two entries per
// unary client call: "request_started" with timestamp = start and no duration,
// then "response_completed" with timestamp = end and duration = end - start
// (nanoseconds, measured on the monotonic clock). Only the second is needed.
type grpcEntry struct {
	Method    string          `json:"method"`
	Progress  string          `json:"progress"`
	Timestamp time.Time       `json:"timestamp"`
	Duration  time.Duration   `json:"duration"`
	Metadata  grpcEntryOrigin `json:"metadata"`
}

// grpcEntryOrigin is the metadata pulumi attaches to provider connections:
// {"mode":"client","kind":"resource","name":"<package>"}.
type grpcEntryOrigin struct {
	Name string `json:"name"`
}

// interval is one call's [start, end].
type interval struct{ start, end time.Time }

// ReadGRPCLog reads a PULUMI_DEBUG_GRPC log and summarises the completed
// /pulumirpc.ResourceProvider/<M> calls with M in methods (all methods if none
// are given), whichever provider served them. Calls still in flight are ignored.
func ReadGRPCLog(path string, methods ...string) (RPCStats, error) {
	return ReadGRPCLogFor(path, "", methods...)
}

// ReadGRPCLogFor is ReadGRPCLog restricted to the provider of package pkg
// (e.g. "esosync"), for runs where other providers (kubernetes) serve the
// same methods; pkg "" means any provider.
func ReadGRPCLogFor(path, pkg string, methods ...string) (RPCStats, error) {
	stats := RPCStats{Calls: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return stats, err
	}
	defer f.Close()
	var spans []interval
	dec := json.NewDecoder(f)
	for {
		var e grpcEntry
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break // end of log, or an entry still being written
		}
		if err != nil {
			return stats, err
		}
		if m, ok := selectCall(e, pkg, methods); ok {
			stats.Calls[m]++
			spans = append(spans, interval{e.Timestamp.Add(-e.Duration), e.Timestamp})
		}
	}
	stats.Busy, stats.Span = unionLength(spans)
	return stats, nil
}

// selectCall returns the method short name if e completes a selected call.
func selectCall(e grpcEntry, pkg string, methods []string) (string, bool) {
	m, ok := strings.CutPrefix(e.Method, providerMethodPrefix)
	if !ok || e.Progress != "response_completed" {
		return "", false
	}
	if pkg != "" && e.Metadata.Name != pkg {
		return "", false
	}
	// Server-side entries measure from a zero start time, giving a saturated
	// duration; provider calls are client-side, but stay safe.
	if e.Duration < 0 || e.Timestamp.Add(-e.Duration).Year() < 2000 {
		return "", false
	}
	if len(methods) > 0 && !slices.Contains(methods, m) {
		return "", false
	}
	return m, true
}

// unionLength returns the total length covered by spans and the distance
// from the earliest start to the latest end.
func unionLength(spans []interval) (busy, span time.Duration) {
	if len(spans) == 0 {
		return 0, 0
	}
	slices.SortFunc(spans, func(a, b interval) int { return a.start.Compare(b.start) })
	cur := spans[0]
	last := cur.end
	for _, s := range spans[1:] {
		if s.end.After(last) {
			last = s.end
		}
		if s.start.After(cur.end) {
			busy += cur.end.Sub(cur.start)
			cur = s
			continue
		}
		if s.end.After(cur.end) {
			cur.end = s.end
		}
	}
	busy += cur.end.Sub(cur.start)
	return busy, last.Sub(spans[0].start)
}
