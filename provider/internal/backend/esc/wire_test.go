package esc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	escsdk "github.com/pulumi/esc-sdk/sdk/go"

	"github.com/esosync/pulumi-esosync/provider/internal/backend"
	"github.com/esosync/pulumi-esosync/provider/internal/backend/esc"
)

// The responses in testdata are of environment esosync-org/apps/app, which
// imports base/shared:
//
//	imports:
//	  - base/shared
//	values:
//	  app:
//	    db:
//	      host: ${shared.dbHost}
//	      user: app-user
//	      "pass word":
//	        fn::secret: s3cr3t-with space
//	    tokens:
//	      - first-token
//	      - fn::secret: second-token
//	    flags:
//	      enabled: true
//	      ratio: 0.25
//	      retries: 3
//	      nothing: null
//
// with base/shared's `values: {shared: {dbHost: db.internal, port: 5432}}`.
// They are written after the API's schema and the reports of its
// 2026-07-21 change (external-secrets#6682, pulumi/esc-sdk#140):
//
//   - open-before.json, read-before.json: the shape esc-sdk v0.14.0's
//     models were generated for, every required member present.
//   - read-2026-07-21.json: the same values without trace.def.environment,
//     the member the API stopped sending on 2026-07-21.
//   - open-drift.json, read-drift.json: members esc-sdk does not know at
//     every level (response, value, trace, range, position), and required
//     ones missing: a top-level value without trace, a nested one without
//     trace, a null one without value (pulumi/esc's own Value omits it).
//   - error-401-drift.json: an Error with a member esc-sdk does not know.
//   - error-400-2026-07-21.json: diagnostics whose range has no environment.

// replaySession is the session id of the recorded open responses.
const replaySession = "6f1c0e2ab8d94d7a9c35e0b7f2a4c81d"

// reply is one response to replay: a status (0 is 200 OK) and a body.
type reply struct {
	status int
	body   []byte
}

// recorded reads a response body from testdata.
func recorded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replay serves open and read of esosync-org/apps/app at the path the ESC
// API serves them, and returns the API URL. A request without the token
// is refused, so a replay also shows that the SDK still sends it.
func replay(t *testing.T, open, read reply) string {
	t.Helper()
	opening := "/api/esc/environments/" + org + "/apps/app/open"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rp reply
		switch {
		case r.Method == http.MethodPost && r.URL.Path == opening:
			rp = open
		case r.Method == http.MethodGet && r.URL.Path == opening+"/"+replaySession:
			rp = read
		default:
			http.NotFound(w, r)
			return
		}
		if got := r.Header.Get("Authorization"); got != "token "+token {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":401,"message":"replay: no token"}`))
			return
		}
		status := rp.status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(rp.body)
	}))
	t.Cleanup(ts.Close)
	return ts.URL + "/api/esc"
}

// sdkOpenRead makes the backend's two calls with esc-sdk's own decoding,
// as ESO's pulumi provider does, and returns each call's error.
func sdkOpenRead(apiURL string) (openErr, readErr error) {
	cfg := escsdk.NewConfiguration()
	cfg.Servers = escsdk.ServerConfigurations{{URL: apiURL}}
	api := escsdk.NewClient(cfg).EscAPI
	ctx := escsdk.NewAuthContext(token)
	_, _, openErr = api.OpenEnvironment(ctx, org, "apps", "app").Execute()
	_, _, readErr = api.ReadOpenEnvironment(ctx, org, "apps", "app", replaySession).Execute()
	return openErr, readErr
}

// replayConfig is the backend configuration for a replay at apiURL.
func replayConfig(apiURL string) esc.Config {
	return esc.Config{APIURL: apiURL, Organization: org, Project: "apps", Environment: "app", AccessToken: token}
}

// Every recorded shape of a successful open and read gives the backend the
// same values, while esc-sdk's strict models, which ESO decodes with,
// fail on all but the oldest.
func TestReplayedResponses(t *testing.T) {
	want := map[string]string{
		"app.db.host":         "db.internal",
		"app.db.user":         "app-user",
		`app.db["pass word"]`: "s3cr3t-with space", // secret: true
		"app.tokens":          `["first-token","second-token"]`,
		"app.tokens[1]":       "second-token", // a secret element
		"app.flags":           `{"enabled":true,"nothing":null,"ratio":0.25,"retries":3}`,
		"app.flags.nothing":   "",
		"app.flags.retries":   "3",
		"app.flags.ratio":     "0.25",
		"shared":              `{"dbHost":"db.internal","port":5432}`,
		"shared.port":         "5432",
	}
	wantDB := map[string]string{"host": "db.internal", "user": "app-user", "pass word": "s3cr3t-with space"}

	for _, tc := range []struct {
		name, open, read string
		// sdkOpen and sdkRead are "" where esc-sdk v0.14.0 decodes the
		// response, else a piece of the error it fails with.
		sdkOpen, sdkRead string
	}{
		{name: "before 2026-07-21", open: "open-before.json", read: "read-before.json"},
		{
			name: "since 2026-07-21: trace.def without environment", open: "open-before.json", read: "read-2026-07-21.json",
			// ESO's error in external-secrets#6682, verbatim.
			sdkRead: "no value given for required property environment",
		},
		{
			name: "unknown members at every level, required ones missing", open: "open-drift.json", read: "read-drift.json",
			sdkOpen: `json: unknown field "expiresAt"`,
			sdkRead: "no value given for required property trace",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apiURL := replay(t, reply{body: recorded(t, tc.open)}, reply{body: recorded(t, tc.read)})

			openErr, readErr := sdkOpenRead(apiURL)
			for _, sdk := range []struct {
				call, want string
				err        error
			}{{"OpenEnvironment", tc.sdkOpen, openErr}, {"ReadOpenEnvironment", tc.sdkRead, readErr}} {
				switch {
				case sdk.want == "" && sdk.err != nil:
					t.Errorf("esc-sdk's %s fails on this response: %v", sdk.call, sdk.err)
				case sdk.want != "" && (sdk.err == nil || !strings.Contains(sdk.err.Error(), sdk.want)):
					t.Errorf("esc-sdk's %s: got error %v, want one with %q (else this case proves nothing)", sdk.call, sdk.err, sdk.want)
				}
			}

			c := newClient(t, replayConfig(apiURL))
			ctx := context.Background()
			got := map[string]string{}
			for key := range want {
				v, _, err := c.GetSecret(ctx, backend.Ref{Key: key})
				if err != nil {
					t.Errorf("GetSecret(%q): %v", key, err)
					continue
				}
				got[key] = string(v)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("values read:\n got %v\nwant %v", got, want)
			}
			m, _, err := c.GetSecretMap(ctx, backend.Ref{Key: "app.db"})
			if err != nil {
				t.Fatalf("GetSecretMap(app.db): %v", err)
			}
			if got := asStrings(m); !reflect.DeepEqual(got, wantDB) {
				t.Errorf("GetSecretMap(app.db) = %v, want %v", got, wantDB)
			}
			if _, _, err := c.GetSecret(ctx, backend.Ref{Key: "app.db.nope"}); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("GetSecret(app.db.nope): got %v, want ErrNotFound", err)
			}
		})
	}
}

// Failed calls keep the HTTP status and the API's reason however the error
// body changes (esc-sdk replaces both by its decoding error), and a body
// that does not decode is never quoted.
func TestReplayedErrors(t *testing.T) {
	opened := reply{body: recorded(t, "open-before.json")}
	for _, tc := range []struct {
		name       string
		open, read reply
		// want are pieces of the backend's error; never must not be in it.
		want, never []string
		// sdkHides, when set, is missing from esc-sdk's error for the
		// same response.
		sdkHides string
	}{
		{
			name:     "401 with a member esc-sdk does not know",
			open:     reply{status: http.StatusUnauthorized, body: recorded(t, "error-401-drift.json")},
			want:     []string{`opening environment "` + org + `/apps/app"`, "401 Unauthorized", "No credentials provided or are invalid"},
			never:    []string{token},
			sdkHides: "401 Unauthorized",
		},
		{
			name:     "400 diagnostics whose range has no environment",
			open:     reply{status: http.StatusBadRequest, body: recorded(t, "error-400-2026-07-21.json")},
			want:     []string{"400 Bad Request", `imports[0]: environment "base/gone" not found`},
			sdkHides: "400 Bad Request",
		},
		{
			name: "404 of an expired session",
			open: opened,
			read: reply{status: http.StatusNotFound, body: []byte(`{"code":404,"message":"Open environment session not found","requestId":"r-1"}`)},
			want: []string{`reading environment "` + org + `/apps/app"`, "404 Not Found", "Open environment session not found"},
		},
		{
			name: "a read cut short",
			open: opened,
			read: reply{body: []byte(`{"properties":{"app":{"value":"hunter2-secret","secret":true,"trace":{`)},
			want: []string{`reading environment "` + org + `/apps/app"`, "not valid JSON"},
			// encoding/json's own error would quote a character of it.
			never: []string{"hunter2"},
		},
		{
			name: "a number where the properties belong",
			open: opened,
			read: reply{body: []byte(`{"properties":31415926}`)},
			want: []string{"another shape"},
			// encoding/json's own error quotes the number.
			never: []string{"31415926"},
		},
		{
			name: "an open without a session id",
			open: reply{body: []byte(`{"sessionId":"x","expiresAt":"2026-07-21T13:00:00Z"}`)},
			want: []string{"no session id"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apiURL := replay(t, tc.open, tc.read)
			err := newClient(t, replayConfig(apiURL)).Validate(context.Background())
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			if errors.Is(err, backend.ErrNotFound) {
				t.Errorf("a failed call must not look like a missing secret: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q contains %q", err, n)
				}
			}
			if tc.sdkHides != "" {
				sdkErr, readErr := sdkOpenRead(apiURL)
				if sdkErr == nil {
					sdkErr = readErr
				}
				if sdkErr == nil || strings.Contains(sdkErr.Error(), tc.sdkHides) {
					t.Errorf("esc-sdk's error %v keeps %q: this case proves nothing", sdkErr, tc.sdkHides)
				}
			}
		})
	}
}
