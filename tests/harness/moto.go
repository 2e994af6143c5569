package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// awsAdminPolicy is the admin user's inline policy. iam:* lets NewAWSUser
// create restricted users once IAM auth is on; moto checks that too.
const awsAdminPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["secretsmanager:*", "sts:*", "iam:*"], "Resource": "*"}
  ]
}`

// startAWS starts moto on a free loopback port, puts the error-translating
// front (startMotoFront) before it, and turns its IAM auth on.
//
// moto only authenticates requests once its INITIAL_NO_AUTH_ACTION_COUNT
// is finite, and then it needs an IAM user to check signatures against.
// So moto starts with auth off, the admin user is created through the real
// IAM API, and POST /moto-api/reset-auth with "0" switches auth on for
// every later request: from then on moto verifies each SigV4 signature
// against the user's secret key, rejects unknown key ids, and enforces the
// user's policies. moto matches Actions only and checks them against the
// resource "*", so a statement must say Resource "*" to allow anything.
func (e *Env) startAWS(ctx context.Context, bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	motoURL := "http://127.0.0.1:" + strconv.Itoa(port)
	e.AWSRegion = "us-east-1"
	moto, err := e.start("moto", filepath.Join(bin, "moto_server"),
		[]string{"-H", "127.0.0.1", "-p", strconv.Itoa(port)},
		// Auth off until the admin user exists, whatever the caller's
		// environment says; the log is written as it happens.
		"INITIAL_NO_AUTH_ACTION_COUNT=inf", "PYTHONUNBUFFERED=1",
	)
	if err != nil {
		return err
	}
	if err := waitMoto(ctx, moto, motoURL); err != nil {
		return err
	}

	front, closeFront, err := startMotoFront(e.ListenHost, motoURL)
	if err != nil {
		return err
	}
	e.closers = append(e.closers, closeFront)
	e.AWSEndpoint = front

	// Any key works while auth is off.
	bootstrap := e.awsConfig("AKIAESOSYNCBOOTSTRAP", "bootstrap")
	e.AWSAccessKeyID, e.AWSSecretAccessKey, err = createAWSUser(ctx, bootstrap, "esosync-admin", awsAdminPolicy)
	if err != nil {
		return fmt.Errorf("harness: creating moto's admin user: %w", err)
	}
	if err := motoResetAuth(ctx, &http.Client{Timeout: 2 * time.Second}, motoURL, "0"); err != nil {
		return err
	}
	// Prove auth is on: the admin keys work and made-up ones do not.
	if _, err := sts.NewFromConfig(e.AWSConfig()).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		return fmt.Errorf("harness: moto rejects the admin user: %w", err)
	}
	_, err = sts.NewFromConfig(e.awsConfig("AKIAESOSYNCNOSUCHKEY", "nope")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidClientTokenId" {
		return fmt.Errorf("harness: moto should reject an unknown access key with InvalidClientTokenId, got %v", err)
	}
	e.logf("moto ready at %s with IAM auth (%s)", e.AWSEndpoint, time.Since(e.started).Round(10*time.Millisecond))
	return nil
}

// AWSConfig is an SDK configuration for the test bed's moto server, signed
// with the admin user's keys. It is built from scratch, so the caller's
// AWS_* environment and ~/.aws files cannot redirect it.
func (e *Env) AWSConfig() aws.Config {
	return e.awsConfig(e.AWSAccessKeyID, e.AWSSecretAccessKey)
}

func (e *Env) awsConfig(accessKeyID, secret string) aws.Config {
	return aws.Config{
		Region:       e.AWSRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, secret, ""),
		BaseEndpoint: aws.String(e.AWSEndpoint),
	}
}

// PutAWSSecret seeds moto through the real Secrets Manager client with the
// admin user's keys: it creates name with value (and tags) or, when it
// exists, makes value its current version (tags are then left as they are).
func (e *Env) PutAWSSecret(ctx context.Context, name, value string, tags map[string]string) error {
	sm := secretsmanager.NewFromConfig(e.AWSConfig())
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
	for k, v := range tags {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	_, err := sm.CreateSecret(ctx, in)
	var exists *smtypes.ResourceExistsException
	if errors.As(err, &exists) {
		_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)})
	}
	if err != nil {
		return fmt.Errorf("seeding AWS secret %s: %w", name, err)
	}
	return nil
}

// NewAWSUser creates an IAM user in moto with policyJSON as its only
// (inline) policy and returns its access key, for tests of what a
// restricted identity may not do. Restrict by Action: moto only honours
// statements with Resource "*".
func (e *Env) NewAWSUser(ctx context.Context, name, policyJSON string) (accessKeyID, secret string, err error) {
	if e.AWSEndpoint == "" {
		return "", "", errors.New("harness: NewAWSUser needs Options.AWS")
	}
	return createAWSUser(ctx, e.AWSConfig(), name, policyJSON)
}

func createAWSUser(ctx context.Context, cfg aws.Config, name, policyJSON string) (accessKeyID, secret string, err error) {
	client := iam.NewFromConfig(cfg)
	if _, err := client.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		return "", "", fmt.Errorf("creating IAM user %q: %w", name, err)
	}
	if _, err := client.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
		UserName:       aws.String(name),
		PolicyName:     aws.String(name + "-policy"),
		PolicyDocument: aws.String(policyJSON),
	}); err != nil {
		return "", "", fmt.Errorf("attaching the policy of IAM user %q: %w", name, err)
	}
	key, err := client.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		return "", "", fmt.Errorf("creating an access key for IAM user %q: %w", name, err)
	}
	return aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), nil
}

// motoResetAuth sets moto's INITIAL_NO_AUTH_ACTION_COUNT and restarts its
// request count: "0" authenticates every request from now on.
func motoResetAuth(ctx context.Context, client *http.Client, endpoint, count string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/moto-api/reset-auth", strings.NewReader(count))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("harness: turning moto's IAM auth on: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("harness: turning moto's IAM auth on: POST /moto-api/reset-auth: %s", resp.Status)
	}
	return nil
}

// startMotoFront serves a loopback reverse proxy to moto that fixes one
// thing moto 5.2.5 gets wrong: when IAM auth refuses a request
// (InvalidClientTokenId, SignatureDoesNotMatch, AccessDenied), moto answers
// every service with IAM-query XML nested one level too deep
// (<ErrorResponse><Errors><Error>) and without X-Amzn-ErrorType, which
// aws-sdk-go-v2 reports as "UnknownError" (query protocols: STS, IAM) or
// fails to decode (JSON protocols: Secrets Manager). The front rewrites just
// those bodies into the shape the request's protocol uses, keeping moto's
// status, code and message, so clients see AWS's own error codes. Every
// other response passes through untouched; the Host header is kept, so
// SigV4 signatures still verify.
func startMotoFront(host, motoURL string) (endpoint string, closeFn func() error, err error) {
	target, err := url.Parse(motoURL)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = rewriteMotoAuthError
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), srv.Close, nil
}

// motoAuthError is the body moto sends when IAM auth refuses a request.
type motoAuthError struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Errors  struct {
		Error struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
	} `xml:"Errors"`
}

func rewriteMotoAuthError(resp *http.Response) error {
	if resp.StatusCode < 400 || resp.Header.Get("X-Amzn-ErrorType") != "" {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var moto motoAuthError
	if !bytes.Contains(body, []byte("<Errors>")) || xml.Unmarshal(body, &moto) != nil || moto.Errors.Error.Code == "" {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	e := moto.Errors.Error
	req := resp.Request
	if req.Header.Get("X-Amz-Target") != "" || strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-amz-json") {
		// awsJson1_0/1_1: the SDK reads the code from X-Amzn-ErrorType or __type.
		body, err = json.Marshal(map[string]string{"__type": e.Code, "message": e.Message})
		if err != nil {
			return err
		}
		resp.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp.Header.Set("X-Amzn-ErrorType", e.Code)
	} else {
		// awsQuery: <ErrorResponse><Error>…</Error><RequestId/></ErrorResponse>.
		type queryError struct {
			XMLName xml.Name `xml:"ErrorResponse"`
			Error   struct {
				Type    string `xml:"Type"`
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			} `xml:"Error"`
			RequestID string `xml:"RequestId"`
		}
		var q queryError
		q.Error.Type, q.Error.Code, q.Error.Message = motoOrDefault(e.Type, "Sender"), e.Code, e.Message
		q.RequestID = resp.Header.Get("X-Amzn-Requestid")
		if body, err = xml.Marshal(q); err != nil {
			return err
		}
		resp.Header.Set("Content-Type", "text/xml")
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

func motoOrDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// waitMoto waits until the moto process p answers at motoURL.
func waitMoto(ctx context.Context, p *Process, motoURL string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return waitFor(ctx, p, 60*time.Second, func() error {
		// moto answers this GET with 201.
		resp, err := client.Get(motoURL + "/moto-api/config")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET /moto-api/config: %s", resp.Status)
		}
		return nil
	})
}
