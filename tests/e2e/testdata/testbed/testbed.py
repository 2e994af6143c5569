"""The loopback test bed's overrides for an example program in Python.

Not part of any example. tests/e2e (testbed_test.go) copies an example,
writes testbed-overrides.json and this file next to it and makes `import testbed` the
program's first line. The resource transform registered here gives every
esosync resource the program declares what the loopback bed needs;
everything else in the program runs as written.
"""

import json
import os
from typing import Optional

import pulumi

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "testbed-overrides.json"), encoding="utf-8") as f:
    TESTBED = json.load(f)


def _transform(args: pulumi.ResourceTransformArgs) -> Optional[pulumi.ResourceTransformResult]:
    # Transforms see the properties under their schema (camelCase) names.
    props = dict(args.props)
    if args.type_ == "esosync:index:Operator":
        # The chart and CRD bundle of the ESO Go module (its Chart.yaml decides
        # the version); no pods can run, so no webhook, no cert controller and
        # no wait for them.
        props.pop("chartVersion", None)
        props["chart"] = TESTBED["chart"]
        props["crds"] = TESTBED["crds"]
        props["waitForController"] = False
        props["values"] = {"webhook": {"create": False}, "certController": {"create": False}}
    elif args.type_ in ("esosync:index:SecretStore", "esosync:index:ClusterSecretStore"):
        props["waitForReady"] = TESTBED["storeWaitForReady"]
    elif args.type_ == "esosync:index:ExternalSecret":
        props["namespace"] = TESTBED["namespace"]
        props["sync"] = TESTBED["sync"]
    else:
        return None
    return pulumi.ResourceTransformResult(props, args.opts)


pulumi.runtime.register_resource_transform(_transform)
