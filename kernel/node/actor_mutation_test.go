//go:build orbit_mutations

package node

import (
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel/actor"
)

// TestReadRunsMutation: TestCopyOfAReadRunGetsItsReply bites.
func TestReadRunsMutation(t *testing.T) {
	mutation.Set(actor.MutReadRunsForgotten)
	defer mutation.Set("")
	if msg := copyOfAReadRunRan(t); msg == "" {
		t.Fatalf("%s planted, and the copy of a read run did not run again", actor.MutReadRunsForgotten)
	} else {
		t.Logf("caught: %s", msg)
	}
}
