"""The Vault scenario with the generated Python SDK (pulumi_esosync).

ESO through Helm, a Vault ClusterSecretStore whose token is a Pulumi
secret, and an ExternalSecret that keeps the Secret app-secret current.
"""

import pulumi
import pulumi_esosync as esosync

config = pulumi.Config()

eso = esosync.Operator("eso", chart_version="0.20.4")

vault = esosync.ClusterSecretStore(
    "vault",
    backend={
        "vault": {
            "server": config.require("vaultAddress"),
            "path": "secret",
            "version": "v2",
            "auth": {"token": {"value": config.require_secret("vaultToken")}},
        }
    },
    opts=pulumi.ResourceOptions(depends_on=[eso]),
)

app = esosync.ExternalSecret(
    "app",
    store=vault.ref,
    refresh_interval="1h",
    target={"name": "app-secret"},
    data=[
        {"secret_key": "username", "remote_ref": {"key": "my-app/config", "property": "username"}},
        {"secret_key": "password", "remote_ref": {"key": "my-app/config", "property": "password"}},
    ],
    # How long `pulumi up` waits for ESO to sync the Secret.
    opts=pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create="5m", update="5m")),
)

pulumi.export("secretName", app.secret_name)
pulumi.export("keys", app.keys)
pulumi.export("dataHash", app.data_hash)
pulumi.export("remoteVersions", app.remote_versions)
pulumi.export("ready", app.ready)
