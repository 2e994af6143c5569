package provider

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/property"
)

// TestSecretLike: a value secret in the request stays secret in Read's
// response at the same path, nested in maps and arrays; other values keep
// their marks.
func TestSecretLike(t *testing.T) {
	secret := func(s string) property.Value { return property.New(s).WithSecret(true) }
	creds := func(v property.Value) property.Value {
		return property.New(map[string]property.Value{"backend": property.New(map[string]property.Value{
			"auth": property.New(map[string]property.Value{"value": v, "name": property.New("token")}),
			"list": property.New([]property.Value{property.New("a"), v}),
		})})
	}
	for _, tc := range []struct {
		name    string
		in, out property.Value
		want    property.Value
	}{
		{"nested secret restored", creds(secret("s3cr3t")), creds(property.New("s3cr3t")), creds(secret("s3cr3t"))},
		{"changed value still secret", creds(secret("old")), creds(property.New("new")), creds(secret("new"))},
		{"plain stays plain", creds(property.New("x")), creds(property.New("x")), creds(property.New("x"))},
		{"whole map secret", creds(property.New("x")).WithSecret(true), creds(property.New("x")), creds(property.New("x")).WithSecret(true)},
		{"new field in out", property.New(map[string]property.Value{}), creds(property.New("x")), creds(property.New("x"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := secretLike(tc.in, tc.out); !got.Equals(tc.want) {
				t.Errorf("secretLike = %v, want %v", got, tc.want)
			}
		})
	}
}
