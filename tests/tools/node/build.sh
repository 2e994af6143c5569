#!/usr/bin/env bash
# Installs the Node.js test toolchain (@pulumi/pulumi 3.259.0 and
# @pulumi/kubernetes 4.25.0 from the npm
# registry, TypeScript and @types/node) into "$out/node_modules" exactly as
# package-lock.json pins it, and links that directory as
# "$out/bin/esosync-node-modules" for tests, which compile the generated SDK
# and run TypeScript programs against it. tests/tools/build.sh runs this
# from tests/tools/node with $out set; see there for caching.
set -euo pipefail
: "${out:?run through tests/tools/build.sh}"

cp package.json package-lock.json "$out/"
(cd "$out" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
# A relative link, so it survives tests/tools/build.sh renaming the build directory.
ln -s ../node_modules "$out/bin/esosync-node-modules"
node -e 'require(process.argv[1] + "/@pulumi/pulumi/package.json")' "$out/node_modules"
"$out/node_modules/.bin/tsc" --version
