package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/tidwall/gjson"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// These tests drive the batcher and the ESO helpers without a server; the
// behaviour against real AWS semantics is in aws_test.go (moto).

func TestEscapeDotsIfRequired(t *testing.T) {
	payload := `{"a.b":"literal","a":{"b":"nested","c":"only-nested"},"x":{"y.z":"deep-literal"}}`
	cases := []struct{ property, want string }{
		{"a.b", "literal"},     // the literal key wins
		{"a.c", "only-nested"}, // no literal key: a gjson path
		{"a", `{"b":"nested","c":"only-nested"}`},
		{"x.y.z", ""},              // all dots are escaped or none, as in ESO
		{`x.y\.z`, "deep-literal"}, // gjson's own escaping still works
	}
	for _, tc := range cases {
		got := gjsonGet(payload, tc.property)
		if got != tc.want {
			t.Errorf("property %q: got %q, want %q", tc.property, got, tc.want)
		}
	}
}

func gjsonGet(payload, property string) string {
	v := &secretValue{str: &payload}
	p := v.payload()
	return gjson.Get(p, escapeDotsIfRequired(property, p)).String()
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestMatchValue(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
	values := []secretValue{
		{name: "app/db", arn: arn},
		{name: "app/db-x", arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-x-GhIjKl"},
	}
	cases := []struct {
		id   string
		want string // name of the matched value, "" for none
	}{
		{"app/db", "app/db"},
		{arn, "app/db"},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db", "app/db"},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-x", "app/db-x"},
		{"app/DB", ""},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:app", ""},
	}
	for _, tc := range cases {
		got := ""
		if v := matchValue(values, tc.id); v != nil {
			got = v.name
		}
		if got != tc.want {
			t.Errorf("matchValue(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestScopeOf(t *testing.T) {
	base := Config{Region: "us-east-1", Static: &StaticCredentials{AccessKeyID: "AKIA1", SecretAccessKey: "secret-one-value"}}
	same := base
	same.Prefix = "other-prefix/" // the prefix is part of the key, not of who reads
	scopes := map[string]Config{}
	for name, cfg := range map[string]Config{
		"other secret":   {Region: "us-east-1", Static: &StaticCredentials{AccessKeyID: "AKIA1", SecretAccessKey: "secret-two-value"}},
		"session token":  {Region: "us-east-1", Static: &StaticCredentials{AccessKeyID: "AKIA1", SecretAccessKey: "secret-one-value", SessionToken: "t"}},
		"role":           {Region: "us-east-1", Role: "arn:aws:iam::1:role/r", Static: base.Static},
		"external id":    {Region: "us-east-1", Role: "arn:aws:iam::1:role/r", ExternalID: "e", Static: base.Static},
		"endpoint":       {Region: "us-east-1", Endpoint: "http://127.0.0.1:1", Static: base.Static},
		"default chain":  {Region: "us-east-1"},
		"web identity":   {Region: "us-east-1", WebIdentity: &WebIdentity{RoleARN: "arn:aws:iam::1:role/r", Token: "x"}},
		"other region":   {Region: "eu-west-1", Static: base.Static},
		"the base store": base,
	} {
		s := scopeOf(cfg, cfg.Region)
		if other, dup := scopes[s]; dup {
			t.Errorf("%s shares a scope with %+v", name, other)
		}
		scopes[s] = cfg
		if strings.Contains(s, "secret-one-value") || strings.Contains(s, "AKIA1") {
			t.Errorf("scope %q carries a credential", s)
		}
	}
	if scopeOf(base, "us-east-1") != scopeOf(same, "us-east-1") {
		t.Error("the same identity got two scopes")
	}
	// Fresh service-account tokens of one subject share a scope.
	tok := func(sub, salt string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + b64(fmt.Sprintf(`{"iss":"k8s","sub":%q,"jti":%q}`, sub, salt)) + ".sig"
	}
	w := func(token string) Config {
		return Config{Region: "r", WebIdentity: &WebIdentity{RoleARN: "arn:aws:iam::1:role/r", Token: token}}
	}
	if scopeOf(w(tok("sa:a", "1")), "r") != scopeOf(w(tok("sa:a", "2")), "r") {
		t.Error("two tokens of one service account got two scopes")
	}
	if scopeOf(w(tok("sa:a", "1")), "r") == scopeOf(w(tok("sa:b", "1")), "r") {
		t.Error("two service accounts share a scope")
	}
}

func TestSanitize(t *testing.T) {
	err := sanitize(&smithy.GenericAPIError{Code: "IncompleteSignature", Message: "bad header Credential=AKIAX/2026/us-east-1/sts/aws4_request, Signature=abc"})
	if strings.Contains(err.Error(), "AKIAX") || !strings.Contains(err.Error(), "IncompleteSignature") {
		t.Errorf("sanitize: %v", err)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "IncompleteSignature" {
		t.Error("sanitize lost the AWS error code")
	}
}

// fakeSM answers like Secrets Manager from a map of name -> value.
type fakeSM struct {
	mu       sync.Mutex
	secrets  map[string]string
	batches  [][]string
	gets     []*secretsmanager.GetSecretValueInput
	batchErr error
	// entryErr, when set, reports this error for every id in Errors[].
	entryErr *types.APIErrorType
	// rename returns values under another name, so ids go unmatched.
	rename bool
}

func arnOf(name string) string {
	return "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + name + "-AbCdEf"
}

func (f *fakeSM) BatchGetSecretValue(_ context.Context, in *secretsmanager.BatchGetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, slices.Clone(in.SecretIdList))
	if f.batchErr != nil {
		return nil, f.batchErr
	}
	out := &secretsmanager.BatchGetSecretValueOutput{}
	for _, id := range in.SecretIdList {
		v, ok := f.secrets[id]
		switch {
		case f.entryErr != nil:
			e := *f.entryErr
			e.SecretId = sdkaws.String(id)
			out.Errors = append(out.Errors, e)
		case ok:
			name := id
			if f.rename {
				name = "renamed-" + id
			}
			out.SecretValues = append(out.SecretValues, types.SecretValueEntry{
				Name: sdkaws.String(name), ARN: sdkaws.String(arnOf(name)), VersionId: sdkaws.String("v-" + id), SecretString: sdkaws.String(v),
			})
		default:
			out.Errors = append(out.Errors, types.APIErrorType{SecretId: sdkaws.String(id),
				ErrorCode: sdkaws.String("ResourceNotFoundException"), Message: sdkaws.String("Secrets Manager can't find the specified secret.")})
		}
	}
	return out, nil
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, in)
	id := sdkaws.ToString(in.SecretId)
	v, ok := f.secrets[id]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: sdkaws.String("Secrets Manager can't find the specified secret.")}
	}
	return &secretsmanager.GetSecretValueOutput{Name: sdkaws.String(id), ARN: sdkaws.String(arnOf(id)),
		VersionId: sdkaws.String("v-" + id), SecretString: sdkaws.String(v)}, nil
}

func (f *fakeSM) counts() (batches int, sizes []int, gets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.batches {
		sizes = append(sizes, len(b))
	}
	return len(f.batches), sizes, len(f.gets)
}

func newFake(n int) *fakeSM {
	f := &fakeSM{secrets: map[string]string{}}
	for i := range n {
		f.secrets[fmt.Sprintf("s%02d", i)] = fmt.Sprintf("value-%02d", i)
	}
	return f
}

// tune returns the timing with the given batch windows, for one test.
func tune(quiet, maxWait time.Duration) Timing {
	return Timing{BatchQuietWindow: quiet, BatchMaxWait: maxWait}.withDefaults()
}

// newState is one scope's batcher with timing and session.
func newState(timing Timing, session *backend.Session) *storeState {
	return &storeState{entries: map[string]*entry{}, timing: timing, session: session}
}

func readAll(t *testing.T, s *storeState, api secretsAPI, ids []string) []error {
	t.Helper()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.get(context.Background(), api, nil, id, "")
			if err == nil && *v.str != "value-"+strings.TrimPrefix(id, "s") {
				err = fmt.Errorf("%s: got %q", id, *v.str)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errs
}

func TestBatcherFullBatchesGoAtOnce(t *testing.T) {
	// A quiet window far longer than the test: only full batches may go
	// before it, so the first 40 ids must not wait for it.
	timing := tune(2*time.Second, 4*time.Second)
	f := newFake(45)
	s := newState(timing, nil)
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("s%02d", i), fmt.Sprintf("s%02d", i)) // each twice
	}
	start := time.Now()
	for _, err := range readAll(t, s, f, ids) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("two full batches took %s: they waited for the quiet window", d)
	}
	// The last 5 go out when the quiet window has passed.
	start = time.Now()
	for _, err := range readAll(t, s, f, []string{"s40", "s41", "s42", "s43", "s44", "s00"}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("a partial batch went after %s, before the quiet window", d)
	}
	n, sizes, gets := f.counts()
	if n != 3 || !slices.Equal(sizes, []int{20, 20, 5}) || gets != 0 {
		t.Errorf("batches %d of sizes %v and %d GetSecretValue; want [20 20 5] and 0", n, sizes, gets)
	}
}

func TestBatcherWindows(t *testing.T) {
	t.Run("a lone id goes after the quiet window", func(t *testing.T) {
		timing := tune(20*time.Millisecond, time.Hour)
		s := newState(timing, nil)
		start := time.Now()
		if err := readAll(t, s, newFake(1), []string{"s00"})[0]; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
	})
	t.Run("the max wait caps a steady trickle", func(t *testing.T) {
		timing := tune(time.Hour, 50*time.Millisecond)
		s := newState(timing, nil)
		f := newFake(3)
		start := time.Now()
		for _, err := range readAll(t, s, f, []string{"s00", "s01", "s02"}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
		if n, _, _ := f.counts(); n != 1 {
			t.Errorf("%d batches, want 1", n)
		}
	})
}

func TestBatcherResults(t *testing.T) {
	timing := tune(5*time.Millisecond, 50*time.Millisecond)
	ctx := context.Background()

	t.Run("not found is cached, values are cached", func(t *testing.T) {
		f := newFake(1)
		s := newState(timing, nil)
		for range 2 {
			if _, err := s.get(ctx, f, nil, "missing", ""); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("want ErrNotFound, got %v", err)
			}
			if v, err := s.get(ctx, f, nil, "s00", ""); err != nil || v.versionID != "v-s00" {
				t.Fatalf("s00: %+v, %v", v, err)
			}
		}
		if n, _, _ := f.counts(); n != 2 {
			t.Errorf("%d batches, want 2 (one per first read)", n)
		}
	})
	t.Run("a failed call is not cached", func(t *testing.T) {
		f := newFake(1)
		f.batchErr = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
		s := newState(timing, nil)
		_, err := s.get(ctx, f, nil, "s00", "")
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
			t.Fatalf("want the throttling error, got %v", err)
		}
		f.batchErr = nil
		if _, err := s.get(ctx, f, nil, "s00", ""); err != nil {
			t.Fatalf("retry: %v", err)
		}
	})
	t.Run("a per-secret error is an API error and not cached", func(t *testing.T) {
		f := newFake(1)
		f.entryErr = &types.APIErrorType{ErrorCode: sdkaws.String("DecryptionFailure"), Message: sdkaws.String("KMS said no")}
		s := newState(timing, nil)
		_, err := s.get(ctx, f, nil, "s00", "")
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "DecryptionFailure" || errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("want DecryptionFailure, got %v", err)
		}
		f.entryErr = nil
		if _, err := s.get(ctx, f, nil, "s00", ""); err != nil {
			t.Fatalf("retry: %v", err)
		}
	})
	t.Run("marked for deletion is not found, as in ESO", func(t *testing.T) {
		f := newFake(1)
		f.entryErr = &types.APIErrorType{ErrorCode: sdkaws.String("InvalidParameterException"),
			Message: sdkaws.String("You can't perform this operation on the secret because it was marked for deletion.")}
		s := newState(timing, nil)
		if _, err := s.get(ctx, f, nil, "s00", ""); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
	})
	t.Run("ids the response does not name are read one by one", func(t *testing.T) {
		f := newFake(2)
		f.rename = true
		s := newState(timing, nil)
		for _, err := range readAll(t, s, f, []string{"s00", "s01"}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n, _, gets := f.counts(); n != 1 || gets != 2 {
			t.Errorf("%d batches and %d gets, want 1 and 2", n, gets)
		}
	})
	t.Run("access denied to batching falls back to GetSecretValue for good", func(t *testing.T) {
		f := newFake(3)
		f.batchErr = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: secretsmanager:BatchGetSecretValue"}
		s := newState(timing, nil)
		for _, err := range readAll(t, s, f, []string{"s00", "s01"}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.get(ctx, f, nil, "s02", ""); err != nil {
			t.Fatal(err)
		}
		if n, _, gets := f.counts(); n != 1 || gets != 3 {
			t.Errorf("%d batches and %d gets, want 1 and 3", n, gets)
		}
	})
	t.Run("versions use GetSecretValue as ESO does", func(t *testing.T) {
		f := newFake(1)
		s := newState(timing, nil)
		for _, version := range []string{"AWSPREVIOUS", "uuid/1234", "AWSPREVIOUS"} {
			if _, err := s.get(ctx, f, nil, "s00", version); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.get(ctx, f, nil, "s00", "AWSCURRENT"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.get(ctx, f, nil, "s00", ""); err != nil { // the same entry as AWSCURRENT
			t.Fatal(err)
		}
		n, _, gets := f.counts()
		if n != 1 || gets != 2 {
			t.Fatalf("%d batches and %d gets, want 1 and 2", n, gets)
		}
		if g := f.gets[0]; sdkaws.ToString(g.VersionStage) != "AWSPREVIOUS" || g.VersionId != nil {
			t.Errorf("stage read: %+v", g)
		}
		if g := f.gets[1]; sdkaws.ToString(g.VersionId) != "1234" || g.VersionStage != nil {
			t.Errorf("uuid/ read: %+v", g)
		}
	})
	t.Run("a caller's context ends its wait only", func(t *testing.T) {
		timing := tune(100*time.Millisecond, time.Second)
		f := newFake(1)
		s := newState(timing, nil)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.get(cctx, f, nil, "s00", ""); !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		if _, err := s.get(ctx, f, nil, "s00", ""); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := f.counts(); n != 1 {
			t.Errorf("%d batches, want 1", n)
		}
	})
}

// TestBatcherCarriesAnnouncedDemand is how a deploy costs ceil(M/20)
// batches although pulumi creates only a few resources at a time: reads
// trickle in a handful at a time while the engine is still announcing
// (checking) ExternalSecrets; once announcements settle, one flush reads
// every announced id, and the later reads are all cache hits.
func TestBatcherCarriesAnnouncedDemand(t *testing.T) {
	timing := tune(10*time.Millisecond, 50*time.Millisecond)
	session := backend.NewSession()
	f := newFake(40)
	s := newState(timing, session)
	hints := func() []string { return session.Demanded("ClusterSecretStore//aws") }
	// The engine checks 40 resources over ~300 ms; reads of the first
	// few start meanwhile, 8 at a time like pulumi's default parallelism.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			session.NoteDemand("ClusterSecretStore//aws", fmt.Sprintf("s%02d", i))
			time.Sleep(7 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 5 * time.Millisecond)
			if _, err := s.get(context.Background(), f, hints, fmt.Sprintf("s%02d", i), ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	<-done
	for i := range 40 {
		if _, err := s.get(context.Background(), f, hints, fmt.Sprintf("s%02d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	batches, sizes, gets := f.counts()
	if batches != 2 || gets != 0 {
		t.Errorf("%d batches of sizes %v and %d GetSecretValue, want 2 batches of 20 and none", batches, sizes, gets)
	}
}
