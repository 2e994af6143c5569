package vault_test

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/vault"
)

// GetAllSecrets completes recording, so the contract's finds go through the leak check too.
func (r recording) GetAllSecrets(ctx context.Context, find backend.Find) (map[string][]byte, error) {
	m, err := r.c.GetAllSecrets(ctx, find)
	return m, leaks.record(err)
}

// putV2Tagged writes secret/<key> and sets its custom metadata, which is
// what ESO's find.tags compares.
func (b *testbed) putV2Tagged(t *testing.T, key string, data map[string]any, tags map[string]string) {
	t.Helper()
	b.putV2(t, key, data)
	custom := make(map[string]interface{}, len(tags))
	for k, v := range tags {
		custom[k] = v
	}
	if err := b.root.KVv2("secret").PutMetadata(context.Background(), key, vaultapi.KVMetadataPutInput{CustomMetadata: custom}); err != nil {
		t.Fatalf("writing the metadata of secret/%s: %v", key, err)
	}
}

// kv1ListPolicy returns a policy that lets a token list the kv1 mount,
// which find needs and the read policy does not grant.
func (b *testbed) kv1ListPolicy(t *testing.T) string {
	t.Helper()
	once(t, "kv1 list policy", func() {
		b.policy(t, "esosync-list-kv1", `path "kv1/*" { capabilities = ["list"] }`)
	})
	return "esosync-list-kv1"
}

func findAll(t *testing.T, c backend.Client, find backend.Find) (map[string][]byte, error) {
	t.Helper()
	m, err := c.GetAllSecrets(context.Background(), find)
	return m, leaks.record(err)
}

func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func wantKeys(t *testing.T, got map[string][]byte, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("GetAllSecrets: %v", err)
	}
	if got == nil {
		t.Fatal("GetAllSecrets returned a nil map")
	}
	sort.Strings(want)
	if want == nil {
		want = []string{}
	}
	if g := sortedKeys(got); !reflect.DeepEqual(g, want) {
		t.Errorf("keys %q, want %q", g, want)
	}
}

// ESO's find on KV v2 with a store path, quirk by quirk.
func TestFindKVv2(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	ctx := context.Background()
	base := "findq-" + randomHex(t)
	kv := b.root.KVv2("secret")
	seed := map[string]map[string]any{
		"a":     {"k": "findq-a-value"},
		"dir/b": {"k": "findq-b-value", "n": 7},
		"c":     {"k": "findq-c-value"},
	}
	for name, data := range seed {
		secretStrings(data)
		if name == "c" {
			b.putV2(t, base+"/"+name, data)
		} else {
			b.putV2Tagged(t, base+"/"+name, data, map[string]string{"team": "x"})
		}
	}
	// Listed by the metadata endpoint, but with no current version to read.
	leaks.secret("findq-deleted-value", "findq-destroyed-value", "findq-old-value", "findq-new-value")
	b.putV2Tagged(t, base+"/deleted", map[string]any{"k": "findq-deleted-value"}, map[string]string{"team": "x"})
	if err := kv.Delete(ctx, base+"/deleted"); err != nil {
		t.Fatal(err)
	}
	b.putV2(t, base+"/destroyed", map[string]any{"k": "findq-destroyed-value"})
	if err := kv.Destroy(ctx, base+"/destroyed", []int{1}); err != nil {
		t.Fatal(err)
	}
	b.putV2(t, base+"/old-alive", map[string]any{"k": "findq-old-value"})
	b.putV2(t, base+"/old-alive", map[string]any{"k": "findq-new-value"})
	if err := kv.DeleteVersions(ctx, base+"/old-alive", []int{2}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range []string{"a", "dir/b", "c", "deleted", "destroyed", "old-alive"} {
			if err := kv.DeleteMetadata(ctx, base+"/"+name); err != nil {
				t.Errorf("deleting %s: %v", name, err)
			}
		}
	})
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: b.token(t, "esosync-read-secret")}})
	k := func(name string) string { return base + "/" + name }

	t.Run("keys are the listed paths; versions without data are skipped", func(t *testing.T) {
		got, err := findAll(t, c, backend.Find{Path: base})
		wantKeys(t, got, err, k("a"), k("dir/b"), k("c"))
		for name := range seed {
			whole, _, err := c.GetSecret(ctx, backend.Ref{Key: k(name)})
			if leaks.record(err) != nil {
				t.Fatal(err)
			}
			if string(got[k(name)]) != string(whole) {
				t.Errorf("%s: value differs from GetSecret's whole secret", name)
			}
		}
		if want := `{"k":"findq-b-value","n":7}`; string(got[k("dir/b")]) != want {
			t.Errorf("dir/b = %s, want %s", got[k("dir/b")], want)
		}
	})
	t.Run("a name regexp makes tags ignored", func(t *testing.T) {
		got, err := findAll(t, c, backend.Find{Path: base, NameRegexp: "/c$", Tags: map[string]string{"team": "x"}})
		wantKeys(t, got, err, k("c"))
	})
	t.Run("regexp is unanchored and sees the whole name", func(t *testing.T) {
		got, err := findAll(t, c, backend.Find{Path: base, NameRegexp: "^a$"})
		wantKeys(t, got, err)
		got, err = findAll(t, c, backend.Find{Path: base, NameRegexp: "^" + regexp.QuoteMeta(base) + "/a$"})
		wantKeys(t, got, err, k("a"))
		got, err = findAll(t, c, backend.Find{Path: base, NameRegexp: "dir"})
		wantKeys(t, got, err, k("dir/b"))
	})
	t.Run("tags skip untagged and deleted secrets", func(t *testing.T) {
		got, err := findAll(t, c, backend.Find{Path: base, Tags: map[string]string{"team": "x"}})
		wantKeys(t, got, err, k("a"), k("dir/b"))
	})
	t.Run("an empty tags map keeps everything", func(t *testing.T) {
		got, err := findAll(t, c, backend.Find{Path: base, Tags: map[string]string{}})
		wantKeys(t, got, err, k("a"), k("dir/b"), k("c"))
	})
	t.Run("no path lists the whole mount, keys without a leading slash", func(t *testing.T) {
		got, err := findAll(t, c, backend.Find{NameRegexp: "^" + regexp.QuoteMeta(base) + "/dir/"})
		wantKeys(t, got, err, k("dir/b"))
	})
	t.Run("a path with nothing below is ErrNotFound", func(t *testing.T) {
		for _, path := range []string{
			base + "/no-such-folder",
			// A secret is no folder.
			k("a"),
			// Unlike a key, a find path keeps the mount: secret/metadata/secret/...
			"secret/" + base,
		} {
			_, err := findAll(t, c, backend.Find{Path: path})
			if !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("path %q: want ErrNotFound, got %v", path, err)
			}
		}
	})
	t.Run("the regexp is compiled after listing", func(t *testing.T) {
		_, err := findAll(t, c, backend.Find{Path: base + "/no-such-folder", NameRegexp: "("})
		if !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("missing path and bad regexp: want ErrNotFound, got %v", err)
		}
		_, err = findAll(t, c, backend.Find{Path: base, NameRegexp: "("})
		if err == nil || errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), "could not compile find.name.regexp [(]") {
			t.Errorf("bad regexp: want ESO's compile error, got %v", err)
		}
	})
	t.Run("an undeleted version is found again", func(t *testing.T) {
		if err := kv.Undelete(ctx, k("deleted"), []int{1}); err != nil {
			t.Fatal(err)
		}
		got, err := findAll(t, c, backend.Find{Path: base, Tags: map[string]string{"team": "x"}})
		wantKeys(t, got, err, k("a"), k("dir/b"), k("deleted"))
	})
	t.Run("listing needs the list capability", func(t *testing.T) {
		once(t, "find read-only policy", func() {
			b.policy(t, "esosync-find-no-list", `path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read"] }`)
		})
		noList := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: b.token(t, "esosync-find-no-list")}})
		_, err := findAll(t, noList, backend.Find{Path: base})
		if err == nil || errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("want a permission denied error that is no ErrNotFound, got %v", err)
		}
	})
	t.Run("tags read every candidate's metadata, a name regexp does not", func(t *testing.T) {
		once(t, "find list-only policy", func() {
			b.policy(t, "esosync-find-list-only", `path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["list"] }`)
		})
		listOnly := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "secret", Auth: vault.Auth{Token: b.token(t, "esosync-find-list-only")}})
		got, err := findAll(t, listOnly, backend.Find{Path: base, NameRegexp: "."})
		wantKeys(t, got, err, k("a"), k("dir/b"), k("c"), k("deleted"))
		// Even without tags to compare, ESO reads the metadata and fails on it.
		for _, find := range []backend.Find{{Path: base}, {Path: base, Tags: map[string]string{"team": "x"}}} {
			_, err = findAll(t, listOnly, find)
			if err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Errorf("%+v: want permission denied on the metadata read, got %v", find, err)
			}
		}
	})
}

// Without a store path, ESO's find path must contain "data"; its first
// "/data/" becomes "/metadata/" and the result keys keep "data/".
func TestFindKVv2WithoutStorePath(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	base := "findnp-" + randomHex(t)
	leaks.secret("findnp-x-value")
	b.putV2(t, base+"/x", map[string]any{"k": "findnp-x-value"})
	t.Cleanup(func() {
		if err := b.root.KVv2("secret").DeleteMetadata(context.Background(), base+"/x"); err != nil {
			t.Error(err)
		}
	})
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Auth: vault.Auth{Token: b.token(t, "esosync-read-secret")}})
	got, err := findAll(t, c, backend.Find{Path: "secret/data/" + base})
	wantKeys(t, got, err, "secret/data/"+base+"/x")
	if want := `{"k":"findnp-x-value"}`; string(got["secret/data/"+base+"/x"]) != want {
		t.Errorf("value %s, want %s", got["secret/data/"+base+"/x"], want)
	}
	for _, path := range []string{"", "secret/" + base} {
		_, err := findAll(t, c, backend.Find{Path: path})
		if err == nil || !strings.Contains(err.Error(), "provided Path isn't a valid kv v2 path") {
			t.Errorf("path %q: want ESO's invalid path error, got %v", path, err)
		}
	}
}

// ESO refuses tags on KV v1 (even an empty map) but finds by path and name.
func TestFindKVv1(t *testing.T) {
	checkLeaks(t)
	b := bed(t)
	base := "findv1-" + randomHex(t)
	leaks.secret("findv1-x-value", "findv1-y-value")
	b.write(t, "kv1/"+base+"/x", map[string]any{"k": "findv1-x-value"})
	b.write(t, "kv1/"+base+"/sub/y", map[string]any{"k": "findv1-y-value"})
	t.Cleanup(func() {
		for _, p := range []string{"x", "sub/y"} {
			if _, err := b.root.Logical().Delete("kv1/" + base + "/" + p); err != nil {
				t.Error(err)
			}
		}
	})
	token := b.token(t, "esosync-read-secret", b.kv1ListPolicy(t))
	c := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Path: "kv1", Version: "v1", Auth: vault.Auth{Token: token}})

	got, err := findAll(t, c, backend.Find{Path: base})
	wantKeys(t, got, err, base+"/x", base+"/sub/y")
	if want := `{"k":"findv1-y-value"}`; string(got[base+"/sub/y"]) != want {
		t.Errorf("value %s, want %s", got[base+"/sub/y"], want)
	}
	got, err = findAll(t, c, backend.Find{Path: base, NameRegexp: "y$"})
	wantKeys(t, got, err, base+"/sub/y")
	for _, tags := range []map[string]string{{"team": "x"}, {}} {
		_, err := findAll(t, c, backend.Find{Path: base, Tags: tags})
		if err == nil || !strings.Contains(err.Error(), "cannot perform find by tag operations with kv version v1") {
			t.Errorf("tags %v: want ESO's kv v1 error, got %v", tags, err)
		}
	}
	// ESO dereferences the unset store path and panics; we return an error.
	noPath := mustOpen(t, vault.Config{Server: b.env.VaultAddr, Version: "v1", Auth: vault.Auth{Token: token}})
	if _, err := findAll(t, noPath, backend.Find{Path: "kv1/" + base}); err == nil {
		t.Error("KV v1 without a store path: want an error")
	}
}
