package provider

import (
	"github.com/pulumi/pulumi-go-provider/infer"
)

// AWSService is the AWS secrets service a store reads.
type AWSService string

// AWS services; only Secrets Manager is implemented.
const (
	AWSSecretsManager AWSService = "SecretsManager"
)

// Values lists the enum for the schema.
func (AWSService) Values() []infer.EnumValue[AWSService] {
	return []infer.EnumValue[AWSService]{
		{Name: "SecretsManager", Value: AWSSecretsManager, Description: "AWS Secrets Manager."},
	}
}

// AWSBackend is ESO's AWS provider.
type AWSBackend struct {
	Service    *AWSService `pulumi:"service,optional"`
	Region     string      `pulumi:"region"`
	Prefix     *string     `pulumi:"prefix,optional"`
	Role       *string     `pulumi:"role,optional"`
	ExternalID *string     `pulumi:"externalId,optional"`
	Auth       *AWSAuth    `pulumi:"auth,optional"`
}

// Annotate documents AWSBackend.
func (b *AWSBackend) Annotate(a infer.Annotator) {
	a.Describe(b, "AWS Secrets Manager (ESO's `aws` provider).")
	a.Describe(&b.Service, "The AWS service: `SecretsManager` (the default).")
	a.Describe(&b.Region, "AWS region, e.g. `eu-west-1`.")
	a.Describe(&b.Prefix, "Prefix added to every remote key, e.g. `prod/` makes key `db` read secret `prod/db`.")
	a.Describe(&b.Role, "IAM role ARN to assume (STS AssumeRole) with the base credentials.")
	a.Describe(&b.ExternalID, "External ID passed when assuming `role`.")
	a.Describe(&b.Auth, "How to authenticate. Leave unset for the default credential chain (ESO: the controller pod's; "+
		"`sync: provider`: the environment where Pulumi runs).")
}

// AWSAuth holds exactly one AWS auth method.
type AWSAuth struct {
	SecretRef *AWSStaticCredentials `pulumi:"secretRef,optional"`
	JWT       *AWSJWTAuth           `pulumi:"jwt,optional"`
}

// Annotate documents AWSAuth.
func (x *AWSAuth) Annotate(a infer.Annotator) {
	a.Describe(x, "AWS auth method. Set exactly one.")
	a.Describe(&x.SecretRef, "Static access keys.")
	a.Describe(&x.JWT, "A Kubernetes service account token exchanged through STS AssumeRoleWithWebIdentity "+
		"(IRSA: the role comes from the service account's `eks.amazonaws.com/role-arn` annotation).")
}

// AWSStaticCredentials are access keys, each from a credential source.
type AWSStaticCredentials struct {
	AccessKeyID     CredentialSource  `pulumi:"accessKeyId"`
	SecretAccessKey CredentialSource  `pulumi:"secretAccessKey"`
	SessionToken    *CredentialSource `pulumi:"sessionToken,optional"`
}

// Annotate documents AWSStaticCredentials.
func (c *AWSStaticCredentials) Annotate(a infer.Annotator) {
	a.Describe(c, "AWS access keys, each from a credential source.")
	a.Describe(&c.AccessKeyID, "The access key id.")
	a.Describe(&c.SecretAccessKey, "The secret access key.")
	a.Describe(&c.SessionToken, "A session token, for temporary credentials (for example from an ESC `fn::open::aws-login`).")
}

// AWSJWTAuth is service-account token auth.
type AWSJWTAuth struct {
	ServiceAccountRef ServiceAccountRef `pulumi:"serviceAccountRef"`
}

// Annotate documents AWSJWTAuth.
func (j *AWSJWTAuth) Annotate(a infer.Annotator) {
	a.Describe(j, "AWS auth with a Kubernetes service account token (IRSA).")
	a.Describe(&j.ServiceAccountRef, "The service account whose token is exchanged.")
}

// ESCBackend is ESO's `pulumi` provider: values of a Pulumi ESC environment.
type ESCBackend struct {
	Organization string  `pulumi:"organization"`
	Project      string  `pulumi:"project"`
	Environment  string  `pulumi:"environment"`
	APIURL       *string `pulumi:"apiUrl,optional"`
	Auth         ESCAuth `pulumi:"auth"`
}

// Annotate documents ESCBackend.
func (b *ESCBackend) Annotate(a infer.Annotator) {
	a.Describe(b, "A Pulumi ESC environment (ESO's `pulumi` provider). Remote keys are paths in the environment's "+
		"properties in ESC syntax, e.g. `app.db[\"pass word\"]` or `list[0]`.")
	a.Describe(&b.Organization, "Pulumi organization.")
	a.Describe(&b.Project, "ESC project.")
	a.Describe(&b.Environment, "ESC environment name.")
	a.Describe(&b.APIURL, "Base URL of the ESC API; default `https://api.pulumi.com/api/esc`.")
	a.Describe(&b.Auth, "How to authenticate to Pulumi Cloud.")
}

// ESCAuth holds the Pulumi access token.
type ESCAuth struct {
	AccessToken CredentialSource `pulumi:"accessToken"`
}

// Annotate documents ESCAuth.
func (x *ESCAuth) Annotate(a infer.Annotator) {
	a.Describe(x, "How the store authenticates to Pulumi Cloud.")
	a.Describe(&x.AccessToken, "A Pulumi access token allowed to open the environment.")
}
