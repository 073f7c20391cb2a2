package storage

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation). Guarded by mutation.On; compiled out of every build
// without the orbit_mutations tag.
var (
	MutCacheIgnoresOverwrite = mutation.Plant("cache-ignores-overwrite", mutation.Storage,
		"the entry cache takes only appends at its tail: entries that replace a conflicting suffix reach Pebble but the cache keeps the old ones")
	MutLocalCacheMissesEffects = mutation.Plant("local-cache-misses-effects", mutation.Storage,
		"a batch's cache of its own range-local writes is not told of the effects applied in it: a read after them returns the batch's earlier write of the key")
	MutGCDropsNewest = mutation.Plant("gc-drops-newest", mutation.Txn,
		"garbage collection removes every version at or below its threshold, the newest one too: a key not written since vanishes")
	MutReadsUncommitted = mutation.Plant("reads-uncommitted-intent", mutation.Txn,
		"an MVCC read takes another transaction's intent at or below its timestamp as the value, instead of reporting the conflict: a dirty read")
)
