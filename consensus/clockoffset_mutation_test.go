//go:build orbit_mutations

package consensus

import (
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// TestClockMutations: TestRestartsUnderASharedStepKeepTheTrustedTime,
// TestAStepSharedWithAPeerIsNoCorrection and
// TestAClockLeftBehindTakesItsCorrection bite. No simulator scenario
// restarts a quorum under a shared step of their wall clocks while the
// third node stays up; a shared step that meets an outvoted clock is
// rare in the swarm (sim/mutation_test.go, outsideTheSweep).
func TestClockMutations(t *testing.T) {
	mutation.Bites(t, MutFencedClocksVote, func() string { return restartsUnderASharedStep(t) })
	mutation.Bites(t, MutStepTakenOnWallsAlone, func() string { return stepSharedWithAPeer(t) })
	mutation.Bites(t, MutStepLeftBehind, func() string { return clockLeftBehind(t) })
}
