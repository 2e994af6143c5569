// Package helm drives Helm's Go SDK for esosync: it installs, upgrades,
// inspects and uninstalls a chart release against the provider's cluster,
// server-side applies CRD bundles and waits for what a release needs to be
// usable. It never logs rendered manifests or values, which may hold
// credentials.
package helm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/rest"
)

// ErrReleaseNotFound reports that no release of the name exists in the
// namespace (or only an uninstalled one's history does).
var ErrReleaseNotFound = errors.New("helm release not found")

// storageDriver keeps release records in Secrets, like the helm CLI does by
// default, so `helm list` and `helm status` see esosync's releases.
const storageDriver = "secret"

// Client runs Helm actions against one cluster.
type Client struct {
	config *rest.Config
	logf   func(format string, args ...any)
}

// New returns a Client for the cluster config describes. logf receives
// Helm's debug lines (release keys, resource counts, never values); nil
// discards them.
func New(config *rest.Config, logf func(format string, args ...any)) *Client {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Client{config: config, logf: logf}
}

// Release is what esosync needs to know about a Helm release.
type Release struct {
	Name         string
	Namespace    string
	Status       string
	Revision     int
	ChartName    string
	ChartVersion string
	AppVersion   string
	// Config is the user-supplied values the release was rendered with.
	Config map[string]any
	// Manifest is the rendered manifest. It may contain Secrets: never log it.
	Manifest string
}

// Request describes a chart to install or upgrade to.
type Request struct {
	Namespace   string
	ReleaseName string
	Chart       *chart.Chart
	Values      map[string]any
	// SkipCRDs keeps Helm from installing the chart's crds/ directory.
	SkipCRDs bool
	// Timeout bounds Helm's hooks.
	Timeout time.Duration
}

func (c *Client) actionConfig(namespace string) (*action.Configuration, error) {
	cfg := new(action.Configuration)
	if err := cfg.Init(newRESTClientGetter(c.config, namespace), namespace, storageDriver, c.logf); err != nil {
		return nil, fmt.Errorf("initializing helm: %w", err)
	}
	return cfg, nil
}

// Install installs the chart as a new release, creating the namespace if
// it is missing. On failure the returned release, if any, is the failed
// release Helm recorded: it exists and must be upgraded or uninstalled.
func (c *Client) Install(ctx context.Context, req Request) (*Release, error) {
	// Checked here rather than left to Helm so that a failed install below
	// can be told apart from a release someone else owns.
	if existing, err := c.Status(req.Namespace, req.ReleaseName); err == nil {
		return nil, fmt.Errorf("helm install %s/%s: a release of that name already exists (revision %d, %s); "+
			"uninstall it or import it into Pulumi", req.Namespace, req.ReleaseName, existing.Revision, existing.Status)
	} else if !errors.Is(err, ErrReleaseNotFound) {
		return nil, err
	}
	cfg, err := c.actionConfig(req.Namespace)
	if err != nil {
		return nil, err
	}
	install := action.NewInstall(cfg)
	install.Namespace = req.Namespace
	install.ReleaseName = req.ReleaseName
	install.CreateNamespace = true
	install.SkipCRDs = req.SkipCRDs
	install.Timeout = req.Timeout
	// Only reaches a release whose history says uninstalled (`helm
	// uninstall --keep-history`): the check above rejects live ones.
	install.Replace = true
	rel, err := install.RunWithContext(ctx, req.Chart, copyValues(req.Values))
	if err != nil {
		// Helm returns a release on pre-flight failures too; only a stored
		// one exists in the cluster.
		if stored, serr := c.Status(req.Namespace, req.ReleaseName); serr == nil {
			return stored, fmt.Errorf("helm install %s/%s: %w", req.Namespace, req.ReleaseName, err)
		}
		return nil, fmt.Errorf("helm install %s/%s: %w", req.Namespace, req.ReleaseName, err)
	}
	return fromRelease(rel), nil
}

// Upgrade upgrades an existing release to exactly the given chart and
// values: values not given are reset to the chart's defaults rather than
// reused from the previous revision. It returns ErrReleaseNotFound when
// there is no release to upgrade.
func (c *Client) Upgrade(ctx context.Context, req Request) (*Release, error) {
	cfg, err := c.actionConfig(req.Namespace)
	if err != nil {
		return nil, err
	}
	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace = req.Namespace
	upgrade.ResetValues = true
	upgrade.SkipCRDs = req.SkipCRDs
	upgrade.Timeout = req.Timeout
	rel, err := upgrade.RunWithContext(ctx, req.ReleaseName, req.Chart, copyValues(req.Values))
	if err != nil {
		if errors.Is(err, driver.ErrNoDeployedReleases) || errors.Is(err, driver.ErrReleaseNotFound) {
			return nil, fmt.Errorf("helm upgrade %s/%s: %w", req.Namespace, req.ReleaseName, ErrReleaseNotFound)
		}
		if stored, serr := c.Status(req.Namespace, req.ReleaseName); serr == nil {
			return stored, fmt.Errorf("helm upgrade %s/%s: %w", req.Namespace, req.ReleaseName, err)
		}
		return nil, fmt.Errorf("helm upgrade %s/%s: %w", req.Namespace, req.ReleaseName, err)
	}
	return fromRelease(rel), nil
}

// Status returns the latest revision of the release, or an error wrapping
// ErrReleaseNotFound when there is none.
func (c *Client) Status(namespace, name string) (*Release, error) {
	cfg, err := c.actionConfig(namespace)
	if err != nil {
		return nil, err
	}
	rel, err := action.NewStatus(cfg).Run(name)
	if err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return nil, fmt.Errorf("helm release %s/%s: %w", namespace, name, ErrReleaseNotFound)
		}
		return nil, fmt.Errorf("helm status %s/%s: %w", namespace, name, err)
	}
	if rel.Info != nil && rel.Info.Status == release.StatusUninstalled {
		// `helm uninstall --keep-history` leaves records of a release that
		// no longer exists.
		return nil, fmt.Errorf("helm release %s/%s was uninstalled: %w", namespace, name, ErrReleaseNotFound)
	}
	return fromRelease(rel), nil
}

// Uninstall removes the release and the objects Helm created for it,
// waiting until ctx's deadline (5 minutes without one). CRDs from the
// chart's crds/ directory stay, as with `helm uninstall`. A release that
// does not exist is not an error.
func (c *Client) Uninstall(ctx context.Context, namespace, name string) error {
	cfg, err := c.actionConfig(namespace)
	if err != nil {
		return err
	}
	uninstall := action.NewUninstall(cfg)
	uninstall.IgnoreNotFound = true
	uninstall.Timeout = TimeLeft(ctx, 5*time.Minute)
	if _, err := uninstall.Run(name); err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return nil
		}
		return fmt.Errorf("helm uninstall %s/%s: %w", namespace, name, err)
	}
	return nil
}

func fromRelease(rel *release.Release) *Release {
	out := &Release{
		Name:      rel.Name,
		Namespace: rel.Namespace,
		Revision:  rel.Version,
		Config:    rel.Config,
		Manifest:  rel.Manifest,
	}
	if rel.Info != nil {
		out.Status = rel.Info.Status.String()
	}
	if rel.Chart != nil && rel.Chart.Metadata != nil {
		out.ChartName = rel.Chart.Metadata.Name
		out.ChartVersion = rel.Chart.Metadata.Version
		out.AppVersion = rel.Chart.Metadata.AppVersion
	}
	return out
}

// copyValues deep-copies values: Helm coalesces into the map it is given,
// and the caller's map is the resource's input.
func copyValues(values map[string]any) map[string]any {
	out := make(map[string]any, len(values))
	for k, v := range values {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return copyValues(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = copyValue(e)
		}
		return out
	default:
		return v
	}
}
