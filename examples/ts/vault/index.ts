// The Vault scenario with the generated TypeScript SDK: ESO through Helm, a
// Vault ClusterSecretStore whose token is a Pulumi secret, and an
// ExternalSecret that keeps the Secret app-secret current.
import * as pulumi from "@pulumi/pulumi";
import * as esosync from "@esosync/pulumi-esosync";

const config = new pulumi.Config();

const eso = new esosync.Operator("eso", { chartVersion: "0.20.4" });

const vault = new esosync.ClusterSecretStore("vault", {
    backend: {
        vault: {
            server: config.require("vaultAddress"),
            path: "secret",
            version: "v2",
            auth: { token: { value: config.requireSecret("vaultToken") } },
        },
    },
}, { dependsOn: [eso] });

const app = new esosync.ExternalSecret("app", {
    store: vault.ref,
    refreshInterval: "1h",
    target: { name: "app-secret" },
    data: [
        { secretKey: "username", remoteRef: { key: "my-app/config", property: "username" } },
        { secretKey: "password", remoteRef: { key: "my-app/config", property: "password" } },
    ],
}, { customTimeouts: { create: "5m", update: "5m" } }); // how long `pulumi up` waits for ESO to sync

export const secretName = app.secretName;
export const keys = app.keys;
export const dataHash = app.dataHash;
export const remoteVersions = app.remoteVersions;
export const ready = app.ready;
