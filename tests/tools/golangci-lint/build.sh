#!/usr/bin/env bash
# Builds the golangci-lint component into "$out/bin" (`make lint` runs it
# with the repository's .golangci.yml). tests/tools/build.sh runs this from
# tests/tools/golangci-lint with $out set; see there for caching.
set -euo pipefail
: "${out:?run through tests/tools/build.sh}"

go build -trimpath -ldflags "-s -w" -o "$out/bin/golangci-lint" github.com/golangci/golangci-lint/v2/cmd/golangci-lint
