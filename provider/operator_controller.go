package provider

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"k8s.io/utils/ptr"

	"github.com/esosync/pulumi-esosync/provider/internal/helm"
)

var (
	_ infer.CustomCheck[OperatorArgs]                 = Operator{}
	_ infer.CustomDiff[OperatorArgs, OperatorState]   = Operator{}
	_ infer.CustomCreate[OperatorArgs, OperatorState] = Operator{}
	_ infer.CustomUpdate[OperatorArgs, OperatorState] = Operator{}
	_ infer.CustomRead[OperatorArgs, OperatorState]   = Operator{}
	_ infer.CustomDelete[OperatorState]               = Operator{}
)

// Diff compares the old state with the new inputs, both with defaults
// applied. Namespace and release name replace the release (deleting first:
// two ESO releases cannot coexist, their webhook configurations clash).
// How long to wait is not a change.
func (Operator) Diff(_ context.Context, req infer.DiffRequest[OperatorArgs, OperatorState]) (infer.DiffResponse, error) {
	olds, news := operatorDefaults(req.State.OperatorArgs), operatorDefaults(req.Inputs)
	diff := map[string]p.PropertyDiff{}
	compare := func(field string, old, new any, replaces bool) {
		if reflect.DeepEqual(normalize(old), normalize(new)) {
			return
		}
		kind := p.Update
		if replaces {
			kind = p.UpdateReplace
		}
		diff[field] = p.PropertyDiff{Kind: kind, InputDiff: true}
	}
	o, n := olds.request(), news.request()
	compare("namespace", o.Namespace, n.Namespace, true)
	compare("releaseName", o.ReleaseName, n.ReleaseName, true)
	compare("chartVersion", o.Version, n.Version, false)
	compare("chart", o.Chart, n.Chart, false)
	compare("crds", o.CRDs, n.CRDs, false)
	compare("values", o.Values, n.Values, false)
	compare("installCrds", o.InstallCRDs, n.InstallCRDs, false)
	compare("waitForController", o.WaitForESO, n.WaitForESO, false)
	return diffResponse(diff), nil
}

// Create installs the release. A preview only reports the defaults.
func (Operator) Create(ctx context.Context, req infer.CreateRequest[OperatorArgs]) (infer.CreateResponse[OperatorState], error) {
	in := operatorDefaults(req.Inputs)
	id := operatorID(in)
	state := OperatorState{OperatorArgs: in}
	if req.DryRun {
		return infer.CreateResponse[OperatorState]{ID: id, Output: state}, nil
	}
	err := deployOperator(ctx, &state, nil)
	switch {
	case err != nil && state.Revision > 0:
		// The release exists (failed, or not ready in time): Pulumi must
		// track it so the next update can repair or remove it.
		return infer.CreateResponse[OperatorState]{ID: id, Output: state}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
	case err != nil:
		return infer.CreateResponse[OperatorState]{}, err
	}
	return infer.CreateResponse[OperatorState]{ID: id, Output: state}, nil
}

// Update upgrades the release to the new chart, version and values. When
// only how to wait changed, the release is left alone.
func (Operator) Update(ctx context.Context, req infer.UpdateRequest[OperatorArgs, OperatorState]) (infer.UpdateResponse[OperatorState], error) {
	in, old := operatorDefaults(req.Inputs), operatorDefaults(req.State.OperatorArgs)
	state := req.State
	state.OperatorArgs = in
	if req.DryRun {
		return infer.UpdateResponse[OperatorState]{Output: state}, nil
	}
	err := deployOperator(ctx, &state, &old)
	switch {
	case err != nil && (state.Revision != req.State.Revision || !helm.ChartChanged(old.request(), in.request())):
		// Helm recorded a new revision, or only the waits failed: record
		// the new inputs as not yet initialized, and the engine calls
		// Update again on the next run to finish the job.
		return infer.UpdateResponse[OperatorState]{Output: state}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
	case err != nil:
		// Nothing changed in the cluster: keep the old state so the next run
		// sees the same diff and tries again.
		return infer.UpdateResponse[OperatorState]{Output: req.State}, err
	}
	return infer.UpdateResponse[OperatorState]{Output: state}, nil
}

// deployOperator installs or upgrades the release (helm.Deploy) within
// customTimeouts, or the deprecated timeout input, and records what Helm
// reports in state, also when the deploy then fails.
func deployOperator(ctx context.Context, state *OperatorState, old *OperatorArgs) error {
	cluster, err := engineOf(ctx).Cluster()
	if err != nil {
		return err
	}
	wctx, cancel := waitContext(ctx, state.Timeout, defaultOperatorTimeout)
	defer cancel()
	var oldReq *helm.DeployRequest
	if old != nil {
		oldReq = ptr.To(old.request())
	}
	res, err := helm.Deploy(wctx, cluster, p.GetLogger(ctx), state.request(), oldReq)
	if res.Revision > 0 {
		state.Status, state.AppVersion, state.Revision = res.Status, res.AppVersion, res.Revision
		state.ChartVersion = ptr.To(res.ChartVersion)
	}
	state.CRDNames = res.CRDNames
	state.ControllerAvailable, state.WebhookAvailable = res.ControllerAvailable, res.WebhookAvailable
	return err
}

// request is the deploy the inputs ask for (defaults applied).
func (in OperatorArgs) request() helm.DeployRequest {
	return helm.DeployRequest{Namespace: ptr.Deref(in.Namespace, ""), ReleaseName: ptr.Deref(in.ReleaseName, ""),
		Chart: ptr.Deref(in.Chart, ""), Version: ptr.Deref(in.ChartVersion, ""), CRDs: ptr.Deref(in.CRDs, ""), Values: in.Values,
		InstallCRDs: ptr.Deref(in.InstallCRDs, true), WaitForESO: ptr.Deref(in.WaitForController, true)}
}

// Read refreshes the state from the Helm release; given only an ID
// (`pulumi import`) it rebuilds the inputs. A release that is gone makes
// the resource gone. Anything else that stops the release from being read
// (cluster unreachable, credentials expired) keeps the last known state
// with a warning, so a refresh does not drop a release that exists.
func (Operator) Read(ctx context.Context, req infer.ReadRequest[OperatorArgs, OperatorState]) (infer.ReadResponse[OperatorArgs, OperatorState], error) {
	resp := infer.ReadResponse[OperatorArgs, OperatorState]{ID: req.ID, Inputs: req.Inputs, State: req.State}
	namespace, name, ok := strings.Cut(req.ID, "/")
	if !ok || namespace == "" || name == "" {
		return resp, fmt.Errorf("esosync:index:Operator ID %q is not <namespace>/<releaseName>", req.ID)
	}
	logger := p.GetLogger(ctx)
	cluster, err := engineOf(ctx).Cluster()
	if err != nil {
		logger.Warningf("cannot read Helm release %s: %v; keeping the last known state", req.ID, err)
		return resp, nil
	}
	rel, err := helm.New(cluster.REST, logger.Debugf).Status(namespace, name)
	if errors.Is(err, helm.ErrReleaseNotFound) {
		return infer.ReadResponse[OperatorArgs, OperatorState]{}, nil
	}
	if err != nil {
		logger.Warningf("cannot read Helm release %s: %v; keeping the last known state", req.ID, err)
		return resp, nil
	}
	imported := req.State.Namespace == nil && req.Inputs.Namespace == nil
	state := req.State
	state.Namespace, state.ReleaseName = ptr.To(namespace), ptr.To(name)
	state.OperatorArgs = operatorDefaults(state.OperatorArgs)
	state.Status, state.AppVersion, state.Revision = rel.Status, rel.AppVersion, rel.Revision
	if imported || helm.IsRepoURL(ptr.Deref(state.Chart, "")) {
		// A local chart's version follows the chart on disk, not the release.
		state.ChartVersion = ptr.To(rel.ChartVersion)
	}
	state.Values = helm.UserValues(rel.Config, state.Values, ptr.Deref(state.InstallCRDs, true), ptr.Deref(state.CRDs, ""))
	controllerErr, webhookErr := helm.CheckESO(ctx, cluster, rel)
	state.ControllerAvailable, state.WebhookAvailable = controllerErr == nil, webhookErr == nil
	if controllerErr != nil {
		logger.Warningf("ESO's controller is not available: %v", controllerErr)
	}
	if webhookErr != nil {
		logger.Warningf("ESO's webhook: %v; applying ExternalSecrets and SecretStores fails until it answers", webhookErr)
	}
	inputs := req.Inputs
	if imported {
		inputs = OperatorArgs{Namespace: state.Namespace, ReleaseName: state.ReleaseName}
	}
	inputs.ChartVersion = state.ChartVersion
	inputs.Values = state.Values
	return infer.ReadResponse[OperatorArgs, OperatorState]{ID: req.ID, Inputs: inputs, State: state}, nil
}

// Delete uninstalls the release within customTimeouts (or the deprecated
// timeout input). CRDs and the namespace stay: see the resource description.
func (Operator) Delete(ctx context.Context, req infer.DeleteRequest[OperatorState]) (infer.DeleteResponse, error) {
	in := operatorDefaults(req.State.OperatorArgs)
	cluster, err := engineOf(ctx).Cluster()
	if err != nil {
		return infer.DeleteResponse{}, err
	}
	wctx, cancel := waitContext(ctx, in.Timeout, defaultOperatorTimeout)
	defer cancel()
	return infer.DeleteResponse{}, helm.New(cluster.REST, p.GetLogger(ctx).Debugf).Uninstall(wctx, *in.Namespace, *in.ReleaseName)
}

// operatorDefaults fills in what Check would, for state written before a
// default existed and for callers that skip Check.
func operatorDefaults(in OperatorArgs) OperatorArgs {
	in.Namespace = ptr.To(ptr.Deref(in.Namespace, defaultOperatorNamespace))
	in.ReleaseName = ptr.To(ptr.Deref(in.ReleaseName, defaultOperatorRelease))
	in.Chart = ptr.To(ptr.Deref(in.Chart, defaultOperatorChartRepo))
	in.ChartVersion = ptr.To(ptr.Deref(in.ChartVersion, defaultOperatorVersion))
	in.InstallCRDs = ptr.To(ptr.Deref(in.InstallCRDs, true))
	in.WaitForController = ptr.To(ptr.Deref(in.WaitForController, true))
	in.Timeout = ptr.To(ptr.Deref(in.Timeout, defaultOperatorTimeout))
	return in
}

func operatorID(in OperatorArgs) string {
	in = operatorDefaults(in)
	return *in.Namespace + "/" + *in.ReleaseName
}
