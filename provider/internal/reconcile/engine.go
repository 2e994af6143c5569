package reconcile

import (
	"errors"
	"fmt"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/escsource"
	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// Engine reconciles esosync's resources for one configured provider. It
// holds the provider's lazily connected cluster and its session (backend
// caches, demand, call counters), so nothing of a deploy lives in package
// variables.
type Engine struct {
	cluster *kube.Lazy
	session *backend.Session
	esc     escsource.Source
	// declared are the stores the program creates or that were found.
	declared declaredStores
	// stores caches the stores ExternalSecrets read and their credentials.
	stores storeCache
}

// New builds the engine of one configured provider, with a new session.
// esc opens the ESC environments of credential sources within it.
func New(cluster *kube.Lazy, esc escsource.Source) *Engine {
	session := backend.NewSession()
	esc.Session = session
	return &Engine{cluster: cluster, session: session, esc: esc}
}

// Session is the provider's session (nil before the provider is
// configured: a nil session remembers nothing).
func (e *Engine) Session() *backend.Session {
	if e == nil {
		return nil
	}
	return e.session
}

// Cluster connects to the provider's cluster (once) and returns it.
func (e *Engine) Cluster() (*kube.Cluster, error) { return e.cluster.Get() }

// DefaultNamespace is the provider's default namespace: the configured one,
// else the kubeconfig context's, else `default`. It does not fail when the
// cluster cannot be reached.
func (e *Engine) DefaultNamespace(configured string) string {
	if configured != "" {
		return configured
	}
	if e == nil {
		return "default"
	}
	if c, err := e.cluster.Get(); err == nil && c.Namespace != "" {
		return c.Namespace
	}
	return "default"
}

func (e *Engine) clients() (kube.Clients, error) {
	c, err := e.cluster.Get()
	if err != nil {
		return kube.Clients{}, err
	}
	return c.Clients()
}

// Logger is where the engine reports progress; pulumi-go-provider's
// logger (p.GetLogger) is one.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	InfoStatusf(format string, args ...any)
	Warningf(format string, args ...any)
}

// Status says whether a resource is what it should be, ESO-style.
type Status struct {
	// Ready is true when the resource is current.
	Ready bool
	// Reason is a CamelCase reason such as SecretSynced or OutOfSync.
	Reason string
	// Message explains Reason to a human; it never holds a secret value.
	Message string
}

// Reasons esosync adds to ESO's own.
const (
	// ReasonOutOfSync: the target Secret is not what a sync would write.
	ReasonOutOfSync = "OutOfSync"
	// ReasonPending: ESO has not reported yet.
	ReasonPending = "Pending"
	// ReasonCredentialsDrift: a store's managed credentials Secret does not
	// hold what its inputs (or their ESC sources) say.
	ReasonCredentialsDrift = "CredentialsDrift"
)

// ready is the Status of something current.
func ready(reason, message string) Status {
	return Status{Ready: true, Reason: reason, Message: message}
}

// notReady is the Status of something that is not.
func notReady(reason, message string) Status { return Status{Reason: reason, Message: message} }

// NotReadyError is a failure after which the resource exists but is not
// ready: ESO may still sync it, so the caller keeps it in state (Pulumi's
// "initialization failed") and the next `pulumi up` tries again.
type NotReadyError struct{ Err error }

func (e *NotReadyError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *NotReadyError) Unwrap() error { return e.Err }

// IsNotReady reports whether err is a NotReadyError.
func IsNotReady(err error) bool {
	var nr *NotReadyError
	return errors.As(err, &nr)
}

// alreadyExists is the advice for an object of kind (an esosync resource
// type of the same name) that exists but is not in Pulumi's state.
func alreadyExists(kind, id string) error {
	return fmt.Errorf("%s %s already exists; adopt it with `pulumi import esosync:index:%s <resource name> %s`, "+
		"or choose another name", kind, id, kind, id)
}
