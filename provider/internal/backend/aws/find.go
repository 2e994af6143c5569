package aws

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// errUnexpectedFindOperator is ESO's text for a find with neither a name
// nor tags, kept verbatim.
const errUnexpectedFindOperator = "unexpected find operator"

// GetAllSecrets mirrors ESO's SecretsManager.GetAllSecrets (dataFrom.find):
//
//   - With a name regexp (tags are then ignored): with a path, the secrets
//     whose name starts with the path (Secrets Manager's "name" filter, a
//     case-sensitive prefix match) and whose name matches the regexp; without
//     a path, every secret in the region whose name matches.
//   - Else with tags: secrets passing a "tag-key" and a "tag-value" filter
//     per tag, plus the path's "name" filter. These are Secrets Manager's
//     filters as ESO sends them: each is a prefix match, and a key and a
//     value filter need not hit the same tag.
//   - Neither: ESO's "unexpected find operator" error, also when a path is set.
//
// Result keys are secret names as AWS returns them (the store prefix is not
// involved), each value the whole secret, byte for byte what GetSecret
// returns. ESO reads path and tag matches with BatchGetSecretValue and skips
// the secrets that response reports as failed; it reads name matches without
// a path one by one and fails on any error, a missing secret included. Both
// are kept, with one deviation: for name matches without a path ESO reads
// prefix+name (so a store with a prefix reads another, usually missing,
// secret); esosync reads the listed secret itself. Where ESO uses BatchGetSecretValue's Filters, esosync lists
// with the same filters and reads the matches through the cache by id, in
// batches of 20, so they are shared with data[] reads of the same secrets.
func (c *client) GetAllSecrets(ctx context.Context, find backend.Find) (map[string][]byte, error) {
	switch {
	case find.NameRegexp != "":
		// ESO compiles the regexp before anything is listed.
		re, err := regexp.Compile(find.NameRegexp)
		if err != nil {
			return nil, fmt.Errorf("aws: could not compile find.name.regexp [%s]: %w", find.NameRegexp, err)
		}
		if find.Path == "" {
			return c.collect(ctx, nil, re, false)
		}
		return c.collect(ctx, []types.Filter{pathFilter(find.Path)}, re, true)
	case len(find.Tags) > 0:
		filters := make([]types.Filter, 0, 2*len(find.Tags)+1)
		for k, v := range find.Tags {
			filters = append(filters,
				types.Filter{Key: types.FilterNameStringTypeTagKey, Values: []string{k}},
				types.Filter{Key: types.FilterNameStringTypeTagValue, Values: []string{v}})
		}
		if find.Path != "" {
			filters = append(filters, pathFilter(find.Path))
		}
		return c.collect(ctx, filters, nil, true)
	}
	return nil, errors.New("aws: " + errUnexpectedFindOperator)
}

func pathFilter(path string) types.Filter {
	return types.Filter{Key: types.FilterNameStringTypeName, Values: []string{path}}
}

// collect lists the secrets filters select, keeps those re matches (all
// when re is nil) and reads their current values. lenient is ESO's batch
// mode: secrets that are missing, or whose read failed individually, are
// left out; otherwise any error fails the search.
func (c *client) collect(ctx context.Context, filters []types.Filter, re *regexp.Regexp, lenient bool) (map[string][]byte, error) {
	names, err := c.list(ctx, filters)
	if err != nil {
		return nil, err
	}
	var matched []string
	for _, name := range names {
		if re == nil || re.MatchString(name) {
			matched = append(matched, name)
		}
	}
	data := make(map[string][]byte, len(matched))
	entries := c.state.request(c.sm, matched, "")
	for i, name := range matched {
		v, err := wait(ctx, entries[i])
		if err != nil {
			var entryErr *batchEntryError
			if lenient && (errors.Is(err, backend.ErrNotFound) || errors.As(err, &entryErr)) {
				continue
			}
			return nil, readError(name, "", err)
		}
		// ESO's setSecretValues / fetchAndSet: a secret with neither a
		// string nor a binary is left out.
		switch {
		case v.str != nil:
			data[name] = []byte(*v.str)
		case v.bin != nil:
			data[name] = append([]byte(nil), v.bin...)
		}
	}
	return data, nil
}

// list returns the names of the secrets filters select, all pages.
// Secrets scheduled for deletion are not listed (ListSecrets' default).
func (c *client) list(ctx context.Context, filters []types.Filter) ([]string, error) {
	var (
		names []string
		next  *string
	)
	for {
		c.session.CountCall("aws.ListSecrets")
		out, err := c.sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: filters, NextToken: next})
		if err != nil {
			return nil, fmt.Errorf("aws: listing secrets: %w", sanitize(err))
		}
		for _, s := range out.SecretList {
			names = append(names, aws.ToString(s.Name))
		}
		if next = out.NextToken; next == nil {
			return names, nil
		}
	}
}
