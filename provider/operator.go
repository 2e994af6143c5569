package provider

import (
	"github.com/pulumi/pulumi-go-provider/infer"
)

// Defaults of the Operator resource. The version is the ESO release the
// test bed proves (go.mod pins the same external-secrets module).
const (
	defaultOperatorNamespace = "external-secrets"
	defaultOperatorRelease   = "external-secrets"
	defaultOperatorVersion   = "0.20.4"
	defaultOperatorChartRepo = "https://charts.external-secrets.io"
	defaultOperatorTimeout   = "5m"
)

// Operator installs External Secrets Operator into the cluster as a Helm
// release, using Helm's Go SDK: no helm binary is needed, and `helm list`
// shows the release.
type Operator struct{}

// OperatorArgs are the Operator's inputs. Pointers are optional inputs;
// Check fills in their defaults.
type OperatorArgs struct {
	Namespace         *string        `pulumi:"namespace,optional" provider:"replaceOnChanges"`
	ReleaseName       *string        `pulumi:"releaseName,optional" provider:"replaceOnChanges"`
	ChartVersion      *string        `pulumi:"chartVersion,optional"`
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
	Status     string   `pulumi:"status"`
	AppVersion string   `pulumi:"appVersion"`
	Revision   int      `pulumi:"revision"`
	CRDNames   []string `pulumi:"crdNames"`
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
	a.Describe(&o.ChartVersion, "Version of the external-secrets chart to install from the `chart` repository, e.g. `0.20.4` "+
		"(an exact version, not a range). Defaults to `"+defaultOperatorVersion+"`, the version esosync is tested with. "+
		"For a local `chart`, the chart's own Chart.yaml decides: the version defaults to it and, if set, must match it. "+
		"Refresh reports the installed chart's version here. (Called `version` before esosync 0.2.0.)")
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
	a.Describe(&o.Timeout, "Deprecated: use the `customTimeouts` resource option. How long an install, upgrade or "+
		"uninstall, including the waits, may take when no customTimeouts is given, as a Go duration such as `5m` or `90s`.")
	a.SetDefault(&o.Timeout, defaultOperatorTimeout)
	a.Deprecate(&o.Timeout, timeoutDeprecation)
}

// Annotate documents the outputs.
func (s *OperatorState) Annotate(a infer.Annotator) {
	a.Describe(&s.Status, "Helm's status of the release, e.g. `deployed` or `failed`.")
	a.Describe(&s.AppVersion, "ESO version the installed chart deploys, e.g. `v0.20.4`.")
	a.Describe(&s.Revision, "Helm release revision: 1 after install, incremented by every upgrade.")
	a.Describe(&s.CRDNames, "Names of the ESO CRDs that were established and served when the release was installed or upgraded.")
	a.Describe(&s.ControllerAvailable, "Whether ESO's controller Deployment was Available when last observed (at create, "+
		"update or refresh). A refresh that finds it unavailable warns with the Deployment's reason.")
	a.Describe(&s.WebhookAvailable, "Whether ESO's validating webhook answered an admission request when last observed: "+
		"esosync sends it a server-side dry-run of an invalid ExternalSecret and expects the webhook's own denial (not "+
		"connection refused). True when the release has no webhook (`webhook.create: false`).")
}
