#!/usr/bin/env bash
# Builds the kubernetes component into "$out/bin". tests/tools/build.sh runs
# this from tests/tools/kubernetes with $out set; see there for caching.
# One `go build` for all five Kubernetes commands: the node's three share
# nearly every package with the control plane, so they cost mostly link time.
set -euo pipefail
: "${out:?run through tests/tools/build.sh}"

v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version k=v1.34.10
go build -trimpath -ldflags "-s -w -X $v.gitVersion=$k -X $v.gitMajor=1 -X $v.gitMinor=34 -X $v.gitTreeState=clean \
	-X $c.gitVersion=$k -X $c.gitMajor=1 -X $c.gitMinor=34" -o "$out/bin/" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3
