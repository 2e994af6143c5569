//go:build tools

// Package tools pins the Kubernetes control-plane binaries the test bed runs
// (kube-apiserver, kube-controller-manager and etcd) so `go mod tidy` keeps
// them in this module's graph.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
