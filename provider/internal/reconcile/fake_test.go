package reconcile

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/esosync/pulumi-esosync/provider/internal/escsource"
	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// These tests run the engine's writes, its controller-mode trigger and
// wait, and its drift classifier against controller-runtime's fake client:
// no test bed, seconds. The real-bed suites cover the same paths against
// the apiserver and ESO.

func fakeClient(objs ...client.Object) client.Client {
	b := fake.NewClientBuilder().WithScheme(kube.Scheme).WithStatusSubresource(&esv1.ExternalSecret{}).WithObjects(objs...)
	// The field selectors LatestWarning lists events with.
	for field, value := range map[string]func(*corev1.Event) string{
		"involvedObject.kind": func(e *corev1.Event) string { return e.InvolvedObject.Kind },
		"involvedObject.name": func(e *corev1.Event) string { return e.InvolvedObject.Name },
		"type":                func(e *corev1.Event) string { return e.Type },
		"reason":              func(e *corev1.Event) string { return e.Reason },
	} {
		b = b.WithIndex(&corev1.Event{}, field, func(o client.Object) []string { return []string{value(o.(*corev1.Event))} })
	}
	return b.Build()
}

func testES(policy esv1.ExternalSecretCreationPolicy) *esv1.ExternalSecret {
	return &esv1.ExternalSecret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret"},
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: types.UID("es-uid")},
		Spec: esv1.ExternalSecretSpec{
			RefreshInterval: &metav1.Duration{Duration: time.Hour},
			Target:          esv1.ExternalSecretTarget{Name: "app-secret", CreationPolicy: policy, DeletionPolicy: esv1.DeletionPolicyRetain},
		},
	}
}

// TestWriteCreatesThenUpdates: provider mode writes the Secret ESO would,
// and a second write with other data updates it in place.
func TestWriteCreatesThenUpdates(t *testing.T) {
	ctx := context.Background()
	es := testES(esv1.CreatePolicyOwner)
	c := fakeClient(es)
	for _, value := range []string{"v1", "v2"} {
		out, err := Write(ctx, c, es, &Fetched{Data: map[string][]byte{"password": []byte(value)}})
		if err != nil || out.Reason != ReasonSynced {
			t.Fatalf("Write(%s): %+v, %v", value, out, err)
		}
		secret := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "app-secret"}, secret); err != nil {
			t.Fatal(err)
		}
		if string(secret.Data["password"]) != value || !Consistent(secret) || !OwnedBy(secret, es) {
			t.Errorf("after Write(%s): data %q, consistent %v, owned %v", value, secret.Data["password"], Consistent(secret), OwnedBy(secret, es))
		}
	}
}

// triggerLive reads es from c and triggers a sync of it, returning the
// live object and the resource version ESO will report once synced.
func triggerLive(t *testing.T, c client.Client, es *esv1.ExternalSecret) (*esv1.ExternalSecret, string) {
	t.Helper()
	live := &esv1.ExternalSecret{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(es), live); err != nil {
		t.Fatal(err)
	}
	expected, err := Trigger(context.Background(), c, live, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return live, expected
}

// TestTriggerAndAwait: Trigger marks the ExternalSecret for a sync and
// Await returns once ESO (played here) reports that generation synced; an
// ESO failure is what the wait's error carries.
func TestTriggerAndAwait(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  corev1.ConditionStatus
		reason  string
		wantErr string
	}{
		{"ESO syncs", corev1.ConditionTrue, ReasonSynced, ""},
		{"ESO fails", corev1.ConditionFalse, ReasonSyncedError, "ESO reports SecretSyncedError: could not get secret data from provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			es := testES(esv1.CreatePolicyOwner)
			c := fakeClient(es.DeepCopy())
			live, expected := triggerLive(t, c, es)
			if live.Annotations[AnnotationForceSync] == "" {
				t.Error("Trigger set no force-sync annotation")
			}
			// ESO's report for the triggered state.
			live.Status.SyncedResourceVersion = expected
			live.Status.Conditions = []esv1.ExternalSecretStatusCondition{{Type: esv1.ExternalSecretReady, Status: tc.status,
				Reason: tc.reason, Message: "could not get secret data from provider"}}
			if err := c.Status().Update(ctx, live); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			var heard []string
			_, err := Await(wctx, c, client.ObjectKeyFromObject(es), expected, 20*time.Millisecond, func(reason, _ string) { heard = append(heard, reason) })
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Await: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Await = %v, want an error with %q", err, tc.wantErr)
			}
			if len(heard) != 1 || heard[0] != tc.reason {
				t.Errorf("progress heard %v, want [%s]", heard, tc.reason)
			}
		})
	}
}

// TestAwaitFailsFast: Trigger sets a Ready=False left by an earlier sync
// to Unknown, so the wait does not mistake it for ESO's verdict and goes on
// until its deadline; once ESO reports False again, Await fails at once
// with ESO's Warning event in the error.
func TestAwaitFailsFast(t *testing.T) {
	ctx := context.Background()
	es := testES(esv1.CreatePolicyOwner)
	es.Status.Conditions = []esv1.ExternalSecretStatusCondition{{Type: esv1.ExternalSecretReady, Status: corev1.ConditionFalse,
		Reason: ReasonSyncedError, Message: "could not get secret data from provider"}}
	event := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "app.1", Namespace: "ns"}, Type: corev1.EventTypeWarning,
		Reason: esv1.ReasonUpdateFailed, Message: "operation error Secrets Manager: GetSecretValue, RequestID: 0a1b2c3d-4e5f-6789, api error SignatureDoesNotMatch",
		InvolvedObject: corev1.ObjectReference{Kind: esv1.ExtSecretKind, Name: "app", Namespace: "ns", UID: es.UID}, LastTimestamp: metav1.Now()}
	c := fakeClient(es.DeepCopy(), event)
	live, expected := triggerLive(t, c, es)
	// await reports whether Await ended before its deadline, and its error.
	await := func() (bool, error) {
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := Await(wctx, c, client.ObjectKeyFromObject(es), expected, 20*time.Millisecond, nil)
		return wctx.Err() == nil, err
	}
	if fast, err := await(); err == nil || fast {
		t.Fatalf("the earlier failure ended the wait: %v (before the deadline: %v)", err, fast)
	}
	// ESO's verdict on the triggered sync.
	if err := c.Get(ctx, client.ObjectKeyFromObject(es), live); err != nil {
		t.Fatal(err)
	}
	if cond := ReadyCondition(live); cond == nil || cond.Status != corev1.ConditionUnknown || cond.Reason != ReasonPending {
		t.Fatalf("Trigger left the condition %+v, want Unknown/Pending", cond)
	}
	live.Status.Conditions = es.Status.Conditions
	if err := c.Status().Update(ctx, live); err != nil {
		t.Fatal(err)
	}
	fast, err := await()
	if err == nil || !fast || !strings.Contains(err.Error(), "Warning UpdateFailed: ") || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("Await = %v (before the deadline: %v), want a fast failure with ESO's Warning event", err, fast)
	}
	if strings.Contains(err.Error(), "0a1b2c3d") {
		t.Errorf("the error keeps the per-request ID: %v", err)
	}
}

// TestHMACKeyCreatedOnce: the first hash of a namespace creates its key
// Secret; a second provider session reads the same key.
func TestHMACKeyCreatedOnce(t *testing.T) {
	ctx := context.Background()
	c := fakeClient()
	first, err := New(nil, escsource.Source{}).hasher(ctx, c, "ns")
	if err != nil {
		t.Fatal(err)
	}
	second, err := New(nil, escsource.Source{}).hasher(ctx, c, "ns")
	if err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{"pin": []byte("4711")}
	if first.Sum(data) != second.Sum(data) {
		t.Error("a second session hashes with another key")
	}
	key := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: HMACKeySecret}, key); err != nil || len(key.Data[hmacKeyField]) != hmacKeyBytes {
		t.Fatalf("key Secret: %v, %d bytes", err, len(key.Data[hmacKeyField]))
	}
}

// TestDriftClassifier: what refresh concludes from the backend's data and
// the live Secret.
func TestDriftClassifier(t *testing.T) {
	ctx := context.Background()
	synced := func(es *esv1.ExternalSecret, value string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-secret", Namespace: "ns"}, Data: map[string][]byte{}}
		if err := Mutate(ctx, nil, s, es, map[string][]byte{"password": []byte(value)}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	edited := func(s *corev1.Secret) *corev1.Secret {
		s.Data["password"] = []byte("edited-by-hand")
		return s
	}
	owner, none, merge := testES(esv1.CreatePolicyOwner), testES(esv1.CreatePolicyNone), testES(esv1.CreatePolicyMerge)
	for _, tc := range []struct {
		name        string
		es          *esv1.ExternalSecret
		secret      *corev1.Secret
		data        map[string][]byte
		versions    map[string]string
		oldVersions map[string]string
		want        Status
	}{
		{"current", owner, synced(owner, "v1"), map[string][]byte{"password": []byte("v1")}, nil, nil,
			Status{Ready: true, Reason: ReasonSynced, Message: "secret synced"}},
		{"remote value changed", owner, synced(owner, "v1"), map[string][]byte{"password": []byte("v2")},
			map[string]string{"my-app/config": "2"}, map[string]string{"my-app/config": "1"},
			Status{Reason: ReasonOutOfSync, Message: "remote value changed: my-app/config (version 1 -> 2)"}},
		{"edited by hand", owner, edited(synced(owner, "v1")), map[string][]byte{"password": []byte("v1")}, nil, nil,
			Status{Reason: ReasonOutOfSync, Message: "target Secret ns/app-secret was edited out of band"}},
		{"remote changed without versions", owner, synced(owner, "v1"), map[string][]byte{"password": []byte("v2")}, nil, nil,
			Status{Reason: ReasonOutOfSync, Message: "target Secret differs from the backend's current values"}},
		{"deleted by hand", owner, nil, map[string][]byte{"password": []byte("v1")}, nil, nil,
			Status{Reason: ReasonSecretMissing, Message: "target Secret ns/app-secret does not exist (deleted out of band)"}},
		{"nothing to sync", owner, nil, map[string][]byte{}, nil, nil,
			Status{Ready: true, Reason: ReasonSynced, Message: "no data to sync"}},
		{"merge without a Secret", merge, nil, map[string][]byte{"password": []byte("v1")}, nil, nil,
			Status{Ready: true, Reason: ReasonSynced, Message: "no data to sync"}},
		{"creation policy None", none, nil, map[string][]byte{"password": []byte("v1")}, nil, nil,
			Status{Ready: true, Reason: ReasonSynced, Message: "secret creation skipped due to CreationPolicy=None"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compare(ctx, fakeClient(), tc.es, tc.secret, &Fetched{Data: tc.data, Versions: tc.versions}, tc.oldVersions)
			if got != tc.want {
				t.Errorf("compare = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCheckTarget: esosync's own check of a Secret ESO manages.
func TestCheckTarget(t *testing.T) {
	owner := testES(esv1.CreatePolicyOwner)
	good := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-secret", Namespace: "ns"}, Data: map[string][]byte{}}
	if err := Mutate(context.Background(), nil, good, owner, map[string][]byte{"k": []byte("v")}); err != nil {
		t.Fatal(err)
	}
	edited := good.DeepCopy()
	edited.Data["k"] = []byte("hand")
	deleteWhenGone := testES(esv1.CreatePolicyOwner)
	deleteWhenGone.Spec.Target.DeletionPolicy = esv1.DeletionPolicyDelete
	for _, tc := range []struct {
		name   string
		es     *esv1.ExternalSecret
		secret *corev1.Secret
		want   string
	}{
		{"consistent", owner, good, ""},
		{"edited", owner, edited, "does not match ESO's data-hash annotation"},
		{"missing", owner, nil, "target Secret ns/app-secret does not exist"},
		{"missing under deletionPolicy Delete", deleteWhenGone, nil, ""},
		{"missing under Merge", testES(esv1.CreatePolicyMerge), nil, ""},
		{"policy None", testES(esv1.CreatePolicyNone), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := checkTarget(tc.es, tc.secret)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("checkTarget = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReviveStore: a store ESO marked not ready gets the revalidate
// annotation and the wait ends with ESO's verdict; a ready store is left
// alone.
func TestReviveStore(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    corev1.ConditionStatus
		wantPoked bool
	}{
		{"not ready", corev1.ConditionFalse, true},
		{"ready", corev1.ConditionTrue, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			store := &esv1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "vault"},
				Status: esv1.SecretStoreStatus{Conditions: []esv1.SecretStoreStatusCondition{{Type: esv1.SecretStoreReady,
					Status: tc.status, Reason: esv1.ReasonInvalidProviderConfig, Message: "unable to validate store"}}}}
			c := fake.NewClientBuilder().WithScheme(kube.Scheme).WithObjects(store.DeepCopy()).Build()
			wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			err := ReviveStore(wctx, c, store, time.Now(), 20*time.Millisecond, nil)
			live := &esv1.ClusterSecretStore{}
			if gerr := c.Get(ctx, client.ObjectKey{Name: "vault"}, live); gerr != nil {
				t.Fatal(gerr)
			}
			if poked := live.Annotations[AnnotationRevalidate] != ""; poked != tc.wantPoked {
				t.Errorf("revalidate annotation set: %v, want %v", poked, tc.wantPoked)
			}
			if tc.wantPoked && (err == nil || !strings.Contains(err.Error(), "unable to validate store")) {
				t.Errorf("ReviveStore = %v, want ESO's last verdict", err)
			}
			if !tc.wantPoked && err != nil {
				t.Errorf("ReviveStore of a ready store: %v", err)
			}
		})
	}
}

// TestRewriteKeepsInputs: rewriting an ExternalSecret that is already as
// desired sends nothing, keeps the force-sync annotation ESO or an earlier
// trigger left, and hands back an object whose maps are not the caller's:
// triggering a sync of it must not add the trigger's annotation to the
// inputs the provider records in state.
func TestRewriteKeepsInputs(t *testing.T) {
	ctx := context.Background()
	live := testES(esv1.CreatePolicyOwner)
	live.Annotations = map[string]string{"team": "a", AnnotationForceSync: "earlier"}
	c := fakeClient(live.DeepCopy())
	inputs := map[string]string{"team": "a"}
	desired := testES(esv1.CreatePolicyOwner)
	desired.Annotations = inputs
	written, err := writeExternalSecret(ctx, c, desired, false)
	if err != nil {
		t.Fatal(err)
	}
	if written.Annotations[AnnotationForceSync] != "earlier" || written.Annotations["team"] != "a" {
		t.Errorf("rewritten annotations %v, want team=a and the live force-sync kept", written.Annotations)
	}
	if _, err := Trigger(ctx, c, written, time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(inputs) != 1 || inputs["team"] != "a" {
		t.Errorf("the caller's annotations became %v", inputs)
	}
	for _, tc := range []struct {
		desired, live, want map[string]string
	}{
		{nil, nil, nil},
		{map[string]string{"a": "1"}, nil, map[string]string{"a": "1"}},
		{nil, map[string]string{AnnotationForceSync: "x", "b": "2"}, map[string]string{AnnotationForceSync: "x"}},
		{map[string]string{AnnotationForceSync: "mine"}, map[string]string{AnnotationForceSync: "x"}, map[string]string{AnnotationForceSync: "mine"}},
	} {
		if got := keepForceSync(tc.desired, tc.live); !maps.Equal(got, tc.want) {
			t.Errorf("keepForceSync(%v, %v) = %v, want %v", tc.desired, tc.live, got, tc.want)
		}
	}
}
