#!/usr/bin/env bash
# Builds one component of the esosync test toolchain from its pinned inputs
# under tests/tools/<component> into a cache directory keyed by the files
# that define it, then links the binaries into .tools/bin.
#
#   tests/tools/build.sh kubernetes|pulumi|vault|eso|images|moto|python|node
#
# Each component directory holds a build.sh that this driver runs from that
# directory with $out set; it puts the binaries into "$out/bin". Go
# components also hold go.mod, go.sum and any Go sources; others pin their
# inputs in *.txt files (moto: a pip requirements.txt). A component is
# rebuilt only when its key (sha256 over the names and contents of the
# go.mod, go.sum, *.go, *.c, *.txt, *.json and build.sh files in its own
# directory) has no finished build in the cache, so CI on the same machine
# reuses earlier builds, a fresh machine builds once, and editing one
# component (or this driver) does not rebuild the others.
#
# A component that uses another's output lists it in deps.txt (one name per
# line, # comments): the dependency's key is folded into its key, so it is
# rebuilt when the dependency changes, and its build.sh gets dep_<name> set
# to the dependency's cache directory (which must be built first). Files in
# "$out/images" are linked into .tools/images.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
components=$(cd "$here" && for d in */; do if [ -f "$d/build.sh" ]; then printf '%s|' "${d%/}"; fi; done)
components=${components%|}
component=${1:?usage: build.sh $components}
repo=$(cd "$here/../.." && pwd)
src=$here/$component
[ -f "$src/build.sh" ] || { echo "build.sh: unknown component $component (have $components)" >&2; exit 2; }

cache_root=${ESOSYNC_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/esosync-tools}

# key_of DIR: the hash of the files that define the component in DIR.
key_of() {
	(cd "$1" && find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name '*.c' -o -name '*.txt' -o -name '*.json' -o -name build.sh \) -print0 |
		LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
}
key=$(key_of "$src")
if [ -f "$src/deps.txt" ]; then
	for dep in $(sed 's/#.*//' "$src/deps.txt"); do
		dep_key=$(key_of "$here/$dep")
		dep_out=$cache_root/$dep-$dep_key
		[ "$(cat "$dep_out/.stamp" 2>/dev/null)" = "$dep_key" ] ||
			{ echo "build.sh: $component needs $dep built first (tests/tools/build.sh $dep)" >&2; exit 2; }
		export "dep_$dep=$dep_out"
		key=$(printf '%s %s\n' "$key" "$dep_key" | sha256sum | cut -c1-16)
	done
fi
out=$cache_root/$component-$key
links=$repo/.tools/bin
image_links=$repo/.tools/images
mkdir -p "$links" "$cache_root"

# One build per component at a time: a second `make tools` waits for the
# first and then finds its result up to date.
exec 9>"$cache_root/.$component.lock"
flock 9

link() {
	for f in "$out"/bin/*; do ln -sfn "$f" "$links/$(basename "$f")"; done
	if [ -d "$out/images" ]; then
		mkdir -p "$image_links"
		for f in "$out"/images/*; do ln -sfn "$f" "$image_links/$(basename "$f")"; done
	fi
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
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
(cd "$src" && out="$out.tmp" bash ./build.sh)
echo "$key" > "$out.tmp/.stamp"
rm -rf "$out"
mv "$out.tmp" "$out"
link
# Binaries of earlier keys are dead weight of several hundred MB each. They
# go after the links moved on, so .tools/bin never points into a removed
# directory (a server already running from one keeps its open file).
for old in "$cache_root/$component"-*; do
	[ "$old" = "$out" ] || rm -rf "$old"
done
echo "tools: built $component in $(( $(date +%s) - start ))s"
