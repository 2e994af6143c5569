package parity

import (
	"fmt"
	"net"
	"testing"

	"github.com/esosync/pulumi-esosync/tests/escserver"
)

// The ESC store reads environment escOrg/escProject/escEnv of the local
// ESC endpoint (tests/escserver), which both ESO's pulumi provider and
// esosync's ESC backend reach at its apiUrl.
const (
	escStore   = "parity-esc"
	escOrg     = "parity-org"
	escProject = "parity"
	escEnv     = "app"
	// escToken is the Pulumi access token the store presents; the
	// endpoint accepts it and nothing else.
	escToken = "pul-parity-5b0e7c1d9a2f4e68"
)

// escBaseYAML is parity/base, which escYAML imports.
const escBaseYAML = `values:
  base:
    host: db.internal
`

// escOldYAML is the environment's first revision; escYAML is its second
// and latest. esc-version-ignored pins revision 1, and both sides read the
// latest all the same.
const escOldYAML = `values:
  app:
    user: old-admin
`

// escYAML holds every value the ESC cases read: each case's remote key
// is an ESC property path into it.
const escYAML = `imports:
  - parity/base
values:
  app:
    user: admin
    pass: s3cr3t
    "pass word": spaced value
    port: 5432
    ratio: 1.5
    enabled: true
    nothing: null
    greeting: "grüß dich ✓ 日本"
    token:
      fn::secret: tok-3f9a
    url: postgres://admin@${base.host}/app
    b64: aGVsbG8=
    b64url: "-_8_"
    db:
      host: db.local
      port: 5432
    list: [x, 2, true]
  flat:
    user: app
    pass: pw
    port: 8080
    enabled: false
  nest:
    s: plain
    inner:
      k: v
  extuni:
    "a b": w
    "x/y": z
    ok: v
  rw:
    db-user: u
    db-pass: p
    other: o
  b64map:
    a: QQ==
    b: Qg==
  keys:
    "schlüssel": v
`

// setupESC starts the ESC endpoint on the bed's listen host (so ESO's
// controller reaches it as esosync does), stores the environments, and
// creates the ESC store: validated by esosync (it opens the environment)
// and reported Valid by ESO.
func (b *bed) setupESC() (err error) {
	srv, err := escserver.Start(net.JoinHostPort(b.env.ListenHost, "0"))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = srv.Close()
		}
	}()
	srv.AddToken(escToken)
	for _, e := range []struct{ env, yaml string }{{"base", escBaseYAML}, {escEnv, escOldYAML}, {escEnv, escYAML}} {
		if err := srv.SetEnvironment(escOrg, escProject, e.env, e.yaml); err != nil {
			return err
		}
	}
	if _, err := b.create("ClusterSecretStore", escStore, map[string]any{
		"credentialsNamespace": ns, "waitForReady": true, "timeout": "60s",
		"backend": map[string]any{"esc": map[string]any{
			"organization": escOrg, "project": escProject, "environment": escEnv, "apiUrl": srv.URL(),
			"auth": map[string]any{"accessToken": map[string]any{"value": escToken}},
		}},
	}); err != nil {
		return fmt.Errorf("store %s: %w", escStore, err)
	}
	b.esc = srv
	return nil
}

// escWrapped is in every nested value ESO's pulumi provider renders: the
// ESC API wraps each member and element as {"value":…,"trace":{"def":…}}
// with its source position, and ESO marshals what ReadEnvironmentProperty
// decoded without unwrapping the inside (json.Marshal sorts "trace" before
// "value").
const escWrapped = `"trace":{"def":{`

// escNestedDiffers is the deliberate difference of every case that reads
// an object or array.
const escNestedDiffers = "nested values: ESO's pulumi provider renders an object or array with the ESC API's " +
	`{"value":…,"trace":…} wrappers (source positions) still inside every member and element; esosync renders ` +
	"plain JSON, as `esc env get` and its other backends do (backend/esc/esc.go)"

// escCases run against escStore. Remote keys are ESC property paths;
// ESO's pulumi provider ignores remoteRef.property and version, and has
// no find.
var escCases = []parityCase{
	{name: "esc-string", spec: data("pass", "app.pass", "")},
	{name: "esc-nested-path", spec: data("host", "app.db.host", "")},
	{name: "esc-quoted-name", spec: data("v", `app["pass word"]`, "")},
	{name: "esc-array-index", spec: dataOf(item("first", "app.list[0]", ""), item("second", "app.list[1]", ""), item("third", "app.list[2]", ""))},
	// esutils.GetByteValue on both sides: 5432, 1.5, true.
	{name: "esc-numbers-bools", spec: dataOf(item("port", "app.port", ""), item("ratio", "app.ratio", ""), item("enabled", "app.enabled", ""))},
	{name: "esc-null", spec: data("nothing", "app.nothing", "")},
	{name: "esc-unicode-value", spec: data("greeting", "app.greeting", "")},
	{name: "esc-secret-value", spec: data("token", "app.token", "")},
	// Imports and interpolation are evaluated by the API (Pulumi's own
	// evaluator in the endpoint), not by either side.
	{name: "esc-import-interpolation", spec: dataOf(item("url", "app.url", ""), item("host", "base.host", ""))},
	{name: "esc-decode-base64", spec: dataOf(item("v", "app.b64", "", base64Decoding), item("u", "app.b64url", "", base64URLDecoding))},
	{name: "esc-decode-auto", spec: dataOf(item("b64", "app.b64", "", autoDecoding), item("plain", "app.user", "", autoDecoding))},
	// Members that are strings, numbers and booleans only: ESO unwraps
	// one level, which is all these have.
	{name: "esc-extract-flat", spec: extract("flat", nil)},
	{name: "esc-extract-unicode-conversion", spec: extract("extuni", unicodeConversion)},
	{name: "esc-extract-default-conversion", spec: extract("extuni", nil)},
	{name: "esc-extract-decode-base64", spec: extract("b64map", base64Decoding)},
	{name: "esc-rewrite-regexp", spec: extract("rw", nil, rewriteRegexp("^db-(.*)", "DB_$1"))},
	{name: "esc-rewrite-transform", spec: extract("flat", nil, map[string]any{"transform": map[string]any{"template": "APP_{{ .value | upper }}"}})},
	{name: "esc-template", spec: with(dataOf(item("user", "flat.user", ""), item("pass", "flat.pass", ""), item("port", "flat.port", "")),
		"target", map[string]any{"template": map[string]any{"type": "kubernetes.io/basic-auth",
			"data": map[string]any{
				"username": "{{ .user }}",
				"password": "{{ .pass | upper }}",
				"dsn":      "postgres://{{ .user }}@db:{{ .port }}/app?p={{ .pass | b64enc }}"}}})},
	// ESC has no per-key versions; both sides ignore remoteRef.version and
	// read the latest revision (admin, not revision 1's old-admin).
	{name: "esc-version-ignored", spec: data("user", "app.user", "", map[string]any{"version": "1"})},
	{name: "esc-find-fails", spec: find(map[string]any{"name": map[string]any{"regexp": ".*"}}),
		fails: &failure{cause: causeFindUnsupported, at: []string{"spec.dataFrom[0].find", "error getting all secrets"}}},
	// ESO: the API's 404, esosync: backend.ErrNotFound; with Retain both
	// fail (with Delete they part: esc-missing-key-delete).
	{name: "esc-missing-key-retain-fails", spec: data("x", "app.nope", ""),
		fails: &failure{cause: causeNotFound, at: []string{"spec.data[0] (key: app.nope)"}}},
	{name: "esc-extract-non-ascii-keys-fails", spec: extract("keys", unicodeConversion),
		fails: &failure{cause: causeBadKey, at: []string{"schlüssel"}}},

	{name: "esc-object-value", spec: data("db", "app.db", ""),
		differs:  escNestedDiffers,
		provider: syncs(map[string]string{"db": `{"host":"db.local","port":5432}`}),
		eso:      syncsMatching(nil, map[string][]string{"db": {escWrapped, `"value":"db.local"`, `"value":5432`}})},
	{name: "esc-array-value", spec: data("list", "app.list", ""),
		differs:  escNestedDiffers,
		provider: syncs(map[string]string{"list": `["x",2,true]`}),
		eso:      syncsMatching(nil, map[string][]string{"list": {escWrapped, `"value":"x"`, `"value":2`, `"value":true`}})},
	{name: "esc-extract-nested", spec: extract("nest", nil),
		differs:  escNestedDiffers,
		provider: syncs(map[string]string{"s": "plain", "inner": `{"k":"v"}`}),
		eso:      syncsMatching(map[string]string{"s": "plain"}, map[string][]string{"inner": {escWrapped, `"value":"v"`}})},
	{name: "esc-property", spec: data("host", "app.db", "host"),
		differs: "remoteRef.property: ESO's pulumi provider ignores it and returns the whole value at the key (here the " +
			"object app.db, with its wrappers); esosync selects inside that value like its other backends (a literal member, " +
			"then a gjson path), so the sync engine stays generic",
		provider: syncs(map[string]string{"host": "db.local"}),
		eso:      syncsMatching(nil, map[string][]string{"host": {escWrapped, `"value":"db.local"`}})},
	{name: "esc-extract-property", spec: extract("nest", map[string]any{"property": "inner"}),
		differs: "dataFrom.extract.property: ESO's pulumi provider ignores it and extracts every member of the key's " +
			"object (nest); esosync extracts the members of the property's object (nest.inner)",
		provider: syncs(map[string]string{"k": "v"}),
		eso:      syncsMatching(map[string]string{"s": "plain"}, map[string][]string{"inner": {escWrapped, `"value":"v"`}})},
	{name: "esc-extract-non-object", spec: extract("app.pass", nil),
		differs: "extract of a value that is not an object: ESO's pulumi provider drops GetMapFromInterface's error and " +
			"syncs an empty map, which with deletionPolicy Retain writes no Secret and reports SecretSynced; esosync " +
			"fails, naming the key, so the mistake shows at `pulumi up`",
		provider: failsFor(causeNotObject, "spec.dataFrom[0].extract", "app.pass"),
		eso:      syncsNothing()},
	{name: "esc-missing-key-delete", spec: with(data("x", "app.nope", ""), "target", map[string]any{"deletionPolicy": "Delete"}),
		differs: "a key the environment lacks, with deletionPolicy Delete: ESO's pulumi provider passes the API's 404 on " +
			"as a plain error, so ESO fails the sync; esosync reports backend.ErrNotFound (ESO's NoSecretError), so " +
			"the key is skipped as ESO skips a missing secret of its other providers, and the Secret is deleted (here: never written)",
		provider: syncsNothing(),
		eso:      failsFor(causeNotFound, "spec.data[0] (key: app.nope)")},
}

// TestParityESC runs every Pulumi ESC case through `sync: provider` and
// through the ESO controller, both against the local ESC endpoint, and
// compares the resulting Secrets, or the failures, or checks the
// documented difference.
func TestParityESC(t *testing.T) {
	runParity(t, "esc", escStore, escCases)
}
