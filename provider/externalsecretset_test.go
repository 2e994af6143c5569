package provider

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pulumi/pulumi-go-provider/infer"
	"k8s.io/utils/ptr"
)

func setArgs(items map[string]string) ExternalSecretSetArgs {
	a := ExternalSecretSetArgs{Store: &StoreRef{Kind: ClusterSecretStoreKind, Name: "vault"}, Items: map[string]ExternalSecretSetItem{}}
	for name, key := range items {
		a.Items[name] = ExternalSecretSetItem{Data: []ExternalSecretData{{SecretKey: "password", RemoteRef: RemoteRef{Key: key}}}}
	}
	return a
}

func setState(args ExternalSecretSetArgs, notReady ...string) ExternalSecretSetState {
	st := ExternalSecretSetState{ExternalSecretSetArgs: args, ExternalSecretSetOutputs: ExternalSecretSetOutputs{Statuses: map[string]ExternalSecretStatus{}}}
	for name := range args.Items {
		st.Statuses[name] = ExternalSecretStatus{Ready: true}
	}
	for _, name := range notReady {
		st.Statuses[name] = ExternalSecretStatus{Ready: false}
	}
	return st
}

// TestPlanSet: `up` touches exactly the items that were added, removed,
// changed (by their own inputs or the set's defaults they use) or found
// not ready, and no others.
func TestPlanSet(t *testing.T) {
	base := setArgs(map[string]string{"a": "k/a", "b": "k/b", "c": "k/c"})
	tests := []struct {
		name  string
		old   ExternalSecretSetState
		news  ExternalSecretSetArgs
		steps []setStep
	}{
		{"nothing changed", setState(base), base, nil},
		{"one item added", setState(base), setArgs(map[string]string{"a": "k/a", "b": "k/b", "c": "k/c", "d": "k/d"}),
			[]setStep{{name: "d", create: true, changed: true}}},
		{"one item removed", setState(base), setArgs(map[string]string{"a": "k/a", "c": "k/c"}),
			[]setStep{{name: "b", remove: true, changed: true}}},
		{"one item changed", setState(base), setArgs(map[string]string{"a": "k/a", "b": "k/b2", "c": "k/c"}),
			[]setStep{{name: "b", changed: true}}},
		{"one item drifted", setState(base, "c"), base, []setStep{{name: "c"}}},
		{"a failed create is created again", func() ExternalSecretSetState {
			st := setState(base)
			delete(st.Statuses, "b")
			return st
		}(), base, []setStep{{name: "b", create: true, changed: true}}},
		{"a set default changes every item", setState(base), func() ExternalSecretSetArgs {
			a := setArgs(map[string]string{"a": "k/a", "b": "k/b", "c": "k/c"})
			a.RefreshInterval = ptr.To("5m")
			return a
		}(), []setStep{{name: "a", changed: true}, {name: "b", changed: true}, {name: "c", changed: true}}},
		{"an explicit default is no change", setState(base), func() ExternalSecretSetArgs {
			a := setArgs(map[string]string{"a": "k/a", "b": "k/b", "c": "k/c"})
			a.RefreshInterval, a.Sync = ptr.To(defaultRefreshInterval), ptr.To(SyncController)
			return a
		}(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planSet(tt.old, tt.news, "apps"); !reflect.DeepEqual(got, tt.steps) {
				t.Errorf("planSet = %+v, want %+v", got, tt.steps)
			}
		})
	}
}

// TestCollectSet: statuses follow the results, notReady names what the
// next up syncs, and failures name their items.
func TestCollectSet(t *testing.T) {
	args := setArgs(map[string]string{"a": "k/a", "b": "k/b", "c": "k/c"})
	prev := map[string]ExternalSecretStatus{"a": {Ready: true}, "gone": {Ready: true}}
	out, err := collectSet(args, prev, []itemResult{
		{name: "b", exists: true, status: ExternalSecretStatus{Ready: true, SecretName: "b"}},
		{name: "c", err: errors.New("backend refused")},
		{name: "gone"},
	})
	var failed infer.ResourceInitFailedError
	if !errors.As(err, &failed) || len(failed.Reasons) != 1 || !strings.Contains(failed.Reasons[0], "1 of 3 items failed: c: backend refused") {
		t.Errorf("error = %#v", err)
	}
	if _, ok := out.Statuses["gone"]; ok || out.Statuses["b"].SecretName != "b" || !out.Statuses["a"].Ready {
		t.Errorf("statuses = %+v", out.Statuses)
	}
	if !reflect.DeepEqual(out.NotReady, []string{"c"}) || out.Ready {
		t.Errorf("notReady = %v, ready = %v", out.NotReady, out.Ready)
	}
}
