package redis

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Cross-range transactions (docs/txn.md, step 7; the coordinator is
// adapters/redis/session's). A command or a MULTI/EXEC block whose keys
// lie in more than one range runs as a transaction over whole keys:
//
//  1. Lock: each range holding some of its keys, in key order, locks them
//     and replies with every record of each (LockCommand): the key's image.
//  2. Run: the coordinator runs the commands on those images (RunTxn),
//     which gives the reply and the images of the keys they changed.
//  3. Decide: the decision (committed with those images, or aborted) is
//     written once, by compare-and-set, in the transactional keyspace.
//  4. Resolve: each range replaces every written key with its image and
//     drops the locks (ResolveCommand). A resolution for a lock that is
//     gone does nothing, so resolving twice is harmless.
//
// While a key is locked, every keyed command that names it — a read
// included — is answered with a Locked reply and has no effect; the
// session waits, and once the lock is older than its timeout decides the
// transaction itself (aborted, unless it committed) and resolves the key.
// So a key's value changes only when a range resolves it, nobody sees a
// key between a transaction's lock and its resolution, and a transaction
// is serialized at its decision: strict two-phase locking, with the
// decision record as the single point of commit. Locks taken in key
// order cannot wait on each other in a cycle.
//
// Where locks live: each slot's lock area, a marker no key has after its
// slot (the databases' marker is 0x00 0x02, databases.go):
//
//	slot (2 bytes) 0x00 0x03 raw route key without its slot  -> txn ID (16) | locked at (8, unix ms)
//
// so a lock moves with its key's slot through splits and merges. The
// command code never sees the lock areas (hideLocks), and FLUSHDB and
// FLUSHALL wait for a range's locks to go (anyLock).
//
// Keyspace-wide commands (KEYS, SCAN, DBSIZE, RANDOMKEY) are not isolated
// from a transaction being resolved: like a Redis Cluster client's walk
// over nodes, they are not a snapshot across ranges.
//
// The no-locks certificate. Every keyed command reads its keys' lock
// records first, and a lock record almost never exists: the read of a
// missing key seeks every memtable and every level-0 table, and it cost
// more than the command's own lookup (a third of a GET's CPU,
// docs/performance.md). So a range whose hint word (consensus.RangeData)
// has hintNoLocks set holds no lock record, and its commands skip the
// reads. The certificate is
//
//   - set only by CertifyCommand, a write evaluated where every write is
//     (against the applied state and the writes in flight), and only if
//     a scan of the range's lock areas finds none; the session's lock
//     sweeper sends it when its scan found no lock and no certificate;
//   - ended by any command that writes a lock record (rangeStore.Set), in
//     the same replicated write; the certificate is in the range's clock
//     record, which every command and query reads anyway;
//   - kept by both halves of a split (each holds a part of a range with
//     no lock), lost by a merge and by anything else that does not know
//     it (consensus resets the word): a missing certificate only costs
//     the reads.
//
// A read served under the lease reads the certificate and the records
// from the applied state, as it read the lock records before.

// TxnID names a cross-range transaction.
type TxnID [16]byte

// lockMarker follows the slot in a lock record's key.
var lockMarker = []byte{0, 3}

// MaxImageBytes bounds the records a cross-range transaction reads from
// one range (its keys' images): the reply must fit a replicated entry.
const MaxImageBytes = 4 << 20

// RawRouteKey is Redis key k's route key in database db's form: the prefix
// of all its records in the range's raw keyspace.
func RawRouteKey(db int, k []byte) []byte { return dbView{db: db}.toRaw(RouteKey(k)) }

// lockKey is where the lock of the key whose raw route key is rawRK lives.
func lockKey(rawRK []byte) []byte {
	k := make([]byte, 0, len(rawRK)+2)
	k = append(k, rawRK[:2]...)
	k = append(k, lockMarker...)
	return append(k, rawRK[2:]...)
}

// IsLockKey reports whether raw, a key of the Redis keyspace's records,
// is a lock record's key.
func IsLockKey(raw []byte) bool { return len(raw) >= 4 && raw[2] == 0 && raw[3] == lockMarker[1] }

// lockAreaEnd is the first key after the lock area of raw's slot.
func lockAreaEnd(raw []byte) []byte { return []byte{raw[0], raw[1], 0, lockMarker[1] + 1} }

type lock struct {
	id       TxnID
	lockedAt int64
}

func encodeLock(l lock) []byte {
	return binary.BigEndian.AppendUint64(append([]byte{}, l.id[:]...), uint64(l.lockedAt))
}

func decodeLock(b []byte) (lock, error) {
	if len(b) != 24 {
		return lock{}, corruptf("a lock record of %d bytes", len(b))
	}
	var l lock
	copy(l.id[:], b)
	l.lockedAt = int64(binary.BigEndian.Uint64(b[16:]))
	return l, nil
}

// readLock reads the lock of the key of raw route key rk, if it has one.
func readLock(locks Store, rk []byte) (lock, bool, error) {
	v, found, err := locks.Get(lockKey(rk))
	if err != nil || !found {
		return lock{}, false, err
	}
	l, err := decodeLock(v)
	return l, err == nil, err
}

// hideLocks is the raw range as the command code sees it: without the
// lock areas.
type hideLocks struct{ Store }

func (h hideLocks) Scan(start, end []byte, limit int) ([]KV, error) {
	if limit <= 0 {
		limit = 1 << 31 // every caller pages; this is only a guard
	}
	var out []KV
	for len(out) < limit {
		kvs, err := h.Store.Scan(start, end, limit-len(out))
		if err != nil || len(kvs) == 0 {
			return out, err
		}
		var next []byte
		for _, kv := range kvs {
			if IsLockKey(kv.Key) {
				next = lockAreaEnd(kv.Key)
				break
			}
			out = append(out, kv)
		}
		if next == nil {
			return out, nil
		}
		if end != nil && bytes.Compare(next, end) >= 0 {
			return out, nil
		}
		start = next
	}
	return out, nil
}

// Locked is the reply to a command that names a locked key: the
// transaction holding it, one such key (a raw route key) and the lock's
// age by the leader's clock. It never reaches a client.
func Locked(id TxnID, rawRK []byte, ageMillis int64) Reply {
	return Reply{Kind: KindLocked, Str: append(id[:0:0], id[:]...), Elems: []Reply{Bulk(rawRK)}, Int: ageMillis}
}

// LockedBy reads a Locked reply.
func LockedBy(r Reply) (id TxnID, rawRK []byte, ageMillis int64, ok bool) {
	if r.Kind != KindLocked || len(r.Str) != len(id) || len(r.Elems) != 1 {
		return id, nil, 0, false
	}
	copy(id[:], r.Str)
	return id, r.Elems[0].Str, r.Int, true
}

// lockCheckPlanted reports whether a planted bug skips the lock check of
// a read (write false) or a write.
func lockCheckPlanted(write bool) bool {
	if write {
		return mutation.On(MutLockedWritesServed)
	}
	return mutation.On(MutLockedReadsServed)
}

// checkLocks answers Locked if any of keys (Redis keys of database db) is
// locked; ok is false then.
func checkLocks(locks lockArea, db int, keys [][]byte, now int64) (Reply, bool, error) {
	if locks.none() {
		return Reply{}, true, nil
	}
	for _, k := range keys {
		rk := RawRouteKey(db, k)
		if r, ok, err := checkLock(locks, rk, nil, now); !ok || err != nil {
			return r, ok, err
		}
	}
	return Reply{}, true, nil
}

// checkLock answers Locked if the key of raw route key rk is locked by a
// transaction other than own (nil: any).
func checkLock(locks Store, rk []byte, own *TxnID, now int64) (Reply, bool, error) {
	l, found, err := readLock(locks, rk)
	if err != nil || !found {
		return Reply{}, err == nil, err
	}
	if own != nil && l.id == *own {
		return Reply{}, true, nil
	}
	return Locked(l.id, rk, now-l.lockedAt), false, nil
}

// hintNoLocks is the no-locks certificate's bit in the range's hint
// word.
const hintNoLocks = 1 << 0

// lockArea is the store lock records are read and written through: the
// range's, without a read of a lock record while the range's
// certificate says it holds none; read-only in a query.
type lockArea struct {
	rs       *rangeStore
	readOnly bool
}

// none reports whether the range holds no lock record by its
// certificate, and the command wrote none.
func (l lockArea) none() bool {
	return l.rs.data.Hints()&hintNoLocks != 0 && !l.rs.lockWritten
}

func (l lockArea) Get(key []byte) ([]byte, bool, error) {
	if IsLockKey(key) && l.none() {
		return nil, false, nil
	}
	return l.rs.Get(key)
}

func (l lockArea) Scan(start, end []byte, limit int) ([]KV, error) {
	return l.rs.Scan(start, end, limit)
}

func (l lockArea) Set(key, value []byte) error {
	if l.readOnly {
		return ErrReadOnly
	}
	return l.rs.Set(key, value)
}

func (l lockArea) Delete(key []byte) error {
	if l.readOnly {
		return ErrReadOnly
	}
	return l.rs.Delete(key)
}

func (l lockArea) DeleteRange(start, end []byte) error {
	if l.readOnly {
		return ErrReadOnly
	}
	return l.rs.DeleteRange(start, end)
}

// anyLock answers Locked if any key of the range holds a lock: none if
// its certificate says so, otherwise a seek into the lock area of each
// slot that holds records.
func anyLock(locks lockArea, now int64) (Reply, bool, error) {
	return anyLockFrom(locks, nil, now)
}

// anyLockFrom is anyLock for the locks at or after the raw key from (nil:
// the range's start).
func anyLockFrom(locks lockArea, from []byte, now int64) (Reply, bool, error) {
	if locks.none() {
		return Reply{}, true, nil
	}
	for {
		kvs, err := locks.Scan(from, nil, 1)
		if err != nil || len(kvs) == 0 {
			return Reply{}, true, err
		}
		k := kvs[0].Key
		if len(k) < 2 {
			return Reply{}, false, corruptf("a record key of %d bytes", len(k))
		}
		if IsLockKey(k) {
			l, err := decodeLock(kvs[0].Value)
			if err != nil {
				return Reply{}, false, err
			}
			rk := append(append([]byte{}, k[:2]...), k[4:]...)
			return Locked(l.id, rk, now-l.lockedAt), false, nil
		}
		area := append(append([]byte{}, k[:2]...), lockMarker...)
		if bytes.Compare(k, area) < 0 {
			from = area // this slot's lock area is still ahead
			continue
		}
		s := int(k[0])<<8 | int(k[1])
		if s+1 >= SlotCount {
			return Reply{}, true, nil
		}
		from = SlotKey(uint16(s + 1))
	}
}

// Image is a Redis key's records as a cross-range transaction read or
// wrote them: RK is its raw route key (RawRouteKey), Records every record
// under it (raw keys), in key order. An empty image is an absent key.
type Image struct {
	RK      []byte
	Records []KV
}

// lockKeys is the lock step: every key (raw route keys) gets id's lock,
// or, if any is held by another transaction, none does and the reply is
// Locked. It replies [now, seed, images], the images in the order of rks.
func lockKeys(raw, locks Store, id TxnID, rks [][]byte, now int64, seed uint64) (Reply, error) {
	for _, rk := range rks {
		if r, ok, err := checkLock(locks, rk, &id, now); !ok || err != nil {
			return r, err
		}
	}
	images := make([]Reply, 0, len(rks))
	size := 0
	for _, rk := range rks {
		var recs []Reply
		err := eachKV(raw, rk, prefixEnd(rk), func(kv KV) (bool, error) {
			size += len(kv.Key) + len(kv.Value)
			recs = append(recs, Bulk(kv.Key), Bulk(kv.Value))
			return size <= MaxImageBytes, nil
		})
		if err != nil {
			return Reply{}, err
		}
		if size > MaxImageBytes {
			return Error(fmt.Sprintf("ERR a transaction across ranges reads whole keys, and these hold more than %d bytes in one range", MaxImageBytes)), nil
		}
		images = append(images, Array(recs...))
	}
	for _, rk := range rks {
		if err := locks.Set(lockKey(rk), encodeLock(lock{id: id, lockedAt: now})); err != nil {
			return Reply{}, err
		}
	}
	return Array(Int(now), Int(int64(seed)), Array(images...)), nil
}

// resolveKeys is the resolve step for the keys of rks that id still
// locks: if commit, each that has an image in images (by raw route key)
// becomes it; every such lock goes. It replies the number of locks
// dropped.
func resolveKeys(raw, locks Store, id TxnID, commit bool, rks [][]byte, images []Image) (Reply, error) {
	byRK := map[string]Image{}
	for _, im := range images {
		byRK[string(im.RK)] = im
	}
	dropped := 0
	for _, rk := range rks {
		l, found, err := readLock(locks, rk)
		if err != nil {
			return Reply{}, err
		}
		if !found {
			continue
		}
		if l.id != id && !mutation.On(MutResolveIgnoresOwner) {
			continue // resolved already, and locked again since
		}
		if im, ok := byRK[string(rk)]; ok && commit {
			if err := raw.DeleteRange(rk, prefixEnd(rk)); err != nil {
				return Reply{}, err
			}
			for _, kv := range im.Records {
				if err := raw.Set(kv.Key, kv.Value); err != nil {
					return Reply{}, err
				}
			}
		}
		if err := locks.Delete(lockKey(rk)); err != nil {
			return Reply{}, err
		}
		dropped++
	}
	return Int(int64(dropped)), nil
}

// LockCommand locks the keys of raw route keys rks (one range's, sorted)
// for id and reads their images (LockReply reads the reply).
func LockCommand(id TxnID, rks [][]byte) []byte {
	return appendList(appendField([]byte{cmdVersion, opLock}, id[:]), rks)
}

// LockReply reads a lock step's reply: the leader's time and seed, and
// the images of the keys locked, in the command's order.
func LockReply(r Reply, rks [][]byte) (now int64, seed uint64, images []Image, err error) {
	if r.Kind != KindArray || len(r.Elems) != 3 || r.Elems[2].Kind != KindArray || len(r.Elems[2].Elems) != len(rks) {
		return 0, 0, nil, fmt.Errorf("%w: a lock reply of kind %d", errMalformed, r.Kind)
	}
	for i, im := range r.Elems[2].Elems {
		if len(im.Elems)%2 != 0 {
			return 0, 0, nil, fmt.Errorf("%w: an image of %d elements", errMalformed, len(im.Elems))
		}
		image := Image{RK: rks[i]}
		for j := 0; j < len(im.Elems); j += 2 {
			image.Records = append(image.Records, KV{Key: im.Elems[j].Str, Value: im.Elems[j+1].Str})
		}
		images = append(images, image)
	}
	return r.Elems[0].Int, uint64(r.Elems[1].Int), images, nil
}

// ResolveCommand resolves id's locks on the keys of raw route keys rks
// (one range's): with commit, the keys with an image in images become it.
func ResolveCommand(id TxnID, commit bool, rks [][]byte, images []Image) []byte {
	b := appendField([]byte{cmdVersion, opResolve}, id[:])
	b = append(b, boolByte(commit))
	b = appendList(b, rks)
	return AppendImages(b, images)
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// AppendImages appends images in the form ResolveCommand and the
// session's decision records carry them; ReadImages reads it.
func AppendImages(b []byte, images []Image) []byte {
	b = binary.AppendUvarint(b, uint64(len(images)))
	for _, im := range images {
		b = appendField(b, im.RK)
		b = binary.AppendUvarint(b, uint64(len(im.Records)))
		for _, kv := range im.Records {
			b = appendField(appendField(b, kv.Key), kv.Value)
		}
	}
	return b
}

// ReadImages reads what AppendImages wrote, and what follows it.
func ReadImages(b []byte) (images []Image, rest []byte, err error) {
	d := fieldReader{b: b}
	images = readImages(&d)
	return images, d.b, d.err
}

func readImages(d *fieldReader) []Image {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.err = errMalformed
		return nil
	}
	var images []Image
	for i := uint64(0); i < n && d.err == nil; i++ {
		im := Image{RK: d.field()}
		m := d.uint()
		if m > uint64(len(d.b)) {
			d.err = errMalformed
			return nil
		}
		for j := uint64(0); j < m && d.err == nil; j++ {
			kv := KV{Key: d.field(), Value: d.field()}
			if d.err == nil && !bytes.HasPrefix(kv.Key, im.RK) {
				d.err = fmt.Errorf("%w: an image record outside its key", errMalformed)
			}
			im.Records = append(im.Records, kv)
		}
		images = append(images, im)
	}
	return images
}

func isBlocking(args [][]byte) bool {
	spec, ok := lookupBytes(args[0])
	return ok && spec.Where == WhereBlocking
}

// OtherDBKeys are the raw route keys (RawRouteKey) a command run in
// database db writes in another database: MOVE's key in its target
// database, COPY ... DB n's destination. A cross-range transaction locks
// them with the keys the command names (they lie in the same range: a
// key's slot comes first). Arguments that do not parse give none (the
// command answers its error and writes nothing).
func OtherDBKeys(db int, args [][]byte) [][]byte {
	if len(args) == 0 {
		return nil
	}
	target := func(b []byte) (int, bool) {
		n, ok := parseInt(b)
		return int(n), ok && n >= 0 && n < Databases && int(n) != db
	}
	switch {
	case eqFold(args[0], "move") && len(args) == 3:
		if n, ok := target(args[2]); ok {
			return [][]byte{RawRouteKey(n, args[1])}
		}
	case eqFold(args[0], "copy") && len(args) >= 3:
		for j := 3; j+1 < len(args); j++ {
			if eqFold(args[j], "db") {
				if n, ok := target(args[j+1]); ok {
					return [][]byte{RawRouteKey(n, args[2])}
				}
			}
		}
	}
	return nil
}

// errUndeclared is RunTxn's finding that a command wrote a key it does
// not name (COPY ... DB n names its destination in the source's
// database), which no lock covered.
var errUndeclared = errors.New("a command wrote a key outside the transaction's locks")

// TxnRun is what RunTxn computed: the reply, whether a blocking command's
// step was ready, and the images of the keys it changed.
type TxnRun struct {
	Reply  Reply
	Ready  bool
	Writes []Image
}

// RunTxn runs cmds in database db on images (every key they name, as the
// lock step read them) at now with seed, as a range would run them: a
// MULTI/EXEC block (multi, checked against watches) or one command (a
// blocking one's step when it blocks). A reply with Reply.Err, or a
// command that wrote a key outside the images, writes nothing.
//
// notify asks for the keyspace events of those classes (WithNotify),
// returned in the reply.
func RunTxn(images []Image, db int, now int64, seed uint64, watches []Watch, cmds [][][]byte, multi bool, cfg *ObjectConfig, notify uint16) TxnRun {
	ev := &events{flags: notify}
	mem := NewMemStore()
	for _, im := range images {
		for _, kv := range im.Records {
			_ = mem.Set(kv.Key, kv.Value) // a MemStore never fails
		}
	}
	st := viewOf(mem, db)
	var run TxnRun
	switch {
	case multi:
		run.Reply, run.Ready = execBatch(st, now, seed, watches, cmds, cfg, ev), true
	case len(cmds) != 1:
		run.Reply = internalError(fmt.Errorf("redis: RunTxn of %d commands outside MULTI", len(cmds)))
	case Blocks(cmds[0]) || isBlocking(cmds[0]):
		run.Reply, run.Ready = tryBlocking(st, now, cmds[0], ev)
	default:
		run.Reply, run.Ready = execWith(st, now, seed, cmds[0], cfg, ev), true
	}
	if run.Reply.Err != nil {
		return run
	}
	after := mem.Dump()
	declared := func(k []byte) bool {
		for _, im := range images {
			if bytes.HasPrefix(k, im.RK) {
				return true
			}
		}
		return false
	}
	for _, kv := range after {
		if !declared(kv.Key) {
			r := Error("ERR the command writes a key it does not name (COPY ... DB), which a transaction across ranges does not support")
			r.Err = fmt.Errorf("redis: %w: %x", errUndeclared, kv.Key)
			return TxnRun{Reply: r}
		}
	}
	for _, im := range images {
		now, _ := mem.Scan(im.RK, prefixEnd(im.RK), len(after)+1)
		if !slices.EqualFunc(now, im.Records, func(a, b KV) bool {
			return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value)
		}) {
			run.Writes = append(run.Writes, Image{RK: im.RK, Records: now})
		}
	}
	if len(ev.list) > 0 {
		run.Reply.Events = ev.list
	}
	return run
}
