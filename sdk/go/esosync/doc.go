// Manage External Secrets Operator (ESO), its SecretStores and ExternalSecrets as typed Pulumi resources: target Secrets are current when `pulumi up` returns, drift shows at `pulumi refresh`, and no secret value reaches Pulumi state.
package esosync
