package redis

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Keyspace-wide commands run on every range and the caller merges:
//
//   - KEYS pattern: ScanRange with count 0 on every range, concatenated in
//     range order (the result is then in key order).
//   - SCAN cursor [MATCH] [COUNT] [TYPE]: ParseScan, then the CursorTable
//     turns the cursor into a resume position (an internal key); ScanRange
//     on the range holding it; when a range is exhausted (next == nil)
//     continue at the next range's start key. Store the resume position in
//     the table and reply ScanReply(cursor, keys).
//   - DBSIZE: the sum of CountKeys over the ranges.
//   - RANDOMKEY: pick a range with probability proportional to its
//     CountKeys, then RandomKey on it; Null if every range is empty.
//   - FLUSHDB, FLUSHALL: Flush on every range (as a write through each
//     range's log).
//   - Active expiry: the leader of each range proposes ExpireSweepFrom
//     periodically, carrying the resume position from one sweep to the next.

// ScanOptions are SCAN's MATCH, COUNT and TYPE.
type ScanOptions struct {
	// Count is how many keys to visit (a hint, as in Redis); default 10.
	Count int
	// Match is a glob pattern (nil: every key).
	Match []byte
	// Type keeps only keys of this type name ("string", "list", "set",
	// "zset", "hash"; compared ignoring case; nil: every type).
	Type []byte
}

// ParseScan reads SCAN's arguments (args[0] is "scan") with Redis's errors.
// ok is false when errReply must be sent instead.
func ParseScan(args [][]byte) (cursor uint64, opts ScanOptions, errReply Reply, ok bool) {
	if len(args) < 2 {
		return 0, opts, arityError("scan"), false
	}
	cursor, err := parseScanCursor(args[1])
	if err == nil {
		var o scanOpts
		o, err = parseScanOpts(args[2:], true)
		opts = ScanOptions{Count: int(min(o.count, 1<<30)), Match: o.pattern, Type: o.typ}
	}
	if err != nil {
		var ue userError
		if errors.As(err, &ue) {
			return 0, opts, Error(string(ue)), false
		}
		return 0, opts, Error("ERR " + err.Error()), false
	}
	return cursor, opts, Reply{}, true
}

// ScanReply is SCAN's reply: the cursor as a decimal string, then the keys.
func ScanReply(cursor uint64, keys [][]byte) Reply {
	return Array(BulkString(strconv.FormatUint(cursor, 10)), bulks(keys))
}

// firstRecord returns the first record of st in [from, end) (nil: no
// bound), the Redis key its internal key is under, and that key's route
// key; found is false when there is none.
func firstRecord(st Store, from, end []byte) (kv KV, key, rk []byte, found bool, err error) {
	kvs, err := st.Scan(from, end, 1)
	if err != nil || len(kvs) == 0 {
		return KV{}, nil, nil, false, err
	}
	k, n, _, ok := decodeRouteKey(kvs[0].Key)
	if !ok {
		return KV{}, nil, nil, false, corruptf("internal key %x is not under a route key", kvs[0].Key)
	}
	return kvs[0], k, kvs[0].Key[:n:n], true, nil
}

// nextKey finds the first Redis key whose records start at or after from
// (nil: the store's start). It returns the key, its route key and its
// metadata, or found false at the end.
func nextKey(st Store, from []byte) (key, rk []byte, m meta, found bool, err error) {
	for {
		kv, k, rk, found, err := firstRecord(st, from, nil)
		if err != nil || !found {
			return nil, nil, meta{}, false, err
		}
		if len(rk) != len(kv.Key) {
			// from fell inside a key's records: go to the next key.
			from = prefixEnd(rk)
			continue
		}
		m, err := decodeMeta(kv.Value)
		if err != nil {
			return nil, nil, meta{}, false, err
		}
		return k, rk, m, true, nil
	}
}

func live(m meta, now int64) bool { return m.expireAt == 0 || m.expireAt > now }

// walkPage is how many records a keyWalker reads per scan.
const walkPage = 128

// keyWalker yields st's Redis keys in order, as nextKey does, but reads
// records a page at a time: one scan serves a page of small keys instead
// of one seek each (DBSIZE over a range of a hundred thousand strings
// took seconds), and a key whose records run past the page is skipped by
// a seek to its end.
type keyWalker struct {
	st   Store
	from []byte // where the next scan starts: past every record seen
	page []KV
	done bool
}

func newKeyWalker(st Store, from []byte) *keyWalker { return &keyWalker{st: st, from: from} }

// next returns the next key, its route key and its metadata, or found
// false at the end.
func (w *keyWalker) next() (key, rk []byte, m meta, found bool, err error) {
	for {
		if len(w.page) == 0 {
			if w.done {
				return nil, nil, meta{}, false, nil
			}
			if w.page, err = w.st.Scan(w.from, nil, walkPage); err != nil {
				return nil, nil, meta{}, false, err
			}
			if len(w.page) == 0 {
				w.done = true
				return nil, nil, meta{}, false, nil
			}
		}
		kv := w.page[0]
		w.page = w.page[1:]
		k, n, _, ok := decodeRouteKey(kv.Key)
		if !ok {
			return nil, nil, meta{}, false, corruptf("internal key %x is not under a route key", kv.Key)
		}
		rk = kv.Key[:n:n]
		w.from = prefixEnd(rk)
		if len(rk) != len(kv.Key) {
			continue // a record inside a key (its fields, members, items)
		}
		if m, err = decodeMeta(kv.Value); err != nil {
			return nil, nil, meta{}, false, err
		}
		// The rest of the page from here on may be this key's records:
		// they are skipped above, one by one, or by the next scan's seek.
		return k, rk, m, true, nil
	}
}

// ScanRange visits up to count keys (count <= 0: all) of the range held by
// st, in key order, from the internal key from (nil: the range's start),
// and returns the live ones that match opts.Match and opts.Type. next is
// where to continue, or nil when the range is exhausted. It only reads.
func ScanRange(st Store, now int64, from []byte, count int, opts ScanOptions) (keys [][]byte, next []byte, err error) {
	if string(opts.Match) == "*" {
		opts.Match = nil // Redis never runs the matcher for "*" (which would miss "")
	}
	visited := 0
	w := newKeyWalker(st, from)
	for count <= 0 || visited < count {
		k, rk, m, found, err := w.next()
		if err != nil {
			return nil, nil, err
		}
		if !found {
			return keys, nil, nil
		}
		visited++
		from = prefixEnd(rk)
		if !live(m, now) {
			continue
		}
		if opts.Type != nil && !eqFold(opts.Type, m.typ.name()) {
			continue
		}
		if opts.Match != nil && !globMatch(opts.Match, k) {
			continue
		}
		keys = append(keys, k)
	}
	// Say "exhausted" now rather than after one more empty call.
	if _, _, _, found, err := w.next(); err != nil || !found {
		return keys, nil, err
	}
	return keys, from, nil
}

// CountKeys is the range's share of DBSIZE: its live keys. (Redis also
// counts keys that expired but were not yet deleted.)
func CountKeys(st Store, now int64) (int64, error) {
	// Through a database's view every key reads as database 0's.
	stats, err := CountKeyStats(st, now)
	return stats[0].Keys, err
}

// KeyStats are a range's share of INFO's keyspace line.
type KeyStats struct {
	Keys, Expires int64 // live keys; those of them with a TTL
	TTLSum        int64 // their TTLs left, in ms, summed
}

// CountKeyStats counts the live keys and those with a TTL of every
// database of the raw range st, by database.
func CountKeyStats(st Store, now int64) ([Databases]KeyStats, error) {
	var stats [Databases]KeyStats
	w := newKeyWalker(st, nil)
	for {
		_, rk, m, found, err := w.next()
		if err != nil || !found {
			return stats, err
		}
		if db := dbOfRaw(rk); (live(m, now) || mutation.On(MutCountsExpired)) && db < Databases {
			ks := &stats[db]
			ks.Keys++
			if m.expireAt != 0 {
				ks.Expires++
				ks.TTLSum += m.expireAt - now
			}
		}
	}
}

// RandomKey picks one live key of the range uniformly, using seed (drawn by
// the caller, or by the leader if the pick must be replayed).
func RandomKey(st Store, now int64, seed uint64) (key []byte, found bool, err error) {
	n, err := CountKeys(st, now)
	if err != nil || n == 0 {
		return nil, false, err
	}
	target := rand.New(rand.NewPCG(seed, 0x6f72626974)).Int64N(n)
	w := newKeyWalker(st, nil)
	for {
		k, _, m, ok, err := w.next()
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, corruptf("range shrank while picking a random key")
		}
		if !live(m, now) {
			continue
		}
		if target == 0 {
			return k, true, nil
		}
		target--
	}
}

// Flush deletes every key of the range: its share of FLUSHDB and FLUSHALL.
func Flush(st Store) error { return st.DeleteRange(nil, nil) }

// ExpireSweepFrom is active expiry: it visits up to limit keys from the
// internal key from (nil: the range's start) and deletes those expired at
// now. next is where the following sweep continues; nil means the range was
// covered (start again from nil). It is a write: the leader proposes it
// with its own time and resume position, so every replica deletes the same
// keys.
func ExpireSweepFrom(st Store, now int64, from []byte, limit int) (deleted int, next []byte, err error) {
	return expireSweepFrom(st, now, from, limit, nil)
}

// expireSweepFrom is ExpireSweepFrom with an "expired" event for each
// key it deletes (st is a range's raw records: every database).
func expireSweepFrom(st Store, now int64, from []byte, limit int, ev *events) (deleted int, next []byte, err error) {
	for visited := 0; limit <= 0 || visited < limit; visited++ {
		_, rk, m, found, err := nextKey(st, from)
		if err != nil {
			return deleted, nil, err
		}
		if !found {
			return deleted, nil, nil
		}
		from = prefixEnd(rk)
		if !live(m, now) {
			if err := st.DeleteRange(rk, prefixEnd(rk)); err != nil {
				return deleted, nil, err
			}
			if k, _, db, ok := decodeRouteKey(rk); ok {
				ev.add(NotifyExpired, "expired", db, k)
			}
			deleted++
		}
	}
	return deleted, from, nil
}

// ExpireSweep is ExpireSweepFrom at the range's start: for a range small
// enough to sweep in one go (limit <= 0 visits every key).
func ExpireSweep(st Store, now int64, limit int) (deleted int, err error) {
	deleted, _, err = ExpireSweepFrom(st, now, nil, limit)
	return deleted, err
}

// CursorTable maps the SCAN cursors a server hands out (uint64 decimals, as
// clients such as go-redis parse them) to resume positions. It holds at
// most its capacity; the oldest cursor is forgotten first, and a forgotten
// or unknown cursor is "ERR invalid cursor". Cursors are local to one
// server process. Not safe for concurrent use: one per server task.
type CursorTable struct {
	capacity int
	last     uint64
	pos      map[uint64][]byte
	fifo     []uint64 // cursors in issue order, oldest first
}

// NewCursorTable returns a table holding up to capacity cursors (at least 1).
func NewCursorTable(capacity int) *CursorTable {
	return &CursorTable{capacity: max(capacity, 1), pos: map[uint64][]byte{}}
}

// Put stores a resume position and returns its cursor, never 0 (0 is the
// start and the end of an iteration).
func (t *CursorTable) Put(resume []byte) uint64 {
	if len(t.fifo) >= t.capacity {
		delete(t.pos, t.fifo[0])
		t.fifo = t.fifo[1:]
	}
	t.last++
	if t.last == 0 {
		t.last = 1
	}
	t.pos[t.last] = bytes.Clone(resume)
	t.fifo = append(t.fifo, t.last)
	return t.last
}

// Get returns the resume position of a cursor; cursor 0 is the start (nil).
// A cursor is good for more than one call (a client may retry).
func (t *CursorTable) Get(cursor uint64) (resume []byte, ok bool) {
	if cursor == 0 {
		return nil, true
	}
	r, ok := t.pos[cursor]
	return r, ok
}

// Len is the number of cursors held.
func (t *CursorTable) Len() int { return len(t.fifo) }
