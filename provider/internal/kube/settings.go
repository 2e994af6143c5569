// Package kube connects esosync to a Kubernetes cluster with client-go.
package kube

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Settings is how the provider was told to reach a cluster. Empty fields
// fall back to kubectl's defaults.
type Settings struct {
	// Kubeconfig is a file path or the kubeconfig content itself.
	Kubeconfig string
	// Context selects a kubeconfig context; empty means current-context.
	Context string
	// Namespace is the default namespace for namespaced resources.
	Namespace string
	// QPS limits the requests per second the provider sends; 0 sets no
	// client-side limit. Burst is how many may go at once (default 2×QPS).
	QPS   float32
	Burst int
}

// inline reports whether Kubeconfig holds content rather than a path: a path
// never spans lines, and a one-line kubeconfig is JSON.
func (s Settings) inline() bool {
	k := strings.TrimSpace(s.Kubeconfig)
	return strings.Contains(k, "\n") || strings.HasPrefix(k, "{")
}

// Validate checks what can be checked without contacting the cluster, so
// mistakes surface at `pulumi preview`. Errors name the config key.
func (s Settings) Validate() error {
	raw, err := s.rawConfig()
	if err != nil {
		if s.Kubeconfig == "" {
			// kubectl's defaults may legitimately be unreadable where only previews run.
			return nil
		}
		return err
	}
	// With kubectl's defaults and no file there, there is nothing to check a context against.
	if s.Context != "" && (s.Kubeconfig != "" || len(raw.Contexts) > 0) {
		if _, ok := raw.Contexts[s.Context]; !ok {
			return fmt.Errorf("esosync:context: context %q is not in the kubeconfig (it has %s)", s.Context, contextNames(raw))
		}
	}
	return nil
}

// rawConfig reads the kubeconfig the settings point at.
func (s Settings) rawConfig() (*clientcmdapi.Config, error) {
	if s.Kubeconfig == "" {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
			// client-go resolves ~ once at start-up; resolve it now, as kubectl
			// would when started with this environment.
			if home, err := os.UserHomeDir(); err == nil {
				rules.Precedence = []string{filepath.Join(home, clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)}
			}
		}
		raw, err := rules.Load()
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig from KUBECONFIG or ~/.kube/config: %w", err)
		}
		return raw, nil
	}
	if s.inline() {
		raw, err := clientcmd.Load([]byte(s.Kubeconfig))
		if err != nil {
			// The content may hold credentials: never echo it.
			return nil, fmt.Errorf("esosync:kubeconfig: the inline kubeconfig content is not a valid kubeconfig: %s", redactParseError(err))
		}
		return raw, nil
	}
	path := expandHome(s.Kubeconfig)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("esosync:kubeconfig: kubeconfig file %q: %w", path, err)
	}
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("esosync:kubeconfig: kubeconfig file %q is not a valid kubeconfig: %w", path, err)
	}
	return raw, nil
}

// limit sets the client-side request limit. client-go's default of 5
// requests/s (burst 10) serialized a deploy: 600 ExternalSecrets took 9
// minutes, and even kubectl's 50/s held 1,000 of them to 74 s of waiting
// on the client. The server protects itself (API Priority and Fairness
// queues and rejects with 429, which client-go retries), so by default the
// provider sets no limit of its own; QPS puts one back.
func (s Settings) limit(c *rest.Config) {
	if s.QPS <= 0 {
		c.QPS, c.Burst = -1, 0 // client-go: a negative QPS disables its rate limiter
		return
	}
	c.QPS, c.Burst = s.QPS, s.Burst
	if c.Burst <= 0 {
		c.Burst = max(1, int(2*s.QPS))
	}
}

// Cluster is a connected view of the configured cluster.
type Cluster struct {
	// REST is the client configuration for the selected context.
	REST *rest.Config
	// Clientset is a typed client for core Kubernetes APIs.
	Clientset kubernetes.Interface
	// Discovery answers which API groups and versions the server serves.
	Discovery discovery.DiscoveryInterface
	// Context is the kubeconfig context in use.
	Context string
	// Namespace is the default namespace for namespaced resources.
	Namespace string

	clientOnce sync.Once
	client     client.Client
	clientErr  error
}

// Connect builds clients for the settings. It does not call the server.
func (s Settings) Connect() (*Cluster, error) {
	raw, err := s.rawConfig()
	if err != nil {
		return nil, err
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: s.Context}
	cc := clientcmd.NewNonInteractiveClientConfig(*raw, s.Context, overrides, nil)
	restConfig, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no kubeconfig found: set esosync:kubeconfig, KUBECONFIG or ~/.kube/config")
		}
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	restConfig.UserAgent = "pulumi-resource-esosync"
	s.limit(restConfig)
	namespace := s.Namespace
	if namespace == "" {
		if ns, _, err := cc.Namespace(); err == nil && ns != "" {
			namespace = ns
		} else {
			namespace = "default"
		}
	}
	contextName := s.Context
	if contextName == "" {
		contextName = raw.CurrentContext
	}
	clientset, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Cluster{
		REST:      restConfig,
		Clientset: clientset,
		Discovery: clientset.Discovery(),
		Context:   contextName,
		Namespace: namespace,
	}, nil
}

// Lazy connects on first use and remembers the outcome, so a provider that
// is only previewed never needs a cluster.
type Lazy struct {
	settings Settings
	once     sync.Once
	cluster  *Cluster
	err      error
}

// NewLazy returns a Lazy for the settings.
func NewLazy(settings Settings) *Lazy { return &Lazy{settings: settings} }

// Get connects if this is the first call and returns the cluster.
func (l *Lazy) Get() (*Cluster, error) {
	if l == nil {
		return nil, errors.New("the esosync provider is not configured")
	}
	l.once.Do(func() { l.cluster, l.err = l.settings.Connect() })
	return l.cluster, l.err
}

func expandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return path
}

func contextNames(raw *clientcmdapi.Config) string {
	if len(raw.Contexts) == 0 {
		return "no contexts"
	}
	names := make([]string, 0, len(raw.Contexts))
	for name := range raw.Contexts {
		names = append(names, fmt.Sprintf("%q", name))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// redactParseError keeps the position of a YAML/JSON error but drops any
// quoted fragment of the input, which could be a credential.
func redactParseError(err error) string {
	msg := err.Error()
	if i := strings.IndexAny(msg, "\"`'"); i >= 0 {
		msg = strings.TrimSpace(msg[:i]) + " (input fragment redacted)"
	}
	return msg
}
