package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// GetSecret mirrors ESO's SecretsManager.GetSecret (without metadataPolicy
// Fetch): the store prefix is prepended to ref.Key; without a property the
// whole secret is returned, SecretString if set, else SecretBinary; with a
// property, the value at that gjson path of the payload (SecretBinary if
// set, else SecretString), a key containing dots taken literally when the
// payload has it. Meta.Version is the VersionId that was read.
func (c *client) GetSecret(ctx context.Context, ref backend.Ref) ([]byte, backend.Meta, error) {
	key := c.prefix + ref.Key
	v, err := c.read(ctx, key, ref.Version)
	if err != nil {
		return nil, backend.Meta{}, err
	}
	meta := backend.Meta{Version: v.versionID}
	if ref.Property == "" {
		switch {
		case v.str != nil:
			return []byte(*v.str), meta, nil
		case v.bin != nil:
			return append([]byte(nil), v.bin...), meta, nil
		}
		return nil, backend.Meta{}, fmt.Errorf("aws: invalid secret received. no secret string nor binary for key: %s", ref.Key)
	}
	payload := v.payload()
	val := gjson.Get(payload, escapeDotsIfRequired(ref.Property, payload))
	if !val.Exists() {
		// ESO's text (with the key as the ref spells it), so users grepping
		// their status conditions find it.
		return nil, backend.Meta{}, fmt.Errorf("aws: key %s does not exist in secret %s", ref.Property, ref.Key)
	}
	return []byte(val.String()), meta, nil
}

// GetSecretMap mirrors ESO's SecretsManager.GetSecretMap: GetSecret's bytes
// (so the property selects a nested object) decoded as a JSON object; a
// value that is a JSON string becomes its text, any other value (number,
// bool, null, array, object) its raw JSON as stored.
func (c *client) GetSecretMap(ctx context.Context, ref backend.Ref) (map[string][]byte, backend.Meta, error) {
	data, meta, err := c.GetSecret(ctx, ref)
	if err != nil {
		return nil, backend.Meta{}, err
	}
	kv := make(map[string]json.RawMessage)
	if err := json.Unmarshal(data, &kv); err != nil {
		// ESO wraps the decoder's error, which quotes a character of the
		// secret; say what failed instead.
		what := "the secret"
		if ref.Property != "" {
			what = fmt.Sprintf("property %q", ref.Property)
		}
		return nil, backend.Meta{}, fmt.Errorf("aws: unable to unmarshal secret %s: %s is not a JSON object, so it has no key/value pairs", c.prefix+ref.Key, what)
	}
	out := make(map[string][]byte, len(kv))
	for k, raw := range kv {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out[k] = []byte(s)
		} else {
			out[k] = []byte(raw)
		}
	}
	return out, meta, nil
}

// read returns the secret key at version through the store's cache,
// wrapping errors with the key. Not-found wraps backend.ErrNotFound, ESO's
// NoSecretError.
func (c *client) read(ctx context.Context, key, version string) (*secretValue, error) {
	v, err := c.state.get(ctx, c.sm, c.hints, key, version)
	if err != nil {
		return nil, readError(key, version, err)
	}
	return v, nil
}

func readError(key, version string, err error) error {
	at := ""
	if version != "" {
		at = fmt.Sprintf(" (version %q)", version)
	}
	if errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("aws: secret %q%s: %w", key, at, backend.ErrNotFound)
	}
	return fmt.Errorf("aws: reading secret %q%s: %w", key, at, err)
}

// payload is ESO's retrievePayload: the text gjson searches.
func (v *secretValue) payload() string {
	if v.bin != nil {
		return string(v.bin)
	}
	if v.str != nil {
		return *v.str
	}
	return ""
}

// escapeDotsIfRequired is ESO's: a property containing dots is first tried
// as one literal key (all dots escaped); only when the payload has no such
// key is it a gjson path.
func escapeDotsIfRequired(property, payload string) string {
	if !strings.Contains(property, ".") {
		return property
	}
	escaped := strings.ReplaceAll(property, ".", `\.`)
	if gjson.Get(payload, escaped).Exists() {
		return escaped
	}
	return property
}
