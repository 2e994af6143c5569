#!/usr/bin/env bash
# Builds the pulumi component into "$out/bin". tests/tools/build.sh runs this
# from tests/tools/pulumi with $out set; see there for caching.
set -euo pipefail
: "${out:?run through tests/tools/build.sh}"

go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v3.259.0" \
	-o "$out/bin/" \
	github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
	github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
	./cmd/pulumi-language-mini ./cmd/gensdk
# The python runtime is started through the SDK's own exec script.
sdk=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$out/bin/"
# One host serves three runtimes; it picks the runtime from argv[0].
for r in nodejs python go; do ln -sfn pulumi-language-mini "$out/bin/pulumi-language-$r"; done
