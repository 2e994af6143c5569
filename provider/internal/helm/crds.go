package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// FieldManager is the server-side apply field manager for objects esosync
// applies itself.
const FieldManager = "esosync"

// maxBundleSize bounds a downloaded CRD bundle; ESO's is about 1.5 MB.
const maxBundleSize = 32 << 20

// ReadBundle reads a CRD bundle from a local file or an http(s) URL.
func ReadBundle(ctx context.Context, ref string) ([]byte, error) {
	if !IsRepoURL(ref) {
		data, err := os.ReadFile(ref)
		if err != nil {
			return nil, fmt.Errorf("reading CRD bundle: %w", err)
		}
		return data, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("downloading CRD bundle: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("downloading CRD bundle %s: %s", ref, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("downloading CRD bundle %s: %w", ref, err)
	}
	if len(data) > maxBundleSize {
		return nil, fmt.Errorf("CRD bundle %s is larger than %d MiB", ref, maxBundleSize>>20)
	}
	return data, nil
}

// ParseCRDs splits a multi-document YAML (or JSON) stream into CRDs. Any
// other kind is an error: applying a bundle must not create arbitrary
// objects.
func ParseCRDs(data []byte) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if len(obj) == 0 {
			continue // an empty document between separators
		}
		u := &unstructured.Unstructured{Object: obj}
		gvk := u.GroupVersionKind()
		if gvk.Group != apiextensionsv1.GroupName || gvk.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("document %d is a %s %q, not an apiextensions.k8s.io CustomResourceDefinition", doc, gvk.Kind, u.GetName())
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("document %d: CustomResourceDefinition without metadata.name", doc)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("no CustomResourceDefinitions found")
	}
	return out, nil
}

// ApplyCRDs server-side applies the CRDs as field manager esosync, taking
// over fields other managers (an earlier Helm install, kubectl) set.
// Applying the same bundle again changes nothing, so it is safe to repeat.
func ApplyCRDs(ctx context.Context, config *rest.Config, crds []*unstructured.Unstructured) ([]string, error) {
	client, err := apiextensions.NewForConfig(unthrottled(config))
	if err != nil {
		return nil, err
	}
	force := true
	names := make([]string, 0, len(crds))
	for _, crd := range crds {
		body, err := json.Marshal(crd.Object)
		if err != nil {
			return nil, err
		}
		_, err = client.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.GetName(), types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
		if err != nil {
			return nil, fmt.Errorf("applying CRD %s: %w", crd.GetName(), err)
		}
		names = append(names, crd.GetName())
	}
	slices.Sort(names)
	return names, nil
}

// WaitForCRDs waits until every named CRD is Established and the API server
// actually serves it: for a few seconds after Established a fresh CRD's
// endpoint can still answer 404, and a controller or an ExternalSecret
// created in that window fails.
func WaitForCRDs(ctx context.Context, config *rest.Config, names []string, poll time.Duration) error {
	config = unthrottled(config)
	client, err := apiextensions.NewForConfig(config)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return err
	}
	pending := slices.Clone(names)
	var last error
	for {
		var still []string
		for _, name := range pending {
			if err := crdReady(ctx, client, dyn, name); err != nil {
				still = append(still, name)
				last = err
			}
		}
		if len(still) == 0 {
			return nil
		}
		pending = still
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRDs not ready (%s): %w (last: %v)", strings.Join(pending, ", "), ctx.Err(), last)
		case <-time.After(poll):
		}
	}
}

func crdReady(ctx context.Context, client apiextensions.Interface, dyn dynamic.Interface, name string) error {
	crd, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("CRD %s: %w", name, err)
	}
	established := false
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			established = true
		}
	}
	if !established {
		return fmt.Errorf("CRD %s is not Established yet", name)
	}
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: v.Name, Resource: crd.Spec.Names.Plural}
		_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%s is Established but %s is not served yet", name, gvr.GroupVersion())
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", gvr, err)
		}
	}
	return nil
}

// unthrottled lifts client-go's default 5 requests per second: a bundle
// of two dozen CRDs, each applied, read and listed, would otherwise spend
// most of an install waiting on the client's own rate limiter.
func unthrottled(config *rest.Config) *rest.Config {
	cfg := rest.CopyConfig(config)
	cfg.QPS = max(cfg.QPS, 50)
	cfg.Burst = max(cfg.Burst, 100)
	return cfg
}
