// Package escserver is a local Pulumi ESC API for tests: it serves, on a
// real loopback listener, the REST routes the esc-sdk v0.14.0 client
// (github.com/pulumi/esc-sdk/sdk/go) calls, and evaluates environments with
// Pulumi's own evaluator (github.com/pulumi/esc/eval). Imports, merging,
// interpolation, plaintext fn::secret, context values and diagnostics are
// therefore Pulumi's, not a re-implementation; only storage, sessions and
// the HTTP surface are ours.
//
// Routes, relative to URL() (e.g. http://127.0.0.1:PORT/api/esc):
//
//	GET    /environments/{org}                               list (continuationToken, nextToken; 100 a page)
//	POST   /environments/{org}                               create {"project","name"}
//	POST   /environments/{org}/yaml/check                    check a YAML definition (showSecrets)
//	GET    /environments/{org}/{project}/{env}               YAML definition (ETag, Pulumi-ESC-Revision)
//	GET    /environments/{org}/{project}/{env}/decrypt       same YAML (nothing is ever encrypted here)
//	GET    /environments/{org}/{project}/{env}/versions/{v}  YAML of revision v (a number or "latest")
//	PATCH  /environments/{org}/{project}/{env}               update the YAML (checked first; ETag/If-Match honoured)
//	DELETE /environments/{org}/{project}/{env}               delete
//	POST   /environments/{org}/{project}/{env}/open          open (duration) -> {"id"}
//	POST   /environments/{org}/{project}/{env}/versions/{v}/open
//	GET    /environments/{org}/{project}/{env}/open/{id}     the opened environment {"properties","schema"}
//	GET    /environments/{org}/{project}/{env}/open//{id}?property=a.b[0]
//	                                                         one property (the SDK's double slash; the
//	                                                         single-slash form with ?property= works too)
//
// Every request needs "Authorization: token <t>" with a token added by
// AddToken; otherwise the answer is 401 with the API's error shape
// {"code":401,"message":"..."}. Errors always use that shape (plus
// "diagnostics" for evaluation errors), because the SDK decodes them with
// DisallowUnknownFields.
//
// The server counts requests per route kind (Counts) and opens per
// environment (Opens), so tests can prove what a deploy cost.
//
// Wire details kept on purpose, because the SDK depends on them: every
// value, at every nesting level, is {"value":…,"trace":{"def":{"environment":…,
// "begin":…,"end":…}}} with "environment" always present (the SDK's getRange
// type-asserts it and panics otherwise), and "value" present even when null.
//
// Limits (this is not Pulumi Cloud):
//   - fn::open and fn::rotate providers are rejected with a diagnostic: no
//     cloud logins (aws-login, vault-login, …) can be evaluated.
//   - No encryption: fn::secret ciphertext cannot be decrypted, plaintext
//     secrets are stored and returned as plaintext in the YAML.
//   - One organisation namespace per server; any accepted token may use any
//     organisation. No teams, RBAC, audit log, webhooks, tags, drafts,
//     change requests, revision listing, clone or environment settings.
//   - Open responses carry "properties" and "schema" but no "exprs" or
//     "executionContext"; sessions live in memory for their duration
//     (default 2h) and are forgotten on Close.
//   - A property read of a missing path answers 404; the real service's
//     exact status and message for that case are not documented.
//   - context.pulumi.user.login is always Login ("escserver-user").
package escserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/pulumi/esc"
	"github.com/pulumi/esc/eval"
	"github.com/pulumi/esc/syntax"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// BasePath is where the API lives below the server's root, as on
// api.pulumi.com, so a client configured with URL() builds the same paths
// it would against Pulumi Cloud.
const BasePath = "/api/esc"

// Login is the value of context.pulumi.user.login in every evaluation.
const Login = "escserver-user"

// DefaultProject is the project an import without a project part
// ("imports: [base]") refers to, as in Pulumi ESC's legacy naming.
const DefaultProject = "default"

// defaultOpenDuration is how long a session lives when the open request
// does not say; Pulumi's documented default is two hours.
const defaultOpenDuration = 2 * time.Hour

// pageSize bounds a list response, so tests can exercise nextToken.
const pageSize = 100

// Route kinds, the keys of Counts.
const (
	KindList     = "list"
	KindCreate   = "create"
	KindCheck    = "check"
	KindGet      = "get"
	KindDecrypt  = "decrypt"
	KindUpdate   = "update"
	KindDelete   = "delete"
	KindOpen     = "open"
	KindRead     = "read"
	KindProperty = "property"
	KindUnknown  = "unknown"
	// KindUnauthorized counts requests rejected for their token, in
	// addition to the kind they were addressed to.
	KindUnauthorized = "unauthorized"
)

// Server is a running local ESC API. Its methods are safe for concurrent use.
type Server struct {
	ln  net.Listener
	srv *http.Server

	mu       sync.Mutex
	tokens   map[string]bool
	envs     map[envKey]*environment
	sessions map[string]*session
	counts   map[string]int
	opens    map[envKey]int
}

type envKey struct{ org, project, name string }

func (k envKey) String() string { return k.org + "/" + k.project + "/" + k.name }

// evalName is the environment's name inside its organisation, as the
// evaluator and traces spell it.
func (k envKey) evalName() string { return k.project + "/" + k.name }

type environment struct {
	revisions []revision // revisions[i] is revision i+1
	created   time.Time
	modified  time.Time
}

type revision struct {
	yaml    []byte
	created time.Time
}

func (e *environment) latest() (int, revision) {
	return len(e.revisions), e.revisions[len(e.revisions)-1]
}

type session struct {
	key     envKey
	body    wireEnvironment
	props   map[string]esc.Value
	expires time.Time
}

// Start listens on addr (default "127.0.0.1:0") and serves until Close.
func Start(addr string) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("escserver: listening on %s: %w", addr, err)
	}
	s := &Server{
		ln:       ln,
		tokens:   map[string]bool{},
		envs:     map[envKey]*environment{},
		sessions: map[string]*session{},
		counts:   map[string]int{},
		opens:    map[envKey]int{},
	}
	// A bare http.Server (no ServeMux): ServeMux would answer the SDK's
	// "open//{id}" with a 301 to a cleaned path.
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the API base URL to configure clients with (the esc-sdk's
// Configuration.Servers[0].URL, ESO's apiUrl).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + BasePath }

// Close stops the server and drops its connections.
func (s *Server) Close() error {
	err := s.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// AddToken makes tok an accepted access token.
func (s *Server) AddToken(tok string) {
	s.mu.Lock()
	s.tokens[tok] = true
	s.mu.Unlock()
}

// RevokeToken stops accepting tok, as revoking a Pulumi access token does.
// Open sessions are kept: only requests are authenticated.
func (s *Server) RevokeToken(tok string) {
	s.mu.Lock()
	delete(s.tokens, tok)
	s.mu.Unlock()
}

// SetEnvironment creates the environment or, when it exists, stores yaml
// as its new revision. Unlike the PATCH route it does not evaluate the
// definition, so a test can store one whose open fails (a missing import);
// only YAML syntax errors are rejected.
func (s *Server) SetEnvironment(org, project, env, yaml string) error {
	key := envKey{org, project, env}
	if err := checkNames(key); err != nil {
		return err
	}
	if diags := syntaxDiags(key, []byte(yaml)); diags.HasErrors() {
		return fmt.Errorf("escserver: %s: %s", key, diagSummary(diags))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putLocked(key, []byte(yaml))
	return nil
}

// DeleteEnvironment removes an environment; it reports whether it existed.
func (s *Server) DeleteEnvironment(org, project, env string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := envKey{org, project, env}
	_, ok := s.envs[key]
	delete(s.envs, key)
	return ok
}

// Environment returns the YAML of the environment's latest revision and
// that revision's number.
func (s *Server) Environment(org, project, env string) (yaml string, revision int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.envs[envKey{org, project, env}]
	if !ok {
		return "", 0, false
	}
	n, r := e.latest()
	return string(r.yaml), n, true
}

func (s *Server) putLocked(key envKey, yaml []byte) {
	now := time.Now().UTC()
	e, ok := s.envs[key]
	if !ok {
		e = &environment{created: now}
		s.envs[key] = e
	}
	e.revisions = append(e.revisions, revision{yaml: append([]byte(nil), yaml...), created: now})
	e.modified = now
}

// Opens returns how many open requests (at any version) reached the
// environment since the last ResetCounts, including rejected ones.
func (s *Server) Opens(org, project, env string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens[envKey{org, project, env}]
}

// Counts returns the number of requests per route kind (the Kind*
// constants) since the last ResetCounts, including rejected ones.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// ResetCounts zeroes Counts and Opens.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	s.counts = map[string]int{}
	s.opens = map[envKey]int{}
	s.mu.Unlock()
}

// ---- HTTP ----

// apiError is the API's error body. The SDK decodes it into its Error
// model, which requires exactly "code" and "message"; diagnostics are only
// sent where the SDK expects them (400 from open, update and check).
type apiError struct {
	Code        int              `json:"code"`
	Message     string           `json:"message"`
	Diagnostics []wireDiagnostic `json:"diagnostics,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Code: code, Message: fmt.Sprintf(format, args...)})
}

type route struct {
	kind    string
	key     envKey // org always; project and name when the route has them
	session string
	version string // "" for the latest revision
	handle  func(http.ResponseWriter, *http.Request, route)
}

// ServeHTTP routes by splitting the raw path, so that the SDK's empty
// segment in "open//{id}" survives.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := s.route(r)
	s.count(rt)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found: %s %s", r.Method, r.URL.Path)
		return
	}
	if rt.handle == nil {
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed: %s %s", r.Method, r.URL.Path)
		return
	}
	if !s.authorized(r) {
		s.mu.Lock()
		s.counts[KindUnauthorized]++
		s.mu.Unlock()
		writeError(w, http.StatusUnauthorized, "Unauthorized: No credentials provided or are invalid.")
		return
	}
	rt.handle(w, r, rt)
}

func (s *Server) count(rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind := rt.kind
	if kind == "" {
		kind = KindUnknown
	}
	s.counts[kind]++
	// Only a request the open route accepts is an open (a GET on /open
	// is a 405, not an open).
	if kind == KindOpen && rt.handle != nil {
		s.opens[rt.key]++
	}
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "token ")
	if !ok || tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[tok]
}

// route maps a request to its kind and handler. ok is false for paths the
// API does not have; a known path with the wrong method has a nil handle.
func (s *Server) route(r *http.Request) (rt route, ok bool) {
	rest, found := strings.CutPrefix(r.URL.Path, BasePath+"/environments/")
	if !found || rest == "" {
		return route{}, false
	}
	seg := strings.Split(rest, "/")
	m := r.Method
	rt.key.org = seg[0]
	if len(seg) >= 3 {
		rt.key.project, rt.key.name = seg[1], seg[2]
	}
	on := func(method, kind string, h func(http.ResponseWriter, *http.Request, route)) {
		if rt.kind == "" {
			rt.kind = kind
		}
		if m == method {
			rt.kind, rt.handle = kind, h
		}
	}
	switch {
	case len(seg) == 1:
		on(http.MethodGet, KindList, s.handleList)
		on(http.MethodPost, KindCreate, s.handleCreate)
	case len(seg) == 3 && seg[1] == "yaml" && seg[2] == "check" && m == http.MethodPost:
		// POST never addresses an environment by path, so this cannot
		// shadow a project named "yaml" with an environment named "check".
		rt.key.project, rt.key.name = "", ""
		on(http.MethodPost, KindCheck, s.handleCheck)
	case len(seg) == 3:
		on(http.MethodGet, KindGet, s.handleGet)
		on(http.MethodPatch, KindUpdate, s.handleUpdate)
		on(http.MethodDelete, KindDelete, s.handleDelete)
	case len(seg) == 4 && seg[3] == "decrypt":
		on(http.MethodGet, KindDecrypt, s.handleGet)
	case len(seg) == 4 && seg[3] == "open":
		on(http.MethodPost, KindOpen, s.handleOpen)
	case len(seg) == 5 && seg[3] == "versions" && isVersion(seg[4]):
		rt.version = seg[4]
		on(http.MethodGet, KindGet, s.handleGet)
	case len(seg) == 6 && seg[3] == "versions" && isVersion(seg[4]) && seg[5] == "open":
		rt.version = seg[4]
		on(http.MethodPost, KindOpen, s.handleOpen)
	case len(seg) == 5 && seg[3] == "open" && seg[4] != "":
		rt.session = seg[4]
		if r.URL.Query().Has("property") {
			on(http.MethodGet, KindProperty, s.handleProperty)
		} else {
			on(http.MethodGet, KindRead, s.handleRead)
		}
	case len(seg) == 6 && seg[3] == "open" && seg[4] == "" && seg[5] != "":
		rt.session = seg[5]
		on(http.MethodGet, KindProperty, s.handleProperty)
	default:
		return route{}, false
	}
	return rt, true
}

func isVersion(v string) bool {
	if v == "latest" {
		return true
	}
	n, err := strconv.Atoi(v)
	return err == nil && n > 0
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// checkNames applies the esc-sdk's client-side limits (org 3–40, project
// and environment 1–100 characters) and Pulumi's character set, so a test
// cannot seed an environment no SDK client could address.
func checkNames(k envKey) error {
	if n := len(k.org); n < 3 || n > 40 || !nameRE.MatchString(k.org) {
		return fmt.Errorf("escserver: invalid organization name %q (3-40 characters of [A-Za-z0-9._-])", k.org)
	}
	for what, v := range map[string]string{"project": k.project, "environment": k.name} {
		if n := len(v); n < 1 || n > 100 || !nameRE.MatchString(v) {
			return fmt.Errorf("escserver: invalid %s name %q (1-100 characters of [A-Za-z0-9._-])", what, v)
		}
	}
	return nil
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request, rt route) {
	start := 0
	if tok := r.URL.Query().Get("continuationToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "Bad Request: invalid continuationToken")
			return
		}
		start = n
	}
	type orgEnv struct {
		Organization string `json:"organization"`
		Project      string `json:"project"`
		Name         string `json:"name"`
		Created      string `json:"created"`
		Modified     string `json:"modified"`
	}
	s.mu.Lock()
	var all []orgEnv
	for k, e := range s.envs {
		if k.org == rt.key.org {
			all = append(all, orgEnv{k.org, k.project, k.name, e.created.Format(time.RFC3339), e.modified.Format(time.RFC3339)})
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].Project != all[j].Project {
			return all[i].Project < all[j].Project
		}
		return all[i].Name < all[j].Name
	})
	resp := struct {
		Environments []orgEnv `json:"environments"`
		NextToken    string   `json:"nextToken,omitempty"`
	}{Environments: []orgEnv{}}
	if start < len(all) {
		end := min(start+pageSize, len(all))
		resp.Environments = all[start:end]
		if end < len(all) {
			resp.NextToken = strconv.Itoa(end)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, rt route) {
	var req struct {
		Project string `json:"project"`
		Name    string `json:"name"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request: invalid request body")
		return
	}
	key := envKey{rt.key.org, req.Project, req.Name}
	if err := checkNames(key); err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request: %s", strings.TrimPrefix(err.Error(), "escserver: "))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.envs[key]; ok {
		writeError(w, http.StatusConflict, "Conflict: environment '%s' already exists", key.evalName())
		return
	}
	s.putLocked(key, nil)
	w.WriteHeader(http.StatusOK)
}

// lookup returns the environment's YAML at rt.version and its revision
// number, or writes the 404 the API gives.
func (s *Server) lookup(w http.ResponseWriter, rt route) ([]byte, int, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.envs[rt.key]
	if !ok {
		writeError(w, http.StatusNotFound, "Environment '%s' not found", rt.key.evalName())
		return nil, 0, "", false
	}
	n, rev := e.latest()
	if rt.version != "" && rt.version != "latest" {
		v, _ := strconv.Atoi(rt.version)
		if v > len(e.revisions) {
			writeError(w, http.StatusNotFound, "Revision %d of environment '%s' not found", v, rt.key.evalName())
			return nil, 0, "", false
		}
		n, rev = v, e.revisions[v-1]
	}
	return rev.yaml, n, etag(n, rev.yaml), true
}

func etag(n int, yaml []byte) string {
	sum := sha256.Sum256(yaml)
	return fmt.Sprintf(`"%d-%s"`, n, hex.EncodeToString(sum[:8]))
}

func (s *Server) handleGet(w http.ResponseWriter, _ *http.Request, rt route) {
	yaml, n, tag, ok := s.lookup(w, rt)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/x-yaml")
	w.Header().Set("ETag", tag)
	w.Header().Set("Pulumi-ESC-Revision", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(yaml)
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request, rt route) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request: reading the body: %v", err)
		return
	}
	if _, _, _, ok := s.lookup(w, rt); !ok {
		return
	}
	// The service checks a definition before storing it; evaluation
	// errors (a missing import, a bad reference) reject the update.
	if _, diags := s.evaluate(r.Context(), rt.key, body, true, false); diags.HasErrors() {
		writeJSON(w, http.StatusBadRequest, apiError{Code: http.StatusBadRequest,
			Message: "Bad Request: environment definition has errors", Diagnostics: wireDiags(rt.key.evalName(), diags)})
		return
	}
	s.mu.Lock()
	e, ok := s.envs[rt.key]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Environment '%s' not found", rt.key.evalName())
		return
	}
	// The ETag is compared under the lock that stores the revision, so
	// of two updates made from the same read only one wins.
	if want := firstHeader(r, "If-Match", "ETag"); want != "" {
		if n, rev := e.latest(); want != etag(n, rev.yaml) {
			s.mu.Unlock()
			writeError(w, http.StatusConflict, "Conflict: environment '%s' was modified (ETag mismatch)", rt.key.evalName())
			return
		}
	}
	s.putLocked(rt.key, body)
	n, _ := e.latest()
	s.mu.Unlock()
	w.Header().Set("Pulumi-ESC-Revision", strconv.Itoa(n))
	writeJSON(w, http.StatusOK, struct{}{})
}

func firstHeader(r *http.Request, names ...string) string {
	for _, n := range names {
		if v := r.Header.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func (s *Server) handleDelete(w http.ResponseWriter, _ *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.envs[rt.key]; !ok {
		writeError(w, http.StatusNotFound, "Environment '%s' not found", rt.key.evalName())
		return
	}
	delete(s.envs, rt.key)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request, rt route) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request: reading the body: %v", err)
		return
	}
	showSecrets, _ := strconv.ParseBool(r.URL.Query().Get("showSecrets"))
	key := envKey{org: rt.key.org, project: esc.AnonymousProjectName, name: esc.AnonymousEnvironmentName}
	env, diags := s.evaluate(r.Context(), key, body, true, showSecrets)
	resp := struct {
		wireEnvironment
		Diagnostics []wireDiagnostic `json:"diagnostics,omitempty"`
	}{wireEnvironment: wireEnv(key.name, env), Diagnostics: wireDiags(key.name, diags)}
	code := http.StatusOK
	if diags.HasErrors() {
		code = http.StatusBadRequest
	}
	writeJSON(w, code, resp)
}

func (s *Server) handleOpen(w http.ResponseWriter, r *http.Request, rt route) {
	duration := defaultOpenDuration
	if d := r.URL.Query().Get("duration"); d != "" {
		v, err := time.ParseDuration(d)
		if err != nil || v <= 0 {
			writeError(w, http.StatusBadRequest, "Bad Request: invalid duration %q", d)
			return
		}
		duration = v
	}
	yaml, _, _, ok := s.lookup(w, rt)
	if !ok {
		return
	}
	env, diags := s.evaluate(r.Context(), rt.key, yaml, false, true)
	if diags.HasErrors() {
		writeJSON(w, http.StatusBadRequest, apiError{Code: http.StatusBadRequest,
			Message: "Bad Request: environment has errors", Diagnostics: wireDiags(rt.key.evalName(), diags)})
		return
	}
	id := newID()
	sess := &session{key: rt.key, body: wireEnv(rt.key.evalName(), env), expires: time.Now().Add(duration)}
	if env != nil {
		sess.props = env.Properties
	}
	s.mu.Lock()
	s.sessions[id] = sess
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		ID string `json:"id"`
	}{id})
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// openSession finds a live session opened for rt's environment.
func (s *Server) openSession(w http.ResponseWriter, rt route) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[rt.session]
	if ok && time.Now().After(sess.expires) {
		delete(s.sessions, rt.session)
		ok = false
	}
	if !ok || sess.key != rt.key {
		writeError(w, http.StatusNotFound, "Open environment session '%s' not found", rt.session)
		return nil, false
	}
	return sess, true
}

func (s *Server) handleRead(w http.ResponseWriter, _ *http.Request, rt route) {
	sess, ok := s.openSession(w, rt)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, sess.body)
}

func (s *Server) handleProperty(w http.ResponseWriter, r *http.Request, rt route) {
	sess, ok := s.openSession(w, rt)
	if !ok {
		return
	}
	prop := r.URL.Query().Get("property")
	path, err := resource.ParsePropertyPath(prop)
	if err != nil || len(path) == 0 {
		writeError(w, http.StatusBadRequest, "Bad Request: invalid property path %q", prop)
		return
	}
	v, found := walk(esc.NewValue(sess.props), path)
	if !found {
		writeError(w, http.StatusNotFound, "Not Found: property '%s' does not exist", prop)
		return
	}
	writeJSON(w, http.StatusOK, wire(rt.key.evalName(), v))
}

// walk follows path through v. A name on an array, an index on an object,
// a wildcard or an index out of range finds nothing.
func walk(v esc.Value, path resource.PropertyPath) (esc.Value, bool) {
	for _, el := range path {
		switch el := el.(type) {
		case string:
			m, ok := v.Value.(map[string]esc.Value)
			if !ok {
				return esc.Value{}, false
			}
			if v, ok = m[el]; !ok {
				return esc.Value{}, false
			}
		case int:
			a, ok := v.Value.([]esc.Value)
			if !ok || el < 0 || el >= len(a) {
				return esc.Value{}, false
			}
			v = a[el]
		default:
			return esc.Value{}, false
		}
	}
	return v, true
}

// ---- evaluation ----

// evaluate loads and evaluates yaml as environment key, with Pulumi's
// evaluator. validating runs a check (fn::open yields unknowns) instead of
// an open.
func (s *Server) evaluate(ctx context.Context, key envKey, yaml []byte, validating, showSecrets bool) (*esc.Environment, syntax.Diagnostics) {
	name := key.evalName()
	if key.project == esc.AnonymousProjectName {
		name = key.name
	}
	if len(strings.TrimSpace(string(yaml))) == 0 {
		// A freshly created environment has an empty definition, which
		// opens to no properties.
		return nil, nil
	}
	decl, diags, err := eval.LoadYAMLBytes(name, yaml)
	if err != nil {
		return nil, append(diags, syntax.Error(nil, err.Error(), ""))
	}
	if diags.HasErrors() {
		return nil, diags
	}
	execCtx, err := esc.NewExecContext(map[string]esc.Value{
		"pulumi": esc.NewValue(map[string]esc.Value{
			"user":         esc.NewValue(map[string]esc.Value{"login": esc.NewValue(Login)}),
			"organization": esc.NewValue(map[string]esc.Value{"login": esc.NewValue(key.org)}),
		}),
	})
	if err != nil {
		return nil, append(diags, syntax.Error(nil, err.Error(), ""))
	}
	loader := envLoader{s: s, org: key.org}
	var env *esc.Environment
	var ediags syntax.Diagnostics
	if validating {
		env, ediags = eval.CheckEnvironment(ctx, name, decl, noDecrypter{}, noProviders{}, loader, execCtx, showSecrets)
	} else {
		env, ediags = eval.EvalEnvironment(ctx, name, decl, noDecrypter{}, noProviders{}, loader, execCtx)
	}
	return env, append(diags, ediags...)
}

// syntaxDiags parses yaml without evaluating it.
func syntaxDiags(key envKey, yaml []byte) syntax.Diagnostics {
	if len(strings.TrimSpace(string(yaml))) == 0 {
		return nil
	}
	_, diags, err := eval.LoadYAMLBytes(key.evalName(), yaml)
	if err != nil {
		diags = append(diags, syntax.Error(nil, err.Error(), ""))
	}
	return diags
}

func diagSummary(diags syntax.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			parts = append(parts, d.Summary)
		}
	}
	return strings.Join(parts, "; ")
}

// envLoader resolves imports within the organisation: "project/env", or
// "env" in the default project. It reads the latest revision.
type envLoader struct {
	s   *Server
	org string
}

func (l envLoader) LoadEnvironment(_ context.Context, name string) ([]byte, eval.Decrypter, error) {
	project, env, ok := strings.Cut(name, "/")
	if !ok {
		project, env = DefaultProject, name
	}
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	e, found := l.s.envs[envKey{l.org, project, env}]
	if !found {
		return nil, nil, fmt.Errorf("environment %q not found", name)
	}
	_, rev := e.latest()
	return rev.yaml, noDecrypter{}, nil
}

// noDecrypter rejects ciphertext: the server never encrypts anything.
type noDecrypter struct{}

func (noDecrypter) Decrypt(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("escserver does not support encrypted secrets (ciphertext); use plaintext fn::secret")
}

// noProviders rejects fn::open and fn::rotate: there is no cloud to log in to.
type noProviders struct{}

func (noProviders) LoadProvider(_ context.Context, name string) (esc.Provider, error) {
	return nil, fmt.Errorf("escserver does not support fn::open providers (%q)", name)
}

func (noProviders) LoadRotator(_ context.Context, name string) (esc.Rotator, error) {
	return nil, fmt.Errorf("escserver does not support fn::rotate rotators (%q)", name)
}

// ---- wire format ----

// wireEnvironment is the opened environment as the API sends it.
type wireEnvironment struct {
	Properties map[string]any `json:"properties"`
	Schema     any            `json:"schema,omitempty"`
}

// wireEnv converts an evaluated environment. esc.Environment cannot be
// serialised as is: esc.Value and esc.Range omit empty fields the SDK
// requires (quirk 2 of the notes).
func wireEnv(envName string, env *esc.Environment) wireEnvironment {
	out := wireEnvironment{Properties: map[string]any{}}
	if env == nil {
		return out
	}
	for k, v := range env.Properties {
		out.Properties[k] = wire(envName, v)
	}
	if env.Schema != nil {
		out.Schema = env.Schema
	}
	return out
}

// wire converts one value, recursively, into the API's shape: "value" and
// "trace" always present, trace.def.environment never empty.
func wire(envName string, v esc.Value) map[string]any {
	var inner any
	switch x := v.Value.(type) {
	case []esc.Value:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = wire(envName, e)
		}
		inner = a
	case map[string]esc.Value:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = wire(envName, e)
		}
		inner = m
	default:
		inner = x
	}
	out := map[string]any{"value": inner, "trace": wireTrace(envName, v.Trace)}
	if v.Secret {
		out["secret"] = true
	}
	if v.Unknown {
		out["unknown"] = true
	}
	return out
}

func wireTrace(envName string, t esc.Trace) map[string]any {
	out := map[string]any{"def": wireRange(envName, t.Def)}
	if t.Base != nil {
		out["base"] = wire(envName, *t.Base)
	}
	return out
}

func wireRange(envName string, r esc.Range) map[string]any {
	env := r.Environment
	if env == "" {
		env = envName
	}
	pos := func(p esc.Pos) map[string]any {
		return map[string]any{"line": p.Line, "column": p.Column, "byte": p.Byte}
	}
	return map[string]any{"environment": env, "begin": pos(r.Begin), "end": pos(r.End)}
}

// wireDiagnostic is the API's EnvironmentDiagnostic.
type wireDiagnostic struct {
	Summary  string         `json:"summary"`
	Detail   string         `json:"detail,omitempty"`
	Path     string         `json:"path,omitempty"`
	Severity string         `json:"severity,omitempty"`
	Range    map[string]any `json:"range,omitempty"`
}

func wireDiags(envName string, diags syntax.Diagnostics) []wireDiagnostic {
	var out []wireDiagnostic
	for _, d := range diags {
		wd := wireDiagnostic{Summary: d.Summary, Detail: d.Detail, Path: d.Path, Severity: "error"}
		if d.Severity == hcl.DiagWarning {
			wd.Severity = "warning"
		}
		if d.Subject != nil {
			env := d.Subject.Filename
			if env == "" {
				env = envName
			}
			wd.Range = wireRange(env, esc.Range{
				Begin: esc.Pos{Line: d.Subject.Start.Line, Column: d.Subject.Start.Column, Byte: d.Subject.Start.Byte},
				End:   esc.Pos{Line: d.Subject.End.Line, Column: d.Subject.End.Column, Byte: d.Subject.End.Byte},
			})
		}
		out = append(out, wd)
	}
	return out
}
