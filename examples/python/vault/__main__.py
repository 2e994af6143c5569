"""The Vault scenario with the generated Python SDK (pulumi_esosync).

ESO through Helm, a Vault ClusterSecretStore whose token is a Pulumi
secret, and an ExternalSecret that keeps the Secret app-secret current.
"""

import pulumi
import pulumi_esosync as esosync

config = pulumi.Config()
webhook = config.get_bool("esoWebhook")
webhook = True if webhook is None else webhook
wait_for_controller = config.get_bool("waitForController")
store_wait = config.get_bool("storeWaitForReady")

eso = esosync.Operator(
    "eso",
    chart=config.get("esoChart") or "https://charts.external-secrets.io",
    crds=config.get("esoCrds") or "",
    wait_for_controller=True if wait_for_controller is None else wait_for_controller,
    values={"webhook": {"create": webhook}, "certController": {"create": webhook}},
)

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
    wait_for_ready=True if store_wait is None else store_wait,
    opts=pulumi.ResourceOptions(depends_on=[eso]),
)

app = esosync.ExternalSecret(
    "app",
    namespace=config.get("appNamespace") or "default",
    store=vault.ref,
    sync=config.get("syncMode") or "controller",
    refresh_interval="1h",
    target={"name": "app-secret"},
    data=[
        {"secret_key": "username", "remote_ref": {"key": "my-app/config", "property": "username"}},
        {"secret_key": "password", "remote_ref": {"key": "my-app/config", "property": "password"}},
    ],
)

pulumi.export("secretName", app.secret_name)
pulumi.export("keys", app.keys)
pulumi.export("dataHash", app.data_hash)
pulumi.export("remoteVersions", app.remote_versions)
pulumi.export("ready", app.ready)
