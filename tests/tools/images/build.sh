#!/usr/bin/env bash
# Builds the node bed's container images as docker-archive tarballs in
# "$out/images" (the harness imports every *.tar there into containerd):
#   pause.tar    esosync.local/pause:3.10, the CRI sandbox image (static C)
#   testapp.tar  esosync.local/testapp:v1, the application of the node
#                scenarios (cmd/testapp: serves its environment and files)
#   eso.tar      the ESO v0.20.4 controller binary of the eso component, as
#                ghcr.io/external-secrets/external-secrets:v0.20.4 and as the
#                name the chart in the ESO v0.20.4 module defaults to (its
#                Chart.yaml says appVersion v0.20.3), so the chart's default
#                values run it unchanged
# tests/tools/build.sh runs this with $out and $dep_eso set; see there.
set -euo pipefail
: "${out:?run through tests/tools/build.sh}" "${dep_eso:?the eso component must be built first}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/images"
go build -trimpath -o "$out/bin/mkimage" ./cmd/mkimage
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/testapp" ./cmd/testapp
gcc -Os -static -o "$work/pause" pause.c
strip "$work/pause"
mk=$out/bin/mkimage

"$mk" -o "$out/images/pause.tar" -tag esosync.local/pause:3.10 \
	-file "$work/pause:/pause:0755" -entrypoint /pause -user 65535:65535
"$mk" -o "$out/images/testapp.tar" -tag esosync.local/testapp:v1 \
	-file "$work/testapp:/testapp:0755" -dir /tmp:1777 -entrypoint /testapp -user 65534:65534

eso=$dep_eso/bin/external-secrets
if ldd "$eso" >/dev/null 2>&1; then
	echo "images: $eso is dynamically linked; the eso component must build it with CGO_ENABLED=0" >&2
	exit 1
fi
# What distroless/static gives upstream's image: CA roots, a passwd with
# nobody, a writable /tmp.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$work/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$work/group"
"$mk" -o "$out/images/eso.tar" \
	-tag ghcr.io/external-secrets/external-secrets:v0.20.4 \
	-tag oci.external-secrets.io/external-secrets/external-secrets:v0.20.3 \
	-file "$eso:/bin/external-secrets:0755" \
	-file /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt \
	-file "$work/passwd:/etc/passwd" -file "$work/group:/etc/group" -dir /tmp:1777 \
	-entrypoint /bin/external-secrets -user 65534
