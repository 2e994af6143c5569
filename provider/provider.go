// Package provider is the Pulumi face of esosync: it declares the provider's
// configuration, resources and functions with pulumi-go-provider's infer
// package and hands the work to the internal packages.
package provider

import (
	"context"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

// Name is the Pulumi package name; resource tokens are esosync:index:<Name>.
const Name = "esosync"

// Version is the provider version, set at link time by the Makefile
// (-X github.com/esosync/pulumi-esosync/provider.Version=...).
var Version = "0.1.0"

// New builds the provider. Tests serve it in-process; the plugin binary runs it.
func New() (p.Provider, error) {
	prov, err := infer.NewProviderBuilder().
		WithDisplayName("esosync").
		WithDescription("Manage External Secrets Operator (ESO), its SecretStores and ExternalSecrets as typed Pulumi resources: "+
			"target Secrets are current when `pulumi up` returns, drift shows at `pulumi refresh`, and no secret value reaches Pulumi state.").
		WithKeywords("kubernetes", "external-secrets", "secrets", "vault", "aws", "esc", "category/cloud", "kind/native").
		WithHomepage("https://github.com/esosync/pulumi-esosync").
		WithRepository("https://github.com/esosync/pulumi-esosync").
		WithPublisher("esosync").
		WithLicense("Apache-2.0").
		WithNamespace("esosync").
		WithLanguageMap(languageMap()).
		WithConfig(infer.Config(&Config{})).
		WithFunctions(infer.Function(&GetClusterInfo{})).
		WithResources(infer.Resource(&SecretStore{}), infer.Resource(&ClusterSecretStore{}), infer.Resource(&ExternalSecret{}),
			infer.Resource(&ExternalSecretSet{})).
		WithResources(infer.Resource(&Operator{})).
		// Without the map, tokens follow the Go package path, which differs
		// between the plugin binary and `go test` binaries.
		WithModuleMap(map[tokens.ModuleName]tokens.ModuleName{"provider": "index"}).
		Build()
	if err != nil {
		return p.Provider{}, err
	}
	return keepReadSecrets(prov), nil
}

// Run serves the provider over gRPC to the Pulumi engine.
func Run(ctx context.Context) error {
	prov, err := New()
	if err != nil {
		return err
	}
	return prov.Run(ctx, Name, Version)
}

// languageMap names the generated SDK packages for each language.
func languageMap() map[string]any {
	return map[string]any{
		"nodejs": map[string]any{
			"packageName":          "@esosync/pulumi-esosync",
			"respectSchemaVersion": true,
		},
		"python": map[string]any{
			"packageName":          "pulumi_esosync",
			"respectSchemaVersion": true,
			"pyproject":            map[string]any{"enabled": true},
		},
		"go": map[string]any{
			"importBasePath":                 "github.com/esosync/pulumi-esosync/sdk/go/esosync",
			"generateResourceContainerTypes": true,
			"respectSchemaVersion":           true,
		},
	}
}
