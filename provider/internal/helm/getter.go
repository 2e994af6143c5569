package helm

import (
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// restClientGetter hands Helm the provider's already resolved client
// configuration, so Helm never re-reads a kubeconfig that may be inline
// content, or not exist at all.
type restClientGetter struct {
	config    *rest.Config
	namespace string

	once      sync.Once
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
	err       error
}

var _ genericclioptions.RESTClientGetter = (*restClientGetter)(nil)

func newRESTClientGetter(config *rest.Config, namespace string) *restClientGetter {
	return &restClientGetter{config: config, namespace: namespace}
}

// ToRESTConfig returns a copy: Helm and kubectl's factory adjust the
// configuration they get (content types, rate limits).
func (g *restClientGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(g.config), nil
}

// ToDiscoveryClient caches discovery in memory for the life of one Helm
// action; Helm invalidates it itself before reading capabilities.
func (g *restClientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	g.init()
	return g.discovery, g.err
}

// ToRESTMapper resolves kinds lazily, so kinds that appear while the action
// runs (CRDs Helm just installed) are found after a cache refresh.
func (g *restClientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	g.init()
	return g.mapper, g.err
}

// ToRawKubeConfigLoader exists because Helm's Kubernetes client asks it for
// the namespace of manifests that do not set one: the release namespace.
func (g *restClientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return namespacedConfig{getter: g}
}

func (g *restClientGetter) init() {
	g.once.Do(func() {
		cfg := rest.CopyConfig(g.config)
		// Discovery fans out one request per group version; kubectl raises
		// the limits the same way so a cold cache does not crawl.
		cfg.Burst = max(cfg.Burst, 300)
		cfg.QPS = max(cfg.QPS, 50)
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			g.err = err
			return
		}
		g.discovery = memory.NewMemCacheClient(dc)
		g.mapper = restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(g.discovery), g.discovery, nil)
	})
}

// namespacedConfig is the minimal clientcmd.ClientConfig Helm needs: the
// client configuration and the namespace. There is no kubeconfig behind it.
type namespacedConfig struct {
	getter *restClientGetter
}

func (c namespacedConfig) RawConfig() (clientcmdapi.Config, error) {
	return *clientcmdapi.NewConfig(), nil
}

func (c namespacedConfig) ClientConfig() (*rest.Config, error) {
	return c.getter.ToRESTConfig()
}

func (c namespacedConfig) Namespace() (string, bool, error) {
	return c.getter.namespace, true, nil
}

func (c namespacedConfig) ConfigAccess() clientcmd.ConfigAccess {
	// Only kubectl's `config` commands use this; an empty chain keeps any
	// caller away from the user's kubeconfig files.
	return &clientcmd.ClientConfigLoadingRules{}
}
