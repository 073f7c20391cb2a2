package session

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation), compiled out of every build without the
// orbit_mutations tag. The Redis scenario of the simulator must catch each.
var MutBlockedIgnoresGone = mutation.Plant("blocked-ignores-gone", mutation.Session,
	"a blocked BLPOP whose client went away is not woken, and its next step pops the element pushed after it left: an acknowledged element vanishes")
