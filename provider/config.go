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

	cluster *kube.Lazy
}

// Annotate documents the configuration in the schema.
func (c *Config) Annotate(a infer.Annotator) {
	a.Describe(&c.Kubeconfig, "Path to a kubeconfig file, or the kubeconfig content itself (YAML or JSON). "+
		"Defaults to the files listed in the KUBECONFIG environment variable, then ~/.kube/config.")
	a.Describe(&c.Context, "Name of the kubeconfig context to use. Defaults to the kubeconfig's current-context.")
	a.Describe(&c.Namespace, "Namespace for namespaced resources that do not set one. "+
		"Defaults to the context's namespace, then `default`.")
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
