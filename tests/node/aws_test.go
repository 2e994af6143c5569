package node

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/esosync/pulumi-esosync/tests/harness"
	"github.com/esosync/pulumi-esosync/tests/story"
)

// TestAWSFlow runs tests/node/testdata/aws: ESO's controller pod reaches
// the AWS endpoint (moto behind the harness's front, on the node IP)
// through the chart's extraEnv; a new secret version in Secrets Manager
// must show at refresh, and after up and the rollout the app serves it.
func TestAWSFlow(t *testing.T) {
	env := harness.Shared(t)
	ctx := t.Context()
	user, pass := story.Random("aws-user"), story.Random("aws-pass")
	put := func(pass string) error {
		return env.PutAWSSecret(ctx, "app-secret", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass), nil)
	}
	if err := put(pass); err != nil {
		t.Fatal(err)
	}
	flow := &story.Flow{
		Program:   filepath.Join("testdata", "aws"),
		Namespace: "node-aws",
		Config:    map[string]string{"awsEndpoint": env.AWSEndpoint, "awsRegion": env.AWSRegion},
		SecretConfig: map[string]string{
			"awsAccessKeyId": env.AWSAccessKeyID, "awsSecretAccessKey": env.AWSSecretAccessKey,
		},
		CLIEnv: []string{"AWS_SECRETSMANAGER_ENDPOINT=" + env.AWSEndpoint, "AWS_STS_ENDPOINT=" + env.AWSEndpoint},
		Secret: "app-secret",
		Env:    map[string]string{"APP_USER": "username", "APP_PASSWORD": "password"},
		Want:   map[string]string{"APP_USER": user, "APP_PASSWORD": pass},
		Rotate: func(context.Context) (map[string]string, error) {
			pass2 := story.Random("aws-pass2")
			return map[string]string{"APP_USER": user, "APP_PASSWORD": pass2}, put(pass2)
		},
		Inputs: []string{env.AWSSecretAccessKey},
	}
	runFlow(t, env, flow)
}

// runFlow runs a flow and prints its figures.
func runFlow(t *testing.T, env *harness.Env, flow *story.Flow) {
	t.Helper()
	r, err := flow.Run(t.Context(), env, t.TempDir(), report(t))
	if err != nil {
		t.Fatal(err)
	}
	reportSteps(t, r.Steps)
}
