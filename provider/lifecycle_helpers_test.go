package provider_test

import (
	"context"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/integration"
	presource "github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// testResource drives one resource through the in-process provider server the
// way the Pulumi engine does.
type testResource struct {
	t      *testing.T
	s      integration.Server
	urn    string
	inputs property.Map
	id     string
	state  property.Map
}

func urnOf(s string) presource.URN { return presource.URN(s) }

func newResource(t *testing.T, s integration.Server, typ, name string, inputs map[string]any) *testResource {
	if _, set := inputs["waitForReady"]; !set && (typ == "SecretStore" || typ == "ClusterSecretStore") {
		// No ESO controller runs in this package: nothing would report the store Ready.
		inputs["waitForReady"] = false
	}
	return &testResource{t: t, s: s, urn: string(urn(typ, name)), inputs: props(inputs)}
}

// check runs Check and fails the test on validation failures.
func (r *testResource) check(inputs property.Map) property.Map {
	r.t.Helper()
	resp, err := r.s.Check(p.CheckRequest{Urn: urnOf(r.urn), Inputs: inputs})
	if err != nil {
		r.t.Fatalf("Check: %v", err)
	}
	if len(resp.Failures) > 0 {
		r.t.Fatalf("Check failures: %+v", resp.Failures)
	}
	return resp.Inputs
}

func (r *testResource) create() error {
	r.t.Helper()
	r.inputs = r.check(r.inputs)
	newOperation(r.t, r.s) // each step stands for a pulumi operation, i.e. a new provider session
	resp, err := r.s.Create(p.CreateRequest{Urn: urnOf(r.urn), Properties: r.inputs})
	if err == nil {
		r.id, r.state = resp.ID, resp.Properties
	}
	return err
}

func (r *testResource) mustCreate() {
	r.t.Helper()
	if err := r.create(); err != nil {
		r.t.Fatalf("Create %s: %v", r.urn, err)
	}
}

// read refreshes the state and returns the ID the provider reported.
func (r *testResource) read() string {
	r.t.Helper()
	newOperation(r.t, r.s)
	resp, err := r.s.Read(p.ReadRequest{ID: r.id, Urn: urnOf(r.urn), Properties: r.state, Inputs: r.inputs})
	if err != nil {
		r.t.Fatalf("Read: %v", err)
	}
	if resp.ID != "" {
		r.state = resp.Properties
	}
	return resp.ID
}

func (r *testResource) diff(inputs property.Map) p.DiffResponse {
	r.t.Helper()
	resp, err := r.s.Diff(p.DiffRequest{ID: r.id, Urn: urnOf(r.urn), State: r.state, Inputs: r.check(inputs), OldInputs: r.inputs})
	if err != nil {
		r.t.Fatalf("Diff: %v", err)
	}
	return resp
}

func (r *testResource) update(inputs property.Map) error {
	r.t.Helper()
	inputs = r.check(inputs)
	newOperation(r.t, r.s)
	resp, err := r.s.Update(p.UpdateRequest{ID: r.id, Urn: urnOf(r.urn), State: r.state, Inputs: inputs, OldInputs: r.inputs})
	if err == nil {
		r.inputs, r.state = inputs, resp.Properties
	}
	return err
}

func (r *testResource) mustUpdate(inputs property.Map) {
	r.t.Helper()
	if err := r.update(inputs); err != nil {
		r.t.Fatalf("Update %s: %v", r.urn, err)
	}
}

func (r *testResource) delete() {
	r.t.Helper()
	if err := r.s.Delete(p.DeleteRequest{ID: r.id, Urn: urnOf(r.urn), Properties: r.state, OldInputs: r.inputs}); err != nil {
		r.t.Fatalf("Delete %s: %v", r.urn, err)
	}
}

func (r *testResource) str(key string) string {
	v := r.state.Get(key)
	if v.IsString() {
		return v.AsString()
	}
	return ""
}

func (r *testResource) boolean(key string) bool {
	v := r.state.Get(key)
	return v.IsBool() && v.AsBool()
}

// configured returns a provider server configured for the shared test bed.
func configured(t *testing.T) (integration.Server, *harness.Env) {
	t.Helper()
	env := harness.Shared(t)
	s := newServer(t)
	if err := s.Configure(config(map[string]string{"kubeconfig": env.Kubeconfig})); err != nil {
		t.Fatal(err)
	}
	return s, env
}

func clientset(t *testing.T, env *harness.Env) *kubernetes.Clientset {
	t.Helper()
	c, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func namespace(t *testing.T, env *harness.Env, name string) string {
	t.Helper()
	_, err := clientset(t, env).CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return name
}

func rootVault(t *testing.T, env *harness.Env) *vaultapi.Client {
	t.Helper()
	c, err := env.VaultClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func putKV(t *testing.T, v *vaultapi.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := v.KVv2("secret").Put(context.Background(), path, data); err != nil {
		t.Fatal(err)
	}
}

// ensureESOCRDs installs ESO's CRDs from the module's bundle (idempotent)
// and waits until they are established.
func ensureESOCRDs(t *testing.T, env *harness.Env) {
	t.Helper()
	if err := env.InstallESOCRDs(context.Background()); err != nil {
		t.Fatal(err)
	}
}
