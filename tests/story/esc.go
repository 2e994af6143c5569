package story

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/esosync/pulumi-esosync/tests/escserver"
	"github.com/esosync/pulumi-esosync/tests/harness"
)

// escOrg is the organization of a stack on a DIY backend
// (`${pulumi.organization}`).
const escOrg = "organization"

// ESC tells the Pulumi blog story with examples/yaml/esc-app: the local ESC
// endpoint (on the node IP, so ESO's pods reach it) holds an environment
// with app.hello and the secret app.hello-secret, and another with the
// token ESO uses; a ClusterSecretStore gets that token through an `esc`
// credential source; an ExternalSecret extracts `app`; the app reads both
// values. The rotation changes app.hello in ESC. See Flow.Run.
func ESC(ctx context.Context, env *harness.Env, work string, logf func(string, ...any)) (*Report, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	srv, err := escserver.Start(env.ListenHost + ":0")
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	providerToken, esoToken := Random("pul-provider"), Random("pul-eso")
	srv.AddToken(providerToken)
	srv.AddToken(esoToken)
	hello, helloSecret := Random("world"), Random("world")
	setApp := func(h string) error {
		return srv.SetEnvironment(escOrg, "esosync-demo", "app", fmt.Sprintf(
			"values:\n  app:\n    hello: %s\n    hello-secret:\n      fn::secret: %s\n", h, helloSecret))
	}
	if err := setApp(hello); err != nil {
		return nil, err
	}
	if err := srv.SetEnvironment(escOrg, "esosync-demo", "eso-creds", fmt.Sprintf(
		"values:\n  pulumi:\n    accessToken:\n      fn::secret: %s\n", esoToken)); err != nil {
		return nil, err
	}
	logf("ESC endpoint %s: environments esosync-demo/app (app.hello, secret app.hello-secret) and esosync-demo/eso-creds (ESO's token)", srv.URL())
	flow := &Flow{
		Program:      filepath.Join(root, "examples", "yaml", "esc-app"),
		Namespace:    "esc-app",
		Config:       map[string]string{"escApiUrl": srv.URL()},
		SecretConfig: map[string]string{"escToken": providerToken},
		Secret:       "app-secret",
		Env:          map[string]string{"HELLO": "hello", "HELLO_SECRET": "hello-secret"},
		Want:         map[string]string{"HELLO": hello, "HELLO_SECRET": helloSecret},
		Rotate: func(context.Context) (map[string]string, error) {
			hello2 := Random("world-rotated")
			logf("rotation: app.hello changes in ESC")
			return map[string]string{"HELLO": hello2, "HELLO_SECRET": helloSecret}, setApp(hello2)
		},
		Fetched: []string{esoToken},
		Inputs:  []string{providerToken},
	}
	return flow.Run(ctx, env, work, logf)
}
