package parity

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// The AWS Secrets Manager stores, both on moto with the admin user's
// static keys: awsStore plain, awsPrefixStore with a prefix.
const (
	awsStore       = "parity-aws"
	awsPrefixStore = "parity-aws-prefix"
	// awsPrefix is awsPrefixStore's spec.provider.aws.prefix.
	awsPrefix = "parity/pfx/"
)

// Pinned versions of parity/versions (awsVersions). A ClientRequestToken
// becomes the VersionId of the version it writes, so the case can name it
// before the seed runs; Secrets Manager wants 32 to 64 characters.
const (
	awsVersion1 = "a1a1a1a1-0000-4000-8000-000000000001"
	awsVersion2 = "a1a1a1a1-0000-4000-8000-000000000002"
	awsVersion3 = "a1a1a1a1-0000-4000-8000-000000000003"
	// awsStage is a custom staging label, on awsVersion3 only.
	awsStage = "PARITY"
)

// setupAWS creates the AWS stores. Each is validated by esosync
// (sts:GetCallerIdentity against moto) and must be reported Valid by ESO;
// both reach moto through AWS_SECRETSMANAGER_ENDPOINT and AWS_STS_ENDPOINT,
// which newBed sets for both.
func (b *bed) setupAWS() error {
	b.sm = secretsmanager.NewFromConfig(b.env.AWSConfig())
	for _, s := range []struct{ name, prefix string }{{awsStore, ""}, {awsPrefixStore, awsPrefix}} {
		backend := map[string]any{
			"region": b.env.AWSRegion,
			"auth": map[string]any{"secretRef": map[string]any{
				"accessKeyId":     map[string]any{"value": b.env.AWSAccessKeyID},
				"secretAccessKey": map[string]any{"value": b.env.AWSSecretAccessKey},
			}},
		}
		if s.prefix != "" {
			backend["prefix"] = s.prefix
		}
		if _, err := b.create("ClusterSecretStore", s.name, map[string]any{
			"credentialsNamespace": ns, "waitForReady": true, "timeout": "60s",
			"backend": map[string]any{"aws": backend},
		}); err != nil {
			return fmt.Errorf("store %s: %w", s.name, err)
		}
	}
	return nil
}

// awsString seeds secret name with a SecretString: created, or given value
// as its new AWSCURRENT version (harness.PutAWSSecret).
func awsString(name, value string) func(*testing.T, *bed) {
	return awsTagged(name, value, nil)
}

// awsTagged is awsString with tags, set when the secret is created.
func awsTagged(name, value string, tags map[string]string) func(*testing.T, *bed) {
	return func(t *testing.T, b *bed) {
		t.Helper()
		if err := b.env.PutAWSSecret(context.Background(), name, value, tags); err != nil {
			t.Fatal(err)
		}
	}
}

// awsBinary seeds secret name with a SecretBinary, created or as its new
// AWSCURRENT version.
func awsBinary(name string, value []byte) func(*testing.T, *bed) {
	return func(t *testing.T, b *bed) {
		t.Helper()
		ctx := context.Background()
		_, err := b.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretBinary: value})
		var exists *smtypes.ResourceExistsException
		if errors.As(err, &exists) {
			_, err = b.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretBinary: value})
		}
		if err != nil {
			t.Fatalf("seeding binary AWS secret %s: %v", name, err)
		}
	}
}

// awsVersions seeds secret name with three versions whose VersionIds are
// pinned: awsVersion1 {"v":"first"} (then AWSPREVIOUS), awsVersion2
// {"v":"second"} (AWSCURRENT), and awsVersion3 {"v":"staged"} carrying only
// the label awsStage. A pinned token makes each write idempotent, so every
// case that reads the secret may run the seed.
func awsVersions(name string) func(*testing.T, *bed) {
	return func(t *testing.T, b *bed) {
		t.Helper()
		ctx := context.Background()
		_, err := b.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name),
			SecretString: aws.String(`{"v":"first"}`), ClientRequestToken: aws.String(awsVersion1)})
		var exists *smtypes.ResourceExistsException
		if errors.As(err, &exists) { // seeded by an earlier case; the pinned puts below are idempotent
			err = nil
		}
		if err == nil {
			_, err = b.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name),
				SecretString: aws.String(`{"v":"second"}`), ClientRequestToken: aws.String(awsVersion2)})
		}
		if err == nil {
			_, err = b.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name),
				SecretString: aws.String(`{"v":"staged"}`), ClientRequestToken: aws.String(awsVersion3),
				VersionStages: []string{awsStage}})
		}
		if err != nil {
			t.Fatalf("seeding the versions of AWS secret %s: %v", name, err)
		}
	}
}

// awsDeleted seeds secret name and schedules it for deletion with the
// default recovery window, as `aws secretsmanager delete-secret` does: it
// still exists, but reading it fails.
func awsDeleted(name, value string) func(*testing.T, *bed) {
	return func(t *testing.T, b *bed) {
		t.Helper()
		ctx := context.Background()
		_, err := b.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		var exists *smtypes.ResourceExistsException
		if err != nil && !errors.As(err, &exists) { // exists: the case ran before in this bed
			t.Fatalf("seeding AWS secret %s: %v", name, err)
		}
		_, err = b.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
		var scheduled *smtypes.InvalidRequestException // already scheduled for deletion
		if err != nil && !errors.As(err, &scheduled) {
			t.Fatalf("deleting AWS secret %s: %v", name, err)
		}
	}
}

// awsCases run against awsStore unless they name awsPrefixStore. Secret
// names start with "parity/"; a find's path or regexp selects one case's
// secrets only. No secret scheduled for deletion may sit below a find's
// path: moto's BatchGetSecretValue with Filters (ESO's find with a path
// or tags) fails as a whole on such a secret, where ListSecrets (esosync)
// skips it.
var awsCases = []parityCase{
	{name: "aws-property", seed: awsString("parity/app", `{"user":"admin","pass":"s3cr3t"}`), spec: data("pass", "parity/app", "pass")},
	{name: "aws-whole-secret-json", seed: awsString("parity/whole", `{"b":"2","a":"1<&>"}`), spec: data("all", "parity/whole", "")},
	{name: "aws-plain-string", seed: awsString("parity/plain", "just text, no JSON ✓"), spec: data("v", "parity/plain", "")},
	{name: "aws-nested-gjson", seed: awsString("parity/nested", `{"db":{"host":"db.local","port":5432,"opts":["a","b"]}}`),
		spec: dataOf(item("host", "parity/nested", "db.host"), item("db", "parity/nested", "db"), item("opt", "parity/nested", "db.opts.1"))},
	{name: "aws-gjson-query", seed: awsString("parity/query", `{"users":[{"name":"ann","role":"admin"},{"name":"bob","role":"dev"}]}`),
		spec: dataOf(item("bob-role", "parity/query", `users.#(name=="bob").role`), item("count", "parity/query", "users.#"))},
	{name: "aws-dotted-key-wins-over-gjson", seed: awsString("parity/dots", `{"a.b":"literal","a":{"b":"nested"}}`),
		spec: data("v", "parity/dots", "a.b")},
	// gjson renders each as its Result.String: 1.50 as 1.5, 1e3 as 1000,
	// null as "".
	{name: "aws-numbers-bools-null", seed: awsString("parity/scalars", `{"n":42,"f":1.50,"e":1e3,"on":true,"z":null}`),
		spec: dataOf(item("n", "parity/scalars", "n"), item("f", "parity/scalars", "f"), item("e", "parity/scalars", "e"),
			item("on", "parity/scalars", "on"), item("z", "parity/scalars", "z"))},
	{name: "aws-unicode-value", seed: awsString("parity/uni", `{"greeting":"grüß dich ✓ 日本"}`), spec: data("greeting", "parity/uni", "greeting")},
	// GetSecretMap: strings unquoted, everything else as its raw JSON.
	{name: "aws-extract", seed: awsString("parity/ext", `{"user":"u","pass":"p","n":1.50,"b":false,"z":null,"o":{"k":"v"},"l":[1,2]}`),
		spec: extract("parity/ext", nil)},
	{name: "aws-extract-property", seed: awsString("parity/extprop", `{"cfg":{"k1":"v1","k2":2}}`),
		spec: extract("parity/extprop", map[string]any{"property": "cfg"})},
	{name: "aws-extract-unicode-conversion", seed: awsString("parity/extuni", `{"a b":"w","x/y":"z","ok":"v"}`),
		spec: extract("parity/extuni", unicodeConversion)},
	{name: "aws-extract-default-conversion", seed: awsString("parity/extuni", `{"a b":"w","x/y":"z","ok":"v"}`),
		spec: extract("parity/extuni", nil)},
	{name: "aws-extract-decode-base64", seed: awsString("parity/extb64", `{"a":"QQ==","b":"Qg=="}`),
		spec: extract("parity/extb64", base64Decoding)},
	{name: "aws-decode-base64", seed: awsString("parity/b64", `{"v":"aGVsbG8=","u":"-_8_"}`),
		spec: dataOf(item("v", "parity/b64", "v", base64Decoding), item("u", "parity/b64", "u", base64URLDecoding))},
	// Auto decodes what is base64 and passes the rest through.
	{name: "aws-decode-auto-whole", seed: seeds(awsString("parity/b64whole", base64.StdEncoding.EncodeToString([]byte(binary))),
		awsString("parity/auto-plain", "not base64!")),
		spec: dataOf(item("blob", "parity/b64whole", "", autoDecoding), item("plain", "parity/auto-plain", "", autoDecoding))},
	// A SecretBinary is the whole secret byte for byte, and the payload
	// gjson and GetSecretMap read.
	{name: "aws-binary", seed: awsBinary("parity/bin", []byte(binary)), spec: data("blob", "parity/bin", "")},
	{name: "aws-binary-json-property", seed: awsBinary("parity/binjson", []byte(`{"k":"from-binary","n":7}`)),
		spec: dataOf(item("k", "parity/binjson", "k"), item("n", "parity/binjson", "n"))},
	{name: "aws-binary-extract", seed: awsBinary("parity/binext", []byte(`{"k":"from-binary","o":{"x":1}}`)),
		spec: extract("parity/binext", nil)},
	{name: "aws-version-stage-previous", seed: awsVersions("parity/versions"),
		spec: dataOf(item("current", "parity/versions", "v"), item("previous", "parity/versions", "v", map[string]any{"version": "AWSPREVIOUS"}))},
	{name: "aws-version-id", seed: awsVersions("parity/versions"),
		spec: dataOf(item("pinned", "parity/versions", "v", map[string]any{"version": "uuid/" + awsVersion1}),
			item("current", "parity/versions", "v", map[string]any{"version": "uuid/" + awsVersion2}))},
	{name: "aws-version-custom-stage", seed: awsVersions("parity/versions"),
		spec: dataOf(item("staged", "parity/versions", "v", map[string]any{"version": awsStage}), item("current", "parity/versions", "v"))},
	{name: "aws-extract-version", seed: awsVersions("parity/versions"),
		spec: extract("parity/versions", map[string]any{"version": "AWSPREVIOUS"})},
	// Later entries win: data after dataFrom.
	{name: "aws-data-overrides-extract", seed: seeds(awsString("parity/merge", `{"user":"from-extract","pass":"p"}`),
		awsString("parity/merge-override", `{"user":"from-data"}`)),
		spec: map[string]any{"dataFrom": extract("parity/merge", nil)["dataFrom"], "data": []any{item("user", "parity/merge-override", "user")}}},
	{name: "aws-missing-key-retain-fails", spec: data("x", "parity/never-written", "a"),
		fails: &failure{cause: causeNotFound, at: []string{"spec.data[0] (key: parity/never-written)"}}},
	{name: "aws-missing-key-delete", spec: with(data("x", "parity/never-written-2", "a"), "target", map[string]any{"deletionPolicy": "Delete"})},
	{name: "aws-missing-extract-delete", spec: with(extract("parity/never-written-3", nil), "target", map[string]any{"deletionPolicy": "Delete"})},
	{name: "aws-missing-property-fails", seed: awsString("parity/missprop", `{"a":"1"}`), spec: data("x", "parity/missprop", "nope"),
		fails: &failure{cause: causeNoProperty, at: []string{"spec.data[0] (key: parity/missprop)", "key nope does not exist in secret parity/missprop"}}},
	{name: "aws-extract-not-json-fails", seed: awsString("parity/extplain", "plain text"), spec: extract("parity/extplain", nil),
		fails: &failure{cause: causeNotObject, at: []string{"spec.dataFrom[0].extract", "unable to unmarshal secret parity/extplain"}}},
	{name: "aws-deleted-secret-fails", seed: awsDeleted("parity/gone", `{"v":"gone soon"}`), spec: data("v", "parity/gone", "v"),
		fails: &failure{cause: causeMarkedDeleted, at: []string{"spec.data[0] (key: parity/gone)"}}},
	// ESO reads path matches with BatchGetSecretValue and Filters, esosync
	// lists them and reads them by id: the same secrets, binary included.
	{name: "aws-find-name-path", seed: seeds(awsString("parity/find/db-a", "A"), awsString("parity/find/db-b", `{"k":"b"}`),
		awsBinary("parity/find/db-bin", []byte(binary)), awsString("parity/find/web", "W")),
		spec: find(map[string]any{"path": "parity/find/", "name": map[string]any{"regexp": "db-"}}, rewriteRegexp("^parity/find/", ""))},
	// Without a path both list the whole region.
	{name: "aws-find-name-no-path", seed: seeds(awsString("parity/findall/one", "1"), awsString("parity/findall/two", "2")),
		spec: find(map[string]any{"name": map[string]any{"regexp": "^parity/findall/"}, "conversionStrategy": "Unicode"})},
	{name: "aws-find-tags-path", seed: seeds(
		awsTagged("parity/findtags/a", "A", map[string]string{"parity-team": "blue"}),
		awsTagged("parity/findtags/b", "B", map[string]string{"parity-team": "blue"}),
		awsTagged("parity/findtags/c", "C", map[string]string{"parity-team": "red"})),
		spec: find(map[string]any{"path": "parity/findtags/", "tags": map[string]any{"parity-team": "blue"}}, rewriteRegexp("/", "-"))},
	{name: "aws-find-tags-no-path", seed: seeds(
		awsTagged("parity/findtier/x", "X", map[string]string{"parity-tier": "gold"}),
		awsTagged("parity/findtier/y", "Y", map[string]string{"parity-tier": "silver"})),
		spec: find(map[string]any{"tags": map[string]any{"parity-tier": "gold"}}, rewriteRegexp("^parity/findtier/", ""))},
	{name: "aws-find-path-only-fails", spec: find(map[string]any{"path": "parity/find/"}),
		fails: &failure{cause: causeFindOperator, at: []string{"spec.dataFrom[0].find", "error getting all secrets"}}},
	{name: "aws-template", seed: awsString("parity/tpl", `{"user":"app","pass":"pw","port":5432}`),
		spec: with(extract("parity/tpl", nil), "target", map[string]any{"template": map[string]any{"type": "kubernetes.io/basic-auth",
			"data": map[string]any{
				"username": "{{ .user }}",
				"password": "{{ .pass | upper }}",
				"dsn":      "postgres://{{ .user }}@db:{{ .port }}/app?p={{ .pass | b64enc }}"}}})},
	{name: "aws-rewrite-regexp", seed: awsString("parity/rw", `{"db-user":"u","db-pass":"p","other":"o"}`),
		spec: extract("parity/rw", nil, rewriteRegexp("^db-(.*)", "DB_$1"))},
	{name: "aws-rewrite-transform", seed: awsString("parity/rwt", `{"user":"u","pass":"p"}`),
		spec: extract("parity/rwt", nil, map[string]any{"transform": map[string]any{"template": "APP_{{ .value | upper }}"}})},
	// The prefix goes in front of data[] and extract keys on both sides.
	{name: "aws-prefix-store", store: awsPrefixStore, seed: awsString(awsPrefix+"db", `{"pass":"pfx-pass","user":"pfx-user"}`),
		spec: map[string]any{"data": []any{item("pass", "db", "pass")}, "dataFrom": extract("db", nil)["dataFrom"]}},
	{name: "aws-prefix-find-name-no-path", store: awsPrefixStore,
		seed: seeds(awsString("parity/pfxfind/a", "listed"), awsString(awsPrefix+"parity/pfxfind/a", "prefixed-twin")),
		spec: find(map[string]any{"name": map[string]any{"regexp": "^parity/pfxfind/"}}, rewriteRegexp("^parity/pfxfind/", "")),
		differs: "find by name without a path, on a store with a prefix: ESO's findByName lists the region and reads each " +
			"match through fetch, which puts the store prefix in front of the listed name, so it reads another secret " +
			"(here the twin parity/pfx/parity/pfxfind/a; without one it fails with Secret does not exist); esosync reads " +
			"the listed secret itself (backend/aws/find.go), as ESO does for a find with a path or tags",
		provider: syncs(map[string]string{"a": "listed"}),
		eso:      syncs(map[string]string{"a": "prefixed-twin"})},
}

// TestParityAWS runs every AWS Secrets Manager case through `sync:
// provider` and through the ESO controller, both against moto, and
// compares the resulting Secrets, or the failures, or checks the
// documented difference.
func TestParityAWS(t *testing.T) {
	runParity(t, "aws", awsStore, awsCases)
}
