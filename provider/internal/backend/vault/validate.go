package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// Validate does what ESO's client.Validate does (a token lookup-self), and
// then goes further than ESO: it checks that the token can see the store's
// mount and that the mount is the KV version the store declares. ESO only
// finds either problem at the first sync, as a "permission denied" or an
// empty read; here `pulumi preview` can report it.
func (c *Client) Validate(ctx context.Context) error {
	if err := checkToken(ctx, c.api.Auth().Token()); err != nil {
		return fmt.Errorf("vault: invalid vault credentials: %w", err)
	}
	return c.checkMount(ctx)
}

// checkToken is ESO's checkToken, reduced to its error: ESO's Validate
// ignores whether the token is reusable (batch or about to expire) and so
// do we, but a failed or malformed lookup is an invalid credential.
func checkToken(ctx context.Context, token *vaultapi.TokenAuth) error {
	resp, err := token.LookupSelfWithContext(ctx)
	if err != nil {
		return err
	}
	// The API returns neither data nor error in a few cases, an expired token among them.
	if resp == nil {
		return errors.New("no response nor error for token lookup")
	}
	t, ok := resp.Data["type"].(string)
	if !ok {
		return errors.New("could not assert token type")
	}
	if t == "batch" {
		return nil
	}
	ttl, ok := resp.Data["ttl"]
	if !ok {
		return errors.New("no TTL found in response")
	}
	n, ok := ttl.(json.Number)
	if !ok {
		return fmt.Errorf("invalid token TTL: %v", ttl)
	}
	if _, err := n.Int64(); err != nil {
		return fmt.Errorf("invalid token TTL: %v: %w", ttl, err)
	}
	if _, ok := resp.Data["expire_time"]; !ok {
		return errors.New("no expiration time found in response")
	}
	return nil
}

// checkMount asks sys/internal/ui/mounts/<path> about the store's mount.
// The endpoint is readable under Vault's default policy and answers 403
// when the token has no capability anywhere under the mount, which is the
// "wrong policy" mistake we want to name. A store without a path has no
// single mount to check (ESO takes the mount from each key).
func (c *Client) checkMount(ctx context.Context) error {
	if c.path == nil {
		return nil
	}
	path := strings.Trim(*c.path, "/")
	secret, err := c.api.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+path)
	if err != nil {
		var re *vaultapi.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
			return fmt.Errorf("vault: the token has no access to mount %q (or no such mount exists): %w", path, err)
		}
		return fmt.Errorf("vault: looking up mount %q: %w", path, err)
	}
	if secret == nil || secret.Data == nil {
		// Not answered (a Vault or proxy without the endpoint): the token
		// check above is all ESO would have done, so accept it.
		return nil
	}
	mount := path
	if p, ok := secret.Data["path"].(string); ok && strings.Trim(p, "/") != "" {
		mount = strings.Trim(p, "/")
	}
	engine, _ := secret.Data["type"].(string)
	// "generic" is the KV v1 engine's historical name.
	if engine != "kv" && engine != "generic" {
		return fmt.Errorf("vault: mount %q is a %q secrets engine, not kv", mount, engine)
	}
	// A kv mount without options.version is KV v1, as Vault treats it.
	have := "1"
	if opts, ok := secret.Data["options"].(map[string]any); ok {
		if v, ok := opts["version"].(string); ok && v != "" {
			have = v
		}
	}
	if "v"+have != c.version {
		return fmt.Errorf("vault: mount %q is KV v%s but the store says version %s", mount, have, c.version)
	}
	return nil
}
