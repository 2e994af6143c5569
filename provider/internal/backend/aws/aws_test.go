package aws_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/aws"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/contract"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

// Only moto is needed: it serves Secrets Manager, STS and IAM, with IAM
// auth on. It starts on the first test that needs it.
func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Options{AWS: true})) }

// sm is the real SDK client on moto with the admin user's keys: tests seed
// data only through it.
func sm(t *testing.T) *secretsmanager.Client {
	t.Helper()
	return secretsmanager.NewFromConfig(harness.Shared(t).AWSConfig())
}

// adminConfig is a store reading moto with the admin user's keys.
func adminConfig(t *testing.T) aws.Config {
	t.Helper()
	env := harness.Shared(t)
	return aws.Config{
		Region:   env.AWSRegion,
		Endpoint: env.AWSEndpoint,
		Static:   &aws.StaticCredentials{AccessKeyID: env.AWSAccessKeyID, SecretAccessKey: env.AWSSecretAccessKey},
		// A session of its own: what one pulumi operation would share.
		Session: backend.NewSession(),
	}
}

func newClient(t *testing.T, cfg aws.Config) backend.Client {
	t.Helper()
	c, err := aws.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// unique returns a fresh name prefix, so tests never see each other's secrets.
func unique(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "esosync-test-" + what + "-" + hex.EncodeToString(b) + "/"
}

type seed struct {
	name string
	str  *string
	bin  []byte
	tags map[string]string
}

// create writes a secret and returns its ARN and first VersionId.
func create(t *testing.T, s seed) (arn, version string) {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: sdkaws.String(s.name), SecretString: s.str, SecretBinary: s.bin}
	keys := make([]string, 0, len(s.tags))
	for k := range s.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in.Tags = append(in.Tags, smtypes.Tag{Key: sdkaws.String(k), Value: sdkaws.String(s.tags[k])})
	}
	out, err := sm(t).CreateSecret(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateSecret %s: %v", s.name, err)
	}
	t.Cleanup(func() { deleteSecret(t, s.name) })
	return sdkaws.ToString(out.ARN), sdkaws.ToString(out.VersionId)
}

func deleteSecret(t *testing.T, name string) {
	_, err := sm(t).DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{
		SecretId: sdkaws.String(name), ForceDeleteWithoutRecovery: sdkaws.Bool(true),
	})
	var nf *smtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		t.Errorf("DeleteSecret %s: %v", name, err)
	}
}

func str(s string) *string { return &s }

// steadyWindows are wide batch windows for a test that counts calls, so a
// loaded machine that starts goroutines slowly cannot split a batch the
// test expects whole. Full batches of 20 never wait for the window anyway.
var steadyWindows = aws.Timing{BatchQuietWindow: 300 * time.Millisecond, BatchMaxWait: 3 * time.Second}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The shared backend contract, against moto through the real SDK.
func TestContract(t *testing.T) {
	put := func(t *testing.T, key string, data map[string]any, tags map[string]string) {
		t.Helper()
		if err := harness.Shared(t).PutAWSSecret(context.Background(), key, mustJSON(t, data), tags); err != nil {
			t.Fatal(err)
		}
	}
	contract.Run(t, contract.Fixture{
		Put:         func(t *testing.T, key string, data map[string]any) { put(t, key, data, nil) },
		PutWithTags: put,
		Delete:      deleteSecret,
		NewClient:   func(t *testing.T) backend.Client { return newClient(t, adminConfig(t)) },
		NewBadClient: func(t *testing.T) (backend.Client, error) {
			cfg := adminConfig(t)
			cfg.Static.SecretAccessKey = "not-the-secret-key"
			return aws.New(context.Background(), cfg)
		},
		// moto checks the SigV4 signature against the user's real key.
		BadCredentialsReason:   "The request signature we calculated does not match",
		PathOnlyFindError:      "unexpected find operator",
		TagValuesMatchByPrefix: true,
	})
}

func TestGetSecret(t *testing.T) {
	p := unique(t, "get")
	jsonValue := `{"user":"get-user-value","a.b":"dotted-key-value","a":{"b":"nested-b-value"},"n":1,"list":[1,"x"]}`
	jsonARN, jsonVersion := create(t, seed{name: p + "json", str: str(jsonValue)})
	create(t, seed{name: p + "plain", str: str("plain-text-value")})
	binary := []byte{0x00, 0xff, 0xfe, 'b', 'i', 'n'}
	create(t, seed{name: p + "binary", bin: binary})
	create(t, seed{name: p + "binjson", bin: []byte(`{"k":"from-binary-value"}`)})
	// A secret with both would be ambiguous; AWS stores one or the other.

	// Versions: v1 at creation, then v2 becomes AWSCURRENT and v1 AWSPREVIOUS.
	_, v1 := create(t, seed{name: p + "versioned", str: str(`{"v":"one"}`)})
	put, err := sm(t).PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: sdkaws.String(p + "versioned"), SecretString: sdkaws.String(`{"v":"two"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	v2 := sdkaws.ToString(put.VersionId)

	c := newClient(t, adminConfig(t))
	cases := []struct {
		name, key, property, version string
		want                         string
		wantBytes                    []byte
		wantVersion                  string
		wantErr                      string // piece of the error
		notFound                     bool
	}{
		{name: "whole JSON secret as stored", key: p + "json", want: jsonValue, wantVersion: jsonVersion},
		{name: "property", key: p + "json", property: "user", want: "get-user-value"},
		{name: "number property", key: p + "json", property: "n", want: "1"},
		{name: "array property is raw JSON", key: p + "json", property: "list", want: `[1,"x"]`},
		{name: "dotted key wins over gjson path", key: p + "json", property: "a.b", want: "dotted-key-value"},
		{name: "object property", key: p + "json", property: "a", want: `{"b":"nested-b-value"}`},
		{name: "gjson array index", key: p + "json", property: "list.1", want: "x"},
		{name: "plain string secret", key: p + "plain", want: "plain-text-value"},
		{name: "property of a plain secret", key: p + "plain", property: "x", wantErr: "key x does not exist in secret " + p + "plain"},
		{name: "binary secret byte for byte", key: p + "binary", wantBytes: binary},
		{name: "property of a binary JSON secret", key: p + "binjson", property: "k", want: "from-binary-value"},
		{name: "by full ARN", key: jsonARN, property: "user", want: "get-user-value"},
		{name: "by partial ARN (no random suffix)", key: jsonARN[:len(jsonARN)-7], property: "user", want: "get-user-value"},
		{name: "current version by default", key: p + "versioned", property: "v", want: "two", wantVersion: v2},
		{name: "AWSCURRENT", key: p + "versioned", version: "AWSCURRENT", property: "v", want: "two", wantVersion: v2},
		{name: "AWSPREVIOUS stage", key: p + "versioned", version: "AWSPREVIOUS", property: "v", want: "one", wantVersion: v1},
		{name: "VersionId with uuid/ prefix", key: p + "versioned", version: "uuid/" + v1, property: "v", want: "one", wantVersion: v1},
		{name: "bare VersionId is a stage name", key: p + "versioned", version: v1, wantErr: p + "versioned", notFound: true},
		{name: "missing secret", key: p + "missing", wantErr: p + "missing", notFound: true},
		{name: "missing secret with property", key: p + "missing", property: "x", wantErr: p + "missing", notFound: true},
		{name: "missing property", key: p + "json", property: "nope", wantErr: "key nope does not exist"},
		{name: "missing nested property", key: p + "json", property: "a.c", wantErr: "key a.c does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, meta, err := c.GetSecret(context.Background(), backend.Ref{Key: tc.key, Property: tc.property, Version: tc.version})
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("want an error, got %q", got)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error does not contain %q: %v", tc.wantErr, err)
				}
				if errors.Is(err, backend.ErrNotFound) != tc.notFound {
					t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v: %v", !tc.notFound, tc.notFound, err)
				}
				for _, v := range []string{"get-user-value", "dotted-key-value", "nested-b-value", "plain-text-value"} {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error carries a secret value: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("GetSecret: %v", err)
			}
			want := []byte(tc.want)
			if tc.wantBytes != nil {
				want = tc.wantBytes
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
			if tc.wantVersion != "" && meta.Version != tc.wantVersion {
				t.Errorf("meta.Version = %q, want %q", meta.Version, tc.wantVersion)
			}
		})
	}
}

func TestGetSecretMap(t *testing.T) {
	p := unique(t, "map")
	create(t, seed{name: p + "json", str: str(`{"s":"map-string","n":42,"f":1.50,"b":false,"z":null,"o":{"k":"v"},"l":[1,2]}`)})
	create(t, seed{name: p + "bin", bin: []byte(`{"k":"map-from-binary"}`)})
	create(t, seed{name: p + "plain", str: str("map-plain-value")})
	c := newClient(t, adminConfig(t))
	cases := []struct {
		name, key, property string
		want                map[string]string
		wantErr             string
	}{
		// null decodes into a string without error in ESO's check, so it
		// becomes "" there, and here.
		{name: "strings unquoted, the rest raw JSON as stored", key: p + "json", want: map[string]string{
			"s": "map-string", "n": "42", "f": "1.50", "b": "false", "z": "", "o": `{"k":"v"}`, "l": "[1,2]",
		}},
		{name: "object property", key: p + "json", property: "o", want: map[string]string{"k": "v"}},
		{name: "binary JSON secret", key: p + "bin", want: map[string]string{"k": "map-from-binary"}},
		{name: "plain secret has no pairs", key: p + "plain", wantErr: "unable to unmarshal secret " + p + "plain"},
		{name: "string property has no pairs", key: p + "json", property: "s", wantErr: `property "s" is not a JSON object`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := c.GetSecretMap(context.Background(), backend.Ref{Key: tc.key, Property: tc.property})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
				}
				if strings.Contains(err.Error(), "map-plain-value") || strings.Contains(err.Error(), "map-string") {
					t.Errorf("error carries a secret value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotS := map[string]string{}
			for k, v := range got {
				gotS[k] = string(v)
			}
			if !reflect.DeepEqual(gotS, tc.want) {
				t.Errorf("got %v, want %v", gotS, tc.want)
			}
		})
	}
}

// ESO's spec.provider.aws.prefix goes in front of data[] keys, not of
// find's path or of the names find returns.
func TestPrefix(t *testing.T) {
	p := unique(t, "prefix")
	create(t, seed{name: p + "db", str: str(`{"password":"prefixed-value"}`), tags: map[string]string{"prefixtest": p}})
	cfg := adminConfig(t)
	cfg.Prefix = p
	c := newClient(t, cfg)
	got, _, err := c.GetSecret(context.Background(), backend.Ref{Key: "db", Property: "password"})
	if err != nil || string(got) != "prefixed-value" {
		t.Fatalf("GetSecret(db) with prefix = %q, %v", got, err)
	}
	_, _, err = c.GetSecret(context.Background(), backend.Ref{Key: p + "db"})
	if !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), p+p+"db") {
		t.Errorf("a key that already carries the prefix gets it twice (as in ESO): got %v", err)
	}
	for _, find := range []backend.Find{
		{Path: p, NameRegexp: "db$"},
		{NameRegexp: "^" + strings.ReplaceAll(p, "/", `\/`) + "db$"},
		{Tags: map[string]string{"prefixtest": p}},
	} {
		all, err := c.GetAllSecrets(context.Background(), find)
		if err != nil {
			t.Fatalf("GetAllSecrets(%+v): %v", find, err)
		}
		if len(all) != 1 || string(all[p+"db"]) != `{"password":"prefixed-value"}` {
			t.Errorf("GetAllSecrets(%+v) = %d secrets %v, want the one named %q", find, len(all), keysOf(all), p+"db")
		}
	}
}

func keysOf(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dataFrom.find beyond the contract: without a path, with binary secrets,
// and the cost in calls.
func TestFind(t *testing.T) {
	p := unique(t, "find")
	create(t, seed{name: p + "one", str: str("find-one-value"), tags: map[string]string{"findtest": p, "kind": "text"}})
	create(t, seed{name: p + "two", bin: []byte{1, 2, 3}, tags: map[string]string{"findtest": p, "kind": "binary"}})
	create(t, seed{name: p + "deep/three", str: str(`{"x":"find-three"}`), tags: map[string]string{"findtest": p, "kind": "text"}})
	c := newClient(t, adminConfig(t))
	want := map[string]string{p + "one": "find-one-value", p + "two": "\x01\x02\x03", p + "deep/three": `{"x":"find-three"}`}
	cases := []struct {
		name  string
		find  backend.Find
		names []string
	}{
		{name: "regexp without path lists the whole region", find: backend.Find{NameRegexp: "^" + p},
			names: []string{p + "deep/three", p + "one", p + "two"}},
		{name: "regexp is unanchored and sees the whole name", find: backend.Find{Path: p, NameRegexp: "/t"},
			names: []string{p + "deep/three", p + "two"}},
		{name: "tags ignored when a regexp is set", find: backend.Find{Path: p, NameRegexp: "one$", Tags: map[string]string{"kind": "binary"}},
			names: []string{p + "one"}},
		{name: "tag key and value", find: backend.Find{Tags: map[string]string{"findtest": p, "kind": "text"}},
			names: []string{p + "deep/three", p + "one"}},
		{name: "tags with path", find: backend.Find{Path: p + "deep", Tags: map[string]string{"findtest": p}},
			names: []string{p + "deep/three"}},
		{name: "path is a plain name prefix", find: backend.Find{Path: p + "t", NameRegexp: "."},
			names: []string{p + "two"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.GetAllSecrets(context.Background(), tc.find)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(keysOf(got), tc.names) {
				t.Fatalf("got %q, want %q", keysOf(got), tc.names)
			}
			for _, n := range tc.names {
				if string(got[n]) != want[n] {
					t.Errorf("%s = %q, want %q", n, got[n], want[n])
				}
			}
		})
	}
	t.Run("path alone is refused as in ESO", func(t *testing.T) {
		_, err := c.GetAllSecrets(context.Background(), backend.Find{Path: p})
		if err == nil || !strings.Contains(err.Error(), "unexpected find operator") {
			t.Fatalf("want ESO's unexpected find operator error, got %v", err)
		}
	})
	t.Run("matches are read in batches and shared with data reads", func(t *testing.T) {
		cfg := adminConfig(t) // a new session: nothing cached yet
		c := newClient(t, cfg)
		if _, err := c.GetAllSecrets(context.Background(), backend.Find{Path: p, NameRegexp: "."}); err != nil {
			t.Fatal(err)
		}
		for name := range want {
			if _, _, err := c.GetSecret(context.Background(), backend.Ref{Key: name}); err != nil {
				t.Fatal(err)
			}
		}
		n := cfg.Session.CallCounts()
		if n["aws.ListSecrets"] != 1 || n["aws.BatchGetSecretValue"] != 1 || n["aws.GetSecretValue"] != 0 {
			t.Errorf("calls = %v, want 1 ListSecrets, 1 BatchGetSecretValue, 0 GetSecretValue", n)
		}
	})
}

// The acceptance figure: 200 concurrent reads of 40 distinct secrets cost
// two BatchGetSecretValue calls and no GetSecretValue.
func TestCallCount(t *testing.T) {
	const secrets, reads = 40, 200
	p := unique(t, "count")
	for i := range secrets {
		create(t, seed{name: fmt.Sprintf("%ss%02d", p, i), str: str(fmt.Sprintf(`{"i":%d}`, i))})
	}
	cfg := adminConfig(t)
	cfg.Timing = steadyWindows
	c := newClient(t, cfg)

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, reads)
	for r := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			i := r % secrets
			got, _, err := c.GetSecret(context.Background(), backend.Ref{Key: fmt.Sprintf("%ss%02d", p, i), Property: "i"})
			if err == nil && string(got) != fmt.Sprint(i) {
				err = fmt.Errorf("secret %d: got %q", i, got)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := cfg.Session.CallCounts()
	line := fmt.Sprintf("aws calls: BatchGetSecretValue=%d GetSecretValue=%d (%d reads, %d secrets)",
		n["aws.BatchGetSecretValue"], n["aws.GetSecretValue"], reads, secrets)
	t.Log(line)
	fmt.Println(line)
	if n["aws.BatchGetSecretValue"] != 2 || n["aws.GetSecretValue"] != 0 {
		t.Errorf("want BatchGetSecretValue=2 GetSecretValue=0, got %v", n)
	}
}

// A batch holding ids that exist and ids that do not: one call, and each
// caller gets its own answer.
func TestBatchMixesFoundAndMissing(t *testing.T) {
	p := unique(t, "mixed")
	create(t, seed{name: p + "here", str: str("mixed-here-value")})
	arn, _ := create(t, seed{name: p + "arn", str: str("mixed-arn-value")})
	cfg := adminConfig(t)
	cfg.Timing = steadyWindows
	c := newClient(t, cfg)
	keys := []string{p + "here", p + "gone", arn, p + "also-gone"}
	type result struct {
		v   string
		err error
	}
	results := make([]result, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, err := c.GetSecret(context.Background(), backend.Ref{Key: k})
			results[i] = result{string(v), err}
		}()
	}
	wg.Wait()
	if r := results[0]; r.err != nil || r.v != "mixed-here-value" {
		t.Errorf("here: %q, %v", r.v, r.err)
	}
	if r := results[2]; r.err != nil || r.v != "mixed-arn-value" {
		t.Errorf("by ARN: %q, %v", r.v, r.err)
	}
	for _, i := range []int{1, 3} {
		if err := results[i].err; !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), keys[i]) {
			t.Errorf("%s: want ErrNotFound naming the key, got %v", keys[i], err)
		}
	}
	n := cfg.Session.CallCounts()
	if n["aws.BatchGetSecretValue"] != 1 || n["aws.GetSecretValue"] != 0 {
		t.Errorf("calls = %v, want one BatchGetSecretValue", n)
	}
	// Not-found is remembered too: asking again costs nothing.
	if _, _, err := c.GetSecret(context.Background(), backend.Ref{Key: p + "gone"}); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("second read: %v", err)
	}
	if got := cfg.Session.CallCounts()["aws.BatchGetSecretValue"]; got != 1 {
		t.Errorf("a cached not-found cost another call (%d)", got)
	}
}

func TestValidate(t *testing.T) {
	env := harness.Shared(t)
	good := adminConfig(t)
	wrongSecret := adminConfig(t)
	wrongSecret.Static.SecretAccessKey = "wrong-secret-access-key-value"
	unknownKey := adminConfig(t)
	unknownKey.Static = &aws.StaticCredentials{AccessKeyID: "AKIAESOSYNCUNKNOWN01", SecretAccessKey: "unknown-key-secret-value"}
	cases := []struct {
		name    string
		cfg     aws.Config
		wantErr []string
	}{
		{name: "admin keys", cfg: good},
		{name: "wrong secret key", cfg: wrongSecret, wantErr: []string{"SignatureDoesNotMatch", "GetCallerIdentity"}},
		{name: "unknown access key", cfg: unknownKey, wantErr: []string{"InvalidClientTokenId", "The security token included in the request is invalid"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Session = backend.NewSession()
			err := newClient(t, cfg).Validate(context.Background())
			if n := cfg.Session.CallCounts(); n["aws.GetCallerIdentity"] != 1 {
				t.Errorf("calls = %v, want one GetCallerIdentity", n)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted bad credentials")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q: %v", w, err)
				}
			}
			for _, s := range []string{tc.cfg.Static.SecretAccessKey, env.AWSSecretAccessKey} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error carries a secret key: %v", err)
				}
			}
		})
	}
	t.Run("config errors", func(t *testing.T) {
		for _, cfg := range []aws.Config{
			{Region: "us-east-1", Static: &aws.StaticCredentials{SecretAccessKey: "x"}},
			{Region: "us-east-1", Static: &aws.StaticCredentials{AccessKeyID: "AKIA"}},
			{Region: "us-east-1", WebIdentity: &aws.WebIdentity{Token: "x"}},
			{Region: "us-east-1", WebIdentity: &aws.WebIdentity{RoleARN: "arn:aws:iam::123456789012:role/r"}},
		} {
			if _, err := aws.New(context.Background(), cfg); err == nil {
				t.Errorf("New(%+v) accepted an incomplete credential", cfg)
			}
		}
	})
}

// A user whose policy does not allow reading secrets is refused by moto,
// the error names the key and carries AWS's code, and the admin's cached
// value of the same secret never reaches it (the cache is per identity).
func TestRestrictedUser(t *testing.T) {
	env := harness.Shared(t)
	p := unique(t, "restricted")
	create(t, seed{name: p + "db", str: str(`{"password":"restricted-value"}`)})
	admin := newClient(t, adminConfig(t))
	if _, _, err := admin.GetSecret(context.Background(), backend.Ref{Key: p + "db"}); err != nil {
		t.Fatal(err)
	}

	user := strings.Trim(strings.ReplaceAll(p, "/", ""), "-")
	keyID, secret, err := env.NewAWSUser(context.Background(), user, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["secretsmanager:ListSecrets","sts:GetCallerIdentity"],"Resource":"*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	cfg := adminConfig(t)
	cfg.Static = &aws.StaticCredentials{AccessKeyID: keyID, SecretAccessKey: secret}
	c := newClient(t, cfg)
	if err := c.Validate(context.Background()); err != nil {
		t.Errorf("Validate: the user's keys are valid, got %v", err)
	}
	_, _, err = c.GetSecret(context.Background(), backend.Ref{Key: p + "db", Property: "password"})
	if err == nil {
		t.Fatal("a user without secretsmanager:GetSecretValue read the secret")
	}
	t.Logf("restricted user: %v", err)
	for _, w := range []string{p + "db", "AccessDenied", "secretsmanager:GetSecretValue"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q: %v", w, err)
		}
	}
	if errors.Is(err, backend.ErrNotFound) || strings.Contains(err.Error(), "restricted-value") {
		t.Errorf("want a plain access error without the value: %v", err)
	}
	// The denial is not cached: once the user may read, the next read works.
	_, err = iam.NewFromConfig(env.AWSConfig()).PutUserPolicy(context.Background(), &iam.PutUserPolicyInput{
		UserName: sdkaws.String(user), PolicyName: sdkaws.String("read"),
		PolicyDocument: sdkaws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := c.GetSecret(context.Background(), backend.Ref{Key: p + "db", Property: "password"})
	if err != nil || string(got) != "restricted-value" {
		t.Errorf("after granting GetSecretValue: %q, %v", got, err)
	}
}

// ESO reads data[] with GetSecretValue only, so policies often grant just
// that. Such an identity falls back to one GetSecretValue per secret after
// the first batch is refused, and keeps working.
func TestGetSecretValueOnlyPolicy(t *testing.T) {
	env := harness.Shared(t)
	p := unique(t, "getonly")
	for _, n := range []string{"a", "b", "c"} {
		create(t, seed{name: p + n, str: str("getonly-" + n)})
	}
	user := strings.Trim(strings.ReplaceAll(p, "/", ""), "-")
	keyID, secret, err := env.NewAWSUser(context.Background(), user, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["secretsmanager:GetSecretValue"],"Resource":"*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	cfg := adminConfig(t)
	cfg.Static = &aws.StaticCredentials{AccessKeyID: keyID, SecretAccessKey: secret}
	cfg.Timing = steadyWindows
	c := newClient(t, cfg)
	var wg sync.WaitGroup
	for _, n := range []string{"a", "b", "c", "a", "b", "c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _, err := c.GetSecret(context.Background(), backend.Ref{Key: p + n})
			if err != nil || string(got) != "getonly-"+n {
				t.Errorf("%s: %q, %v", n, got, err)
			}
		}()
	}
	wg.Wait()
	if _, _, err := c.GetSecret(context.Background(), backend.Ref{Key: p + "d"}); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("missing secret: %v", err)
	}
	n := cfg.Session.CallCounts()
	if n["aws.BatchGetSecretValue"] != 1 || n["aws.GetSecretValue"] != 4 {
		t.Errorf("calls = %v, want 1 refused BatchGetSecretValue and 4 GetSecretValue", n)
	}
}

// spec.provider.aws.role: the base credentials assume the role, once per
// client, and reads run as the role.
func TestAssumeRole(t *testing.T) {
	env := harness.Shared(t)
	ctx := context.Background()
	p := unique(t, "role")
	create(t, seed{name: p + "db", str: str("role-read-value")})
	adminARN, err := sts.NewFromConfig(env.AWSConfig()).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	roleName := strings.Trim(strings.ReplaceAll(p, "/", ""), "-")
	iamc := iam.NewFromConfig(env.AWSConfig())
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: sdkaws.String(roleName),
		AssumeRolePolicyDocument: sdkaws.String(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":{"AWS":%q},"Action":"sts:AssumeRole"}]}`, sdkaws.ToString(adminARN.Arn))),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iamc.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: sdkaws.String(roleName), PolicyName: sdkaws.String("read"),
		PolicyDocument: sdkaws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}]}`),
	}); err != nil {
		t.Fatal(err)
	}
	cfg := adminConfig(t)
	cfg.Role = sdkaws.ToString(role.Role.Arn)
	cfg.ExternalID = "esosync-external-id"
	c := newClient(t, cfg)
	if err := c.Validate(ctx); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	got, _, err := c.GetSecret(ctx, backend.Ref{Key: p + "db"})
	if err != nil || string(got) != "role-read-value" {
		t.Fatalf("GetSecret as the role: %q, %v", got, err)
	}
	if n := cfg.Session.CallCounts()["aws.AssumeRole"]; n != 1 {
		t.Errorf("AssumeRole calls = %d, want 1 (one credentials cache per client)", n)
	}

	t.Run("a role that does not trust the credentials", func(t *testing.T) {
		untrusted, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName: sdkaws.String(roleName + "-untrusted"),
			AssumeRolePolicyDocument: sdkaws.String(`{"Version":"2012-10-17","Statement":[
				{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/somebody-else"},"Action":"sts:AssumeRole"}]}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg := adminConfig(t)
		cfg.Role = sdkaws.ToString(untrusted.Role.Arn)
		err = newClient(t, cfg).Validate(ctx)
		if err == nil {
			t.Fatal("Validate accepted a role whose trust policy names someone else")
		}
		if !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "AssumeRole") {
			t.Errorf("want STS's AccessDenied for AssumeRole, got %v", err)
		}
	})
}

// The cache outlives clients but not the session (a pulumi operation), and
// a second client of the same identity shares the first one's reads.
func TestCacheSharedPerIdentity(t *testing.T) {
	p := unique(t, "shared")
	create(t, seed{name: p + "x", str: str("shared-one")})
	cfg := adminConfig(t)
	first := newClient(t, cfg)
	if _, _, err := first.GetSecret(context.Background(), backend.Ref{Key: p + "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm(t).PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: sdkaws.String(p + "x"), SecretString: sdkaws.String("shared-two"),
	}); err != nil {
		t.Fatal(err)
	}
	second := newClient(t, cfg)
	got, _, err := second.GetSecret(context.Background(), backend.Ref{Key: p + "x"})
	if err != nil || string(got) != "shared-one" {
		t.Errorf("second client of the same identity: %q, %v; want the cached first value", got, err)
	}
	if n := cfg.Session.CallCounts()["aws.BatchGetSecretValue"]; n != 1 {
		t.Errorf("BatchGetSecretValue = %d, want 1", n)
	}
	cfg.Session = backend.NewSession() // the next operation
	got, _, err = newClient(t, cfg).GetSecret(context.Background(), backend.Ref{Key: p + "x"})
	if err != nil || string(got) != "shared-two" {
		t.Errorf("in a new session: %q, %v", got, err)
	}
}

// A caller whose context ends stops waiting; the batch still completes for
// the others.
func TestContextCancel(t *testing.T) {
	p := unique(t, "cancel")
	create(t, seed{name: p + "x", str: str("cancel-value")})
	cfg := adminConfig(t)
	cfg.Timing = aws.Timing{BatchQuietWindow: 200 * time.Millisecond}
	c := newClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := c.GetSecret(ctx, backend.Ref{Key: p + "x"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("want the caller's deadline, got %v", err)
	}
	got, _, err := c.GetSecret(context.Background(), backend.Ref{Key: p + "x"})
	if err != nil || string(got) != "cancel-value" {
		t.Errorf("other caller: %q, %v", got, err)
	}
}
