package esc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// pathElem is one step of an ESC property path: a member name or an array
// index.
type pathElem struct {
	name    string
	index   int
	isIndex bool
}

// parsePath parses ESC's property path syntax, the syntax the ESC API's
// ?property= parameter, `esc env get` and ESO's remote keys use (Pulumi's
// resource.ParsePropertyPath, non-strict):
//
//	app.db.user         names, separated by dots
//	app.db["pass word"] a quoted name: any characters, \" for a quote
//	list[0]             an array index
//	a.[0]               tolerated like Pulumi does (a dot before a bracket)
//
// A bare name runs up to the next '.' or '[', so "my-key/with:chars" is
// one name. The wildcard [*] parses in Pulumi but selects nothing here,
// because a key must name one value.
func parsePath(path string) ([]pathElem, error) {
	if path == "" {
		return nil, errors.New("the path is empty")
	}
	if path[0] == '.' {
		return nil, errors.New("expected property path to start with a name or index")
	}
	var elems []pathElem
	for len(path) > 0 {
		switch path[0] {
		case '.':
			path = path[1:]
			if len(path) == 0 {
				return nil, errors.New("expected property path to end with a name or index")
			}
		case '[':
			if len(path) > 1 && path[1] == '"' {
				var name strings.Builder
				i := 2
				for {
					if i >= len(path) {
						return nil, errors.New("missing closing quote in property name")
					}
					if path[i] == '"' {
						i++
						break
					}
					if path[i] == '\\' && i+1 < len(path) && path[i+1] == '"' {
						name.WriteByte('"')
						i += 2
						continue
					}
					name.WriteByte(path[i])
					i++
				}
				if i >= len(path) || path[i] != ']' {
					return nil, errors.New("missing closing bracket in property access")
				}
				elems = append(elems, pathElem{name: name.String()})
				path = path[i+1:]
				continue
			}
			end := strings.IndexByte(path, ']')
			if end == -1 {
				return nil, errors.New("missing closing bracket in array index")
			}
			segment := path[1:end]
			if segment == "*" {
				return nil, errors.New("the wildcard [*] does not name a single value")
			}
			n, err := strconv.ParseInt(segment, 10, 0)
			if err != nil {
				return nil, fmt.Errorf("invalid array index %q", segment)
			}
			elems = append(elems, pathElem{index: int(n), isIndex: true})
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end == -1 {
				end = len(path)
			}
			elems = append(elems, pathElem{name: path[:end]})
			path = path[end:]
		}
	}
	return elems, nil
}

// lookup follows elems through a plain tree. A name on a non-object, an
// index on a non-array or an index out of range finds nothing, as the API
// finds nothing for such a property.
func lookup(tree map[string]any, elems []pathElem) (any, bool) {
	var cur any = tree
	for _, e := range elems {
		if e.isIndex {
			a, ok := cur.([]any)
			if !ok || e.index < 0 || e.index >= len(a) {
				return nil, false
			}
			cur = a[e.index]
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[e.name]; !ok {
			return nil, false
		}
	}
	return cur, true
}
