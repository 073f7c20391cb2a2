package cluster

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation): a real class of placement bug that the simulator's
// cluster scenario must catch. Guarded by mutation.On; compiled out of
// every build without the orbit_mutations tag.
var (
	MutPlacesOnSilent = mutation.Plant("places-on-silent", mutation.Placement,
		"places replicas and leaderships on nodes it has not heard from lately, a dead one among them: ranges keep learners that never catch up")
)
