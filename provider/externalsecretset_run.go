package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/esosync/pulumi-esosync/provider/internal/reconcile"
)

// setParallel is how many items of a set the provider works on at once.
// The API server, not the engine, is then the limit: with no client-side
// request limit (esosync:kubeClientQps) its priority and fairness decides.
const setParallel = 32

// itemResult is what happened to one item.
type itemResult struct {
	name   string
	status ExternalSecretStatus
	exists bool // the item's ExternalSecret is in the cluster
	err    error
}

// runSet carries out plan: creates, syncs or deletes each item.
func runSet(ctx context.Context, args ExternalSecretSetArgs, ns string, plan []setStep, prev map[string]ExternalSecretStatus) []itemResult {
	engine, log := engineOf(ctx), p.GetLogger(ctx)
	return parallel(ctx, plan, func(step setStep) itemResult {
		r := itemResult{name: step.name}
		if step.remove {
			// The namespace's HMAC key is released once, after all items.
			r.err = engine.RemoveExternalSecret(ctx, engineKey(ns, step.name))
			r.exists, r.status = r.err != nil, prev[step.name]
			return r
		}
		item := args.itemArgs(step.name, args.Items[step.name])
		report, err := engine.ApplyExternalSecret(ctx, log, item.object(step.name, ns), item.mode(), step.create)
		r.err = err
		switch {
		case err == nil || reconcile.IsNotReady(err):
			r.exists, r.status = true, statusOf(report)
		case step.create:
			// A failed create leaves nothing behind (or, in controller
			// mode, is a NotReadyError above): the next up creates it.
		default:
			r.exists, r.status = true, prev[step.name]
			r.status.Ready, r.status.Reason = false, reconcile.ReasonSyncedError
			r.status.Message = reconcile.StableMessage(err.Error())
		}
		return r
	})
}

// observeSet refreshes the items of plan.
func observeSet(ctx context.Context, mode reconcile.Mode, ns string, plan []setStep, prev map[string]ExternalSecretStatus) []itemResult {
	engine, log := engineOf(ctx), p.GetLogger(ctx)
	return parallel(ctx, plan, func(step setStep) itemResult {
		r := itemResult{name: step.name, exists: true, status: prev[step.name]}
		obs, err := engine.ObserveExternalSecret(ctx, log, engineKey(ns, step.name), mode, reportOfStatus(prev[step.name]))
		switch {
		case err != nil:
			log.Warningf("refresh of item %s kept its previous status: %v", step.name, err)
		case !obs.Found:
			r.exists = false
		default:
			r.status = statusOf(obs.Report)
		}
		return r
	})
}

// parallel runs do for every step, setParallel at a time, and reports
// progress now and then (each status line is a message to the engine).
func parallel(ctx context.Context, steps []setStep, do func(setStep) itemResult) []itemResult {
	results := make([]itemResult, len(steps))
	next := make(chan int)
	var wg sync.WaitGroup
	var done atomic.Int64
	log := p.GetLogger(ctx)
	for range min(setParallel, len(steps)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = do(steps[i])
				if n := done.Add(1); n%100 == 0 || int(n) == len(steps) {
					log.InfoStatusf("%d of %d items done", n, len(steps))
				}
			}
		}()
	}
	for i := range steps {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// collectSet turns results into the set's outputs, starting from the
// previous statuses; items that failed make an error naming them.
func collectSet(args ExternalSecretSetArgs, prev map[string]ExternalSecretStatus, results []itemResult) (ExternalSecretSetOutputs, error) {
	statuses := maps.Clone(prev)
	if statuses == nil {
		statuses = map[string]ExternalSecretStatus{}
	}
	var failed []string
	for _, r := range results {
		if r.exists {
			statuses[r.name] = r.status
		} else {
			delete(statuses, r.name)
		}
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.name, r.err))
		}
	}
	out := ExternalSecretSetOutputs{Statuses: statuses, NotReady: []string{}}
	for _, name := range slices.Sorted(maps.Keys(args.Items)) {
		if st, ok := statuses[name]; !ok || !st.Ready {
			out.NotReady = append(out.NotReady, name)
		}
	}
	out.Ready = len(out.NotReady) == 0
	if len(failed) > 0 {
		slices.Sort(failed)
		return out, infer.ResourceInitFailedError{Reasons: []string{
			fmt.Sprintf("%d of %d items failed: %s", len(failed), len(results), listNames(failed, 10))}}
	}
	return out, nil
}
