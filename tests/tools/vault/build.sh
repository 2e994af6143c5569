#!/usr/bin/env bash
# Builds the vault component into "$out/bin". tests/tools/build.sh runs this
# from tests/tools/vault with $out set; see there for caching.
set -euo pipefail
: "${out:?run through tests/tools/build.sh}"

go build -trimpath -ldflags "-s -w" -o "$out/bin/vault" github.com/hashicorp/vault
