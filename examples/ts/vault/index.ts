// The Vault scenario with the generated TypeScript SDK: ESO through Helm, a
// Vault ClusterSecretStore whose token is a Pulumi secret, and an
// ExternalSecret that keeps the Secret app-secret current.
import * as pulumi from "@pulumi/pulumi";
import * as esosync from "@esosync/pulumi-esosync";

const config = new pulumi.Config();
const webhook = config.getBoolean("esoWebhook") ?? true;

const eso = new esosync.Operator("eso", {
    chart: config.get("esoChart") ?? "https://charts.external-secrets.io",
    crds: config.get("esoCrds") ?? "",
    waitForController: config.getBoolean("waitForController") ?? true,
    values: { webhook: { create: webhook }, certController: { create: webhook } },
});

const vault = new esosync.ClusterSecretStore("vault", {
    backend: {
        vault: {
            server: config.require("vaultAddress"),
            path: "secret",
            version: "v2",
            auth: { token: { value: config.requireSecret("vaultToken") } },
        },
    },
    waitForReady: config.getBoolean("storeWaitForReady") ?? true,
}, { dependsOn: [eso] });

const app = new esosync.ExternalSecret("app", {
    namespace: config.get("appNamespace") ?? "default",
    store: vault.ref,
    sync: (config.get("syncMode") ?? "controller") as esosync.SyncMode,
    refreshInterval: "1h",
    target: { name: "app-secret" },
    data: [
        { secretKey: "username", remoteRef: { key: "my-app/config", property: "username" } },
        { secretKey: "password", remoteRef: { key: "my-app/config", property: "password" } },
    ],
});

export const secretName = app.secretName;
export const keys = app.keys;
export const dataHash = app.dataHash;
export const remoteVersions = app.remoteVersions;
export const ready = app.ready;
