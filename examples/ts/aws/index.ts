// The AWS scenario with the generated TypeScript SDK: a Secrets Manager
// ClusterSecretStore whose access keys are Pulumi secrets, and an
// ExternalSecret that extracts every key of the JSON secret app-secret.
import * as pulumi from "@pulumi/pulumi";
import * as esosync from "@esosync/pulumi-esosync";

const config = new pulumi.Config();

const eso = new esosync.Operator("eso", { chartVersion: "0.20.4" });

const aws = new esosync.ClusterSecretStore("aws", {
    backend: {
        aws: {
            service: "SecretsManager",
            region: config.get("awsRegion") ?? "us-east-1",
            auth: {
                secretRef: {
                    accessKeyId: { value: config.requireSecret("awsAccessKeyId") },
                    secretAccessKey: { value: config.requireSecret("awsSecretAccessKey") },
                },
            },
        },
    },
}, { dependsOn: [eso] });

const app = new esosync.ExternalSecret("app", {
    store: aws.ref,
    refreshInterval: "1h",
    target: { name: "app-secret" },
    dataFrom: [{ extract: { key: "app-secret" } }],
});

export const secretName = app.secretName;
export const keys = app.keys;
export const dataHash = app.dataHash;
export const remoteVersions = app.remoteVersions;
export const ready = app.ready;
