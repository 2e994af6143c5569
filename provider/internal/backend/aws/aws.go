// Package aws is the AWS Secrets Manager backend. It reads secrets with the
// semantics of External Secrets Operator v0.20.4's Secrets Manager provider
// (pkg/provider/aws/secretsmanager): the store prefix, AWSCURRENT by default,
// `version` as a stage or, prefixed "uuid/", a VersionId, SecretString
// before SecretBinary for the whole secret, gjson properties with a literal
// dotted key first, GetSecretMap's string-or-raw-JSON values, and
// dataFrom.find by name regexp, path and tags. Credentials follow ESO's
// pkg/provider/aws/auth: a service-account JWT (AssumeRoleWithWebIdentity),
// static keys, or the SDK's default chain, then optionally an assumed role.
//
// Unlike ESO, which asks GetSecretValue once per key and ExternalSecret,
// reads go through a per-process, per-identity batcher and cache (see
// cache.go): N concurrent reads of M distinct secrets cost ceil(M/20)
// BatchGetSecretValue calls, which is what keeps a large deploy inside
// Secrets Manager's request quotas.
package aws

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// webIdentitySessionName is the role session name ESO's DefaultJWTProvider
// uses, so CloudTrail shows the same session whoever reads.
const webIdentitySessionName = "external-secrets-provider-aws"

// Config is one AWS Secrets Manager store, with every credential already
// resolved by the caller (backends never read Kubernetes Secrets).
type Config struct {
	// Region is the store's region; empty falls back to the SDK's default
	// chain (AWS_REGION, shared config) and is an error if that has none.
	Region string
	// Endpoint is a custom Secrets Manager endpoint (tests: moto); "" = AWS.
	Endpoint string
	// STSEndpoint is a custom STS endpoint; "" = Endpoint if set, else AWS.
	STSEndpoint string
	// Prefix is ESO's spec.provider.aws.prefix: prepended to every remote key
	// that GetSecret and GetSecretMap read (not to find's path or names).
	Prefix string
	// Role is an IAM role ARN to assume (STS AssumeRole) with the base
	// credentials, as ESO's spec.provider.aws.role.
	Role string
	// ExternalID is passed to AssumeRole when Role is set (and ignored
	// otherwise, as ESO does).
	ExternalID string
	// Static holds access keys (ESO's auth.secretRef). When both Static and
	// WebIdentity are nil the SDK's default chain is used; when both are
	// set WebIdentity wins, as ESO checks jwt before secretRef.
	Static *StaticCredentials
	// WebIdentity is service-account JWT auth: AssumeRoleWithWebIdentity.
	WebIdentity *WebIdentity
	// DemandID names the store in Session.NoteDemand. When set, a pending
	// batch waits until the deploy's ExternalSecrets have been checked and
	// then also reads every key they announced for this store, so one
	// BatchGetSecretValue per 20 keys serves the whole deploy.
	DemandID string
	// Session, when set, shares the batcher and cache with every other
	// client of the same identity in that session (one pulumi operation),
	// holds the announced demand and counts requests. Nil, the client
	// batches and caches for itself.
	Session *backend.Session
	// Timing tunes the batcher; the zero value means the defaults.
	Timing Timing
}

// StaticCredentials are an access key pair, optionally with the session
// token of temporary credentials (for example from an ESC aws-login).
type StaticCredentials struct {
	// AccessKeyID is the key id, e.g. AKIA… or ASIA….
	AccessKeyID string
	// SecretAccessKey signs the requests; it never appears in errors.
	SecretAccessKey string
	// SessionToken is set for temporary credentials only.
	SessionToken string
}

// WebIdentity is what ESO's auth.jwt resolves to. The caller reads the
// service account and requests its token, because backends do not talk
// to Kubernetes.
type WebIdentity struct {
	// RoleARN is the role from the service account's
	// eks.amazonaws.com/role-arn annotation.
	RoleARN string
	// Token is a service-account token for that account (audience
	// sts.amazonaws.com unless the store names others).
	Token string
}

// client reads one store. It is safe for concurrent use.
type client struct {
	sm     *secretsmanager.Client
	sts    *sts.Client
	prefix string
	// state is the batcher and cache shared by every client of the same
	// identity in the session.
	state *storeState
	// session counts requests.
	session *backend.Session
	// hints returns the secret ids the deploy announced for this store.
	hints func() []string
}

var _ backend.Client = (*client)(nil)

// New builds the SDK clients for cfg. Like ESO it does not contact AWS
// (except that a default chain may look up credentials lazily); Validate
// checks that the credentials work.
func New(ctx context.Context, cfg Config) (backend.Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	stsEndpoint := cfg.STSEndpoint
	if stsEndpoint == "" {
		stsEndpoint = cfg.Endpoint
	}
	stsOpts := func(o *sts.Options) {
		if stsEndpoint != "" {
			o.BaseEndpoint = aws.String(stsEndpoint)
		}
	}

	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	switch {
	case cfg.WebIdentity != nil:
		// ESO's DefaultJWTProvider: an STS client without shared config
		// files exchanges the token for the role's credentials.
		base, err := config.LoadDefaultConfig(ctx, append(opts,
			config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}))...)
		if err != nil {
			return nil, fmt.Errorf("aws: loading the SDK configuration: %w", err)
		}
		stsClient := sts.NewFromConfig(base, stsOpts)
		provider := stscreds.NewWebIdentityRoleProvider(countingSTS{stsClient, cfg.Session}, cfg.WebIdentity.RoleARN,
			staticToken(cfg.WebIdentity.Token), func(o *stscreds.WebIdentityRoleOptions) {
				o.RoleSessionName = webIdentitySessionName
			})
		opts = append(opts, config.WithCredentialsProvider(aws.NewCredentialsCache(provider)))
	case cfg.Static != nil:
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			cfg.Static.AccessKeyID, cfg.Static.SecretAccessKey, cfg.Static.SessionToken)))
	}
	// The app id goes into the User-Agent, so CloudTrail tells esosync's
	// calls from ESO's.
	opts = append(opts, config.WithAppID(backend.AppID))
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws: loading the SDK configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("aws: region is required (the store sets none and the SDK's default chain has none)")
	}
	if cfg.Role != "" {
		// One credentials cache for both service clients, so the role is
		// assumed once per client rather than once per SDK client.
		base := sts.NewFromConfig(awsCfg, stsOpts)
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(countingSTS{base, cfg.Session}, cfg.Role,
			func(o *stscreds.AssumeRoleOptions) {
				if cfg.ExternalID != "" {
					o.ExternalID = aws.String(cfg.ExternalID)
				}
			}))
	}
	return &client{
		sm: secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
			if cfg.Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Endpoint)
			}
		}),
		sts:    sts.NewFromConfig(awsCfg, stsOpts),
		prefix: cfg.Prefix,
		state: backend.Slot(cfg.Session, "aws.scopes", newScopes).
			stateFor(scopeOf(cfg, awsCfg.Region), cfg.Session, cfg.Timing.withDefaults()),
		session: cfg.Session,
		hints:   hintsOf(cfg),
	}, nil
}

// check rejects configurations that would silently fall back to ambient
// credentials: a web identity without a token or role, static keys
// without a key.
func (cfg Config) check() error {
	if w := cfg.WebIdentity; w != nil {
		if w.RoleARN == "" {
			return errors.New("aws: invalid jwt auth: no IAM role (the service account needs the eks.amazonaws.com/role-arn annotation)")
		}
		if w.Token == "" {
			return errors.New("aws: invalid jwt auth: no service account token")
		}
	} else if s := cfg.Static; s != nil {
		if s.AccessKeyID == "" {
			return errors.New("aws: invalid secretRef auth: accessKeyID is empty")
		}
		if s.SecretAccessKey == "" {
			return errors.New("aws: invalid secretRef auth: secretAccessKey is empty")
		}
	}
	return nil
}

// Validate asks STS who the credentials belong to. ESO's Validate only
// retrieves the credentials, which for static keys proves nothing; STS
// verifies the signature and the key, and its error code
// (InvalidClientTokenId, SignatureDoesNotMatch, ExpiredToken, …) is in the
// error. With Role set, the role is assumed first, so a trust-policy
// mistake shows here too.
func (c *client) Validate(ctx context.Context) error {
	c.session.CountCall("aws.GetCallerIdentity")
	if _, err := c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		return fmt.Errorf("aws: invalid credentials: sts:GetCallerIdentity: %w", sanitize(err))
	}
	return nil
}

// Close releases nothing: AWS credentials are not sessions to revoke, and
// the cache outlives the client on purpose (one pulumi operation).
func (c *client) Close(context.Context) error { return nil }

// countingSTS counts the STS calls the SDK's credential providers make.
type countingSTS struct {
	c       *sts.Client
	session *backend.Session
}

func (s countingSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, opts ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	s.session.CountCall("aws.AssumeRole")
	return s.c.AssumeRole(ctx, in, opts...)
}

func (s countingSTS) AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, opts ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	s.session.CountCall("aws.AssumeRoleWithWebIdentity")
	return s.c.AssumeRoleWithWebIdentity(ctx, in, opts...)
}

// staticToken hands the caller's JWT to the web identity provider.
type staticToken string

func (t staticToken) GetIdentityToken() ([]byte, error) { return []byte(t), nil }

// hintsOf maps the remote keys announced for cfg's store to secret ids.
func hintsOf(cfg Config) func() []string {
	if cfg.DemandID == "" {
		return nil
	}
	return func() []string {
		keys := cfg.Session.Demanded(cfg.DemandID)
		for i, k := range keys {
			keys[i] = cfg.Prefix + k
		}
		return keys
	}
}

// scopeOf names who reads where: endpoints, region, role and the
// credentials' identity. Credentials enter only through the hash.
func scopeOf(cfg Config, region string) string {
	h := sha256.New()
	w := func(parts ...string) {
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
	}
	w(cfg.Endpoint, cfg.STSEndpoint, region, cfg.Role, cfg.ExternalID)
	switch {
	case cfg.WebIdentity != nil:
		// Every client gets a freshly requested token, so the token itself
		// cannot be the identity: the role and the token's subject are.
		w("jwt", cfg.WebIdentity.RoleARN, jwtSubject(cfg.WebIdentity.Token))
	case cfg.Static != nil:
		w("static", cfg.Static.AccessKeyID, cfg.Static.SecretAccessKey, cfg.Static.SessionToken)
	default:
		// The default chain reads the provider process's environment, which
		// does not change during the process.
		w("default")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// jwtSubject returns the unverified iss and sub claims of a JWT, or the
// whole token when it cannot be parsed (then nothing is shared, which is safe).
func jwtSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return token
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return token
	}
	var claims struct {
		Sub string `json:"sub"`
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Sub == "" {
		return token
	}
	return claims.Iss + "\x00" + claims.Sub
}

// ESO's awsutil.SanitizeErr patterns: request ids and the Credential=
// part of a signature error are cut from error texts.
var sanitizePatterns = []*regexp.Regexp{
	regexp.MustCompile(`request id: (\S+)`),
	regexp.MustCompile(` Credential=.+`),
}

// sanitized is an error whose text went through ESO's SanitizeErr but which
// still unwraps to the SDK's error, so callers can read the AWS error code.
type sanitized struct {
	msg string
	err error
}

func (s *sanitized) Error() string { return s.msg }
func (s *sanitized) Unwrap() error { return s.err }

func sanitize(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, re := range sanitizePatterns {
		msg = re.ReplaceAllString(msg, "")
	}
	return &sanitized{msg: msg, err: err}
}
