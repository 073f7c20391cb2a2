package consensus

// Planted bugs for the mutation self-test (`make mutations`): each is a real
// class of consensus bug that the simulator must catch. They exist only in
// builds with the orbit_mutations tag; in every other build Mutated is a
// constant false and the compiler removes the bug paths.
//
// The names, and what each one breaks:
const (
	// MutLocalReads serves reads from any replica's local state, without
	// ReadIndex: stale reads.
	MutLocalReads = "local-reads"
	// MutAckBeforeSync persists Raft state without syncing it: a write can
	// be acknowledged, then lost by crashes.
	MutAckBeforeSync = "ack-before-sync"
	// MutSendBeforePersist sends a Ready's messages before its entries and
	// hard state are durable.
	MutSendBeforePersist = "send-before-persist"
	// MutApplyBeforeCommit applies entries as soon as they are appended,
	// before a quorum has them.
	MutApplyBeforeCommit = "apply-before-commit"
	// MutForgetVote never persists the vote: after a restart a node can vote
	// twice in one term.
	MutForgetVote = "forget-vote"
	// MutApplyRetriesTwice skips the client table: a retried write applies
	// again.
	MutApplyRetriesTwice = "apply-retries-twice"
	// MutPrivateRoutes gives every client a router of its own that no other
	// client and no local replica teaches: each learns of a lost leader
	// only by timing out on it (availability, not safety).
	MutPrivateRoutes = "private-routes"
	// MutUnboundedBatches sends everything a cycle has for a node in one
	// network message, repeated appends included (the 50 MB batches of
	// issue 11).
	MutUnboundedBatches = "unbounded-batches"
	// MutNoHealthTransfer never moves leadership off a slow leader.
	MutNoHealthTransfer = "no-health-transfer"
)

// Mutations lists every planted bug.
var Mutations = []string{MutLocalReads, MutAckBeforeSync, MutSendBeforePersist, MutApplyBeforeCommit, MutForgetVote, MutApplyRetriesTwice, MutPrivateRoutes, MutUnboundedBatches, MutNoHealthTransfer}
