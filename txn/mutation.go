package txn

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation): each is a real class of transaction bug that the
// simulator's bank scenario must catch. (Reads without their uncertainty
// window break strict serializability, not the bank's totals: that one
// waits for the list-append workload's real-time checks, docs/txn.md.) Guarded by mutation.On; compiled
// out of every build without the orbit_mutations tag.
var (
	MutRefreshSkipped = mutation.Plant("refresh-skipped", mutation.Txn,
		"commits at a write timestamp above the read timestamp without refreshing the reads: a value read may have changed in between (lost updates, write skew)")
	MutReadsNotNoted = mutation.Plant("reads-not-noted", mutation.Txn,
		"records a read in the timestamp cache only once it has run, not as it arrives: a write evaluated while the read waits for earlier writes can land beneath it")
	MutResolveBeforeDecision = mutation.Plant("resolve-before-decision", mutation.Txn,
		"resolves a transaction's intents as committed before its record says so: a commit that then fails leaves some of its writes behind")
)
