package provider

import (
	"context"
	"fmt"
	"reflect"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// SecretStore is ESO's namespaced SecretStore.
type SecretStore struct{}

// SecretStoreArgs are the inputs of a SecretStore.
type SecretStoreArgs struct {
	Name           *string           `pulumi:"name,optional"`
	Namespace      *string           `pulumi:"namespace,optional"`
	Backend        StoreBackend      `pulumi:"backend"`
	Controller     *string           `pulumi:"controller,optional"`
	Labels         map[string]string `pulumi:"labels,optional"`
	Annotations    map[string]string `pulumi:"annotations,optional"`
	SkipValidation *bool             `pulumi:"skipValidation,optional"`
	WaitForReady   *bool             `pulumi:"waitForReady,optional"`
	Timeout        *string           `pulumi:"timeout,optional"`
}

// SecretStoreState is the state of a SecretStore.
type SecretStoreState struct {
	SecretStoreArgs
	StoreOutputs
}

// ClusterSecretStore is ESO's cluster-wide ClusterSecretStore.
type ClusterSecretStore struct{}

// ClusterSecretStoreArgs are the inputs of a ClusterSecretStore.
type ClusterSecretStoreArgs struct {
	Name                 *string           `pulumi:"name,optional"`
	Backend              StoreBackend      `pulumi:"backend"`
	CredentialsNamespace *string           `pulumi:"credentialsNamespace,optional"`
	Controller           *string           `pulumi:"controller,optional"`
	Labels               map[string]string `pulumi:"labels,optional"`
	Annotations          map[string]string `pulumi:"annotations,optional"`
	SkipValidation       *bool             `pulumi:"skipValidation,optional"`
	WaitForReady         *bool             `pulumi:"waitForReady,optional"`
	Timeout              *string           `pulumi:"timeout,optional"`
}

// ClusterSecretStoreState is the state of a ClusterSecretStore.
type ClusterSecretStoreState struct {
	ClusterSecretStoreArgs
	StoreOutputs
}

// Annotate documents SecretStore.
func (s *SecretStore) Annotate(a infer.Annotator) {
	a.Describe(s, "An External Secrets Operator SecretStore (namespaced). At create and update esosync logs in to the backend "+
		"with the store's credentials and checks access to its mount, failing with the backend's reason. "+
		"Credentials given as `value` go into a Secret esosync manages next to the store.")
}

// Annotate documents SecretStoreArgs.
func (s *SecretStoreArgs) Annotate(a infer.Annotator) {
	a.Describe(&s.Name, "Name of the SecretStore. Defaults to the Pulumi resource name.")
	a.Describe(&s.Namespace, "Namespace of the SecretStore. Defaults to the provider's namespace.")
	a.Describe(&s.Backend, "The backend (ESO's `spec.provider`).")
	a.Describe(&s.Controller, "ESO controller class that should handle this store.")
	a.Describe(&s.Labels, "Labels for the SecretStore resource.")
	a.Describe(&s.Annotations, "Annotations for the SecretStore resource.")
	a.Describe(&s.SkipValidation, "Do not log in to the backend at create/update (for backends only reachable from inside the cluster).")
	a.Describe(&s.WaitForReady, waitForReadyDoc)
	a.Describe(&s.Timeout, storeTimeoutDoc)
}

// Annotate documents ClusterSecretStore.
func (s *ClusterSecretStore) Annotate(a infer.Annotator) {
	a.Describe(s, "An External Secrets Operator ClusterSecretStore, usable by ExternalSecrets in every namespace. "+
		"Validated against the backend at create and update. Credentials given as `value` go into a Secret "+
		"esosync manages in `credentialsNamespace`.")
}

// Annotate documents ClusterSecretStoreArgs.
func (s *ClusterSecretStoreArgs) Annotate(a infer.Annotator) {
	a.Describe(&s.Name, "Name of the ClusterSecretStore. Defaults to the Pulumi resource name.")
	a.Describe(&s.Backend, "The backend (ESO's `spec.provider`).")
	a.Describe(&s.CredentialsNamespace, "Namespace of the Secret esosync writes for `value` credentials. "+
		"Defaults to the provider's namespace.")
	a.Describe(&s.Controller, "ESO controller class that should handle this store.")
	a.Describe(&s.Labels, "Labels for the ClusterSecretStore resource.")
	a.Describe(&s.Annotations, "Annotations for the ClusterSecretStore resource.")
	a.Describe(&s.SkipValidation, "Do not log in to the backend at create/update.")
	a.Describe(&s.WaitForReady, waitForReadyDoc)
	a.Describe(&s.Timeout, storeTimeoutDoc)
}

const (
	waitForReadyDoc = "Wait until the External Secrets Operator controller in the cluster reports the store Ready (reason `Valid`), " +
		"and fail with ESO's message otherwise, as `sync: controller` (the default) relies on it. Default true; set false where no " +
		"ESO controller runs (only `sync: provider` ExternalSecrets)."
	storeTimeoutDoc = "How long to wait for ESO with `waitForReady`, as a Go duration. Default `2m`."
)

func (a SecretStoreArgs) inputs(ctx context.Context, name string) storeInputs {
	ns := ptrOr(a.Namespace, defaultNamespace(ctx))
	return storeInputs{kind: SecretStoreKind, name: ptrOr(a.Name, name), namespace: ns, credNamespace: ns,
		backend: a.Backend, controller: a.Controller, labels: a.Labels, annotations: a.Annotations, skipValidation: ptrOr(a.SkipValidation, false),
		waitForReady: ptrOr(a.WaitForReady, true), timeout: ptrOr(a.Timeout, "2m"), esc: escSourceOf(ctx)}
}

func (a ClusterSecretStoreArgs) inputs(ctx context.Context, name string) storeInputs {
	return storeInputs{kind: ClusterSecretStoreKind, name: ptrOr(a.Name, name), credNamespace: ptrOr(a.CredentialsNamespace, defaultNamespace(ctx)),
		backend: a.Backend, controller: a.Controller, labels: a.Labels, annotations: a.Annotations, skipValidation: ptrOr(a.SkipValidation, false),
		waitForReady: ptrOr(a.WaitForReady, true), timeout: ptrOr(a.Timeout, "2m"), esc: escSourceOf(ctx)}
}

// Check validates the inputs without contacting the cluster.
func (SecretStore) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[SecretStoreArgs], error) {
	args, failures, err := infer.DefaultCheck[SecretStoreArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 {
		return infer.CheckResponse[SecretStoreArgs]{Inputs: args, Failures: failures}, err
	}
	pr := newProblems(req.NewInputs)
	pr.namespace("namespace", args.Namespace)
	pr.duration("timeout", args.Timeout)
	pr.objectName(args.Name, req.Name)
	checkStore(pr, args.inputs(ctx, req.Name), false)
	return infer.CheckResponse[SecretStoreArgs]{Inputs: args, Failures: pr.failures}, nil
}

// Check validates the inputs without contacting the cluster.
func (ClusterSecretStore) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[ClusterSecretStoreArgs], error) {
	args, failures, err := infer.DefaultCheck[ClusterSecretStoreArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 {
		return infer.CheckResponse[ClusterSecretStoreArgs]{Inputs: args, Failures: failures}, err
	}
	pr := newProblems(req.NewInputs)
	pr.namespace("credentialsNamespace", args.CredentialsNamespace)
	pr.duration("timeout", args.Timeout)
	pr.objectName(args.Name, req.Name)
	checkStore(pr, args.inputs(ctx, req.Name), true)
	return infer.CheckResponse[ClusterSecretStoreArgs]{Inputs: args, Failures: pr.failures}, nil
}

// Create validates the store against its backend and writes it.
func (SecretStore) Create(ctx context.Context, req infer.CreateRequest[SecretStoreArgs]) (infer.CreateResponse[SecretStoreState], error) {
	s := req.Inputs.inputs(ctx, req.Name)
	st := SecretStoreState{SecretStoreArgs: req.Inputs}
	out, err := createStore(ctx, s, req.DryRun)
	st.StoreOutputs = out
	return infer.CreateResponse[SecretStoreState]{ID: s.describe(), Output: st}, err
}

// Create validates the store against its backend and writes it.
func (ClusterSecretStore) Create(ctx context.Context, req infer.CreateRequest[ClusterSecretStoreArgs]) (infer.CreateResponse[ClusterSecretStoreState], error) {
	s := req.Inputs.inputs(ctx, req.Name)
	st := ClusterSecretStoreState{ClusterSecretStoreArgs: req.Inputs}
	out, err := createStore(ctx, s, req.DryRun)
	st.StoreOutputs = out
	return infer.CreateResponse[ClusterSecretStoreState]{ID: s.describe(), Output: st}, err
}

func createStore(ctx context.Context, s storeInputs, dryRun bool) (StoreOutputs, error) {
	if dryRun {
		spec, creds, sourcesHash, err := s.spec(ctx)
		return s.outputs(spec, creds, sourcesHash), err
	}
	cluster, err := clusterOf(ctx)
	if err != nil {
		return StoreOutputs{}, err
	}
	return s.apply(ctx, cluster, true)
}

// Update rewrites the store and its credentials, validating them first.
func (SecretStore) Update(ctx context.Context, req infer.UpdateRequest[SecretStoreArgs, SecretStoreState]) (infer.UpdateResponse[SecretStoreState], error) {
	out, err := updateStore(ctx, req.Inputs.inputs(ctx, req.State.Ref.Name), req.DryRun)
	if err != nil {
		return infer.UpdateResponse[SecretStoreState]{Output: req.State}, err
	}
	return infer.UpdateResponse[SecretStoreState]{Output: SecretStoreState{SecretStoreArgs: req.Inputs, StoreOutputs: out}}, nil
}

// Update rewrites the store and its credentials, validating them first.
func (ClusterSecretStore) Update(ctx context.Context, req infer.UpdateRequest[ClusterSecretStoreArgs, ClusterSecretStoreState]) (infer.UpdateResponse[ClusterSecretStoreState], error) {
	out, err := updateStore(ctx, req.Inputs.inputs(ctx, req.State.Ref.Name), req.DryRun)
	if err != nil {
		return infer.UpdateResponse[ClusterSecretStoreState]{Output: req.State}, err
	}
	return infer.UpdateResponse[ClusterSecretStoreState]{Output: ClusterSecretStoreState{ClusterSecretStoreArgs: req.Inputs, StoreOutputs: out}}, nil
}

func updateStore(ctx context.Context, s storeInputs, dryRun bool) (StoreOutputs, error) {
	if dryRun {
		spec, creds, sourcesHash, err := s.spec(ctx)
		return s.outputs(spec, creds, sourcesHash), err
	}
	cluster, err := clusterOf(ctx)
	if err != nil {
		return StoreOutputs{}, err
	}
	return s.apply(ctx, cluster, false)
}

// Diff replaces on a name or namespace change and updates when the inputs
// changed or the cluster drifted from them (spec or credentials edited).
func (SecretStore) Diff(ctx context.Context, req infer.DiffRequest[SecretStoreArgs, SecretStoreState]) (infer.DiffResponse, error) {
	s := req.Inputs.inputs(ctx, req.State.Ref.Name)
	olds := req.State.SecretStoreArgs.inputs(ctx, req.State.Ref.Name)
	return diffStore(ctx, req.State.SecretStoreArgs, req.Inputs, s, olds, req.State.StoreOutputs)
}

// Diff replaces on a name change and updates when the inputs changed or the
// cluster drifted from them.
func (ClusterSecretStore) Diff(ctx context.Context, req infer.DiffRequest[ClusterSecretStoreArgs, ClusterSecretStoreState]) (infer.DiffResponse, error) {
	s := req.Inputs.inputs(ctx, req.State.Ref.Name)
	olds := req.State.ClusterSecretStoreArgs.inputs(ctx, req.State.Ref.Name)
	return diffStore(ctx, req.State.ClusterSecretStoreArgs, req.Inputs, s, olds, req.State.StoreOutputs)
}

func diffStore(ctx context.Context, oldArgs, newArgs any, s, olds storeInputs, st StoreOutputs) (infer.DiffResponse, error) {
	d := diffFields(oldArgs, newArgs, "name", "namespace")
	if _, named := d["name"]; !named && s.name != olds.name {
		d["name"] = p.PropertyDiff{Kind: p.UpdateReplace}
	}
	if s.namespace != olds.namespace {
		d["namespace"] = p.PropertyDiff{Kind: p.UpdateReplace}
	}
	spec, creds, sourcesHash, err := s.spec(ctx)
	if err != nil {
		return infer.DiffResponse{}, err
	}
	if sourcesHash != st.SourcesHash {
		d["credentialSourcesHash"] = p.PropertyDiff{Kind: p.Update}
	}
	if hashJSON(spec) != st.SpecHash {
		if _, ok := d["backend"]; !ok {
			d["backend"] = p.PropertyDiff{Kind: p.Update}
		}
	}
	if hashCreds(creds) != st.CredentialsHash {
		d["credentialsHash"] = p.PropertyDiff{Kind: p.Update}
	}
	return infer.DiffResponse{HasChanges: len(d) > 0, DetailedDiff: d, DeleteBeforeReplace: true}, nil
}

// Read reports drift: the CR's spec or managed credentials edited out of
// band, or the CR deleted (empty ID). Transient errors keep the state.
func (SecretStore) Read(ctx context.Context, req infer.ReadRequest[SecretStoreArgs, SecretStoreState]) (infer.ReadResponse[SecretStoreArgs, SecretStoreState], error) {
	s := req.State.SecretStoreArgs.inputs(ctx, req.State.Ref.Name)
	if req.State.Ref.Namespace != nil {
		s.namespace, s.credNamespace = *req.State.Ref.Namespace, *req.State.Ref.Namespace
	}
	out, found := readStore(ctx, s, req.State.StoreOutputs)
	st := req.State
	st.StoreOutputs = out
	return infer.ReadResponse[SecretStoreArgs, SecretStoreState]{ID: idIf(found, req.ID), Inputs: req.Inputs, State: st}, nil
}

// Read reports drift: the CR's spec or managed credentials edited out of
// band, or the CR deleted (empty ID). Transient errors keep the state.
func (ClusterSecretStore) Read(ctx context.Context, req infer.ReadRequest[ClusterSecretStoreArgs, ClusterSecretStoreState]) (infer.ReadResponse[ClusterSecretStoreArgs, ClusterSecretStoreState], error) {
	s := req.State.ClusterSecretStoreArgs.inputs(ctx, req.State.Ref.Name)
	out, found := readStore(ctx, s, req.State.StoreOutputs)
	st := req.State
	st.StoreOutputs = out
	return infer.ReadResponse[ClusterSecretStoreArgs, ClusterSecretStoreState]{ID: idIf(found, req.ID), Inputs: req.Inputs, State: st}, nil
}

func readStore(ctx context.Context, s storeInputs, prev StoreOutputs) (StoreOutputs, bool) {
	cluster, err := clusterOf(ctx)
	if err != nil {
		p.GetLogger(ctx).Warningf("refresh of %s %s skipped: %v", s.kind, s.describe(), err)
		return prev, true
	}
	out, found, err := s.read(ctx, cluster, prev)
	if err != nil {
		p.GetLogger(ctx).Warningf("refresh of %s %s kept the previous state: %v", s.kind, s.describe(), err)
		return prev, true
	}
	return out, found
}

// Delete removes the store CR and the credentials Secret esosync manages.
func (SecretStore) Delete(ctx context.Context, req infer.DeleteRequest[SecretStoreState]) (infer.DeleteResponse, error) {
	s := req.State.SecretStoreArgs.inputs(ctx, req.State.Ref.Name)
	if req.State.Ref.Namespace != nil {
		s.namespace, s.credNamespace = *req.State.Ref.Namespace, *req.State.Ref.Namespace
	}
	return infer.DeleteResponse{}, deleteStore(ctx, s)
}

// Delete removes the store CR and the credentials Secret esosync manages.
func (ClusterSecretStore) Delete(ctx context.Context, req infer.DeleteRequest[ClusterSecretStoreState]) (infer.DeleteResponse, error) {
	return infer.DeleteResponse{}, deleteStore(ctx, req.State.ClusterSecretStoreArgs.inputs(ctx, req.State.Ref.Name))
}

func deleteStore(ctx context.Context, s storeInputs) error {
	cluster, err := clusterOf(ctx)
	if err != nil {
		return err
	}
	return s.delete(ctx, cluster)
}

// clusterOf returns the provider's connected cluster.
func clusterOf(ctx context.Context) (*kube.Cluster, error) {
	return infer.GetConfig[Config](ctx).Cluster().Get()
}

// defaultNamespace is the provider's default namespace without connecting.
func defaultNamespace(ctx context.Context) string {
	cfg := infer.GetConfig[Config](ctx)
	if cfg.Namespace != nil && *cfg.Namespace != "" {
		return *cfg.Namespace
	}
	if c, err := cfg.Cluster().Get(); err == nil {
		return c.Namespace
	}
	return "default"
}

func idIf(found bool, id string) string {
	if found {
		return id
	}
	return ""
}

// diffFields compares two input structs field by field (by their pulumi
// tags); fields listed in replace force a replacement.
func diffFields(olds, news any, replace ...string) map[string]p.PropertyDiff {
	d := map[string]p.PropertyDiff{}
	ov, nv := reflect.ValueOf(olds), reflect.ValueOf(news)
	t := ov.Type()
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("pulumi")
		if tag == "" {
			continue
		}
		name := tag
		if j := indexByte(tag, ','); j >= 0 {
			name = tag[:j]
		}
		if reflect.DeepEqual(normalize(ov.Field(i).Interface()), normalize(nv.Field(i).Interface())) {
			continue
		}
		kind := p.Update
		for _, r := range replace {
			if r == name {
				kind = p.UpdateReplace
			}
		}
		d[name] = p.PropertyDiff{Kind: kind, InputDiff: true}
	}
	return d
}

// normalize treats nil and empty maps and slices alike.
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice:
		if rv.Len() == 0 {
			return nil
		}
	}
	return v
}

func indexByte(s string, c byte) int {
	for i := range len(s) {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// isNoMatch reports that the API server does not serve the kind (ESO's
// CRDs are not installed): the object cannot exist.
func isNoMatch(err error) bool { return meta.IsNoMatchError(err) }

// crdHint explains a missing CRD.
func crdHint(err error) error {
	if isNoMatch(err) {
		return fmt.Errorf("%w (are External Secrets Operator's CRDs installed? add an esosync.Operator and dependsOn it)", err)
	}
	return err
}
