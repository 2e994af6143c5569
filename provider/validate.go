package provider

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"k8s.io/apimachinery/pkg/util/validation"
)

// problems collects input validation failures, each with the field path,
// and drops those whose value is not known yet (a preview before the inputs
// it depends on exist).
type problems struct {
	unknown  []string
	failures []p.CheckFailure
}

func newProblems(inputs property.Map) *problems {
	pr := &problems{}
	for k, v := range inputs.All {
		walkUnknown(k, v, &pr.unknown)
	}
	return pr
}

func walkUnknown(path string, v property.Value, out *[]string) {
	switch {
	case v.IsComputed():
		*out = append(*out, path)
	case v.IsMap():
		for k, e := range v.AsMap().All {
			walkUnknown(path+"."+k, e, out)
		}
	case v.IsArray():
		for i, e := range v.AsArray().All {
			walkUnknown(fmt.Sprintf("%s[%d]", path, i), e, out)
		}
	}
}

// add records a failure at path unless the value there is unknown.
func (pr *problems) add(path, format string, args ...any) {
	for _, u := range pr.unknown {
		if strings.HasPrefix(path, u) || strings.HasPrefix(u, path) {
			return
		}
	}
	pr.failures = append(pr.failures, p.CheckFailure{Property: path, Reason: path + ": " + fmt.Sprintf(format, args...)})
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

func (pr *problems) credential(path string, c *CredentialSource, clusterScoped bool) {
	if c == nil {
		pr.add(path, "is required: set secretRef, value or esc")
		return
	}
	set := 0
	for _, on := range []bool{c.SecretRef != nil, c.Value != nil, c.Esc != nil} {
		if on {
			set++
		}
	}
	switch {
	case set > 1:
		pr.add(path, "set only one of secretRef, value or esc")
	case set == 0:
		pr.add(path, "set one of secretRef, value or esc")
	case c.Esc != nil:
		if _, _, _, err := splitEnvironment(c.Esc.Environment, "x"); err != nil {
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

func (pr *problems) duration(path string, value *string) {
	if value == nil {
		return
	}
	if d, err := time.ParseDuration(*value); err != nil || d <= 0 {
		pr.add(path, "%q is not a positive duration such as \"5m\"", *value)
	}
}

func oneOf[T comparable](pr *problems, path string, value *T, allowed ...T) {
	if value == nil {
		return
	}
	for _, a := range allowed {
		if *value == a {
			return
		}
	}
	pr.add(path, "%v is not one of %v", *value, allowed)
}
