// Command demo is `make demo`: it starts the local test bed (etcd,
// kube-apiserver, kube-controller-manager and a Vault dev server on
// loopback), runs an esosync program against it through the real pulumi CLI,
// and stops everything again by PID.
//
//	go run ./tests/demo [-keep]
//
// With -keep the test bed stays up until Ctrl-C, and the demo prints the
// environment variables to reach it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	vault "github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

func main() {
	keep := flag.Bool("keep", false, "keep the test bed running until interrupted")
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

func run(ctx context.Context, keep bool) (err error) {
	began := time.Now()
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	binary, err := harness.ProviderBinary()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "esosync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	step("Starting the local test bed: etcd, kube-apiserver, kube-controller-manager, Vault (loopback, free ports)")
	opts := harness.Full
	opts.Logf = func(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }
	env, err := harness.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping the test bed by PID")
		procs := env.Processes()
		if stopErr := env.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
		for _, p := range procs {
			state := "stopped"
			if harness.Alive(p.PID) {
				state = "STILL RUNNING"
			}
			fmt.Printf("    %-24s pid %-7d %s\n", p.Name, p.PID, state)
		}
		fmt.Printf("\ndemo finished in %s\n", time.Since(began).Round(100*time.Millisecond))
	}()

	step("Seeding Vault (KV v2 at secret/)")
	if err := seedVault(ctx, env); err != nil {
		return err
	}

	step("Installing the esosync provider plugin into a private PULUMI_HOME")
	pulumi, err := harness.NewPulumi(work)
	if err != nil {
		return err
	}
	pulumi.Env = append(pulumi.Env, "KUBECONFIG="+env.Kubeconfig)
	if err := pulumi.InstallProvider(ctx, binary); err != nil {
		return err
	}
	version, err := pulumi.Run(ctx, "", "version")
	if err != nil {
		return err
	}
	fmt.Printf("    pulumi %s    plugin %s\n", strings.TrimSpace(version), binary)

	step("The provider's schema (pulumi package get-schema)")
	if err := printSchema(ctx, pulumi, binary); err != nil {
		return err
	}

	step("pulumi up: examples/yaml/vault (Operator + Vault ClusterSecretStore + ExternalSecret, sync: provider)")
	chart, err := harness.ESOChartDir()
	if err != nil {
		return err
	}
	crds, err := harness.ESOCRDBundle()
	if err != nil {
		return err
	}
	program := filepath.Join(work, "vault")
	if err := harness.CopyProgram(filepath.Join(root, "examples", "yaml", "vault"), program); err != nil {
		return err
	}
	pulumi.Stdout = &indent{}
	for _, args := range [][]string{
		{"stack", "init", "demo"},
		{"config", "set", "vaultAddress", env.VaultAddr},
		{"config", "set", "--secret", "vaultToken", env.VaultToken},
		{"config", "set", "esoChart", chart},
		{"config", "set", "esoCrds", crds},
		// There is no kubelet in the test bed: ESO's pods cannot start.
		{"config", "set", "--type", "bool", "waitForController", "false"},
		{"config", "set", "--type", "bool", "esoWebhook", "false"},
		// The demo runs no ESO controller: the provider syncs the Secret itself.
		{"config", "set", "syncMode", "provider"},
		{"config", "set", "--type", "bool", "storeWaitForReady", "false"},
		{"up", "--yes"},
	} {
		if _, err := pulumi.Run(ctx, program, args...); err != nil {
			return err
		}
	}
	pulumi.Stdout = nil

	step("The target Secret default/app-secret (keys and hashes only, never values)")
	if err := printSecret(ctx, env, pulumi, program); err != nil {
		return err
	}

	step("pulumi destroy")
	pulumi.Stdout = &indent{}
	if _, err := pulumi.Run(ctx, program, "destroy", "--yes", "--skip-preview"); err != nil {
		return err
	}
	pulumi.Stdout = nil

	if keep {
		step("Test bed is up. In another shell:")
		fmt.Printf("    export KUBECONFIG=%s\n    export VAULT_ADDR=%s\n    export VAULT_TOKEN=%s\n", env.Kubeconfig, env.VaultAddr, env.VaultToken)
		fmt.Println("    Press Ctrl-C to stop it.")
		<-ctx.Done()
	}
	return nil
}

func printSecret(ctx context.Context, env *harness.Env, pulumi *harness.Pulumi, program string) error {
	clients, err := env.Clientset()
	if err != nil {
		return err
	}
	secret, err := clients.CoreV1().Secrets("default").Get(ctx, "app-secret", metav1.GetOptions{})
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(secret.Data))
	for k := range secret.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Printf("    keys       %v\n", keys)
	fmt.Printf("    labels     reconcile.external-secrets.io/managed=%s\n", secret.Labels["reconcile.external-secrets.io/managed"])
	fmt.Printf("    annotation reconcile.external-secrets.io/data-hash=%s\n", secret.Annotations["reconcile.external-secrets.io/data-hash"])
	out, err := pulumi.Run(ctx, program, "stack", "output", "--json")
	if err != nil {
		return err
	}
	var outputs map[string]any
	if err := json.Unmarshal([]byte(out), &outputs); err != nil {
		return err
	}
	fmt.Printf("    outputs    secretName=%v keys=%v dataHash=%v remoteVersions=%v ready=%v\n",
		outputs["secretName"], outputs["keys"], outputs["dataHash"], outputs["remoteVersions"], outputs["ready"])
	return nil
}

func seedVault(ctx context.Context, env *harness.Env) error {
	cfg := vault.DefaultConfig()
	cfg.Address = env.VaultAddr
	client, err := vault.NewClient(cfg)
	if err != nil {
		return err
	}
	client.SetToken(env.VaultToken)
	kv := client.KVv2("secret")
	written, err := kv.Put(ctx, "my-app/config", map[string]any{"username": "app", "password": "demo-password"})
	if err != nil {
		return err
	}
	read, err := kv.Get(ctx, "my-app/config")
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(read.Data))
	for k := range read.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// Values stay out of the output, as they will in every esosync output.
	fmt.Printf("    secret/my-app/config version %d, keys %v (read back through github.com/hashicorp/vault/api)\n",
		written.VersionMetadata.Version, keys)
	return nil
}

func printSchema(ctx context.Context, pulumi *harness.Pulumi, binary string) error {
	out, err := pulumi.Run(ctx, "", "package", "get-schema", binary)
	if err != nil {
		return err
	}
	var spec struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Config  struct {
			Variables map[string]any `json:"variables"`
		} `json:"config"`
		Resources map[string]any `json:"resources"`
		Functions map[string]any `json:"functions"`
	}
	if err := json.Unmarshal([]byte(out), &spec); err != nil {
		return err
	}
	fmt.Printf("    package   %s %s\n", spec.Name, spec.Version)
	fmt.Printf("    config    %s\n", strings.Join(sortedKeys(spec.Config.Variables, "esosync:"), ", "))
	fmt.Printf("    resources %s\n", orNone(sortedKeys(spec.Resources, "")))
	fmt.Printf("    functions %s\n", orNone(sortedKeys(spec.Functions, "")))
	return nil
}

func sortedKeys(m map[string]any, prefix string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, prefix+k)
	}
	slices.Sort(out)
	return out
}

func orNone(items []string) string {
	if len(items) == 0 {
		return "(none yet)"
	}
	return strings.Join(items, ", ")
}

// indent prefixes each line of the pulumi CLI's output so the demo's own
// lines stand out. It holds back a partial line until its newline arrives.
type indent struct{ partial []byte }

func (w *indent) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := slices.Index(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		fmt.Println("    | " + string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
}
