#!/usr/bin/env bash
# Builds one component of the esosync test toolchain from its pinned Go
# module under tests/tools/<component> into a cache directory keyed by the
# files that define it, then links the binaries into .tools/bin.
#
#   tests/tools/build.sh pulumi|kubernetes|vault
#
# A component is rebuilt only when its key (sha256 of go.mod, go.sum, its Go
# sources and this script) has no finished build in the cache, so CI on the
# same machine reuses earlier builds and a fresh machine builds once.
set -euo pipefail

component=${1:?usage: build.sh pulumi|kubernetes|vault}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
src=$here/$component
[ -f "$src/go.mod" ] || { echo "build.sh: unknown component $component" >&2; exit 2; }

cache_root=${ESOSYNC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/esosync-tools}
key=$(cd "$src" && { cat "$here/build.sh"; find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) | LC_ALL=C sort | xargs cat; } | sha256sum | cut -c1-16)
out=$cache_root/$component-$key
links=$repo/.tools/bin
mkdir -p "$links"

link() {
	for f in "$out"/bin/*; do ln -sfn "$f" "$links/$(basename "$f")"; done
}

if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$key" ]; then
	echo "tools: $component up to date ($out)"
	link
	exit 0
fi

echo "tools: building $component into $out (a cold build takes minutes)"
start=$(date +%s)
rm -rf "$out.tmp"
mkdir -p "$out.tmp/bin"
cd "$src"
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
case $component in
pulumi)
	go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v3.259.0" \
		-o "$out.tmp/bin/" \
		github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
		github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
		./cmd/pulumi-language-mini ./cmd/gensdk
	# The python runtime is started through the SDK's own exec script.
	sdk=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
	install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$out.tmp/bin/"
	# One host serves three runtimes; it picks the runtime from argv[0].
	for r in nodejs python go; do ln -sfn pulumi-language-mini "$out.tmp/bin/pulumi-language-$r"; done
	;;
kubernetes)
	v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version k=v1.34.10
	go build -trimpath -ldflags "-s -w -X $v.gitVersion=$k -X $v.gitMajor=1 -X $v.gitMinor=34 -X $v.gitTreeState=clean \
		-X $c.gitVersion=$k -X $c.gitMajor=1 -X $c.gitMinor=34" -o "$out.tmp/bin/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
	go build -trimpath -ldflags "-s -w" -o "$out.tmp/bin/etcd" go.etcd.io/etcd/server/v3
	;;
vault)
	go build -trimpath -ldflags "-s -w" -o "$out.tmp/bin/vault" github.com/hashicorp/vault
	;;
esac
echo "$key" > "$out.tmp/.stamp"
rm -rf "$out"
mv "$out.tmp" "$out"
# Binaries of earlier keys are dead weight of several hundred MB each.
for old in "$cache_root/$component"-*; do
	[ "$old" = "$out" ] || rm -rf "$old"
done
link
echo "tools: built $component in $(( $(date +%s) - start ))s"
