package provider

import (
	"regexp"
	"strings"
)

// checkStore validates a store's inputs; path prefixes are the input names.
func checkStore(pr *problems, b StoreBackend) {
	if set := count(b.Vault != nil, b.AWS != nil, b.ESC != nil); set != 1 {
		pr.add("backend", "set exactly one backend: vault, aws or esc (%d set)", set)
		return
	}
	switch {
	case b.Vault != nil:
		checkVault(pr, b.Vault)
	case b.AWS != nil:
		checkAWS(pr, b.AWS)
	case b.ESC != nil:
		checkESC(pr, b.ESC)
	}
}

func count(on ...bool) int {
	n := 0
	for _, o := range on {
		if o {
			n++
		}
	}
	return n
}

func checkVault(pr *problems, v *VaultBackend) {
	pr.httpURL("backend.vault.server", v.Server)
	enum(pr, "backend.vault.version", v.Version)
	if v.Path != nil && (*v.Path == "" || (*v.Path)[0] == '/' || (*v.Path)[len(*v.Path)-1] == '/') {
		pr.add("backend.vault.path", "%q must be a mount path without leading or trailing slash, e.g. \"secret\"", *v.Path)
	}
	pr.pemBundle("backend.vault.caBundle", v.CABundle)
	a := v.Auth
	pr.exactlyOne("backend.vault.auth", option{"token", a.Token != nil}, option{"appRole", a.AppRole != nil},
		option{"kubernetes", a.Kubernetes != nil}, option{"userPass", a.UserPass != nil})
	if a.Token != nil {
		pr.credential("backend.vault.auth.token", a.Token)
	}
	if a.AppRole != nil {
		pr.credential("backend.vault.auth.appRole.roleId", &a.AppRole.RoleID)
		pr.credential("backend.vault.auth.appRole.secretId", &a.AppRole.SecretID)
	}
	if k := a.Kubernetes; k != nil {
		if k.Role == "" {
			pr.add("backend.vault.auth.kubernetes.role", "must not be empty")
		}
		if k.ServiceAccountRef != nil {
			pr.dnsName("backend.vault.auth.kubernetes.serviceAccountRef.name", k.ServiceAccountRef.Name, true)
			pr.namespace("backend.vault.auth.kubernetes.serviceAccountRef.namespace", k.ServiceAccountRef.Namespace)
		}
	}
	if u := a.UserPass; u != nil {
		if u.Username == "" {
			pr.add("backend.vault.auth.userPass.username", "must not be empty")
		}
		pr.credential("backend.vault.auth.userPass.password", &u.Password)
	}
}

// awsRegion is the shape of every AWS region name (us-east-1, ap-southeast-4, us-gov-west-1, eu-isoe-west-1).
var awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)

func checkAWS(pr *problems, b *AWSBackend) {
	enum(pr, "backend.aws.service", b.Service)
	if !awsRegion.MatchString(b.Region) {
		pr.add("backend.aws.region", "%q is not an AWS region such as \"us-east-1\"", b.Region)
	}
	if b.Role != nil && !strings.HasPrefix(*b.Role, "arn:") {
		pr.add("backend.aws.role", "%q is not an IAM role ARN such as \"arn:aws:iam::123456789012:role/reader\"", *b.Role)
	}
	if b.Auth == nil {
		return
	}
	if !pr.exactlyOne("backend.aws.auth", option{"secretRef", b.Auth.SecretRef != nil}, option{"jwt", b.Auth.JWT != nil}) {
		return // or leave auth unset for the default credential chain
	}
	if c := b.Auth.SecretRef; c != nil {
		pr.credential("backend.aws.auth.secretRef.accessKeyId", &c.AccessKeyID)
		pr.credential("backend.aws.auth.secretRef.secretAccessKey", &c.SecretAccessKey)
		if c.SessionToken != nil {
			pr.credential("backend.aws.auth.secretRef.sessionToken", c.SessionToken)
		}
	}
	if j := b.Auth.JWT; j != nil {
		pr.dnsName("backend.aws.auth.jwt.serviceAccountRef.name", j.ServiceAccountRef.Name, true)
		pr.namespace("backend.aws.auth.jwt.serviceAccountRef.namespace", j.ServiceAccountRef.Namespace)
	}
}

func checkESC(pr *problems, b *ESCBackend) {
	// The same limits the ESC API (and esc-sdk, client-side) enforces.
	if n := len(b.Organization); n < 3 || n > 40 {
		pr.add("backend.esc.organization", "%q must be 3 to 40 characters", b.Organization)
	}
	for _, f := range []struct{ path, v string }{{"backend.esc.project", b.Project}, {"backend.esc.environment", b.Environment}} {
		if n := len(f.v); n < 1 || n > 100 || strings.ContainsAny(f.v, "/ ") {
			pr.add(f.path, "%q must be 1 to 100 characters without slashes or spaces", f.v)
		}
	}
	if b.APIURL != nil {
		pr.httpURL("backend.esc.apiUrl", *b.APIURL)
	}
	pr.credential("backend.esc.auth.accessToken", &b.Auth.AccessToken)
}
