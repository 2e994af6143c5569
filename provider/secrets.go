package provider

import (
	"context"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
)

// infer re-encodes the inputs a Read returns without the secret marks of
// nested fields: a `pulumi refresh` of a store whose credential is a
// Pulumi secret (`value: ${secretConfig}`) wrote that credential into the
// state's inputs in plain text. keepReadSecrets wraps Read so that every
// value that was secret in the request stays secret in the response, at
// the same path, in the inputs and in the state.
func keepReadSecrets(prov p.Provider) p.Provider {
	read := prov.Read
	if read == nil {
		return prov
	}
	prov.Read = func(ctx context.Context, req p.ReadRequest) (p.ReadResponse, error) {
		resp, err := read(ctx, req)
		resp.Inputs = secretLike(property.New(req.Inputs), property.New(resp.Inputs)).AsMap()
		resp.Properties = secretLike(property.New(req.Properties), property.New(resp.Properties)).AsMap()
		return resp, err
	}
	return prov
}

// secretLike returns out with every value marked secret whose path is
// secret in in.
func secretLike(in, out property.Value) property.Value {
	if in.Secret() && !out.Secret() {
		out = out.WithSecret(true)
	}
	switch {
	case in.IsMap() && out.IsMap():
		ins, outs := in.AsMap(), out.AsMap().AsMap()
		for k, o := range outs {
			if i, ok := ins.GetOk(k); ok {
				outs[k] = secretLike(i, o)
			}
		}
		return property.New(property.NewMap(outs)).WithSecret(out.Secret())
	case in.IsArray() && out.IsArray():
		ins, outs := in.AsArray().AsSlice(), out.AsArray().AsSlice()
		for n := range min(len(ins), len(outs)) {
			outs[n] = secretLike(ins[n], outs[n])
		}
		return property.New(property.NewArray(outs)).WithSecret(out.Secret())
	}
	return out
}
