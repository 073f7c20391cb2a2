// Package redis is the pure half of Orbit's Redis adapter: Redis 7.0
// commands executed against one range's data, deterministically. It does no
// I/O, starts no goroutines and reads no clock or global randomness; the
// leader assigns each command a time (unix ms) and a random seed, and every
// replica applying the command computes the same writes and reply.
//
// # Execution model
//
// Each keyed command is one atomic operation on one range (Exec): a write is
// proposed into the range's Raft log and executed when applied; a read runs
// at the leader after a ReadIndex, on a read-only Store. All of a command's
// keys must route to one range: the caller refuses a command whose keys'
// RouteKeys fall in different ranges (Keys lists them). Blocking commands
// have a non-blocking step (TryBlocking); keyspace-wide commands (KEYS,
// SCAN, DBSIZE, RANDOMKEY, FLUSHDB, FLUSHALL) run per range and the caller
// merges (ranges.go). Connection and server commands are the caller's, and
// build their replies with Reply.
//
// Expiry is lazy: a key whose expire-at is <= now is absent to every
// command, and a write command that meets one deletes it first. Active
// expiry is ExpireSweep, which the leader proposes periodically.
//
// # Storage layout (format version 1, FormatVersion)
//
// All of Redis key k's records share the prefix RouteKey(k): k with each
// 0x00 byte escaped as 0x00 0xFF, then the terminator 0x00 0x01. The
// escape preserves the order of keys, and no key's prefix is a prefix of
// another key's records, so a range split at a route key keeps every key
// whole.
//
//	RouteKey(k)                          metadata record
//	RouteKey(k) 'M' field                hash field -> value
//	RouteKey(k) 'M' member               set member -> "" ; zset member -> score
//	                                     (8 bytes, IEEE 754 big-endian)
//	RouteKey(k) 'L' pos                  list item at position pos (8 bytes,
//	                                     int64 with the sign bit flipped, so
//	                                     positions sort numerically)
//	RouteKey(k) 'S' score member         zset score index -> "" ; score is 8
//	                                     bytes that sort numerically (positive:
//	                                     sign bit set; negative: all bits
//	                                     inverted; -0 stored as +0)
//
// The metadata record is
//
//	version (1 byte, FormatVersion) | type (1 byte) | expire-at (8 bytes,
//	big-endian unix ms, 0 = none) | body
//
// where type is 1 string, 2 list, 3 set, 4 zset, 5 hash and the body is the
// value for a string; the element count (8 bytes) for a set, zset or hash;
// the count and the position of the first item (8 bytes each) for a list.
// A list's items occupy positions head .. head+count-1 without gaps: LPUSH
// and RPUSH extend either end, LINDEX is one Get, and LINSERT, LREM and
// LSET-free middle edits rewrite the shorter side. A collection is never
// empty: removing its last element deletes the key. Deleting a key is one
// DeleteRange over its prefix.
//
// Anything else (an unknown version or type, a short record, a zero count)
// is a corrupt record: the command replies "ERR corrupt value" and sets
// Reply.Err, and the caller must discard its writes.
//
// # Differences from Redis 7.0
//
//   - Unordered replies (SMEMBERS, HGETALL, HKEYS, KEYS, SINTER, ...) come in
//     key (byte) order; Redis's order is unspecified.
//   - HSCAN, SSCAN and ZSCAN return everything with cursor 0 for a key of up
//     to 128 elements (as Redis does for its small encodings); for larger
//     keys the cursor encodes a position in the key's element order (see
//     scan.go), so COUNT is a hint exactly as in Redis.
//   - SCAN's cursor is a handle into a bounded CursorTable the server owns;
//     an evicted or unknown cursor gives "ERR invalid cursor".
//   - A string value is at most 64 MB (Redis: 512 MB), with Redis's error.
//   - Random choices (SPOP, SRANDMEMBER, HRANDFIELD, RANDOMKEY) are drawn
//     from the seed the leader assigned, not Redis's generator.
//   - -0 as a sorted-set score is stored as 0 (Redis does the same for
//     small sorted sets).
//   - OBJECT ENCODING, DEBUG and keyspace notifications do not exist.
//
// # Not done yet
//
// Any command not listed in the table (Lookup) replies "ERR unknown
// command", as Redis does for a command it lacks.
package redis
