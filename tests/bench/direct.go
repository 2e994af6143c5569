package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/blang/semver"
	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/integration"
	presource "github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/property"

	"github.com/esosync/pulumi-esosync/provider"
)

// direct measures the esosync provider's own cost of a per-item deploy,
// with the engine's excluded by leaving the engine out: this process drives
// the provider through its gRPC methods as the engine would (Configure
// once, then Check and Create for each ExternalSecret, as many at once as
// the engine runs steps by default), with no engine, language host or
// checkpoint, and ESO off like the floor's. Destroy is Delete per item.
// Beside the floor, which does the same writes with plain clients at the
// same concurrency, it is the provider's overhead per item.
func (b *bed) direct(ctx context.Context, name string) ([]Row, error) {
	if err := b.eso(ctx, ""); err != nil {
		return nil, err
	}
	ns := "bench-" + name
	if err := b.namespace(ctx, ns); err != nil {
		return nil, err
	}
	prov, err := provider.New()
	if err != nil {
		return nil, err
	}
	s, err := integration.NewServer(ctx, provider.Name, semver.MustParse(provider.Version), integration.WithProvider(prov))
	if err != nil {
		return nil, err
	}
	if err := s.Configure(p.ConfigureRequest{Args: property.NewMap(map[string]property.Value{
		"kubeconfig": property.New(b.env.Kubeconfig)})}); err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	note := fmt.Sprintf("in-process provider, no engine: Check+Create per item, %d at once", enginePar())
	created := make([]p.CreateResponse, b.cfg.n)
	up, err := b.measureFunc(ctx, name+" up", GroupEsosync, func() error {
		return forEach(b.cfg.n, enginePar(), func(i int) error {
			resp, err := b.createDirect(s, ns, i)
			created[i] = resp
			return err
		})
	})
	up.Note = note
	forgetMemory(&up)
	if err == nil {
		up.Current, err = b.waitCurrent(ctx, ns, time.Now().Add(-up.Wall), time.Minute)
	}
	if err != nil {
		return []Row{up}, err
	}
	destroy, err := b.measureFunc(ctx, name+" destroy", GroupEsosync, func() error {
		return forEach(b.cfg.n, enginePar(), func(i int) error {
			return s.Delete(p.DeleteRequest{ID: created[i].ID, Urn: directURN(i), Properties: created[i].Properties})
		})
	})
	destroy.Note = "in-process provider, no engine: Delete per item"
	forgetMemory(&destroy)
	return []Row{up, destroy}, err
}

// createDirect checks and creates ExternalSecret i as the per-item program
// declares it (programs.go).
func (b *bed) createDirect(s integration.Server, ns string, i int) (p.CreateResponse, error) {
	inputs := presource.FromResourcePropertyMap(presource.NewPropertyMapFromMap(map[string]any{
		"name": "es-" + strconv.Itoa(i), "namespace": ns, "sync": "provider",
		"store": map[string]any{"kind": "ClusterSecretStore", "name": "bench-vault"},
		"data": []any{map[string]any{"secretKey": "password",
			"remoteRef": map[string]any{"key": "bench/key-" + strconv.Itoa(i%b.cfg.m), "property": "password"}}},
	}))
	check, err := s.Check(p.CheckRequest{Urn: directURN(i), Inputs: inputs})
	if err != nil {
		return p.CreateResponse{}, err
	}
	if len(check.Failures) > 0 {
		return p.CreateResponse{}, fmt.Errorf("check es-%d: %+v", i, check.Failures)
	}
	return s.Create(p.CreateRequest{Urn: directURN(i), Properties: check.Inputs})
}

// directURN is ExternalSecret i's URN in the direct phase.
func directURN(i int) presource.URN {
	return presource.URN("urn:pulumi:bench::direct::esosync:index:ExternalSecret::es-" + strconv.Itoa(i))
}

// forgetMemory drops a direct row's memory figures: they are the bench
// process's, which holds much more than the provider.
func forgetMemory(r *Row) {
	r.PeakRSS, r.PeakAnon = nil, nil
}
