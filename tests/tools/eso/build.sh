#!/usr/bin/env bash
# Builds the External Secrets Operator controller (the module root package of
# external-secrets v0.20.4, the newest release whose controller builds from
# the module proxy) into "$out/bin/external-secrets". tests/tools/build.sh
# runs this from tests/tools/eso with $out set; see there for caching.
# Static (no cgo), like upstream's images: the same binary runs as the
# loopback bed's local process and inside the node bed's controller image.
set -euo pipefail
: "${out:?run through tests/tools/build.sh}"

CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/bin/external-secrets" github.com/external-secrets/external-secrets
