//go:build orbit_mutations

package consensus

import (
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// TestHandOverMutations: TestHandOverOverSlowLinks bites. The simulator's
// availability scenario slows leaders whose machines keep no hand-over
// summaries, and the transaction scenarios, whose machines do, slow no
// leader's every link for long (sim/mutation_test.go, outsideTheSweep).
func TestHandOverMutations(t *testing.T) {
	mutation.Bites(t, MutTransferUnpersisted, func() string { return handOverOverSlowLinks(t) })
}
