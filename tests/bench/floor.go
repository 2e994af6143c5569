package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// floorAgent is the floor loop's user agent, its client in the audit log.
const floorAgent = "esosync-bench-floor"

var externalSecrets = schema.GroupVersionResource{Group: "external-secrets.io", Version: "v1", Resource: "externalsecrets"}

// floorRows measures the least any tool must do, without ESO running:
// read the M keys once, then write what the outcome needs, as many at once
// as the engine runs steps by default: the N Secrets alone, and then the N
// ExternalSecret CRs, Secrets and CR statuses esosync writes.
func (b *bed) floorRows(ctx context.Context) ([]Row, error) {
	if err := b.eso(ctx, ""); err != nil {
		return nil, err
	}
	kube, dyn, err := b.floorClients()
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, objects := range []bool{false, true} {
		name, ns := "floor secrets", "bench-floor-secrets"
		if objects {
			name, ns = "floor objects", "bench-floor-objects"
		}
		if err := b.namespace(ctx, ns); err != nil {
			return rows, err
		}
		row, err := b.measureFunc(ctx, name, GroupOtherProvider, func() error {
			values, err := b.readVault(ctx)
			if err != nil {
				return err
			}
			return forEach(b.cfg.n, enginePar(), func(i int) error {
				return writeItem(ctx, kube, dyn, ns, i, values[i%b.cfg.m], objects)
			})
		})
		row.Note = fmt.Sprintf("%d at once; floor API calls: %s", enginePar(), row.API.Summary(floorAgent, 4))
		if err == nil {
			row.Current, err = b.waitCurrent(ctx, ns, time.Now().Add(-row.Wall), time.Minute)
		}
		rows = append(rows, row)
		if err != nil {
			return rows, err
		}
		// ESO, started by a later phase, must not find these ExternalSecrets.
		if err := dyn.Resource(externalSecrets).Namespace(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// floorClients are client-go clients with the provider's default: no
// client-side request limit.
func (b *bed) floorClients() (kubernetes.Interface, dynamic.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", b.env.Kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent, cfg.QPS, cfg.Burst = floorAgent, -1, 0
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	return kube, dyn, err
}

// readVault reads the M keys once, through the counting proxy.
func (b *bed) readVault(ctx context.Context) ([]string, error) {
	values := make([]string, b.cfg.m)
	err := forEach(b.cfg.m, enginePar(), func(j int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/secret/data/bench/key-%d", b.vault.URL, j), nil)
		if err != nil {
			return err
		}
		req.Header.Set("X-Vault-Token", b.env.VaultToken)
		req.Header.Set("User-Agent", floorAgent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				Data map[string]string `json:"data"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		values[j] = body.Data.Data["password"]
		return nil
	})
	return values, err
}

// writeItem writes item i: its Secret, or its ExternalSecret CR, Secret
// and CR status.
func writeItem(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, ns string, i int, value string, objects bool) error {
	name := fmt.Sprintf("es-%d", i)
	if objects {
		es := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
			"metadata": map[string]any{"name": name, "namespace": ns},
			"spec": map[string]any{
				"refreshInterval": "1h", "secretStoreRef": map[string]any{"kind": "ClusterSecretStore", "name": "bench-vault"},
				"target": map[string]any{"name": name},
				"data": []any{map[string]any{"secretKey": "password",
					"remoteRef": map[string]any{"key": fmt.Sprintf("bench/key-%d", i), "property": "password"}}},
			},
		}}
		if _, err := dyn.Resource(externalSecrets).Namespace(ns).Create(ctx, es, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string][]byte{"password": []byte(value)}}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return err
	}
	if !objects {
		return nil
	}
	status := fmt.Sprintf(`{"status":{"refreshTime":%q,"conditions":[{"type":"Ready","status":"True","reason":"SecretSynced","message":"secret synced"}]}}`,
		time.Now().UTC().Format(time.RFC3339))
	_, err := dyn.Resource(externalSecrets).Namespace(ns).Patch(ctx, name, types.MergePatchType, []byte(status), metav1.PatchOptions{}, "status")
	return err
}

// forEach runs do(0..n-1), width at a time, and returns the first error.
func forEach(n, width int, do func(i int) error) error {
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := do(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// measureFunc measures fn run in this process (the floor's client, or the
// provider driven directly) like measure measures a pulumi command; the
// bench process's CPU and memory count as group's.
func (b *bed) measureFunc(ctx context.Context, name, group string, fn func() error) (Row, error) {
	b.vault.Reset()
	s := b.sampler()
	s.Watch(os.Getpid(), group)
	s.Start()
	began := time.Now()
	err := fn()
	row := Row{Name: name, Wall: time.Since(began)}
	usage := s.Stop()
	row.CPU, row.PeakRSS, row.PeakAnon = usage.CPU, usage.PeakRSS, usage.PeakAnon
	row.Backend = maps.Clone(b.vault.Counts())
	api, aerr := b.apiCalls()
	if err == nil {
		err = aerr
	}
	row.API = api
	fmt.Printf("    %-32s wall %6.1fs\n", name, row.Wall.Seconds())
	return row, err
}
