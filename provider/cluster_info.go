package provider

import (
	"context"
	"fmt"
	"slices"

	"github.com/pulumi/pulumi-go-provider/infer"
	"k8s.io/apimachinery/pkg/api/errors"
)

// esoGroup is the API group of External Secrets Operator's resources.
const esoGroup = "external-secrets.io"

// GetClusterInfo reports which cluster the provider is configured for and
// whether External Secrets Operator's API is served there. It is the
// quickest way to check provider configuration from a program.
type GetClusterInfo struct{}

// GetClusterInfoArgs takes no inputs: the provider configuration decides.
type GetClusterInfoArgs struct{}

// GetClusterInfoResult describes the cluster the provider talks to.
type GetClusterInfoResult struct {
	Host               string   `pulumi:"host"`
	Context            string   `pulumi:"context"`
	Namespace          string   `pulumi:"namespace"`
	ServerVersion      string   `pulumi:"serverVersion"`
	ExternalSecretsAPI []string `pulumi:"externalSecretsApiVersions"`
}

// Annotate documents the function.
func (f *GetClusterInfo) Annotate(a infer.Annotator) {
	a.Describe(f, "Reports the cluster the esosync provider is configured for (API server, kubeconfig context, "+
		"default namespace, Kubernetes version) and which external-secrets.io API versions it serves. "+
		"Contacts the cluster, so it fails with the connection error when the cluster is unreachable.")
}

// Annotate documents the result.
func (r *GetClusterInfoResult) Annotate(a infer.Annotator) {
	a.Describe(&r.Host, "URL of the Kubernetes API server.")
	a.Describe(&r.Context, "Kubeconfig context in use.")
	a.Describe(&r.Namespace, "Default namespace for namespaced esosync resources that do not set one.")
	a.Describe(&r.ServerVersion, "Kubernetes version reported by the API server, e.g. `v1.34.10`.")
	a.Describe(&r.ExternalSecretsAPI, "Served versions of the external-secrets.io API group, e.g. `[\"v1\", \"v1beta1\"]`; "+
		"empty until External Secrets Operator's CRDs are installed.")
}

// Invoke connects to the cluster and describes it.
func (GetClusterInfo) Invoke(ctx context.Context, _ infer.FunctionRequest[GetClusterInfoArgs]) (infer.FunctionResponse[GetClusterInfoResult], error) {
	var out infer.FunctionResponse[GetClusterInfoResult]
	cluster, err := engineOf(ctx).Cluster()
	if err != nil {
		return out, err
	}
	version, err := cluster.Discovery.ServerVersion()
	if err != nil {
		return out, fmt.Errorf("contacting the Kubernetes API server at %s: %w", cluster.REST.Host, err)
	}
	groups, err := cluster.Discovery.ServerGroups()
	if err != nil && !errors.IsNotFound(err) {
		return out, fmt.Errorf("listing API groups at %s: %w", cluster.REST.Host, err)
	}
	versions := []string{}
	if groups != nil {
		for _, g := range groups.Groups {
			if g.Name != esoGroup {
				continue
			}
			for _, v := range g.Versions {
				versions = append(versions, v.Version)
			}
		}
	}
	slices.Sort(versions)
	out.Output = GetClusterInfoResult{
		Host:               cluster.REST.Host,
		Context:            cluster.Context,
		Namespace:          cluster.Namespace,
		ServerVersion:      version.GitVersion,
		ExternalSecretsAPI: versions,
	}
	return out, nil
}
