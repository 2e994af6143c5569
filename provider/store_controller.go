package provider

import (
	"context"
	"strings"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"k8s.io/utils/ptr"

	"github.com/esosync/pulumi-esosync/provider/internal/reconcile"
)

var (
	_ infer.CustomCheck[SecretStoreArgs]                                  = SecretStore{}
	_ infer.CustomDiff[SecretStoreArgs, SecretStoreState]                 = SecretStore{}
	_ infer.CustomCreate[SecretStoreArgs, SecretStoreState]               = SecretStore{}
	_ infer.CustomUpdate[SecretStoreArgs, SecretStoreState]               = SecretStore{}
	_ infer.CustomRead[SecretStoreArgs, SecretStoreState]                 = SecretStore{}
	_ infer.CustomDelete[SecretStoreState]                                = SecretStore{}
	_ infer.CustomCheck[ClusterSecretStoreArgs]                           = ClusterSecretStore{}
	_ infer.CustomDiff[ClusterSecretStoreArgs, ClusterSecretStoreState]   = ClusterSecretStore{}
	_ infer.CustomCreate[ClusterSecretStoreArgs, ClusterSecretStoreState] = ClusterSecretStore{}
	_ infer.CustomUpdate[ClusterSecretStoreArgs, ClusterSecretStoreState] = ClusterSecretStore{}
	_ infer.CustomRead[ClusterSecretStoreArgs, ClusterSecretStoreState]   = ClusterSecretStore{}
	_ infer.CustomDelete[ClusterSecretStoreState]                         = ClusterSecretStore{}
)

// storeArgs is what both store kinds' inputs offer the shared controller.
type storeArgs interface {
	SecretStoreArgs | ClusterSecretStoreArgs
	// inputs resolves names and defaults; name is the Kubernetes name.
	inputs(ctx context.Context, name string) storeInputs
	// check validates the kind's own inputs.
	check(pr *problems, resourceName string)
	// withDefaults is the inputs with the schema's top-level defaults.
	withDefaults() any
	// imported rebuilds inputs (of the same type) from a store in the cluster.
	imported(store esv1.GenericStore) any
}

func (a SecretStoreArgs) inputs(ctx context.Context, name string) storeInputs {
	ns := ptr.Deref(a.Namespace, defaultNamespace(ctx))
	return storeInputs{kind: SecretStoreKind, name: ptr.Deref(a.Name, name), namespace: ns, credNamespace: ns,
		backend: a.Backend, controller: a.Controller, labels: a.Labels, annotations: a.Annotations,
		skipValidation: ptr.Deref(a.SkipValidation, false), waitForReady: ptr.Deref(a.WaitForReady, true), timeout: a.Timeout}
}

func (a ClusterSecretStoreArgs) inputs(ctx context.Context, name string) storeInputs {
	return storeInputs{kind: ClusterSecretStoreKind, name: ptr.Deref(a.Name, name), credNamespace: ptr.Deref(a.CredentialsNamespace, defaultNamespace(ctx)),
		backend: a.Backend, controller: a.Controller, labels: a.Labels, annotations: a.Annotations,
		skipValidation: ptr.Deref(a.SkipValidation, false), waitForReady: ptr.Deref(a.WaitForReady, true), timeout: a.Timeout}
}

func (a SecretStoreArgs) check(pr *problems, resourceName string) {
	pr.namespace("namespace", a.Namespace)
	pr.duration("timeout", a.Timeout)
	pr.objectName(a.Name, resourceName)
	checkStore(pr, a.Backend)
}

func (a ClusterSecretStoreArgs) check(pr *problems, resourceName string) {
	pr.namespace("credentialsNamespace", a.CredentialsNamespace)
	pr.duration("timeout", a.Timeout)
	pr.objectName(a.Name, resourceName)
	checkStore(pr, a.Backend)
}

func (a SecretStoreArgs) withDefaults() any {
	a.SkipValidation, a.WaitForReady = ptr.To(ptr.Deref(a.SkipValidation, false)), ptr.To(ptr.Deref(a.WaitForReady, true))
	return a
}

func (a ClusterSecretStoreArgs) withDefaults() any {
	a.SkipValidation, a.WaitForReady = ptr.To(ptr.Deref(a.SkipValidation, false)), ptr.To(ptr.Deref(a.WaitForReady, true))
	return a
}

func (SecretStoreArgs) imported(store esv1.GenericStore) any {
	return SecretStoreArgs{Name: ptr.To(store.GetName()), Namespace: ptr.To(store.GetNamespace()), Backend: backendOf(store.GetSpec()),
		Controller: nonEmpty(store.GetSpec().Controller), Labels: userLabels(store.GetLabels()), Annotations: userAnnotations(store.GetAnnotations())}
}

func (ClusterSecretStoreArgs) imported(store esv1.GenericStore) any {
	return ClusterSecretStoreArgs{Name: ptr.To(store.GetName()), Backend: backendOf(store.GetSpec()),
		Controller: nonEmpty(store.GetSpec().Controller), Labels: userLabels(store.GetLabels()), Annotations: userAnnotations(store.GetAnnotations())}
}

// storeID is a store's Pulumi ID: namespace/name, or name.
func storeID(s storeInputs) string { return s.request().Describe() }

// checkStoreArgs is Check for both kinds.
func checkStoreArgs[A storeArgs](ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[A], error) {
	args, failures, err := infer.DefaultCheck[A](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 {
		return infer.CheckResponse[A]{Inputs: args, Failures: failures}, err
	}
	pr := newProblems(req.NewInputs)
	args.check(pr, req.Name)
	if len(pr.failures) == 0 && pr.known("name") && pr.known("namespace") {
		// ExternalSecrets of this program may name it before it exists.
		s := args.inputs(ctx, req.Name)
		engineOf(ctx).DeclareStore(s.kind, s.namespace, s.name)
	}
	return infer.CheckResponse[A]{Inputs: args, Failures: pr.failures}, nil
}

// applyStore creates (prev nil) or updates a store; a preview does no
// I/O, and an update's preview keeps the previous credential hashes (they
// are keyed in the cluster).
func applyStore(ctx context.Context, s storeInputs, prev *StoreOutputs, dryRun bool) (StoreOutputs, error) {
	req, create := s.request(), prev == nil
	if dryRun {
		out := storeOutputs(s, reconcile.PreviewStore(req))
		if prev != nil && out.CredentialsSecret != nil {
			out.CredentialsHash, out.SourcesHash = prev.CredentialsHash, prev.SourcesHash
		}
		return out, nil
	}
	wctx, cancel := waitContext(ctx, s.timeout, defaultStoreWait)
	defer cancel()
	report, err := engineOf(ctx).ApplyStore(wctx, p.GetLogger(ctx), req, create)
	return storeOutputs(s, report), err
}

// storeOutputs maps the engine's report to outputs.
func storeOutputs(s storeInputs, r reconcile.StoreReport) StoreOutputs {
	out := StoreOutputs{Ref: StoreRef{Kind: s.kind, Name: s.name}, SpecHash: r.SpecHash, CredentialsHash: r.CredentialsHash,
		SourcesHash: r.SourcesHash, CredentialsSecret: nonEmpty(r.CredentialsSecret)}
	if s.kind == SecretStoreKind {
		out.Ref.Namespace = ptr.To(s.namespace)
	}
	if !r.Ready {
		out.Ready, out.Reason, out.Message = ptr.To(false), ptr.To(r.Reason), ptr.To(r.Message)
	}
	return out
}

// storeReport maps outputs back to the engine's report (previous state).
func storeReport(o StoreOutputs) reconcile.StoreReport {
	return reconcile.StoreReport{SpecHash: o.SpecHash, CredentialsHash: o.CredentialsHash, SourcesHash: o.SourcesHash,
		CredentialsSecret: ptr.Deref(o.CredentialsSecret, ""), Status: reconcile.Status{Ready: ptr.Deref(o.Ready, true)}}
}

// diffStore replaces on a name or namespace change and updates when the
// inputs changed, or refresh found the cluster drifted from them (spec
// edited: its hash differs; credentials: not ready). It does no I/O.
func diffStore[A storeArgs](ctx context.Context, olds, news A, st StoreOutputs) infer.DiffResponse {
	d := diffFields(olds.withDefaults(), news.withDefaults(), []string{"name", "namespace"}, "timeout", "backend")
	s, old := news.inputs(ctx, st.Ref.Name), olds.inputs(ctx, st.Ref.Name)
	// The backend compares as the store ESO gets and the credentials it is
	// given, defaults applied, so a default the schema declares is no change.
	if sr, or := s.request(), old.request(); reconcile.HashJSON(sr.Spec) != reconcile.HashJSON(or.Spec) ||
		reconcile.HashJSON(sr.Credentials) != reconcile.HashJSON(or.Credentials) {
		d["backend"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if _, named := d["name"]; !named && s.name != old.name {
		d["name"] = p.PropertyDiff{Kind: p.UpdateReplace}
	}
	if s.namespace != old.namespace {
		d["namespace"] = p.PropertyDiff{Kind: p.UpdateReplace}
	}
	if _, ok := d["backend"]; !ok && reconcile.HashJSON(s.request().Spec) != st.SpecHash {
		d["backend"] = p.PropertyDiff{Kind: p.Update}
	}
	if !ptr.Deref(st.Ready, true) {
		d["ready"] = p.PropertyDiff{Kind: p.Update}
	}
	return diffResponse(d)
}

// readStore refreshes a store's outputs; given only an ID (`pulumi
// import`) it rebuilds the inputs from the cluster. When nothing can be
// concluded it keeps the state and warns. state assembles the kind's state.
func readStore[A storeArgs, S any](ctx context.Context, req infer.ReadRequest[A, S], args A, st StoreOutputs,
	state func(A, StoreOutputs) S) (infer.ReadResponse[A, S], error) {
	if st.Ref.Name == "" {
		return importStore(ctx, req.ID, args, state)
	}
	log := p.GetLogger(ctx)
	resp := infer.ReadResponse[A, S]{ID: req.ID, Inputs: req.Inputs, State: req.State}
	s := args.inputs(ctx, st.Ref.Name)
	if st.Ref.Namespace != nil {
		s.namespace, s.credNamespace = *st.Ref.Namespace, *st.Ref.Namespace
	}
	obs, err := engineOf(ctx).ObserveStore(ctx, log, s.request(), storeReport(st))
	switch {
	case err != nil:
		log.Warningf("refresh of %s %s kept the previous state: %v", s.kind, req.ID, err)
		return resp, nil
	case !obs.Found:
		return infer.ReadResponse[A, S]{}, nil
	}
	resp.State = state(args, storeOutputs(s, obs.Report))
	return resp, nil
}

// importStore adopts a store from the cluster by its ID: inputs and state
// are rebuilt from what the cluster holds.
func importStore[A storeArgs, S any](ctx context.Context, id string, args A, state func(A, StoreOutputs) S) (infer.ReadResponse[A, S], error) {
	kind, ns, name := SecretStoreKind, "", id
	if _, cluster := any(args).(ClusterSecretStoreArgs); cluster {
		kind = ClusterSecretStoreKind
	} else if n, rest, ok := strings.Cut(id, "/"); ok {
		ns, name = n, rest
	}
	live, err := engineOf(ctx).ReadStore(ctx, kind, ns, name)
	if err != nil || live == nil {
		return infer.ReadResponse[A, S]{}, err
	}
	imported := args.imported(live).(A)
	s := imported.inputs(ctx, name)
	if ns != "" {
		s.namespace, s.credNamespace = ns, ns
	}
	out := storeOutputs(s, reconcile.StoreReport{SpecHash: reconcile.HashJSON(*live.GetSpec()), Status: reconcile.Status{Ready: true}})
	return infer.ReadResponse[A, S]{ID: id, Inputs: imported, State: state(imported, out)}, nil
}

// deleteStore removes the store and its managed credentials Secret.
func deleteStore[A storeArgs](ctx context.Context, args A, st StoreOutputs) error {
	s := args.inputs(ctx, st.Ref.Name)
	if st.Ref.Namespace != nil {
		s.namespace, s.credNamespace = *st.Ref.Namespace, *st.Ref.Namespace
	}
	return engineOf(ctx).DeleteStore(ctx, s.request())
}

// Check validates the inputs without contacting the cluster.
func (SecretStore) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[SecretStoreArgs], error) {
	return checkStoreArgs[SecretStoreArgs](ctx, req)
}

// Check validates the inputs without contacting the cluster.
func (ClusterSecretStore) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[ClusterSecretStoreArgs], error) {
	return checkStoreArgs[ClusterSecretStoreArgs](ctx, req)
}

// Create validates the store against its backend and writes it.
func (SecretStore) Create(ctx context.Context, req infer.CreateRequest[SecretStoreArgs]) (infer.CreateResponse[SecretStoreState], error) {
	s := req.Inputs.inputs(ctx, req.Name)
	out, err := applyStore(ctx, s, nil, req.DryRun)
	return infer.CreateResponse[SecretStoreState]{ID: storeID(s), Output: SecretStoreState{req.Inputs, out}}, err
}

// Create validates the store against its backend and writes it.
func (ClusterSecretStore) Create(ctx context.Context, req infer.CreateRequest[ClusterSecretStoreArgs]) (infer.CreateResponse[ClusterSecretStoreState], error) {
	s := req.Inputs.inputs(ctx, req.Name)
	out, err := applyStore(ctx, s, nil, req.DryRun)
	return infer.CreateResponse[ClusterSecretStoreState]{ID: storeID(s), Output: ClusterSecretStoreState{req.Inputs, out}}, err
}

// Update rewrites the store and its credentials, validating them first.
func (SecretStore) Update(ctx context.Context, req infer.UpdateRequest[SecretStoreArgs, SecretStoreState]) (infer.UpdateResponse[SecretStoreState], error) {
	out, err := applyStore(ctx, req.Inputs.inputs(ctx, req.State.Ref.Name), &req.State.StoreOutputs, req.DryRun)
	if err != nil {
		return infer.UpdateResponse[SecretStoreState]{Output: req.State}, err
	}
	return infer.UpdateResponse[SecretStoreState]{Output: SecretStoreState{req.Inputs, out}}, nil
}

// Update rewrites the store and its credentials, validating them first.
func (ClusterSecretStore) Update(ctx context.Context, req infer.UpdateRequest[ClusterSecretStoreArgs, ClusterSecretStoreState]) (infer.UpdateResponse[ClusterSecretStoreState], error) {
	out, err := applyStore(ctx, req.Inputs.inputs(ctx, req.State.Ref.Name), &req.State.StoreOutputs, req.DryRun)
	if err != nil {
		return infer.UpdateResponse[ClusterSecretStoreState]{Output: req.State}, err
	}
	return infer.UpdateResponse[ClusterSecretStoreState]{Output: ClusterSecretStoreState{req.Inputs, out}}, nil
}

// Diff compares the state with the inputs (see diffStore).
func (SecretStore) Diff(ctx context.Context, req infer.DiffRequest[SecretStoreArgs, SecretStoreState]) (infer.DiffResponse, error) {
	return diffStore(ctx, req.State.SecretStoreArgs, req.Inputs, req.State.StoreOutputs), nil
}

// Diff compares the state with the inputs (see diffStore).
func (ClusterSecretStore) Diff(ctx context.Context, req infer.DiffRequest[ClusterSecretStoreArgs, ClusterSecretStoreState]) (infer.DiffResponse, error) {
	return diffStore(ctx, req.State.ClusterSecretStoreArgs, req.Inputs, req.State.StoreOutputs), nil
}

// Read reports drift, or adopts a store by ID (`pulumi import`).
func (SecretStore) Read(ctx context.Context, req infer.ReadRequest[SecretStoreArgs, SecretStoreState]) (infer.ReadResponse[SecretStoreArgs, SecretStoreState], error) {
	return readStore(ctx, req, req.State.SecretStoreArgs, req.State.StoreOutputs,
		func(a SecretStoreArgs, o StoreOutputs) SecretStoreState { return SecretStoreState{a, o} })
}

// Read reports drift, or adopts a store by ID (`pulumi import`).
func (ClusterSecretStore) Read(ctx context.Context, req infer.ReadRequest[ClusterSecretStoreArgs, ClusterSecretStoreState]) (infer.ReadResponse[ClusterSecretStoreArgs, ClusterSecretStoreState], error) {
	return readStore(ctx, req, req.State.ClusterSecretStoreArgs, req.State.StoreOutputs,
		func(a ClusterSecretStoreArgs, o StoreOutputs) ClusterSecretStoreState {
			return ClusterSecretStoreState{a, o}
		})
}

// Delete removes the store CR and the credentials Secret esosync manages.
func (SecretStore) Delete(ctx context.Context, req infer.DeleteRequest[SecretStoreState]) (infer.DeleteResponse, error) {
	return infer.DeleteResponse{}, deleteStore(ctx, req.State.SecretStoreArgs, req.State.StoreOutputs)
}

// Delete removes the store CR and the credentials Secret esosync manages.
func (ClusterSecretStore) Delete(ctx context.Context, req infer.DeleteRequest[ClusterSecretStoreState]) (infer.DeleteResponse, error) {
	return infer.DeleteResponse{}, deleteStore(ctx, req.State.ClusterSecretStoreArgs, req.State.StoreOutputs)
}

// wireStore says which inputs a store's outputs follow from: ref from its
// name and namespace (naming), the rest from every input (all). ref is also
// known at a create preview when every naming input is given: infer decodes
// an unknown input as nil, so a set one is a known one.
func wireStore(f infer.FieldSelector, all infer.InputField, out *StoreOutputs, naming ...**string) {
	for _, o := range []any{&out.CredentialsSecret, &out.SpecHash, &out.CredentialsHash, &out.SourcesHash, &out.Ready, &out.Reason, &out.Message} {
		f.OutputField(o).DependsOn(all)
	}
	ref := f.OutputField(&out.Ref)
	known := true
	for _, n := range naming {
		ref.DependsOn(f.InputField(n))
		known = known && ptr.Deref(*n, "") != ""
	}
	if known {
		ref.AlwaysKnown()
	}
}

// WireDependencies wires the outputs to the inputs they follow from (see wireStore).
func (SecretStore) WireDependencies(f infer.FieldSelector, args *SecretStoreArgs, state *SecretStoreState) {
	wireMirrored(f, args, &state.SecretStoreArgs)
	wireStore(f, f.InputField(args), &state.StoreOutputs, &args.Name, &args.Namespace)
}

// WireDependencies wires the outputs to the inputs they follow from (see wireStore).
func (ClusterSecretStore) WireDependencies(f infer.FieldSelector, args *ClusterSecretStoreArgs, state *ClusterSecretStoreState) {
	wireMirrored(f, args, &state.ClusterSecretStoreArgs)
	wireStore(f, f.InputField(args), &state.StoreOutputs, &args.Name)
}
