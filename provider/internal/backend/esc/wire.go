package esc

// Tolerant decoding of the ESC API's responses.
//
// The esc-sdk's generated models decode strictly: OpenEnvironment, Value,
// Range, Pos and Error reject a body that lacks a property the OpenAPI spec
// marks required ("no value given for required property …") and, through
// DisallowUnknownFields, one that carries a property the spec does not
// know. So any change the API makes to its responses breaks every client
// already deployed. It happened on 2026-07-21: the API stopped writing
// trace.def.environment (pulumi/esc's own Range marks it omitempty), and
// every read through esc-sdk v0.14.0, ESO's pulumi provider in all its
// versions included, failed with "no value given for required property
// environment" (external-secrets#6682, pulumi/esc-sdk#140,
// pulumi/pulumi#24007).
//
// So the SDK still builds and sends each request (URL, token, headers, its
// HTTP client), but the backend ignores the SDK's decoding and its error,
// and decodes the body itself with encoding/json into the few members it
// uses. Unknown members are skipped, missing ones take their zero value,
// and the Content-Type is not consulted.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	escsdk "github.com/pulumi/esc-sdk/sdk/go"
)

// wireOpen is the part of an OpenEnvironment response the backend uses.
// The API also sends diagnostics, which the backend never used.
type wireOpen struct {
	ID string `json:"id"`
}

// wireEnvironment is the part of a ReadOpenEnvironment response the backend
// uses. Properties are left as generic JSON values, still wrapped, for
// unwrapping by hand: exprs, schema, executionContext and whatever the API
// adds are skipped, however their shape changes.
type wireEnvironment struct {
	Properties map[string]any `json:"properties"`
}

// wireError is an error body: the API's Error ({code, message}) or, for an
// environment that does not evaluate, its EnvironmentDiagnostics. One
// struct reads both, whatever the status, because the API sends both
// members on a 400 and the SDK's choice by status is a guess.
type wireError struct {
	Message     string           `json:"message"`
	Diagnostics []wireDiagnostic `json:"diagnostics"`
}

// wireDiagnostic is the part of an EnvironmentDiagnostic an error names. Its
// range, whose environment the API stopped sending, is skipped.
type wireDiagnostic struct {
	Summary string `json:"summary"`
	Path    string `json:"path"`
}

// responseBody returns the body of the response an esc-sdk Execute got.
// The SDK reads the body and puts it back on resp, so the body is there
// whether or not the SDK's strict decoding succeeded; the SDK's error is
// only used when there is no response to judge (the request was not sent,
// the transport failed, or the body could not be read). A status of 300
// or more is an error built from the status and the body, as the SDK does.
func (c *Client) responseBody(what string, resp *http.Response, err error) ([]byte, error) {
	var g *escsdk.GenericOpenAPIError
	if resp == nil || (err != nil && !errors.As(err, &g)) {
		if err == nil {
			err = errors.New("the API sent no response")
		}
		return nil, fmt.Errorf("esc: %s environment %q: %w", what, c.envName(), err)
	}
	var body []byte
	if resp.Body != nil {
		b, rerr := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if rerr != nil {
			return nil, fmt.Errorf("esc: %s environment %q: reading the response: %w", what, c.envName(), rerr)
		}
		body = b
	}
	if resp.StatusCode >= 300 {
		return nil, c.statusError(what, resp, body)
	}
	return body, nil
}

// statusError describes a failed call by its HTTP status (as the SDK's
// error did: "401 Unauthorized", which users and tests match on) and the
// API's reason read leniently from the body: its diagnostics, else its
// message. Neither ever holds a value of the environment or the token; a
// body that does not decode is left out rather than quoted.
func (c *Client) statusError(what string, resp *http.Response, body []byte) error {
	status := resp.Status
	if status == "" {
		status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	var e wireError
	// Best effort: encoding/json fills what it can before a type error,
	// and a reason is only a help.
	_ = json.Unmarshal(body, &e)
	var sums []string
	for _, d := range e.Diagnostics {
		if d.Summary == "" {
			continue
		}
		s := d.Summary
		if d.Path != "" {
			s = d.Path + ": " + s
		}
		sums = append(sums, s)
	}
	reason := strings.Join(sums, "; ")
	if reason == "" {
		reason = e.Message
	}
	if reason == "" {
		return fmt.Errorf("esc: %s environment %q: %s", what, c.envName(), status)
	}
	return fmt.Errorf("esc: %s environment %q: %s (%s)", what, c.envName(), status, reason)
}

// malformed describes a successful response whose body is not JSON of the
// expected shape. It quotes neither the body nor encoding/json's error,
// which can quote a piece of it (a character, or a number literal) and so
// a secret.
func (c *Client) malformed(what string, body []byte, err error) error {
	detail := "JSON of another shape than the ESC API's"
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		detail = fmt.Sprintf("not valid JSON (at byte %d)", syn.Offset)
	}
	return fmt.Errorf("esc: %s environment %q: the API's response (%d bytes) is %s", what, c.envName(), len(body), detail)
}

// decodeOpen returns the session id of an OpenEnvironment response, ""
// when the body has none. An empty body is no id, as it is for the SDK.
func decodeOpen(body []byte) (string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", nil
	}
	var o wireOpen
	if err := json.Unmarshal(body, &o); err != nil {
		return "", err
	}
	return o.ID, nil
}

// decodeEnvironment returns the evaluated properties of a
// ReadOpenEnvironment response as plain values (map[string]any, []any,
// string, float64, bool, nil), the numbers as float64 like the SDK's own
// decoding. An empty body is an environment without properties, as it is
// for the SDK.
//
// Each property is one of the API's values ({"value":…,"secret":…,
// "unknown":…,"trace":…}); the spec guarantees that at the top, so any
// object there is taken apart as one, whichever members it lacks or adds.
// A secret arrives in the clear with "secret": true and is read like any
// other value.
func decodeEnvironment(body []byte) (map[string]any, error) {
	tree := map[string]any{}
	if len(bytes.TrimSpace(body)) == 0 {
		return tree, nil
	}
	var env wireEnvironment
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	for k, v := range env.Properties {
		if m, ok := v.(map[string]any); ok {
			tree[k] = plain(m["value"]) // no "value" is null
		} else {
			tree[k] = plain(v)
		}
	}
	return tree, nil
}

// plain strips the API's value wrappers from the inside of a value: members
// of objects and elements of arrays arrive wrapped.
func plain(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = unwrap(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = unwrap(e)
		}
		return out
	default:
		return v
	}
}

// unwrap takes one wrapped value apart; anything that is not a wrapper is
// taken as already plain.
func unwrap(v any) any {
	if m, ok := v.(map[string]any); ok && isWrapper(m) {
		return plain(m["value"]) // no "value" is null
	}
	return plain(v)
}

// isWrapper tells the API's value wrapper from a plain object. The SDK
// (and this backend before) required both "value" and "trace", but the
// API's own Value (pulumi/esc) omits "value" when it is null, and a later
// API may drop "trace" or add members beside them. So a wrapper is an
// object with a "trace" that is an object (or null), whatever else it
// has, or one with a "value" and nothing beside it but the wrapper's
// flags.
func isWrapper(m map[string]any) bool {
	if t, ok := m["trace"]; ok {
		switch t.(type) {
		case map[string]any, nil:
			return true
		}
	}
	if _, ok := m["value"]; !ok {
		return false
	}
	for k := range m {
		switch k {
		case "value", "secret", "unknown":
		default:
			return false
		}
	}
	return true
}
