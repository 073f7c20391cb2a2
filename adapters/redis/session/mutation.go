package session

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation), compiled out of every build without the
// orbit_mutations tag. The Redis scenario of the simulator must catch each.
var MutBlockedIgnoresGone = mutation.Plant("blocked-ignores-gone", mutation.Session,
	"a blocked BLPOP whose client went away is not woken, and its next step pops the element pushed after it left: an acknowledged element vanishes")

var MutUnblockCancelsStep = mutation.Plant("unblock-cancels-step", mutation.Session,
	"CLIENT UNBLOCK ends a blocked command's step under way too, and answers as unblocked: an element the step took is neither returned nor left in the list")

// Cross-range transactions (txn.go), caught by the redistxn scenario.
var (
	MutSettleAbortsCommitted = mutation.Plant("settle-aborts-committed", mutation.RedisTxn,
		"whoever settles a lock left by a dead coordinator resolves it as aborted without reading the decision: a committed transaction loses its writes in that range")
	MutDecisionOverwritten = mutation.Plant("decision-overwritten", mutation.RedisTxn,
		"the decision is written without looking for one already there: a settler's abort and the coordinator's commit both stand, and the ranges resolve differently")
	MutSweepAgeInMicros = mutation.Plant("sweep-age-in-micros", mutation.RedisTxn,
		"the lock sweeper reads a lock's age (milliseconds) as microseconds: no lock is ever old enough, and a dead coordinator's lock on a key nobody touches stays for good")
)
