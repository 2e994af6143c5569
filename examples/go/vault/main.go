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
		syncMode := cfg.Get("syncMode")
		if syncMode == "" {
			syncMode = "controller"
		}
		namespace := cfg.Get("appNamespace")
		if namespace == "" {
			namespace = "default"
		}
		chart := cfg.Get("esoChart")
		if chart == "" {
			chart = "https://charts.external-secrets.io"
		}
		waitForController := true
		if v, err := cfg.TryBool("waitForController"); err == nil {
			waitForController = v
		}
		webhook := true
		if v, err := cfg.TryBool("esoWebhook"); err == nil {
			webhook = v
		}
		storeWait := true
		if v, err := cfg.TryBool("storeWaitForReady"); err == nil {
			storeWait = v
		}

		eso, err := esosync.NewOperator(ctx, "eso", &esosync.OperatorArgs{
			Chart:             pulumi.String(chart),
			Crds:              pulumi.String(cfg.Get("esoCrds")),
			WaitForController: pulumi.Bool(waitForController),
			Values: pulumi.Map{
				"webhook":        pulumi.Map{"create": pulumi.Bool(webhook)},
				"certController": pulumi.Map{"create": pulumi.Bool(webhook)},
			},
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
			WaitForReady: pulumi.Bool(storeWait),
		}, pulumi.DependsOn([]pulumi.Resource{eso}))
		if err != nil {
			return err
		}
		app, err := esosync.NewExternalSecret(ctx, "app", &esosync.ExternalSecretArgs{
			Namespace:       pulumi.String(namespace),
			Store:           vault.Ref,
			Sync:            esosync.SyncMode(syncMode),
			RefreshInterval: pulumi.String("1h"),
			Target:          esosync.ExternalSecretTargetArgs{Name: pulumi.String("app-secret")},
			Data: esosync.ExternalSecretDataArray{
				esosync.ExternalSecretDataArgs{SecretKey: pulumi.String("username"),
					RemoteRef: esosync.RemoteRefArgs{Key: pulumi.String("my-app/config"), Property: pulumi.String("username")}},
				esosync.ExternalSecretDataArgs{SecretKey: pulumi.String("password"),
					RemoteRef: esosync.RemoteRefArgs{Key: pulumi.String("my-app/config"), Property: pulumi.String("password")}},
			},
		})
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
