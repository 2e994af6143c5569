package provider

import (
	"reflect"

	"github.com/pulumi/pulumi-go-provider/infer"
)

// wireMirrored makes each input the state mirrors (its embedded args)
// depend on itself. Without it an explicitly wired resource would write a
// mirrored input that holds a Pulumi secret (a credential's `value`) into
// the state in plain text: infer marks an output secret from its
// dependencies, and an unwired one has none. args and mirrored point at
// the same struct type.
func wireMirrored(f infer.FieldSelector, args, mirrored any) {
	in, out := reflect.ValueOf(args).Elem(), reflect.ValueOf(mirrored).Elem()
	for i := range in.NumField() {
		f.OutputField(out.Field(i).Addr().Interface()).DependsOn(f.InputField(in.Field(i).Addr().Interface()))
	}
}
