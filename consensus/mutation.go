package consensus

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation): each is a real class of consensus bug that the
// simulator must catch. Guarded by mutation.On; compiled out of every build
// without the orbit_mutations tag.
var (
	MutLocalReads = mutation.Plant("local-reads", mutation.Consensus,
		"serves reads from any replica's local state, without ReadIndex: stale reads")
	MutAckBeforeSync = mutation.Plant("ack-before-sync", mutation.Consensus,
		"persists Raft state without syncing it: an acknowledged write can be lost by crashes")
	MutSendBeforePersist = mutation.Plant("send-before-persist", mutation.Consensus,
		"sends a Ready's messages before its entries and hard state are durable")
	MutApplyBeforeCommit = mutation.Plant("apply-before-commit", mutation.Consensus,
		"applies entries as soon as they are appended, before a quorum has them")
	MutForgetVote = mutation.Plant("forget-vote", mutation.Consensus,
		"never persists the vote: after a restart a node can vote twice in one term")
	MutClockNeverFenced = mutation.Plant("clock-never-fenced", mutation.Clocks,
		"the clock-offset check never fences the node's clock: a node that starts with its clock a jump away hands out transaction timestamps its peers refuse or, on the ranges it leads, takes its own")
	MutStepTakenOnAnyWord = mutation.Plant("step-taken-on-any-word", mutation.Clocks,
		"the clock-offset check takes a step of the wall clock that its clock did not follow whenever enough peers' wall clocks are near, even when its clock agrees with every peer's: two nodes of three whose wall clocks step the same way at once carry the cluster's timestamps a step ahead of real time, and the third node refuses them")
	MutStepTakenOnWallsAlone = mutation.Plant("step-taken-on-walls-alone", mutation.Clocks,
		"the clock-offset check takes a step of the wall clock when an outvoted clock's wall clock is near enough peers' wall clocks, without asking whether their clocks are near it: a node whose wall clock shares a step with a peer's, outvoted at that moment by drift, takes the step and hands out timestamps its peers refuse until real time catches up")
	MutStepLeftBehind = mutation.Plant("step-left-behind", mutation.Clocks,
		"the clock-offset check takes a step of the wall clock only when outvoted or when the wall clock is near more peers' wall clocks than the clock is near their clocks, never because the step brings the clock nearer their clocks: a clock that ran slow within the fence of every peer stays behind true time after its wall clock comes back, and clients whose clocks keep true time are refused")
	MutFencedClocksVote = mutation.Plant("fenced-clocks-vote", mutation.Clocks,
		"the clock-offset check counts the clocks of fenced peers like any other: two nodes restarted while their wall clocks were stepped the same way vouch for each other, outvote the node that kept the cluster's time, and carry the cluster's timestamps the step ahead")
	MutFencedLeaderStamps = mutation.Plant("fenced-leader-stamps", mutation.RedisTxn,
		"a leader whose clock is fenced (not checked yet, or too far from its peers') still evaluates commands and queries: a node restarted a jump ahead stamps a Redis range's clock far into the future, and its locks look new (and its keys expire early) until real time catches up")
	MutLeaseNeverExpires = mutation.Plant("lease-never-expires", mutation.Consensus,
		"a leader keeps serving reads under its lease after it has run out")
	MutLeaseViewKept = mutation.Plant("lease-view-kept", mutation.LeasedReads,
		"a leaseholder never withdraws the lease it published for reads off the driver: when leadership moves or the range changes, its node's clients read their own copy until the view runs out")
	MutPagedViewKept = mutation.Plant("paged-view-kept", mutation.LeasedReads,
		"a leaseholder whose Raft hands out only part of what is committed keeps its lease view: a split past the page, applied at once by the followers, lets the right-hand range elect a leader and take writes while the lagging leader's clients still read that span here")
	MutUncheckedEvaluation = mutation.Plant("unchecked-evaluation", mutation.Consensus,
		"applies an entry's effects without checking it was evaluated after the last entry applied: a write evaluated on top of a lost one applies what it read there")
	MutFollowerReevaluates = mutation.Plant("follower-reevaluates", mutation.StateMachine,
		"followers execute each write again as they apply it, with their own clock and randomness, instead of applying the leader's effects")
	MutApplyRetriesTwice = mutation.Plant("apply-retries-twice", mutation.Client,
		"skips the client table: a retried write applies again")
	MutTimeoutNotApplied = mutation.Plant("timeout-not-applied", mutation.Client,
		"reports a write whose attempts timed out or were refused as not applied, though a leader may have proposed it (or a copy the network delivers again)")
	MutRetryNewSeq = mutation.Plant("retry-new-seq", mutation.Client,
		"numbers each attempt of a write afresh, so the range cannot tell a retry from a new write")
	MutStableClientID = mutation.Plant("stable-client-id", mutation.Client,
		"derives a client's ID from its node and name, so a restarted client reuses its old identity with its sequence numbers starting over")
	MutSnapshotKeepsOldData = mutation.Plant("snapshot-keeps-old-data", mutation.Snapshot,
		"installs a snapshot over the replica's existing data without clearing the range first: keys deleted while it lagged survive")
	MutStaleSnapshotView = mutation.Plant("stale-snapshot-view", mutation.Snapshot,
		"keeps the previous snapshot's view when a newer snapshot is recorded: a follower gets old data under a newer index")
	MutPrivateRoutes = mutation.Plant("private-routes", mutation.Availability,
		"gives every client a router of its own that no other client and no local replica teaches: each learns of a lost leader only by timing out on it")
	MutUnboundedBatches = mutation.Plant("unbounded-batches", mutation.Availability,
		"sends everything a cycle has for a node in one network message, repeated appends included (the 50 MB batches of issue 11)")
	MutSplitDropsWrites = mutation.Plant("split-drops-writes", mutation.Split,
		"takes writes at or after the split key while the split is in flight, and acknowledges them though the left-hand range drops them as it applies them after the split")
	MutSplitForgetsClients = mutation.Plant("split-forgets-clients", mutation.Split,
		"starts the right-hand range of a split with an empty client table: a write retried across the split applies twice")
	MutMergeForgetsClients = mutation.Plant("merge-forgets-clients", mutation.Split,
		"merges a range into its left neighbour without its client table: a write retried across the merge applies twice")
	MutStaleRangeAccepted = mutation.Plant("stale-range-accepted", mutation.Split,
		"serves a request routed to a range that no longer holds its key (a stale range cache entry), without checking the range's current span")
	MutTransferUnpersisted = mutation.Plant("transfer-unpersisted", mutation.Availability,
		"a hand-over asks Raft for the transfer as soon as the voter holds the persisted log, though the summaries' entry proposed in the same step is not persisted yet: Raft sends the entry first, waits a round trip for it, gives the transfer up after its election timeout, and a leader whose links are slower than that keeps its range")
	MutNoHealthTransfer = mutation.Plant("no-health-transfer", mutation.Availability,
		"never moves leadership off a slow leader")
	MutUnpacedElections = mutation.Plant("unpaced-elections", mutation.Availability,
		"a replica whose links to a quorum are slower than its election timeout keeps Raft's full-speed election timer: it campaigns again before its votes come back, raising the healthy voters' terms and restarting their timers, and a range stays leaderless behind a slow node")
	MutMetaKeepsOverlapped = mutation.Plant("meta-keeps-overlapped", mutation.Split,
		"publishes a range's descriptor to the meta range without deleting the older entries it overlaps: the index keeps ranges a split or a merge replaced")
)

// Pinned scans (pinned.go), caught by the redistxn scenario's backup audits.
var MutPinnedLive = mutation.Plant("pinned-pages-live", mutation.RedisTxn,
	"a pinned scan's later pages are read from the live engine, not from the view its first page pinned: a range's backup holds writes applied between its pages, half a MULTI/EXEC among them")

// MutSplitUnsynced leaves a split's apply batch unsynced (store.go). The
// redistxn scenario caught it only at seed 79, where the real bug was
// found, until 2026-12-07 moved that seed's trace; the transcript
// testdata/transcripts/12_split_durable.txt pins it down.
var MutSplitUnsynced = mutation.Plant("split-unsynced", mutation.RedisTxn,
	"a split is applied without a sync: a crash after the new range's replica answered its leader's probe leaves that leader counting on a log the node lost, and the node panics on the next heartbeat")
