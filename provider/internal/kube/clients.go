package kube

import (
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Clients is what the reconcile engine needs from the cluster: a typed
// client for Secrets and ESO's CRs, and a clientset for the rest (tokens,
// service accounts).
type Clients struct {
	Client    client.Client
	Clientset kubernetes.Interface
}

// Clients returns the cluster's typed client and clientset.
func (c *Cluster) Clients() (Clients, error) {
	cl, err := c.Client()
	return Clients{Client: cl, Clientset: c.Clientset}, err
}
