package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/esosync/pulumi-esosync/tests/escserver"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

// awsClient is the real aws-sdk-go-v2 Secrets Manager client on the test
// bed's moto, with the admin user's keys: tests seed data only through it.
func awsClient(env *harness.Env) *secretsmanager.Client {
	cfg := aws.Config{
		Region:      env.AWSRegion,
		Credentials: credentials.NewStaticCredentialsProvider(env.AWSAccessKeyID, env.AWSSecretAccessKey, ""),
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(env.AWSEndpoint) })
}

// putAWS creates the secret or, when it exists, makes value its current version.
func putAWS(t *testing.T, c *secretsmanager.Client, name, value string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	var exists *smtypes.ResourceExistsException
	if errors.As(err, &exists) {
		_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)})
	}
	if err != nil {
		t.Fatalf("seeding AWS secret %s: %v", name, err)
	}
}

// startESC runs the local ESC endpoint for one test, with token accepted.
func startESC(t *testing.T, token string) *escserver.Server {
	t.Helper()
	srv, err := escserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	srv.AddToken(token)
	return srv
}

// vaultReads counts Vault KV reads (GET /v1/<mount>/data/...) by path.
func vaultReads(r *http.Request) string {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/data/") {
		return "vault.read"
	}
	return ""
}
