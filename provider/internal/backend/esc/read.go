package esc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/external-secrets/external-secrets/pkg/esutils"
	"github.com/tidwall/gjson"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// errSecretKeyFmt is the text ESO's other providers use for a property the
// secret does not have; kept so that status conditions read the same
// whichever backend a store uses.
const errSecretKeyFmt = "cannot find secret data for key: %q"

// GetSecret mirrors ESO's client.GetSecret: the value at the ESC path
// ref.Key, rendered by ESO's esutils.GetByteValue (strings raw, numbers
// and booleans as text, objects and arrays as JSON, null as nothing).
// ref.Property, when set, selects inside that value (see the package doc);
// ref.Version is ignored, as ESO ignores it.
func (c *Client) GetSecret(ctx context.Context, ref backend.Ref) ([]byte, backend.Meta, error) {
	v, err := c.resolve(ctx, ref)
	if err != nil {
		return nil, backend.Meta{}, err
	}
	out, err := render(v)
	if err != nil {
		return nil, backend.Meta{}, fmt.Errorf("esc: environment %q: key %q: %w", c.envName(), ref.Key, err)
	}
	return out, backend.Meta{}, nil
}

// GetSecretMap mirrors ESO's client.GetSecretMap: the members of the
// object at ref.Key (or at ref.Property inside it), one level deep, each
// rendered like GetSecret renders a value, so nested objects and arrays
// become JSON. A value that is not an object is an error here; ESO
// ignores that error and syncs an empty map.
func (c *Client) GetSecretMap(ctx context.Context, ref backend.Ref) (map[string][]byte, backend.Meta, error) {
	v, err := c.resolve(ctx, ref)
	if err != nil {
		return nil, backend.Meta{}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		what := fmt.Sprintf("key %q", ref.Key)
		if ref.Property != "" {
			what += fmt.Sprintf(", property %q", ref.Property)
		}
		return nil, backend.Meta{}, fmt.Errorf("esc: environment %q: %s is %s, not an object, so it has no key/value pairs",
			c.envName(), what, kindOf(v))
	}
	out := make(map[string][]byte, len(obj))
	for k, e := range obj {
		b, err := render(e)
		if err != nil {
			return nil, backend.Meta{}, fmt.Errorf("esc: environment %q: key %q: member %q: %w", c.envName(), ref.Key, k, err)
		}
		out[k] = b
	}
	return out, backend.Meta{}, nil
}

// resolve returns the plain value ref selects: the ESC path ref.Key, then
// ref.Property inside it.
func (c *Client) resolve(ctx context.Context, ref backend.Ref) (any, error) {
	elems, err := parsePath(ref.Key)
	if err != nil {
		return nil, fmt.Errorf("esc: environment %q: key %q is not an ESC property path: %w", c.envName(), ref.Key, err)
	}
	tree, err := c.tree(ctx)
	if err != nil {
		return nil, err
	}
	v, ok := lookup(tree, elems)
	if !ok {
		return nil, fmt.Errorf("esc: environment %q: key %q does not exist: %w", c.envName(), ref.Key, backend.ErrNotFound)
	}
	if ref.Property == "" {
		return v, nil
	}
	p, err := property(v, ref.Property)
	if err != nil {
		return nil, fmt.Errorf("esc: environment %q: key %q: %w", c.envName(), ref.Key, err)
	}
	return p, nil
}

// property selects inside v the way ESO's Vault and AWS providers select a
// property: a member named exactly property wins (so keys with dots
// work), else property is a gjson path into v's JSON. A missing property
// is a plain error, not ErrNotFound: ESO fails the sync for it.
func property(v any, property string) (any, error) {
	if m, ok := v.(map[string]any); ok {
		if p, ok := m[property]; ok {
			return p, nil
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding the value as JSON: %s", kindOf(v))
	}
	r := gjson.GetBytes(raw, property)
	if !r.Exists() {
		return nil, fmt.Errorf(errSecretKeyFmt, property)
	}
	return r.Value(), nil
}

// render is ESO's esutils.GetByteValue, which its pulumi provider applies
// to the value it reads.
func render(v any) ([]byte, error) {
	return esutils.GetByteValue(v)
}

// kindOf names a value's JSON type for errors, which must not quote it.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
