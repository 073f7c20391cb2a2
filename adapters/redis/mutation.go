package redis

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation): each is a few-line mistake in the Redis state machine
// of a kind a reviewer could miss, guarded by mutation.On where it lives and
// compiled out of every build without the orbit_mutations tag. The Redis
// scenario of the simulator must catch each (sim/redis_families_test.go
// sends the commands that reach them).
var (
	MutCountsExpired = mutation.Plant("counts-expired", mutation.StateMachine,
		"DBSIZE and INFO keyspace count keys whose time to live ran out but which no sweep deleted yet: DBSIZE disagrees with KEYS and SCAN (sim/redis_walks_test.go)")
	MutPcallDropsErrors = mutation.Plant("pcall-drops-errors", mutation.StateMachine,
		"redis.pcall hands a script nil instead of the error table when the command fails: the script goes on as if the command had found nothing")
	MutDelLeavesElements = mutation.Plant("del-leaves-elements", mutation.StateMachine,
		"DEL deletes a key's metadata record but not its element records: the key comes back with its old fields or members on the next write")
	MutLazyExpiryLeavesElements = mutation.Plant("lazy-expiry-leaves-elements", mutation.StateMachine,
		"a write meeting an expired key deletes only its metadata record: an expired collection's elements come back on the next write")
	MutExecErrorAborts = mutation.Plant("exec-error-aborts", mutation.StateMachine,
		"a command failing inside EXEC (WRONGTYPE) ends the block with its error: the commands after it never run and the client gets no array")
	MutWatchDigestMetaOnly = mutation.Plant("watch-digest-meta-only", mutation.StateMachine,
		"a WATCH digest covers only the metadata record: a write that changes a collection's elements but not its size does not invalidate the WATCH")
	MutPersistNotSaved = mutation.Plant("persist-not-saved", mutation.StateMachine,
		"PERSIST answers 1 but never writes the cleared TTL: the key still expires")
	MutSetKeepsTTL = mutation.Plant("set-keeps-ttl", mutation.StateMachine,
		"a plain SET over a key keeps the key's old TTL (Redis discards it): the new value expires with the old deadline")
	MutIncrSeesExpired = mutation.Plant("incr-sees-expired", mutation.StateMachine,
		"INCR reads its counter straight from the record, expired or not: it counts on from a value that has expired")
	MutLRemIgnoresCount = mutation.Plant("lrem-ignores-count", mutation.StateMachine,
		"LREM with a count removes every occurrence instead of the first (or last) count of them")
	MutDatabaseIgnored = mutation.Plant("database-ignored", mutation.StateMachine,
		"the database view drops the database marker: every SELECTed database reads and writes database 0's keys")
	MutZAddStaleIndex = mutation.Plant("zadd-stale-index", mutation.StateMachine,
		"ZADD updating a member's score leaves its old entry in the score index: the member is listed twice")
	MutSetBitKeepsOnes = mutation.Plant("setbit-keeps-ones", mutation.StateMachine,
		"SETBIT key offset 0 answers the old bit but never clears it: a bit once set stays set")
	MutXDelKeepsLength = mutation.Plant("xdel-keeps-length", mutation.StateMachine,
		"XDEL of an entry whose node keeps others forgets to count it out of the stream's length: XLEN counts it still")
)

// Cross-range transactions (locks.go), caught by the redistxn scenario.
var (
	MutLockedReadsServed = mutation.Plant("locked-reads-served", mutation.RedisTxn,
		"a read of one range is served on a key a cross-range transaction locks: it can see one range resolved and another not")
	MutLockedWritesServed = mutation.Plant("locked-writes-served", mutation.RedisTxn,
		"a write of one range is applied to a key a cross-range transaction locks: the transaction's image, computed before it, overwrites it (a lost update)")
	MutLockKeepsCertificate = mutation.Plant("lock-keeps-certificate", mutation.RedisTxn,
		"a lock step leaves the range's no-locks certificate in place: every command of the range skips its lock check from then on, and reads and writes the keys a transaction locks")
	MutResolveIgnoresOwner = mutation.Plant("resolve-ignores-owner", mutation.RedisTxn,
		"a resolution applies its image and drops the lock whoever holds it: a late or repeated one undoes a later transaction's writes and frees its keys early")
)
