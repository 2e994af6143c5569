// Command pulumi-resource-esosync is the esosync Pulumi resource provider plugin.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/esosync/pulumi-esosync/provider"
)

// Memory: what the provider holds is mostly one request at a time (a
// 1,000-item ExternalSecretSet's inputs and state, decoded several times
// over by the gRPC and Pulumi layers), garbage a moment later. Go's default
// lets the heap grow to twice what is live before collecting, which put a
// refresh of such a set at 180 MiB resident; collecting at half again, with
// a soft limit, keeps it under 150 MiB for a few more GC cycles (`make
// bench` prints both). GOGC and GOMEMLIMIT still override.
const (
	gcPercent   = 50
	memoryLimit = 64 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	if err := provider.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
