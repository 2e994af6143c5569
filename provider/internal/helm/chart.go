package helm

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
)

// IsRepoURL reports whether ref names a Helm chart repository rather than
// a local chart.
func IsRepoURL(ref string) bool {
	u, err := url.Parse(ref)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// LoadLocalChart loads a chart directory or packaged .tgz. It reads only,
// so charts in the read-only Go module cache load fine.
func LoadLocalChart(ref string) (*chart.Chart, error) {
	info, err := os.Stat(ref)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() && !strings.HasSuffix(ref, ".tgz") && !strings.HasSuffix(ref, ".tar.gz") {
		return nil, fmt.Errorf("%q is neither a chart directory nor a .tgz chart archive", ref)
	}
	ch, err := loader.Load(ref)
	if err != nil {
		return nil, fmt.Errorf("loading chart %q: %w", ref, err)
	}
	return ch, nil
}

// LoadChart loads a local chart, or downloads chart name at version from
// the repository ref points at (which needs network access and uses Helm's
// usual cache directories).
func LoadChart(ref, name, version string) (*chart.Chart, error) {
	if !IsRepoURL(ref) {
		return LoadLocalChart(ref)
	}
	opts := action.ChartPathOptions{RepoURL: ref, Version: version}
	file, err := opts.LocateChart(name, cli.New())
	if err != nil {
		return nil, fmt.Errorf("fetching chart %s %s from %s: %w", name, version, ref, err)
	}
	ch, err := loader.Load(file)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s %s from %s: %w", name, version, ref, err)
	}
	return ch, nil
}

// PruneMissingDependencies drops dependencies that the chart declares but
// does not ship and that values disable. Charts built from source (such as
// ESO's chart in its Go module) lack optional subcharts; Helm renders such
// a chart fine, but tools that check dependencies reject it. A missing
// dependency that values enable is an error: the release would silently
// lack it.
func PruneMissingDependencies(ch *chart.Chart, values map[string]any) error {
	present := map[string]bool{}
	for _, dep := range ch.Dependencies() {
		present[dep.Name()] = true
	}
	var missing []*chart.Dependency
	for _, req := range ch.Metadata.Dependencies {
		if req != nil && !present[req.Name] {
			missing = append(missing, req)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	merged, err := chartutil.CoalesceValues(ch, copyValues(values))
	if err != nil {
		return fmt.Errorf("merging values with the chart's defaults: %w", err)
	}
	var enabled []string
	for _, req := range missing {
		if dependencyEnabled(req, merged) {
			enabled = append(enabled, req.Name)
		}
	}
	if len(enabled) > 0 {
		return fmt.Errorf("the chart's dependencies %s are enabled but missing from its charts/ directory "+
			"(run `helm dependency build`, or disable them in values)", strings.Join(enabled, ", "))
	}
	ch.Metadata.Dependencies = slices.DeleteFunc(ch.Metadata.Dependencies, func(req *chart.Dependency) bool {
		return req != nil && !present[req.Name]
	})
	return nil
}

// dependencyEnabled evaluates a dependency's condition the way Helm does:
// the first condition path holding a bool decides; without one it is on.
func dependencyEnabled(req *chart.Dependency, values chartutil.Values) bool {
	for _, cond := range strings.Split(req.Condition, ",") {
		cond = strings.TrimSpace(cond)
		if cond == "" {
			continue
		}
		if v, err := values.PathValue(cond); err == nil {
			if b, ok := v.(bool); ok {
				return b
			}
		}
	}
	return true
}

// HasCRDs reports whether the chart carries CRD manifests, in crds/ or as
// templates under templates/crds/ (which is how ESO's released chart ships
// them, guarded by the installCRDs value).
func HasCRDs(ch *chart.Chart) bool {
	if len(ch.CRDObjects()) > 0 {
		return true
	}
	for _, t := range ch.Templates {
		ext := path.Ext(t.Name)
		if strings.HasPrefix(t.Name, "templates/crds/") && (ext == ".yaml" || ext == ".yml") {
			return true
		}
	}
	return false
}

// ChartCRDNames names the CRDs in the chart's crds/ directory.
func ChartCRDNames(ch *chart.Chart) ([]string, error) {
	var names []string
	for _, crd := range ch.CRDObjects() {
		objs, err := ParseCRDs(crd.File.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", crd.Filename, err)
		}
		for _, o := range objs {
			names = append(names, o.GetName())
		}
	}
	return names, nil
}

// ValidateValues checks values against the chart's values.schema.json, as
// Helm will at install, so mistakes surface at preview.
func ValidateValues(ch *chart.Chart, values map[string]any) error {
	merged, err := chartutil.CoalesceValues(ch, copyValues(values))
	if err != nil {
		return err
	}
	if err := chartutil.ValidateAgainstSchema(ch, merged); err != nil {
		return errors.New(strings.TrimSpace(err.Error()))
	}
	return nil
}
