package helm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// Logger is where a deploy reports progress; pulumi-go-provider's logger
// (p.GetLogger) is one.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	InfoStatusf(format string, args ...any)
	Warningf(format string, args ...any)
}

// DeployRequest is an ESO release as the program declares it, with every
// default applied.
type DeployRequest struct {
	Namespace, ReleaseName string
	// Chart is a repository URL or a local chart; Version its exact version.
	Chart, Version string
	// CRDs is a CRD bundle's path or URL ("" for none).
	CRDs        string
	Values      map[string]any
	InstallCRDs bool
	// WaitForESO waits for the Deployments and the webhook.
	WaitForESO bool
}

// DeployResult is what Helm and the waits report. Status, versions and
// revision are set whenever a release exists, even when Deploy then fails.
type DeployResult struct {
	Status, ChartVersion, AppVersion string
	Revision                         int
	CRDNames                         []string
	ControllerAvailable              bool
	WebhookAvailable                 bool
}

// ChartChanged reports whether going from old to new changes what Helm
// renders (as opposed to only how esosync waits).
func ChartChanged(old, new DeployRequest) bool {
	return old.Chart != new.Chart || old.Version != new.Version || old.CRDs != new.CRDs || old.InstallCRDs != new.InstallCRDs ||
		!SameValues(old.Values, new.Values)
}

// SameValues compares chart values, nil and empty alike.
func SameValues(a, b map[string]any) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return reflect.DeepEqual(a, b)
}

// deployment is one install or upgrade against a cluster.
type deployment struct {
	req     DeployRequest
	cluster *kube.Cluster
	helm    *Client
	log     Logger
}

// Deploy installs the release (old == nil) or upgrades it from old, then
// waits (until ctx's deadline) for the CRDs to be served and, if asked, for
// ESO's Deployments and webhook.
func Deploy(ctx context.Context, cluster *kube.Cluster, log Logger, req DeployRequest, old *DeployRequest) (DeployResult, error) {
	d := &deployment{req: req, cluster: cluster, helm: New(cluster.REST, log.Debugf), log: log}
	var res DeployResult
	err := d.run(ctx, &res, old)
	return res, err
}

func (d *deployment) run(ctx context.Context, res *DeployResult, old *DeployRequest) error {
	in := d.req
	ch, err := LoadChart(in.Chart, ESOChartName, in.Version)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	values := ChartValues(in.Values, in.InstallCRDs, in.CRDs)
	if err := PruneMissingDependencies(ch, values); err != nil {
		return fmt.Errorf("chart %s: %w", in.Chart, err)
	}
	crdNames := ESOCoreCRDs()
	fromBundle := in.InstallCRDs && in.CRDs != ""
	fromChart := in.InstallCRDs && !fromBundle
	if fromBundle {
		if crdNames, err = d.applyBundle(ctx, in.CRDs); err != nil {
			return err
		}
		// Before Helm renders, so the chart sees ESO's API in .Capabilities.
		if err := d.waitForCRDs(ctx, crdNames); err != nil {
			return err
		}
	} else if fromChart && !HasCRDs(ch) {
		return fmt.Errorf("crds: chart %s %s carries no CRD manifests: set crds to a CRD bundle, "+
			"or set installCrds to false if the CRDs are installed separately", ch.Metadata.Name, ch.Metadata.Version)
	}
	req := Request{Namespace: in.Namespace, ReleaseName: in.ReleaseName, Chart: ch, Values: values, SkipCRDs: !fromChart,
		Timeout: TimeLeft(ctx, 5*time.Minute)}
	rel, err := d.installOrUpgrade(ctx, req, old)
	if rel != nil {
		res.Status, res.ChartVersion, res.AppVersion, res.Revision = rel.Status, rel.ChartVersion, rel.AppVersion, rel.Revision
	}
	if err != nil {
		return err
	}
	if fromChart {
		names, err := ChartCRDNames(ch)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		crdNames = append(append(crdNames, names...), rel.CRDs()...)
		slices.Sort(crdNames)
		crdNames = slices.Compact(crdNames)
	}
	if !fromBundle { // a bundle's CRDs were served before Helm ran
		if err := d.waitForCRDs(ctx, crdNames); err != nil {
			return err
		}
	}
	res.CRDNames = crdNames
	if in.WaitForESO {
		if err := d.waitForESO(ctx, rel); err != nil {
			return err
		}
		// The wait has just seen both: no need to look again.
		res.ControllerAvailable, res.WebhookAvailable = true, true
		return nil
	}
	controllerErr, webhookErr := CheckESO(ctx, d.cluster, rel)
	res.ControllerAvailable, res.WebhookAvailable = controllerErr == nil, webhookErr == nil
	return nil
}

// TimeLeft is the time left before ctx's deadline (at least a second), or
// def without one: Helm's actions take a timeout, not a context.
func TimeLeft(ctx context.Context, def time.Duration) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Second)
	}
	return def
}

// installOrUpgrade upgrades when there was a release before; one that has
// gone since is installed again, which is what the program asks for.
func (d *deployment) installOrUpgrade(ctx context.Context, req Request, old *DeployRequest) (*Release, error) {
	if old != nil {
		if !ChartChanged(*old, d.req) {
			// Only how to wait changed, or the engine is retrying an update
			// that did not finish: a deployed release needs no new revision.
			rel, err := d.helm.Status(req.Namespace, req.ReleaseName)
			if err == nil && rel.Status == "deployed" {
				return rel, nil
			}
			if err != nil && !errors.Is(err, ErrReleaseNotFound) {
				return nil, err
			}
		}
		rel, err := d.helm.Upgrade(ctx, req)
		if !errors.Is(err, ErrReleaseNotFound) {
			return rel, err
		}
		d.log.Warningf("Helm release %s/%s no longer exists; installing it again", req.Namespace, req.ReleaseName)
	}
	return d.helm.Install(ctx, req)
}

func (d *deployment) applyBundle(ctx context.Context, ref string) ([]string, error) {
	data, err := ReadBundle(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("crds: %w", err)
	}
	crds, err := ParseCRDs(data)
	if err != nil {
		return nil, fmt.Errorf("crds: bundle %s: %w", ref, err)
	}
	have := map[string]bool{}
	for _, crd := range crds {
		have[crd.GetName()] = true
	}
	for _, name := range ESOCoreCRDs() {
		if !have[name] {
			return nil, fmt.Errorf("crds: bundle %s has no CRD %s: is it External Secrets Operator's bundle?", ref, name)
		}
	}
	d.log.InfoStatusf("applying %d CRDs from %s", len(crds), ref)
	names, err := ApplyCRDs(ctx, d.cluster.REST, crds)
	if err != nil {
		return nil, fmt.Errorf("crds: %w", err)
	}
	return names, nil
}

func (d *deployment) waitForCRDs(ctx context.Context, names []string) error {
	d.log.InfoStatusf("waiting for %d CRDs to be served", len(names))
	if err := WaitForCRDs(ctx, d.cluster.REST, names, 250*time.Millisecond); err != nil {
		return fmt.Errorf("%w (the wait is bounded by the resource's customTimeouts, or its deprecated timeout input)", err)
	}
	return nil
}

// waitForESO waits until the release's Deployments are Available and, if
// it has ESO's validating webhook, until the webhook answers.
func (d *deployment) waitForESO(ctx context.Context, rel *Release) error {
	deployments := rel.Deployments()
	d.log.InfoStatusf("waiting for deployments %s to be Available", strings.Join(deployments, ", "))
	began := time.Now()
	if err := WaitForDeployments(ctx, d.cluster.Clientset, d.req.Namespace, deployments, time.Second); err != nil {
		return fmt.Errorf("%w (waitForController is true; the wait is bounded by customTimeouts, or the deprecated timeout input)", err)
	}
	d.log.Infof("deployments %s Available after %s", strings.Join(deployments, ", "), time.Since(began).Round(100*time.Millisecond))
	probe, ok := esoWebhookProbe(rel)
	if !ok {
		return nil
	}
	began = time.Now()
	d.log.InfoStatusf("waiting for ESO's webhook %s to answer admission requests", probe.Webhook)
	last := ""
	err := WaitForWebhook(ctx, d.cluster.REST, probe, 500*time.Millisecond, func(err error) {
		if msg := err.Error(); msg != last {
			last = msg
			d.log.InfoStatusf("waiting for ESO's webhook %s to answer admission requests: %s", probe.Webhook, msg)
		}
	})
	if err != nil {
		return fmt.Errorf("%w (waitForController is true; the wait is bounded by customTimeouts, or the deprecated timeout input)", err)
	}
	d.log.Infof("ESO's webhook %s answers admission requests (waited %s after the Deployments were Available)",
		probe.Webhook, time.Since(began).Round(100*time.Millisecond))
	return nil
}
