package provider

import (
	"context"

	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
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

	cluster *kube.Lazy
}

// Annotate documents the configuration in the schema.
func (c *Config) Annotate(a infer.Annotator) {
	a.Describe(&c.Kubeconfig, "Path to a kubeconfig file, or the kubeconfig content itself (YAML or JSON). "+
		"Defaults to the files listed in the KUBECONFIG environment variable, then ~/.kube/config.")
	a.Describe(&c.Context, "Name of the kubeconfig context to use. Defaults to the kubeconfig's current-context.")
	a.Describe(&c.Namespace, "Namespace for namespaced resources that do not set one. "+
		"Defaults to the context's namespace, then `default`.")
	a.Describe(&c.EscAccessToken, "Pulumi access token used to open ESC environments named by `esc` credential sources. "+
		"Defaults to the PULUMI_ACCESS_TOKEN environment variable.")
	a.Describe(&c.EscAPIURL, "Base URL of the Pulumi ESC API. Defaults to the ESC_API_URL environment variable, then "+
		"`https://api.pulumi.com/api/esc`.")
	a.Describe(&c.EscOrganization, "Organization of `esc` credential sources written as `project/environment`. "+
		"Set it to the stack's organization (YAML: `${pulumi.organization}`, TypeScript: `pulumi.getOrganization()`); "+
		"defaults to `organization`, the organization of every stack on a self-managed (DIY) backend.")
}

// Configure validates the settings and prepares a lazily connecting client.
func (c *Config) Configure(context.Context) error {
	settings := kube.Settings{Kubeconfig: deref(c.Kubeconfig), Context: deref(c.Context), Namespace: deref(c.Namespace)}
	if err := settings.Validate(); err != nil {
		return err
	}
	c.cluster = kube.NewLazy(settings)
	return nil
}

// Cluster returns the provider's lazily connected cluster.
func (c Config) Cluster() *kube.Lazy { return c.cluster }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
