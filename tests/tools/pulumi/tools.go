//go:build tools

// Package tools pins the pulumi CLI and the YAML language host so
// `go mod tidy` keeps them in this module's graph.
package tools

import (
	_ "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml"
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
