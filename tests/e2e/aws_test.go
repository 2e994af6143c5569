package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestAWSExample runs examples/yaml/aws through the pulumi CLI against
// moto: up extracts every key of app-secret, a new version in Secrets
// Manager shows at refresh and up brings it in, and nothing fetched leaks.
func TestAWSExample(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	runAWSScenario(t, copyProgram(t, filepath.Join(root, "examples", "yaml", "aws")), "e2e-aws")
}

// TestAWSExampleTypeScript runs the same scenario with examples/ts/aws.
func TestAWSExampleTypeScript(t *testing.T) {
	runAWSScenario(t, typeScriptProgram(t, filepath.Join("examples", "ts", "aws")), "e2e-aws-ts")
}

// runAWSScenario drives an AWS example program in dir through the pulumi
// CLI with its ExternalSecret in namespace ns.
func runAWSScenario(t *testing.T, dir, ns string) {
	env := harness.Shared(t)
	ctx := t.Context()
	chart, err := harness.ESOChartDir()
	if err != nil {
		t.Fatal(err)
	}
	crds, err := harness.ESOCRDBundle()
	if err != nil {
		t.Fatal(err)
	}
	clients, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	user, pass := randomValue(t, "aws-user"), randomValue(t, "aws-pass")
	putAWS(t, env, "app-secret", `{"username":"`+user+`","password":"`+pass+`"}`)
	values := []string{user, pass}

	pulumi := newPulumi(t)
	pulumi.Env = append(pulumi.Env, "KUBECONFIG="+env.Kubeconfig,
		"AWS_SECRETSMANAGER_ENDPOINT="+env.AWSEndpoint, "AWS_STS_ENDPOINT="+env.AWSEndpoint)
	var logs strings.Builder
	times := newTimings(ns)
	defer times.log(t)
	run := func(args ...string) string {
		t.Helper()
		began := time.Now()
		out, err := pulumi.Run(ctx, dir, args...)
		times.add(args[0], time.Since(began))
		logs.WriteString(out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	run("stack", "init", "dev")
	run("config", "set", "awsRegion", env.AWSRegion)
	run("config", "set", "--secret", "awsAccessKeyId", env.AWSAccessKeyID)
	run("config", "set", "--secret", "awsSecretAccessKey", env.AWSSecretAccessKey)
	run("config", "set", "appNamespace", ns)
	run("config", "set", "esoChart", chart)
	run("config", "set", "esoCrds", crds)
	run("config", "set", "--type", "bool", "waitForController", "false")
	run("config", "set", "--type", "bool", "esoWebhook", "false")
	run("config", "set", "syncMode", "provider")
	run("config", "set", "--type", "bool", "storeWaitForReady", "false")

	verbose := []string{"--yes", "--skip-preview", "-v=9", "--logtostderr", "--logflow"}
	run(append([]string{"up"}, verbose...)...)
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": user, "password": pass})
	outputs := stackOutputs(t, run("stack", "output", "--json", "--show-secrets"))
	if outputs["ready"] != true {
		t.Errorf("outputs = %v", outputs)
	}
	if out := run("refresh", "--yes", "--skip-preview"); strings.Contains(out, "updated") {
		t.Errorf("refresh right after up reports changes:\n%s", tail(out, 20))
	}

	pass2 := randomValue(t, "aws-pass2")
	values = append(values, pass2)
	putAWS(t, env, "app-secret", `{"username":"`+user+`","password":"`+pass2+`"}`)
	if out := run("refresh", "--yes", "--skip-preview"); !strings.Contains(out, "1 updated") {
		t.Errorf("refresh after a new AWS version does not report the ExternalSecret changed:\n%s", out)
	}
	run(append([]string{"up"}, verbose...)...)
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": user, "password": pass2})
	if out := run("up", "--yes", "--skip-preview"); !strings.Contains(out, "4 unchanged") {
		t.Errorf("a second up is not a no-op:\n%s", tail(out, 20))
	}

	state := run("stack", "export", "--show-secrets")
	shown := run("stack", "output", "--json", "--show-secrets")
	for _, v := range values {
		for name, text := range map[string]string{"exported state": state, "stack outputs": shown, "CLI and provider logs": logs.String()} {
			if strings.Contains(text, v) {
				t.Errorf("%s contain a value fetched from AWS", name)
			}
		}
	}
	run("destroy", "--yes", "--skip-preview")
	assertNothingLeft(t, env, ns)
}
