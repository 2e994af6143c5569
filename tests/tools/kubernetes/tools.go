//go:build tools

// Package tools pins the Kubernetes binaries the test bed runs: the control
// plane of every test bed (kube-apiserver, kube-controller-manager, etcd) and
// what the node bed adds (kube-scheduler, kubelet, kube-proxy), so `go mod
// tidy` keeps them in this module's graph.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
