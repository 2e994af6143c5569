// Package reconcile is esosync's reconcile engine: from an ExternalSecret spec and
// a backend it computes the target Secret exactly as External Secrets
// Operator would (keys, bytes, labels, annotations, data hash), and writes
// it in one request. ESO v0.20.4's controller is the reference; where it can
// be imported (esutils, templating) it is used as is, so semantics cannot
// drift.
package reconcile

import (
	"context"
	"errors"
	"fmt"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	"github.com/external-secrets/external-secrets/pkg/esutils"
	"github.com/go-logr/logr"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// Fetched is what the backend returned for one ExternalSecret: the data the
// target Secret gets, and the remote version of each remote key read.
type Fetched struct {
	// Data is ESO's providerData: secret key -> bytes.
	Data map[string][]byte
	// Versions maps remote key -> backend version id (Vault KV v2 version).
	Versions map[string]string
	// Missing lists the remote keys that did not exist and were skipped,
	// as ESO skips them when the deletion policy is not Retain.
	Missing []string
}

// Fetch reads every data and dataFrom entry of es from c, in ESO's order
// (dataFrom first, then data, later entries overwriting earlier ones), with
// ESO's decoding and key conversion. Nothing is written anywhere: a failed
// fetch leaves the target Secret untouched.
func Fetch(ctx context.Context, es *esv1.ExternalSecret, c backend.Client) (*Fetched, error) {
	out := &Fetched{Data: map[string][]byte{}, Versions: map[string]string{}}
	retain := es.Spec.Target.DeletionPolicy == esv1.DeletionPolicyRetain
	for i, from := range es.Spec.DataFrom {
		var (
			m    map[string][]byte
			meta backend.Meta
			what string
			err  error
		)
		switch {
		case from.Find != nil:
			what = fmt.Sprintf("spec.dataFrom[%d].find", i)
			m, err = c.GetAllSecrets(ctx, findOf(from.Find))
			if err != nil {
				err = fmt.Errorf("error getting all secrets: %w", err)
			} else {
				m, err = convertMap(from, from.Find.ConversionStrategy, from.Find.DecodingStrategy, m)
			}
		case from.Extract != nil:
			ref := from.Extract
			what = fmt.Sprintf("spec.dataFrom[%d].extract", i)
			m, meta, err = c.GetSecretMap(ctx, backend.Ref{Key: ref.Key, Property: ref.Property, Version: ref.Version})
			if err == nil {
				m, err = convertMap(from, ref.ConversionStrategy, ref.DecodingStrategy, m)
			}
			if err == nil {
				out.note(ref.Key, meta)
			}
		default:
			return nil, fmt.Errorf("spec.dataFrom[%d]: set extract or find (generators are not supported by esosync)", i)
		}
		if errors.Is(err, backend.ErrNotFound) && !retain {
			out.Missing = append(out.Missing, what)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("error processing %s, err: %w", what, err)
		}
		out.Data = esutils.MergeByteMap(out.Data, m)
	}
	for i, d := range es.Spec.Data {
		ref := d.RemoteRef
		v, meta, err := c.GetSecret(ctx, backend.Ref{Key: ref.Key, Property: ref.Property, Version: ref.Version})
		if errors.Is(err, backend.ErrNotFound) && !retain {
			out.Missing = append(out.Missing, ref.Key)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("error processing spec.data[%d] (key: %s), err: %w", i, ref.Key, err)
		}
		v, err = esutils.Decode(ref.DecodingStrategy, v)
		if err != nil {
			return nil, fmt.Errorf("error processing spec.data[%d] (key: %s), err: error decoding secret with strategy %s: %w",
				i, ref.Key, ref.DecodingStrategy, err)
		}
		out.note(ref.Key, meta)
		out.Data[d.SecretKey] = v
	}
	return out, nil
}

// convertMap applies ESO's rewrite, key conversion, key validation and
// decoding to a dataFrom result, in ESO's order.
func convertMap(from esv1.ExternalSecretDataFromRemoteRef, conversion esv1.ExternalSecretConversionStrategy,
	decoding esv1.ExternalSecretDecodingStrategy, m map[string][]byte) (map[string][]byte, error) {
	m, err := esutils.RewriteMap(from.Rewrite, m)
	if err != nil {
		return nil, fmt.Errorf("unable to rewrite secret map: %w", err)
	}
	if len(from.Rewrite) == 0 {
		if m, err = esutils.ConvertKeys(conversion, m); err != nil {
			return nil, fmt.Errorf("error applying conversion strategy %s to keys: %w", conversion, err)
		}
	}
	if err := esutils.ValidateKeys(logr.Discard(), m); err != nil {
		return nil, fmt.Errorf("invalid secret keys (TIP: use rewrite or conversionStrategy to change keys): %w", err)
	}
	if m, err = esutils.DecodeMap(decoding, m); err != nil {
		return nil, fmt.Errorf("error decoding secret with strategy %s: %w", decoding, err)
	}
	return m, nil
}

// findOf turns ESO's find spec into the backend's.
func findOf(f *esv1.ExternalSecretFind) backend.Find {
	out := backend.Find{Tags: f.Tags}
	if f.Path != nil {
		out.Path = *f.Path
	}
	if f.Name != nil {
		out.NameRegexp = f.Name.RegExp
	}
	return out
}

func (f *Fetched) note(key string, meta backend.Meta) {
	if meta.Version != "" {
		f.Versions[key] = meta.Version
	}
}
