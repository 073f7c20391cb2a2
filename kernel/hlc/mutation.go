package hlc

import "github.com/orbitkernel/orbit/internal/mutation"

// MutFollowsSteps is a planted bug for the mutation self-test (`make
// mutations`, internal/mutation), caught by the transaction scenarios
// whose coordinators run on the nodes whose clocks jump
// (sim.Plan.ClockJump). Guarded by
// mutation.On; compiled out of every build without the orbit_mutations
// tag.
var MutFollowsSteps = mutation.Plant("hlc-follows-steps", mutation.Clocks,
	"the hybrid logical clock follows every step of the wall clock: a node whose clock jumps ahead writes at timestamps no reader's uncertainty window reaches, acknowledged at once (stale reads), and its readings stay ahead after the jump is undone")
