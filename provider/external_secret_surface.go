package provider

import (
	"fmt"
	"regexp"
	texttemplate "text/template"

	esv1 "github.com/external-secrets/external-secrets/apis/externalsecrets/v1"
	estemplate "github.com/external-secrets/external-secrets/pkg/template/v2"
	"github.com/pulumi/pulumi-go-provider/infer"
	corev1 "k8s.io/api/core/v1"
)

// ConversionStrategy is ESO's conversionStrategy for keys of extracted or
// found secrets.
type ConversionStrategy string

// Values lists the conversion strategies for the schema.
func (ConversionStrategy) Values() []infer.EnumValue[ConversionStrategy] {
	return []infer.EnumValue[ConversionStrategy]{
		{Name: "Default", Value: "Default", Description: "Keep keys as they are (invalid Secret keys fail)."},
		{Name: "Unicode", Value: "Unicode", Description: "Replace characters not allowed in Secret keys with `_U<codepoint>_`."},
	}
}

// FindRef is ESO's dataFrom.find.
type FindRef struct {
	Path               *string             `pulumi:"path,optional"`
	Name               *FindName           `pulumi:"name,optional"`
	Tags               map[string]string   `pulumi:"tags,optional"`
	ConversionStrategy *ConversionStrategy `pulumi:"conversionStrategy,optional"`
	DecodingStrategy   *DecodingStrategy   `pulumi:"decodingStrategy,optional"`
}

// Annotate documents FindRef.
func (f *FindRef) Annotate(a infer.Annotator) {
	a.Describe(f, "Find remote secrets by path, name and tags; each found secret becomes one key (its name), valued with the whole secret.")
	a.Describe(&f.Path, "Only secrets below this path.")
	a.Describe(&f.Name, "Only secrets whose name matches.")
	a.Describe(&f.Tags, "Only secrets with all these tags (Vault: custom metadata).")
	a.Describe(&f.ConversionStrategy, "`Default` or `Unicode`: how to turn names into valid Secret keys.")
	a.Describe(&f.DecodingStrategy, "`None` (default), `Base64`, `Base64URL` or `Auto`.")
}

// FindName matches secret names.
type FindName struct {
	Regexp string `pulumi:"regexp"`
}

// Annotate documents FindName.
func (f *FindName) Annotate(a infer.Annotator) {
	a.Describe(f, "Selects remote secrets by name.")
	a.Describe(&f.Regexp, "Regular expression (Go syntax) the secret name must match, e.g. `^db-`.")
}

// Rewrite is one of ESO's dataFrom.rewrite operations.
type Rewrite struct {
	Regexp    *RewriteRegexp    `pulumi:"regexp,optional"`
	Transform *RewriteTransform `pulumi:"transform,optional"`
}

// Annotate documents Rewrite.
func (r *Rewrite) Annotate(a infer.Annotator) {
	a.Describe(r, "Rewrites the keys of an extract or find result, in order. Set exactly one of `regexp` or `transform`.")
	a.Describe(&r.Regexp, "Replace the regular expression `source` with `target` in every key.")
	a.Describe(&r.Transform, "Render every key through a Go template (`{{ .value }}` is the key).")
}

// RewriteRegexp is a regexp rewrite.
type RewriteRegexp struct {
	Source string `pulumi:"source"`
	Target string `pulumi:"target"`
}

// Annotate documents RewriteRegexp.
func (r *RewriteRegexp) Annotate(a infer.Annotator) {
	a.Describe(r, "Renames keys by regular expression, e.g. `{ source: \"^db-\", target: \"\" }`.")
	a.Describe(&r.Source, "Regular expression to match, e.g. `^db-(.*)`.")
	a.Describe(&r.Target, "Replacement, e.g. `$1`.")
}

// RewriteTransform is a template rewrite.
type RewriteTransform struct {
	Template string `pulumi:"template"`
}

// Annotate documents RewriteTransform.
func (r *RewriteTransform) Annotate(a infer.Annotator) {
	a.Describe(r, "Renames keys with a Go template, e.g. `{{ .value | upper }}`.")
	a.Describe(&r.Template, "Go template applied to each key, e.g. `{{ .value | upper }}`.")
}

// TargetTemplate is ESO's target.template (engine v2).
type TargetTemplate struct {
	Type        *string           `pulumi:"type,optional"`
	MergePolicy *string           `pulumi:"mergePolicy,optional"`
	Labels      map[string]string `pulumi:"labels,optional"`
	Annotations map[string]string `pulumi:"annotations,optional"`
	Data        map[string]string `pulumi:"data,optional"`
}

// Annotate documents TargetTemplate.
func (t *TargetTemplate) Annotate(a infer.Annotator) {
	a.Describe(t, "ESO's template (engine v2, ESO's own function set): render the Secret's keys, labels and annotations from the fetched data, "+
		"e.g. `data: { url: \"postgres://{{ .username }}:{{ .password }}@db\" }`.")
	a.Describe(&t.Type, "Secret type.")
	a.Describe(&t.MergePolicy, "`Replace` (default: only templated keys) or `Merge` (templated keys on top of the fetched ones).")
	a.Describe(&t.Labels, "Label templates.")
	a.Describe(&t.Annotations, "Annotation templates.")
	a.Describe(&t.Data, "Key templates.")
}

func checkTemplate(pr *problems, at string, t *TargetTemplate) {
	oneOf(pr, at+".mergePolicy", t.MergePolicy, "Replace", "Merge")
	for _, group := range []struct {
		name string
		m    map[string]string
	}{{"data", t.Data}, {"labels", t.Labels}, {"annotations", t.Annotations}} {
		for k, v := range group.m {
			if _, err := texttemplate.New(k).Funcs(estemplate.FuncMap()).Parse(v); err != nil {
				pr.add(fmt.Sprintf("%s.%s[%q]", at, group.name, k), "not a valid template: %v", err)
			}
		}
	}
}

func checkRewrites(pr *problems, at string, rewrites []Rewrite) {
	for i, r := range rewrites {
		path := fmt.Sprintf("%s.rewrite[%d]", at, i)
		switch {
		case (r.Regexp == nil) == (r.Transform == nil):
			pr.add(path, "set exactly one of regexp or transform")
		case r.Regexp != nil:
			if _, err := regexp.Compile(r.Regexp.Source); err != nil {
				pr.add(path+".regexp.source", "not a valid regular expression: %v", err)
			}
		default:
			if _, err := texttemplate.New("t").Funcs(estemplate.FuncMap()).Parse(r.Transform.Template); err != nil {
				pr.add(path+".transform.template", "not a valid template: %v", err)
			}
		}
	}
}

func checkFind(pr *problems, at string, f *FindRef) {
	if f.Name != nil {
		if _, err := regexp.Compile(f.Name.Regexp); err != nil {
			pr.add(at+".name.regexp", "not a valid regular expression: %v", err)
		}
	}
	if f.Path == nil && f.Name == nil && len(f.Tags) == 0 {
		pr.add(at, "set at least one of path, name or tags")
	}
	oneOf(pr, at+".conversionStrategy", f.ConversionStrategy, "Default", "Unicode")
	oneOf(pr, at+".decodingStrategy", f.DecodingStrategy, "None", "Base64", "Base64URL", "Auto")
}

// esTemplate builds ESO's template from target.template and the target's
// type/labels/annotations shorthands (nil when neither is set).
func esTemplate(t ExternalSecretTarget) *esv1.ExternalSecretTemplate {
	if t.Template == nil && t.Type == nil && len(t.Labels) == 0 && len(t.Annotations) == 0 {
		return nil
	}
	tpl := &esv1.ExternalSecretTemplate{
		Type:          corev1.SecretType(ptrOr(t.Type, "")),
		EngineVersion: esv1.TemplateEngineV2,
		MergePolicy:   esv1.MergePolicyReplace,
		Metadata:      esv1.ExternalSecretTemplateMetadata{Labels: t.Labels, Annotations: t.Annotations},
	}
	if tt := t.Template; tt != nil {
		if tt.Type != nil {
			tpl.Type = corev1.SecretType(*tt.Type)
		}
		tpl.MergePolicy = esv1.TemplateMergePolicy(ptrOr(tt.MergePolicy, "Replace"))
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
		ConversionStrategy: esv1.ExternalSecretConversionStrategy(ptrOr(f.ConversionStrategy, "Default")),
		DecodingStrategy:   esv1.ExternalSecretDecodingStrategy(ptrOr(f.DecodingStrategy, "None")),
	}
	if f.Name != nil {
		out.Name = &esv1.FindName{RegExp: f.Name.Regexp}
	}
	return out
}
