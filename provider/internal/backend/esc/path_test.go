package esc

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func name(n string) pathElem { return pathElem{name: n} }
func index(i int) pathElem   { return pathElem{index: i, isIndex: true} }

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		path    string
		want    []pathElem
		wantErr string
	}{
		{path: "a", want: []pathElem{name("a")}},
		{path: "app.db.user", want: []pathElem{name("app"), name("db"), name("user")}},
		{path: "list[0]", want: []pathElem{name("list"), index(0)}},
		{path: "list[12][3]", want: []pathElem{name("list"), index(12), index(3)}},
		{path: `app["pass word"]`, want: []pathElem{name("app"), name("pass word")}},
		{path: `["a.b"].c`, want: []pathElem{name("a.b"), name("c")}},
		{path: `a["say \"hi\""]`, want: []pathElem{name("a"), name(`say "hi"`)}},
		{path: `a["back\slash"]`, want: []pathElem{name("a"), name(`back\slash`)}},
		{path: `a[""]`, want: []pathElem{name("a"), name("")}},
		{path: `a["]"]`, want: []pathElem{name("a"), name("]")}},
		{path: `a["ключ"].emoji-🔑`, want: []pathElem{name("a"), name("ключ"), name("emoji-🔑")}},
		{path: "my-key/with:chars", want: []pathElem{name("my-key/with:chars")}},
		{path: "a.[0]", want: []pathElem{name("a"), index(0)}},  // tolerated, as by Pulumi
		{path: "a..b", want: []pathElem{name("a"), name("b")}},  // Pulumi's loose grammar
		{path: "a[-1]", want: []pathElem{name("a"), index(-1)}}, // parses; finds nothing
		{path: "a[+1]", want: []pathElem{name("a"), index(1)}},  // strconv.ParseInt accepts a sign
		{path: "a b", want: []pathElem{name("a b")}},            // spaces are part of a bare name
		{path: "a]b", want: []pathElem{name("a]b")}},            // so is a stray bracket
		{path: "esosync-contract-1a2b3c4d-flat", want: []pathElem{name("esosync-contract-1a2b3c4d-flat")}},
		{path: "", wantErr: "empty"},
		{path: ".a", wantErr: "start with a name or index"},
		{path: "a.", wantErr: "end with a name or index"},
		{path: `a["b`, wantErr: "missing closing quote"},
		{path: `a["b"`, wantErr: "missing closing bracket"},
		{path: `a["b"x]`, wantErr: "missing closing bracket"},
		{path: "a[0", wantErr: "missing closing bracket"},
		{path: "a[x]", wantErr: "invalid array index"},
		{path: "a[]", wantErr: "invalid array index"},
		{path: "a[*]", wantErr: "wildcard"},
	} {
		got, err := parsePath(tc.path)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parsePath(%q) = %v, %v; want an error containing %q", tc.path, got, err, tc.wantErr)
			}
		} else if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parsePath(%q) = %v, %v; want %v", tc.path, got, err, tc.want)
		}

		// The parser must agree with Pulumi's, which the ESC API and
		// `esc env get` use, except where a key cannot be what Pulumi
		// allows (empty, a wildcard).
		if tc.path == "" || strings.Contains(tc.path, "[*]") {
			continue
		}
		ref, refErr := resource.ParsePropertyPath(tc.path)
		if (refErr != nil) != (err != nil) {
			t.Errorf("parsePath(%q) error %v, Pulumi's parser %v", tc.path, err, refErr)
			continue
		}
		if refErr == nil && !reflect.DeepEqual(fromPulumi(ref), got) {
			t.Errorf("parsePath(%q) = %v, Pulumi's parser %v", tc.path, got, ref)
		}
	}
}

func fromPulumi(p resource.PropertyPath) []pathElem {
	var out []pathElem
	for _, e := range p {
		switch e := e.(type) {
		case string:
			out = append(out, name(e))
		case int:
			out = append(out, index(e))
		}
	}
	return out
}

func TestLookup(t *testing.T) {
	tree := map[string]any{
		"app":  map[string]any{"db": map[string]any{"user": "u", "pass word": "p"}},
		"list": []any{"zero", map[string]any{"x": 1.0}},
		"nil":  nil,
	}
	for _, tc := range []struct {
		path  string
		want  any
		found bool
	}{
		{"app.db.user", "u", true},
		{`app.db["pass word"]`, "p", true},
		{"list[1].x", 1.0, true},
		{"nil", nil, true},
		{"list[2]", nil, false},
		{"list[-1]", nil, false},
		{"list.x", nil, false}, // a name on an array
		{"app[0]", nil, false}, // an index on an object
		{"app.db.user.x", nil, false},
		{"nil.x", nil, false},
	} {
		elems, err := parsePath(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		got, found := lookup(tree, elems)
		if found != tc.found || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("lookup(%q) = %v, %v; want %v, %v", tc.path, got, found, tc.want, tc.found)
		}
	}
}

// render is ESO's GetByteValue over what the SDK decodes (float64 numbers).
func TestRender(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"plain string", "plain string"},
		{`{"json":"in a string"}`, `{"json":"in a string"}`}, // strings are never re-encoded
		{42.0, "42"},
		{3.5, "3.5"},
		{1e21, "1000000000000000000000"},
		{-0.25, "-0.25"},
		{true, "true"},
		{false, "false"},
		{nil, ""},
		{[]any{1.0, "two", true}, `[1,"two",true]`},
		{map[string]any{"b": 1.0, "a": map[string]any{"<": "&"}}, `{"a":{"\u003c":"\u0026"},"b":1}`}, // encoding/json, as in ESO
	} {
		got, err := render(tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("render(%#v) = %q, %v; want %q", tc.v, got, err, tc.want)
		}
	}
}

func TestProperty(t *testing.T) {
	v := map[string]any{
		"a.b": "literal",
		"a":   map[string]any{"b": "nested"},
		"l":   []any{"x", "y"},
		"n":   5.0,
	}
	for _, tc := range []struct {
		property string
		want     any
		wantErr  bool
	}{
		{"a.b", "literal", false}, // a literal member wins over a gjson path
		{"a", map[string]any{"b": "nested"}, false},
		{"l.1", "y", false},
		{"l.#", 2.0, false}, // gjson's array length, as the other providers allow
		{"n", 5.0, false},
		{"nope", nil, true},
		{"a.nope", nil, true},
	} {
		got, err := property(v, tc.property)
		if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("property(%q) = %#v, %v; want %#v (error %v)", tc.property, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), `"`+tc.property+`"`) {
			t.Errorf("property(%q): error %q does not name the property", tc.property, err)
		}
	}
	// Inside a string nothing is found, and the error does not quote it.
	_, err := property("s3cr3t-string-value", "x")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("property of a string: %v", err)
	}
}
