package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/external-secrets/external-secrets/pkg/esutils"
	"github.com/tidwall/gjson"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// errSecretKeyFmt is ESO's text for a property the secret does not have;
// kept verbatim because users grep their status conditions for it.
const errSecretKeyFmt = "cannot find secret data for key: %q"

// GetSecret mirrors ESO's client.GetSecret without metadataPolicy Fetch:
// the whole secret as JSON when ref.Property is empty, else one value
// (a literal key first, then a gjson path).
func (c *Client) GetSecret(ctx context.Context, ref backend.Ref) ([]byte, backend.Meta, error) {
	path := c.buildPath(ref.Key)
	data, meta, err := c.cachedRead(ctx, path, ref.Version)
	if err != nil {
		return nil, backend.Meta{}, err
	}
	value, err := getSecretValue(data, ref.Property)
	if err != nil {
		return nil, backend.Meta{}, fmt.Errorf("vault: reading %q: %w", path, err)
	}
	return value, meta, nil
}

// GetSecretMap mirrors ESO's client.GetSecretMap: it takes GetSecret's
// bytes, decodes them as a JSON object and renders every value with ESO's
// GetByteValueFromMap. That round trip is why numbers come out the way
// float64 formats them (ints beyond 2^53 lose precision, as in ESO).
func (c *Client) GetSecretMap(ctx context.Context, ref backend.Ref) (map[string][]byte, backend.Meta, error) {
	path := c.buildPath(ref.Key)
	data, meta, err := c.cachedRead(ctx, path, ref.Version)
	if err != nil {
		return nil, backend.Meta{}, err
	}
	raw, err := getSecretValue(data, ref.Property)
	if err != nil {
		return nil, backend.Meta{}, fmt.Errorf("vault: reading %q: %w", path, err)
	}
	var secretData map[string]any
	if err := json.Unmarshal(raw, &secretData); err != nil {
		// encoding/json quotes the offending character of a syntax error,
		// which would be a character of the secret; say what failed instead.
		what := "the secret"
		if ref.Property != "" {
			what = fmt.Sprintf("property %q", ref.Property)
		}
		return nil, backend.Meta{}, fmt.Errorf("vault: reading %q: %s is not a JSON object, so it has no key/value pairs", path, what)
	}
	out := make(map[string][]byte, len(secretData))
	for k := range secretData {
		v, err := esutils.GetByteValueFromMap(secretData, k)
		if err != nil {
			return nil, backend.Meta{}, fmt.Errorf("vault: reading %q: key %q: %w", path, k, err)
		}
		out[k] = v
	}
	return out, meta, nil
}

// readSecret mirrors ESO's client.readSecret on an already built path. A
// missing secret, and a KV v2 version that is deleted or destroyed (Vault
// answers 404 with data null), wrap backend.ErrNotFound like ESO's
// NoSecretError.
func (c *Client) readSecret(ctx context.Context, path, version string) (map[string]any, backend.Meta, error) {
	var params map[string][]string
	if version != "" {
		params = map[string][]string{"version": {version}}
	}
	c.session.CountCall("vault.read")
	secret, err := c.api.Logical().ReadWithDataWithContext(ctx, path, params)
	if err != nil {
		return nil, backend.Meta{}, fmt.Errorf("vault: reading %q: cannot read secret data from Vault: %w", path, err)
	}
	if secret == nil {
		return nil, backend.Meta{}, fmt.Errorf("vault: reading %q: %w", path, backend.ErrNotFound)
	}
	data := secret.Data
	var meta backend.Meta
	if c.version == VersionV2 {
		// KV v2 nests the fields under data and describes the version under metadata.
		inner, ok := secret.Data["data"]
		if !ok {
			return nil, backend.Meta{}, fmt.Errorf("vault: reading %q: failed to find data field", path)
		}
		if inner == nil {
			return nil, backend.Meta{}, fmt.Errorf("vault: reading %q: %w", path, backend.ErrNotFound)
		}
		data, ok = inner.(map[string]any)
		if !ok {
			return nil, backend.Meta{}, fmt.Errorf("vault: reading %q: failed to unmarshall JSON", path)
		}
		meta.Version = kvVersion(secret.Data["metadata"])
	}
	return data, meta, nil
}

// kvVersion extracts metadata.version of a KV v2 read as a decimal string.
func kvVersion(metadata any) string {
	m, ok := metadata.(map[string]any)
	if !ok {
		return ""
	}
	switch v := m["version"].(type) {
	case json.Number:
		return v.String()
	case float64:
		return fmt.Sprintf("%.0f", v)
	case string:
		return v
	}
	return ""
}

// getSecretValue is ESO's getSecretValue. Errors carry the property name,
// never a value. A missing property is a plain error, not ErrNotFound: ESO
// fails the sync for it rather than treating the secret as absent.
func getSecretValue(data map[string]any, property string) ([]byte, error) {
	if data == nil {
		return nil, backend.ErrNotFound
	}
	jsonStr, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	if property == "" {
		return jsonStr, nil
	}
	// A literal key wins over gjson syntax, for compatibility with keys
	// that contain dots.
	if _, ok := data[property]; ok {
		return esutils.GetByteValueFromMap(data, property)
	}
	val := gjson.Get(string(jsonStr), property)
	if !val.Exists() {
		return nil, fmt.Errorf(errSecretKeyFmt, property)
	}
	return []byte(val.String()), nil
}

// buildPath is ESO's buildPath: it turns a remote key into the API path.
//
//	version  store path     key                        result
//	v2       secret/path    foo                        secret/path/data/foo
//	v1       secret/path    foo                        secret/path/foo
//	v2       secret/path    secret/path/foo            secret/path/data/foo
//	v2       secret/path    secret/path/data/foo       secret/path/data/foo
//	v1       secret/path    secret/path/foo            secret/path/foo
//	v2       (unset)        secret/path/foo            secret/data/path/foo
//	v2       (unset)        secret/path/data/foo       secret/path/data/foo
//	v1       (unset)        secret/path/foo            secret/path/foo
//
// Quirks kept on purpose, because ESO has them: a key that starts with the
// mount path has it stripped even when the secret itself is named like the
// mount, and without a store path any "/data/" in the key is taken as the
// KV v2 marker.
func (c *Client) buildPath(key string) string {
	out := key
	if c.path != nil {
		mount := *c.path
		cut := mount + "/"
		if strings.HasPrefix(out, cut) {
			_, out, _ = strings.Cut(out, cut)
			if strings.HasPrefix(out, "data/") && c.version == VersionV2 {
				_, out, _ = strings.Cut(out, "data/")
			}
		}
		parts := strings.Split(mount, "/")
		if c.version == VersionV2 {
			parts = append(parts, "data")
		}
		parts = append(parts, strings.Split(out, "/")...)
		return strings.Join(parts, "/")
	}
	if !strings.Contains(out, "/data/") && c.version == VersionV2 {
		parts := strings.Split(out, "/")
		built := append([]string{parts[0], "data"}, parts[1:]...)
		return strings.Join(built, "/")
	}
	return out
}
