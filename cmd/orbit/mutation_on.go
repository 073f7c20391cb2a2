//go:build orbit_mutations

package main

import (
	"fmt"
	"os"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// A test-only build (go build -tags orbit_mutations) of the server plants
// the bug named by $ORBIT_MUTATION (internal/mutation), so that the Jepsen
// harness can show it catches it. Never shipped.
func plantedBug() string {
	name := os.Getenv("ORBIT_MUTATION")
	if _, ok := mutation.Lookup(name); name != "" && !ok {
		fmt.Fprintf(os.Stderr, "orbit serve: ORBIT_MUTATION=%q is not a planted bug (%v)\n", name, mutation.All())
		os.Exit(2)
	}
	mutation.Set(name)
	return name
}
