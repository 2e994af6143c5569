package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestAWSExample runs examples/yaml/aws through the pulumi CLI against
// moto: up extracts every key of app-secret, a new version in Secrets
// Manager shows at refresh and up brings it in, and nothing fetched leaks.
func TestAWSExample(t *testing.T) {
	runAWSScenario(t, filepath.Join("examples", "yaml", "aws"), "e2e-aws")
}

// TestAWSExampleTypeScript runs the same scenario with examples/ts/aws.
func TestAWSExampleTypeScript(t *testing.T) {
	runAWSScenario(t, filepath.Join("examples", "ts", "aws"), "e2e-aws-ts")
}

// runAWSScenario drives the AWS example program rel (relative to the
// repository root), with the test bed's overrides, through the pulumi CLI
// with its ExternalSecret in namespace ns.
func runAWSScenario(t *testing.T, rel, ns string) {
	env := harness.Shared(t)
	user, pass := randomValue(t, "aws-user"), randomValue(t, "aws-pass")
	putAWS(t, env, "app-secret", `{"username":"`+user+`","password":"`+pass+`"}`)
	values := []string{user, pass}

	x := startExample(t, exampleProgram(t, rel, newTestbed(t, ns)), ns,
		"AWS_SECRETSMANAGER_ENDPOINT="+env.AWSEndpoint, "AWS_STS_ENDPOINT="+env.AWSEndpoint)
	run := x.run
	run("config", "set", "awsRegion", env.AWSRegion)
	run("config", "set", "--secret", "awsAccessKeyId", env.AWSAccessKeyID)
	run("config", "set", "--secret", "awsSecretAccessKey", env.AWSSecretAccessKey)

	x.up(verbose...)
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": user, "password": pass})
	outputs := stackOutputs(t, run("stack", "output", "--json", "--show-secrets"))
	if outputs["ready"] != true {
		t.Errorf("outputs = %v", outputs)
	}
	x.twoRefreshes()

	pass2 := randomValue(t, "aws-pass2")
	values = append(values, pass2)
	putAWS(t, env, "app-secret", `{"username":"`+user+`","password":"`+pass2+`"}`)
	if c := x.refresh(); c["update"] != 1 {
		t.Errorf("refresh after a new AWS version does not report the ExternalSecret changed: %v\n%s", c, x.last)
	}
	x.up(verbose...)
	assertSecret(t, env, ns, "app-secret", map[string]string{"username": user, "password": pass2})
	if c := x.up(); c["same"] != 4 || len(c.changed()) != 0 {
		t.Errorf("a second up is not a no-op: %v\n%s", c, x.lastTail())
	}

	state := run("stack", "export", "--show-secrets")
	shown := run("stack", "output", "--json", "--show-secrets")
	for _, v := range values {
		for name, text := range map[string]string{"exported state": state, "stack outputs": shown, "CLI and provider logs": x.logs.String()} {
			if strings.Contains(text, v) {
				t.Errorf("%s contain a value fetched from AWS", name)
			}
		}
	}
	// The store's keys are configured Pulumi secrets: stored state (not
	// decrypted) must hold them only as ciphertext.
	stored := run("stack", "export")
	for i, v := range []string{env.AWSAccessKeyID, env.AWSSecretAccessKey} {
		if strings.Contains(stored, v) {
			t.Errorf("stored state holds the store's configured secret #%d in plain text", i+1)
		}
	}
	run("destroy", "--yes", "--skip-preview")
	assertNothingLeft(t, env, ns)
}
