package reconcile

import (
	"context"
	"crypto/sha3"
	"encoding/json"
	"fmt"
	"maps"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	"github.com/external-secrets/external-secrets/pkg/controllers/templating"
	"github.com/external-secrets/external-secrets/pkg/esutils"
	"github.com/external-secrets/external-secrets/pkg/template"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
)

// ESO's condition reasons, reused so that provider mode reports what ESO would.
const (
	ReasonSynced        = esv1.ConditionReasonSecretSynced
	ReasonSyncedError   = esv1.ConditionReasonSecretSyncedError
	ReasonSecretDeleted = esv1.ConditionReasonSecretDeleted
	ReasonSecretMissing = esv1.ConditionReasonSecretMissing
)

// FieldOwner is the field manager ESO uses when it writes the target Secret
// of the named ExternalSecret. esosync writes with the same one, so ESO
// recognises the keys as its own and can take over without a rewrite.
func FieldOwner(esName string) string {
	fqdn := fmt.Sprintf("externalsecrets.external-secrets.io/%v", esName)
	if len(fqdn) > 63 {
		fqdn = fmt.Sprintf("externalsecrets.external-secrets.io/sha3/%x", sha3.Sum224([]byte(esName)))
	}
	return fqdn
}

// Consistent reports whether secret is how ESO leaves a Secret it manages:
// the managed label is set and the data-hash annotation matches the data. A
// hand edit of the data breaks it.
func Consistent(secret *corev1.Secret) bool {
	return secret.Labels[esv1.LabelManaged] == esv1.LabelManagedValue &&
		secret.Annotations[esv1.AnnotationDataHash] == esutils.ObjectHash(secret.Data)
}

// OwnedBy reports whether secret belongs to the ExternalSecret es: it is
// controlled by it, or ESO's field manager for it wrote the Secret.
func OwnedBy(secret *corev1.Secret, es *esv1.ExternalSecret) bool {
	if owner := metav1.GetControllerOf(secret); owner != nil {
		gk := schema.FromAPIVersionAndKind(owner.APIVersion, owner.Kind).GroupKind()
		if gk.String() == esv1.ExtSecretGroupKind && owner.Name == es.Name {
			return true
		}
	}
	manager := FieldOwner(es.Name)
	for _, f := range secret.ManagedFields {
		if f.Manager == manager {
			return true
		}
	}
	return false
}

// Mutate applies ESO v0.20.4's mutation to secret (a copy of the existing
// Secret, or a new one): ownership, metadata, data and the managed label and
// data-hash annotation. es must carry its UID for creationPolicy Owner.
//
// c reads the ConfigMaps and Secrets a template's templateFrom refers to; it
// may be nil when the template has none.
func Mutate(ctx context.Context, c client.Client, secret *corev1.Secret, es *esv1.ExternalSecret, data map[string][]byte) error {
	if owner := metav1.GetControllerOf(secret); owner != nil {
		gk := schema.FromAPIVersionAndKind(owner.APIVersion, owner.Kind).GroupKind()
		if gk.String() == esv1.ExtSecretGroupKind && owner.Name != es.Name {
			return fmt.Errorf("target is owned by another ExternalSecret: %s", owner.Name)
		}
	}
	policy := es.Spec.Target.CreationPolicy
	if policy == esv1.CreatePolicyOwner {
		if err := controllerutil.SetControllerReference(es, secret, kube.Scheme); err != nil {
			return fmt.Errorf("could not set ExternalSecret controller reference: %w", err)
		}
	} else if owner := metav1.GetControllerOf(secret); owner != nil && owner.Name == es.Name {
		if err := controllerutil.RemoveControllerReference(es, secret, kube.Scheme); err != nil {
			return fmt.Errorf("could not remove ExternalSecret controller reference: %w", err)
		}
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if es.Spec.Target.Immutable {
		secret.Immutable = ptr.To(true)
	}
	if secret.GetUID() == "" || !es.Spec.Target.Immutable {
		keys, err := managedDataKeys(secret, es.Name)
		if err != nil {
			return err
		}
		for _, k := range keys {
			delete(secret.Data, k)
		}
		if err := applyTemplate(ctx, c, es, secret, data); err != nil {
			return fmt.Errorf("could not apply template: %w", err)
		}
	}
	if policy == esv1.CreatePolicyOwner {
		secret.Labels[esv1.LabelOwner] = esutils.ObjectHash(fmt.Sprintf("%v/%v", es.Namespace, es.Name))
	} else {
		delete(secret.Labels, esv1.LabelOwner)
	}
	secret.Labels[esv1.LabelManaged] = esv1.LabelManagedValue
	secret.Annotations[esv1.AnnotationDataHash] = esutils.ObjectHash(secret.Data)
	return nil
}

// applyTemplate is ESO v0.20.4's ApplyTemplate: template.data wins over
// templateFrom, which wins over the fetched data (kept when there is no
// template, or mergePolicy is Merge), which wins over existing keys (kept
// under creationPolicy Merge). Rendering is ESO's own template engine.
func applyTemplate(ctx context.Context, c client.Client, es *esv1.ExternalSecret, secret *corev1.Secret, data map[string][]byte) error {
	labelKeys, err := templating.GetManagedLabelKeys(secret, es.Name)
	if err != nil {
		return err
	}
	for _, k := range labelKeys {
		delete(secret.Labels, k)
	}
	annotationKeys, err := templating.GetManagedAnnotationKeys(secret, es.Name)
	if err != nil {
		return err
	}
	for _, k := range annotationKeys {
		delete(secret.Annotations, k)
	}
	tpl := es.Spec.Target.Template
	if tpl == nil {
		esutils.MergeStringMap(secret.Labels, es.Labels)
		esutils.MergeStringMap(secret.Annotations, es.Annotations)
	} else {
		esutils.MergeStringMap(secret.Labels, tpl.Metadata.Labels)
		esutils.MergeStringMap(secret.Annotations, tpl.Metadata.Annotations)
		if secret.DeletionTimestamp.IsZero() {
			for _, f := range tpl.Metadata.Finalizers {
				controllerutil.AddFinalizer(secret, f)
			}
		}
	}
	if es.Spec.Target.CreationPolicy != esv1.CreatePolicyMerge {
		secret.Data = map[string][]byte{}
	}
	if tpl == nil {
		maps.Insert(secret.Data, maps.All(data))
		return nil
	}
	if tpl.Type != "" {
		secret.Type = tpl.Type
	}
	noTemplate := len(tpl.Data) == 0 && len(tpl.TemplateFrom) == 0
	if tpl.MergePolicy == esv1.MergePolicyMerge || noTemplate {
		maps.Insert(secret.Data, maps.All(data))
	}
	execute, err := template.EngineForVersion(tpl.EngineVersion)
	if err != nil {
		return err
	}
	parser := templating.Parser{Client: c, TargetSecret: secret, DataMap: data, Exec: execute}
	if err := parser.MergeTemplateFrom(ctx, es.Namespace, tpl); err != nil {
		return fmt.Errorf("error fetching templateFrom data: %w", err)
	}
	if err := parser.MergeMap(tpl.Data, esv1.TemplateTargetData); err != nil {
		return fmt.Errorf("error executing template: %w", err)
	}
	if err := parser.MergeMap(tpl.Metadata.Labels, esv1.TemplateTargetLabels); err != nil {
		return fmt.Errorf("error executing template: %w", err)
	}
	if err := parser.MergeMap(tpl.Metadata.Annotations, esv1.TemplateTargetAnnotations); err != nil {
		return fmt.Errorf("error executing template: %w", err)
	}
	return nil
}

// managedDataKeys lists the data keys ESO's field manager for esName owns.
func managedDataKeys(secret *corev1.Secret, esName string) ([]string, error) {
	var keys []string
	for _, f := range secret.ManagedFields {
		if f.Manager != FieldOwner(esName) || f.FieldsV1 == nil {
			continue
		}
		fields, err := fieldsOf(f.FieldsV1.Raw)
		if err != nil {
			return nil, err
		}
		if df, ok := fields["f:data"].(map[string]any); ok {
			for k := range df {
				if k != "." {
					keys = append(keys, k[len("f:"):])
				}
			}
		}
	}
	return keys, nil
}

// Outcome is what Write did.
type Outcome struct {
	// Secret is the target Secret after the write (nil if there is none).
	Secret *corev1.Secret
	// Reason and Message are ESO's condition reason and message for the sync.
	Reason  string
	Message string
}

// Write makes the target Secret of es hold fetched.Data, with ESO's
// semantics for the creation and deletion policies, in a single create or
// update, so that a failed fetch or a conflict never leaves it half written.
//
// ESO, when it runs, syncs the same ExternalSecret and may write the
// Secret between esosync's read and write; the write is then tried again
// on the Secret as it now is, instead of failing the deploy.
func Write(ctx context.Context, c client.Client, es *esv1.ExternalSecret, fetched *Fetched) (*Outcome, error) {
	return WriteFrom(ctx, c, es, fetched, nil, false)
}

// Seen is the target Secret as a caller has just read it (nil Secret: it
// does not exist), so that a sync reads it once.
type Seen struct {
	Secret *corev1.Secret
}

// WriteFrom is Write starting from the target Secret as seen (nil: read
// it). A retry after a conflict reads it again; with refuse (a new
// ExternalSecret), a Secret read that belongs to someone else fails the
// write instead of being taken over.
func WriteFrom(ctx context.Context, c client.Client, es *esv1.ExternalSecret, fetched *Fetched, seen *Seen, refuse bool) (*Outcome, error) {
	var out *Outcome
	err := retry.OnError(retry.DefaultRetry, func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) },
		func() error {
			read := seen == nil
			existing, err := seenOrRead(ctx, c, es, seen)
			seen = nil
			if err != nil {
				return err
			}
			if read && refuse {
				if err := refuseForeignTarget(es, existing); err != nil {
					return err
				}
			}
			out, err = writeOnce(ctx, c, es, fetched, existing)
			return err
		})
	return out, err
}

// seenOrRead returns the target Secret as seen, or reads it.
func seenOrRead(ctx context.Context, c client.Client, es *esv1.ExternalSecret, seen *Seen) (*corev1.Secret, error) {
	if seen != nil {
		return seen.Secret, nil
	}
	existing := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: es.Namespace, Name: TargetName(es)}, existing)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading target Secret %s/%s: %w", es.Namespace, TargetName(es), err)
	}
	return existing, nil
}

// writeOnce is one attempt of Write, from the target Secret as it exists
// (nil: it does not).
func writeOnce(ctx context.Context, c client.Client, es *esv1.ExternalSecret, fetched *Fetched, existing *corev1.Secret) (*Outcome, error) {
	name := TargetName(es)
	target := es.Spec.Target
	if len(fetched.Data) == 0 {
		switch target.DeletionPolicy {
		case esv1.DeletionPolicyDelete:
			if target.CreationPolicy != esv1.CreatePolicyOwner {
				return nil, fmt.Errorf("unable to delete secret %s: creationPolicy=%s is not Owner", name, target.CreationPolicy)
			}
			if existing != nil {
				if err := c.Delete(ctx, existing); err != nil && !apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("deleting target Secret %s/%s: %w", es.Namespace, name, err)
				}
			}
			return &Outcome{Reason: ReasonSecretDeleted, Message: "secret deleted due to DeletionPolicy"}, nil
		case esv1.DeletionPolicyRetain:
			return &Outcome{Secret: existing, Reason: ReasonSynced, Message: "secret retained due to DeletionPolicy=Retain"}, nil
		}
	}
	switch target.CreationPolicy {
	case esv1.CreatePolicyNone:
		return &Outcome{Secret: existing, Reason: ReasonSynced, Message: "secret creation skipped due to CreationPolicy=None"}, nil
	case esv1.CreatePolicyMerge:
		if existing == nil {
			return &Outcome{Reason: ReasonSecretMissing, Message: "secret will not be created due to CreationPolicy=Merge"}, nil
		}
	}
	owner := client.FieldOwner(FieldOwner(es.Name))
	if existing == nil {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: es.Namespace}, Data: map[string][]byte{}}
		if err := Mutate(ctx, c, secret, es, fetched.Data); err != nil {
			return nil, err
		}
		if err := c.Create(ctx, secret, owner); err != nil {
			return nil, fmt.Errorf("creating target Secret %s/%s: %w", es.Namespace, name, err)
		}
		return &Outcome{Secret: secret, Reason: ReasonSynced, Message: "secret synced"}, nil
	}
	updated := existing.DeepCopy()
	if err := Mutate(ctx, c, updated, es, fetched.Data); err != nil {
		return nil, fmt.Errorf("error mutating secret %s: %w", name, err)
	}
	if equality.Semantic.DeepEqual(existing, updated) {
		return &Outcome{Secret: existing, Reason: ReasonSynced, Message: "secret synced"}, nil
	}
	if ptr.Deref(existing.Immutable, false) {
		return nil, fmt.Errorf("error updating secret %s: secret is immutable", name)
	}
	if err := c.Update(ctx, updated, owner); err != nil {
		return nil, fmt.Errorf("updating target Secret %s/%s: %w", es.Namespace, name, err)
	}
	return &Outcome{Secret: updated, Reason: ReasonSynced, Message: "secret synced"}, nil
}

// TargetName is the name of the target Secret: target.name, defaulting to
// the ExternalSecret's name as in ESO.
func TargetName(es *esv1.ExternalSecret) string {
	if es.Spec.Target.Name != "" {
		return es.Spec.Target.Name
	}
	return es.Name
}

func fieldsOf(raw []byte) (map[string]any, error) {
	fields := map[string]any{}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("error unmarshaling managed fields: %w", err)
	}
	return fields, nil
}
