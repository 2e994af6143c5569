package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/esosync/pulumi-esosync/provider/internal/reconcile"
)

var (
	_ infer.CustomCheck[ExternalSecretSetArgs]                          = ExternalSecretSet{}
	_ infer.CustomDiff[ExternalSecretSetArgs, ExternalSecretSetState]   = ExternalSecretSet{}
	_ infer.CustomCreate[ExternalSecretSetArgs, ExternalSecretSetState] = ExternalSecretSet{}
	_ infer.CustomUpdate[ExternalSecretSetArgs, ExternalSecretSetState] = ExternalSecretSet{}
	_ infer.CustomRead[ExternalSecretSetArgs, ExternalSecretSetState]   = ExternalSecretSet{}
	_ infer.CustomDelete[ExternalSecretSetState]                        = ExternalSecretSet{}
)

// Check validates the set's inputs and every item's, with the item's path
// (`items["app"].data[0].remoteRef.key`) in each failure. In provider mode
// it records every item's remote keys, so batching backends read the
// whole set's keys at once.
func (ExternalSecretSet) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[ExternalSecretSetArgs], error) {
	args, failures, err := infer.DefaultCheck[ExternalSecretSetArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 {
		return infer.CheckResponse[ExternalSecretSetArgs]{Inputs: args, Failures: failures}, err
	}
	pr := newProblems(req.NewInputs)
	checkExternalSecretSet(pr, args)
	if !pr.failed() {
		for _, name := range slices.Sorted(maps.Keys(args.Items)) {
			item := args.itemArgs(name, args.Items[name])
			checkStoreRef(ctx, pr.under(itemPath(name)), item)
			if args.mode() == reconcile.ModeProvider {
				noteDemand(ctx, item)
			}
		}
	}
	return infer.CheckResponse[ExternalSecretSetArgs]{Inputs: args, Failures: pr.failures}, nil
}

// checkExternalSecretSet checks the set's own inputs, then each item as an
// ExternalSecret, without touching the cluster.
func checkExternalSecretSet(pr *problems, args ExternalSecretSetArgs) {
	pr.namespace("namespace", args.Namespace)
	pr.refreshInterval(args.RefreshInterval)
	enum(pr, "sync", args.Sync)
	if args.Store != nil {
		pr.storeRef(*args.Store)
	}
	if len(args.Items) == 0 && pr.known("items") {
		pr.add("items", "declare at least one item")
	}
	targets := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(args.Items)) {
		it := args.Items[name]
		at := itemPath(name)
		pr.dnsName(at, name, true)
		sub := pr.under(at + ".")
		switch {
		case it.Store != nil:
			sub.storeRef(*it.Store)
		case args.Store == nil:
			sub.add("store", "set store here or on the set")
		}
		sub.refreshInterval(it.RefreshInterval)
		checkExternalSecretSpec(sub, args.itemArgs(name, it))
		target := ptr.Deref(ptr.Deref(it.Target, ExternalSecretTarget{}).Name, name)
		if other, ok := targets[target]; ok {
			sub.add("target.name", "Secret %q is already the target of item %q; two ExternalSecrets would overwrite each other", target, other)
		}
		targets[target] = name
	}
}

// itemPath is the property path of an item, e.g. `items["app"]`.
func itemPath(name string) string { return fmt.Sprintf("items[%q]", name) }

// mode is the set's sync mode with its default.
func (s ExternalSecretSetArgs) mode() reconcile.Mode {
	return reconcile.Mode(ptr.Deref(s.Sync, SyncController))
}

// itemArgs is item name of the set as an ExternalSecret's inputs: the
// item's own fields, the set's for those it leaves out.
func (s ExternalSecretSetArgs) itemArgs(name string, it ExternalSecretSetItem) ExternalSecretArgs {
	ri := it.RefreshInterval
	if ri == nil {
		ri = s.RefreshInterval
	}
	return ExternalSecretArgs{
		Name: ptr.To(name), Namespace: s.Namespace, Store: ptr.Deref(it.Store, ptr.Deref(s.Store, StoreRef{})),
		RefreshInterval: ri, Sync: s.Sync, Target: it.Target, Data: it.Data, DataFrom: it.DataFrom,
		Labels: merged(s.Labels, it.Labels), Annotations: merged(s.Annotations, it.Annotations),
	}
}

// merged is base with over on top; nil when both are empty.
func merged(base, over map[string]string) map[string]string {
	if len(base) == 0 && len(over) == 0 {
		return nil
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}

// itemHash identifies what an item writes to the cluster, so a change of
// the set's defaults counts as a change of every item that uses them.
func (s ExternalSecretSetArgs) itemHash(name, namespace string) string {
	it, ok := s.Items[name]
	if !ok {
		return ""
	}
	return reconcile.HashJSON(s.itemArgs(name, it).withDefaults().object(name, namespace))
}

// Create writes every item's ExternalSecret and makes its Secret current.
// Items that fail are reported by name; those that exist stay in the
// state, so the next `up` retries only the others.
func (ExternalSecretSet) Create(ctx context.Context, req infer.CreateRequest[ExternalSecretSetArgs]) (infer.CreateResponse[ExternalSecretSetState], error) {
	ns := ptr.Deref(req.Inputs.Namespace, defaultNamespace(ctx))
	id := ns + "/" + req.Name
	st := ExternalSecretSetState{ExternalSecretSetArgs: req.Inputs}
	if req.DryRun {
		st.ExternalSecretSetOutputs = previewSet(req.Inputs, ns)
		return infer.CreateResponse[ExternalSecretSetState]{ID: id, Output: st}, nil
	}
	wctx, cancel := waitContext(ctx, nil, defaultSetWait)
	defer cancel()
	var plan []setStep
	for _, name := range slices.Sorted(maps.Keys(req.Inputs.Items)) {
		plan = append(plan, setStep{name: name, create: true})
	}
	results := runSet(wctx, req.Inputs, ns, plan, nil)
	out, err := collectSet(req.Inputs, nil, results)
	st.ExternalSecretSetOutputs = out
	return infer.CreateResponse[ExternalSecretSetState]{ID: id, Output: st}, err
}

// Update syncs only what changed: added items are created, removed ones
// deleted, and items whose ExternalSecret changed or that are not ready
// (refresh found drift) synced again. The others are not touched.
func (ExternalSecretSet) Update(ctx context.Context, req infer.UpdateRequest[ExternalSecretSetArgs, ExternalSecretSetState]) (infer.UpdateResponse[ExternalSecretSetState], error) {
	ns, _, _ := strings.Cut(req.ID, "/")
	st := ExternalSecretSetState{ExternalSecretSetArgs: req.Inputs, ExternalSecretSetOutputs: req.State.ExternalSecretSetOutputs}
	if req.DryRun {
		return infer.UpdateResponse[ExternalSecretSetState]{Output: st}, nil
	}
	wctx, cancel := waitContext(ctx, nil, defaultSetWait)
	defer cancel()
	plan := planSet(req.State, req.Inputs, ns)
	results := runSet(wctx, req.Inputs, ns, plan, req.State.Statuses)
	out, err := collectSet(req.Inputs, req.State.Statuses, results)
	st.ExternalSecretSetOutputs = out
	return infer.UpdateResponse[ExternalSecretSetState]{Output: st}, err
}

// Diff names each item that `up` would touch (`items["app"]`) and does no
// I/O. A changed namespace replaces the set.
func (ExternalSecretSet) Diff(ctx context.Context, req infer.DiffRequest[ExternalSecretSetArgs, ExternalSecretSetState]) (infer.DiffResponse, error) {
	idNS, _, _ := strings.Cut(req.ID, "/")
	oldNS := ptr.Deref(req.State.Namespace, idNS)
	newNS := ptr.Deref(req.Inputs.Namespace, defaultNamespace(ctx))
	d := map[string]p.PropertyDiff{}
	if oldNS != newNS {
		d["namespace"] = p.PropertyDiff{Kind: p.UpdateReplace, InputDiff: true}
		return diffResponse(d), nil
	}
	for _, step := range planSet(req.State, req.Inputs, oldNS) {
		kind := p.Update
		switch {
		case step.remove:
			kind = p.Delete
		case step.create:
			kind = p.Add
		}
		d[itemPath(step.name)] = p.PropertyDiff{Kind: kind, InputDiff: step.changed}
	}
	return diffResponse(d), nil
}

// setStep is what `up` does with one item.
type setStep struct {
	name    string
	create  bool // not in the cluster yet
	remove  bool // no longer declared
	changed bool // its ExternalSecret changed (otherwise: it drifted)
}

// planSet compares the state with the inputs item by item.
func planSet(old ExternalSecretSetState, news ExternalSecretSetArgs, ns string) []setStep {
	var plan []setStep
	for _, name := range slices.Sorted(maps.Keys(news.Items)) {
		status, exists := old.Statuses[name]
		changed := old.ExternalSecretSetArgs.itemHash(name, ns) != news.itemHash(name, ns)
		switch {
		case !exists:
			plan = append(plan, setStep{name: name, create: true, changed: true})
		case changed || (news.mode() != reconcile.ModeNone && !status.Ready):
			plan = append(plan, setStep{name: name, changed: changed})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old.Statuses)) {
		if _, ok := news.Items[name]; !ok {
			plan = append(plan, setStep{name: name, remove: true, changed: true})
		}
	}
	return plan
}

// Read refreshes every item that exists, O(1) API calls each, and names
// the items that drifted.
func (ExternalSecretSet) Read(ctx context.Context, req infer.ReadRequest[ExternalSecretSetArgs, ExternalSecretSetState]) (infer.ReadResponse[ExternalSecretSetArgs, ExternalSecretSetState], error) {
	resp := infer.ReadResponse[ExternalSecretSetArgs, ExternalSecretSetState]{ID: req.ID, Inputs: req.Inputs, State: req.State}
	if req.State.Items == nil && req.State.Statuses == nil {
		return resp, fmt.Errorf("ExternalSecretSet %s cannot be imported: import its ExternalSecrets one by one "+
			"(esosync:index:ExternalSecret, ID namespace/name) or declare the set and let `up` create it", req.ID)
	}
	ns, _, _ := strings.Cut(req.ID, "/")
	var plan []setStep
	for _, name := range slices.Sorted(maps.Keys(req.State.Statuses)) {
		plan = append(plan, setStep{name: name})
	}
	results := observeSet(ctx, req.State.ExternalSecretSetArgs.mode(), ns, plan, req.State.Statuses)
	out, _ := collectSet(req.State.ExternalSecretSetArgs, req.State.Statuses, results)
	if drifted := driftedItems(out); len(drifted) > 0 {
		p.GetLogger(ctx).Warningf("ExternalSecretSet %s: %d of %d items are not ready: %s", req.ID, len(drifted),
			len(req.State.Items), listNames(drifted, 20))
	}
	resp.State.ExternalSecretSetOutputs = out
	return resp, nil
}

// driftedItems are the items that exist and are not ready.
func driftedItems(out ExternalSecretSetOutputs) []string {
	var names []string
	for _, name := range out.NotReady {
		if _, ok := out.Statuses[name]; ok {
			names = append(names, name)
		}
	}
	return names
}

// Delete removes every item's ExternalSecret and, under creationPolicy
// Owner, the Secret it owns.
func (ExternalSecretSet) Delete(ctx context.Context, req infer.DeleteRequest[ExternalSecretSetState]) (infer.DeleteResponse, error) {
	ns, _, _ := strings.Cut(req.ID, "/")
	names := slices.Sorted(maps.Keys(req.State.Statuses))
	for name := range req.State.Items {
		if _, ok := req.State.Statuses[name]; !ok {
			names = append(names, name) // a create that failed half way may have left it
		}
	}
	var plan []setStep
	for _, name := range names {
		plan = append(plan, setStep{name: name, remove: true})
	}
	var failed []string
	for _, r := range runSet(ctx, req.State.ExternalSecretSetArgs, ns, plan, nil) {
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.name, r.err))
		}
	}
	if len(failed) > 0 {
		return infer.DeleteResponse{}, fmt.Errorf("deleting %d of %d items failed: %s", len(failed), len(names), listNames(failed, 10))
	}
	return infer.DeleteResponse{}, engineOf(ctx).ReleaseNamespace(ctx, ns)
}

// WireDependencies says the statuses follow from every input.
func (ExternalSecretSet) WireDependencies(f infer.FieldSelector, args *ExternalSecretSetArgs, state *ExternalSecretSetState) {
	wireMirrored(f, args, &state.ExternalSecretSetArgs)
	all := f.InputField(args)
	for _, out := range []any{&state.Statuses, &state.Ready, &state.NotReady} {
		f.OutputField(out).DependsOn(all)
	}
}

// previewSet is what a preview knows: the target Secrets' names.
func previewSet(args ExternalSecretSetArgs, ns string) ExternalSecretSetOutputs {
	out := ExternalSecretSetOutputs{Statuses: map[string]ExternalSecretStatus{}, NotReady: []string{}}
	for name, it := range args.Items {
		out.Statuses[name] = statusOf(reconcile.PreviewReport(args.itemArgs(name, it).object(name, ns)))
	}
	return out
}

// statusOf maps the engine's report of one item to its status.
func statusOf(r reconcile.Report) ExternalSecretStatus {
	return ExternalSecretStatus(outputsOf(r))
}

// reportOfStatus maps a status back to the engine's report.
func reportOfStatus(s ExternalSecretStatus) reconcile.Report {
	return reportOf(ExternalSecretOutputs(s))
}

// listNames joins names, at most limit of them.
func listNames(names []string, limit int) string {
	if len(names) <= limit {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s … and %d more", strings.Join(names[:limit], ", "), len(names)-limit)
}

// engineKey is an item's ExternalSecret in the cluster.
func engineKey(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
