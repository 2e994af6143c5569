// Command gensdk generates the esosync language SDKs from schema.json by
// calling Pulumi's codegen packages directly.
//
//	gensdk <nodejs|python|go> <schema.json> <out-dir>
//
// `pulumi package gen-sdk` cannot be used offline: in v3.259.0 it asks the
// official language plugins to do the generation, and those cannot be built
// from the module proxy. The output directory is replaced as a whole, so files
// the schema no longer produces do not linger.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"

	"github.com/blang/semver"
	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	"github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

const tool = "esosync-gensdk"

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gensdk <nodejs|python|go> <schema.json> <out-dir>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "gensdk:", err)
		os.Exit(1)
	}
}

func run(language, schemaPath, outDir string) error {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("%s: %w", schemaPath, err)
	}
	pkg, diags, err := schema.BindSpec(spec, noExternalPackages{}, schema.ValidationOptions{})
	if err != nil {
		return err
	}
	if diags.HasErrors() {
		return fmt.Errorf("%s: %s", schemaPath, diags.Error())
	}

	var files map[string][]byte
	switch language {
	case "nodejs":
		files, err = nodejs.GeneratePackage(tool, pkg, nil, nil, false, noExternalPackages{})
	case "python":
		files, err = python.GeneratePackage(tool, pkg, nil, noExternalPackages{})
	case "go":
		files, err = gogen.GeneratePackage(tool, pkg, nil)
		if err == nil {
			files["go.mod"], err = goMod(spec)
		}
	default:
		return fmt.Errorf("unknown language %q (want nodejs, python or go)", language)
	}
	if err != nil {
		return fmt.Errorf("generating %s SDK: %w", language, err)
	}

	if err := os.RemoveAll(outDir); err != nil {
		return err
	}
	for name, content := range files {
		path := filepath.Join(outDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("gensdk: wrote %d %s files to %s\n", len(files), language, outDir)
	return nil
}

// goMod makes the Go SDK its own module, rooted one level above the
// importBasePath package, so programs can use it through a replace.
func goMod(spec schema.PackageSpec) ([]byte, error) {
	var info struct {
		ImportBasePath string `json:"importBasePath"`
	}
	if err := json.Unmarshal(spec.Language["go"], &info); err != nil || info.ImportBasePath == "" {
		return nil, fmt.Errorf("schema: language.go.importBasePath is required for the Go SDK (%v)", err)
	}
	sdk, err := pulumiSDKVersion()
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("module %s\n\ngo 1.25\n\nrequire %s %s\n",
		path.Dir(info.ImportBasePath), pulumiSDKModule, sdk)), nil
}

const pulumiSDKModule = "github.com/pulumi/pulumi/sdk/v3"

// pulumiSDKVersion is the Go SDK the generated code is written against: the
// one this generator is linked with, so the tools module's go.mod decides.
func pulumiSDKVersion() (string, error) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", fmt.Errorf("gensdk was built without module information")
	}
	for _, dep := range info.Deps {
		if dep.Path == pulumiSDKModule {
			return dep.Version, nil
		}
	}
	return "", fmt.Errorf("gensdk is not linked with %s", pulumiSDKModule)
}

// noExternalPackages refuses every package reference: the esosync schema
// references no other Pulumi package, and resolving one would need plugins.
type noExternalPackages struct{}

func (noExternalPackages) LoadPackage(name string, _ *semver.Version) (*schema.Package, error) {
	return nil, fmt.Errorf("schema references external package %q, which gensdk does not load", name)
}

func (l noExternalPackages) LoadPackageV2(_ context.Context, d *schema.PackageDescriptor) (*schema.Package, error) {
	return l.LoadPackage(d.Name, nil)
}

func (noExternalPackages) LoadPackageReference(name string, _ *semver.Version) (schema.PackageReference, error) {
	return nil, fmt.Errorf("schema references external package %q, which gensdk does not load", name)
}

func (l noExternalPackages) LoadPackageReferenceV2(_ context.Context, d *schema.PackageDescriptor) (schema.PackageReference, error) {
	return l.LoadPackageReference(d.Name, nil)
}
