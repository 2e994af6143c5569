package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/esosync/pulumi-esosync/tests/harness"
)

// The programs the bench runs are TypeScript, the language of the Pulumi
// blog post our users start from, so the esosync programs and the
// pulumi-kubernetes anchor pay the same language host. Each reads n, m,
// its namespace and its store from stack config.

// esosyncProgram declares n ExternalSecrets (form "items") or one
// ExternalSecretSet of n items (form "set") over m remote keys.
const esosyncProgram = `import * as pulumi from "@pulumi/pulumi";
import * as esosync from "@esosync/pulumi-esosync";

const cfg = new pulumi.Config();
const n = cfg.requireNumber("n"), m = cfg.requireNumber("m");
const namespace = cfg.require("namespace");
const sync = cfg.require("sync") as esosync.types.enums.SyncMode;
const store = { kind: "ClusterSecretStore", name: cfg.require("store") };
const data = (i: number) => [{ secretKey: "password", remoteRef: { key: "bench/key-" + (i % m), property: "password" } }];

if (cfg.require("form") === "set") {
    const items: Record<string, esosync.types.input.ExternalSecretSetItemArgs> = {};
    for (let i = 0; i < n; i++) {
        items["es-" + i] = { data: data(i) };
    }
    new esosync.ExternalSecretSet("fleet", { namespace, store, sync, items }, { customTimeouts: { create: "20m", update: "20m" } });
} else {
    for (let i = 0; i < n; i++) {
        new esosync.ExternalSecret("es-" + i, { name: "es-" + i, namespace, store, sync, data: data(i) },
            { customTimeouts: { create: "20m", update: "20m" } });
    }
}
`

// anchorProgram is what users write today with pulumi-kubernetes: the
// store's token Secret, the ClusterSecretStore and n ExternalSecrets as
// custom resources, synced by ESO in the cluster.
const anchorProgram = `import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";

const cfg = new pulumi.Config();
const n = cfg.requireNumber("n"), m = cfg.requireNumber("m");
const namespace = cfg.require("namespace");
const storeName = cfg.require("store");

const token = new k8s.core.v1.Secret("vault-token", {
    metadata: { name: storeName + "-token", namespace },
    stringData: { token: cfg.requireSecret("vaultToken") },
});
const store = new k8s.apiextensions.CustomResource("store", {
    apiVersion: "external-secrets.io/v1",
    kind: "ClusterSecretStore",
    metadata: { name: storeName },
    spec: { provider: { vault: {
        server: cfg.require("vaultAddress"), path: "secret", version: "v2",
        auth: { tokenSecretRef: { name: token.metadata.name, key: "token", namespace } },
    } } },
});
for (let i = 0; i < n; i++) {
    new k8s.apiextensions.CustomResource("es-" + i, {
        apiVersion: "external-secrets.io/v1",
        kind: "ExternalSecret",
        metadata: { name: "es-" + i, namespace },
        spec: {
            refreshInterval: "1h",
            secretStoreRef: { kind: "ClusterSecretStore", name: storeName },
            target: { name: "es-" + i },
            data: [{ secretKey: "password", remoteRef: { key: "bench/key-" + (i % m), property: "password" } }],
        },
    }, { dependsOn: [store] });
}
`

const tsconfig = `{
    "compilerOptions": {
        "strict": true, "outDir": "bin", "target": "es2020", "module": "commonjs",
        "moduleResolution": "node", "skipLibCheck": true
    },
    "files": ["index.ts"]
}
`

// baseProgram installs ESO with esosync's Operator (the ESO module's chart
// and CRDs, no webhook) and the ClusterSecretStores the esosync programs
// read from, in YAML.
func baseProgram(chart, crds, vaultURL string) string {
	return fmt.Sprintf(`name: bench-base
runtime: yaml
config:
  vaultToken:
    type: string
    secret: true
  awsAccessKeyId:
    type: string
    secret: true
  awsSecretAccessKey:
    type: string
    secret: true
resources:
  eso:
    type: esosync:index:Operator
    properties:
      chart: %q
      crds: %q
      waitForController: false
      values:
        webhook:
          create: false
        certController:
          create: false
  vault:
    type: esosync:index:ClusterSecretStore
    properties:
      name: bench-vault
      waitForReady: false
      backend:
        vault:
          server: %q
          path: secret
          version: v2
          auth:
            token:
              value: ${vaultToken}
    options:
      dependsOn:
        - ${eso}
  aws:
    type: esosync:index:ClusterSecretStore
    properties:
      name: bench-aws
      waitForReady: false
      backend:
        aws:
          service: SecretsManager
          region: us-east-1
          auth:
            secretRef:
              accessKeyId:
                value: ${awsAccessKeyId}
              secretAccessKey:
                value: ${awsSecretAccessKey}
    options:
      dependsOn:
        - ${eso}
`, chart, crds, vaultURL)
}

// nodeModules is the test bed's node_modules (with @pulumi/kubernetes)
// plus the generated esosync SDK compiled as @esosync/pulumi-esosync.
func nodeModules(work string) (string, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return "", err
	}
	bin, err := harness.ToolsBin()
	if err != nil {
		return "", err
	}
	modules, err := filepath.EvalSymlinks(filepath.Join(bin, "esosync-node-modules"))
	if err != nil {
		return "", fmt.Errorf("the Node.js toolchain is missing (make tools): %w", err)
	}
	sdk := filepath.Join(work, "sdk-nodejs")
	if err := os.CopyFS(sdk, os.DirFS(filepath.Join(root, "sdk", "nodejs"))); err != nil {
		return "", err
	}
	if err := os.Symlink(modules, filepath.Join(sdk, "node_modules")); err != nil {
		return "", err
	}
	if out, err := exec.Command(filepath.Join(modules, ".bin", "tsc"), "-p", sdk).CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling the generated TypeScript SDK: %w\n%s", err, out)
	}
	pkg, err := os.ReadFile(filepath.Join(sdk, "package.json"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(sdk, "bin", "package.json"), pkg, 0o644); err != nil {
		return "", err
	}
	nm := filepath.Join(work, "node_modules")
	if err := os.MkdirAll(filepath.Join(nm, "@esosync"), 0o755); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(modules)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(modules, e.Name()), filepath.Join(nm, e.Name())); err != nil {
			return "", err
		}
	}
	return nm, os.Symlink(filepath.Join(sdk, "bin"), filepath.Join(nm, "@esosync", "pulumi-esosync"))
}

// writeTSProgram writes a TypeScript program named name into dir.
func writeTSProgram(dir, name, source, nodeModules string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"Pulumi.yaml":   "name: " + name + "\nruntime: nodejs\n",
		"package.json":  `{"name": "` + name + `", "private": true, "main": "index.ts"}` + "\n",
		"tsconfig.json": tsconfig,
		"index.ts":      source,
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.Symlink(nodeModules, filepath.Join(dir, "node_modules"))
}

// writeYAMLProgram writes a Pulumi YAML program into dir.
func writeYAMLProgram(dir, source string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte(strings.TrimLeft(source, "\n")), 0o644)
}
