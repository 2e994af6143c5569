package provider

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/esosync/pulumi-esosync/provider/internal/escsource"
)

// problems collects input validation failures, each with the field path,
// and drops those whose value is not known yet (a preview before the inputs
// it depends on exist). Every resource's Check uses it.
type problems struct {
	inputs   property.Map
	unknown  [][]string // paths of unknown values, as segments
	failures []p.CheckFailure
	// prefix is put before every path (a part of the inputs checked on
	// its own, such as one item of a set); its failures go to root.
	prefix string
	root   *problems
}

// under checks the inputs below prefix (e.g. `items["app"].`) with the
// same checks as top-level ones, reporting full paths.
func (pr *problems) under(prefix string) *problems {
	return &problems{inputs: pr.inputs, unknown: pr.unknown, prefix: pr.prefix + prefix, root: pr.top()}
}

// top is where failures are collected.
func (pr *problems) top() *problems {
	if pr.root != nil {
		return pr.root
	}
	return pr
}

// failed reports whether any check has failed so far.
func (pr *problems) failed() bool { return len(pr.top().failures) > 0 }

func newProblems(inputs property.Map) *problems {
	pr := &problems{inputs: inputs}
	for k, v := range inputs.All {
		walkUnknown([]string{k}, v, &pr.unknown)
	}
	return pr
}

func walkUnknown(path []string, v property.Value, out *[][]string) {
	switch {
	case v.IsComputed():
		*out = append(*out, slices.Clone(path))
	case v.IsMap():
		for k, e := range v.AsMap().All {
			walkUnknown(append(path, k), e, out)
		}
	case v.IsArray():
		for i, e := range v.AsArray().All {
			walkUnknown(append(path, fmt.Sprintf("[%d]", i)), e, out)
		}
	}
}

// segments splits a field path such as `data[0].remoteRef.key` into
// `data`, `[0]`, `remoteRef`, `key`; `a.b["x.y"]` keeps `["x.y"]` whole.
func segments(path string) []string {
	var out []string
	for len(path) > 0 {
		i := strings.IndexAny(path, ".[")
		switch {
		case i < 0:
			return append(out, path)
		case path[i] == '.':
			out = append(out, path[:i])
			path = path[i+1:]
		default:
			if i > 0 {
				out = append(out, path[:i])
			}
			j := strings.IndexByte(path[i:], ']')
			if j < 0 {
				return append(out, path[i:])
			}
			seg := path[i : i+j+1]
			if strings.HasPrefix(seg, `["`) {
				seg = strings.TrimSuffix(strings.TrimPrefix(seg, `["`), `"]`) // a map key
			}
			out = append(out, seg)
			path = strings.TrimPrefix(path[i+j+1:], ".")
		}
	}
	return out
}

// affected reports whether a failure at path may be caused by an unknown
// value: the unknown is the path itself, one of its parents, or below it.
// Matching whole segments keeps an unknown `namespace` from hiding a
// failure at `name`.
func (pr *problems) affected(path string) bool {
	segs := segments(pr.prefix + path)
	for _, u := range pr.unknown {
		n := min(len(u), len(segs))
		if slices.Equal(u[:n], segs[:n]) {
			return true
		}
	}
	return false
}

// known reports whether nothing at or around path is unknown.
func (pr *problems) known(path string) bool { return !pr.affected(path) }

// set reports whether the program gave the top-level input a value, as
// opposed to leaving it to its default.
func (pr *problems) set(field string) bool {
	v, ok := pr.inputs.GetOk(field)
	return ok && !v.IsNull()
}

// add records a failure at path unless a value there is unknown.
func (pr *problems) add(path, format string, args ...any) {
	if pr.affected(path) {
		return
	}
	path = pr.prefix + path
	top := pr.top()
	top.failures = append(top.failures, p.CheckFailure{Property: path, Reason: path + ": " + fmt.Sprintf(format, args...)})
}

// option is one of several mutually exclusive inputs.
type option struct {
	name string
	set  bool
}

// exactlyOne fails at path unless exactly one of options is set, naming
// them in the order given. It reports whether exactly one is.
func (pr *problems) exactlyOne(path string, options ...option) bool {
	names := make([]string, len(options))
	set := 0
	for i, o := range options {
		names[i] = o.name
		if o.set {
			set++
		}
	}
	list := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	switch set {
	case 1:
		return true
	case 0:
		pr.add(path, "set one of %s: exactly one of %s is needed", list, list)
	default:
		pr.add(path, "set only one of %s: exactly one of %s is needed (%d set)", list, list, set)
	}
	return false
}

// schemaEnum is a schema enum type: a string with its Values.
type schemaEnum[T any] interface {
	~string
	Values() []infer.EnumValue[T]
}

// enum fails at path unless value is one of the enum's values.
func enum[T schemaEnum[T]](pr *problems, path string, value *T) {
	if value == nil {
		return
	}
	var allowed []string
	for _, v := range (*new(T)).Values() {
		if v.Value == *value {
			return
		}
		allowed = append(allowed, string(v.Value))
	}
	pr.add(path, "%q is not one of %s", *value, strings.Join(allowed, ", "))
}

func (pr *problems) dnsName(path, value string, required bool) {
	if value == "" {
		if required {
			pr.add(path, "must not be empty")
		}
		return
	}
	if errs := validation.IsDNS1123Subdomain(value); len(errs) > 0 {
		pr.add(path, "%q is not a valid Kubernetes name: %s", value, strings.Join(errs, "; "))
	}
}

// objectName checks the Kubernetes name a resource will get: name when
// set, else the Pulumi resource name, which Pulumi allows to be anything
// (`appConfig`) while Kubernetes does not.
func (pr *problems) objectName(name *string, resourceName string) {
	if name != nil {
		pr.dnsName("name", *name, false)
		return
	}
	if errs := validation.IsDNS1123Subdomain(resourceName); len(errs) > 0 {
		pr.add("name", "is unset, so the resource name %q would be the Kubernetes name, and it is not valid (%s): "+
			"set name, e.g. %q", resourceName, strings.Join(errs, "; "), suggestName(resourceName))
	}
}

// suggestName turns a resource name such as appConfig into app-config.
func suggestName(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= 'A' && r <= 'Z':
			if i > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r - 'A' + 'a')
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-.")
}

func (pr *problems) namespace(path string, value *string) {
	if value == nil {
		return
	}
	if errs := validation.IsDNS1123Label(*value); len(errs) > 0 {
		pr.add(path, "%q is not a valid namespace name: %s", *value, strings.Join(errs, "; "))
	}
}

func (pr *problems) secretKey(path, value string) {
	if value == "" {
		pr.add(path, "must not be empty")
		return
	}
	if errs := validation.IsConfigMapKey(value); len(errs) > 0 {
		pr.add(path, "%q is not a valid Secret key: %s", value, strings.Join(errs, "; "))
	}
}

func (pr *problems) httpURL(path, value string) {
	if value == "" {
		pr.add(path, "must not be empty")
		return
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		pr.add(path, "%q is not an http(s) URL such as https://vault.example:8200", value)
	}
}

func (pr *problems) pemBundle(path string, value *string) {
	if value == nil || *value == "" {
		return
	}
	block, _ := pem.Decode([]byte(*value))
	if block == nil {
		pr.add(path, "is not PEM-encoded")
		return
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		pr.add(path, "does not hold a valid certificate: %v", err)
	}
}

func (pr *problems) credential(path string, c *CredentialSource) {
	if c == nil {
		pr.add(path, "is required: set secretRef, value or esc")
		return
	}
	if !pr.exactlyOne(path, option{"secretRef", c.SecretRef != nil}, option{"value", c.Value != nil}, option{"esc", c.Esc != nil}) {
		return
	}
	switch {
	case c.Esc != nil:
		if _, _, _, err := escsource.SplitEnvironment(c.Esc.Environment, "x"); err != nil {
			pr.add(path+".esc.environment", "%v", err)
		}
		if strings.TrimSpace(c.Esc.Path) == "" {
			pr.add(path+".esc.path", "must not be empty: the path of the value in the environment, e.g. \"vault.token\"")
		}
	case c.SecretRef != nil:
		pr.dnsName(path+".secretRef.name", c.SecretRef.Name, true)
		pr.secretKey(path+".secretRef.key", c.SecretRef.Key)
		pr.namespace(path+".secretRef.namespace", c.SecretRef.Namespace)
	case *c.Value == "":
		pr.add(path+".value", "must not be empty")
	}
}

// duration checks a positive Go duration such as "5m".
func (pr *problems) duration(path string, value *string) {
	if value == nil {
		return
	}
	if d, err := time.ParseDuration(*value); err != nil || d <= 0 {
		pr.add(path, "%q is not a positive duration such as \"5m\"", *value)
	}
}
