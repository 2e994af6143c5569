package provider

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi-go-provider/infer"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/esosync/pulumi-esosync/provider/internal/helm"
)

// Check validates the inputs without contacting the cluster, applies the
// defaults, and resolves `version` for local charts. Values not known yet
// (preview before a dependency exists) are not validated.
func (Operator) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[OperatorArgs], error) {
	args, failures, err := infer.DefaultCheck[OperatorArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 {
		return infer.CheckResponse[OperatorArgs]{Inputs: args, Failures: failures}, err
	}
	pr := newProblems(req.NewInputs)
	if pr.set("version") {
		pr.add("version", "was renamed chartVersion in esosync 0.2.0 (pulumi-go-provider drops inputs named version before "+
			"diffing, so a change of it alone never upgraded the release): write chartVersion instead")
	}
	checkOperator(pr, &args)
	return infer.CheckResponse[OperatorArgs]{Inputs: args, Failures: pr.failures}, nil
}

// checkOperator validates the Operator's inputs and resolves chartVersion
// for local charts.
func checkOperator(c *problems, args *OperatorArgs) {
	if c.known("namespace") && args.Namespace != nil {
		if errs := validation.IsDNS1123Label(*args.Namespace); len(errs) > 0 {
			c.add("namespace", "%q is not a valid namespace name: %s", *args.Namespace, strings.Join(errs, "; "))
		}
	}
	if c.known("releaseName") && args.ReleaseName != nil {
		if err := chartutil.ValidateReleaseName(*args.ReleaseName); err != nil {
			c.add("releaseName", "%q is not a valid Helm release name: %v", *args.ReleaseName, err)
		}
	}
	versionOK := true
	if c.known("chartVersion") && c.set("chartVersion") {
		if msg := checkChartVersion(ptr.Deref(args.ChartVersion, "")); msg != "" {
			c.add("chartVersion", "%s", msg)
			versionOK = false
		}
	}
	if c.known("timeout") && args.Timeout != nil {
		if d, err := time.ParseDuration(*args.Timeout); err != nil {
			c.add("timeout", "invalid duration %q (use a Go duration such as \"5m\" or \"90s\")", *args.Timeout)
		} else if d <= 0 {
			c.add("timeout", "must be positive, not %q", *args.Timeout)
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
		checkBundle(c, *args.CRDs)
	} else if !c.known("crds") {
		bundleGiven = true // may well be set once known
	}

	if !c.known("chart") {
		return
	}
	ref := ptr.Deref(args.Chart, "")
	switch {
	case ref == "":
		c.add("chart", "must not be empty: give a Helm repository URL or a local chart path, or omit it for %s", defaultOperatorChartRepo)
		return
	case helm.IsRepoURL(ref):
		if !c.set("chartVersion") {
			args.ChartVersion = ptr.To(defaultOperatorVersion)
		}
		return
	case strings.Contains(ref, "://"):
		c.add("chart", "%q: only http(s) Helm repository URLs and local chart paths are supported", ref)
		return
	}
	ch, err := helm.LoadLocalChart(ref)
	if err != nil {
		c.add("chart", "local chart %q: %v", ref, err)
		return
	}
	switch {
	case !c.set("chartVersion"):
		args.ChartVersion = ptr.To(ch.Metadata.Version)
	case versionOK && c.known("chartVersion") && !sameChartVersion(*args.ChartVersion, ch.Metadata.Version):
		c.add("chartVersion", "%q does not match the local chart's version %q: a local chart's Chart.yaml decides its version",
			*args.ChartVersion, ch.Metadata.Version)
	}
	if c.known("values") {
		values := helm.ChartValues(args.Values, ptr.Deref(args.InstallCRDs, true), ptr.Deref(args.CRDs, ""))
		if err := helm.PruneMissingDependencies(ch, values); err != nil {
			c.add("values", "%v", err)
		} else if !c.inputs.Get("values").HasSecrets() {
			// Schema errors can quote the offending value; a secret one is
			// left for Helm to reject at install rather than shown here.
			if err := helm.ValidateValues(ch, values); err != nil {
				c.add("values", "the chart rejects them: %v", err)
			}
		}
	}
	if c.known("installCrds") && ptr.Deref(args.InstallCRDs, true) && !bundleGiven && !helm.HasCRDs(ch) {
		c.add("crds", "the chart at %q carries no CRD manifests: set crds to a CRD bundle (ESO's source tree has "+
			"deploy/crds/bundle.yaml), or set installCrds to false if the CRDs are installed separately", ref)
	}
}

// checkBundle validates a local CRD bundle at preview; a URL is only
// fetched when the release is installed.
func checkBundle(c *problems, ref string) {
	switch {
	case ref == "":
		c.add("crds", "must not be empty: give a CRD bundle path or URL, or omit it")
	case helm.IsRepoURL(ref):
	case strings.Contains(ref, "://"):
		c.add("crds", "%q: only http(s) URLs and local paths are supported", ref)
	default:
		data, err := os.ReadFile(ref)
		if err != nil {
			c.add("crds", "CRD bundle: %v", err)
			return
		}
		if _, err := helm.ParseCRDs(data); err != nil {
			c.add("crds", "CRD bundle %q: %v", ref, err)
		}
	}
}

// checkChartVersion accepts exact versions only: Read reports the installed
// version back into `chartVersion`, which would drift forever from a range.
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
