package provider

import (
	"context"
	"errors"
	"os"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"k8s.io/utils/ptr"

	"github.com/esosync/pulumi-esosync/provider/internal/escsource"
	"github.com/esosync/pulumi-esosync/provider/internal/kube"
	"github.com/esosync/pulumi-esosync/provider/internal/reconcile"
)

// Config is the esosync provider configuration (`esosync:kubeconfig`, ...).
//
// The provider never connects during Configure: the cluster is contacted on
// first use, so `pulumi preview` works without a reachable cluster.
type Config struct {
	Kubeconfig *string `pulumi:"kubeconfig,optional" provider:"secret"`
	Context    *string `pulumi:"context,optional"`
	Namespace  *string `pulumi:"namespace,optional"`

	EscAccessToken  *string `pulumi:"escAccessToken,optional" provider:"secret"`
	EscAPIURL       *string `pulumi:"escApiUrl,optional"`
	EscOrganization *string `pulumi:"escOrganization,optional"`

	KubeClientQPS   *float64 `pulumi:"kubeClientQps,optional"`
	KubeClientBurst *int     `pulumi:"kubeClientBurst,optional"`

	// engine is this configured provider's reconcile engine and session.
	engine *reconcile.Engine
}

// Environment variables the configuration defaults from.
const (
	envESCAccessToken = "PULUMI_ACCESS_TOKEN"
	envESCAPIURL      = "ESC_API_URL"
	envKubeClientQPS  = "ESOSYNC_KUBE_CLIENT_QPS"
)

// Annotate documents the configuration in the schema.
func (c *Config) Annotate(a infer.Annotator) {
	a.Describe(&c.Kubeconfig, "Path to a kubeconfig file, or the kubeconfig content itself (YAML or JSON). "+
		"Defaults to the files listed in the KUBECONFIG environment variable, then ~/.kube/config.")
	a.Describe(&c.Context, "Name of the kubeconfig context to use. Defaults to the kubeconfig's current-context.")
	a.Describe(&c.Namespace, "Namespace for namespaced resources that do not set one. "+
		"Defaults to the context's namespace, then `default`.")
	a.Describe(&c.EscAccessToken, "Pulumi access token used to open ESC environments named by `esc` credential sources.")
	a.SetDefault(&c.EscAccessToken, "", envESCAccessToken)
	a.Describe(&c.EscAPIURL, "Base URL of the Pulumi ESC API.")
	a.SetDefault(&c.EscAPIURL, escsource.DefaultAPIURL, envESCAPIURL)
	a.Describe(&c.EscOrganization, "Organization of `esc` credential sources written as `project/environment`. "+
		"Set it to the stack's organization (YAML: `${pulumi.organization}`, TypeScript: `pulumi.getOrganization()`); "+
		"the default is the organization of every stack on a self-managed (DIY) backend.")
	a.SetDefault(&c.EscOrganization, escsource.DefaultOrganization)
	a.Describe(&c.KubeClientQPS, "Requests per second the provider may send to the Kubernetes API server. 0 (the default) sets "+
		"no client-side limit: a deploy of many ExternalSecrets is then bound by the server, whose API Priority and Fairness "+
		"queues and sheds load, and not by a client-side 50 or 5 requests/s. Set it to be gentle with a shared control plane.")
	a.SetDefault(&c.KubeClientQPS, 0.0, envKubeClientQPS)
	a.Describe(&c.KubeClientBurst, "Requests the provider may send at once above kubeClientQps. Defaults to twice kubeClientQps.")
}

// Configure validates the settings and starts this provider's session: a
// lazily connecting cluster and fresh backend caches, demand and counters.
// The engine configures a provider once per pulumi operation.
func (c *Config) Configure(context.Context) error {
	settings := kube.Settings{Kubeconfig: ptr.Deref(c.Kubeconfig, ""), Context: ptr.Deref(c.Context, ""), Namespace: ptr.Deref(c.Namespace, ""),
		QPS: float32(ptr.Deref(c.KubeClientQPS, 0)), Burst: ptr.Deref(c.KubeClientBurst, 0)}
	if err := settings.Validate(); err != nil {
		return err
	}
	if settings.QPS < 0 || settings.Burst < 0 {
		return errors.New("esosync:kubeClientQps and esosync:kubeClientBurst must not be negative")
	}
	esc := escsource.Source{
		APIURL:       firstSet(c.EscAPIURL, os.Getenv(envESCAPIURL)),
		Token:        firstSet(c.EscAccessToken, os.Getenv(envESCAccessToken)),
		Organization: ptr.Deref(c.EscOrganization, ""),
	}
	c.engine = reconcile.New(kube.NewLazy(settings), esc)
	return nil
}

// Diff compares the configuration with the schema's defaults applied to
// both sides, so a default a newer esosync declares is no change (infer
// would otherwise replace the provider, and with it every resource, on a
// stack written before the default existed). A real change replaces the
// provider, as infer does for every change.
//
// infer.Config takes a *Config, so the request holds pointers.
func (*Config) Diff(_ context.Context, req infer.DiffRequest[*Config, *Config]) (infer.DiffResponse, error) {
	olds, news := ptr.Deref(req.State, Config{}), ptr.Deref(req.Inputs, Config{})
	d := diffFields(olds.withDefaults(), news.withDefaults(), nil)
	for k := range d {
		kind := p.UpdateReplace
		if k == "kubeClientQps" || k == "kubeClientBurst" {
			kind = p.Update // how fast the provider talks to the cluster changes no resource
		}
		d[k] = p.PropertyDiff{Kind: kind, InputDiff: true}
	}
	return infer.DiffResponse{HasChanges: len(d) > 0, DetailedDiff: d, DeleteBeforeReplace: false}, nil
}

// withDefaults is c with the schema's defaults, as CheckConfig fills them.
func (c Config) withDefaults() Config {
	c.EscAccessToken = ptr.To(firstSet(c.EscAccessToken, os.Getenv(envESCAccessToken)))
	c.EscAPIURL = ptr.To(firstSet(c.EscAPIURL, firstSet(nonEmpty(os.Getenv(envESCAPIURL)), escsource.DefaultAPIURL)))
	c.EscOrganization = ptr.To(firstSet(c.EscOrganization, escsource.DefaultOrganization))
	if c.KubeClientQPS == nil {
		c.KubeClientQPS = ptr.To(0.0)
	}
	c.engine = nil
	return c
}

func firstSet(v *string, fallback string) string {
	if v != nil && *v != "" {
		return *v
	}
	return fallback
}

// engineOf is the reconcile engine of the provider serving ctx.
func engineOf(ctx context.Context) *reconcile.Engine { return infer.GetConfig[Config](ctx).engine }

// defaultNamespace is the provider's default namespace, without contacting
// the cluster.
func defaultNamespace(ctx context.Context) string {
	cfg := infer.GetConfig[Config](ctx)
	return cfg.engine.DefaultNamespace(ptr.Deref(cfg.Namespace, ""))
}

// waitContext bounds a wait: by the resource's customTimeouts (the
// context's deadline) when given, else by the deprecated timeout input,
// else by def.
func waitContext(ctx context.Context, timeout *string, def string) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	d, err := time.ParseDuration(ptr.Deref(timeout, def))
	if err != nil || d <= 0 {
		d, _ = time.ParseDuration(def)
	}
	return context.WithTimeout(ctx, d)
}

var _ infer.CustomDiff[*Config, *Config] = (*Config)(nil)
