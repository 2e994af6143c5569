package vault

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// ESO's texts, kept verbatim because users grep their status conditions for them.
const (
	errUnsupportedKvVersion = "cannot perform find by tag operations with kv version v1"
	errPathInvalid          = "provided Path isn't a valid kv v2 path"
	// errMetadataNotFound is what ESO's readSecretMetadata says when the
	// metadata read answers nothing. It is a plain error in ESO, not a
	// NoSecretError, so it fails the sync instead of being skipped.
	errMetadataNotFound = "secret not found"
)

// GetAllSecrets mirrors ESO's client.GetAllSecrets (dataFrom.find):
//
//  1. KV v1 with tags is refused (KV v1 has no custom metadata); KV v1
//     without tags works, as in ESO.
//  2. Every secret below find.Path is listed recursively through the
//     metadata endpoint (listSecrets). A listing Vault answers with 404 —
//     the path, or a sub-path met while recursing, holds nothing — is
//     ESO's NoSecretError, so it wraps backend.ErrNotFound.
//  3. With a name regexp the candidates are filtered by name only and tags
//     are ignored (findSecretsFromName); otherwise they are filtered by
//     tags, where no tags keep every candidate (findSecretsFromTags).
//  4. Each match is read with GetSecret and no property: its whole secret
//     as JSON, byte for byte what GetSecret returns. A match whose current
//     version is deleted or destroyed is skipped.
//
// Result keys are the listed names: find.Path + "/" + the path below it,
// i.e. relative to the store path when the store has one, and including
// the mount and "data/" when it does not.
func (c *Client) GetAllSecrets(ctx context.Context, find backend.Find) (map[string][]byte, error) {
	// ESO tests ref.Tags != nil: an empty but present tags map is refused too.
	if c.version == VersionV1 && find.Tags != nil {
		return nil, errors.New("vault: " + errUnsupportedKvVersion)
	}
	searchPath := ""
	if find.Path != "" {
		searchPath = find.Path + "/"
	}
	candidates, err := c.listSecrets(ctx, searchPath)
	if err != nil {
		return nil, err
	}
	// ESO branches on find.name being set; backend.Find spells "not set" as "".
	if find.NameRegexp != "" {
		return c.findSecretsFromName(ctx, candidates, find.NameRegexp)
	}
	return c.findSecretsFromTags(ctx, candidates, find.Tags)
}

// findSecretsFromTags is ESO's findSecretsFromTags: it reads the metadata
// of every candidate (even when there are no tags to compare, so a
// metadata read error fails the search either way) and keeps those whose
// custom metadata has every tag with the same value.
func (c *Client) findSecretsFromTags(ctx context.Context, candidates []string, tags map[string]string) (map[string][]byte, error) {
	secrets := make(map[string][]byte)
	for _, name := range candidates {
		metadata, err := c.readSecretMetadata(ctx, name)
		if err != nil {
			return nil, err
		}
		match := true
		for tk, tv := range tags {
			if v, ok := metadata[tk]; !ok || v != tv {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		if err := c.addWholeSecret(ctx, secrets, name); err != nil {
			return nil, err
		}
	}
	return secrets, nil
}

// findSecretsFromName is ESO's findSecretsFromName: the regexp (Go syntax,
// unanchored, as ESO's find.Matcher uses it) is matched against the whole
// listed name, path included. The regexp is compiled only after the
// listing succeeded, as in ESO.
func (c *Client) findSecretsFromName(ctx context.Context, candidates []string, nameRegexp string) (map[string][]byte, error) {
	re, err := regexp.Compile(nameRegexp)
	if err != nil {
		return nil, fmt.Errorf("vault: could not compile find.name.regexp [%s]: %w", nameRegexp, err)
	}
	secrets := make(map[string][]byte)
	for _, name := range candidates {
		if !re.MatchString(name) {
			continue
		}
		if err := c.addWholeSecret(ctx, secrets, name); err != nil {
			return nil, err
		}
	}
	return secrets, nil
}

// addWholeSecret stores the whole secret name under name, skipping it when
// it does not exist (ESO continues on NoSecretError: a deleted or destroyed
// current version, or a secret removed since the listing).
func (c *Client) addWholeSecret(ctx context.Context, secrets map[string][]byte, name string) error {
	value, _, err := c.GetSecret(ctx, backend.Ref{Key: name})
	if errors.Is(err, backend.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if value != nil {
		secrets[name] = value
	}
	return nil
}

// listSecrets is ESO's listSecrets: path is "" or ends with "/"; folders
// (keys ending in "/") are listed recursively, depth first, and every
// secret is returned as path + key.
func (c *Client) listSecrets(ctx context.Context, path string) ([]string, error) {
	url, err := c.buildMetadataPath(path)
	if err != nil {
		return nil, err
	}
	c.session.CountCall("vault.list")
	secret, err := c.api.Logical().ListWithContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("vault: listing %q: cannot read secret data from Vault: %w", url, err)
	}
	if secret == nil {
		return nil, fmt.Errorf("vault: listing %q: %w", url, backend.ErrNotFound)
	}
	raw, ok := secret.Data["keys"]
	if !ok {
		return nil, nil
	}
	keys, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("vault: listing %q: keys is %T, not a list", url, raw)
	}
	secrets := make([]string, 0, len(keys))
	for _, k := range keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("vault: listing %q: a key is %T, not a string", url, k)
		}
		fullPath := path + key // path is empty or ends with "/"
		if !strings.HasSuffix(key, "/") {
			secrets = append(secrets, fullPath)
			continue
		}
		partial, err := c.listSecrets(ctx, fullPath)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, partial...)
	}
	return secrets, nil
}

// readSecretMetadata is ESO's readSecretMetadata: the custom metadata of
// path, nil when the response has none. On KV v1 the "metadata path" is
// the secret itself, as in ESO; only string values are taken (ESO would
// panic on another type, which KV v2 custom metadata cannot hold).
func (c *Client) readSecretMetadata(ctx context.Context, path string) (map[string]string, error) {
	url, err := c.buildMetadataPath(path)
	if err != nil {
		return nil, err
	}
	c.session.CountCall("vault.metadata")
	secret, err := c.api.Logical().ReadWithDataWithContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("vault: reading metadata %q: cannot read secret data from Vault: %w", url, err)
	}
	if secret == nil {
		return nil, fmt.Errorf("vault: reading metadata %q: %s", url, errMetadataNotFound)
	}
	raw, ok := secret.Data["custom_metadata"]
	if !ok {
		return nil, nil
	}
	metadata := make(map[string]string)
	d, ok := raw.(map[string]any)
	if !ok {
		return metadata, nil
	}
	for k, v := range d {
		if s, ok := v.(string); ok {
			metadata[k] = s
		}
	}
	return metadata, nil
}

// buildMetadataPath is ESO's buildMetadataPath. Unlike buildPath it does
// not strip a leading mount from path. Without a store path, KV v2 needs
// a path containing "data" (ESO checks the bare substring) and swaps its
// first "/data/" for "/metadata/".
func (c *Client) buildMetadataPath(path string) (string, error) {
	if c.version == VersionV1 {
		if c.path == nil {
			// ESO dereferences the unset path here and panics.
			return "", errors.New("vault: find on a KV v1 store needs the store's path")
		}
		return fmt.Sprintf("%s/%s", *c.path, path), nil
	}
	if c.path == nil {
		if !strings.Contains(path, "data") {
			return "", fmt.Errorf("vault: %q: %s", path, errPathInvalid)
		}
		return strings.Replace(path, "/data/", "/metadata/", 1), nil
	}
	return fmt.Sprintf("%s/metadata/%s", *c.path, path), nil
}
