// Pulumi ESC two ways with the generated TypeScript SDK: an ESC-backed
// store, and a Vault store whose token is an ESC credential source (the
// provider opens the environment; state keeps only a hash, so a rotation
// in ESC shows at refresh and `pulumi up` rolls it into the cluster).
import * as pulumi from "@pulumi/pulumi";
import * as esosync from "@esosync/pulumi-esosync";

const config = new pulumi.Config();
const webhook = config.getBoolean("esoWebhook") ?? true;
const escApiUrl = config.get("escApiUrl") ?? "https://api.pulumi.com/api/esc";
const escToken = config.requireSecret("escToken");
const escProject = config.get("escProject") ?? "esosync-demo";
const syncMode = (config.get("syncMode") ?? "controller") as esosync.SyncMode;
const waitForReady = config.getBoolean("storeWaitForReady") ?? true;
const namespace = config.get("appNamespace") ?? "default";

const provider = new esosync.Provider("esosync", {
    escApiUrl,
    escAccessToken: escToken,
    escOrganization: pulumi.getOrganization(),
});
const opts = { provider };

const eso = new esosync.Operator("eso", {
    chart: config.get("esoChart") ?? "https://charts.external-secrets.io",
    crds: config.get("esoCrds") ?? "",
    waitForController: config.getBoolean("waitForController") ?? true,
    values: { webhook: { create: webhook }, certController: { create: webhook } },
}, opts);

const esc = new esosync.ClusterSecretStore("esc", {
    backend: {
        esc: {
            organization: pulumi.getOrganization(),
            project: escProject,
            environment: "app",
            apiUrl: escApiUrl,
            auth: { accessToken: { value: escToken } },
        },
    },
    waitForReady,
}, { ...opts, dependsOn: [eso] });

const appConfig = new esosync.ExternalSecret("app-config", {
    namespace,
    store: esc.ref,
    sync: syncMode,
    refreshInterval: "1h",
    target: { name: "app-config" },
    dataFrom: [{ extract: { key: "app" } }],
}, opts);

const vault = new esosync.ClusterSecretStore("vault", {
    backend: {
        vault: {
            server: config.require("vaultAddress"),
            path: "secret",
            version: "v2",
            auth: { token: { esc: { environment: `${escProject}/vault-creds`, path: "vault.token" } } },
        },
    },
    waitForReady,
}, { ...opts, dependsOn: [eso] });

const db = new esosync.ExternalSecret("db", {
    namespace,
    store: vault.ref,
    sync: syncMode,
    refreshInterval: "1h",
    target: { name: "db-secret" },
    dataFrom: [{ extract: { key: "my-app/db" } }],
}, opts);

export const appConfigKeys = appConfig.keys;
export const dbKeys = db.keys;
export const dbDataHash = db.dataHash;
export const vaultCredentialSources = vault.credentialSourcesHash;
