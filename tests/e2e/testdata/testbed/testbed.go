// The loopback test bed's overrides for an example program in Go; not part
// of any example. tests/e2e (testbed_test.go) copies an example, writes
// testbed-overrides.json and this file next to its main.go and makes
// registerTestbed(ctx) the first statement of the program's pulumi.Run
// callback. The resource transform registered here gives every esosync
// resource the program declares what the loopback bed needs; everything
// else in the program runs as written.

package main

import (
	"context"
	_ "embed"
	"encoding/json"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

//go:embed testbed-overrides.json
var testbedJSON []byte

// registerTestbed registers the test bed's resource transform.
func registerTestbed(ctx *pulumi.Context) error {
	var tb struct {
		Chart             string `json:"chart"`
		CRDs              string `json:"crds"`
		Namespace         string `json:"namespace"`
		Sync              string `json:"sync"`
		StoreWaitForReady bool   `json:"storeWaitForReady"`
	}
	if err := json.Unmarshal(testbedJSON, &tb); err != nil {
		return err
	}
	return ctx.RegisterResourceTransform(func(_ context.Context, args *pulumi.ResourceTransformArgs) *pulumi.ResourceTransformResult {
		// Transforms see the properties under their schema (camelCase) names.
		props := pulumi.Map{}
		for k, v := range args.Props {
			props[k] = v
		}
		switch args.Type {
		case "esosync:index:Operator":
			// The chart and CRD bundle of the ESO Go module (its Chart.yaml
			// decides the version); no pods can run, so no webhook, no cert
			// controller and no wait for them.
			delete(props, "chartVersion")
			props["chart"] = pulumi.String(tb.Chart)
			props["crds"] = pulumi.String(tb.CRDs)
			props["waitForController"] = pulumi.Bool(false)
			props["values"] = pulumi.Map{
				"webhook":        pulumi.Map{"create": pulumi.Bool(false)},
				"certController": pulumi.Map{"create": pulumi.Bool(false)},
			}
		case "esosync:index:SecretStore", "esosync:index:ClusterSecretStore":
			props["waitForReady"] = pulumi.Bool(tb.StoreWaitForReady)
		case "esosync:index:ExternalSecret":
			props["namespace"] = pulumi.String(tb.Namespace)
			props["sync"] = pulumi.String(tb.Sync)
		default:
			return nil
		}
		return &pulumi.ResourceTransformResult{Props: props, Opts: args.Opts}
	})
}
