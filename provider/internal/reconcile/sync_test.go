package reconcile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	"github.com/external-secrets/external-secrets/pkg/esutils"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// fakeBackend serves remote secrets from memory with ESO's GetSecret /
// GetSecretMap shape (whole secret as JSON, or one property).
type fakeBackend map[string]map[string]string

func (f fakeBackend) GetSecret(_ context.Context, ref backend.Ref) ([]byte, backend.Meta, error) {
	m, ok := f[ref.Key]
	if !ok {
		return nil, backend.Meta{}, fmt.Errorf("reading %q: %w", ref.Key, backend.ErrNotFound)
	}
	if ref.Property == "" {
		return nil, backend.Meta{}, errors.New("whole-secret reads are not used in these tests")
	}
	v, ok := m[ref.Property]
	if !ok {
		return nil, backend.Meta{}, fmt.Errorf("cannot find secret data for key: %q", ref.Property)
	}
	return []byte(v), backend.Meta{Version: "7"}, nil
}

func (f fakeBackend) GetSecretMap(_ context.Context, ref backend.Ref) (map[string][]byte, backend.Meta, error) {
	m, ok := f[ref.Key]
	if !ok {
		return nil, backend.Meta{}, fmt.Errorf("reading %q: %w", ref.Key, backend.ErrNotFound)
	}
	out := map[string][]byte{}
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out, backend.Meta{Version: "3"}, nil
}

// GetAllSecrets returns every remote secret whose name starts with the
// path, as a JSON object.
func (f fakeBackend) GetAllSecrets(_ context.Context, find backend.Find) (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, m := range f {
		if strings.HasPrefix(name, find.Path) {
			b, err := json.Marshal(m)
			if err != nil {
				return nil, err
			}
			out[name] = b
		}
	}
	return out, nil
}

func (fakeBackend) Validate(context.Context) error { return nil }
func (fakeBackend) Close(context.Context) error    { return nil }

func newES(mutate func(*esv1.ExternalSecret)) *esv1.ExternalSecret {
	es := &esv1.ExternalSecret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret"},
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: types.UID("es-uid")},
		Spec: esv1.ExternalSecretSpec{Target: esv1.ExternalSecretTarget{
			CreationPolicy: esv1.CreatePolicyOwner, DeletionPolicy: esv1.DeletionPolicyRetain}},
	}
	if mutate != nil {
		mutate(es)
	}
	return es
}

func TestFetch(t *testing.T) {
	remote := fakeBackend{
		"app":  {"user": "admin", "pass": "cGFzcw==", "url": "x"},
		"bulk": {"user": "from-extract", "other": "o"},
		"odd":  {"a b": "v"},
	}
	tests := []struct {
		name    string
		es      func(*esv1.ExternalSecret)
		want    map[string]string
		missing []string
		wantErr string
	}{
		{name: "data and dataFrom; data wins, as in ESO", es: func(es *esv1.ExternalSecret) {
			es.Spec.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{Extract: &esv1.ExternalSecretDataRemoteRef{Key: "bulk"}}}
			es.Spec.Data = []esv1.ExternalSecretData{{SecretKey: "user", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: "app", Property: "user"}}}
		}, want: map[string]string{"user": "admin", "other": "o"}},
		{name: "find with a rewrite", es: func(es *esv1.ExternalSecret) {
			es.Spec.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{
				Find:    &esv1.ExternalSecretFind{Path: ptr.To("bu")},
				Rewrite: []esv1.ExternalSecretRewrite{{Regexp: &esv1.ExternalSecretRewriteRegexp{Source: "^bu(.*)", Target: "found-$1"}}},
			}}
		}, want: map[string]string{"found-lk": `{"other":"o","user":"from-extract"}`}},
		{name: "extract with Unicode key conversion", es: func(es *esv1.ExternalSecret) {
			es.Spec.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{Extract: &esv1.ExternalSecretDataRemoteRef{
				Key: "odd", ConversionStrategy: esv1.ExternalSecretConversionUnicode}}}
		}, want: map[string]string{"a_U0020_b": "v"}},
		{name: "base64 decoding", es: func(es *esv1.ExternalSecret) {
			es.Spec.Data = []esv1.ExternalSecretData{{SecretKey: "pass", RemoteRef: esv1.ExternalSecretDataRemoteRef{
				Key: "app", Property: "pass", DecodingStrategy: esv1.ExternalSecretDecodeBase64}}}
		}, want: map[string]string{"pass": "pass"}},
		{name: "missing remote key with Retain fails", es: func(es *esv1.ExternalSecret) {
			es.Spec.Data = []esv1.ExternalSecretData{{SecretKey: "k", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: "gone", Property: "k"}}}
		}, wantErr: "spec.data[0] (key: gone)"},
		{name: "missing remote key with Delete is skipped", es: func(es *esv1.ExternalSecret) {
			es.Spec.Target.DeletionPolicy = esv1.DeletionPolicyDelete
			es.Spec.Data = []esv1.ExternalSecretData{
				{SecretKey: "k", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: "gone", Property: "k"}},
				{SecretKey: "url", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: "app", Property: "url"}},
			}
		}, want: map[string]string{"url": "x"}, missing: []string{"gone"}},
		{name: "missing property always fails", es: func(es *esv1.ExternalSecret) {
			es.Spec.Target.DeletionPolicy = esv1.DeletionPolicyDelete
			es.Spec.Data = []esv1.ExternalSecretData{{SecretKey: "k", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: "app", Property: "nope"}}}
		}, wantErr: `cannot find secret data for key: "nope"`},
		{name: "undecodable base64 fails", es: func(es *esv1.ExternalSecret) {
			es.Spec.Data = []esv1.ExternalSecretData{{SecretKey: "u", RemoteRef: esv1.ExternalSecretDataRemoteRef{
				Key: "app", Property: "user", DecodingStrategy: esv1.ExternalSecretDecodeBase64}}}
		}, wantErr: "error decoding secret with strategy Base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Fetch(context.Background(), newES(tt.es), remote)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(asStrings(got.Data), tt.want) {
				t.Errorf("data = %v, want %v", asStrings(got.Data), tt.want)
			}
			if strings.Join(got.Missing, ",") != strings.Join(tt.missing, ",") {
				t.Errorf("missing = %v, want %v", got.Missing, tt.missing)
			}
		})
	}
}

func asStrings(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// TestMutate checks the Secret esosync writes against ESO v0.20.4's
// mutation rules.
func TestMutate(t *testing.T) {
	data := map[string][]byte{"password": []byte("p")}
	otherOwner := metav1.OwnerReference{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Name: "other", UID: "x", Controller: ptr.To(true)}
	tests := []struct {
		name     string
		es       func(*esv1.ExternalSecret)
		existing *corev1.Secret
		check    func(t *testing.T, s *corev1.Secret)
		wantErr  string
	}{
		{name: "Owner: controller reference, created-by label, managed label, data hash", check: func(t *testing.T, s *corev1.Secret) {
			owner := metav1.GetControllerOf(s)
			if owner == nil || owner.Name != "app" || owner.UID != "es-uid" || owner.Kind != "ExternalSecret" {
				t.Errorf("controller = %+v", owner)
			}
			if s.Labels[esv1.LabelOwner] != esutils.ObjectHash("ns/app") || s.Labels[esv1.LabelManaged] != "true" {
				t.Errorf("labels = %v", s.Labels)
			}
			if s.Annotations[esv1.AnnotationDataHash] != esutils.ObjectHash(s.Data) || !Consistent(s) {
				t.Errorf("annotations = %v", s.Annotations)
			}
		}},
		{name: "Orphan: no owner, no created-by label", es: func(es *esv1.ExternalSecret) { es.Spec.Target.CreationPolicy = esv1.CreatePolicyOrphan },
			check: func(t *testing.T, s *corev1.Secret) {
				if len(s.OwnerReferences) != 0 || s.Labels[esv1.LabelOwner] != "" {
					t.Errorf("owners %v labels %v", s.OwnerReferences, s.Labels)
				}
			}},
		{name: "Merge keeps foreign keys", es: func(es *esv1.ExternalSecret) { es.Spec.Target.CreationPolicy = esv1.CreatePolicyMerge },
			existing: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "s"}, Data: map[string][]byte{"mine": []byte("m")}},
			check: func(t *testing.T, s *corev1.Secret) {
				if string(s.Data["mine"]) != "m" || string(s.Data["password"]) != "p" {
					t.Errorf("data = %v", asStrings(s.Data))
				}
			}},
		{name: "Owner replaces foreign keys", existing: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "s"},
			Data: map[string][]byte{"stale": []byte("s")}},
			check: func(t *testing.T, s *corev1.Secret) {
				if len(s.Data) != 1 || string(s.Data["password"]) != "p" {
					t.Errorf("data = %v", asStrings(s.Data))
				}
			}},
		{name: "no template: the ExternalSecret's labels are copied", es: func(es *esv1.ExternalSecret) { es.Labels = map[string]string{"team": "a"} },
			check: func(t *testing.T, s *corev1.Secret) {
				if s.Labels["team"] != "a" {
					t.Errorf("labels = %v", s.Labels)
				}
			}},
		{name: "template type and metadata", es: func(es *esv1.ExternalSecret) {
			es.Labels = map[string]string{"team": "a"}
			es.Spec.Target.Template = &esv1.ExternalSecretTemplate{Type: corev1.SecretTypeBasicAuth, EngineVersion: esv1.TemplateEngineV2,
				Metadata: esv1.ExternalSecretTemplateMetadata{Labels: map[string]string{"tier": "db"}, Annotations: map[string]string{"a": "b"}}}
		}, check: func(t *testing.T, s *corev1.Secret) {
			if s.Type != corev1.SecretTypeBasicAuth || s.Labels["tier"] != "db" || s.Labels["team"] != "" || s.Annotations["a"] != "b" {
				t.Errorf("type %q labels %v annotations %v", s.Type, s.Labels, s.Annotations)
			}
		}},
		{name: "template data rendered with ESO's engine, merged", es: func(es *esv1.ExternalSecret) {
			es.Spec.Target.Template = &esv1.ExternalSecretTemplate{EngineVersion: esv1.TemplateEngineV2, MergePolicy: esv1.MergePolicyMerge,
				Data: map[string]string{"url": "postgres://app:{{ .password | upper }}@db"}}
		}, check: func(t *testing.T, s *corev1.Secret) {
			if string(s.Data["url"]) != "postgres://app:P@db" || string(s.Data["password"]) != "p" {
				t.Errorf("data = %v", asStrings(s.Data))
			}
		}},
		{name: "template data replaces fetched keys by default", es: func(es *esv1.ExternalSecret) {
			es.Spec.Target.Template = &esv1.ExternalSecretTemplate{EngineVersion: esv1.TemplateEngineV2,
				Data: map[string]string{"url": "{{ .password }}"}}
		}, check: func(t *testing.T, s *corev1.Secret) {
			if len(s.Data) != 1 || string(s.Data["url"]) != "p" {
				t.Errorf("data = %v", asStrings(s.Data))
			}
		}},
		{name: "immutable", es: func(es *esv1.ExternalSecret) { es.Spec.Target.Immutable = true },
			check: func(t *testing.T, s *corev1.Secret) {
				if !ptr.Deref(s.Immutable, false) {
					t.Error("not immutable")
				}
			}},
		{name: "owned by another ExternalSecret", existing: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "s",
			OwnerReferences: []metav1.OwnerReference{otherOwner}}}, wantErr: "owned by another ExternalSecret: other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.existing
			if s == nil {
				s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"}}
			}
			err := Mutate(context.Background(), nil, s, newES(tt.es), data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

// TestHasherSum: the keyed hash separates keys from values, ignores map
// order, depends on the key, and is not the plain sha256 a guesser would
// compute.
func TestHasherSum(t *testing.T) {
	h := Hasher{key: bytes.Repeat([]byte{7}, 32)}
	a := h.Sum(map[string][]byte{"a": []byte("bc")})
	if a == h.Sum(map[string][]byte{"ab": []byte("c")}) {
		t.Error("length prefixes do not separate keys from values")
	}
	if h.Sum(map[string][]byte{"x": []byte("1"), "y": []byte("2")}) != h.Sum(map[string][]byte{"y": []byte("2"), "x": []byte("1")}) {
		t.Error("hash depends on map order")
	}
	if !strings.HasPrefix(a, HashPrefix) || len(a) != len(HashPrefix)+64 {
		t.Errorf("hash format %q", a)
	}
	if other := (Hasher{key: bytes.Repeat([]byte{8}, 32)}).Sum(map[string][]byte{"a": []byte("bc")}); other == a {
		t.Error("the hash does not depend on the key")
	}
	plain := sha256.New()
	writeData(plain, map[string][]byte{"a": []byte("bc")})
	if strings.Contains(a, hex.EncodeToString(plain.Sum(nil))) {
		t.Error("the keyed hash equals the unkeyed one")
	}
	if h.Sum(nil) != "" {
		t.Error("no data must hash to empty")
	}
}

func TestFieldOwner(t *testing.T) {
	if got := FieldOwner("app"); got != "externalsecrets.external-secrets.io/app" {
		t.Errorf("FieldOwner = %q", got)
	}
	long := strings.Repeat("x", 60)
	if got := FieldOwner(long); !strings.HasPrefix(got, "externalsecrets.external-secrets.io/sha3/") || len(got) > 100 {
		t.Errorf("FieldOwner(long) = %q", got)
	}
}

// TestStableMessage: per-request IDs go, lines join, the cause stays.
func TestStableMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"api error, RequestID: 5f1c2a3b-aaaa-bbbb-cccc-0123456789ab, SignatureDoesNotMatch", "api error, RequestID: …, SignatureDoesNotMatch"},
		{"Error making API request.\n\nURL: GET http://v/1\nCode: 403. Errors:\n\n* permission denied\n", "Error making API request. URL: GET http://v/1 Code: 403. Errors: * permission denied"},
		{"plain", "plain"},
	} {
		if got := StableMessage(tc.in); got != tc.want {
			t.Errorf("StableMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
