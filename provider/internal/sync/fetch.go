// Package sync is esosync's reconcile engine: from an ExternalSecret spec and
// a backend it computes the target Secret exactly as External Secrets
// Operator would (keys, bytes, labels, annotations, data hash), and writes
// it in one request. ESO v0.20.4's controller is the reference; where it can
// be imported (esutils, templating) it is used as is, so semantics cannot
// drift.
package sync

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
		if from.Extract == nil {
			return nil, fmt.Errorf("spec.dataFrom[%d]: only extract is supported by sync: provider in this release", i)
		}
		ref := from.Extract
		m, meta, err := c.GetSecretMap(ctx, backend.Ref{Key: ref.Key, Property: ref.Property, Version: ref.Version})
		if err == nil {
			m, err = extractMap(from, m)
		}
		if errors.Is(err, backend.ErrNotFound) && !retain {
			out.Missing = append(out.Missing, ref.Key)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("error processing spec.dataFrom[%d].extract, err: %w", i, err)
		}
		out.note(ref.Key, meta)
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

// extractMap applies ESO's rewrite, key conversion, key validation and
// decoding to a dataFrom.extract result.
func extractMap(from esv1.ExternalSecretDataFromRemoteRef, m map[string][]byte) (map[string][]byte, error) {
	m, err := esutils.RewriteMap(from.Rewrite, m)
	if err != nil {
		return nil, fmt.Errorf("unable to rewrite secret map: %w", err)
	}
	if len(from.Rewrite) == 0 {
		if m, err = esutils.ConvertKeys(from.Extract.ConversionStrategy, m); err != nil {
			return nil, fmt.Errorf("error applying conversion strategy %s to keys: %w", from.Extract.ConversionStrategy, err)
		}
	}
	if err := esutils.ValidateKeys(logr.Discard(), m); err != nil {
		return nil, fmt.Errorf("invalid secret keys (TIP: use rewrite or conversionStrategy to change keys): %w", err)
	}
	if m, err = esutils.DecodeMap(from.Extract.DecodingStrategy, m); err != nil {
		return nil, fmt.Errorf("error decoding secret with strategy %s: %w", from.Extract.DecodingStrategy, err)
	}
	return m, nil
}

func (f *Fetched) note(key string, meta backend.Meta) {
	if meta.Version != "" {
		f.Versions[key] = meta.Version
	}
}
