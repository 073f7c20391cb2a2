// Package redis is the pure half of Orbit's Redis adapter: Redis 7.0
// commands executed against one range's data, deterministically. It does no
// I/O, starts no goroutines and reads no clock or global randomness; the
// leader assigns each command a time (unix ms) and a random seed, so the
// same command on the same data computes the same writes and reply.
//
// # Execution model
//
// Each keyed command is one atomic operation on one range (Exec): a write is
// executed once, on the range's leader, and what it wrote goes through the
// Raft log to every replica (consensus: "evaluate at the leader"); a read
// runs at the leader, under its lease or after a ReadIndex, on a read-only
// Store. A command whose keys (Keys lists them) lie in more than one range
// runs as a cross-range transaction (locks.go): each range locks its keys
// and hands their records over (LockCommand), the caller runs the command
// on them (RunTxn), decides, and each range takes the written keys'
// records back (ResolveCommand); a command naming a locked key is
// answered Locked and has no effect. Blocking commands
// have a non-blocking step (TryBlocking); keyspace-wide commands (KEYS,
// SCAN, DBSIZE, RANDOMKEY, FLUSHDB, FLUSHALL) run per range and the caller
// merges (ranges.go). Connection and server commands are the caller's, and
// build their replies with Reply.
//
// A Lua script (EVAL, scripting.go) is a keyed command whose keys are the
// ones it declares: it runs on the leader like any write, its redis.call
// going through the same Exec on the same Store, so its writes replicate
// as effects and it is never run again; seeded math.random, and a bound
// counted in instructions, keep a replayed run the same. EVALSHA and the
// script cache are the caller's (it turns EVALSHA into EVAL).
//
// Expiry is lazy: a key whose expire-at is <= now is absent to every
// command, and a write command that meets one deletes it first. Active
// expiry is ExpireSweepFrom, which the leader proposes periodically with a
// resume position.
//
// # Storage layout (format version 1, FormatVersion)
//
// All of Redis key k's records share the prefix RouteKey(k): k's Redis
// Cluster hash slot (Slot: CRC16 of the key, or of its {hash tag}, mod
// 16384) as 2 big-endian bytes, then k with each 0x00 byte escaped as
// 0x00 0xFF, then the terminator 0x00 0x01. Ranges are spans of slots
// (split points are SlotKeys, SlotSplits makes them), so keys sharing a
// {tag} always share a range (a multi-key command over keys of one range
// is that range's atomic command; over keys of several, a cross-range
// transaction; a caller without transactions answers it with Redis
// Cluster's ErrCrossSlot). Within a slot the escape
// preserves the order of keys, and no key's prefix is a prefix of another
// key's records, so a range split at a slot boundary keeps every key
// whole; ranges split only there (StateMachine.SplitKey). Keyspace-wide
// walks (KEYS, SCAN) meet keys in slot order. Keys from KeyspaceEnd on
// are not Redis's (the kernel's system keyspace, in the range that holds
// the last slots): range-wide operations — scans, FLUSHALL, active
// expiry — stop there.
//
// That is database 0's layout. A key of database n (SELECT n, 1 to 15)
// has the marker 0x00 0x02 n between its slot and its escaped key, which
// no key of database 0 has there (databases.go): the command code works on
// database 0's form through a view that adds the marker and hides the
// other databases from scans; active expiry and FLUSHALL see every
// database.
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
//	RouteKey(k) 'E' id                   stream entry -> its fields and values
//	                                     (a field list); id is ms then seq, 8
//	                                     bytes big-endian each, so entries sort
//	                                     by ID
//	RouteKey(k) 'N' id                   stream node (below) starting at entry
//	                                     id -> live (8) | deleted (8) | bytes (8)
//	                                     | last ID (16) | has prev (1) | prev
//	                                     node's first ID (16) | master fields
//	RouteKey(k) 'G' esc(g)               consumer group g -> last delivered ID
//	                                     (16) | entries read (8, -1 unknown) |
//	                                     consumers (8) | pending (8); esc(g) is
//	                                     g with 0x00 escaped as 0x00 0xFF, then
//	                                     0x00 0x01, like a route key, so that a
//	                                     group's records below share a prefix
//	RouteKey(k) 'G' esc(g) 'C' name      consumer -> seen-time (8, unix ms) |
//	                                     pending (8)
//	RouteKey(k) 'G' esc(g) 'P' id        pending entry (the group's PEL) ->
//	                                     delivery time (8) | deliveries (8) |
//	                                     consumer name
//	RouteKey(k) 'G' esc(g) 'Q' esc(c) id the same entry in consumer c's PEL -> ""
//
// The metadata record is
//
//	version (1 byte, FormatVersion) | type (1 byte) | expire-at (8 bytes,
//	big-endian unix ms, 0 = none) | body
//
// where type is 1 string, 2 list, 3 set, 4 zset, 5 hash, 6 stream and the
// body is the value for a string; the element count (8 bytes) for a set,
// zset or hash; the count and the position of the first item (8 bytes
// each) for a list; for a stream
//
//	length (8) | last ID (16) | first ID (16) | max deleted ID (16) |
//	entries added (8) | groups (8) | nodes (8) | tail node's first ID (16)
//
// (XINFO STREAM's length, last-generated-id, recorded-first-entry-id,
// max-deleted-entry-id, entries-added, groups and radix-tree-keys). A
// stream's nodes are the listpacks Redis would keep it in (streamstore.go):
// approximate trimming (MAXLEN ~, MINID ~) removes whole nodes, and XINFO
// STREAM reports their count and its radix tree's size, so each node
// record holds what its listpack would (its live and deleted entries, its
// size in listpack bytes, its last entry's ID, deleted or not, and its
// master fields), and XADD opens a node where Redis's streamAppendItem
// would (4096 bytes, 100 entries: stream-node-max-bytes and
// stream-node-max-entries at their defaults). The nodes are linked
// backwards, for reverse ranges.
// A list's items occupy positions head .. head+count-1 without gaps, as in
// Kvrocks: LPUSH and RPUSH extend either end, LINDEX and LSET are one Get
// or Set, LINSERT shifts the shorter side by one, LREM rewrites the list. A
// collection is never empty: removing its last element deletes the key;
// a stream may be, as in Redis.
// Deleting a key is one DeleteRange over its prefix.
//
// Anything else (an unknown version or type, a short record, a zero count)
// is a corrupt record: the command replies "ERR corrupt value" and sets
// Reply.Err, and the caller must discard its writes.
//
// # API
//
//	Exec(st, now, rand, args) Reply              one keyed command, atomically
//	ExecWithConfig(..., cfg ObjectConfig)         Exec under the node's settings (OBJECT)
//	WithObjectConfig(cfg, cmd)                    a state-machine command carrying them
//	TryBlocking(st, now, args) (Reply, ready)     BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP,
//	                                              and XREAD/XREADGROUP with BLOCK (Blocks)
//	RetryArgs(reply)                              the command a blocked XREAD retries with ("$" resolved)
//	BlockTimeout(args), TimeoutReply(name)        what the caller needs to wait
//	ScanRange, CountKeys, RandomKey, Flush        per-range KEYS, SCAN, DBSIZE,
//	                                              RANDOMKEY, FLUSHDB/FLUSHALL
//	ParseScan, ScanReply, CursorTable             SCAN's arguments, reply, cursors
//	ExpireSweepFrom, ExpireSweep                  active expiry
//	Lookup, Commands, Keys, CommandReply          the command table and COMMAND
//	Reply, AppendRESP2, AppendRESP3, ParseReply   replies, for every command
//	Store, KV, MemStore, ReadOnly, Verify         storage contract and helpers
//	LockCommand, LockReply, RunTxn, ResolveCommand,
//	Locked, LockedBy, RawRouteKey, Image          cross-range transactions (locks.go)
//
// # Differences from Redis 7.0
//
//   - Unordered replies (SMEMBERS, HGETALL, HKEYS, SINTER, ...) come in
//     element (byte) order, KEYS and SCAN in (slot, key) order; Redis's
//     order is unspecified.
//   - HSCAN, SSCAN and ZSCAN return everything with cursor 0 for a key of up
//     to 128 elements (as Redis does for its small encodings); for larger
//     keys the cursor encodes the first 8 bytes of the next element (see
//     scan.go), so COUNT is a hint exactly as in Redis, but elements sharing
//     a long common prefix come back in one call.
//   - SCAN's cursor is a handle into a bounded CursorTable the server owns;
//     an evicted cursor, or one from another server, gives
//     "ERR invalid cursor" instead of resuming.
//   - DBSIZE counts live keys; Redis also counts expired keys it has not
//     deleted yet. Likewise SCAN ... TYPE none: Redis 7.0 lists the expired
//     keys it still holds under it; here it lists nothing.
//   - A string value is at most 64 MB (Redis: 512 MB), with Redis's error.
//     Bit offsets are bounded the same way, by Redis's own check against
//     proto-max-bulk-len (64 MB here): SETBIT, GETBIT and BITFIELD refuse
//     an offset whose byte is 64 MB or more with "ERR bit offset is not an
//     integer or out of range", reads included (Redis reads 0 up to 512 MB).
//     A negative count to SRANDMEMBER or HRANDFIELD is at most 65536
//     ("ERR value is out of range" beyond).
//   - Random choices (SPOP, SRANDMEMBER, HRANDFIELD, RANDOMKEY) are drawn
//     from the seed the leader assigned, not Redis's generator.
//   - -0 as a sorted-set score is stored as 0 (Redis does the same for
//     small sorted sets; ZINCRBY's and ZADD INCR's reply keep the sign, as
//     in Redis).
//   - ZRANGEBYLEX and friends on a sorted set with mixed scores give what
//     Redis's small (listpack) encoding gives; Redis documents the result as
//     unspecified.
//   - ZUNION[STORE] and ZINTER[STORE] add scores in the order Redis does
//     (inputs sorted by size, stably, as glibc's qsort sorts); should a
//     platform's qsort order equal sizes differently, a floating-point sum
//     of three or more inputs could round differently.
//   - The TIME-dependent parts use the leader's clock: a key's TTL counts
//     down in the leader's milliseconds, not the serving node's.
//   - OBJECT ENCODING reports the encoding Redis 7.0 gives the value built
//     afresh (by SET, by adding its elements to a new key, or by RESTORE)
//     under the thresholds CONFIG GET reports (object.go): Orbit stores
//     every value one way and keeps no history, so a string that APPEND,
//     SETRANGE, SETBIT, BITFIELD or BITOP wrote (Redis: "raw") or that
//     INCRBYFLOAT wrote (Redis: "embstr") reports "int" or "embstr" by its
//     value, and a hash, set or sorted set that shrank back under a
//     threshold reports the small encoding (Redis keeps the large one).
//     Lists are "quicklist", as always in 7.0. OBJECT REFCOUNT follows:
//     2147483647 for an "int" from 0 to 9999 (Redis's shared integers),
//     else 1.
//   - Accesses are not tracked (a read would have to write): OBJECT
//     IDLETIME answers 0, as if every key had just been read, and under an
//     LFU maxmemory-policy OBJECT FREQ answers 5 (LFU_INIT_VAL, a key not
//     read since it was written). Each gives Redis's error under the other
//     kind of policy, and a missing key gives null, as in Redis.
//   - LCS refuses strings whose table, (len(a)+1)*(len(b)+1), exceeds 2^26
//     cells (e.g. two strings of 8191 bytes, or 64 KB against 1 KB) with
//     "ERR LCS input too long: ..." (lcs.go); against an empty or missing
//     string it always answers. Redis allocates the whole table, 4 bytes a
//     cell, and answers "Insufficient memory" only when that allocation
//     fails; Orbit's walk-back needs one bit a cell and its work is bounded.
//   - HyperLogLogs (hll.go) are Redis's own strings, byte for byte: GET
//     shows what Redis shows, and Redis's bytes SET here count the same.
//     hll-sparse-max-bytes is not a setting here (CONFIG GET lists none):
//     the sparse form becomes dense past Redis's default, 3000 bytes.
//     PFCOUNT of one key stores the count it computed in the value when
//     the cached one is stale, as Redis does, so PFCOUNT runs as a write
//     (through the Raft log, at the leader) though COMMAND INFO flags it
//     "readonly" as Redis does; PFCOUNT of several keys writes nothing.
//     One corrupt value differs: a sparse one whose last opcode is an
//     XZERO cut after its first byte, where Redis's PFADD writes past the
//     string's end and its later PFADDs read that byte back; Orbit reads
//     0 there, as Redis does on such a value's first PFADD. PFDEBUG and
//     PFSELFTEST do not exist.
//   - The geo commands (geo.go) are Redis's code on Redis's sorted sets: a
//     geo set is a sorted set of 52-bit geohash scores, and ZADD, ZRANGE,
//     ZSCORE and the rest see what Redis's show. Distances use sin, cos and
//     asin correctly rounded (geomath.go), where Redis uses the platform's
//     C library: glibc 2.36 misrounds about 1 call in 1000 by one ulp
//     (another libm, or glibc's FMA variants, differ elsewhere), so a
//     distance may rarely differ from a given Redis build in its last bit:
//     visible in what GEOSEARCHSTORE ... STOREDIST stores, and at a radius's
//     or box's exact edge; the four decimals of WITHDIST and GEODIST all
//     but never. Sorting by distance follows glibc's qsort (a stable merge
//     sort) and Redis's pqsort for COUNT, so equal distances come out in
//     Redis's order. GEORADIUS and GEORADIUSBYMEMBER route on the key after
//     the first STORE and the first STOREDIST, as Redis's key specs do,
//     though only the last of them is written.
//   - Streams (streams.go, streamgroups.go, streamstore.go) are Redis
//     7.0's, replies and errors byte for byte, XINFO STREAM's
//     radix-tree-keys and radix-tree-nodes and approximate trimming
//     included (see the layout above). Times are the leader's clock: an
//     auto ID ("*") takes the command's stamp, or the last ID's successor
//     when the stamp is not later, so IDs only grow; delivery, seen and
//     idle times likewise. stream-node-max-bytes and
//     stream-node-max-entries are not settings here (CONFIG GET lists
//     neither): nodes close at Redis's defaults, 4096 bytes and 100
//     entries. XAUTOCLAIM with a huge COUNT answers normally where Redis
//     may fail to allocate COUNT IDs ("Insufficient memory"). One corner
//     of node layout differs: when an exact MINID trim empties a stream
//     but keeps its last node (its last entry was deleted) and XSETID then
//     sets the last ID below that node's first, Redis adds the next
//     entries into that node, before its first ID (and can then list
//     entries out of order); Orbit drops the empty node first, so
//     radix-tree-keys and later approximate trims may differ there.
//     Blocking XREAD and XREADGROUP: see adapters/redis/session.
//   - Keyspace notifications (notify.go) are Redis's events, name, key and
//     order, checked against redis-server for every family (notify_test.go).
//     Where they differ: "keymiss" is sent for the misses of read-only
//     commands only (Redis also for the keys a write command reads, as
//     SUNIONSTORE's sources); a store command (SINTERSTORE, ZUNIONSTORE,
//     BITOP, SORT ... STORE, ...) whose result is empty, onto a destination
//     whose TTL has passed but which no one has deleted yet, sends
//     "expired" for it where Redis sends "del" (Redis sends what Orbit does
//     once its background expiry has reached the key).
//   - DEBUG and client-side caching invalidation do not exist here.
//   - A command or MULTI/EXEC block over keys in several ranges reads and
//     writes whole keys (locks.go): at most MaxImageBytes (4 MB) of one
//     range's keys, beyond which it answers an error (MOVE's and COPY ...
//     DB's key in the other database is locked with the rest:
//     OtherDBKeys). Keyspace-wide reads (KEYS,
//     SCAN, DBSIZE, RANDOMKEY) are not isolated from such a transaction
//     being resolved, as a Redis Cluster client's walk over nodes is not.
//   - WATCH checks a key in the database selected at EXEC, Redis in the one
//     selected at WATCH (it differs for a client that SELECTs in between).
//     SWAPDB does not exist yet (MOVE and COPY ... DB do). FLUSHDB deletes its
//     database key by key (FLUSHALL is one range deletion per range).
//   - A MULTI block holding a server or keyspace-wide command (CONFIG SET,
//     FLUSHALL, SELECT, INFO, ...) runs it in its place at EXEC, between
//     atomic runs of the keyed commands around it: such a block is atomic
//     only piecewise (adapters/redis/session). A block of keyed commands
//     is atomic, as in Redis.
//   - SLOWLOG is per node, as in Redis; a command's duration there is its
//     whole trip through consensus (the sync of its log entry and the
//     round to a majority included), where Redis times its execution
//     alone; a blocking command is never logged (Redis logs one once it
//     is served, for its execution); a MULTI block's commands are logged
//     each with its share of the EXEC's time (session/slowlog.go).
//   - MONITOR shows what the node's own connections ran (as one node of a
//     Redis Cluster does), each command once it returned: a blocking
//     command when it is served or times out (Redis shows it when it
//     starts to wait); a script as its EVAL or FCALL, without Redis's
//     "[0 lua]" lines for the calls it made (it runs at the range's
//     leaseholder, which may be another node); a monitoring connection's
//     own commands inside its EXEC are not shown to it
//     (session/monitor.go).
//   - INFO's memory section reports the Go runtime's memory (used_memory)
//     and the process's resident set; Pebble's cache lives outside the Go
//     heap and shows only in the latter. keyspace_hits/misses, expired_keys
//     and the network byte counters are not reported.
//
// # Cost
//
// Single-element reads and writes are O(1) Store operations (GET, HGET,
// SISMEMBER, ZSCORE, LINDEX, LPUSH, RPOP, ...). Whole-key reads (HGETALL,
// SMEMBERS, LRANGE 0 -1) read the key. Known O(n) writes and reads, fine
// for the key sizes Redis users keep but worth knowing: LREM, LINSERT and
// LPOS read the whole list; SPOP, SRANDMEMBER and HRANDFIELD read the whole
// key; ZRANK reads up to the element; ZRANGEBYLEX reads the whole set; set
// algebra and ZUNIONSTORE/ZINTERSTORE read their inputs; RENAME copies every
// record; DBSIZE and RANDOMKEY walk the range's keys. A string is one
// record, so APPEND, SETRANGE, SETBIT and BITFIELD's SET and INCRBY
// rewrite (and replicate) the whole value: a bitmap of n bytes costs O(n)
// per write, where Redis pays O(1). BITCOUNT, BITPOS and BITOP read whole
// values, as in Redis. LCS takes time O(len(a)*len(b)), bounded (above),
// and memory len(a)*len(b)/8 bytes. OBJECT ENCODING reads a collection's
// elements up to the encoding's entry threshold (512 by default), and
// none of a larger one. PFADD and PFMERGE rewrite (and replicate) the whole
// HyperLogLog, up to 12 KB (Redis changes it in place); PFCOUNT of one key
// is a Raft write even when it writes nothing (its cache was valid). The
// geo searches read the score ranges of up to nine geohash cells, as Redis
// does; GEOPOS, GEODIST and GEOHASH are one Get per member. Streams: XADD,
// XDEL and XACK are a few Gets and Sets per entry; XRANGE and XREAD read
// the entries they return; XREVRANGE, XINFO STREAM's last entry and
// XSETID walk back node by node (each node's up to 100 entries read
// forwards); XINFO STREAM reads every node record (one per 100 entries,
// or per entry for entries of kilobytes) for radix-tree-nodes; XPENDING's
// summary, XINFO GROUPS and CONSUMERS read the group's consumers;
// trimming reads each node it removes but not its entries (one range
// deletion each); DEL of a stream is one range deletion, as for every
// type.
//
// # Not done yet
//
// Not implemented (they reply "ERR unknown command", as Redis does for a
// command it lacks, and are absent from the table and COMMAND): the other
// keyed commands of Redis 7.0 — DUMP, RESTORE; PFDEBUG and PFSELFTEST.
// Options added after 7.0 (ZRANK WITHSCORE, ...) are syntax errors, as in
// 7.0.
package redis
