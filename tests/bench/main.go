// Command bench is `make bench`: esosync at fleet scale, measured side by
// side in one run on one test bed (etcd, kube-apiserver with an audit log,
// kube-controller-manager, a Vault dev server, moto, and the real ESO
// controller as a local process), for N ExternalSecrets over M remote keys:
//
//   - the floor: a plain client-go + Vault HTTP loop that reads the M keys
//     once and writes the N Secrets (and, second row, the ExternalSecret
//     CRs, Secrets and statuses esosync writes), as many at once as the
//     engine's default parallelism;
//   - esosync's `pulumi up` in provider and controller mode, one resource
//     per ExternalSecret and one ExternalSecretSet, then refresh, a no-op
//     up and destroy;
//   - the anchor: the same store and ExternalSecrets as pulumi-kubernetes
//     4.25.0 custom resources, synced by ESO at its chart defaults and at
//     the Operator's deploy-time tuning: time until `up` returns and until
//     every Secret holds the backend's value;
//   - engine variants: PULUMI_SKIP_CHECKPOINTS=true and a larger --parallel.
//
// Each row decomposes the run: CPU seconds of the pulumi engine, the
// language host, the providers, kube-apiserver and ESO; Kubernetes API
// calls by client, verb and resource (from the audit log); backend calls
// (counted by proxies in front of Vault and moto); the esosync provider's
// peak RSS. It then prints the ratios the README quotes.
//
//	go run ./tests/bench -n 1000 -m 100 [-phases floor,items,set,...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 1000, "ExternalSecrets per run")
	m := flag.Int("m", 100, "distinct remote keys they read")
	phases := flag.String("phases", strings.Join(allPhases, ","), "phases to run, comma-separated: "+strings.Join(allPhases, ", "))
	parallel := flag.Int("parallel", 64, "the larger --parallel of the engine variant")
	keep := flag.Bool("keep", false, "keep the work directory (state, logs, audit log)")
	cli := flag.String("pulumi", "", "another pulumi CLI binary to measure (default: the test bed's)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, config{n: *n, m: *m, phases: strings.Split(*phases, ","), parallel: *parallel, keep: *keep, cli: *cli}); err != nil {
		fmt.Fprintln(os.Stderr, "bench failed:", err)
		os.Exit(1)
	}
}

// config is what one bench run measures.
type config struct {
	n, m     int
	phases   []string
	parallel int
	keep     bool
	cli      string
}

func (c config) wants(phase string) bool {
	for _, p := range c.phases {
		if p == phase {
			return true
		}
	}
	return false
}

// allPhases are the phases in the order they run.
var allPhases = []string{"floor", "items-provider", "items-controller", "set-provider", "set-controller",
	"anchor-default", "anchor-tuned", "skip-checkpoints", "parallel", "grpc-timed", "direct", "set-aws"}

func run(ctx context.Context, cfg config) error {
	began := time.Now()
	b, err := start(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.stop()
	var rows []Row
	for _, phase := range allPhases {
		if !cfg.wants(phase) {
			continue
		}
		fmt.Printf("==> %s\n", phase)
		got, err := b.phase(ctx, phase)
		rows = append(rows, got...)
		if err != nil {
			printReport(b, rows)
			return fmt.Errorf("%s: %w", phase, err)
		}
	}
	printReport(b, rows)
	fmt.Printf("\nbench finished in %s\n", time.Since(began).Round(time.Second))
	return nil
}
