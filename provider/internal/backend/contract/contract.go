// Package contract is the behaviour every backend.Client must share, as one
// table-driven test. Each backend's integration test builds a Fixture
// against its real server and calls Run; the cases pin ESO's observable
// semantics (whole secret as JSON, literal keys before gjson paths, value
// rendering, not-found handling), so the sync engine can stay generic.
package contract

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// Fixture is what Run needs from a backend's test.
type Fixture struct {
	// Put creates or replaces the remote secret key holding data as a
	// structured secret (a JSON object where the backend stores strings).
	Put func(t *testing.T, key string, data map[string]any)
	// Delete removes the remote secret key; Run calls it in cleanup.
	Delete func(t *testing.T, key string)
	// NewClient returns a client with working credentials for the store
	// the keys live in. Run closes it.
	NewClient func(t *testing.T) backend.Client
	// NewBadClient builds a client whose credentials the backend rejects.
	// A backend that authenticates while constructing returns that error
	// instead of a client; otherwise Validate must fail.
	NewBadClient func(t *testing.T) (backend.Client, error)
	// BadCredentialsReason is a piece of the backend's own rejection
	// reason that the error must carry, e.g. "permission denied".
	BadCredentialsReason string
	// KeyPrefix is prepended to every key Run writes; empty means a fresh
	// random "esosync-contract-<hex>-", so runs never see each other's data.
	KeyPrefix string
	// PutWithTags, when set, writes key like Put and attaches tags to it
	// (Vault: KV v2 custom metadata). Run skips the find-by-tags cases when
	// it is nil; the secrets they need are then written with Put.
	PutWithTags func(t *testing.T, key string, data map[string]any, tags map[string]string)
	// FindName maps a key as Run writes it to the name GetAllSecrets uses
	// for that secret, both in Find.Path and as a result key (a Vault store
	// without a path names secrets <mount>/data/<path> there). Nil means
	// the key itself.
	FindName func(key string) string
	// PathOnlyFindError, when set, says the backend refuses a find with
	// only a path, as ESO's AWS provider does ("unexpected find operator");
	// the path-only case then wants an error containing this text.
	PathOnlyFindError string
	// TagValuesMatchByPrefix says a tag filter value also selects secrets
	// whose tag value merely starts with it: AWS Secrets Manager's tag-value
	// filter, which ESO's AWS provider sends as is.
	TagValuesMatchByPrefix bool
	// NoFind says the backend has no dataFrom.find, as ESO's pulumi
	// provider has none: Run then only checks that GetAllSecrets fails
	// with a plain error (not ErrNotFound) that carries no secret.
	NoFind bool
}

// The seeded secrets. Values are distinctive so the leak check can look for them.
var (
	flatData = map[string]any{
		"user":     "contract-admin-user",
		"password": "contract-pa55w0rd-value",
		"ключ":     "контракт-значение-ü",
		"emoji-🔑":  "contract-emoji-value-✓",
		"n":        42,
		"f":        3.5,
		"b":        true,
		"list":     []any{1, "contract-list-item"},
	}
	nestedData = map[string]any{
		"top": "contract-top-value",
		"db": map[string]any{
			"user": "contract-nested-user",
			"port": 5432,
			"tls":  map[string]any{"enabled": true},
		},
	}
	dottedData = map[string]any{
		"a.b": "contract-dotted-value",
		"a":   map[string]any{"b": "contract-nested-b-value"},
	}
)

// The find seeds, written below <prefix>find/: names relative to that
// folder, their data and their tags.
var findSeeds = []struct {
	name string
	data map[string]any
	tags map[string]string
}{
	{"app-alpha", map[string]any{"user": "find-alpha-user", "password": "find-alpha-password"},
		map[string]string{"team": "payments", "env": "prod"}},
	{"app-beta", map[string]any{"user": "find-beta-user", "port": 5432},
		map[string]string{"team": "payments", "env": "dev"}},
	{"sub/app-gamma", map[string]any{"db": map[string]any{"user": "find-gamma-user", "tls": true}},
		map[string]string{"team": "search", "env": "prod"}},
	{"other-delta", map[string]any{"token": "find-delta-token"}, nil},
}

func findSeedData() []map[string]any {
	out := make([]map[string]any, len(findSeeds))
	for i, s := range findSeeds {
		out[i] = s.data
	}
	return out
}

type getCase struct {
	name     string
	key      string // seed name: flat, nested, dotted, missing
	property string
	want     string // for GetSecret
	wantJSON any    // GetSecret's result compared as JSON instead of bytes
	wantMap  map[string]string
	// wantErr, when set, is checked instead of the result.
	wantErr func(t *testing.T, err error)
}

// Run runs the contract against f. Each case is a subtest.
func Run(t *testing.T, f Fixture) {
	t.Helper()
	if f.Put == nil || f.Delete == nil || f.NewClient == nil || f.NewBadClient == nil {
		t.Fatal("contract: Fixture needs Put, Delete, NewClient and NewBadClient")
	}
	prefix := f.KeyPrefix
	if prefix == "" {
		prefix = "esosync-contract-" + randomHex(t) + "-"
	}
	keys := map[string]string{
		"flat":    prefix + "flat",
		"nested":  prefix + "nested",
		"dotted":  prefix + "dotted",
		"missing": prefix + "never-written",
	}
	seeds := map[string]map[string]any{"flat": flatData, "nested": nestedData, "dotted": dottedData}
	for name, data := range seeds {
		f.Put(t, keys[name], data)
	}
	t.Cleanup(func() {
		for name := range seeds {
			f.Delete(t, keys[name])
		}
	})
	findKeys := map[string]string{}
	for _, s := range findSeeds {
		key := prefix + "find/" + s.name
		findKeys[s.name] = key
		if f.PutWithTags != nil && s.tags != nil {
			f.PutWithTags(t, key, s.data, s.tags)
		} else {
			f.Put(t, key, s.data)
		}
	}
	t.Cleanup(func() {
		for _, key := range findKeys {
			f.Delete(t, key)
		}
	})
	values := secretStrings(append([]map[string]any{flatData, nestedData, dottedData}, findSeedData()...)...)
	noLeak := func(t *testing.T, err error) {
		t.Helper()
		for _, v := range values {
			if strings.Contains(err.Error(), v) {
				t.Errorf("error carries the secret value %q: %v", v, err)
			}
		}
	}
	notFound := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("want an error wrapping backend.ErrNotFound, got %v", err)
		}
	}
	// ESO fails the sync on a missing property instead of treating the
	// secret as absent, so this must not be ErrNotFound.
	missingProperty := func(property string) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			t.Helper()
			if errors.Is(err, backend.ErrNotFound) {
				t.Errorf("a missing property must not wrap backend.ErrNotFound: %v", err)
			}
			if !strings.Contains(err.Error(), property) {
				t.Errorf("error does not name the property %q: %v", property, err)
			}
		}
	}

	cases := []getCase{
		{name: "whole secret as JSON", key: "flat", wantJSON: flatData, wantMap: map[string]string{
			"user": "contract-admin-user", "password": "contract-pa55w0rd-value",
			"ключ": "контракт-значение-ü", "emoji-🔑": "contract-emoji-value-✓",
			"n": "42", "f": "3.5", "b": "true", "list": `[1,"contract-list-item"]`,
		}},
		{name: "property", key: "flat", property: "user", want: "contract-admin-user"},
		{name: "integer property", key: "flat", property: "n", want: "42"},
		{name: "float property", key: "flat", property: "f", want: "3.5"},
		{name: "bool property", key: "flat", property: "b", want: "true"},
		{name: "array property is JSON", key: "flat", property: "list", want: `[1,"contract-list-item"]`},
		{name: "unicode key", key: "flat", property: "ключ", want: "контракт-значение-ü"},
		{name: "emoji key", key: "flat", property: "emoji-🔑", want: "contract-emoji-value-✓"},
		{name: "nested property via gjson", key: "nested", property: "db.user", want: "contract-nested-user"},
		{name: "nested number via gjson", key: "nested", property: "db.port", want: "5432"},
		{name: "deep bool via gjson", key: "nested", property: "db.tls.enabled", want: "true"},
		{name: "object property is JSON", key: "nested", property: "db", wantJSON: nestedData["db"], wantMap: map[string]string{
			"user": "contract-nested-user", "port": "5432", "tls": `{"enabled":true}`,
		}},
		{name: "gjson array index", key: "flat", property: "list.1", want: "contract-list-item"},
		{name: "key with a dot wins over gjson", key: "dotted", property: "a.b", want: "contract-dotted-value"},
		{name: "object next to a dotted key", key: "dotted", property: "a", wantJSON: dottedData["a"]},
		{name: "missing key", key: "missing", wantErr: notFound},
		{name: "missing key with property", key: "missing", property: "user", wantErr: notFound},
		{name: "missing property", key: "flat", property: "no-such-property", wantErr: missingProperty("no-such-property")},
		{name: "missing nested property", key: "nested", property: "db.no-such-field", wantErr: missingProperty("db.no-such-field")},
	}

	client := f.NewClient(t)
	t.Cleanup(func() {
		if err := client.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	for _, tc := range cases {
		t.Run("GetSecret/"+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, _, err := client.GetSecret(ctx, backend.Ref{Key: keys[tc.key], Property: tc.property})
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("want an error, got %q", got)
				}
				tc.wantErr(t, err)
				noLeak(t, err)
				return
			}
			if err != nil {
				t.Fatalf("GetSecret: %v", err)
			}
			if tc.wantJSON != nil {
				assertJSON(t, got, tc.wantJSON)
				return
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range cases {
		if tc.wantMap == nil && tc.wantErr == nil {
			continue
		}
		t.Run("GetSecretMap/"+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, _, err := client.GetSecretMap(ctx, backend.Ref{Key: keys[tc.key], Property: tc.property})
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("want an error, got %d keys", len(got))
				}
				tc.wantErr(t, err)
				noLeak(t, err)
				return
			}
			if err != nil {
				t.Fatalf("GetSecretMap: %v", err)
			}
			if !reflect.DeepEqual(stringMap(got), tc.wantMap) {
				t.Errorf("got %v,\nwant %v", stringMap(got), tc.wantMap)
			}
		})
	}
	t.Run("GetSecretMap/string property is no map", func(t *testing.T) {
		_, _, err := client.GetSecretMap(context.Background(), backend.Ref{Key: keys["flat"], Property: "password"})
		if err == nil {
			t.Fatal("want an error: a string value has no key/value pairs")
		}
		noLeak(t, err)
	})

	runFind(t, f, client, prefix, findKeys, noLeak)

	t.Run("Validate", func(t *testing.T) {
		if err := client.Validate(context.Background()); err != nil {
			t.Fatalf("Validate with good credentials: %v", err)
		}
	})
	t.Run("Validate with bad credentials", func(t *testing.T) {
		bad, err := f.NewBadClient(t)
		if err == nil {
			defer func() { _ = bad.Close(context.Background()) }()
			err = bad.Validate(context.Background())
			if err == nil {
				t.Fatal("Validate accepted bad credentials")
			}
		}
		if f.BadCredentialsReason != "" && !strings.Contains(err.Error(), f.BadCredentialsReason) {
			t.Errorf("error does not carry the backend's reason %q: %v", f.BadCredentialsReason, err)
		}
		noLeak(t, err)
	})
}

// runFind is the dataFrom.find part of the contract: GetAllSecrets below
// the seeded folder, by path, name regexp and tags.
func runFind(t *testing.T, f Fixture, client backend.Client, prefix string, keys map[string]string, noLeak func(*testing.T, error)) {
	t.Helper()
	if f.NoFind {
		t.Run("GetAllSecrets/not supported", func(t *testing.T) {
			got, err := client.GetAllSecrets(context.Background(), backend.Find{Path: prefix + "find"})
			if err == nil {
				t.Fatalf("want an error from a backend without find, got %d secrets", len(got))
			}
			if errors.Is(err, backend.ErrNotFound) {
				t.Errorf("an unsupported find must not wrap backend.ErrNotFound: %v", err)
			}
			noLeak(t, err)
		})
		return
	}
	findName := f.FindName
	if findName == nil {
		findName = func(key string) string { return key }
	}
	folder := findName(prefix + "find")
	// Each case names the seeds it wants; the result keys are their find names.
	cases := []struct {
		name     string
		find     backend.Find
		want     []string
		needTags bool
		wantErr  string // a piece of the error wanted instead of a result
	}{
		{name: "by path, recursing into sub-paths", find: backend.Find{Path: folder},
			want: []string{"app-alpha", "app-beta", "sub/app-gamma", "other-delta"}},
		{name: "by name regexp", find: backend.Find{Path: folder, NameRegexp: "app-(alpha|gamma)$"},
			want: []string{"app-alpha", "sub/app-gamma"}},
		{name: "name regexp nothing matches", find: backend.Find{Path: folder, NameRegexp: "no-such-secret-[0-9]+$"},
			want: []string{}},
		{name: "by tag", find: backend.Find{Path: folder, Tags: map[string]string{"team": "payments"}},
			want: []string{"app-alpha", "app-beta"}, needTags: true},
		{name: "by tags, all must match", find: backend.Find{Path: folder, Tags: map[string]string{"team": "payments", "env": "prod"}},
			want: []string{"app-alpha"}, needTags: true},
		{name: "by tag in a sub-path", find: backend.Find{Path: folder, Tags: map[string]string{"env": "prod"}},
			want: []string{"app-alpha", "sub/app-gamma"}, needTags: true},
		{name: "tags nothing matches", find: backend.Find{Path: folder, Tags: map[string]string{"team": "nobody"}},
			want: []string{}, needTags: true},
		{name: "tag value must be equal", find: backend.Find{Path: folder, Tags: map[string]string{"team": "pay"}},
			want: []string{}, needTags: true},
	}
	for i := range cases {
		c := &cases[i]
		if f.PathOnlyFindError != "" && c.find.NameRegexp == "" && c.find.Tags == nil {
			c.name, c.want, c.wantErr = c.name+": refused", nil, f.PathOnlyFindError
		}
		if f.TagValuesMatchByPrefix && c.find.Tags["team"] == "pay" {
			c.name, c.want = "tag value matches by prefix", []string{"app-alpha", "app-beta"}
		}
	}
	for _, tc := range cases {
		t.Run("GetAllSecrets/"+tc.name, func(t *testing.T) {
			if tc.needTags && f.PutWithTags == nil {
				t.Skip("the fixture cannot tag secrets (no PutWithTags)")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			got, err := client.GetAllSecrets(ctx, tc.find)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("want an error containing %q, got %d secrets", tc.wantErr, len(got))
				}
				noLeak(t, err)
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error does not contain %q: %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				noLeak(t, err)
				t.Fatalf("GetAllSecrets: %v", err)
			}
			if got == nil {
				t.Fatal("GetAllSecrets returned a nil map; want an empty one when nothing matches")
			}
			want := map[string]string{}
			for _, s := range tc.want {
				want[findName(keys[s])] = keys[s]
			}
			var gotNames, wantNames []string
			for k := range got {
				gotNames = append(gotNames, k)
			}
			for k := range want {
				wantNames = append(wantNames, k)
			}
			sort.Strings(gotNames)
			sort.Strings(wantNames)
			if !reflect.DeepEqual(gotNames, wantNames) {
				t.Fatalf("got keys %q,\nwant %q", gotNames, wantNames)
			}
			// Each value is the whole secret, byte for byte what GetSecret returns.
			for name, key := range want {
				whole, _, err := client.GetSecret(ctx, backend.Ref{Key: key})
				if err != nil {
					t.Fatalf("GetSecret(%q): %v", key, err)
				}
				if !bytes.Equal(got[name], whole) {
					t.Errorf("%s: got %d bytes that differ from GetSecret's whole secret (%d bytes)", name, len(got[name]), len(whole))
				}
				for _, s := range findSeeds {
					if keys[s.name] == key {
						assertJSON(t, got[name], s.data)
					}
				}
			}
		})
	}
	t.Run("GetAllSecrets/invalid name regexp", func(t *testing.T) {
		_, err := client.GetAllSecrets(context.Background(), backend.Find{Path: folder, NameRegexp: "app-(alpha"})
		if err == nil {
			t.Fatal("want an error for a regexp that does not compile")
		}
		if errors.Is(err, backend.ErrNotFound) {
			t.Errorf("an invalid regexp must not wrap backend.ErrNotFound: %v", err)
		}
		noLeak(t, err)
	})
}

// assertJSON compares got with want as JSON values, so that key order and
// number spelling do not matter: backends differ there (ESO re-encodes a
// Vault secret but returns an AWS SecretString as stored).
func assertJSON(t *testing.T, got []byte, want any) {
	t.Helper()
	wantRaw, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	g, err := decodeJSON(got)
	if err != nil {
		t.Fatalf("result is not JSON (%v); %d bytes", err, len(got))
	}
	w, err := decodeJSON(wantRaw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got JSON %s,\nwant %s", got, wantRaw)
	}
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return normalizeNumbers(v), nil
}

// normalizeNumbers makes 42 and 42.0 equal by comparing numbers as float64.
func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return t.String()
		}
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = normalizeNumbers(e)
		}
	}
	return v
}

func stringMap(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// secretStrings lists the string leaves of the seeds, longest first, that
// are long enough not to occur in an error by chance.
func secretStrings(seeds ...map[string]any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case string:
			if len(t) >= 8 {
				out = append(out, t)
			}
		case map[string]any:
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	for _, s := range seeds {
		walk(s)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func randomHex(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
