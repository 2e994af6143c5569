package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
)

// Timing tunes the batcher. Zero fields take the defaults in parentheses.
type Timing struct {
	// BatchQuietWindow is how long a pending batch waits for another new
	// id before it is sent (25ms).
	BatchQuietWindow time.Duration
	// BatchMaxWait caps how long the first id of a batch waits, however
	// steadily new ids arrive (250ms).
	BatchMaxWait time.Duration
	// RequestTimeout bounds one request made on behalf of several callers
	// (2m). It has its own deadline because no single caller's context may
	// cancel a request others wait for (each caller still stops waiting
	// when its own context ends).
	RequestTimeout time.Duration
	// DemandQuiet and DemandMaxWait: a batch of a store with announced
	// demand (see Config.DemandID) is held until no ExternalSecret was
	// announced for DemandQuiet (100ms), but at most DemandMaxWait (10s)
	// after its first id, so that it can carry every announced key.
	DemandQuiet   time.Duration
	DemandMaxWait time.Duration
}

// withDefaults fills the zero fields.
func (t Timing) withDefaults() Timing {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&t.BatchQuietWindow, 25*time.Millisecond)
	set(&t.BatchMaxWait, 250*time.Millisecond)
	set(&t.RequestTimeout, 2*time.Minute)
	set(&t.DemandQuiet, 100*time.Millisecond)
	set(&t.DemandMaxWait, 10*time.Second)
	return t
}

// maxBatch is BatchGetSecretValue's limit for SecretIdList.
const maxBatch = 20

// stageCurrent is the stage ESO reads when the ref has no version.
const stageCurrent = "AWSCURRENT"

// scopes holds the batcher and cache of every scope of one provider
// session (one pulumi operation).
type scopes struct {
	sync.Mutex
	m map[string]*storeState
}

func newScopes() *scopes { return &scopes{m: map[string]*storeState{}} }

// stateFor returns scope's state, created with the first client's timing.
func (sc *scopes) stateFor(scope string, session *backend.Session, timing Timing) *storeState {
	sc.Lock()
	defer sc.Unlock()
	s, ok := sc.m[scope]
	if !ok {
		s = &storeState{entries: map[string]*entry{}, session: session, timing: timing}
		sc.m[scope] = s
	}
	return s
}

// secretsAPI is the part of the Secrets Manager client the cache uses.
type secretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	BatchGetSecretValue(context.Context, *secretsmanager.BatchGetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error)
}

// Reads are batched and cached for one provider session, which is one
// pulumi operation. Many ExternalSecrets resolve concurrently; each
// new secret id joins a pending batch, and the batch goes out as one
// BatchGetSecretValue when it holds maxBatch ids, or when no new id has
// arrived for BatchQuietWindow, but at the latest BatchMaxWait after its
// first id. Concurrent reads of one id wait for the same result. Results
// (a value, or "not found") are kept, so N reads of M distinct secrets cost
// ceil(M/20) calls. Transient and permission errors are not kept: the next
// read retries instead of inheriting a failure.
//
// The state is partitioned by scope (endpoints, region, role and
// credentials, hashed), so a store whose credentials may not read a secret
// never receives another store's cached value. Values live only in memory.
//
// storeState is one scope's cache and pending batch.
type storeState struct {
	mu sync.Mutex
	// api is the most recent client of this scope; all of them sign as the
	// same identity, and the newest holds the freshest token.
	api     secretsAPI
	entries map[string]*entry // by cacheKey(id, stage-or-version)
	pending []pendingRead
	// armed identifies the current quiet-window timer; a timer that fires
	// after being superseded finds a different value and does nothing.
	armed uint64
	timer *time.Timer
	first time.Time
	// hints returns the ids announced for the store (nil: none).
	hints func() []string
	// session counts requests and says when demand was last announced.
	session *backend.Session
	timing  Timing
	// batchDenied records that the identity may not call
	// BatchGetSecretValue. ESO never calls it for data[] reads, so a
	// least-privilege policy granting only GetSecretValue is common; such
	// a scope reads one id at a time, as ESO does.
	batchDenied bool
}

type pendingRead struct {
	id string
	e  *entry
}

// entry is one secret id (at one version) of one scope: done closes when
// val or err is set.
type entry struct {
	done chan struct{}
	val  *secretValue
	err  error
}

// secretValue is what a read returns; the cache shares it between callers,
// so it is never modified and callers copy the bytes they hand out.
type secretValue struct {
	name, arn, versionID string
	str                  *string
	bin                  []byte
}

func cacheKey(id, version string) string { return id + "\x00" + version }

// get returns the secret id at version ("" = AWSCURRENT), from the cache,
// by joining a batch, or — for a pinned version, or a scope that may not
// batch — with GetSecretValue. A missing secret is backend.ErrNotFound
// (unwrapped; the caller names the key).
func (s *storeState) get(ctx context.Context, api secretsAPI, hints func() []string, id, version string) (*secretValue, error) {
	if hints != nil {
		s.mu.Lock()
		s.hints = hints
		s.mu.Unlock()
	}
	es := s.request(api, []string{id}, version)
	return wait(ctx, es[0])
}

// request makes sure each id has an entry and returns them; new ids at
// AWSCURRENT join the pending batch together, under one lock, so a find's
// matches go out in full batches.
func (s *storeState) request(api secretsAPI, ids []string, version string) []*entry {
	if version == "" {
		version = stageCurrent
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.api = api
	out := make([]*entry, len(ids))
	for i, id := range ids {
		key := cacheKey(id, version)
		e, ok := s.entries[key]
		if !ok {
			e = &entry{done: make(chan struct{})}
			s.entries[key] = e
			if version == stageCurrent && !s.batchDenied {
				s.enqueueLocked(id, e)
			} else {
				go s.fetchOne(api, id, version, e)
			}
		}
		out[i] = e
	}
	return out
}

func wait(ctx context.Context, e *entry) (*secretValue, error) {
	select {
	case <-e.done:
		return e.val, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// enqueueLocked adds id to the pending batch and sends the batch when it is
// full, or (re)arms the quiet-window timer.
func (s *storeState) enqueueLocked(id string, e *entry) {
	if len(s.pending) == 0 {
		s.first = time.Now()
	}
	s.pending = append(s.pending, pendingRead{id: id, e: e})
	if len(s.pending) >= maxBatch {
		s.flushLocked()
		return
	}
	delay := s.timing.BatchQuietWindow
	if rest := s.timing.BatchMaxWait - time.Since(s.first); rest < delay {
		delay = max(rest, 0)
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.armed++
	armed := s.armed
	s.timer = time.AfterFunc(delay, func() { s.onTimer(armed) })
}

// onTimer sends the pending batch once its window closed. With announced
// demand it first waits for the announcements to settle, then adds every
// announced id that has no entry yet.
func (s *storeState) onTimer(armed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.armed != armed || len(s.pending) == 0 {
		return
	}
	if s.hints != nil {
		quiet := s.timing.DemandQuiet - time.Since(s.session.LastDemand())
		left := s.timing.DemandMaxWait - time.Since(s.first)
		if quiet > 0 && left > 0 {
			s.armed++
			next := s.armed
			s.timer = time.AfterFunc(min(quiet, left), func() { s.onTimer(next) })
			return
		}
		for _, id := range s.hints() {
			key := cacheKey(id, stageCurrent)
			if _, ok := s.entries[key]; !ok {
				e := &entry{done: make(chan struct{})}
				s.entries[key] = e
				s.pending = append(s.pending, pendingRead{id: id, e: e})
			}
		}
	}
	s.flushLocked()
}

// flushLocked sends the pending ids, maxBatch per BatchGetSecretValue.
func (s *storeState) flushLocked() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.armed++
	batch := s.pending
	s.pending = nil
	for len(batch) > 0 {
		n := min(len(batch), maxBatch)
		go s.fetchBatch(s.api, batch[:n])
		batch = batch[n:]
	}
}

// fetchBatch reads up to maxBatch ids with one BatchGetSecretValue. Ids the
// response does not account for (neither a value nor an error names them)
// are read one by one, so a surprise in how AWS echoes an id costs calls,
// never correctness.
func (s *storeState) fetchBatch(api secretsAPI, batch []pendingRead) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timing.RequestTimeout)
	defer cancel()
	ids := make([]string, len(batch))
	for i, p := range batch {
		ids[i] = p.id
	}
	var (
		values []secretValue
		errs   = map[string]error{}
		next   *string
	)
	for {
		s.session.CountCall("aws.BatchGetSecretValue")
		out, err := api.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids, NextToken: next})
		if err != nil {
			if isAccessDenied(err) {
				s.mu.Lock()
				s.batchDenied = true
				s.mu.Unlock()
				for _, p := range batch {
					go s.fetchOne(api, p.id, stageCurrent, p.e)
				}
				return
			}
			err = sanitize(err)
			for _, p := range batch {
				s.finish(p.id, stageCurrent, p.e, nil, err)
			}
			return
		}
		for _, v := range out.SecretValues {
			values = append(values, secretValue{
				name: aws.ToString(v.Name), arn: aws.ToString(v.ARN), versionID: aws.ToString(v.VersionId),
				str: v.SecretString, bin: v.SecretBinary,
			})
		}
		for _, e := range out.Errors {
			errs[aws.ToString(e.SecretId)] = entryError(aws.ToString(e.ErrorCode), aws.ToString(e.Message))
		}
		if next = out.NextToken; next == nil {
			break
		}
	}
	for _, p := range batch {
		if v := matchValue(values, p.id); v != nil {
			s.finish(p.id, stageCurrent, p.e, v, nil)
		} else if err, ok := errs[p.id]; ok {
			s.finish(p.id, stageCurrent, p.e, nil, err)
		} else {
			go s.fetchOne(api, p.id, stageCurrent, p.e)
		}
	}
}

// matchValue finds the value read for id, which may be the secret's name,
// its ARN, or its partial ARN (the ARN without the "-XXXXXX" suffix AWS
// appends to secret ARNs).
func matchValue(values []secretValue, id string) *secretValue {
	for i := range values {
		v := &values[i]
		if id == v.name || id == v.arn {
			return v
		}
		if strings.HasPrefix(id, "arn:") && len(v.arn) == len(id)+7 && strings.HasPrefix(v.arn, id+"-") {
			return v
		}
	}
	return nil
}

// fetchOne is ESO's constructSecretValue: version "uuid/<id>" is a
// VersionId, anything else a VersionStage.
func (s *storeState) fetchOne(api secretsAPI, id, version string, e *entry) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timing.RequestTimeout)
	defer cancel()
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}
	if v, ok := strings.CutPrefix(version, "uuid/"); ok {
		in.VersionId = aws.String(v)
	} else {
		in.VersionStage = aws.String(version)
	}
	s.session.CountCall("aws.GetSecretValue")
	out, err := api.GetSecretValue(ctx, in)
	if err != nil {
		s.finish(id, version, e, nil, classify(err))
		return
	}
	s.finish(id, version, e, &secretValue{
		name: aws.ToString(out.Name), arn: aws.ToString(out.ARN), versionID: aws.ToString(out.VersionId),
		str: out.SecretString, bin: out.SecretBinary,
	}, nil)
}

// finish publishes a result. Only values and not-found are kept; for any
// other error the entry is dropped so the next read asks AWS again.
func (s *storeState) finish(id, version string, e *entry, v *secretValue, err error) {
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		s.mu.Lock()
		key := cacheKey(id, version)
		if s.entries[key] == e {
			delete(s.entries, key)
		}
		s.mu.Unlock()
	}
	e.val, e.err = v, err
	close(e.done)
}

// classify maps a GetSecretValue error the way ESO's constructSecretValue
// does: ResourceNotFoundException, and an InvalidParameterException saying
// the secret "was marked for deletion", are "no secret"; everything else is
// an error, sanitized as ESO's GetSecret does.
func classify(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && isNotFoundCode(apiErr.ErrorCode(), apiErr.ErrorMessage()) {
		return backend.ErrNotFound
	}
	return sanitize(err)
}

func isNotFoundCode(code, message string) bool {
	return code == "ResourceNotFoundException" ||
		(code == "InvalidParameterException" && strings.Contains(message, "was marked for deletion"))
}

// isAccessDenied says whether err is an authorization failure: Secrets
// Manager answers AccessDeniedException; moto answers IAM's AccessDenied.
func isAccessDenied(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode() == "AccessDeniedException" || apiErr.ErrorCode() == "AccessDenied"
}

// batchEntryError is one id's failure inside a successful
// BatchGetSecretValue response. It satisfies smithy.APIError, so callers
// read its code the same way as a GetSecretValue error's.
type batchEntryError struct{ code, message string }

func (e *batchEntryError) Error() string {
	return fmt.Sprintf("BatchGetSecretValue: %s: %s", e.code, e.message)
}
func (e *batchEntryError) ErrorCode() string             { return e.code }
func (e *batchEntryError) ErrorMessage() string          { return e.message }
func (e *batchEntryError) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }

func entryError(code, message string) error {
	if isNotFoundCode(code, message) {
		return backend.ErrNotFound
	}
	return &batchEntryError{code: code, message: message}
}
