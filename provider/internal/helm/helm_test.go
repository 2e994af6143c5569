package helm

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestParseCRDs(t *testing.T) {
	crd := "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: %s}\n"
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{name: "two CRDs and empty documents", in: "---\n" + strings.ReplaceAll(crd, "%s", "a.example.io") + "---\n---\n" + strings.ReplaceAll(crd, "%s", "b.example.io"), want: []string{"a.example.io", "b.example.io"}},
		{name: "JSON", in: `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"j.example.io"}}`, want: []string{"j.example.io"}},
		{name: "another kind", in: strings.ReplaceAll(crd, "%s", "a.example.io") + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", wantErr: `document 2 is a Secret "s"`},
		{name: "unnamed", in: "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n", wantErr: "without metadata.name"},
		{name: "nothing", in: "---\n", wantErr: "no CustomResourceDefinitions"},
		{name: "not YAML", in: "a: [", wantErr: "document 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := ParseCRDs([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range objs {
				names = append(names, o.GetName())
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Errorf("names = %v, want %v", names, tt.want)
			}
		})
	}
}

func TestReleaseObjects(t *testing.T) {
	rel := &Release{Namespace: "eso", Manifest: `---
# Source: x/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata: {name: token}
data: {token: c2VjcmV0}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ctrl}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: elsewhere, namespace: other}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.io}
`}
	if got := strings.Join(rel.Deployments(), ","); got != "ctrl" {
		t.Errorf("Deployments = %q", got)
	}
	if got := strings.Join(rel.CRDs(), ","); got != "things.example.io" {
		t.Errorf("CRDs = %q", got)
	}
}

func TestWaitForDeployments(t *testing.T) {
	replicas := int32(2)
	deployment := func(name string, status appsv1.DeploymentStatus) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "eso", Generation: 3},
			Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
			Status:     status,
		}
	}
	available := appsv1.DeploymentStatus{ObservedGeneration: 3, UpdatedReplicas: 2, Conditions: []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue},
	}}
	stale := available
	stale.ObservedGeneration = 2
	rolling := available
	rolling.UpdatedReplicas = 1
	unavailable := available
	unavailable.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Message: "no pods"}}

	tests := []struct {
		name    string
		status  appsv1.DeploymentStatus
		wantErr string
	}{
		{name: "available", status: available},
		{name: "old generation", status: stale, wantErr: "has not observed generation 3"},
		{name: "rolling out", status: rolling, wantErr: "1 of 2 replicas updated"},
		{name: "unavailable", status: unavailable, wantErr: "is not Available: no pods"},
		{name: "no status yet", wantErr: "has not observed generation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(deployment("ctrl", tt.status))
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			err := WaitForDeployments(ctx, client, "eso", []string{"ctrl"}, 10*time.Millisecond)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "ctrl") {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestPruneMissingDependencies(t *testing.T) {
	newChart := func() *chart.Chart {
		return &chart.Chart{
			Metadata: &chart.Metadata{APIVersion: "v2", Name: "app", Version: "1.0.0", Dependencies: []*chart.Dependency{
				{Name: "optional", Condition: "optional.enabled"},
				{Name: "always"},
			}},
			Values: map[string]any{"optional": map[string]any{"enabled": false}},
		}
	}
	ch := newChart()
	err := PruneMissingDependencies(ch, nil)
	if err == nil || !strings.Contains(err.Error(), "always") || strings.Contains(err.Error(), "optional") {
		t.Fatalf("err = %v, want the unconditional dependency reported", err)
	}

	ch = newChart()
	ch.Metadata.Dependencies = ch.Metadata.Dependencies[:1]
	if err := PruneMissingDependencies(ch, map[string]any{"optional": map[string]any{"enabled": true}}); err == nil {
		t.Fatal("an enabled missing dependency was accepted")
	}
	if err := PruneMissingDependencies(ch, nil); err != nil {
		t.Fatal(err)
	}
	if len(ch.Metadata.Dependencies) != 0 {
		t.Errorf("dependencies = %v, want the disabled missing one dropped", ch.Metadata.Dependencies)
	}
}

// TestTuning: the Operator tunes ESO for deploy-time sync unless the
// values say otherwise, and what it added never shows as the user's values
// (so a refresh sees no drift).
func TestTuning(t *testing.T) {
	tests := []struct {
		name       string
		user       map[string]any
		concurrent any
		qps        any
	}{
		{"defaults", nil, TunedConcurrent, TunedExtraArgs["client-qps"]},
		{"user concurrency", map[string]any{"concurrent": 2}, 2, TunedExtraArgs["client-qps"]},
		{"user qps", map[string]any{"extraArgs": map[string]any{"client-qps": "20", "loglevel": "debug"}}, TunedConcurrent, "20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chart := ChartValues(tt.user, true, "")
			extra, _ := chart["extraArgs"].(map[string]any)
			if fmt.Sprint(chart["concurrent"]) != fmt.Sprint(tt.concurrent) || fmt.Sprint(extra["client-qps"]) != fmt.Sprint(tt.qps) {
				t.Errorf("chart values = %v", chart)
			}
			if back := UserValues(chart, tt.user, true, ""); !reflect.DeepEqual(back, tt.user) && !(len(back) == 0 && len(tt.user) == 0) {
				t.Errorf("UserValues = %v, want the user's %v", back, tt.user)
			}
		})
	}
}
