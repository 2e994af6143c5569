package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// TestStateHashNotGuessable: a 4-digit PIN synced into a Secret cannot be
// recovered from the exported state by hashing the 10,000 candidates. The
// state's dataHash is an HMAC keyed in the cluster; the test tries the
// unkeyed hash esosync used to write (and two other obvious ones) and shows
// the same search does find the PIN under the unkeyed scheme, so the
// search itself works.
func TestStateHashNotGuessable(t *testing.T) {
	env := harness.Shared(t)
	const ns = "e2e-hash"
	vc := vaultClient(t, env)
	username := randomValue(t, "user")
	pin := fmt.Sprintf("%04d", 1000+len(username)*37%9000)
	if _, err := vc.KVv2("secret").Put(t.Context(), "my-app/config", map[string]any{"username": username, "password": pin}); err != nil {
		t.Fatal(err)
	}
	x := startExample(t, exampleProgram(t, filepath.Join("examples", "yaml", "vault"), newTestbed(t, ns)), ns)
	x.run("config", "set", "vaultAddress", env.VaultAddr)
	x.run("config", "set", "--secret", "vaultToken", env.VaultToken)
	x.up()
	state := x.run("stack", "export", "--show-secrets")
	hashes := regexp.MustCompile(`"dataHash":\s*"([^"]+)"`).FindAllStringSubmatch(state, -1)
	if len(hashes) == 0 {
		t.Fatal("no dataHash in the exported state")
	}
	inState := hashes[0][1]
	if !strings.HasPrefix(inState, "hmac-sha256:") {
		t.Errorf("dataHash in state is %q, want a keyed hmac-sha256", inState)
	}

	data := func(candidate string) map[string][]byte {
		return map[string][]byte{"username": []byte(username), "password": []byte(candidate)}
	}
	schemes := map[string]func(candidate string) string{
		"esosync before HMAC (length-prefixed sha256)": func(c string) string { return "sha256:" + unkeyed(data(c)) },
		"sha256 of the value":                          func(c string) string { return hex.EncodeToString(sha(c)) },
		"sha256 of username and value":                 func(c string) string { return hex.EncodeToString(sha(username + c)) },
	}
	tried := 0
	for name, scheme := range schemes {
		for i := range 10000 {
			tried++
			if h := scheme(fmt.Sprintf("%04d", i)); strings.Contains(inState, strings.TrimPrefix(h, "sha256:")) {
				t.Errorf("the state's dataHash matches candidate %04d under %s", i, name)
			}
		}
	}
	// The same search against the dataHash an older esosync wrote for
	// this Secret finds the PIN.
	older, found := unkeyed(data(pin)), ""
	for i := range 10000 {
		if c := fmt.Sprintf("%04d", i); unkeyed(data(c)) == older {
			found = c
		}
	}
	if found != pin {
		t.Fatalf("the brute force does not work against the unkeyed scheme (found %q)", found)
	}
	t.Logf("brute force of a 4-digit value from the exported state: %d candidate hashes tried, no match in state (%s); "+
		"the same search finds it in under 10,000 tries under the unkeyed scheme", tried, inState[:len("hmac-sha256:")+8]+"…")
	x.run("destroy", "--yes", "--skip-preview")
	assertNothingLeft(t, env, ns)
}

// unkeyed is esosync's hash before it was keyed: sha256 over the keys in
// order, each key and value length-prefixed.
func unkeyed(data map[string][]byte) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(data)) {
		fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sha(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
