package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestBatchedReads deploys 200 ExternalSecrets over 40 AWS secrets, 200
// over one ESC environment and 200 over 40 Vault paths through the pulumi
// CLI, and counts at the wire (a counting proxy in front of moto and
// Vault, the ESC endpoint's own counters) what the deploy cost.
func TestBatchedReads(t *testing.T) {
	env := harness.Shared(t)
	ctx := t.Context()
	n, distinct := 200, 40
	if v := os.Getenv("ESOSYNC_BATCH_N"); v != "" { // smaller runs while investigating
		if _, err := fmt.Sscan(v, &n); err != nil {
			t.Fatalf("ESOSYNC_BATCH_N=%q: %v", v, err)
		}
	}
	vc := vaultClient(t, env)
	for i := range distinct {
		putAWS(t, env, fmt.Sprintf("batch/aws-%02d", i), fmt.Sprintf(`{"v":"aws-value-%02d"}`, i))
		if _, err := vc.KVv2("secret").Put(ctx, fmt.Sprintf("batch/vault-%02d", i), map[string]any{"v": fmt.Sprintf("vault-value-%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	const token = "pul-batch-token"
	srv := startESC(t, token)
	var esc strings.Builder
	esc.WriteString("values:\n  app:\n")
	for i := range distinct {
		fmt.Fprintf(&esc, "    k%02d: esc-value-%02d\n", i, i)
	}
	if err := srv.SetEnvironment("organization", "batch", "app", esc.String()); err != nil {
		t.Fatal(err)
	}
	awsProxy, err := harness.StartCountingProxy(env.AWSEndpoint, harness.AWSTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer awsProxy.Close()
	vaultProxy, err := harness.StartCountingProxy(env.VaultAddr, vaultReads)
	if err != nil {
		t.Fatal(err)
	}
	defer vaultProxy.Close()

	tb := newTestbed(t, "")
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "batch"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte(batchProgram(n, distinct)), 0o644); err != nil {
		t.Fatal(err)
	}
	pulumi := newPulumi(t)
	pulumi.Env = append(pulumi.Env, "KUBECONFIG="+env.Kubeconfig,
		"AWS_SECRETSMANAGER_ENDPOINT="+awsProxy.URL, "AWS_STS_ENDPOINT="+awsProxy.URL)
	run := func(args ...string) string {
		t.Helper()
		out, err := pulumi.Run(ctx, dir, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	run("stack", "init", "dev")
	run("config", "set", "esoChart", tb.Chart)
	run("config", "set", "esoCrds", tb.CRDs)
	run("config", "set", "vaultAddress", vaultProxy.URL)
	run("config", "set", "--secret", "vaultToken", env.VaultToken)
	run("config", "set", "--secret", "awsAccessKeyId", env.AWSAccessKeyID)
	run("config", "set", "--secret", "awsSecretAccessKey", env.AWSSecretAccessKey)
	run("config", "set", "escApiUrl", srv.URL())
	run("config", "set", "--secret", "escToken", token)

	awsProxy.Reset()
	vaultProxy.Reset()
	srv.ResetCounts()
	began := time.Now()
	// Batching spans the resources the engine has in flight: it checks
	// (and so announces) an ExternalSecret only when a worker is free, so
	// with pulumi's default of 4 workers per CPU a batch carries what the
	// few resources in flight announced. With unbounded parallelism every
	// ExternalSecret is announced before the first batch goes out.
	out := run("up", "--yes", "--skip-preview", "--parallel", "1000")
	took := time.Since(began).Round(time.Second)
	if c := lastChanges(t, pulumi, dir, "update"); c["create"] != 3*n+5 {
		t.Errorf("up did not create every resource: %v\n%s", c, tail(out, 40))
	}
	aws, vault := awsProxy.Counts(), vaultProxy.Counts()
	batch, get := aws["secretsmanager.BatchGetSecretValue"], aws["secretsmanager.GetSecretValue"]
	line := fmt.Sprintf("batched reads (one deploy, %s): %d ExternalSecrets over %d AWS secrets -> BatchGetSecretValue=%d GetSecretValue=%d; "+
		"%d over 1 ESC environment -> opens=%d; %d over %d Vault paths -> reads=%d",
		took, n, distinct, batch, get, n, srv.Opens("organization", "batch", "app"), n, distinct, vault["vault.read"])
	t.Log(line)
	fmt.Println(line)
	if batch > 2 || get != 0 {
		t.Errorf("AWS: %d BatchGetSecretValue and %d GetSecretValue, want at most 2 and 0 (all calls: %v)", batch, get, aws)
	}
	if opens := srv.Opens("organization", "batch", "app"); opens != 1 {
		t.Errorf("ESC: %d opens, want exactly 1", opens)
	}
	if reads := vault["vault.read"]; reads != distinct {
		t.Errorf("Vault: %d reads, want %d", reads, distinct)
	}
	// A refresh at the default parallelism: Vault and ESC costs do not
	// depend on it; AWS batches are bounded by the resources in flight.
	awsProxy.Reset()
	vaultProxy.Reset()
	srv.ResetCounts()
	began = time.Now()
	out = run("refresh", "--yes", "--skip-preview")
	if c := lastChanges(t, pulumi, dir, "refresh"); len(c.changed()) != 0 {
		t.Errorf("refresh right after up reports changes: %v\n%s", c, tail(out, 20))
	}
	aws, vault = awsProxy.Counts(), vaultProxy.Counts()
	line = fmt.Sprintf("batched reads (refresh, default parallelism, %s): AWS BatchGetSecretValue=%d GetSecretValue=%d; ESC opens=%d; Vault reads=%d",
		time.Since(began).Round(time.Second), aws["secretsmanager.BatchGetSecretValue"], aws["secretsmanager.GetSecretValue"],
		srv.Opens("organization", "batch", "app"), vault["vault.read"])
	t.Log(line)
	fmt.Println(line)
	if opens := srv.Opens("organization", "batch", "app"); opens != 1 {
		t.Errorf("refresh: ESC opens = %d, want 1", opens)
	}
	if reads := vault["vault.read"]; reads != distinct {
		t.Errorf("refresh: Vault reads = %d, want %d", reads, distinct)
	}
	if get := aws["secretsmanager.GetSecretValue"]; get != 0 {
		t.Errorf("refresh: %d GetSecretValue, want 0", get)
	}

	// Spot-check what landed.
	assertSecret(t, env, "batch", "aws-041", map[string]string{"v": "aws-value-01"})
	assertSecret(t, env, "batch", "esc-199", map[string]string{"v": "esc-value-39"})
	assertSecret(t, env, "batch", "vault-080", map[string]string{"v": "vault-value-00"})

	run("destroy", "--yes", "--skip-preview")
}

// batchProgram is a Pulumi YAML program (YAML has no loops, so it is
// generated) with three stores and n ExternalSecrets on each, the i-th
// reading remote key i mod distinct.
func batchProgram(n, distinct int) string {
	var b strings.Builder
	b.WriteString(`name: batch
runtime: yaml
config:
  esoChart: {type: string}
  esoCrds: {type: string}
  vaultAddress: {type: string}
  vaultToken: {type: string, secret: true}
  awsAccessKeyId: {type: string, secret: true}
  awsSecretAccessKey: {type: string, secret: true}
  escApiUrl: {type: string}
  escToken: {type: string, secret: true}
resources:
  ns:
    type: esosync:index:Operator
    properties:
      chart: ${esoChart}
      crds: ${esoCrds}
      waitForController: false
      values: {webhook: {create: false}, certController: {create: false}}
  aws:
    type: esosync:index:ClusterSecretStore
    properties:
      waitForReady: false
      backend:
        aws:
          region: us-east-1
          auth: {secretRef: {accessKeyId: {value: "${awsAccessKeyId}"}, secretAccessKey: {value: "${awsSecretAccessKey}"}}}
    options: {dependsOn: ["${ns}"]}
  esc:
    type: esosync:index:ClusterSecretStore
    properties:
      waitForReady: false
      backend:
        esc: {organization: organization, project: batch, environment: app, apiUrl: "${escApiUrl}", auth: {accessToken: {value: "${escToken}"}}}
    options: {dependsOn: ["${ns}"]}
  vault:
    type: esosync:index:ClusterSecretStore
    properties:
      waitForReady: false
      backend:
        vault: {server: "${vaultAddress}", path: secret, version: v2, auth: {token: {value: "${vaultToken}"}}}
    options: {dependsOn: ["${ns}"]}
`)
	for _, backend := range []string{"aws", "esc", "vault"} {
		for i := range n {
			key := fmt.Sprintf("batch/%s-%02d", backend, i%distinct)
			property := "v"
			if backend == "esc" {
				key, property = fmt.Sprintf("app.k%02d", i%distinct), ""
			}
			fmt.Fprintf(&b, "  %s-%03d:\n    type: esosync:index:ExternalSecret\n    properties:\n", backend, i)
			fmt.Fprintf(&b, "      namespace: batch\n      store: ${%s.ref}\n      sync: provider\n      target: {name: %s-%03d}\n", backend, backend, i)
			if property != "" {
				fmt.Fprintf(&b, "      data: [{secretKey: v, remoteRef: {key: %q, property: %s}}]\n", key, property)
			} else {
				fmt.Fprintf(&b, "      data: [{secretKey: v, remoteRef: {key: %q}}]\n", key)
			}
		}
	}
	return b.String()
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
