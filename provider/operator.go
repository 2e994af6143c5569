package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/esosync/pulumi-esosync/provider/internal/helm"
	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// Defaults of the Operator resource. The version is the ESO release the
// test bed proves (go.mod pins the same external-secrets module).
const (
	defaultOperatorNamespace = "external-secrets"
	defaultOperatorRelease   = "external-secrets"
	defaultOperatorVersion   = "0.20.4"
	defaultOperatorChartRepo = "https://charts.external-secrets.io"
	defaultOperatorTimeout   = "5m"

	// esoChartName is the chart's name in ESO's Helm repository.
	esoChartName = "external-secrets"
	// esoInstallCRDsValue is the chart value that makes ESO's released
	// chart template its CRDs.
	esoInstallCRDsValue = "installCRDs"
)

// esoCoreCRDs are the CRDs every esosync resource needs served before
// anything can use External Secrets Operator.
var esoCoreCRDs = []string{
	"clustersecretstores.external-secrets.io",
	"externalsecrets.external-secrets.io",
	"secretstores.external-secrets.io",
}

// Operator installs External Secrets Operator into the cluster as a Helm
// release, using Helm's Go SDK: no helm binary is needed, and `helm list`
// shows the release.
type Operator struct{}

// OperatorArgs are the Operator's inputs. Pointers are optional inputs;
// Check fills in their defaults.
type OperatorArgs struct {
	Namespace         *string        `pulumi:"namespace,optional" provider:"replaceOnChanges"`
	ReleaseName       *string        `pulumi:"releaseName,optional" provider:"replaceOnChanges"`
	Version           *string        `pulumi:"version,optional"`
	Chart             *string        `pulumi:"chart,optional"`
	CRDs              *string        `pulumi:"crds,optional"`
	Values            map[string]any `pulumi:"values,optional"`
	InstallCRDs       *bool          `pulumi:"installCrds,optional"`
	WaitForController *bool          `pulumi:"waitForController,optional"`
	Timeout           *string        `pulumi:"timeout,optional"`
}

// OperatorState is the Operator's inputs with their defaults applied, and
// what Helm reports about the release.
type OperatorState struct {
	OperatorArgs
	Status       string   `pulumi:"status"`
	ChartVersion string   `pulumi:"chartVersion"`
	AppVersion   string   `pulumi:"appVersion"`
	Revision     int      `pulumi:"revision"`
	CRDNames     []string `pulumi:"crdNames"`
	// ControllerAvailable and WebhookAvailable are ESO's readiness as last
	// observed (by create, update or refresh).
	// Optional: states written before they existed must still decode.
	ControllerAvailable bool `pulumi:"controllerAvailable,optional"`
	WebhookAvailable    bool `pulumi:"webhookAvailable,optional"`
}

// Annotate documents the resource.
func (o *Operator) Annotate(a infer.Annotator) {
	a.Describe(o, "Installs External Secrets Operator (ESO) as a Helm release with Helm's Go SDK (no helm binary needed; "+
		"`helm list` shows the release). Creating it installs the chart, makes sure ESO's CRDs are established and "+
		"actually served, and by default waits until the controller Deployments are Available, so SecretStores and "+
		"ExternalSecrets that depend on it can be created right away. Updating it upgrades the release; refresh reports "+
		"a release uninstalled, upgraded or reconfigured behind Pulumi's back.\n\n"+
		"Deleting it uninstalls the release but **keeps the CRDs**, as `helm uninstall` keeps a chart's `crds/`: deleting "+
		"a CRD deletes every object of that kind in the cluster, so removing them would silently delete every "+
		"ExternalSecret and SecretStore (and with them, depending on their deletion policy, the Secrets they own). "+
		"Delete them explicitly (`kubectl delete crd -l external-secrets.io/component=controller`) if that is what you want. "+
		"The namespace also stays.")
}

// Annotate documents the inputs.
func (o *OperatorArgs) Annotate(a infer.Annotator) {
	a.Describe(&o.Namespace, "Namespace to install the release into; created if missing (and kept on delete). "+
		"Changing it replaces the release.")
	a.SetDefault(&o.Namespace, defaultOperatorNamespace)
	a.Describe(&o.ReleaseName, "Helm release name. Changing it replaces the release.")
	a.SetDefault(&o.ReleaseName, defaultOperatorRelease)
	a.Describe(&o.Version, "Version of the external-secrets chart to install from the `chart` repository, e.g. `0.20.4` "+
		"(an exact version, not a range). Defaults to `"+defaultOperatorVersion+"`, the version esosync is tested with. "+
		"For a local `chart`, the chart's own Chart.yaml decides: the version defaults to it and, if set, must match it.")
	a.Describe(&o.Chart, "Where the chart comes from: a Helm repository URL (the `external-secrets` chart at `version` "+
		"is fetched from it, which needs network access), or the path of a local chart directory or packaged `.tgz`.")
	a.SetDefault(&o.Chart, defaultOperatorChartRepo)
	a.Describe(&o.CRDs, "Path or http(s) URL of a CRD bundle: one YAML stream of CustomResourceDefinitions, such as "+
		"`deploy/crds/bundle.yaml` in ESO's source tree. Needed when the chart itself carries no CRD manifests "+
		"(charts built from source do not; the released chart templates them). When set and `installCrds` is true, "+
		"esosync server-side applies the bundle (field manager `esosync`) before installing the chart and sets the "+
		"chart value `installCRDs: false`, so the CRDs are not also templated by the chart.")
	a.Describe(&o.Values, "Values for the chart, as in a values.yaml, e.g. `{ replicaCount: 2 }`. They are stored "+
		"in the Helm release and in Pulumi state: pass credentials as Pulumi secrets, or better, through Secrets the "+
		"chart references.")
	a.Describe(&o.InstallCRDs, "Install ESO's CRDs: from `crds` when set, otherwise from the chart itself (and it is an "+
		"error if the chart carries none). Set false when the CRDs are managed elsewhere; esosync then passes "+
		"`installCRDs: false` to the chart and still waits until they are served.")
	a.SetDefault(&o.InstallCRDs, true)
	a.Describe(&o.WaitForController, "Wait until the release's Deployments (controller, webhook, cert controller) are "+
		"Available and ESO's validating webhook answers admission requests before reporting success, so the first "+
		"SecretStore or ExternalSecret applied after it is admitted (ESO issue 6450: the webhook is registered before "+
		"its pod serves, and applies fail with connection refused until it does; the chart's readiness probe alone "+
		"delays that by about 20 s). Turn off only where pods cannot run, or to return early.")
	a.SetDefault(&o.WaitForController, true)
	a.Describe(&o.Timeout, "How long an install or upgrade, including the waits, may take, as a Go duration such "+
		"as `5m` or `90s`.")
	a.SetDefault(&o.Timeout, defaultOperatorTimeout)
}

// Annotate documents the outputs.
func (s *OperatorState) Annotate(a infer.Annotator) {
	a.Describe(&s.Status, "Helm's status of the release, e.g. `deployed` or `failed`.")
	a.Describe(&s.ChartVersion, "Version of the installed chart, from its Chart.yaml.")
	a.Describe(&s.AppVersion, "ESO version the installed chart deploys, e.g. `v0.20.4`.")
	a.Describe(&s.Revision, "Helm release revision: 1 after install, incremented by every upgrade.")
	a.Describe(&s.CRDNames, "Names of the ESO CRDs that were established and served when the release was installed or upgraded.")
	a.Describe(&s.ControllerAvailable, "Whether ESO's controller Deployment was Available when last observed (at create, "+
		"update or refresh). A refresh that finds it unavailable warns with the Deployment's reason.")
	a.Describe(&s.WebhookAvailable, "Whether ESO's validating webhook answered an admission request when last observed: "+
		"esosync sends it a server-side dry-run of an invalid ExternalSecret and expects the webhook's own denial (not "+
		"connection refused). True when the release has no webhook (`webhook.create: false`).")
}

// Check validates the inputs without contacting the cluster, applies the
// defaults, and resolves `version` for local charts. Values not known yet
// (preview before a dependency exists) are not validated.
func (Operator) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[OperatorArgs], error) {
	args, failures, err := infer.DefaultCheck[OperatorArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 {
		return infer.CheckResponse[OperatorArgs]{Inputs: args, Failures: failures}, err
	}
	c := operatorChecker{inputs: req.NewInputs}
	c.validate(&args)
	if len(c.failures) == 0 && c.known("namespace") && c.known("releaseName") {
		known := c.known("version") && (c.set("version") || c.known("chart"))
		rememberOperatorVersion(operatorID(args), args.Version, known)
	}
	return infer.CheckResponse[OperatorArgs]{Inputs: args, Failures: c.failures}, nil
}

// operatorChecker collects input problems, each naming its field.
type operatorChecker struct {
	inputs   property.Map
	failures []p.CheckFailure
}

func (c *operatorChecker) fail(field, format string, args ...any) {
	c.failures = append(c.failures, p.CheckFailure{Property: field, Reason: field + ": " + fmt.Sprintf(format, args...)})
}

// known reports whether the field's value is known (or absent).
func (c *operatorChecker) known(field string) bool {
	v, ok := c.inputs.GetOk(field)
	return !ok || !v.HasComputed()
}

// set reports whether the program gave the field a value, as opposed to
// leaving it to its default.
func (c *operatorChecker) set(field string) bool {
	v, ok := c.inputs.GetOk(field)
	return ok && !v.IsNull()
}

func (c *operatorChecker) validate(args *OperatorArgs) {
	if c.known("namespace") && args.Namespace != nil {
		if errs := validation.IsDNS1123Label(*args.Namespace); len(errs) > 0 {
			c.fail("namespace", "%q is not a valid namespace name: %s", *args.Namespace, strings.Join(errs, "; "))
		}
	}
	if c.known("releaseName") && args.ReleaseName != nil {
		if err := chartutil.ValidateReleaseName(*args.ReleaseName); err != nil {
			c.fail("releaseName", "%q is not a valid Helm release name: %v", *args.ReleaseName, err)
		}
	}
	versionOK := true
	if c.known("version") && c.set("version") {
		if msg := checkChartVersion(deref(args.Version)); msg != "" {
			c.fail("version", "%s", msg)
			versionOK = false
		}
	}
	if c.known("timeout") && args.Timeout != nil {
		if d, err := time.ParseDuration(*args.Timeout); err != nil {
			c.fail("timeout", "invalid duration %q (use a Go duration such as \"5m\" or \"90s\")", *args.Timeout)
		} else if d <= 0 {
			c.fail("timeout", "must be positive, not %q", *args.Timeout)
		}
	}

	// An empty crds means "none", so a program can pass a config value
	// that is unset for charts that carry their own CRDs.
	if c.known("crds") && args.CRDs != nil && *args.CRDs == "" {
		args.CRDs = nil
	}
	bundleGiven := false
	if c.known("crds") && args.CRDs != nil {
		bundleGiven = true
		c.checkBundle(*args.CRDs)
	} else if !c.known("crds") {
		bundleGiven = true // may well be set once known
	}

	if !c.known("chart") {
		return
	}
	ref := deref(args.Chart)
	switch {
	case ref == "":
		c.fail("chart", "must not be empty: give a Helm repository URL or a local chart path, or omit it for %s", defaultOperatorChartRepo)
		return
	case helm.IsRepoURL(ref):
		if !c.set("version") {
			args.Version = operatorPtr(defaultOperatorVersion)
		}
		return
	case strings.Contains(ref, "://"):
		c.fail("chart", "%q: only http(s) Helm repository URLs and local chart paths are supported", ref)
		return
	}
	ch, err := helm.LoadLocalChart(ref)
	if err != nil {
		c.fail("chart", "local chart %q: %v", ref, err)
		return
	}
	switch {
	case !c.set("version"):
		args.Version = operatorPtr(ch.Metadata.Version)
	case versionOK && c.known("version") && !sameChartVersion(*args.Version, ch.Metadata.Version):
		c.fail("version", "%q does not match the local chart's version %q: a local chart's Chart.yaml decides its version",
			*args.Version, ch.Metadata.Version)
	}
	if c.known("values") {
		values := operatorHelmValues(args.Values, args.InstallCRDs, args.CRDs)
		if err := helm.PruneMissingDependencies(ch, values); err != nil {
			c.fail("values", "%v", err)
		} else if !c.inputs.Get("values").HasSecrets() {
			// Schema errors can quote the offending value; a secret one is
			// left for Helm to reject at install rather than shown here.
			if err := helm.ValidateValues(ch, values); err != nil {
				c.fail("values", "the chart rejects them: %v", err)
			}
		}
	}
	if c.known("installCrds") && operatorBoolOr(args.InstallCRDs, true) && !bundleGiven && !helm.HasCRDs(ch) {
		c.fail("crds", "the chart at %q carries no CRD manifests: set crds to a CRD bundle (ESO's source tree has "+
			"deploy/crds/bundle.yaml), or set installCrds to false if the CRDs are installed separately", ref)
	}
}

// checkBundle validates a local CRD bundle at preview; a URL is only
// fetched when the release is installed.
func (c *operatorChecker) checkBundle(ref string) {
	switch {
	case ref == "":
		c.fail("crds", "must not be empty: give a CRD bundle path or URL, or omit it")
	case helm.IsRepoURL(ref):
	case strings.Contains(ref, "://"):
		c.fail("crds", "%q: only http(s) URLs and local paths are supported", ref)
	default:
		data, err := os.ReadFile(ref)
		if err != nil {
			c.fail("crds", "CRD bundle: %v", err)
			return
		}
		if _, err := helm.ParseCRDs(data); err != nil {
			c.fail("crds", "CRD bundle %q: %v", ref, err)
		}
	}
}

// checkChartVersion accepts exact versions only: Read reports the installed
// version back into `version`, which would drift forever from a range.
func checkChartVersion(v string) string {
	if v == "" {
		return "must not be empty: give an exact chart version such as " + defaultOperatorVersion + ", or omit it"
	}
	if _, err := semver.Parse(strings.TrimPrefix(v, "v")); err != nil {
		return fmt.Sprintf("%q is not an exact chart version such as %s: %v", v, defaultOperatorVersion, err)
	}
	return ""
}

func sameChartVersion(a, b string) bool {
	va, errA := semver.Parse(strings.TrimPrefix(a, "v"))
	vb, errB := semver.Parse(strings.TrimPrefix(b, "v"))
	if errA != nil || errB != nil {
		return a == b
	}
	return va.Equals(vb)
}

// requestedOperatorVersions carries each release's checked `version` from
// Check to Diff. pulumi-go-provider v1.5.0 strips every input called
// "version" before diffing (it mistakes it for the engine's provider
// version), so without this a change of `version` alone would never
// upgrade the release. The engine always checks a resource before diffing
// it, in the same provider process.
var requestedOperatorVersions sync.Map // operator ID -> requestedVersion

type requestedVersion struct {
	version string
	known   bool
}

func rememberOperatorVersion(id string, version *string, known bool) {
	requestedOperatorVersions.Store(id, requestedVersion{version: deref(version), known: known})
}

// Diff compares the old state with the new inputs, both with defaults
// applied. Namespace and release name replace the release (deleting first:
// two ESO releases cannot coexist, their webhook configurations clash).
func (Operator) Diff(_ context.Context, req infer.DiffRequest[OperatorArgs, OperatorState]) (infer.DiffResponse, error) {
	olds := operatorDefaults(req.State.OperatorArgs)
	news := operatorDefaults(req.Inputs)
	versionUnknown := false
	switch rv, ok := requestedOperatorVersions.Load(req.ID); {
	case req.Inputs.Version != nil:
		// A pulumi-go-provider that stops stripping `version` lands here.
	case ok && rv.(requestedVersion).known:
		news.Version = operatorPtr(rv.(requestedVersion).version)
	case ok:
		versionUnknown = true
	default:
		// Not checked in this process: nothing says the version changed.
		news.Version = olds.Version
	}

	diff := map[string]p.PropertyDiff{}
	replace := false
	compare := func(field string, old, new any, replaces bool) {
		if reflect.DeepEqual(old, new) {
			return
		}
		kind := p.Update
		if replaces {
			kind, replace = p.UpdateReplace, true
		}
		diff[field] = p.PropertyDiff{Kind: kind, InputDiff: true}
	}
	compare("namespace", deref(olds.Namespace), deref(news.Namespace), true)
	compare("releaseName", deref(olds.ReleaseName), deref(news.ReleaseName), true)
	compare("version", deref(olds.Version), deref(news.Version), false)
	if versionUnknown {
		diff["version"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	compare("chart", deref(olds.Chart), deref(news.Chart), false)
	compare("crds", deref(olds.CRDs), deref(news.CRDs), false)
	compare("values", operatorValuesOrNil(olds.Values), operatorValuesOrNil(news.Values), false)
	compare("installCrds", *olds.InstallCRDs, *news.InstallCRDs, false)
	compare("waitForController", *olds.WaitForController, *news.WaitForController, false)
	compare("timeout", deref(olds.Timeout), deref(news.Timeout), false)
	return infer.DiffResponse{
		HasChanges:          len(diff) > 0,
		DetailedDiff:        diff,
		DeleteBeforeReplace: replace,
	}, nil
}

// Create installs the release. A preview only reports the defaults.
func (Operator) Create(ctx context.Context, req infer.CreateRequest[OperatorArgs]) (infer.CreateResponse[OperatorState], error) {
	in := operatorDefaults(req.Inputs)
	id := operatorID(in)
	state := OperatorState{OperatorArgs: in}
	if req.DryRun {
		return infer.CreateResponse[OperatorState]{ID: id, Output: state}, nil
	}
	run, err := newOperatorRun(ctx, in)
	if err != nil {
		return infer.CreateResponse[OperatorState]{}, err
	}
	if err := run.deploy(ctx, &state, nil); err != nil {
		if state.Revision > 0 {
			// The release exists (failed, or not ready in time): Pulumi must
			// track it so the next update can repair or remove it.
			return infer.CreateResponse[OperatorState]{ID: id, Output: state}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
		}
		return infer.CreateResponse[OperatorState]{}, err
	}
	return infer.CreateResponse[OperatorState]{ID: id, Output: state}, nil
}

// Update upgrades the release to the new chart, version and values. When
// only how to wait changed, the release is left alone.
func (Operator) Update(ctx context.Context, req infer.UpdateRequest[OperatorArgs, OperatorState]) (infer.UpdateResponse[OperatorState], error) {
	in := operatorDefaults(req.Inputs)
	old := operatorDefaults(req.State.OperatorArgs)
	state := req.State
	state.OperatorArgs = in
	if req.DryRun {
		return infer.UpdateResponse[OperatorState]{Output: state}, nil
	}
	run, err := newOperatorRun(ctx, in)
	if err != nil {
		return infer.UpdateResponse[OperatorState]{Output: req.State}, err
	}
	if err := run.deploy(ctx, &state, &old); err != nil {
		if state.Revision != req.State.Revision || !operatorChartChanged(old, in) {
			// Helm recorded a new revision, or only the waits failed: record
			// the new inputs as not yet initialized, and the engine calls
			// Update again on the next run to finish the job.
			return infer.UpdateResponse[OperatorState]{Output: state}, infer.ResourceInitFailedError{Reasons: []string{err.Error()}}
		}
		// Nothing changed in the cluster: keep the old state so the next run
		// sees the same diff and tries again.
		return infer.UpdateResponse[OperatorState]{Output: req.State}, err
	}
	return infer.UpdateResponse[OperatorState]{Output: state}, nil
}

// Read refreshes the state from the Helm release. A release that is gone
// makes the resource gone. Anything else that stops the release from being
// read (cluster unreachable, credentials expired) keeps the last known
// state with a warning, so a refresh does not drop a release that exists.
func (Operator) Read(ctx context.Context, req infer.ReadRequest[OperatorArgs, OperatorState]) (infer.ReadResponse[OperatorArgs, OperatorState], error) {
	resp := infer.ReadResponse[OperatorArgs, OperatorState]{ID: req.ID, Inputs: req.Inputs, State: req.State}
	namespace, name, ok := strings.Cut(req.ID, "/")
	if !ok || namespace == "" || name == "" {
		return resp, fmt.Errorf("esosync:index:Operator ID %q is not <namespace>/<releaseName>", req.ID)
	}
	logger := p.GetLogger(ctx)
	cluster, err := infer.GetConfig[Config](ctx).Cluster().Get()
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

	// An import starts from the ID alone.
	imported := req.State.Namespace == nil && req.Inputs.Namespace == nil
	state := req.State
	state.Namespace, state.ReleaseName = operatorPtr(namespace), operatorPtr(name)
	state.OperatorArgs = operatorDefaults(state.OperatorArgs)
	state.Status, state.ChartVersion, state.AppVersion, state.Revision = rel.Status, rel.ChartVersion, rel.AppVersion, rel.Revision
	if imported || helm.IsRepoURL(deref(state.Chart)) {
		// A local chart's version follows the chart on disk, not the release.
		state.Version = operatorPtr(rel.ChartVersion)
	}
	state.Values = operatorUserValues(rel.Config, state.OperatorArgs)
	controllerErr, webhookErr := checkESO(ctx, cluster, rel)
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
	inputs.Version = state.Version
	inputs.Values = state.Values
	return infer.ReadResponse[OperatorArgs, OperatorState]{ID: req.ID, Inputs: inputs, State: state}, nil
}

// Delete uninstalls the release. CRDs and the namespace stay: see the
// resource description.
func (Operator) Delete(ctx context.Context, req infer.DeleteRequest[OperatorState]) (infer.DeleteResponse, error) {
	in := operatorDefaults(req.State.OperatorArgs)
	cluster, err := infer.GetConfig[Config](ctx).Cluster().Get()
	if err != nil {
		return infer.DeleteResponse{}, err
	}
	timeout, err := time.ParseDuration(deref(in.Timeout))
	if err != nil {
		timeout = 5 * time.Minute
	}
	err = helm.New(cluster.REST, p.GetLogger(ctx).Debugf).Uninstall(deref(in.Namespace), deref(in.ReleaseName), timeout)
	return infer.DeleteResponse{}, err
}

// operatorDefaults fills in what Check would, for state written before a
// default existed and for callers that skip Check.
func operatorDefaults(in OperatorArgs) OperatorArgs {
	setOperatorDefault(&in.Namespace, defaultOperatorNamespace)
	setOperatorDefault(&in.ReleaseName, defaultOperatorRelease)
	setOperatorDefault(&in.Chart, defaultOperatorChartRepo)
	setOperatorDefault(&in.Version, defaultOperatorVersion)
	setOperatorDefault(&in.InstallCRDs, true)
	setOperatorDefault(&in.WaitForController, true)
	setOperatorDefault(&in.Timeout, defaultOperatorTimeout)
	return in
}

func setOperatorDefault[T any](field **T, value T) {
	if *field == nil {
		*field = &value
	}
}

func operatorPtr[T any](v T) *T { return &v }

func operatorBoolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func operatorID(in OperatorArgs) string {
	in = operatorDefaults(in)
	return *in.Namespace + "/" + *in.ReleaseName
}

// injectsInstallCRDs reports whether esosync sets the chart's installCRDs
// value itself: the CRDs come from the bundle, or from elsewhere.
func injectsInstallCRDs(installCRDs *bool, crds *string) bool {
	return !operatorBoolOr(installCRDs, true) || deref(crds) != ""
}

// operatorHelmValues is what the chart gets: the user's values, plus installCRDs
// false when the chart must not template CRDs.
func operatorHelmValues(values map[string]any, installCRDs *bool, crds *string) map[string]any {
	out := make(map[string]any, len(values)+1)
	for k, v := range values {
		out[k] = v
	}
	if injectsInstallCRDs(installCRDs, crds) {
		out[esoInstallCRDsValue] = false
	}
	return out
}

// operatorUserValues undoes operatorHelmValues on the values a release was
// rendered with, so what esosync injected does not show as drift.
func operatorUserValues(config map[string]any, in OperatorArgs) map[string]any {
	out := make(map[string]any, len(config))
	for k, v := range config {
		out[k] = v
	}
	if injectsInstallCRDs(in.InstallCRDs, in.CRDs) {
		if v, ok := in.Values[esoInstallCRDsValue]; ok {
			out[esoInstallCRDsValue] = v
		} else if out[esoInstallCRDsValue] == false {
			delete(out, esoInstallCRDsValue)
		}
	}
	if len(out) == 0 && in.Values == nil {
		return nil
	}
	return out
}

func operatorValuesOrNil(v map[string]any) map[string]any {
	if len(v) == 0 {
		return nil
	}
	return v
}

// operatorRun is one install or upgrade against the configured cluster.
type operatorRun struct {
	in      OperatorArgs
	timeout time.Duration
	cluster *kube.Cluster
	helm    *helm.Client
	logger  p.Logger
}

func newOperatorRun(ctx context.Context, in OperatorArgs) (*operatorRun, error) {
	timeout, err := time.ParseDuration(deref(in.Timeout))
	if err != nil {
		return nil, fmt.Errorf("timeout: invalid duration %q", deref(in.Timeout))
	}
	cluster, err := infer.GetConfig[Config](ctx).Cluster().Get()
	if err != nil {
		return nil, err
	}
	logger := p.GetLogger(ctx)
	return &operatorRun{in: in, timeout: timeout, cluster: cluster, helm: helm.New(cluster.REST, logger.Debugf), logger: logger}, nil
}

// deploy installs the release (old == nil) or upgrades it from old, then
// waits for the CRDs and, if asked, the controller. It records in state
// whatever release exists, even when it then fails.
func (r *operatorRun) deploy(parent context.Context, state *OperatorState, old *OperatorArgs) error {
	ctx, cancel := context.WithTimeout(parent, r.timeout)
	defer cancel()
	in := r.in
	namespace, name := deref(in.Namespace), deref(in.ReleaseName)

	ch, err := helm.LoadChart(deref(in.Chart), esoChartName, deref(in.Version))
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	values := operatorHelmValues(in.Values, in.InstallCRDs, in.CRDs)
	if err := helm.PruneMissingDependencies(ch, values); err != nil {
		return fmt.Errorf("chart %s: %w", deref(in.Chart), err)
	}

	crdNames := slices.Clone(esoCoreCRDs)
	fromBundle := *in.InstallCRDs && deref(in.CRDs) != ""
	fromChart := *in.InstallCRDs && !fromBundle
	if fromBundle {
		names, err := r.applyBundle(ctx, deref(in.CRDs))
		if err != nil {
			return err
		}
		crdNames = names
		// Before Helm renders, so the chart sees ESO's API in .Capabilities.
		if err := r.waitForCRDs(ctx, crdNames); err != nil {
			return err
		}
	} else if fromChart && !helm.HasCRDs(ch) {
		return fmt.Errorf("crds: chart %s %s carries no CRD manifests: set crds to a CRD bundle, "+
			"or set installCrds to false if the CRDs are installed separately", ch.Metadata.Name, ch.Metadata.Version)
	}

	req := helm.Request{
		Namespace:   namespace,
		ReleaseName: name,
		Chart:       ch,
		Values:      values,
		SkipCRDs:    !fromChart,
		Timeout:     r.timeout,
	}
	rel, err := r.installOrUpgrade(ctx, req, old)
	if rel != nil {
		state.Status, state.ChartVersion, state.AppVersion, state.Revision = rel.Status, rel.ChartVersion, rel.AppVersion, rel.Revision
	}
	if err != nil {
		return err
	}

	if fromChart {
		names, err := helm.ChartCRDNames(ch)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		crdNames = append(append(crdNames, names...), rel.CRDs()...)
		slices.Sort(crdNames)
		crdNames = slices.Compact(crdNames)
	}
	if !fromBundle { // a bundle's CRDs were served before Helm ran
		if err := r.waitForCRDs(ctx, crdNames); err != nil {
			return err
		}
	}
	state.CRDNames = crdNames

	if *in.WaitForController {
		if err := r.waitForESO(ctx, rel); err != nil {
			return err
		}
		// The wait has just seen both: no need to look again.
		state.ControllerAvailable, state.WebhookAvailable = true, true
		return nil
	}
	state.ControllerAvailable, state.WebhookAvailable = observeESO(ctx, r.cluster, rel)
	return nil
}

// waitForESO waits until the release's Deployments are Available and, if
// it has ESO's validating webhook, until the webhook answers.
func (r *operatorRun) waitForESO(ctx context.Context, rel *helm.Release) error {
	namespace := deref(r.in.Namespace)
	deployments := rel.Deployments()
	r.logger.InfoStatusf("waiting for deployments %s to be Available", strings.Join(deployments, ", "))
	began := time.Now()
	if err := helm.WaitForDeployments(ctx, r.cluster.Clientset, namespace, deployments, time.Second); err != nil {
		return fmt.Errorf("%w (waitForController is true; timeout is %s)", err, r.timeout)
	}
	r.logger.Infof("deployments %s Available after %s", strings.Join(deployments, ", "), time.Since(began).Round(100*time.Millisecond))
	probe, ok := esoWebhookProbe(rel)
	if !ok {
		return nil
	}
	began = time.Now()
	r.logger.InfoStatusf("waiting for ESO's webhook %s to answer admission requests", probe.Webhook)
	last := ""
	err := helm.WaitForWebhook(ctx, r.cluster.REST, probe, 500*time.Millisecond, func(err error) {
		if msg := err.Error(); msg != last {
			last = msg
			r.logger.InfoStatusf("waiting for ESO's webhook %s to answer admission requests: %s", probe.Webhook, msg)
		}
	})
	if err != nil {
		return fmt.Errorf("%w (waitForController is true; timeout is %s)", err, r.timeout)
	}
	r.logger.Infof("ESO's webhook %s answers admission requests (waited %s after the Deployments were Available)",
		probe.Webhook, time.Since(began).Round(100*time.Millisecond))
	return nil
}

// observeESO reports, without waiting, whether ESO's controller Deployment
// is Available and its webhook answers (true when there is none).
func observeESO(ctx context.Context, cluster *kube.Cluster, rel *helm.Release) (controller, webhook bool) {
	controllerErr, webhookErr := checkESO(ctx, cluster, rel)
	return controllerErr == nil, webhookErr == nil
}

// checkESO says why ESO's controller is not Available and why its webhook
// does not answer (nil for each that is fine).
func checkESO(ctx context.Context, cluster *kube.Cluster, rel *helm.Release) (controllerErr, webhookErr error) {
	if name := esoControllerDeployment(rel); name == "" {
		controllerErr = errors.New("the release has no controller Deployment")
	} else {
		controllerErr = helm.CheckDeployment(ctx, cluster.Clientset, rel.Namespace, name)
	}
	if probe, ok := esoWebhookProbe(rel); ok {
		webhookErr = helm.ProbeWebhook(ctx, cluster.REST, probe)
	}
	return controllerErr, webhookErr
}

// esoControllerDeployment is the release's controller Deployment: the one
// that is neither the webhook nor the cert controller.
func esoControllerDeployment(rel *helm.Release) string {
	for _, d := range rel.Deployments() {
		if !strings.HasSuffix(d, "-webhook") && !strings.HasSuffix(d, "-cert-controller") {
			return d
		}
	}
	return ""
}

// esoWebhookProbe is an ExternalSecret that only ESO's webhook rejects
// (deletionPolicy Delete needs creationPolicy Owner), for a release that
// registers ESO's ExternalSecret webhook.
func esoWebhookProbe(rel *helm.Release) (helm.WebhookProbe, bool) {
	const config = "externalsecret-validate"
	if !slices.Contains(rel.ValidatingWebhooks(), config) {
		return helm.WebhookProbe{}, false
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "external-secrets.io/v1",
		"kind":       "ExternalSecret",
		"metadata":   map[string]any{"name": "esosync-webhook-probe", "namespace": rel.Namespace},
		"spec": map[string]any{
			"secretStoreRef": map[string]any{"name": "esosync-webhook-probe", "kind": "SecretStore"},
			"target":         map[string]any{"creationPolicy": "Merge", "deletionPolicy": "Delete"},
			"data":           []any{map[string]any{"secretKey": "probe", "remoteRef": map[string]any{"key": "probe"}}},
		},
	}}
	return helm.WebhookProbe{
		Resource: schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"},
		Object:   obj,
		Webhook:  "validate.externalsecret.external-secrets.io",
	}, true
}

// installOrUpgrade upgrades when there was a release before; one that has
// gone since is installed again, which is what the program asks for.
func (r *operatorRun) installOrUpgrade(ctx context.Context, req helm.Request, old *OperatorArgs) (*helm.Release, error) {
	if old != nil {
		if !operatorChartChanged(*old, r.in) {
			// Only how to wait changed, or the engine is retrying an update
			// that did not finish: a deployed release needs no new revision.
			rel, err := r.helm.Status(req.Namespace, req.ReleaseName)
			if err == nil && rel.Status == "deployed" {
				return rel, nil
			}
			if err != nil && !errors.Is(err, helm.ErrReleaseNotFound) {
				return nil, err
			}
		}
		rel, err := r.helm.Upgrade(ctx, req)
		if !errors.Is(err, helm.ErrReleaseNotFound) {
			return rel, err
		}
		r.logger.Warningf("Helm release %s/%s no longer exists; installing it again", req.Namespace, req.ReleaseName)
	}
	return r.helm.Install(ctx, req)
}

// operatorChartChanged reports whether an update changes what Helm renders.
func operatorChartChanged(old, new OperatorArgs) bool {
	return deref(old.Chart) != deref(new.Chart) ||
		deref(old.Version) != deref(new.Version) ||
		deref(old.CRDs) != deref(new.CRDs) ||
		operatorBoolOr(old.InstallCRDs, true) != operatorBoolOr(new.InstallCRDs, true) ||
		!reflect.DeepEqual(operatorValuesOrNil(old.Values), operatorValuesOrNil(new.Values))
}

func (r *operatorRun) applyBundle(ctx context.Context, ref string) ([]string, error) {
	data, err := helm.ReadBundle(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("crds: %w", err)
	}
	crds, err := helm.ParseCRDs(data)
	if err != nil {
		return nil, fmt.Errorf("crds: bundle %s: %w", ref, err)
	}
	have := map[string]bool{}
	for _, crd := range crds {
		have[crd.GetName()] = true
	}
	for _, name := range esoCoreCRDs {
		if !have[name] {
			return nil, fmt.Errorf("crds: bundle %s has no CRD %s: is it External Secrets Operator's bundle?", ref, name)
		}
	}
	r.logger.InfoStatusf("applying %d CRDs from %s", len(crds), ref)
	names, err := helm.ApplyCRDs(ctx, r.cluster.REST, crds)
	if err != nil {
		return nil, fmt.Errorf("crds: %w", err)
	}
	return names, nil
}

func (r *operatorRun) waitForCRDs(ctx context.Context, names []string) error {
	r.logger.InfoStatusf("waiting for %d CRDs to be served", len(names))
	if err := helm.WaitForCRDs(ctx, r.cluster.REST, names, 250*time.Millisecond); err != nil {
		return fmt.Errorf("%w (timeout is %s)", err, r.timeout)
	}
	return nil
}

// Compile-time checks that Operator implements what infer looks for.
var (
	_ infer.CustomCheck[OperatorArgs]                 = Operator{}
	_ infer.CustomDiff[OperatorArgs, OperatorState]   = Operator{}
	_ infer.CustomCreate[OperatorArgs, OperatorState] = Operator{}
	_ infer.CustomUpdate[OperatorArgs, OperatorState] = Operator{}
	_ infer.CustomRead[OperatorArgs, OperatorState]   = Operator{}
	_ infer.CustomDelete[OperatorState]               = Operator{}
)
