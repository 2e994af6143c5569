// Command pulumi-resource-esosync is the esosync Pulumi resource provider plugin.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/esosync/pulumi-esosync/provider"
)

func main() {
	if err := provider.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
