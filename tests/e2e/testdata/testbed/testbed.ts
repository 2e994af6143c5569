// The loopback test bed's overrides for an example program in TypeScript;
// not part of any example. tests/e2e (testbed_test.go) copies an example,
// writes testbed-overrides.json and this file next to it and makes `import
// "./testbed"` the program's first line. The resource transform registered
// here gives every esosync resource the program declares what the loopback
// bed needs; everything else in the program runs as written.
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

interface Testbed {
    chart: string;
    crds: string;
    namespace: string;
    sync: string;
    storeWaitForReady: boolean;
}

const testbed: Testbed = JSON.parse(fs.readFileSync(path.join(__dirname, "testbed-overrides.json"), "utf8"));

pulumi.runtime.registerResourceTransform((args: pulumi.ResourceTransformArgs): pulumi.ResourceTransformResult | undefined => {
    const props: pulumi.Inputs = { ...args.props };
    switch (args.type) {
        case "esosync:index:Operator":
            // The chart and CRD bundle of the ESO Go module (its Chart.yaml
            // decides the version); no pods can run, so no webhook, no cert
            // controller and no wait for them.
            delete props["chartVersion"];
            props["chart"] = testbed.chart;
            props["crds"] = testbed.crds;
            props["waitForController"] = false;
            props["values"] = { webhook: { create: false }, certController: { create: false } };
            break;
        case "esosync:index:SecretStore":
        case "esosync:index:ClusterSecretStore":
            props["waitForReady"] = testbed.storeWaitForReady;
            break;
        case "esosync:index:ExternalSecret":
            props["namespace"] = testbed.namespace;
            props["sync"] = testbed.sync;
            break;
        default:
            return undefined;
    }
    return { props, opts: args.opts };
});
