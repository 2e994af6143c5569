package provider

import (
	"fmt"
	"regexp"
	"strings"
	texttemplate "text/template"
	"time"

	estemplate "github.com/external-secrets/external-secrets/pkg/template/v2"
	"k8s.io/utils/ptr"
)

// checkExternalSecret validates every input, with the field path in each
// failure, without touching the cluster.
func checkExternalSecret(pr *problems, args ExternalSecretArgs, resourceName string) {
	pr.objectName(args.Name, resourceName)
	pr.namespace("namespace", args.Namespace)
	pr.storeRef(args.Store)
	pr.refreshInterval(args.RefreshInterval)
	enum(pr, "sync", args.Sync)
	pr.duration("timeout", args.Timeout)
	checkExternalSecretSpec(pr, args)
	checkRolloutTargets(pr, args.RolloutRestartTargets)
}

// checkRolloutTargets checks each target's kind and names, and that no
// workload is named twice.
func checkRolloutTargets(pr *problems, targets []RolloutRestartTarget) {
	seen := map[string]int{}
	for i, t := range targets {
		at := fmt.Sprintf("rolloutRestartTargets[%d]", i)
		enum(pr, at+".kind", &t.Kind)
		pr.dnsName(at+".name", t.Name, true)
		pr.namespace(at+".namespace", t.Namespace)
		key := string(t.Kind) + "/" + ptr.Deref(t.Namespace, "") + "/" + t.Name
		if j, dup := seen[key]; dup {
			pr.add(at, "names the same workload as rolloutRestartTargets[%d]", j)
		}
		seen[key] = i
	}
}

// refreshInterval checks a non-negative Go duration.
func (pr *problems) refreshInterval(ri *string) {
	if ri == nil {
		return
	}
	if d, err := time.ParseDuration(*ri); err != nil {
		pr.add("refreshInterval", "%q is not a duration such as \"1h\" or \"15m\"", *ri)
	} else if d < 0 {
		pr.add("refreshInterval", "%q must not be negative", *ri)
	}
}

// storeRef checks a store reference's kind and name.
func (pr *problems) storeRef(ref StoreRef) {
	if k := ref.Kind; k != SecretStoreKind && k != ClusterSecretStoreKind {
		pr.add("store.kind", "%q is not one of %s, %s", k, SecretStoreKind, ClusterSecretStoreKind)
	}
	pr.dnsName("store.name", ref.Name, true)
}

// checkExternalSecretSpec checks what an ExternalSecret writes and reads:
// target, data and dataFrom.
func checkExternalSecretSpec(pr *problems, args ExternalSecretArgs) {
	if t := args.Target; t != nil {
		checkTarget(pr, t)
	}
	if len(args.Data) == 0 && len(args.DataFrom) == 0 {
		pr.add("data", "set at least one data or dataFrom entry")
	}
	for i, d := range args.Data {
		at := fmt.Sprintf("data[%d]", i)
		pr.secretKey(at+".secretKey", d.SecretKey)
		checkRemoteRef(pr, at+".remoteRef", &d.RemoteRef)
	}
	for i, d := range args.DataFrom {
		at := fmt.Sprintf("dataFrom[%d]", i)
		if pr.exactlyOne(at, option{"extract", d.Extract != nil}, option{"find", d.Find != nil}) {
			if d.Extract != nil {
				checkRemoteRef(pr, at+".extract", d.Extract)
			} else {
				checkFind(pr, at+".find", d.Find)
			}
		}
		checkRewrites(pr, at, d.Rewrite)
	}
}

func checkTarget(pr *problems, t *ExternalSecretTarget) {
	pr.dnsName("target.name", ptr.Deref(t.Name, ""), false)
	enum(pr, "target.creationPolicy", t.CreationPolicy)
	enum(pr, "target.deletionPolicy", t.DeletionPolicy)
	if t.Template != nil {
		if t.Type != nil || len(t.Labels) > 0 || len(t.Annotations) > 0 {
			pr.add("target.template", "set either template or the type/labels/annotations shorthands, not both")
		}
		checkTemplate(pr, "target.template", t.Template)
	}
	if ptr.Deref(t.DeletionPolicy, "Retain") == "Delete" && ptr.Deref(t.CreationPolicy, "Owner") != "Owner" {
		pr.add("target.deletionPolicy", "Delete needs creationPolicy Owner (esosync only deletes Secrets it owns)")
	}
}

func checkRemoteRef(pr *problems, at string, r *RemoteRef) {
	if strings.TrimSpace(r.Key) == "" {
		pr.add(at+".key", "must not be empty")
	}
	enum(pr, at+".decodingStrategy", r.DecodingStrategy)
	enum(pr, at+".conversionStrategy", r.ConversionStrategy)
	if r.Version != nil && *r.Version == "" {
		pr.add(at+".version", "must not be empty when set")
	}
}

func checkTemplate(pr *problems, at string, t *TargetTemplate) {
	enum(pr, at+".mergePolicy", t.MergePolicy)
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
		if !pr.exactlyOne(path, option{"regexp", r.Regexp != nil}, option{"transform", r.Transform != nil}) {
			continue
		}
		if r.Regexp != nil {
			if _, err := regexp.Compile(r.Regexp.Source); err != nil {
				pr.add(path+".regexp.source", "not a valid regular expression: %v", err)
			}
		} else if _, err := texttemplate.New("t").Funcs(estemplate.FuncMap()).Parse(r.Transform.Template); err != nil {
			pr.add(path+".transform.template", "not a valid template: %v", err)
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
	enum(pr, at+".conversionStrategy", f.ConversionStrategy)
	enum(pr, at+".decodingStrategy", f.DecodingStrategy)
}
