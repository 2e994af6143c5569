package kube

import (
	"fmt"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// controller-runtime warns on stderr when no logger is set; the provider
// reports through Pulumi's logger instead.
func init() { ctrllog.SetLogger(logr.Discard()) }

// Scheme knows the core and apps types and External Secrets Operator's v1
// types: the ones esosync reads and writes (apps: the workloads it restarts).
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, esv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// Client returns a typed client for Secrets and ESO's CRs. It maps kinds to
// resources lazily, so building it works before ESO's CRDs exist.
func (c *Cluster) Client() (client.Client, error) {
	c.clientOnce.Do(func() {
		c.client, c.clientErr = client.New(c.REST, client.Options{Scheme: Scheme})
		if c.clientErr != nil {
			c.clientErr = fmt.Errorf("kubernetes client: %w", c.clientErr)
		}
	})
	return c.client, c.clientErr
}
