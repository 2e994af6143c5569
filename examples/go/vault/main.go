// Command vault-go is the Vault scenario written with the generated Go SDK:
// ESO through Helm, a Vault ClusterSecretStore and an ExternalSecret that
// keeps the Secret app-secret current.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/esosync/pulumi-esosync/sdk/go/esosync"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg := config.New(ctx, "")

		eso, err := esosync.NewOperator(ctx, "eso", &esosync.OperatorArgs{
			ChartVersion: pulumi.String("0.20.4"),
		})
		if err != nil {
			return err
		}
		vault, err := esosync.NewClusterSecretStore(ctx, "vault", &esosync.ClusterSecretStoreArgs{
			Backend: esosync.StoreBackendArgs{Vault: esosync.VaultBackendArgs{
				Server:  pulumi.String(cfg.Require("vaultAddress")),
				Path:    pulumi.String("secret"),
				Version: esosync.VaultKVVersionV2,
				Auth:    esosync.VaultAuthArgs{Token: esosync.CredentialSourceArgs{Value: cfg.RequireSecret("vaultToken")}},
			}},
		}, pulumi.DependsOn([]pulumi.Resource{eso}))
		if err != nil {
			return err
		}
		app, err := esosync.NewExternalSecret(ctx, "app", &esosync.ExternalSecretArgs{
			Store:           vault.Ref,
			RefreshInterval: pulumi.String("1h"),
			Target:          esosync.ExternalSecretTargetArgs{Name: pulumi.String("app-secret")},
			Data: esosync.ExternalSecretDataArray{
				esosync.ExternalSecretDataArgs{SecretKey: pulumi.String("username"),
					RemoteRef: esosync.RemoteRefArgs{Key: pulumi.String("my-app/config"), Property: pulumi.String("username")}},
				esosync.ExternalSecretDataArgs{SecretKey: pulumi.String("password"),
					RemoteRef: esosync.RemoteRefArgs{Key: pulumi.String("my-app/config"), Property: pulumi.String("password")}},
			},
		}, pulumi.Timeouts(&pulumi.CustomTimeouts{Create: "5m", Update: "5m"})) // how long `pulumi up` waits for ESO to sync
		if err != nil {
			return err
		}
		ctx.Export("secretName", app.SecretName)
		ctx.Export("keys", app.Keys)
		ctx.Export("dataHash", app.DataHash)
		ctx.Export("remoteVersions", app.RemoteVersions)
		ctx.Export("ready", app.Ready)
		return nil
	})
}
