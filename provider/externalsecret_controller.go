package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/esosync/pulumi-esosync/provider/internal/reconcile"
)

var (
	_ infer.CustomCheck[ExternalSecretArgs]                       = ExternalSecret{}
	_ infer.CustomDiff[ExternalSecretArgs, ExternalSecretState]   = ExternalSecret{}
	_ infer.CustomCreate[ExternalSecretArgs, ExternalSecretState] = ExternalSecret{}
	_ infer.CustomUpdate[ExternalSecretArgs, ExternalSecretState] = ExternalSecret{}
	_ infer.CustomRead[ExternalSecretArgs, ExternalSecretState]   = ExternalSecret{}
	_ infer.CustomDelete[ExternalSecretState]                     = ExternalSecret{}
)

// Check validates every input, with the field path in each failure,
// without touching the cluster. In provider mode it tells the session
// which remote keys this ExternalSecret will read, so batching backends
// read the whole deploy's keys at once.
func (ExternalSecret) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[ExternalSecretArgs], error) {
	args, failures, err := infer.DefaultCheck[ExternalSecretArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 {
		return infer.CheckResponse[ExternalSecretArgs]{Inputs: args, Failures: failures}, err
	}
	pr := newProblems(req.NewInputs)
	checkExternalSecret(pr, args, req.Name)
	if len(pr.failures) == 0 {
		checkStoreRef(ctx, pr, args)
	}
	if len(pr.failures) == 0 && args.mode() == reconcile.ModeProvider {
		noteDemand(ctx, args)
	}
	return infer.CheckResponse[ExternalSecretArgs]{Inputs: args, Failures: pr.failures}, nil
}

// checkStoreRef fails when the cluster shows that store names a store of
// the other kind, or one that neither exists nor is created by this
// program. Unknown names (the store's outputs at preview) wait for `up`.
func checkStoreRef(ctx context.Context, pr *problems, a ExternalSecretArgs) {
	if a.Store.Name == "" || !pr.known("store") || !pr.known("namespace") {
		return
	}
	ns := ptr.Deref(a.Namespace, defaultNamespace(ctx))
	if problem := engineOf(ctx).CheckStoreRef(ctx, a.Store.Kind, ns, a.Store.Name); problem != nil {
		pr.add(problem.Field, "%s", problem.Message)
	}
}

// noteDemand records the remote keys a at its store will read. Pinned
// versions are read one by one and are left out.
func noteDemand(ctx context.Context, a ExternalSecretArgs) {
	if a.Store.Name == "" {
		return // not known yet at preview
	}
	ns := ptr.Deref(a.Namespace, defaultNamespace(ctx))
	if a.Store.Kind == ClusterSecretStoreKind {
		ns = ""
	}
	var keys []string
	for _, d := range a.Data {
		if d.RemoteRef.Version == nil && d.RemoteRef.Key != "" {
			keys = append(keys, d.RemoteRef.Key)
		}
	}
	for _, d := range a.DataFrom {
		if d.Extract != nil && d.Extract.Version == nil && d.Extract.Key != "" {
			keys = append(keys, d.Extract.Key)
		}
	}
	if len(keys) > 0 {
		engineOf(ctx).Session().NoteDemand(reconcile.StoreID(a.Store.Kind, ns, a.Store.Name), keys...)
	}
}

// Create writes the ExternalSecret and makes its target Secret current.
func (ExternalSecret) Create(ctx context.Context, req infer.CreateRequest[ExternalSecretArgs]) (infer.CreateResponse[ExternalSecretState], error) {
	es := req.Inputs.object(req.Name, defaultNamespace(ctx))
	id := es.Namespace + "/" + es.Name
	st := ExternalSecretState{ExternalSecretArgs: req.Inputs}
	if req.DryRun {
		st.ExternalSecretOutputs = outputsOf(reconcile.PreviewReport(es))
		return infer.CreateResponse[ExternalSecretState]{ID: id, Output: st}, nil
	}
	wctx, cancel := waitContext(ctx, req.Inputs.Timeout, defaultSyncWait)
	defer cancel()
	report, err := engineOf(ctx).ApplyExternalSecret(wctx, p.GetLogger(ctx), es, req.Inputs.mode(), true)
	st.ExternalSecretOutputs = outputsOf(report)
	if reconcile.IsNotReady(err) {
		return infer.CreateResponse[ExternalSecretState]{ID: id, Output: st}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
	}
	if err != nil {
		return infer.CreateResponse[ExternalSecretState]{}, err
	}
	if err := restartTargets(ctx, req.Inputs, es, &st, ""); err != nil {
		return infer.CreateResponse[ExternalSecretState]{ID: id, Output: st}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
	}
	return infer.CreateResponse[ExternalSecretState]{ID: id, Output: st}, nil
}

// Update rewrites the ExternalSecret and makes its target current again.
func (ExternalSecret) Update(ctx context.Context, req infer.UpdateRequest[ExternalSecretArgs, ExternalSecretState]) (infer.UpdateResponse[ExternalSecretState], error) {
	ns, name, _ := strings.Cut(req.ID, "/")
	es := req.Inputs.object(name, ns)
	st := ExternalSecretState{ExternalSecretArgs: req.Inputs, ExternalSecretOutputs: req.State.ExternalSecretOutputs, RolloutPending: req.State.RolloutPending}
	if req.DryRun {
		return infer.UpdateResponse[ExternalSecretState]{Output: st}, nil
	}
	wctx, cancel := waitContext(ctx, req.Inputs.Timeout, defaultSyncWait)
	defer cancel()
	report, err := engineOf(ctx).ApplyExternalSecret(wctx, p.GetLogger(ctx), es, req.Inputs.mode(), false)
	if reconcile.IsNotReady(err) {
		// Which targets are behind is known again after a sync that succeeds.
		st.ExternalSecretOutputs, st.RolloutPending = outputsOf(report), nil
		return infer.UpdateResponse[ExternalSecretState]{Output: st}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
	}
	if err != nil {
		return infer.UpdateResponse[ExternalSecretState]{}, err
	}
	st.ExternalSecretOutputs = outputsOf(report)
	if err := restartTargets(ctx, req.Inputs, es, &st, req.State.DataHash); err != nil {
		return infer.UpdateResponse[ExternalSecretState]{Output: st}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
	}
	return infer.UpdateResponse[ExternalSecretState]{Output: st}, nil
}

// restartTargets rolls the rollout restart targets to the content the sync
// left (out.DataHash; prevHash is the state's, "" on a create) and records
// in out which targets are still behind.
func restartTargets(ctx context.Context, args ExternalSecretArgs, es *esv1.ExternalSecret, out *ExternalSecretState, prevHash string) error {
	targets := args.rolloutTargets(es.Namespace)
	key := types.NamespacedName{Namespace: es.Namespace, Name: es.Name}
	res, err := engineOf(ctx).Rollout(ctx, reconcile.RolloutRequest{ExternalSecret: key, Targets: targets, Hash: out.DataHash,
		ContentChanged: prevHash == "" || prevHash != out.DataHash, Creating: prevHash == ""})
	log := p.GetLogger(ctx)
	for _, t := range res.Rolled {
		log.Infof("restarted %s for the new content of ExternalSecret %s", t, key)
	}
	for _, t := range res.Missing {
		log.Infof("rollout restart target %s does not exist yet; created later, it starts with the current Secret", t)
	}
	out.RolloutPending = nil // omitted when nothing is pending, as in states written before rollouts existed
	if err != nil {
		// What was not rolled is still behind; the next `up` tries again.
		for _, t := range targets {
			if !slices.Contains(res.Rolled, t.String()) && !slices.Contains(res.Missing, t.String()) {
				out.RolloutPending = append(out.RolloutPending, t.String())
			}
		}
		return fmt.Errorf("ExternalSecret %s: %w", key, err)
	}
	return nil
}

// rolloutTargets are the inputs' rollout restart targets, namespaces
// defaulted to the ExternalSecret's.
func (a ExternalSecretArgs) rolloutTargets(namespace string) []reconcile.RolloutTarget {
	var out []reconcile.RolloutTarget
	for _, t := range a.RolloutRestartTargets {
		out = append(out, reconcile.RolloutTarget{Kind: string(t.Kind), Namespace: ptr.Deref(t.Namespace, namespace), Name: t.Name})
	}
	return out
}

// Read reports drift (see reconcile.Engine.ObserveExternalSecret). Given
// only an ID (`pulumi import`), it rebuilds the inputs from the cluster.
// When nothing can be concluded it keeps the state and warns.
func (ExternalSecret) Read(ctx context.Context, req infer.ReadRequest[ExternalSecretArgs, ExternalSecretState]) (infer.ReadResponse[ExternalSecretArgs, ExternalSecretState], error) {
	resp := infer.ReadResponse[ExternalSecretArgs, ExternalSecretState]{ID: req.ID, Inputs: req.Inputs, State: req.State}
	ns, name, _ := strings.Cut(req.ID, "/")
	imported := req.State.Store.Name == ""
	obs, err := engineOf(ctx).ObserveExternalSecret(ctx, p.GetLogger(ctx), types.NamespacedName{Namespace: ns, Name: name},
		req.State.mode(), reportOf(req.State.ExternalSecretOutputs))
	switch {
	case err != nil && imported:
		return resp, err
	case err != nil:
		p.GetLogger(ctx).Warningf("refresh of ExternalSecret %s kept the previous state: %v", req.ID, err)
		return resp, nil
	case !obs.Found:
		return infer.ReadResponse[ExternalSecretArgs, ExternalSecretState]{}, nil
	}
	if imported {
		resp.Inputs = externalSecretArgsOf(obs.Live)
		resp.State.ExternalSecretArgs = resp.Inputs
	}
	resp.State.ExternalSecretOutputs = outputsOf(obs.Report)
	resp.State.RolloutPending = checkRollout(ctx, resp.Inputs, types.NamespacedName{Namespace: ns, Name: name}, obs.Report.DataHash)
	return resp, nil
}

// checkRollout returns the rollout restart targets whose pod template
// carries another content's hash, warning about them and about targets
// that do not exist.
func checkRollout(ctx context.Context, args ExternalSecretArgs, key types.NamespacedName, hash string) []string {
	log := p.GetLogger(ctx)
	res, err := engineOf(ctx).CheckRollout(ctx, key, args.rolloutTargets(key.Namespace), hash)
	if err != nil {
		log.Warningf("refresh of ExternalSecret %s could not check its rollout restart targets: %v", key, err)
	}
	for _, t := range res.Missing {
		log.Warningf("ExternalSecret %s: rollout restart target %s does not exist", key, t)
	}
	if len(res.Behind) > 0 {
		log.Warningf("ExternalSecret %s: %s started with other content than the Secret holds; the next `pulumi up` restarts them",
			key, strings.Join(res.Behind, ", "))
	}
	return res.Behind
}

// Diff compares the state with the inputs, defaults applied to both, and
// does no I/O. An ExternalSecret that refresh found not ready updates:
// that is how `pulumi up` heals drift.
func (ExternalSecret) Diff(ctx context.Context, req infer.DiffRequest[ExternalSecretArgs, ExternalSecretState]) (infer.DiffResponse, error) {
	olds, news := req.State.ExternalSecretArgs.withDefaults(), req.Inputs.withDefaults()
	d := diffFields(olds, news, []string{"name", "namespace"}, "timeout", "target", "data", "dataFrom")
	// The spec's parts compare as ESO sees them, defaults applied, so a
	// default the schema declares is no change on an older state.
	o, n := olds.object("", "").Spec, news.object("", "").Spec
	for field, parts := range map[string][2]any{"target": {o.Target, n.Target}, "data": {o.Data, n.Data}, "dataFrom": {o.DataFrom, n.DataFrom}} {
		if reconcile.HashJSON(parts[0]) != reconcile.HashJSON(parts[1]) {
			d[field] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
		}
	}
	oldNS := ptr.Deref(req.State.Namespace, "")
	if req.Inputs.Namespace == nil && oldNS != "" && oldNS != defaultNamespace(ctx) {
		d["namespace"] = p.PropertyDiff{Kind: p.UpdateReplace}
	}
	if req.Inputs.mode() != reconcile.ModeNone && !req.State.Ready {
		d["ready"] = p.PropertyDiff{Kind: p.Update}
	}
	if len(req.State.RolloutPending) > 0 {
		d["rolloutPending"] = p.PropertyDiff{Kind: p.Update}
	}
	return diffResponse(d), nil
}

// withDefaults is a with the schema's defaults of its top-level inputs,
// so a state written before a default existed compares equal.
func (a ExternalSecretArgs) withDefaults() ExternalSecretArgs {
	a.Sync = ptr.To(ptr.Deref(a.Sync, SyncController))
	a.RefreshInterval = ptr.To(ptr.Deref(a.RefreshInterval, defaultRefreshInterval))
	return a
}

// Delete removes the ExternalSecret and, under creationPolicy Owner, the
// target Secret it owns.
func (ExternalSecret) Delete(ctx context.Context, req infer.DeleteRequest[ExternalSecretState]) (infer.DeleteResponse, error) {
	ns, name, _ := strings.Cut(req.ID, "/")
	return infer.DeleteResponse{}, engineOf(ctx).DeleteExternalSecret(ctx, types.NamespacedName{Namespace: ns, Name: name})
}

// outputsOf maps the engine's report to outputs.
func outputsOf(r reconcile.Report) ExternalSecretOutputs {
	return ExternalSecretOutputs{SecretName: r.SecretName, Keys: r.Keys, DataHash: r.DataHash, RemoteVersions: r.RemoteVersions,
		SyncedAt: r.SyncedAt, Ready: r.Ready, Reason: r.Reason, Message: r.Message}
}

// reportOf maps outputs back to the engine's report (the previous state).
func reportOf(o ExternalSecretOutputs) reconcile.Report {
	return reconcile.Report{SecretName: o.SecretName, Keys: o.Keys, DataHash: o.DataHash, RemoteVersions: o.RemoteVersions,
		SyncedAt: o.SyncedAt, Status: reconcile.Status{Ready: o.Ready, Reason: o.Reason, Message: o.Message}}
}

// WireDependencies says which inputs each output follows from, so an
// update preview keeps what an input change cannot affect. secretName is
// also known at a create preview when target.name is given: infer decodes
// an unknown input as nil, so a set target.name is a known one. Other
// outputs need the cluster or the backend.
func (ExternalSecret) WireDependencies(f infer.FieldSelector, args *ExternalSecretArgs, state *ExternalSecretState) {
	wireMirrored(f, args, &state.ExternalSecretArgs)
	all := f.InputField(args)
	for _, out := range []any{&state.Keys, &state.DataHash, &state.RemoteVersions, &state.SyncedAt, &state.Ready, &state.Reason, &state.Message, &state.RolloutPending} {
		f.OutputField(out).DependsOn(all)
	}
	secretName := f.OutputField(&state.SecretName)
	secretName.DependsOn(f.InputField(&args.Name), f.InputField(&args.Target))
	if t := args.Target; t != nil && ptr.Deref(t.Name, "") != "" {
		secretName.AlwaysKnown()
	}
}
