package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// Workload kinds a rollout restart target may name.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
)

// rolloutFieldManager owns the annotations esosync sets on workloads, so a
// server-side apply by the workload's own tool (pulumi-kubernetes) keeps
// them.
const rolloutFieldManager = "esosync"

// RolloutTarget is a workload that restarts when an ExternalSecret's
// content changes.
type RolloutTarget struct {
	Kind, Namespace, Name string
}

// String names the target as kubectl would: Deployment/ns/name.
func (t RolloutTarget) String() string { return t.Kind + "/" + t.Namespace + "/" + t.Name }

// RolloutAnnotation is the pod-template annotation that carries an
// ExternalSecret's data hash on a workload it restarts: one key per
// ExternalSecret, so several can restart the same workload. A name too long
// for an annotation key is shortened with a hash of the whole.
func RolloutAnnotation(es types.NamespacedName) string {
	const prefix, limit = "rollout.", 63
	name := es.Name
	if len(prefix)+len(name) > limit {
		sum := sha256.Sum256([]byte(es.String()))
		name = name[:limit-len(prefix)-11] + "-" + hex.EncodeToString(sum[:])[:10]
	}
	return "esosync.io/" + prefix + name
}

// RolloutResult says what a rollout did or found, target by target.
type RolloutResult struct {
	// Rolled are the targets whose pod template got the new hash.
	Rolled []string
	// Behind are targets whose pod template carries another hash (Check).
	Behind []string
	// Missing are targets that do not exist.
	Missing []string
}

// RolloutRequest is what an `up` asks of Rollout.
type RolloutRequest struct {
	// ExternalSecret names the annotation (see RolloutAnnotation).
	ExternalSecret types.NamespacedName
	Targets        []RolloutTarget
	// Hash is the Secret's data hash after the sync.
	Hash string
	// ContentChanged: the sync left other content than the state had
	// (always true on a create).
	ContentChanged bool
	// Creating: the ExternalSecret is new, so a target may not exist yet.
	Creating bool
}

// Rollout gives each target's pod template the annotation of the
// ExternalSecret with the hash, which makes its controller roll the pods.
// A target that carries the hash is left alone, and so is one that never
// carried the annotation while the content did not change: a workload
// rolls once per content change and never when nothing changed. A missing
// target fails the rollout unless the ExternalSecret is being created (the
// workload may be created after its Secret, and then starts with the
// current one).
func (e *Engine) Rollout(ctx context.Context, r RolloutRequest) (RolloutResult, error) {
	if r.Hash == "" || len(r.Targets) == 0 {
		return RolloutResult{}, nil
	}
	k, err := e.clients()
	if err != nil {
		return RolloutResult{}, err
	}
	return rollout(ctx, k.Client, r)
}

// rollout is Rollout with c.
func rollout(ctx context.Context, c client.Client, r RolloutRequest) (RolloutResult, error) {
	var res RolloutResult
	key := RolloutAnnotation(r.ExternalSecret)
	for _, t := range r.Targets {
		obj, template, err := getWorkload(ctx, c, t)
		switch {
		case kube.IsGone(err) && r.Creating:
			res.Missing = append(res.Missing, t.String())
			continue
		case kube.IsGone(err):
			return res, fmt.Errorf("rollout restart target %s does not exist", t)
		case err != nil:
			return res, fmt.Errorf("reading rollout restart target %s: %w", t, err)
		}
		current, tied := template.Annotations[key]
		if current == r.Hash || (!tied && !r.ContentChanged) {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{key: r.Hash}}}}})
		if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(rolloutFieldManager)); err != nil {
			return res, fmt.Errorf("restarting %s: %w", t, err)
		}
		res.Rolled = append(res.Rolled, t.String())
	}
	return res, nil
}

// CheckRollout reports the targets whose pod template carries another hash
// than hash (ESO changed the Secret since the last rollout, or someone
// edited the workload) and those that do not exist. A target that never
// carried the annotation is not reported: esosync has no record of the
// content it started with, and restarting it could roll it when nothing
// changed. It writes nothing.
func (e *Engine) CheckRollout(ctx context.Context, es types.NamespacedName, targets []RolloutTarget, hash string) (RolloutResult, error) {
	if hash == "" || len(targets) == 0 {
		return RolloutResult{}, nil
	}
	k, err := e.clients()
	if err != nil {
		return RolloutResult{}, err
	}
	return checkRollout(ctx, k.Client, es, targets, hash)
}

// checkRollout is CheckRollout with c.
func checkRollout(ctx context.Context, c client.Client, es types.NamespacedName, targets []RolloutTarget, hash string) (RolloutResult, error) {
	var res RolloutResult
	key := RolloutAnnotation(es)
	for _, t := range targets {
		_, template, err := getWorkload(ctx, c, t)
		switch {
		case kube.IsGone(err):
			res.Missing = append(res.Missing, t.String())
		case err != nil:
			return res, fmt.Errorf("reading rollout restart target %s: %w", t, err)
		default:
			if current, tied := template.Annotations[key]; tied && current != hash {
				res.Behind = append(res.Behind, t.String())
			}
		}
	}
	return res, nil
}

// getWorkload reads t and returns it with its pod template.
func getWorkload(ctx context.Context, c client.Client, t RolloutTarget) (client.Object, *corev1.PodTemplateSpec, error) {
	key := client.ObjectKey{Namespace: t.Namespace, Name: t.Name}
	switch t.Kind {
	case KindDeployment:
		d := &appsv1.Deployment{}
		return d, &d.Spec.Template, c.Get(ctx, key, d)
	case KindStatefulSet:
		s := &appsv1.StatefulSet{}
		return s, &s.Spec.Template, c.Get(ctx, key, s)
	case KindDaemonSet:
		d := &appsv1.DaemonSet{}
		return d, &d.Spec.Template, c.Get(ctx, key, d)
	}
	return nil, nil, fmt.Errorf("kind %q is not a workload esosync can restart (Deployment, StatefulSet, DaemonSet)", t.Kind)
}
