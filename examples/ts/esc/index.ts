// Pulumi ESC two ways with the generated TypeScript SDK: an ESC-backed
// store, and a Vault store whose token is an ESC credential source (the
// provider opens the environment; state keeps only a hash, so a rotation
// in ESC shows at refresh and `pulumi up` rolls it into the cluster).
import * as pulumi from "@pulumi/pulumi";
import * as esosync from "@esosync/pulumi-esosync";

const config = new pulumi.Config();
const escApiUrl = config.get("escApiUrl") ?? "https://api.pulumi.com/api/esc";
const escToken = config.requireSecret("escToken");
const escProject = config.get("escProject") ?? "esosync-demo";

// The provider opens ESC environments named by `esc` credential sources with this token.
const provider = new esosync.Provider("esosync", {
    escApiUrl,
    escAccessToken: escToken,
    escOrganization: pulumi.getOrganization(),
});

const eso = new esosync.Operator("eso", { chartVersion: "0.20.4" }, { provider });

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
}, { provider, dependsOn: [eso] });

const appConfig = new esosync.ExternalSecret("app-config", {
    store: esc.ref,
    refreshInterval: "1h",
    target: { name: "app-config" },
    dataFrom: [{ extract: { key: "app" } }],
}, { provider });

const vault = new esosync.ClusterSecretStore("vault", {
    backend: {
        vault: {
            server: config.require("vaultAddress"),
            path: "secret",
            version: "v2",
            auth: { token: { esc: { environment: `${escProject}/vault-creds`, path: "vault.token" } } },
        },
    },
}, { provider, dependsOn: [eso] });

const db = new esosync.ExternalSecret("db", {
    store: vault.ref,
    refreshInterval: "1h",
    target: { name: "db-secret" },
    dataFrom: [{ extract: { key: "my-app/db" } }],
}, { provider });

export const appConfigKeys = appConfig.keys;
export const dbKeys = db.keys;
export const dbDataHash = db.dataHash;
export const vaultCredentialSources = vault.credentialSourcesHash;
