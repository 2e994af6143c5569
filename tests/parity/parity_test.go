// Package parity proves that esosync's `sync: provider` writes the same
// Secret as the real External Secrets Operator controller: every case runs
// once through the provider and once through ESO v0.20.4, and the two
// target Secrets must match, or, where the case says so, both syncs must
// fail for the same cause. Where esosync departs from ESO on purpose, the
// case documents the difference (parityCase.differs) and asserts what each
// side does, so the difference cannot grow or vanish unnoticed.
//
// Each backend has its own table: HashiCorp Vault here, AWS Secrets
// Manager (moto) in aws_test.go, Pulumi ESC (the local ESC endpoint,
// tests/escserver) in esc_test.go.
package parity

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/blang/semver"
	"github.com/external-secrets/external-secrets/pkg/esutils"
	vaultapi "github.com/hashicorp/vault/api"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/integration"
	presource "github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/esosync/pulumi-esosync/provider"
	"github.com/esosync/pulumi-esosync/tests/escserver"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

// bedOptions is harness.Full plus moto, for the AWS cases.
var bedOptions = harness.Options{Kubernetes: true, ControllerManager: true, Vault: true, AWS: true}

// TestMain runs the package on one shared test bed (bedOptions), set up
// on first use by setup.
func TestMain(m *testing.M) {
	code := harness.Main(m, bedOptions)
	// The ESC endpoint runs in this process, not as a test-bed process,
	// so harness.Main does not stop it.
	if shared != nil && shared.esc != nil {
		_ = shared.esc.Close()
	}
	os.Exit(code)
}

const ns = "parity"

// bed is the package's test bed with ESO installed through the Operator
// resource and its controller running, plus the stores the cases use: one
// Vault store per KV version, two AWS stores (setupAWS) and an ESC store
// (setupESC).
type bed struct {
	env    *harness.Env
	server integration.Server
	vault  *vaultapi.Client
	dyn    dynamic.Interface
	// sm seeds moto with what harness.PutAWSSecret cannot write (binary
	// values, pinned version ids, staging labels, deletions).
	sm *secretsmanager.Client
	// esc is the local ESC endpoint both ESO and esosync read.
	esc *escserver.Server
}

var (
	setupOnce sync.Once
	shared    *bed
	setupErr  error
)

func setup(t *testing.T) *bed {
	t.Helper()
	env := harness.Shared(t)
	setupOnce.Do(func() { shared, setupErr = newBed(t, env) })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return shared
}

func newBed(t *testing.T, env *harness.Env) (*bed, error) {
	ctx := context.Background()
	prov, err := provider.New()
	if err != nil {
		return nil, err
	}
	s, err := integration.NewServer(ctx, provider.Name, semver.MustParse(provider.Version), integration.WithProvider(prov))
	if err != nil {
		return nil, err
	}
	b := &bed{env: env, server: s}
	chart, err := harness.ESOChartDir()
	if err != nil {
		return nil, err
	}
	crds, err := harness.ESOCRDBundle()
	if err != nil {
		return nil, err
	}
	if _, err := b.create("Operator", "eso", map[string]any{
		"chart": chart, "crds": crds, "waitForController": false,
		"values": map[string]any{"webhook": map[string]any{"create": false}, "certController": map[string]any{"create": false}},
	}); err != nil {
		return nil, fmt.Errorf("installing ESO: %w", err)
	}
	// ESO's AWS provider reads its endpoints from these variables
	// (secretsmanager.SecretsManagerEndpointEnv, auth.STSEndpointEnv), and
	// esosync reads the same ones (reconcile.awsConfig), so both sides
	// reach moto.
	var esoEnv []string
	for _, k := range []string{"AWS_SECRETSMANAGER_ENDPOINT", "AWS_STS_ENDPOINT"} {
		esoEnv = append(esoEnv, k+"="+env.AWSEndpoint)
		// The in-process provider: this test binary is the process
		// `pulumi up` would run it in.
		if err := os.Setenv(k, env.AWSEndpoint); err != nil {
			return nil, err
		}
	}
	if _, err := env.StartESO(ctx, harness.ESOOptions{Env: esoEnv}); err != nil {
		return nil, fmt.Errorf("starting the ESO controller: %w", err)
	}
	clients, err := env.Clientset()
	if err != nil {
		return nil, err
	}
	if _, err := clients.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	v, err := env.VaultClient()
	if err != nil {
		return nil, err
	}
	if err := v.Sys().Mount("kv1", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil && !strings.Contains(err.Error(), "path is already in use") {
		return nil, err
	}
	// Both stores are validated by esosync and must be reported Valid by ESO.
	for name, mount := range map[string][2]string{"parity-v2": {"secret", "v2"}, "parity-v1": {"kv1", "v1"}} {
		if _, err := b.create("ClusterSecretStore", name, map[string]any{
			"credentialsNamespace": ns, "waitForReady": true, "timeout": "60s",
			"backend": map[string]any{"vault": map[string]any{"server": env.VaultAddr, "path": mount[0], "version": mount[1],
				"auth": map[string]any{"token": map[string]any{"value": env.VaultToken}}}},
		}); err != nil {
			return nil, fmt.Errorf("store %s: %w", name, err)
		}
	}
	restConfig, err := env.RESTConfig()
	if err != nil {
		return nil, err
	}
	if b.dyn, err = dynamic.NewForConfig(restConfig); err != nil {
		return nil, err
	}
	b.vault = v
	if err := b.setupAWS(); err != nil {
		return nil, err
	}
	// Last: setupESC starts the ESC endpoint, which TestMain stops only
	// when the bed was set up.
	if err := b.setupESC(); err != nil {
		return nil, err
	}
	return b, nil
}

// configure configures the in-process provider as the engine does at the
// start of every pulumi operation, with the same arguments each time. The
// provider keeps its backend caches in the session each Configure creates,
// so a second call stands for a new operation that remembers no earlier
// backend read.
func (b *bed) configure() error {
	return b.server.Configure(p.ConfigureRequest{Args: property.NewMap(map[string]property.Value{
		"kubeconfig": property.New(b.env.Kubeconfig),
	})})
}

// create checks and creates one resource as one pulumi operation of its
// own: Configure, Check, Create.
func (b *bed) create(typ, name string, inputs map[string]any) (p.CreateResponse, error) {
	if err := b.configure(); err != nil {
		return p.CreateResponse{}, fmt.Errorf("configure: %w", err)
	}
	urn := presource.URN("urn:pulumi:test::parity::esosync:index:" + typ + "::" + name)
	props := presource.FromResourcePropertyMap(presource.NewPropertyMapFromMap(inputs))
	check, err := b.server.Check(p.CheckRequest{Urn: urn, Inputs: props})
	if err != nil {
		return p.CreateResponse{}, err
	}
	if len(check.Failures) > 0 {
		return p.CreateResponse{}, fmt.Errorf("check: %+v", check.Failures)
	}
	return b.server.Create(p.CreateRequest{Urn: urn, Properties: check.Inputs})
}

// parityCase is one ExternalSecret spec, minus store, namespace, name and sync.
type parityCase struct {
	name  string
	store string // the table's default store if empty
	seed  func(t *testing.T, b *bed)
	spec  map[string]any
	// fails, if set, is how both syncs must fail; if nil, both must succeed.
	fails *failure
	// differs, if set, documents a deliberate difference: why esosync
	// does not do what ESO does here, and what each side does. The two
	// sides are then not compared with each other; provider and eso
	// assert each side's own outcome instead, so that the case fails if
	// either side changes (ESO adopting esosync's behaviour, or esosync
	// drifting further), and the documentation has to follow.
	differs       string
	provider, eso expect
}

// expect is what one side of a differing case must do: it returns how the
// side's outcome (the Secret it wrote, or its failure) departs from that,
// or "" if it does not.
type expect func(s *corev1.Secret, err error) string

// syncs expects a successful sync to a Secret holding exactly want.
func syncs(want map[string]string) expect {
	return syncsMatching(want, nil)
}

// syncsMatching expects a successful sync to a Secret with exactly the
// keys of exact and fragments: each key of exact holding that value, each
// key of fragments a value containing every one of its fragments (for
// values whose exact bytes are not what the case is about, such as ESO's
// rendering of ESC's source positions).
func syncsMatching(exact map[string]string, fragments map[string][]string) expect {
	return func(s *corev1.Secret, err error) string {
		switch {
		case err != nil:
			return fmt.Sprintf("failed, want a Secret: %v", err)
		case s == nil:
			return "synced no Secret, want one"
		}
		var diffs []string
		keys := append(slices.Collect(maps.Keys(exact)), slices.Collect(maps.Keys(fragments))...)
		slices.Sort(keys)
		if got := sortedKeys(s.Data); !slices.Equal(got, keys) {
			diffs = append(diffs, fmt.Sprintf("keys %q, want %q", got, keys))
		}
		for k, want := range exact {
			if got, ok := s.Data[k]; ok && string(got) != want {
				diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", k, got, want))
			}
		}
		for k, frags := range fragments {
			for _, f := range frags {
				if got, ok := s.Data[k]; ok && !strings.Contains(string(got), f) {
					diffs = append(diffs, fmt.Sprintf("%s = %q does not contain %q", k, got, f))
				}
			}
		}
		slices.Sort(diffs) // map order
		return strings.Join(diffs, "; ")
	}
}

// syncsNothing expects a sync that succeeds without writing a Secret.
func syncsNothing() expect {
	return func(s *corev1.Secret, err error) string {
		switch {
		case err != nil:
			return fmt.Sprintf("failed, want a sync without a Secret: %v", err)
		case s != nil:
			return fmt.Sprintf("wrote a Secret with keys %q, want none", sortedKeys(s.Data))
		}
		return ""
	}
}

// failsFor expects a failure for cause c whose text names each of at.
func failsFor(c cause, at ...string) expect {
	f := &failure{cause: c, at: at}
	return func(s *corev1.Secret, err error) string {
		if err == nil {
			return fmt.Sprintf("synced, want a failure for %s", f)
		}
		return strings.Join(f.problems(err), "; ")
	}
}

// failure is how a case must fail, on both sides alike.
//
// The two sides cannot be compared by their whole messages: ESO's Ready
// condition says only which step failed (reason SecretSyncedError, message
// "could not get secret data from provider" or "could not update secret"),
// with the error itself in the Warning event it records beside it; and
// esosync's error wraps the same error in the resource, store and backend
// call it came from. Nor can a single fragment serve, since the sentinels
// differ: ESO's esv1.NoSecretError reads "Secret does not exist", esosync's
// backend.ErrNotFound "secret not found". So each side's text (esosync's
// error; ESO's condition and Warning events) is normalised to a cause
// class (classify), which must be the case's cause on both sides, and both
// texts must name where it failed: each of at, taken from the wording
// esosync shares with ESO (ESO's "spec.data[0] (key: k)", a property, the
// Secret key the API server rejected). If esosync's wording moves away
// from ESO's, it is at that needs updating, not the class.
type failure struct {
	cause cause
	at    []string
}

func (f *failure) String() string { return fmt.Sprintf("%s at %q", f.cause, f.at) }

// cause is a class of sync failure.
type cause string

const (
	causeNotFound        cause = "remote secret not found"
	causeNoProperty      cause = "property not in the remote secret"
	causeBadKey          cause = "Secret key rejected by the API server"
	causeNotObject       cause = "remote value has no key/value pairs"
	causeMarkedDeleted   cause = "remote secret marked for deletion"
	causeFindOperator    cause = "find with neither name nor tags"
	causeFindUnsupported cause = "backend has no find"
)

// causeTexts are the texts by which ESO or esosync state each cause, most
// specific first.
var causeTexts = []struct {
	cause cause
	texts []string
}{
	// ESO's Vault errSecretKeyFmt, which esosync's Vault and ESC backends
	// repeat; ESO's Secrets Manager GetSecret ("key %s does not exist in
	// secret %s"), which esosync's AWS backend repeats.
	{causeNoProperty, []string{"cannot find secret data for key: ", " does not exist in secret "}},
	// ESO's Secrets Manager GetSecretMap ("unable to unmarshal secret %s:
	// %w", the JSON decoder's error), which esosync's AWS backend repeats
	// with its own reason; esosync's ESC GetSecretMap of a non-object.
	{causeNotObject, []string{"unable to unmarshal secret ", "not an object, so it has no key/value pairs"}},
	// Secrets Manager's InvalidRequestException for a secret scheduled for
	// deletion, which neither ESO nor esosync counts as "no secret" (both
	// only treat InvalidParameterException so): AWS says "marked for
	// deletion", moto "currently marked deleted".
	{causeMarkedDeleted, []string{"marked for deletion", "marked deleted"}},
	// ESO's Secrets Manager errUnexpectedFindOperator, which esosync's AWS
	// backend repeats.
	{causeFindOperator, []string{"unexpected find operator"}},
	// ESO's pulumi errGettingAllSecretsNotSupported, which esosync's ESC
	// backend repeats (esc.ErrFindNotSupported).
	{causeFindUnsupported, []string{"getting all secrets is currently not supported by Pulumi"}},
	// ESO's esv1.NoSecretError; esosync's backend.ErrNotFound; ESO's
	// pulumi provider passes the ESC API's 404 for a missing property on
	// as the esc-sdk words it: the HTTP status only.
	{causeNotFound, []string{"Secret does not exist", "secret not found", "404 Not Found"}},
	// The API server's validation of Secret data keys (IsConfigMapKey).
	{causeBadKey, []string{"a valid config key must consist of alphanumeric characters"}},
}

// classify is the cause a failure message states, or "" if none is known.
func classify(msg string) cause {
	for _, c := range causeTexts {
		for _, text := range c.texts {
			if strings.Contains(msg, text) {
				return c.cause
			}
		}
	}
	return ""
}

// check says how the two failures differ from f and from each other, or ""
// if both are f.
func (f *failure) check(provErr, esoErr error) string {
	var eso *esoFailure
	if !errors.As(esoErr, &eso) {
		return fmt.Sprintf("the ESO side did not fail by ESO's verdict: %v", esoErr)
	}
	var diffs []string
	for side, err := range map[string]error{"provider": provErr, "ESO": esoErr} {
		for _, problem := range f.problems(err) {
			diffs = append(diffs, side+": "+problem)
		}
	}
	slices.Sort(diffs) // map order
	return strings.Join(diffs, "; ")
}

// problems lists how one side's failure departs from f: the cause its
// text states, the places it names, and for ESO its Ready reason.
func (f *failure) problems(err error) []string {
	var diffs []string
	var eso *esoFailure
	if errors.As(err, &eso) && eso.reason != "SecretSyncedError" {
		diffs = append(diffs, fmt.Sprintf("ESO's Ready reason is %q, want SecretSyncedError", eso.reason))
	}
	msg := err.Error()
	if got := classify(msg); got != f.cause {
		diffs = append(diffs, fmt.Sprintf("states cause %q, want %q", got, f.cause))
	}
	for _, at := range f.at {
		if !strings.Contains(msg, at) {
			diffs = append(diffs, fmt.Sprintf("does not name %q", at))
		}
	}
	return diffs
}

func kv2(path string, data map[string]any) func(*testing.T, *bed) {
	return func(t *testing.T, b *bed) {
		t.Helper()
		if _, err := b.vault.KVv2("secret").Put(context.Background(), path, data); err != nil {
			t.Fatal(err)
		}
	}
}

func kv1(path string, data map[string]any) func(*testing.T, *bed) {
	return func(t *testing.T, b *bed) {
		t.Helper()
		if _, err := b.vault.Logical().Write("kv1/"+path, data); err != nil {
			t.Fatal(err)
		}
	}
}

// data is a spec with one spec.data entry (see item).
func data(secretKey, key, property string, extra ...map[string]any) map[string]any {
	return dataOf(item(secretKey, key, property, extra...))
}

// item is one spec.data entry: Secret key secretKey from remote key key,
// at property unless it is "", with extra's remoteRef fields (version,
// decodingStrategy).
func item(secretKey, key, property string, extra ...map[string]any) any {
	ref := map[string]any{"key": key}
	if property != "" {
		ref["property"] = property
	}
	for _, e := range extra {
		maps.Copy(ref, e)
	}
	return map[string]any{"secretKey": secretKey, "remoteRef": ref}
}

// dataOf is a spec whose spec.data are items.
func dataOf(items ...any) map[string]any {
	return map[string]any{"data": items}
}

// extract is a spec with one dataFrom.extract of key, with extra's
// remoteRef fields (property, conversionStrategy, decodingStrategy), and
// rewrites if any.
func extract(key string, extra map[string]any, rewrites ...any) map[string]any {
	ref := map[string]any{"key": key}
	maps.Copy(ref, extra)
	from := map[string]any{"extract": ref}
	if len(rewrites) > 0 {
		from["rewrite"] = rewrites
	}
	return map[string]any{"dataFrom": []any{from}}
}

// find is a spec with one dataFrom.find, and rewrites if any.
func find(f map[string]any, rewrites ...any) map[string]any {
	from := map[string]any{"find": f}
	if len(rewrites) > 0 {
		from["rewrite"] = rewrites
	}
	return map[string]any{"dataFrom": []any{from}}
}

// rewriteRegexp is one dataFrom.rewrite that replaces source with target.
func rewriteRegexp(source, target string) any {
	return map[string]any{"regexp": map[string]any{"source": source, "target": target}}
}

// Extra remoteRef fields for item and extract.
var (
	base64Decoding    = map[string]any{"decodingStrategy": "Base64"}
	base64URLDecoding = map[string]any{"decodingStrategy": "Base64URL"}
	autoDecoding      = map[string]any{"decodingStrategy": "Auto"}
	unicodeConversion = map[string]any{"conversionStrategy": "Unicode"}
)

// seeds runs several seeds in order.
func seeds(all ...func(*testing.T, *bed)) func(*testing.T, *bed) {
	return func(t *testing.T, b *bed) {
		t.Helper()
		for _, s := range all {
			s(t, b)
		}
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

var binary = string([]byte{0x00, 0xff, 0x10, 0x80, 'b', 'i', 'n'})

// vaultCases run against the Vault stores: parity-v2 (KV v2 at secret/)
// unless they name parity-v1 (KV v1 at kv1/).
var vaultCases = []parityCase{
	{name: "property", seed: kv2("p/app", map[string]any{"user": "admin", "pass": "s3cr3t"}), spec: data("pass", "p/app", "pass")},
	{name: "whole-secret-json", seed: kv2("p/whole", map[string]any{"b": "2", "a": "1<&>"}), spec: data("all", "p/whole", "")},
	{name: "nested-gjson", seed: kv2("p/nested", map[string]any{"db": map[string]any{"host": "db.local", "port": 5432}}), spec: data("host", "p/nested", "db.host")},
	{name: "nested-object", seed: kv2("p/nested2", map[string]any{"db": map[string]any{"host": "h", "opts": []any{"a", "b"}}}), spec: data("db", "p/nested2", "db")},
	{name: "number", seed: kv2("p/num", map[string]any{"n": 42, "f": 1.5}), spec: data("n", "p/num", "n")},
	{name: "bool", seed: kv2("p/bool", map[string]any{"on": true}), spec: data("on", "p/bool", "on")},
	{name: "unicode-value", seed: kv2("p/uni", map[string]any{"greeting": "grüß dich ✓ 日本"}), spec: data("greeting", "p/uni", "greeting")},
	{name: "dotted-key-wins-over-gjson", seed: kv2("p/dots", map[string]any{"a.b": "literal", "a": map[string]any{"b": "nested"}}), spec: data("v", "p/dots", "a.b")},
	{name: "extract", seed: kv2("p/ext", map[string]any{"user": "u", "pass": "p", "nested": map[string]any{"x": 1}}),
		spec: map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/ext"}}}}},
	{name: "extract-property", seed: kv2("p/extprop", map[string]any{"cfg": map[string]any{"k1": "v1", "k2": 2}}),
		spec: map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/extprop", "property": "cfg"}}}}},
	{name: "extract-unicode-conversion", seed: kv2("p/extuni", map[string]any{"a b": "w", "x/y": "z", "ok": "v"}),
		spec: map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/extuni", "conversionStrategy": "Unicode"}}}}},
	// "ü" is a letter, so conversion keeps it and ESO's key check passes it;
	// the API server refuses the Secret.
	{name: "extract-non-ascii-keys-fail", seed: kv2("p/extnonascii", map[string]any{"schlüssel": "v"}),
		spec:  map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/extnonascii", "conversionStrategy": "Unicode"}}}},
		fails: &failure{cause: causeBadKey, at: []string{"schlüssel"}}},
	// ESO fails nothing here: conversionStrategy Default turns "a b" into "a_b".
	{name: "extract-default-conversion", seed: kv2("p/extbad", map[string]any{"a b": "w"}),
		spec: map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/extbad"}}}}},
	{name: "decode-base64", seed: kv2("p/b64", map[string]any{"v": base64.StdEncoding.EncodeToString([]byte("hello"))}),
		spec: data("v", "p/b64", "v", map[string]any{"decodingStrategy": "Base64"})},
	{name: "decode-base64url", seed: kv2("p/b64u", map[string]any{"v": base64.URLEncoding.EncodeToString([]byte("\xfb\xff?"))}),
		spec: data("v", "p/b64u", "v", map[string]any{"decodingStrategy": "Base64URL"})},
	{name: "decode-auto-plain", seed: kv2("p/auto", map[string]any{"v": "not base64!"}),
		spec: data("v", "p/auto", "v", map[string]any{"decodingStrategy": "Auto"})},
	{name: "binary", seed: kv2("p/bin", map[string]any{"blob": base64.StdEncoding.EncodeToString([]byte(binary))}),
		spec: data("blob", "p/bin", "blob", map[string]any{"decodingStrategy": "Base64"})},
	{name: "extract-decode-base64", seed: kv2("p/extb64", map[string]any{"a": base64.StdEncoding.EncodeToString([]byte("A")), "b": base64.StdEncoding.EncodeToString([]byte("B"))}),
		spec: map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/extb64", "decodingStrategy": "Base64"}}}}},
	{name: "missing-property-fails", seed: kv2("p/miss", map[string]any{"a": "1"}), spec: data("x", "p/miss", "nope"),
		fails: &failure{cause: causeNoProperty, at: []string{"spec.data[0] (key: p/miss)", `"nope"`}}},
	{name: "missing-key-retain-fails", spec: data("x", "p/never-written", "a"),
		fails: &failure{cause: causeNotFound, at: []string{"spec.data[0] (key: p/never-written)"}}},
	{name: "missing-key-delete", spec: with(data("x", "p/never-written-2", "a"), "target", map[string]any{"deletionPolicy": "Delete"})},
	{name: "template", seed: kv2("p/tpl", map[string]any{"user": "app", "pass": "pw"}),
		spec: with(map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/tpl"}}}},
			"target", map[string]any{"template": map[string]any{"data": map[string]any{
				"url":  "postgres://{{ .user }}:{{ .pass | upper }}@db/{{ .user | b64enc }}",
				"json": `{{ dict "u" .user | toJson }}`}}})},
	{name: "template-merge-type-metadata", seed: kv2("p/tplm", map[string]any{"user": "app", "pass": "pw"}),
		spec: with(map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/tplm"}}}},
			"target", map[string]any{"template": map[string]any{"type": "kubernetes.io/basic-auth", "mergePolicy": "Merge",
				"labels": map[string]any{"owner": "{{ .user }}"}, "annotations": map[string]any{"note": "static"},
				"data": map[string]any{"username": "{{ .user }}", "password": "{{ .pass }}"}}})},
	{name: "rewrite-regexp", seed: kv2("p/rw", map[string]any{"db-user": "u", "db-pass": "p", "other": "o"}),
		spec: map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/rw"},
			"rewrite": []any{map[string]any{"regexp": map[string]any{"source": "^db-(.*)", "target": "DB_$1"}}}}}}},
	{name: "rewrite-transform", seed: kv2("p/rwt", map[string]any{"user": "u", "pass": "p"}),
		spec: map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "p/rwt"},
			"rewrite": []any{map[string]any{"transform": map[string]any{"template": "APP_{{ .value | upper }}"}}}}}}},
	{name: "find-path", seed: func(t *testing.T, b *bed) {
		kv2("p/find/one", map[string]any{"k": "1"})(t, b)
		kv2("p/find/two", map[string]any{"k": "2"})(t, b)
	}, spec: map[string]any{"dataFrom": []any{map[string]any{"find": map[string]any{"path": "p/find", "conversionStrategy": "Unicode"}}}}},
	{name: "find-regexp-rewrite", seed: func(t *testing.T, b *bed) {
		kv2("p/findre/db-a", map[string]any{"k": "a"})(t, b)
		kv2("p/findre/db-b", map[string]any{"k": "b"})(t, b)
		kv2("p/findre/web", map[string]any{"k": "w"})(t, b)
	}, spec: map[string]any{"dataFrom": []any{map[string]any{"find": map[string]any{"path": "p/findre", "name": map[string]any{"regexp": "db-"}},
		"rewrite": []any{map[string]any{"regexp": map[string]any{"source": ".*/(db-.*)", "target": "$1"}}}}}}},
	{name: "deleted-remote-key-fails", seed: func(t *testing.T, b *bed) {
		kv2("p/deleted", map[string]any{"v": "gone soon"})(t, b)
		if err := b.vault.KVv2("secret").Delete(context.Background(), "p/deleted"); err != nil {
			t.Fatal(err)
		}
	}, spec: data("v", "p/deleted", "v"), fails: &failure{cause: causeNotFound, at: []string{"spec.data[0] (key: p/deleted)"}}},
	{name: "find-tags", seed: func(t *testing.T, b *bed) {
		for path, team := range map[string]string{"p/tags/a": "blue", "p/tags/b": "blue", "p/tags/c": "red"} {
			kv2(path, map[string]any{"team": team})(t, b)
			if err := b.vault.KVv2("secret").PutMetadata(context.Background(), path, vaultapi.KVMetadataPutInput{
				CustomMetadata: map[string]any{"team": team}}); err != nil {
				t.Fatal(err)
			}
		}
	}, spec: map[string]any{"dataFrom": []any{map[string]any{"find": map[string]any{"path": "p/tags", "tags": map[string]any{"team": "blue"}},
		"rewrite": []any{map[string]any{"regexp": map[string]any{"source": "/", "target": "-"}}}}}}},
	{name: "version-pinned", seed: func(t *testing.T, b *bed) {
		kv2("p/ver", map[string]any{"v": "first"})(t, b)
		kv2("p/ver", map[string]any{"v": "second"})(t, b)
	}, spec: data("v", "p/ver", "v", map[string]any{"version": "1"})},
	{name: "target-shorthands", seed: kv2("p/short", map[string]any{"v": "x"}),
		spec: with(data("v", "p/short", "v"), "target", map[string]any{"type": "Opaque", "labels": map[string]any{"team": "a"}, "annotations": map[string]any{"b": "c"}})},
	{name: "immutable", seed: kv2("p/imm", map[string]any{"v": "x"}), spec: with(data("v", "p/imm", "v"), "target", map[string]any{"immutable": true})},
	{name: "kv1-property", store: "parity-v1", seed: kv1("app", map[string]any{"user": "v1-user", "n": 7}), spec: data("user", "app", "user")},
	{name: "kv1-extract", store: "parity-v1", seed: kv1("ext", map[string]any{"a": "1", "b": map[string]any{"c": true}}),
		spec: map[string]any{"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "ext"}}}}},
	{name: "kv1-whole-json", store: "parity-v1", seed: kv1("whole", map[string]any{"z": "1", "a": "2"}), spec: data("all", "whole", "")},
}

// TestParity runs every Vault case through `sync: provider` and through
// the ESO controller and compares the resulting Secrets, or the failures.
func TestParity(t *testing.T) {
	runParity(t, "vault", "parity-v2", vaultCases)
}

// runParity runs one backend's cases, each against defaultStore unless it
// names another store, and prints the backend's summary line:
//
//	parity: <backend>: N cases identical (of M), K of them by failing for the same cause[; D differ by design, as documented]
func runParity(t *testing.T, backend, defaultStore string, cases []parityCase) {
	b := setup(t)
	identical, failedAlike, differing := 0, 0, 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			documented := c.differs != ""
			if documented != (c.provider != nil) || documented != (c.eso != nil) || (documented && c.fails != nil) {
				t.Fatal("malformed case: a differing case sets differs, provider and eso, and not fails; any other case none of them")
			}
			if c.seed != nil {
				c.seed(t, b)
			}
			store := c.store
			if store == "" {
				store = defaultStore
			}
			viaProvider, provErr := b.run(t, c, store, "provider")
			viaESO, esoErr := b.run(t, c, store, "none")
			if c.differs != "" {
				var diffs []string
				if d := c.provider(viaProvider, provErr); d != "" {
					diffs = append(diffs, "provider: "+d)
				}
				if d := c.eso(viaESO, esoErr); d != "" {
					diffs = append(diffs, "ESO: "+d)
				}
				if len(diffs) > 0 {
					t.Fatalf("the documented difference no longer holds (%s): %s\nprovider: %v | %v",
						c.differs, strings.Join(diffs, "; "), provErr, esoErr)
				}
				t.Logf("differs by design, as documented: %s", c.differs)
				differing++
				return
			}
			switch {
			case provErr != nil && esoErr != nil:
				if c.fails == nil {
					t.Fatalf("both sides failed, but the case must sync: provider: %v | %v", provErr, esoErr)
				}
				if diff := c.fails.check(provErr, esoErr); diff != "" {
					t.Fatalf("failures differ from %s: %s\nprovider: %v\n%v", c.fails, diff, provErr, esoErr)
				}
				t.Logf("both failed, for %s: provider: %v | %v", c.fails, provErr, esoErr)
				failedAlike++
			case provErr != nil || esoErr != nil:
				t.Fatalf("only one side failed: provider: %v | %v", provErr, esoErr)
			case c.fails != nil:
				t.Fatalf("both sides synced, but the case must fail with %s", c.fails)
			default:
				if diff := compareSecrets(viaProvider, viaESO); diff != "" {
					t.Fatalf("Secrets differ: %s", diff)
				}
			}
			identical++
		})
	}
	summary := fmt.Sprintf("parity: %s: %d cases identical (of %d), %d of them by failing for the same cause",
		backend, identical, len(cases), failedAlike)
	if differing > 0 {
		summary += fmt.Sprintf("; %d differ by design, as documented", differing)
	}
	t.Log(summary)
	fmt.Println(summary)
}

// run syncs the case once: "provider" through esosync's sync, "none" by
// writing the ExternalSecret only and letting the ESO controller sync it.
// It returns the target Secret (nil if none) or the sync's failure: with
// "none", only ESO's verdict (an *esoFailure); esosync failing to write the
// ExternalSecret fails the test.
func (b *bed) run(t *testing.T, c parityCase, store, mode string) (*corev1.Secret, error) {
	t.Helper()
	name := c.name + map[string]string{"provider": "-p", "none": "-c"}[mode]
	spec := maps.Clone(c.spec)
	spec["namespace"] = ns
	spec["store"] = map[string]any{"kind": "ClusterSecretStore", "name": store}
	spec["sync"] = mode
	target, _ := spec["target"].(map[string]any)
	target = maps.Clone(target)
	if target == nil {
		target = map[string]any{}
	}
	target["name"] = name
	spec["target"] = target
	if _, err := b.create("ExternalSecret", name, spec); err != nil {
		if mode == "none" {
			t.Fatalf("writing ExternalSecret %s for ESO: %v", name, err)
		}
		return nil, err
	}
	if mode == "none" {
		if err := b.awaitESO(t, name); err != nil {
			return nil, err
		}
	}
	clients, err := b.env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	s, err := clients.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, nil
}

var esGVR = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}

// esoFailure is ESO's verdict on a failed sync: the Ready condition's
// reason and message, which say which step failed, and the messages of
// the Warning events ESO records with it (markAsFailed), which carry the
// error itself.
type esoFailure struct {
	reason, message string
	events          []string
}

func (f *esoFailure) Error() string {
	return fmt.Sprintf("ESO: %s: %s; Warning events: %s", f.reason, f.message, strings.Join(f.events, " | "))
}

// awaitESO waits until ESO reports on the ExternalSecret: nil when Ready,
// an *esoFailure when it failed.
func (b *bed) awaitESO(t *testing.T, name string) error {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		es, err := b.dyn.Resource(esGVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructuredSlice(es.Object, "status", "conditions")
		for _, raw := range conds {
			cond, _ := raw.(map[string]any)
			if cond["type"] != "Ready" {
				continue
			}
			switch cond["status"] {
			case "True":
				return nil
			case "False":
				reason, _ := cond["reason"].(string)
				message, _ := cond["message"].(string)
				return &esoFailure{reason: reason, message: message, events: b.warnings(t, name)}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("ESO did not report on ExternalSecret %s/%s within 60s", ns, name)
	return nil
}

// warnings returns the distinct messages of the Warning events on
// ExternalSecret name, waiting up to 30s for the first: ESO records the
// event before it writes the condition, but its broadcaster posts events
// asynchronously.
func (b *bed) warnings(t *testing.T, name string) []string {
	t.Helper()
	clients, err := b.env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	selector := "involvedObject.kind=ExternalSecret,involvedObject.name=" + name
	deadline := time.Now().Add(30 * time.Second)
	for {
		events, err := clients.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning && !slices.Contains(msgs, e.Message) {
				msgs = append(msgs, e.Message)
			}
		}
		if len(msgs) > 0 || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func unstructuredSlice(obj map[string]any, fields ...string) ([]any, bool, error) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		cur = m[f]
	}
	s, ok := cur.([]any)
	return s, ok, nil
}

// compareSecrets compares what the Secrets hold and how ESO marks them;
// names, timestamps, UIDs and the per-ExternalSecret created-by label are
// checked separately or ignored.
func compareSecrets(a, b *corev1.Secret) string {
	if (a == nil) != (b == nil) {
		return fmt.Sprintf("provider Secret exists: %v, ESO Secret exists: %v", a != nil, b != nil)
	}
	if a == nil {
		return ""
	}
	var diffs []string
	if a.Type != b.Type {
		diffs = append(diffs, fmt.Sprintf("type %q vs %q", a.Type, b.Type))
	}
	if !maps.EqualFunc(a.Data, b.Data, func(x, y []byte) bool { return string(x) == string(y) }) {
		diffs = append(diffs, fmt.Sprintf("data keys %v vs %v (or values differ)", sortedKeys(a.Data), sortedKeys(b.Data)))
	}
	strip := func(s *corev1.Secret) (map[string]string, map[string]string) {
		labels := maps.Clone(s.Labels)
		if got, want := labels["reconcile.external-secrets.io/created-by"], esutils.ObjectHash(s.Namespace+"/"+ownerName(s)); got != "" && got != want {
			labels["reconcile.external-secrets.io/created-by"] = "WRONG:" + got
		} else {
			delete(labels, "reconcile.external-secrets.io/created-by")
		}
		return labels, s.Annotations
	}
	la, aa := strip(a)
	lb, ab := strip(b)
	if !maps.Equal(la, lb) {
		diffs = append(diffs, fmt.Sprintf("labels %v vs %v", la, lb))
	}
	if !maps.Equal(aa, ab) {
		diffs = append(diffs, fmt.Sprintf("annotations %v vs %v", aa, ab))
	}
	if (a.Immutable == nil) != (b.Immutable == nil) || (a.Immutable != nil && *a.Immutable != *b.Immutable) {
		diffs = append(diffs, "immutable differs")
	}
	oa, ob := metav1.GetControllerOf(a), metav1.GetControllerOf(b)
	if (oa == nil) != (ob == nil) || (oa != nil && (oa.Kind != ob.Kind || oa.APIVersion != ob.APIVersion)) {
		diffs = append(diffs, fmt.Sprintf("controller %v vs %v", oa, ob))
	}
	if len(a.Finalizers) != len(b.Finalizers) {
		diffs = append(diffs, "finalizers differ")
	}
	return strings.Join(diffs, "; ")
}

func ownerName(s *corev1.Secret) string {
	if o := metav1.GetControllerOf(s); o != nil {
		return o.Name
	}
	return ""
}

func sortedKeys(m map[string][]byte) []string {
	return slices.Sorted(maps.Keys(m))
}

// TestControllerModeRefreshIntervalZero: ESO never re-syncs an
// ExternalSecret with refreshInterval 0 once synced, and ignores a bumped
// force-sync annotation; `sync: controller` must still make it sync on up.
func TestControllerModeRefreshIntervalZero(t *testing.T) {
	b := setup(t)
	kv2("p/zero", map[string]any{"v": "one"})(t, b)
	inputs := with(data("v", "p/zero", "v"), "namespace", ns, "sync", "controller", "refreshInterval", "0s", "timeout", "60s",
		"store", map[string]any{"kind": "ClusterSecretStore", "name": "parity-v2"}, "target", map[string]any{"name": "zero"})
	urn := presource.URN("urn:pulumi:test::parity::esosync:index:ExternalSecret::zero")
	props := presource.FromResourcePropertyMap(presource.NewPropertyMapFromMap(inputs))
	created, err := b.server.Create(p.CreateRequest{Urn: urn, Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	secretValue := func() string {
		clients, err := b.env.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		s, err := clients.CoreV1().Secrets(ns).Get(context.Background(), "zero", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data["v"])
	}
	if got := secretValue(); got != "one" {
		t.Fatalf("after create: %q", got)
	}
	kv2("p/zero", map[string]any{"v": "two"})(t, b)
	if err := b.configure(); err != nil { // the update is a pulumi operation of its own
		t.Fatal(err)
	}
	if _, err := b.server.Update(p.UpdateRequest{ID: created.ID, Urn: urn, State: created.Properties, Inputs: props, OldInputs: props}); err != nil {
		t.Fatal(err)
	}
	if got := secretValue(); got != "two" {
		t.Errorf("after update with refreshInterval 0: %q, want the new Vault value", got)
	}
}
