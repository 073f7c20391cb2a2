package txn

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation): each is a real class of transaction bug that the
// simulator's transaction scenarios (bank, txnkv) must catch. Guarded by mutation.On; compiled
// out of every build without the orbit_mutations tag.
var (
	MutRefreshSkipped = mutation.Plant("refresh-skipped", mutation.Txn,
		"commits at a write timestamp above the read timestamp without refreshing the reads: a value read may have changed in between (lost updates, write skew)")
	MutReadsNotNoted = mutation.Plant("reads-not-noted", mutation.Txn,
		"records a read in the timestamp cache only once it has run, not as it arrives: a write evaluated while the read waits for earlier writes can land beneath it")
	MutUncertaintyIgnored = mutation.Plant("uncertainty-ignored", mutation.Txn,
		"reads with no uncertainty window: a write acknowledged before the read began, at a timestamp from a clock ahead of the reader's, is missed")
	MutRecoveryAbortsCommitted = mutation.Plant("recovery-aborts-committed", mutation.Txn,
		"a push that finds the record committed aborts it anyway: a decision made twice, and the intents not yet resolved are lost")
	MutOnePhaseSkipsRefresh = mutation.Plant("one-phase-skips-refresh", mutation.Txn,
		"the one-range fast path commits above the transaction's read timestamp without asking it to refresh its reads first: lost updates")
	MutCommitSkipsAnIntent = mutation.Plant("commit-skips-an-intent", mutation.Txn,
		"commits with one of its writes never written as an intent (an error dropped on the way): the decision covers a write that never happens")
	MutResolveBeforeDecision = mutation.Plant("resolve-before-decision", mutation.Txn,
		"resolves a transaction's intents as committed before its record says so: a commit that then fails leaves some of its writes behind")
	MutHandoverSummaryLow = mutation.Plant("handover-summary-low", mutation.Txn,
		"a leader handing its range over summarizes its timestamp cache by the low-water mark it started with, not the reads it served: the next leader places writes beneath them")
	MutMergeSummaryDropped = mutation.Plant("merge-summary-dropped", mutation.Txn,
		"a merged range keeps its left-hand leader's timestamp cache without the right-hand range's summary: a write to the absorbed span lands beneath a read its own leader served")
	MutFutureReadsServed = mutation.Plant("future-reads-served", mutation.Txn,
		"a leaseholder serves a read at a timestamp above its clock: the read lies above what the next leaseholder's timestamp cache starts at, and a write lands beneath it")
	MutLockReadsStale = mutation.Plant("lock-reads-stale", mutation.Txn,
		"a locking read returns the key's value at the transaction's old read timestamp, not the newest one it locks: a write committed in between is lost")
	MutLockSkipsRefresh = mutation.Plant("lock-skips-refresh", mutation.Txn,
		"a locking read that lands above the read timestamp moves the timestamp there without refreshing the earlier reads: write skew")
	MutResolveStopsAtBatch = mutation.Plant("resolve-stops-at-batch", mutation.Txn,
		"a resolution that the leaseholder cut at its batch bound is taken as complete: the record is forgotten with intents left, and whoever meets them takes them for an aborted transaction's")
	MutCondensedSpanShort = mutation.Plant("condensed-span-short", mutation.Txn,
		"a record condensed to spans ends each span at its last key instead of just after it: garbage collection resolves all but that key's intent and forgets the record")
	// Class SQL: SQL's ROLLBACK TO SAVEPOINT is its only user (sqllist).
	MutRollbackToKeepsIntents = mutation.Plant("rollback-to-keeps-intents", mutation.SQL,
		"rolling back to a savepoint forgets the intents written since without removing them: the commit resolves them, and undone writes commit")
	// Class SQL: only ROLLBACK TO SAVEPOINT removes a live transaction's
	// lock (sqllist).
	MutLockReadUnnoted = mutation.Plant("lock-read-unnoted", mutation.SQL,
		"a locking read is not noted in the timestamp cache: once ROLLBACK TO SAVEPOINT removes the lock, a write lands beneath what the transaction read (G2)")
	MutChangesNotNoted = mutation.Plant("changes-not-noted", mutation.Txn,
		"an incremental backup's read (what changed since the last backup) is not noted in the timestamp cache: a transaction commits beneath it after it read, and neither it nor the next incremental (which starts above its time) holds that write")
	MutFinalizedBeforeDecision = mutation.Plant("finalized-before-decision", mutation.Txn,
		"a coordinator takes its commit for final as it sends the decision, not once the record says committed: when the record was aborted first, the DB's next transactions read its intents as committed values and resolve them as such in passing")
	MutLocalResolveUnwritten = mutation.Plant("local-resolve-unwritten", mutation.Txn,
		"a commit reports the intents in its record's range resolved without resolving them: the coordinator skips them and forgets the record, and whoever meets them takes them for an aborted transaction's")
)
