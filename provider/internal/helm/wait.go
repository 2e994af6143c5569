package helm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Object identifies one object of a rendered manifest.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
}

// ManifestObjects lists the objects in a release manifest. Only identities
// are kept: manifests can hold Secret data.
func ManifestObjects(manifest string) []Object {
	var out []Object
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil || head.Kind == "" {
			continue
		}
		out = append(out, Object{APIVersion: head.APIVersion, Kind: head.Kind, Namespace: head.Metadata.Namespace, Name: head.Metadata.Name})
	}
	slices.SortFunc(out, func(a, b Object) int {
		return strings.Compare(a.Kind+"/"+a.Namespace+"/"+a.Name, b.Kind+"/"+b.Namespace+"/"+b.Name)
	})
	return out
}

// Deployments names the release's Deployments in the release namespace.
func (r *Release) Deployments() []string {
	var names []string
	for _, o := range ManifestObjects(r.Manifest) {
		if o.Kind == "Deployment" && (o.Namespace == "" || o.Namespace == r.Namespace) {
			names = append(names, o.Name)
		}
	}
	return names
}

// CRDs names the CRDs the release templated (charts that ship CRDs as
// templates rather than in crds/).
func (r *Release) CRDs() []string { return r.namesOfKind("CustomResourceDefinition") }

// namesOfKind names the release's objects of a cluster-scoped kind.
func (r *Release) namesOfKind(kind string) []string {
	var names []string
	for _, o := range ManifestObjects(r.Manifest) {
		if o.Kind == kind {
			names = append(names, o.Name)
		}
	}
	return names
}

// WaitForDeployments waits until each Deployment has rolled out its current
// spec and is Available.
func WaitForDeployments(ctx context.Context, clientset kubernetes.Interface, namespace string, names []string, poll time.Duration) error {
	pending := slices.Clone(names)
	var last string
	for {
		var still []string
		for _, name := range pending {
			d, err := clientset.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				still, last = append(still, name), err.Error()
				continue
			}
			if msg := deploymentNotReady(d); msg != "" {
				still, last = append(still, name), msg
			}
		}
		if len(still) == 0 {
			return nil
		}
		pending = still
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployments %s in namespace %s not available: %w (last: %s)", strings.Join(pending, ", "), namespace, ctx.Err(), last)
		case <-time.After(poll):
		}
	}
}

func deploymentNotReady(d *appsv1.Deployment) string {
	if d.Status.ObservedGeneration < d.Generation {
		return fmt.Sprintf("deployment %s: the controller has not observed generation %d yet", d.Name, d.Generation)
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.UpdatedReplicas < want {
		return fmt.Sprintf("deployment %s: %d of %d replicas updated", d.Name, d.Status.UpdatedReplicas, want)
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			if c.Status == corev1.ConditionTrue {
				return ""
			}
			return fmt.Sprintf("deployment %s is not Available: %s", d.Name, c.Message)
		}
	}
	return fmt.Sprintf("deployment %s has no Available condition yet", d.Name)
}

// CheckDeployment reports, without waiting, why a Deployment is not
// Available with its current spec (nil when it is).
func CheckDeployment(ctx context.Context, clientset kubernetes.Interface, namespace, name string) error {
	d, err := clientset.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if msg := deploymentNotReady(d); msg != "" {
		return errors.New(msg)
	}
	return nil
}
