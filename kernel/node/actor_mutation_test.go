//go:build orbit_mutations

package node

import (
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel/actor"
)

// TestReadRunsMutation: TestCopyOfAReadRunGetsItsReply bites.
func TestReadRunsMutation(t *testing.T) {
	mutation.Bites(t, actor.MutReadRunsForgotten, func() string { return copyOfAReadRunRan(t) })
}
