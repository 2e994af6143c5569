// Command demo is `make demo`: the seed story on a real one-node cluster.
// It starts the node test bed (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd, the kubelet and kube-proxy, all local), then
// runs examples/yaml/esc-app through the real pulumi CLI: esosync installs
// External Secrets Operator as pods, syncs a Pulumi ESC environment (on a
// local ESC endpoint) into a Secret, an application pod serves the values,
// the value rotates in ESC, `pulumi refresh` reports the drift, `pulumi up`
// brings the Secret current, the application rolls and serves the new
// value; then destroy, and the test bed is stopped by PID and its network,
// mounts and rules removed.
//
//	go run ./tests/demo [-keep]
//
// With -keep the cluster stays up until Ctrl-C after the story. Needs root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/esosync/pulumi-esosync/tests/harness"
	"github.com/esosync/pulumi-esosync/tests/story"
)

func main() {
	keep := flag.Bool("keep", false, "keep the cluster running after the story until interrupted")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func say(format string, args ...any) {
	fmt.Printf("    "+format+"\n", args...)
}

func run(ctx context.Context, keep bool) (err error) {
	began := time.Now()
	work, err := os.MkdirTemp("", "esosync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	step("Starting a real one-node Kubernetes cluster (control plane, containerd, kubelet, kube-proxy; node IP %s on a local bridge)", harness.NodeIP)
	env, err := harness.Start(ctx, harness.Options{Node: true, Logf: say})
	if err != nil {
		if env != nil {
			_ = env.Stop()
		}
		return err
	}
	say("node %s Ready %s after start", harness.NodeName, env.NodeReadyAfter.Round(100*time.Millisecond))
	defer func() {
		step("Stopping the cluster by PID and removing its network, mounts and rules")
		procs := env.Processes()
		if stopErr := env.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
		for _, p := range procs {
			state := "stopped"
			if harness.Alive(p.PID) {
				state = "STILL RUNNING"
			}
			say("%-24s pid %-7d %s", p.Name, p.PID, state)
		}
		say("%s", env.TeardownReport)
		fmt.Printf("\ndemo finished in %s\n", time.Since(began).Round(100*time.Millisecond))
	}()

	step("The Pulumi blog story with esosync: examples/yaml/esc-app through the pulumi CLI")
	report, err := story.ESC(ctx, env, work, say)
	if err != nil {
		return err
	}
	step("Timings")
	for _, s := range report.Steps {
		say("%-32s %s", s.Name, s.Took.Round(100*time.Millisecond))
	}

	if keep {
		step("The cluster is up. In another shell:")
		say("export KUBECONFIG=%s", env.Kubeconfig)
		say("Press Ctrl-C to stop it.")
		<-ctx.Done()
	}
	return nil
}
