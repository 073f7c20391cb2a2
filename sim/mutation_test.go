//go:build orbit_mutations

package sim

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/consensus"
)

// availabilityMutations break liveness, not safety: the availability
// scenario catches them.
var availabilityMutations = []string{consensus.MutPrivateRoutes, consensus.MutNoHealthTransfer, consensus.MutUnboundedBatches}

// TestMutationsAreCaught plants each consensus bug in turn (consensus/
// mutation.go) and requires the replicated KV scenario to catch it within
// 300 seeds. Run it with `make mutations` (ORBIT_MUTATION=name runs one).
func TestMutationsAreCaught(t *testing.T) {
	defer consensus.SetMutation("")
	const maxSeeds, chunk = 300, 10
	for _, m := range consensus.Mutations {
		if only := os.Getenv("ORBIT_MUTATION"); only != "" && only != m {
			continue
		}
		consensus.SetMutation(m)
		sc := kvScenario
		if slices.Contains(availabilityMutations, m) {
			sc = availScenario
		}
		start := time.Now()
		var caught *Result
		for first := uint64(1); first <= maxSeeds && caught == nil; first += chunk {
			for _, r := range sweep(sc, seedRange(first, chunk)) {
				if r.Err != nil {
					caught = r
					break
				}
			}
		}
		if caught == nil {
			t.Errorf("mutation %s survived %d seeds", m, maxSeeds)
			continue
		}
		msg := strings.SplitN(caught.Err.Error(), "\n", 2)[0]
		fmt.Printf("mutation %-20s caught at seed %3d after %5.1fs wall: %s: %s\n", m, caught.Seed, time.Since(start).Seconds(), caught.Phase, msg)
	}
}
