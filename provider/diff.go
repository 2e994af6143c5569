package provider

import (
	"reflect"
	"slices"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
)

// diffFields compares two input structs field by field (by their pulumi
// tags); fields listed in replace force a replacement, fields in ignore
// never differ.
func diffFields(olds, news any, replace []string, ignore ...string) map[string]p.PropertyDiff {
	d := map[string]p.PropertyDiff{}
	ov, nv := reflect.ValueOf(olds), reflect.ValueOf(news)
	t := ov.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("pulumi"), ",")
		if name == "" || slices.Contains(ignore, name) {
			continue
		}
		if reflect.DeepEqual(normalize(ov.Field(i).Interface()), normalize(nv.Field(i).Interface())) {
			continue
		}
		kind := p.Update
		if slices.Contains(replace, name) {
			kind = p.UpdateReplace
		}
		d[name] = p.PropertyDiff{Kind: kind, InputDiff: true}
	}
	return d
}

// normalize treats nil and empty maps and slices alike.
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice:
		if rv.Len() == 0 {
			return nil
		}
	}
	return v
}

// diffResponse deletes before replacing: two ESO objects of one name
// cannot coexist.
func diffResponse(d map[string]p.PropertyDiff) infer.DiffResponse {
	replace := false
	for _, pd := range d {
		replace = replace || pd.Kind == p.UpdateReplace
	}
	return infer.DiffResponse{HasChanges: len(d) > 0, DetailedDiff: d, DeleteBeforeReplace: replace}
}
