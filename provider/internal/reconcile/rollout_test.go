package reconcile

import (
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var rolloutES = types.NamespacedName{Namespace: "ns", Name: "app"}

// deployment is a Deployment in ns whose pod template carries annotations.
func deployment(name string, annotations map[string]string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	d.Spec.Template.Annotations = annotations
	return d
}

// TestRollout: a target is rolled when it carries another hash, or none
// while the content changed; never when it carries the hash or the content
// did not change; a missing target fails an update and is skipped on a
// create.
func TestRollout(t *testing.T) {
	key := RolloutAnnotation(rolloutES)
	target := []RolloutTarget{{Kind: KindDeployment, Namespace: "ns", Name: "web"}}
	for _, tc := range []struct {
		name      string
		live      *appsv1.Deployment // nil: the target does not exist
		changed   bool
		creating  bool
		wantRoll  bool
		wantError string
	}{
		{name: "other hash, content changed", live: deployment("web", map[string]string{key: "h1"}), changed: true, wantRoll: true},
		{name: "other hash, content unchanged (ESO changed it between deploys)", live: deployment("web", map[string]string{key: "h1"}), wantRoll: true},
		{name: "same hash", live: deployment("web", map[string]string{key: "h2"}), changed: true},
		{name: "never tied, content changed", live: deployment("web", nil), changed: true, wantRoll: true},
		{name: "never tied, nothing changed", live: deployment("web", map[string]string{"other": "x"})},
		{name: "missing on create", creating: true, changed: true},
		{name: "missing on update", changed: true, wantError: "rollout restart target Deployment/ns/web does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var objs []client.Object
			if tc.live != nil {
				objs = append(objs, tc.live)
			}
			c := fakeClient(objs...)
			res, err := rollout(ctx, c, RolloutRequest{ExternalSecret: rolloutES, Targets: target, Hash: "h2",
				ContentChanged: tc.changed, Creating: tc.creating})
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("err = %v, want %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rolled := slices.Contains(res.Rolled, "Deployment/ns/web"); rolled != tc.wantRoll {
				t.Errorf("rolled = %v, want %v (%+v)", rolled, tc.wantRoll, res)
			}
			if tc.live == nil {
				if !slices.Equal(res.Missing, []string{"Deployment/ns/web"}) {
					t.Errorf("missing = %v", res.Missing)
				}
				return
			}
			got := &appsv1.Deployment{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(tc.live), got); err != nil {
				t.Fatal(err)
			}
			if want := tc.wantRoll || tc.live.Spec.Template.Annotations[key] == "h2"; (got.Spec.Template.Annotations[key] == "h2") != want {
				t.Errorf("pod template annotations %v", got.Spec.Template.Annotations)
			}
			for k, v := range tc.live.Spec.Template.Annotations {
				if k != key && got.Spec.Template.Annotations[k] != v {
					t.Errorf("annotation %s lost: %v", k, got.Spec.Template.Annotations)
				}
			}
		})
	}
}

// TestCheckRollout: refresh reports a target tied to another hash and a
// missing one, not one that never carried the annotation; it writes nothing.
func TestCheckRollout(t *testing.T) {
	key := RolloutAnnotation(rolloutES)
	c := fakeClient(deployment("behind", map[string]string{key: "h1"}), deployment("current", map[string]string{key: "h2"}),
		deployment("untied", nil))
	var targets []RolloutTarget
	for _, name := range []string{"behind", "current", "untied", "gone"} {
		targets = append(targets, RolloutTarget{Kind: KindDeployment, Namespace: "ns", Name: name})
	}
	res, err := checkRollout(context.Background(), c, rolloutES, targets, "h2")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Behind, []string{"Deployment/ns/behind"}) || !slices.Equal(res.Missing, []string{"Deployment/ns/gone"}) || len(res.Rolled) > 0 {
		t.Errorf("CheckRollout = %+v", res)
	}
	got := &appsv1.Deployment{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "behind"}, got); err != nil || got.Spec.Template.Annotations[key] != "h1" {
		t.Errorf("CheckRollout wrote: %v %v", got.Spec.Template.Annotations, err)
	}
}

func TestRolloutAnnotation(t *testing.T) {
	long := strings.Repeat("a", 100)
	for _, tc := range []struct {
		es   types.NamespacedName
		want string
	}{
		{types.NamespacedName{Namespace: "ns", Name: "app"}, "esosync.io/rollout.app"},
		{types.NamespacedName{Namespace: "ns", Name: long}, ""},
	} {
		got := RolloutAnnotation(tc.es)
		name := strings.TrimPrefix(got, "esosync.io/")
		if (tc.want != "" && got != tc.want) || len(name) > 63 {
			t.Errorf("RolloutAnnotation(%v) = %q", tc.es, got)
		}
	}
	if RolloutAnnotation(types.NamespacedName{Namespace: "a", Name: long}) == RolloutAnnotation(types.NamespacedName{Namespace: "b", Name: long}) {
		t.Error("shortened names do not tell namespaces apart")
	}
}
