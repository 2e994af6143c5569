package provider

import (
	"maps"
	"time"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/esosync/pulumi-esosync/provider/internal/kube"
	"github.com/esosync/pulumi-esosync/provider/internal/reconcile"
)

// mode is the sync mode with its default.
func (a ExternalSecretArgs) mode() reconcile.Mode {
	return reconcile.Mode(ptr.Deref(a.Sync, SyncController))
}

// object builds ESO's ExternalSecret CR from the inputs; name and
// namespace are the defaults for unset ones.
func (a ExternalSecretArgs) object(name, namespace string) *esv1.ExternalSecret {
	es := &esv1.ExternalSecret{
		TypeMeta: metav1.TypeMeta{APIVersion: esv1.SchemeGroupVersion.String(), Kind: esv1.ExtSecretKind},
		ObjectMeta: metav1.ObjectMeta{Name: ptr.Deref(a.Name, name), Namespace: ptr.Deref(a.Namespace, namespace),
			Labels: map[string]string{kube.ManagedByLabel: kube.ManagedByValue}, Annotations: maps.Clone(a.Annotations)},
	}
	maps.Copy(es.Labels, a.Labels)
	interval, _ := time.ParseDuration(ptr.Deref(a.RefreshInterval, defaultRefreshInterval))
	spec := &es.Spec
	spec.RefreshInterval = &metav1.Duration{Duration: interval}
	spec.SecretStoreRef = esv1.SecretStoreRef{Kind: a.Store.Kind, Name: a.Store.Name}
	t := ptr.Deref(a.Target, ExternalSecretTarget{})
	spec.Target = esv1.ExternalSecretTarget{
		Name:           ptr.Deref(t.Name, ""),
		CreationPolicy: esv1.ExternalSecretCreationPolicy(ptr.Deref(t.CreationPolicy, "Owner")),
		DeletionPolicy: esv1.ExternalSecretDeletionPolicy(ptr.Deref(t.DeletionPolicy, "Retain")),
		Immutable:      ptr.Deref(t.Immutable, false),
		Template:       esTemplate(t),
	}
	for _, d := range a.Data {
		spec.Data = append(spec.Data, esv1.ExternalSecretData{SecretKey: d.SecretKey, RemoteRef: esRemoteRef(d.RemoteRef)})
	}
	for _, d := range a.DataFrom {
		from := esv1.ExternalSecretDataFromRemoteRef{Rewrite: esRewrites(d.Rewrite)}
		if d.Extract != nil {
			from.Extract = ptr.To(esRemoteRef(*d.Extract))
		}
		if d.Find != nil {
			from.Find = esFind(d.Find)
		}
		spec.DataFrom = append(spec.DataFrom, from)
	}
	return es
}

func esRemoteRef(r RemoteRef) esv1.ExternalSecretDataRemoteRef {
	return esv1.ExternalSecretDataRemoteRef{
		Key: r.Key, Property: ptr.Deref(r.Property, ""), Version: ptr.Deref(r.Version, ""),
		MetadataPolicy:     esv1.ExternalSecretMetadataPolicyNone,
		ConversionStrategy: esv1.ExternalSecretConversionStrategy(ptr.Deref(r.ConversionStrategy, "Default")),
		DecodingStrategy:   esv1.ExternalSecretDecodingStrategy(ptr.Deref(r.DecodingStrategy, "None")),
	}
}

// esTemplate builds ESO's template from target.template and the target's
// type/labels/annotations shorthands (nil when neither is set).
func esTemplate(t ExternalSecretTarget) *esv1.ExternalSecretTemplate {
	if t.Template == nil && t.Type == nil && len(t.Labels) == 0 && len(t.Annotations) == 0 {
		return nil
	}
	tpl := &esv1.ExternalSecretTemplate{
		Type:          corev1.SecretType(ptr.Deref(t.Type, "")),
		EngineVersion: esv1.TemplateEngineV2,
		MergePolicy:   esv1.MergePolicyReplace,
		Metadata:      esv1.ExternalSecretTemplateMetadata{Labels: t.Labels, Annotations: t.Annotations},
	}
	if tt := t.Template; tt != nil {
		if tt.Type != nil {
			tpl.Type = corev1.SecretType(*tt.Type)
		}
		tpl.MergePolicy = esv1.TemplateMergePolicy(ptr.Deref(tt.MergePolicy, "Replace"))
		if len(tt.Labels) > 0 {
			tpl.Metadata.Labels = tt.Labels
		}
		if len(tt.Annotations) > 0 {
			tpl.Metadata.Annotations = tt.Annotations
		}
		tpl.Data = tt.Data
	}
	return tpl
}

func esRewrites(rewrites []Rewrite) []esv1.ExternalSecretRewrite {
	var out []esv1.ExternalSecretRewrite
	for _, r := range rewrites {
		var e esv1.ExternalSecretRewrite
		if r.Regexp != nil {
			e.Regexp = &esv1.ExternalSecretRewriteRegexp{Source: r.Regexp.Source, Target: r.Regexp.Target}
		}
		if r.Transform != nil {
			e.Transform = &esv1.ExternalSecretRewriteTransform{Template: r.Transform.Template}
		}
		out = append(out, e)
	}
	return out
}

func esFind(f *FindRef) *esv1.ExternalSecretFind {
	out := &esv1.ExternalSecretFind{
		Path: f.Path, Tags: f.Tags,
		ConversionStrategy: esv1.ExternalSecretConversionStrategy(ptr.Deref(f.ConversionStrategy, "Default")),
		DecodingStrategy:   esv1.ExternalSecretDecodingStrategy(ptr.Deref(f.DecodingStrategy, "None")),
	}
	if f.Name != nil {
		out.Name = &esv1.FindName{RegExp: f.Name.Regexp}
	}
	return out
}

// externalSecretArgsOf rebuilds inputs from an ExternalSecret in the
// cluster, for `pulumi import`: every field ESO has, with its value as is.
func externalSecretArgsOf(es *esv1.ExternalSecret) ExternalSecretArgs {
	a := ExternalSecretArgs{
		Name: ptr.To(es.Name), Namespace: ptr.To(es.Namespace),
		Store:       StoreRef{Kind: ptr.Deref(nonEmpty(es.Spec.SecretStoreRef.Kind), SecretStoreKind), Name: es.Spec.SecretStoreRef.Name},
		Labels:      userLabels(es.Labels),
		Annotations: userAnnotations(es.Annotations),
		Sync:        ptr.To(SyncController),
	}
	if ri := es.Spec.RefreshInterval; ri != nil {
		a.RefreshInterval = ptr.To(ri.Duration.String())
	}
	t := es.Spec.Target
	target := ExternalSecretTarget{Name: nonEmpty(t.Name), CreationPolicy: (*CreationPolicy)(nonEmpty(string(t.CreationPolicy))),
		DeletionPolicy: (*DeletionPolicy)(nonEmpty(string(t.DeletionPolicy)))}
	if t.Immutable {
		target.Immutable = ptr.To(true)
	}
	if tpl := t.Template; tpl != nil {
		target.Template = &TargetTemplate{Type: nonEmpty(string(tpl.Type)), MergePolicy: (*MergePolicy)(nonEmpty(string(tpl.MergePolicy))),
			Labels: tpl.Metadata.Labels, Annotations: tpl.Metadata.Annotations, Data: tpl.Data}
	}
	a.Target = &target
	for _, d := range es.Spec.Data {
		a.Data = append(a.Data, ExternalSecretData{SecretKey: d.SecretKey, RemoteRef: remoteRefOf(d.RemoteRef)})
	}
	for _, d := range es.Spec.DataFrom {
		from := ExternalSecretDataFrom{}
		if d.Extract != nil {
			from.Extract = ptr.To(remoteRefOf(*d.Extract))
		}
		if f := d.Find; f != nil {
			from.Find = &FindRef{Path: f.Path, Tags: f.Tags, ConversionStrategy: (*ConversionStrategy)(nonEmpty(string(f.ConversionStrategy))),
				DecodingStrategy: (*DecodingStrategy)(nonEmpty(string(f.DecodingStrategy)))}
			if f.Name != nil {
				from.Find.Name = &FindName{Regexp: f.Name.RegExp}
			}
		}
		for _, r := range d.Rewrite {
			var rw Rewrite
			if r.Regexp != nil {
				rw.Regexp = &RewriteRegexp{Source: r.Regexp.Source, Target: r.Regexp.Target}
			}
			if r.Transform != nil {
				rw.Transform = &RewriteTransform{Template: r.Transform.Template}
			}
			from.Rewrite = append(from.Rewrite, rw)
		}
		a.DataFrom = append(a.DataFrom, from)
	}
	return a
}

func remoteRefOf(r esv1.ExternalSecretDataRemoteRef) RemoteRef {
	return RemoteRef{Key: r.Key, Property: nonEmpty(r.Property), Version: nonEmpty(r.Version),
		DecodingStrategy:   (*DecodingStrategy)(nonEmpty(string(r.DecodingStrategy))),
		ConversionStrategy: (*ConversionStrategy)(nonEmpty(string(r.ConversionStrategy)))}
}

// nonEmpty is s as an optional input: nil when empty.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// userLabels drops the label esosync adds itself.
func userLabels(labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	delete(out, kube.ManagedByLabel)
	if len(out) == 0 {
		return nil
	}
	return out
}

// userAnnotations drops the annotations ESO and esosync add themselves.
func userAnnotations(annotations map[string]string) map[string]string {
	out := maps.Clone(annotations)
	delete(out, reconcile.AnnotationForceSync)
	delete(out, "kubectl.kubernetes.io/last-applied-configuration")
	if len(out) == 0 {
		return nil
	}
	return out
}
