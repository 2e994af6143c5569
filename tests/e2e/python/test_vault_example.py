"""End to end: examples/python/vault through the real pulumi CLI.

Run by tests/e2e/python_test.go (TestVaultExamplePython), which starts the
loopback test bed, installs the generated SDK, copies the example with the
test bed's overrides (tests/e2e/testdata/testbed) and hands everything over
in environment variables. Only the standard library talks to Kubernetes and
Vault, so the test needs nothing beyond the pulumi SDK and pytest.
"""

import base64
import json
import os
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ENV = os.environ
PROGRAM = ENV.get("ESOSYNC_PROGRAM_DIR", "")
NS = ENV.get("ESOSYNC_NAMESPACE", "e2e-vault-python")

pytestmark = pytest.mark.skipif(not PROGRAM, reason="run through tests/e2e/python_test.go")

TIMINGS = {}


def pulumi(*args, check=True):
    began = time.monotonic()
    out = subprocess.run(["pulumi", *args], cwd=PROGRAM, capture_output=True, text=True)
    name = args[0] if args[0] != "config" else None
    if name:
        TIMINGS.setdefault(name, []).append(round(time.monotonic() - began, 1))
    text = out.stdout + out.stderr
    if check and out.returncode != 0:
        raise AssertionError(f"pulumi {' '.join(args)} failed:\n{text}")
    return text


def last_changes(kind):
    """What the stack's latest operation did: resources per operation ("create",
    "update", "same", ...) from `pulumi stack history --json`, the figures the
    CLI prints as "1 updated" or "4 unchanged". The operation must be of kind
    ("update" for up, "refresh") and have succeeded."""
    out = subprocess.run(["pulumi", "stack", "history", "--json", "--page-size", "1"],
                         cwd=PROGRAM, capture_output=True, text=True)
    assert out.returncode == 0, f"pulumi stack history failed:\n{out.stdout}{out.stderr}"
    latest = json.loads(out.stdout)[0]
    assert latest["kind"] == kind and latest["result"] == "succeeded", latest
    return latest.get("resourceChanges") or {}


def changed(changes):
    """The changes without the unchanged resources: empty for a no-op."""
    return {op: n for op, n in changes.items() if op != "same" and n}


def kube(method, path, body=None):
    ctx = ssl.create_default_context(cafile=ENV["ESOSYNC_KUBE_CA"])
    req = urllib.request.Request(ENV["ESOSYNC_KUBE_SERVER"] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", "Bearer " + ENV["ESOSYNC_KUBE_TOKEN"])
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def vault_put(data):
    req = urllib.request.Request(ENV["VAULT_ADDR"] + "/v1/secret/data/my-app/config", method="POST",
                                 data=json.dumps({"data": data}).encode())
    req.add_header("X-Vault-Token", ENV["VAULT_TOKEN"])
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200


def secret_data(name):
    status, obj = kube("GET", f"/api/v1/namespaces/{NS}/secrets/{name}")
    assert status == 200, f"Secret {NS}/{name}: HTTP {status}"
    return {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}


def test_vault_example():
    status, _ = kube("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    assert status in (201, 409)
    username, password = "user-" + secrets.token_hex(8), "pw-" + secrets.token_hex(12)
    vault_put({"username": username, "password": password})
    fetched = [username, password]

    pulumi("stack", "init", "dev")
    pulumi("config", "set", "vaultAddress", ENV["VAULT_ADDR"])
    pulumi("config", "set", "--secret", "vaultToken", ENV["VAULT_TOKEN"])

    logs = pulumi("up", "--yes", "--skip-preview", "-v=9", "--logtostderr", "--logflow")
    assert secret_data("app-secret") == {"username": username, "password": password}
    outputs = json.loads(pulumi("stack", "output", "--json"))
    assert outputs["secretName"] == "app-secret" and outputs["ready"] is True
    assert sorted(outputs["keys"]) == ["password", "username"]
    first_hash = outputs["dataHash"]

    # Two refreshes in a row, then what scheduled drift detection runs: no changes.
    for n in ("first", "second"):
        out = pulumi("refresh", "--yes", "--skip-preview")
        changes = last_changes("refresh")
        assert not changed(changes), f"{n} refresh right after up reports changes: {changes}\n{out}"
    out = pulumi("refresh", "--preview-only")
    assert "to update" not in out and "to delete" not in out, f"refresh --preview-only plans changes:\n{out}"
    print(f"two refreshes in a row: {changes} each; refresh --preview-only: no changes")

    password2 = "pw2-" + secrets.token_hex(12)
    fetched.append(password2)
    vault_put({"username": username, "password": password2})
    out = pulumi("refresh", "--yes", "--skip-preview")
    changes = last_changes("refresh")
    assert changes.get("update") == 1, f"refresh after a Vault change does not report the ExternalSecret changed: {changes}\n{out}"
    assert secret_data("app-secret")["password"] == password  # refresh changes nothing in the cluster
    logs += pulumi("up", "--yes", "--skip-preview", "-v=9", "--logtostderr", "--logflow")
    assert secret_data("app-secret") == {"username": username, "password": password2}
    assert json.loads(pulumi("stack", "output", "--json"))["dataHash"] != first_hash

    state = pulumi("stack", "export", "--show-secrets")
    shown = pulumi("stack", "output", "--json", "--show-secrets")
    for value in fetched:
        for name, text in (("state", state), ("outputs", shown), ("logs", logs)):
            assert value not in text, f"a value fetched from Vault is in the {name}"

    pulumi("destroy", "--yes", "--skip-preview")
    status, _ = kube("GET", f"/api/v1/namespaces/{NS}/secrets/app-secret")
    assert status == 404, "destroy left the target Secret"
    status, listed = kube("GET", "/api/v1/secrets?labelSelector=app.kubernetes.io%2Fmanaged-by%3Desosync")
    assert status == 200 and listed["items"] == [], "destroy left a managed credentials Secret"
    print("\npython example timings (s): " + ", ".join(f"{k}={v}" for k, v in TIMINGS.items()))
