package provider_test

import (
	"strings"
	"testing"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
)

// props builds a property map from plain Go values.
func props(m map[string]any) property.Map {
	return resource.FromResourcePropertyMap(resource.NewPropertyMapFromMap(m))
}

func urn(typ, name string) resource.URN {
	return resource.URN("urn:pulumi:test::test::esosync:index:" + typ + "::" + name)
}

func vaultBackend(mutate func(v map[string]any)) map[string]any {
	v := map[string]any{
		"server":  "http://127.0.0.1:8200",
		"path":    "secret",
		"version": "v2",
		"auth":    map[string]any{"token": map[string]any{"value": "t"}},
	}
	if mutate != nil {
		mutate(v)
	}
	return map[string]any{"vault": v}
}

func awsBackend(mutate func(a map[string]any)) map[string]any {
	a := map[string]any{
		"region": "us-east-1",
		"auth": map[string]any{"secretRef": map[string]any{
			"accessKeyId":     map[string]any{"value": "AKIAEXAMPLE"},
			"secretAccessKey": map[string]any{"value": "secret"},
		}},
	}
	if mutate != nil {
		mutate(a)
	}
	return map[string]any{"aws": a}
}

func escBackend(mutate func(e map[string]any)) map[string]any {
	e := map[string]any{
		"organization": "acme",
		"project":      "platform",
		"environment":  "prod",
		"auth":         map[string]any{"accessToken": map[string]any{"value": "pul-token"}},
	}
	if mutate != nil {
		mutate(e)
	}
	return map[string]any{"esc": e}
}

func externalSecret(mutate func(m map[string]any)) map[string]any {
	m := map[string]any{
		"namespace": "app",
		"store":     map[string]any{"kind": "ClusterSecretStore", "name": "vault"},
		"data": []any{map[string]any{"secretKey": "password",
			"remoteRef": map[string]any{"key": "my-app/config", "property": "password"}}},
	}
	if mutate != nil {
		mutate(m)
	}
	return m
}

// setItem is one item of an ExternalSecretSet reading remote key key.
func setItem(key string) map[string]any {
	return map[string]any{"data": []any{map[string]any{"secretKey": "password",
		"remoteRef": map[string]any{"key": key, "property": "password"}}}}
}

func externalSecretSet(mutate func(m map[string]any)) map[string]any {
	m := map[string]any{
		"namespace": "apps",
		"store":     map[string]any{"kind": "ClusterSecretStore", "name": "vault"},
		"items":     map[string]any{"app-a": setItem("apps/a")},
	}
	if mutate != nil {
		mutate(m)
	}
	return m
}

// TestCheckRejectsBadInputs runs what `pulumi preview` runs on bad inputs:
// each must fail with the field path in the message, without a cluster.
func TestCheckRejectsBadInputs(t *testing.T) {
	tests := []struct {
		name     string
		typ      string
		inputs   map[string]any
		wantPath string
		wantText string
	}{
		{"missing server", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) { v["server"] = "" })},
			"backend.vault.server", "must not be empty"},
		{"server not a URL", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) { v["server"] = "vault:8200" })},
			"backend.vault.server", "not an http(s) URL"},
		{"bad KV version", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) { v["version"] = "v3" })},
			"backend.vault.version", "v3"},
		{"no backend", "ClusterSecretStore", map[string]any{"backend": map[string]any{}},
			"backend", "exactly one backend"},
		{"two backends", "ClusterSecretStore", map[string]any{"backend": map[string]any{
			"vault": vaultBackend(nil)["vault"], "aws": awsBackend(nil)["aws"]}}, "backend", "exactly one backend"},
		{"aws bad region", "ClusterSecretStore", map[string]any{"backend": awsBackend(func(a map[string]any) { a["region"] = "Frankfurt" })},
			"backend.aws.region", "not an AWS region"},
		{"aws bad service", "ClusterSecretStore", map[string]any{"backend": awsBackend(func(a map[string]any) { a["service"] = "ParameterStoreX" })},
			"backend.aws.service", "ParameterStoreX"},
		{"aws role not an ARN", "ClusterSecretStore", map[string]any{"backend": awsBackend(func(a map[string]any) { a["role"] = "reader" })},
			"backend.aws.role", "not an IAM role ARN"},
		{"aws two auth methods", "SecretStore", map[string]any{"backend": awsBackend(func(a map[string]any) {
			a["auth"].(map[string]any)["jwt"] = map[string]any{"serviceAccountRef": map[string]any{"name": "eso"}}
		})}, "backend.aws.auth", "exactly one of secretRef or jwt"},
		{"aws empty access key", "SecretStore", map[string]any{"backend": awsBackend(func(a map[string]any) {
			a["auth"].(map[string]any)["secretRef"].(map[string]any)["accessKeyId"] = map[string]any{"value": ""}
		})}, "backend.aws.auth.secretRef.accessKeyId.value", "must not be empty"},
		{"esc short organization", "ClusterSecretStore", map[string]any{"backend": escBackend(func(e map[string]any) { e["organization"] = "ab" })},
			"backend.esc.organization", "3 to 40"},
		{"esc environment with slash", "ClusterSecretStore", map[string]any{"backend": escBackend(func(e map[string]any) { e["environment"] = "a/b" })},
			"backend.esc.environment", "without slashes"},
		{"esc apiUrl not a URL", "ClusterSecretStore", map[string]any{"backend": escBackend(func(e map[string]any) { e["apiUrl"] = "api.pulumi.com" })},
			"backend.esc.apiUrl", "not an http(s) URL"},
		{"esc source bad environment", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"token": map[string]any{"esc": map[string]any{"environment": "just-one", "path": "vault.token"}}}
		})}, "backend.vault.auth.token.esc.environment", "not an ESC environment"},
		{"esc source empty path", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"token": map[string]any{"esc": map[string]any{"environment": "platform/creds", "path": " "}}}
		})}, "backend.vault.auth.token.esc.path", "must not be empty"},
		{"esc source and value", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"token": map[string]any{"value": "t", "esc": map[string]any{"environment": "platform/creds", "path": "t"}}}
		})}, "backend.vault.auth.token", "only one of secretRef, value or esc"},
		{"two auth methods", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"token": map[string]any{"value": "t"},
				"userPass": map[string]any{"username": "u", "password": map[string]any{"value": "p"}}}
		})}, "backend.vault.auth", "exactly one"},
		{"no auth method", "SecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) { v["auth"] = map[string]any{} })},
			"backend.vault.auth", "exactly one"},
		{"credential with both sources", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"token": map[string]any{"value": "t", "secretRef": map[string]any{"name": "s", "key": "k"}}}
		})}, "backend.vault.auth.token", "only one"},
		{"credential with no source", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"token": map[string]any{}}
		})}, "backend.vault.auth.token", "set one of"},
		{"empty secretRef key", "SecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"token": map[string]any{"secretRef": map[string]any{"name": "vault-token", "key": ""}}}
		})}, "backend.vault.auth.token.secretRef.key", "must not be empty"},
		{"bad secretRef name", "SecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"token": map[string]any{"secretRef": map[string]any{"name": "Vault_Token", "key": "t"}}}
		})}, "backend.vault.auth.token.secretRef.name", "not a valid Kubernetes name"},
		{"kubernetes auth without role", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"kubernetes": map[string]any{"role": "", "serviceAccountRef": map[string]any{"name": "eso"}}}
		})}, "backend.vault.auth.kubernetes.role", "must not be empty"},
		{"userPass without username", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) {
			v["auth"] = map[string]any{"userPass": map[string]any{"username": "", "password": map[string]any{"value": "p"}}}
		})}, "backend.vault.auth.userPass.username", "must not be empty"},
		{"caBundle not PEM", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) { v["caBundle"] = "not a cert" })},
			"backend.vault.caBundle", "PEM"},
		{"mount path with slash", "ClusterSecretStore", map[string]any{"backend": vaultBackend(func(v map[string]any) { v["path"] = "/secret" })},
			"backend.vault.path", "mount path"},
		{"bad store namespace", "SecretStore", map[string]any{"namespace": "Not_A_Namespace", "backend": vaultBackend(nil)},
			"namespace", "not a valid namespace"},
		{"bad store name", "ClusterSecretStore", map[string]any{"name": "UPPER", "backend": vaultBackend(nil)},
			"name", "not a valid Kubernetes name"},
		{"empty remote key", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["data"] = []any{map[string]any{"secretKey": "password", "remoteRef": map[string]any{"key": ""}}}
		}), "data[0].remoteRef.key", "must not be empty"},
		{"empty secret key", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["data"] = []any{map[string]any{"secretKey": "", "remoteRef": map[string]any{"key": "k"}}}
		}), "data[0].secretKey", "must not be empty"},
		{"invalid secret key", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["data"] = []any{map[string]any{"secretKey": "pass word", "remoteRef": map[string]any{"key": "k"}}}
		}), "data[0].secretKey", "not a valid Secret key"},
		{"unknown store kind", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["store"] = map[string]any{"kind": "VaultStore", "name": "vault"}
		}), "store.kind", "VaultStore"},
		{"empty store name", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["store"] = map[string]any{"kind": "SecretStore", "name": ""}
		}), "store.name", "must not be empty"},
		{"bad duration", "ExternalSecret", externalSecret(func(m map[string]any) { m["refreshInterval"] = "5x" }),
			"refreshInterval", "not a duration"},
		{"negative duration", "ExternalSecret", externalSecret(func(m map[string]any) { m["refreshInterval"] = "-1m" }),
			"refreshInterval", "negative"},
		{"bad sync mode", "ExternalSecret", externalSecret(func(m map[string]any) { m["sync"] = "kubelet" }),
			"sync", "kubelet"},
		{"bad creation policy", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["target"] = map[string]any{"creationPolicy": "Always"}
		}), "target.creationPolicy", "Always"},
		{"delete without ownership", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["target"] = map[string]any{"creationPolicy": "Orphan", "deletionPolicy": "Delete"}
		}), "target.deletionPolicy", "creationPolicy Owner"},
		{"rollout target of a kind esosync cannot restart", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["rolloutRestartTargets"] = []any{map[string]any{"kind": "CronJob", "name": "app"}}
		}), "rolloutRestartTargets[0].kind", "CronJob"},
		{"rollout target without a name", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["rolloutRestartTargets"] = []any{map[string]any{"kind": "Deployment", "name": ""}}
		}), "rolloutRestartTargets[0].name", "must not be empty"},
		{"rollout target with a bad name", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["rolloutRestartTargets"] = []any{map[string]any{"kind": "Deployment", "name": "My_App"}}
		}), "rolloutRestartTargets[0].name", "My_App"},
		{"rollout target with a bad namespace", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["rolloutRestartTargets"] = []any{map[string]any{"kind": "StatefulSet", "name": "db", "namespace": "Prod"}}
		}), "rolloutRestartTargets[0].namespace", "Prod"},
		{"rollout target named twice", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["rolloutRestartTargets"] = []any{map[string]any{"kind": "Deployment", "name": "app"},
				map[string]any{"kind": "Deployment", "name": "app"}}
		}), "rolloutRestartTargets[1]", "rolloutRestartTargets[0]"},
		{"bad decoding strategy", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["data"] = []any{map[string]any{"secretKey": "k", "remoteRef": map[string]any{"key": "k", "decodingStrategy": "Hex"}}}
		}), "data[0].remoteRef.decodingStrategy", "Hex"},
		{"no data at all", "ExternalSecret", externalSecret(func(m map[string]any) { delete(m, "data") }),
			"data", "at least one"},
		{"dataFrom without extract or find", "ExternalSecret", externalSecret(func(m map[string]any) { m["dataFrom"] = []any{map[string]any{}} }),
			"dataFrom[0]", "exactly one of extract or find"},
		{"dataFrom with extract and find", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["dataFrom"] = []any{map[string]any{"extract": map[string]any{"key": "k"}, "find": map[string]any{"path": "p"}}}
		}), "dataFrom[0]", "exactly one of extract or find"},
		{"find without criteria", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["dataFrom"] = []any{map[string]any{"find": map[string]any{}}}
		}), "dataFrom[0].find", "at least one of path, name or tags"},
		{"find with a bad regexp", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["dataFrom"] = []any{map[string]any{"find": map[string]any{"name": map[string]any{"regexp": "db-("}}}}
		}), "dataFrom[0].find.name.regexp", "not a valid regular expression"},
		{"rewrite with regexp and transform", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["dataFrom"] = []any{map[string]any{"extract": map[string]any{"key": "k"}, "rewrite": []any{map[string]any{
				"regexp": map[string]any{"source": "a", "target": "b"}, "transform": map[string]any{"template": "x"}}}}}
		}), "dataFrom[0].rewrite[0]", "exactly one of regexp or transform"},
		{"rewrite with a bad regexp", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["dataFrom"] = []any{map[string]any{"extract": map[string]any{"key": "k"}, "rewrite": []any{map[string]any{
				"regexp": map[string]any{"source": "(", "target": "b"}}}}}
		}), "dataFrom[0].rewrite[0].regexp.source", "not a valid regular expression"},
		{"template that does not parse", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["target"] = map[string]any{"template": map[string]any{"data": map[string]any{"url": "{{ .password "}}}
		}), `target.template.data["url"]`, "not a valid template"},
		{"template with an unknown function", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["target"] = map[string]any{"template": map[string]any{"data": map[string]any{"url": "{{ .password | nosuchfunc }}"}}}
		}), `target.template.data["url"]`, "nosuchfunc"},
		{"template and shorthands together", "ExternalSecret", externalSecret(func(m map[string]any) {
			m["target"] = map[string]any{"type": "Opaque", "template": map[string]any{"type": "Opaque"}}
		}), "target.template", "not both"},
		{"bad timeout", "ExternalSecret", externalSecret(func(m map[string]any) { m["timeout"] = "soon" }),
			"timeout", "not a positive duration"},
		{"bad target name", "ExternalSecret", externalSecret(func(m map[string]any) { m["target"] = map[string]any{"name": "App Secret"} }),
			"target.name", "not a valid Kubernetes name"},
		{"set without items", "ExternalSecretSet", externalSecretSet(func(m map[string]any) { m["items"] = map[string]any{} }),
			"items", "at least one item"},
		{"set item with a bad name", "ExternalSecretSet", externalSecretSet(func(m map[string]any) {
			m["items"].(map[string]any)["App_A"] = setItem("k")
		}), `items["App_A"]`, "not a valid Kubernetes name"},
		{"set item with an empty remote key", "ExternalSecretSet", externalSecretSet(func(m map[string]any) {
			m["items"].(map[string]any)["app-b"] = setItem("")
		}), `items["app-b"].data[0].remoteRef.key`, "must not be empty"},
		{"set item without data", "ExternalSecretSet", externalSecretSet(func(m map[string]any) {
			m["items"].(map[string]any)["app-b"] = map[string]any{}
		}), `items["app-b"].data`, "at least one"},
		{"set item with a bad template", "ExternalSecretSet", externalSecretSet(func(m map[string]any) {
			item := setItem("k")
			item["target"] = map[string]any{"template": map[string]any{"data": map[string]any{"url": "{{ .password "}}}
			m["items"].(map[string]any)["app-b"] = item
		}), `items["app-b"].target.template.data["url"]`, "not a valid template"},
		{"set item with a bad store kind", "ExternalSecretSet", externalSecretSet(func(m map[string]any) {
			item := setItem("k")
			item["store"] = map[string]any{"kind": "VaultStore", "name": "vault"}
			m["items"].(map[string]any)["app-b"] = item
		}), `items["app-b"].store.kind`, "VaultStore"},
		{"set item without any store", "ExternalSecretSet", externalSecretSet(func(m map[string]any) { delete(m, "store") }),
			`items["app-a"].store`, "set store here or on the set"},
		{"set items with one target", "ExternalSecretSet", externalSecretSet(func(m map[string]any) {
			item := setItem("k")
			item["target"] = map[string]any{"name": "app-a"}
			m["items"].(map[string]any)["app-b"] = item
		}), `items["app-b"].target.name`, `already the target of item "app-a"`},
		{"set with a bad refresh interval", "ExternalSecretSet", externalSecretSet(func(m map[string]any) { m["refreshInterval"] = "daily" }),
			"refreshInterval", "not a duration"},
		{"set item with a bad refresh interval", "ExternalSecretSet", externalSecretSet(func(m map[string]any) {
			item := setItem("k")
			item["refreshInterval"] = "-5m"
			m["items"].(map[string]any)["app-b"] = item
		}), `items["app-b"].refreshInterval`, "negative"},
		{"set with a bad sync mode", "ExternalSecretSet", externalSecretSet(func(m map[string]any) { m["sync"] = "eventually" }),
			"sync", "eventually"},
		{"set with a bad namespace", "ExternalSecretSet", externalSecretSet(func(m map[string]any) { m["namespace"] = "Apps" }),
			"namespace", "not a valid namespace"},
	}
	s := newServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.Check(p.CheckRequest{Urn: urn(tt.typ, "x"), Inputs: props(tt.inputs)})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			for _, f := range resp.Failures {
				if f.Property == tt.wantPath && strings.Contains(f.Reason, tt.wantPath) && strings.Contains(f.Reason, tt.wantText) {
					return
				}
			}
			t.Errorf("no failure at %s mentioning %q; got %+v", tt.wantPath, tt.wantText, resp.Failures)
		})
	}
}

// TestCheckToleratesUnknowns: at the first preview a store's ref is not
// known yet; Check must not flag it.
func TestCheckToleratesUnknowns(t *testing.T) {
	inputs := props(externalSecret(nil)).Set("store", property.New(property.Computed))
	resp, err := newServer(t).Check(p.CheckRequest{Urn: urn("ExternalSecret", "x"), Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Failures) != 0 {
		t.Errorf("failures for unknown inputs: %+v", resp.Failures)
	}
}

// TestCheckAcceptsGoodInputs guards against a validator that rejects everything.
func TestCheckAcceptsGoodInputs(t *testing.T) {
	s := newServer(t)
	for typ, inputs := range map[string]map[string]any{
		"ClusterSecretStore": {"backend": vaultBackend(nil)},
		"SecretStore":        {"namespace": "app", "backend": vaultBackend(nil)},
		"ExternalSecret":     externalSecret(nil),
		"ExternalSecret with rollout targets": externalSecret(func(m map[string]any) {
			m["rolloutRestartTargets"] = []any{map[string]any{"kind": "Deployment", "name": "app"},
				map[string]any{"kind": "DaemonSet", "name": "agent", "namespace": "ops"}}
		}),
	} {
		resp, err := s.Check(p.CheckRequest{Urn: urn(strings.Fields(typ)[0], "x"), Inputs: props(inputs)})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Failures) != 0 {
			t.Errorf("%s: unexpected failures %+v", typ, resp.Failures)
		}
	}
}

// TestCheckRejectsResourceNameAsKubernetesName: without `name`, the Pulumi
// resource name becomes the Kubernetes name; Pulumi allows appConfig,
// Kubernetes does not, so preview says so and suggests a name.
func TestCheckRejectsResourceNameAsKubernetesName(t *testing.T) {
	s := newServer(t)
	for typ, inputs := range map[string]map[string]any{
		"ExternalSecret":     externalSecret(nil),
		"ClusterSecretStore": {"backend": vaultBackend(nil)},
	} {
		resp, err := s.Check(p.CheckRequest{Urn: urn(typ, "appConfig"), Inputs: props(inputs)})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Failures) != 1 || resp.Failures[0].Property != "name" || !strings.Contains(resp.Failures[0].Reason, `set name, e.g. "app-config"`) {
			t.Errorf("%s: failures = %+v", typ, resp.Failures)
		}
		inputs["name"] = "app-config"
		if resp, err := s.Check(p.CheckRequest{Urn: urn(typ, "appConfig"), Inputs: props(inputs)}); err != nil || len(resp.Failures) != 0 {
			t.Errorf("%s with name set: %v %+v", typ, err, resp.Failures)
		}
	}
}

// TestPreviewKnowsNames: outputs that follow from given inputs are known at
// a create preview (a store's ref, an ExternalSecret's secretName), and
// stay unknown when the input they follow from is unknown or left to a
// default the preview cannot be sure of.
func TestPreviewKnowsNames(t *testing.T) {
	s := newServer(t)
	if err := s.Configure(config(map[string]string{"namespace": "app"})); err != nil {
		t.Fatal(err)
	}
	preview := func(typ string, inputs map[string]any) property.Map {
		t.Helper()
		checked, err := s.Check(p.CheckRequest{Urn: urn(typ, "x"), Inputs: props(inputs)})
		if err != nil || len(checked.Failures) > 0 {
			t.Fatalf("Check: %v %v", err, checked.Failures)
		}
		resp, err := s.Create(p.CreateRequest{Urn: urn(typ, "x"), Properties: checked.Inputs, DryRun: true})
		if err != nil {
			t.Fatalf("preview Create: %v", err)
		}
		return resp.Properties
	}
	unknown := resource.MakeComputed(resource.NewStringProperty(""))
	cases := []struct {
		name, typ, output string
		inputs            map[string]any
		known             bool
	}{
		{"store with name and namespace", "SecretStore", "ref", map[string]any{"name": "vault", "namespace": "app", "backend": vaultBackend(nil)}, true},
		{"store with an unknown namespace", "SecretStore", "ref", map[string]any{"name": "vault", "namespace": unknown, "backend": vaultBackend(nil)}, false},
		{"cluster store with name", "ClusterSecretStore", "ref", map[string]any{"name": "vault", "backend": vaultBackend(nil)}, true},
		{"cluster store named by the resource", "ClusterSecretStore", "ref", map[string]any{"backend": vaultBackend(nil)}, false},
		{"ExternalSecret with target.name", "ExternalSecret", "secretName", externalSecret(func(m map[string]any) {
			m["target"] = map[string]any{"name": "app-secret"}
		}), true},
		{"ExternalSecret with an unknown target.name", "ExternalSecret", "secretName", externalSecret(func(m map[string]any) {
			m["target"] = map[string]any{"name": unknown}
		}), false},
		{"ExternalSecret keys need the backend", "ExternalSecret", "keys", externalSecret(nil), false},
	}
	t.Run("a mirrored input keeps its secret", func(t *testing.T) {
		inputs := props(map[string]any{"name": "vault", "backend": vaultBackend(nil)})
		token := inputs.Get("backend").AsMap().Get("vault").AsMap().Get("auth").AsMap().Get("token").AsMap()
		secretToken := token.Set("value", token.Get("value").WithSecret(true))
		auth := inputs.Get("backend").AsMap().Get("vault").AsMap().Get("auth").AsMap().Set("token", property.New(secretToken))
		vault := inputs.Get("backend").AsMap().Get("vault").AsMap().Set("auth", property.New(auth))
		inputs = inputs.Set("backend", property.New(property.NewMap(map[string]property.Value{"vault": property.New(vault)})))
		checked, err := s.Check(p.CheckRequest{Urn: urn("ClusterSecretStore", "x"), Inputs: inputs})
		if err != nil || len(checked.Failures) > 0 {
			t.Fatalf("Check: %v %v", err, checked.Failures)
		}
		resp, err := s.Create(p.CreateRequest{Urn: urn("ClusterSecretStore", "x"), Properties: checked.Inputs, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Properties.Get("backend").HasSecrets() {
			t.Errorf("state's backend = %v: the token given as a secret lost its secretness", resp.Properties.Get("backend"))
		}
	})
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			out := preview(tt.typ, tt.inputs).Get(tt.output)
			if out.IsComputed() == tt.known {
				t.Errorf("%s = %v, want known=%v", tt.output, out, tt.known)
			}
			if !out.IsComputed() && tt.output == "ref" && out.AsMap().Get("name").AsString() != "vault" {
				t.Errorf("ref = %v", out)
			}
			if !out.IsComputed() && tt.output == "secretName" && out.AsString() != "app-secret" {
				t.Errorf("secretName = %v", out)
			}
		})
	}
}
