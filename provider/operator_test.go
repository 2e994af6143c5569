package provider_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	presource "github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	helmkube "helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

func operatorURN(name string) presource.URN {
	return presource.URN("urn:pulumi:test::test::esosync:index:Operator::" + name)
}

// esoSources returns the chart directory and CRD bundle of the
// external-secrets module go.mod pins.
func esoSources(t *testing.T) (chartDir, bundle string) {
	t.Helper()
	chartDir, err := harness.ESOChartDir()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err = harness.ESOCRDBundle()
	if err != nil {
		t.Fatal(err)
	}
	return chartDir, bundle
}

func operatorInputs(kv map[string]any) property.Map {
	m := map[string]property.Value{}
	for k, v := range kv {
		m[k] = operatorValue(v)
	}
	return property.NewMap(m)
}

func operatorValue(v any) property.Value {
	switch v := v.(type) {
	case property.Value:
		return v
	case string:
		return property.New(v)
	case bool:
		return property.New(v)
	case int:
		return property.New(float64(v))
	case float64:
		return property.New(v)
	case map[string]any:
		return property.New(operatorInputs(v))
	case []any:
		items := make([]property.Value, len(v))
		for i, e := range v {
			items[i] = operatorValue(e)
		}
		return property.New(items)
	default:
		panic(fmt.Sprintf("operatorValue: unsupported %T", v))
	}
}

func TestOperatorCheck(t *testing.T) {
	chartDir, bundle := esoSources(t)
	dir := t.TempDir()
	notCRDs := filepath.Join(dir, "configmap.yaml")
	if err := os.WriteFile(notCRDs, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	local := func(extra map[string]any) map[string]any {
		m := map[string]any{"chart": chartDir, "crds": bundle}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	bad := []struct {
		name   string
		inputs map[string]any
		field  string
		reason string // substring of the failure's reason besides the field name
	}{
		{"timeout not a duration", map[string]any{"timeout": "5x"}, "timeout", `timeout: invalid duration "5x"`},
		{"timeout negative", map[string]any{"timeout": "-1m"}, "timeout", "must be positive"},
		{"chart path missing", map[string]any{"chart": filepath.Join(dir, "nope")}, "chart", "no such file"},
		{"chart empty", map[string]any{"chart": ""}, "chart", "must not be empty"},
		{"chart OCI reference", map[string]any{"chart": "oci://ghcr.io/external-secrets/charts/external-secrets"}, "chart", "only http(s)"},
		{"chart file not an archive", map[string]any{"chart": notCRDs}, "chart", "neither a chart directory nor a .tgz"},
		{"chartVersion empty", map[string]any{"chartVersion": ""}, "chartVersion", "must not be empty"},
		{"version a range", map[string]any{"chartVersion": "~0.20"}, "chartVersion", "not an exact chart version"},
		{"version differs from local chart", local(map[string]any{"chartVersion": "9.9.9"}), "chartVersion", `local chart's version "` + ch.Metadata.Version + `"`},
		{"namespace invalid", map[string]any{"namespace": "Bad_NS"}, "namespace", "not a valid namespace name"},
		{"release name invalid", map[string]any{"releaseName": "Not.Valid!"}, "releaseName", "not a valid Helm release name"},
		{"crds empty means none: the module chart has no CRDs", local(map[string]any{"crds": ""}), "crds", "carries no CRD manifests"},
		{"crds missing", map[string]any{"crds": filepath.Join(dir, "bundle.yaml")}, "crds", "no such file"},
		{"crds not CRDs", map[string]any{"crds": notCRDs}, "crds", "is a ConfigMap"},
		{"local chart without CRDs and no bundle", map[string]any{"chart": chartDir}, "crds", "carries no CRD manifests"},
		{"values the chart schema rejects", local(map[string]any{"values": map[string]any{"replicaCount": "two"}}), "values", "replicaCount"},
		{"values enabling a missing subchart", local(map[string]any{"values": map[string]any{
			"bitwarden-sdk-server": map[string]any{"enabled": true},
		}}), "values", "bitwarden-sdk-server"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := newServer(t).Check(p.CheckRequest{Urn: operatorURN("eso"), Inputs: operatorInputs(tt.inputs)})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if len(resp.Failures) == 0 {
				t.Fatalf("Check accepted %v", tt.inputs)
			}
			for _, f := range resp.Failures {
				if f.Property == tt.field && strings.Contains(f.Reason, tt.field+": ") && strings.Contains(f.Reason, tt.reason) {
					return
				}
			}
			t.Fatalf("failures %+v lack one for %q mentioning %q", resp.Failures, tt.field, tt.reason)
		})
	}

	good := []struct {
		name   string
		inputs map[string]any
		want   map[string]any // expected checked inputs (strings and bools)
	}{
		{
			name:   "defaults",
			inputs: map[string]any{},
			want: map[string]any{
				"namespace": "external-secrets", "releaseName": "external-secrets", "chartVersion": "0.20.4",
				"chart": "https://charts.external-secrets.io", "installCrds": true, "waitForController": true, "timeout": "5m",
			},
		},
		{
			name:   "local chart: version comes from its Chart.yaml",
			inputs: local(map[string]any{"values": map[string]any{"replicaCount": 2}}),
			want:   map[string]any{"chartVersion": ch.Metadata.Version, "chart": chartDir, "crds": bundle},
		},
		{
			name:   "local chart with its own version spelled with a v",
			inputs: local(map[string]any{"chartVersion": "v" + ch.Metadata.Version}),
			want:   map[string]any{"chartVersion": "v" + ch.Metadata.Version},
		},
		{
			name:   "CRDs managed elsewhere",
			inputs: map[string]any{"chart": chartDir, "installCrds": false, "timeout": "90s"},
			want:   map[string]any{"installCrds": false, "timeout": "90s"},
		},
		{
			name: "unknown values are not validated at preview",
			inputs: map[string]any{
				"timeout": property.New(property.Computed), "chart": property.New(property.Computed),
				"crds": property.New(property.Computed), "chartVersion": property.New(property.Computed),
			},
			want: map[string]any{"namespace": "external-secrets"},
		},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := newServer(t).Check(p.CheckRequest{Urn: operatorURN("eso"), Inputs: operatorInputs(tt.inputs)})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if len(resp.Failures) > 0 {
				t.Fatalf("Check failures: %+v", resp.Failures)
			}
			for k, want := range tt.want {
				got := resp.Inputs.Get(k)
				switch want := want.(type) {
				case string:
					if !got.IsString() || got.AsString() != want {
						t.Errorf("%s = %v, want %q", k, got, want)
					}
				case bool:
					if !got.IsBool() || got.AsBool() != want {
						t.Errorf("%s = %v, want %v", k, got, want)
					}
				}
			}
		})
	}
}

// TestOperatorVersionDiff pins why the input is chartVersion, not version
// (pulumi-go-provider drops inputs named "version" before Diff): changing
// only the chart version must upgrade the release.
func TestOperatorVersionDiff(t *testing.T) {
	s := newServer(t)
	urn := operatorURN("eso")
	check := func(inputs map[string]any) property.Map {
		t.Helper()
		resp, err := s.Check(p.CheckRequest{Urn: urn, Inputs: operatorInputs(inputs)})
		if err != nil || len(resp.Failures) > 0 {
			t.Fatalf("Check: %v %+v", err, resp.Failures)
		}
		return resp.Inputs
	}
	old := check(map[string]any{"namespace": "eso-diff", "chartVersion": "0.20.4"})
	state := old.Set("status", property.New("deployed")).Set("chartVersion", property.New("0.20.4")).
		Set("appVersion", property.New("v0.20.4")).Set("revision", property.New(1.0)).
		Set("crdNames", property.New([]property.Value{}))
	id := "eso-diff/external-secrets"

	tests := []struct {
		name    string
		inputs  map[string]any
		changed []string
		replace bool
	}{
		{name: "nothing", inputs: map[string]any{"namespace": "eso-diff", "chartVersion": "0.20.4"}},
		{name: "defaults spelled out", inputs: map[string]any{"namespace": "eso-diff", "timeout": "5m", "installCrds": true}},
		{name: "version only", inputs: map[string]any{"namespace": "eso-diff", "chartVersion": "0.21.0"}, changed: []string{"chartVersion"}},
		{name: "unknown version", inputs: map[string]any{"namespace": "eso-diff", "chartVersion": property.New(property.Computed)}, changed: []string{"chartVersion"}},
		{name: "values", inputs: map[string]any{"namespace": "eso-diff", "chartVersion": "0.20.4", "values": map[string]any{"replicaCount": 2}}, changed: []string{"values"}},
		{name: "release name replaces", inputs: map[string]any{"namespace": "eso-diff", "chartVersion": "0.20.4", "releaseName": "eso"}, changed: []string{"releaseName"}, replace: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			news := check(tt.inputs)
			resp, err := s.Diff(p.DiffRequest{ID: id, Urn: urn, State: state, OldInputs: old, Inputs: news})
			if err != nil {
				t.Fatal(err)
			}
			var changed []string
			for k := range resp.DetailedDiff {
				changed = append(changed, k)
			}
			slices.Sort(changed)
			if resp.HasChanges != (len(tt.changed) > 0) || !slices.Equal(changed, tt.changed) {
				t.Fatalf("diff = %v (hasChanges %v), want %v", changed, resp.HasChanges, tt.changed)
			}
			if resp.DeleteBeforeReplace != tt.replace {
				t.Errorf("deleteBeforeReplace = %v, want %v", resp.DeleteBeforeReplace, tt.replace)
			}
			for k, d := range resp.DetailedDiff {
				if want := map[bool]p.DiffKind{false: p.Update, true: p.UpdateReplace}[tt.replace]; d.Kind != want {
					t.Errorf("%s: kind %v, want %v", k, d.Kind, want)
				}
			}
		})
	}
}

func TestOperatorLifecycle(t *testing.T) {
	env := harness.Shared(t)
	chartDir, bundle := esoSources(t)
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	if err := s.Configure(config(map[string]string{"kubeconfig": env.Kubeconfig})); err != nil {
		t.Fatal(err)
	}
	ns := "eso-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	const release = "external-secrets"
	id := ns + "/" + release
	urn := operatorURN("eso")
	oob := newHelmSDK(t, env, ns)
	// The release's webhook configurations would reject SecretStores for
	// later tests if this one stopped half way.
	t.Cleanup(func() { _, _ = action.NewUninstall(oob.cfg).Run(release) })

	check := func(inputs map[string]any) property.Map {
		t.Helper()
		resp, err := s.Check(p.CheckRequest{Urn: urn, Inputs: operatorInputs(inputs)})
		if err != nil || len(resp.Failures) > 0 {
			t.Fatalf("Check: %v %+v", err, resp.Failures)
		}
		return resp.Inputs
	}
	base := map[string]any{"namespace": ns, "chart": chartDir, "crds": bundle, "waitForController": false, "timeout": "2m"}
	inputs := check(base)

	// Preview touches nothing.
	preview, err := s.Create(p.CreateRequest{Urn: urn, Properties: inputs, DryRun: true})
	if err != nil {
		t.Fatalf("preview Create: %v", err)
	}
	if preview.Properties.Get("namespace").AsString() != ns {
		t.Errorf("preview namespace = %v", preview.Properties.Get("namespace"))
	}
	if _, err := oob.status(release); err == nil {
		t.Fatal("preview installed the release")
	}

	start := time.Now()
	created, err := s.Create(p.CreateRequest{Urn: urn, Properties: inputs})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Logf("Create took %s", time.Since(start).Round(time.Millisecond))
	if created.ID != id {
		t.Errorf("ID = %q, want %q", created.ID, id)
	}
	wantOutputs(t, created.Properties, map[string]any{
		"status": "deployed", "chartVersion": ch.Metadata.Version, "appVersion": ch.Metadata.AppVersion,
		"revision": 1.0, "namespace": ns, "releaseName": release,
	})
	crdNames := strings.Fields(stringsOf(created.Properties.Get("crdNames")))
	for _, core := range []string{"externalsecrets.external-secrets.io", "secretstores.external-secrets.io", "clustersecretstores.external-secrets.io"} {
		if !slices.Contains(crdNames, core) {
			t.Errorf("crdNames %v lack %s", crdNames, core)
		}
	}
	assertESOServed(t, env, crdNames)
	if rel, err := oob.status(release); err != nil || rel.Info.Status.String() != "deployed" {
		t.Fatalf("helm status: %v %v", rel, err)
	}
	deployments := listDeployments(t, env, ns)
	if !slices.Contains(deployments, release) || len(deployments) < 2 {
		t.Fatalf("deployments = %v, want the controller %q and the webhook/cert controller", deployments, release)
	}

	// Update: new values upgrade the release.
	scaled := map[string]any{"replicaCount": 2}
	inputs2 := check(mergeInputs(base, map[string]any{"values": scaled}))
	diff, err := s.Diff(p.DiffRequest{ID: id, Urn: urn, State: created.Properties, OldInputs: inputs, Inputs: inputs2})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := diff.DetailedDiff["values"]; !ok || d.Kind != p.Update || len(diff.DetailedDiff) != 1 {
		t.Fatalf("diff = %+v, want an update of values only", diff.DetailedDiff)
	}
	updated, err := s.Update(p.UpdateRequest{ID: id, Urn: urn, State: created.Properties, OldInputs: inputs, Inputs: inputs2})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	wantOutputs(t, updated.Properties, map[string]any{"status": "deployed", "revision": 2.0})
	if got := deploymentReplicas(t, env, ns, release); got != 2 {
		t.Errorf("deployment %s replicas = %d, want 2", release, got)
	}

	// Turning on the wait only waits: there is no kubelet, so stand in for
	// the deployment controller and report the Deployments Available. No
	// webhook pod can serve on this bed, so the wait then fails on ESO's
	// webhook, naming it (tests/node proves the wait succeeding with pods),
	// and the release is left alone.
	markDeploymentsAvailable(t, env, ns)
	inputs3 := check(mergeInputs(base, map[string]any{"values": scaled, "waitForController": true, "timeout": "5s"}))
	waited, err := s.Update(p.UpdateRequest{ID: id, Urn: urn, State: updated.Properties, OldInputs: inputs2, Inputs: inputs3})
	if err == nil {
		t.Fatal("Update waitForController succeeded without a webhook pod")
	}
	if waited.PartialState == nil {
		t.Fatalf("Update waitForController = %+v, %v; want partial state", waited, err)
	}
	if reasons := strings.Join(waited.PartialState.Reasons, "\n"); !strings.Contains(reasons, "webhook validate.externalsecret.external-secrets.io") {
		t.Errorf("reasons = %q, want ESO's webhook named", reasons)
	}
	wantOutputs(t, waited.Properties, map[string]any{"status": "deployed", "revision": 2.0})

	// Read without drift changes nothing.
	read, err := s.Read(p.ReadRequest{ID: id, Urn: urn, Properties: updated.Properties, Inputs: inputs2})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if read.ID != id {
		t.Fatalf("Read ID = %q", read.ID)
	}
	wantOutputs(t, read.Properties, map[string]any{"status": "deployed", "revision": 2.0})
	if diff, err := s.Diff(p.DiffRequest{ID: id, Urn: urn, State: read.Properties, OldInputs: read.Inputs, Inputs: inputs2}); err != nil || diff.HasChanges {
		t.Fatalf("diff after a clean refresh = %+v, %v; want none (esosync's installCRDs must not show as drift)", diff.DetailedDiff, err)
	}

	// Someone upgrades the release by hand: refresh shows the values drift.
	oob.upgrade(t, release, chartDir, map[string]any{"replicaCount": 3, "installCRDs": false})
	read, err = s.Read(p.ReadRequest{ID: id, Urn: urn, Properties: updated.Properties, Inputs: inputs2})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	wantOutputs(t, read.Properties, map[string]any{"revision": 3.0})
	if v := read.Inputs.Get("values"); !v.IsMap() || v.AsMap().Get("replicaCount").AsNumber() != 3 {
		t.Errorf("refreshed values = %v, want replicaCount 3", v)
	}
	inputs2 = check(mergeInputs(base, map[string]any{"values": scaled}))
	diff, err = s.Diff(p.DiffRequest{ID: id, Urn: urn, State: read.Properties, OldInputs: read.Inputs, Inputs: inputs2})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := diff.DetailedDiff["values"]; !ok {
		t.Fatalf("diff after drift = %+v, want values", diff.DetailedDiff)
	}

	// Delete uninstalls: the release record and the objects Helm created go,
	// the CRDs stay.
	if err := s.Delete(p.DeleteRequest{ID: id, Urn: urn, Properties: read.Properties}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if secrets := helmReleaseSecrets(t, env, ns, release); len(secrets) > 0 {
		t.Errorf("release secrets left after Delete: %v", secrets)
	}
	if left := listDeployments(t, env, ns); len(left) > 0 {
		t.Errorf("deployments left after Delete: %v", left)
	}
	assertESOServed(t, env, crdNames)

	// Install again (the CRDs are already there: applying them is
	// idempotent), then lose the release out of band: Read reports it gone.
	again, err := s.Create(p.CreateRequest{Urn: urn, Properties: inputs})
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}
	wantOutputs(t, again.Properties, map[string]any{"status": "deployed", "revision": 1.0})
	if _, err := action.NewUninstall(oob.cfg).Run(release); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	gone, err := s.Read(p.ReadRequest{ID: id, Urn: urn, Properties: again.Properties, Inputs: inputs})
	if err != nil {
		t.Fatalf("Read after out-of-band uninstall: %v", err)
	}
	if gone.ID != "" {
		t.Fatalf("Read ID = %q after out-of-band uninstall, want empty", gone.ID)
	}
	if err := s.Delete(p.DeleteRequest{ID: id, Urn: urn, Properties: again.Properties}); err != nil {
		t.Fatalf("Delete of a release already gone: %v", err)
	}
}

// TestOperatorControllerNotAvailable: without a kubelet the controller never
// becomes Available, so Create fails in time, and reports the release it
// installed so that Pulumi tracks (and can delete) it.
func TestOperatorControllerNotAvailable(t *testing.T) {
	env := harness.Shared(t)
	chartDir, bundle := esoSources(t)
	s := newServer(t)
	if err := s.Configure(config(map[string]string{"kubeconfig": env.Kubeconfig})); err != nil {
		t.Fatal(err)
	}
	ns := "eso-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	urn := operatorURN("eso")
	oob := newHelmSDK(t, env, ns)
	t.Cleanup(func() { _, _ = action.NewUninstall(oob.cfg).Run("eso") })
	resp, err := s.Check(p.CheckRequest{Urn: urn, Inputs: operatorInputs(map[string]any{
		"namespace": ns, "releaseName": "eso", "chart": chartDir, "crds": bundle, "timeout": "15s", // room for the CRDs on a loaded machine
		// Only the controller: fewer objects, same wait.
		"values": map[string]any{"webhook": map[string]any{"create": false}, "certController": map[string]any{"create": false}},
	})})
	if err != nil || len(resp.Failures) > 0 {
		t.Fatalf("Check: %v %+v", err, resp.Failures)
	}
	created, err := s.Create(p.CreateRequest{Urn: urn, Properties: resp.Inputs})
	if err == nil {
		t.Fatal("Create succeeded without a running controller")
	}
	if created.PartialState == nil || created.ID != ns+"/eso" {
		t.Fatalf("Create = %+v, %v; want partial state for the installed release", created, err)
	}
	if reasons := strings.Join(created.PartialState.Reasons, "\n"); !strings.Contains(reasons, "deployments eso-external-secrets") ||
		!strings.Contains(reasons, "not available") {
		t.Errorf("reasons = %q, want the Deployment that is not Available", reasons)
	}
	wantOutputs(t, created.Properties, map[string]any{"status": "deployed", "revision": 1.0})
	if err := s.Delete(p.DeleteRequest{ID: created.ID, Urn: urn, Properties: created.Properties}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := oob.status("eso"); err == nil {
		t.Error("release still there after Delete")
	}
}

// TestOperatorReadUnreachable keeps state when the cluster cannot be asked.
func TestOperatorReadUnreachable(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, kubeconfig, "https://127.0.0.1:1")
	s := newServer(t)
	if err := s.Configure(config(map[string]string{"kubeconfig": kubeconfig})); err != nil {
		t.Fatal(err)
	}
	state := operatorInputs(map[string]any{
		"namespace": "external-secrets", "releaseName": "external-secrets", "chartVersion": "0.20.4",
		"chart": "https://charts.external-secrets.io", "installCrds": true, "waitForController": true, "timeout": "5m",
		"status": "deployed", "appVersion": "v0.20.4", "revision": 1, "crdNames": []any{},
	})
	resp, err := s.Read(p.ReadRequest{ID: "external-secrets/external-secrets", Urn: operatorURN("eso"), Properties: state})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if resp.ID != "external-secrets/external-secrets" || resp.Properties.Get("revision").AsNumber() != 1 {
		t.Fatalf("Read = %q %v, want the state kept", resp.ID, resp.Properties)
	}
}

// helmSDK is Helm's own client, configured from a kubeconfig like the helm
// CLI, to act behind the provider's back.
type helmSDK struct {
	cfg *action.Configuration
}

func newHelmSDK(t *testing.T, env *harness.Env, namespace string) *helmSDK {
	t.Helper()
	cfg := new(action.Configuration)
	flags := helmkube.GetConfig(env.Kubeconfig, env.KubeContext, namespace)
	if err := cfg.Init(flags, namespace, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	return &helmSDK{cfg: cfg}
}

func (h *helmSDK) status(name string) (*release.Release, error) {
	return action.NewStatus(h.cfg).Run(name)
}

func (h *helmSDK) upgrade(t *testing.T, name, chartDir string, values map[string]any) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	ch.Metadata.Dependencies = nil // the source chart lacks its optional subchart
	up := action.NewUpgrade(h.cfg)
	up.SkipCRDs = true
	if _, err := up.Run(name, ch, values); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
}

func wantOutputs(t *testing.T, props property.Map, want map[string]any) {
	t.Helper()
	for k, w := range want {
		got := props.Get(k)
		switch w := w.(type) {
		case string:
			if !got.IsString() || got.AsString() != w {
				t.Errorf("%s = %v, want %q", k, got, w)
			}
		case float64:
			if !got.IsNumber() || got.AsNumber() != w {
				t.Errorf("%s = %v, want %v", k, got, w)
			}
		}
	}
}

func stringsOf(v property.Value) string {
	var out []string
	if v.IsArray() {
		for _, e := range v.AsArray().All {
			if e.IsString() {
				out = append(out, e.AsString())
			}
		}
	}
	return strings.Join(out, " ")
}

func mergeInputs(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// assertESOServed checks the CRDs are Established and ESO's v1 API answers.
func assertESOServed(t *testing.T, env *harness.Env, names []string) {
	t.Helper()
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 50, 100 // two dozen CRDs; client-go's default 5/s would dominate the test
	crds := apiextensions.NewForConfigOrDie(cfg).ApiextensionsV1().CustomResourceDefinitions()
	for _, name := range names {
		crd, err := crds.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("CRD %s: %v", name, err)
		}
		established := false
		for _, c := range crd.Status.Conditions {
			established = established || (c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue)
		}
		if !established {
			t.Errorf("CRD %s is not Established", name)
		}
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	for _, resource := range []string{"externalsecrets", "secretstores", "clustersecretstores"} {
		gvr := schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: resource}
		if _, err := dyn.Resource(gvr).List(context.Background(), metav1.ListOptions{}); err != nil {
			t.Errorf("listing %s: %v", gvr, err)
		}
	}
}

func listDeployments(t *testing.T, env *harness.Env, namespace string) []string {
	t.Helper()
	c, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.AppsV1().Deployments(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range list.Items {
		names = append(names, d.Name)
	}
	return names
}

func deploymentReplicas(t *testing.T, env *harness.Env, namespace, name string) int32 {
	t.Helper()
	c, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.AppsV1().Deployments(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// markDeploymentsAvailable writes the status a deployment controller would
// once every replica runs.
func markDeploymentsAvailable(t *testing.T, env *harness.Env, namespace string) {
	t.Helper()
	c, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.AppsV1().Deployments(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list.Items {
		n := int32(1)
		if d.Spec.Replicas != nil {
			n = *d.Spec.Replicas
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation,
			Replicas:           n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}},
		}
		if _, err := c.AppsV1().Deployments(namespace).UpdateStatus(context.Background(), &d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// helmReleaseSecrets lists the Secrets in which Helm's storage driver keeps
// the release's revisions.
func helmReleaseSecrets(t *testing.T, env *harness.Env, namespace, release string) []string {
	t.Helper()
	c, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.CoreV1().Secrets(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm,name=" + release})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list.Items {
		names = append(names, s.Name)
	}
	return names
}
