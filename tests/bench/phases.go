package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// anchorWait bounds the wait for ESO to sync the anchor's Secrets.
const anchorWait = 30 * time.Minute

// phase runs one phase and returns its rows.
func (b *bed) phase(ctx context.Context, name string) ([]Row, error) {
	switch name {
	case "floor":
		return b.floorRows(ctx)
	case "items-provider":
		return b.lifecycle(ctx, name, "items", "provider", nil, nil, true)
	case "items-controller":
		return b.lifecycle(ctx, name, "items", "controller", nil, nil, false)
	case "set-provider":
		return b.lifecycle(ctx, name, "set", "provider", nil, nil, true)
	case "set-controller":
		return b.lifecycle(ctx, name, "set", "controller", nil, nil, false)
	case "anchor-default":
		return b.anchor(ctx, name, "default")
	case "anchor-tuned":
		return b.anchor(ctx, name, "tuned")
	case "skip-checkpoints":
		return b.lifecycle(ctx, name, "items", "provider", []string{"PULUMI_SKIP_CHECKPOINTS=true"}, nil, false)
	case "parallel":
		return b.lifecycle(ctx, name, "items", "provider", nil, []string{"--parallel=" + strconv.Itoa(b.cfg.parallel)}, false)
	case "grpc-timed":
		return b.grpcTimed(ctx, name)
	case "direct":
		return b.direct(ctx, name)
	case "set-aws":
		return b.setAWS(ctx, name)
	}
	return nil, fmt.Errorf("unknown phase %q", name)
}

// esosyncStack writes and initializes an esosync program's stack.
func (b *bed) esosyncStack(ctx context.Context, name, form, sync, store string) (dir, ns string, err error) {
	ns = "bench-" + name
	if err := b.namespace(ctx, ns); err != nil {
		return "", "", err
	}
	dir, err = b.stackDir(ctx, name, esosyncProgram, map[string]string{
		"n": strconv.Itoa(b.cfg.n), "m": strconv.Itoa(b.cfg.m), "namespace": ns, "sync": sync, "store": store, "form": form,
	})
	return dir, ns, err
}

// lifecycle is up (until every Secret is current), then, when full,
// refresh and a no-op up, then destroy, with ESO running as the Operator
// tunes it (what an esosync user runs).
func (b *bed) lifecycle(ctx context.Context, name, form, sync string, env, flags []string, full bool) ([]Row, error) {
	return b.lifecycleWith(ctx, "tuned", name, form, sync, env, flags, full)
}

// lifecycleWith is lifecycle with ESO running as eso says ("" for off).
func (b *bed) lifecycleWith(ctx context.Context, eso, name, form, sync string, env, flags []string, full bool) ([]Row, error) {
	if err := b.eso(ctx, eso); err != nil {
		return nil, err
	}
	dir, ns, err := b.esosyncStack(ctx, name, form, sync, "bench-vault")
	if err != nil {
		return nil, err
	}
	var rows []Row
	step := func(label string, current bool, args ...string) error {
		waitNS := ""
		if current {
			waitNS = ns
		}
		row, err := b.measure(ctx, name+" "+label, dir, env, append(args, flags...), waitNS, time.Minute)
		rows = append(rows, row)
		return err
	}
	if err := step("up", true, "up", "--yes", "--skip-preview"); err != nil {
		return rows, err
	}
	if full {
		if err := step("refresh", false, "refresh", "--yes", "--skip-preview"); err != nil {
			return rows, err
		}
		if err := step("no-op up", false, "up", "--yes", "--skip-preview"); err != nil {
			return rows, err
		}
	}
	return rows, step("destroy", false, "destroy", "--yes", "--skip-preview")
}

// anchor is the pulumi-kubernetes program with ESO at mode ("default":
// the chart's defaults; "tuned": the Operator's).
func (b *bed) anchor(ctx context.Context, name, mode string) ([]Row, error) {
	if err := b.eso(ctx, mode); err != nil {
		return nil, err
	}
	ns := "bench-" + name
	if err := b.namespace(ctx, ns); err != nil {
		return nil, err
	}
	dir, err := b.stackDir(ctx, name, anchorProgram, map[string]string{
		"n": strconv.Itoa(b.cfg.n), "m": strconv.Itoa(b.cfg.m), "namespace": ns, "store": name,
		"vaultAddress": b.vault.URL, "vaultToken": b.env.VaultToken,
	})
	if err != nil {
		return nil, err
	}
	up, err := b.measure(ctx, name+" up", dir, nil, []string{"up", "--yes", "--skip-preview"}, ns, anchorWait)
	up.Note = "ESO " + mode
	rows := []Row{up}
	if err != nil {
		return rows, err
	}
	destroy, err := b.measure(ctx, name+" destroy", dir, nil, []string{"destroy", "--yes", "--skip-preview"}, "", 0)
	return append(rows, destroy), err
}

// grpcTimed measures the provider's own cost with the engine's taken out:
// the engine logs every provider call (PULUMI_DEBUG_GRPC) and the union of
// the esosync provider's Create calls is how long the provider worked.
// Per-item ExternalSecrets (checkpoints skipped, so the engine does not
// take the CPU from under them) and one set with the same N items, each
// with ESO off as in the floor loop, so the three compare like for like.
func (b *bed) grpcTimed(ctx context.Context, name string) ([]Row, error) {
	var rows []Row
	for _, form := range []string{"items", "set"} {
		log := filepath.Join(b.work, "grpc-"+form+".log")
		env := []string{"PULUMI_DEBUG_GRPC=" + log, "PULUMI_SKIP_CHECKPOINTS=true"}
		got, err := b.lifecycleWith(ctx, "", name+"-"+form, form, "provider", env, nil, false)
		rows = append(rows, got...)
		if err != nil {
			return rows, err
		}
		stats, err := ReadGRPCLogFor(log, "esosync", "Create")
		if err != nil {
			return rows, err
		}
		b.providerBusy[form] = stats.Busy
		got[0].Note = fmt.Sprintf("ESO off; esosync Create calls %d, busy %.1f s (engine excluded), span %.1f s",
			stats.Calls["Create"], stats.Busy.Seconds(), stats.Span.Seconds())
		rows[len(rows)-len(got)] = got[0]
		_ = os.Remove(log)
	}
	return rows, nil
}

// setAWS is a provider-mode set reading AWS Secrets Manager: its batching
// must cost ceil(M/20) BatchGetSecretValue calls.
func (b *bed) setAWS(ctx context.Context, name string) ([]Row, error) {
	if err := b.eso(ctx, "tuned"); err != nil {
		return nil, err
	}
	dir, ns, err := b.esosyncStack(ctx, name, "set", "provider", "bench-aws")
	if err != nil {
		return nil, err
	}
	up, err := b.measure(ctx, name+" up", dir, nil, []string{"up", "--yes", "--skip-preview"}, ns, time.Minute)
	want := (b.cfg.m + 19) / 20
	up.Note = fmt.Sprintf("BatchGetSecretValue %d (ceil(M/20) = %d)", up.Backend["secretsmanager.BatchGetSecretValue"], want)
	rows := []Row{up}
	if err != nil {
		return rows, err
	}
	destroy, err := b.measure(ctx, name+" destroy", dir, nil, []string{"destroy", "--yes", "--skip-preview"}, "", 0)
	return append(rows, destroy), err
}

// measure runs one pulumi command and decomposes it: wall time, time until
// every Secret in waitNS is current (when set, up to limit), CPU of each
// process group, API calls from the audit log, backend calls.
func (b *bed) measure(ctx context.Context, name, dir string, env, args []string, waitNS string, limit time.Duration) (Row, error) {
	b.vault.Reset()
	b.aws.Reset()
	s := b.sampler()
	s.Start()
	began := time.Now()
	_, err := b.pulumiCmd(ctx, dir, env, s.Tree, args...)
	row := Row{Name: name, Wall: time.Since(began)}
	if err == nil && waitNS != "" {
		row.Current, err = b.waitCurrent(ctx, waitNS, began, limit)
	}
	usage := s.Stop()
	row.CPU, row.PeakRSS, row.PeakAnon = usage.CPU, usage.PeakRSS, usage.PeakAnon
	row.Backend = map[string]int{}
	maps.Copy(row.Backend, b.vault.Counts())
	maps.Copy(row.Backend, b.aws.Counts())
	api, aerr := b.apiCalls()
	if err == nil {
		err = aerr
	}
	row.API = api
	fmt.Printf("    %-32s wall %6.1fs current %6.1fs\n", name, row.Wall.Seconds(), row.Current.Seconds())
	return row, err
}
