//go:build orbit_mutations

package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/orbitkernel/orbit/consensus"
)

// A test-only build (go build -tags orbit_mutations) of the server plants
// the consensus bug named by $ORBIT_MUTATION (consensus.Mutations), so that
// the Jepsen harness can show it catches it. Never shipped.
func plantedBug() string {
	name := os.Getenv("ORBIT_MUTATION")
	if name != "" && !slices.Contains(consensus.Mutations, name) {
		fmt.Fprintf(os.Stderr, "orbit serve: ORBIT_MUTATION=%q is not a planted bug (%v)\n", name, consensus.Mutations)
		os.Exit(2)
	}
	consensus.SetMutation(name)
	return name
}
