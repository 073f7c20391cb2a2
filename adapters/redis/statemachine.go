package redis

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
)

// The replicated state machine: Redis commands as consensus commands.
//
// A command's bytes are an op byte and length-prefixed fields (below). Apply
// runs the writes (a keyed command, a MULTI/EXEC batch, the step of a
// blocking command, a FLUSHDB share, an active-expiry sweep) on the range's
// leader, with its time and seed, and consensus replicates what they wrote;
// Query runs the reads at the leader. Every reply is a Reply in a compact binary form
// (EncodeReply), decoded by the server with DecodeReply, so the RESP2/RESP3
// choice stays with each connection.
//
// A command whose Exec sets Reply.Err (a corrupt record, a failing store, a
// bug caught by Exec's recover) makes Apply return the error: the leader
// crashes rather than propose a half-executed command
// (consensus.StateMachine's contract).

// Command ops. Writes go through Client.Command, reads through Client.Query.
const (
	opExec     = 'x' // args: a keyed command (write or read)
	opMulti    = 'm' // watches, then commands: MULTI/EXEC (write)
	opBlock    = 'b' // args: TryBlocking (write) or its readiness probe (read)
	opSweep    = 'e' // start, from, limit: active expiry (write)
	opFlush    = 'f' // start: this range's share of FLUSHDB (write)
	opFlushAll = 'F' // start: this range's share of FLUSHALL, every database (write)
	opDB       = 'D' // database, then a whole command (from its version byte) to run in that database
	opConfig   = 'O' // OBJECT's configuration (WithObjectConfig), then a whole command, opDB's included
	opNotify   = 'N' // keyspace event classes (WithNotify), then a whole command, opConfig's and opDB's included
	opScan     = 's' // start, from, count, match, type: ScanRange (read)
	opCount    = 'c' // start: CountKeys (read)
	opKeyStats = 'k' // start: CountKeyStats, every database (read)
	opRandom   = 'r' // start: RandomKey (read)
	opDigest   = 'd' // keys: their WATCH digests (read)
	opLock     = 'l' // txn ID, raw route keys: a cross-range transaction's lock step (write, locks.go)
	opResolve  = 'v' // txn ID, commit, raw route keys, images: its resolve step (write)
	opLockScan = 'L' // start, after: the first lock past the key of raw route key after (nil: from start) (read)
	opImport   = 'I' // raw keys and values: a restore's records, written as they are (write, ImportCommand)
	opCertify  = 'C' // start: certify the range holds no lock, if it holds none (write, CertifyCommand)
	cmdVersion = 1
)

// StateMachine is consensus.StateMachine for Redis commands. The zero value
// works. Apply runs where consensus evaluates a write (the range's leader),
// not on every replica: what must happen on every replica as writes apply
// (waking blocked clients) hangs on consensus.Options.Applied.
type StateMachine struct{}

var (
	_ consensus.StateMachine = (*StateMachine)(nil)
	_ consensus.SplitKeyer   = (*StateMachine)(nil)
	_ consensus.LongQuerier  = (*StateMachine)(nil)
)

// LongQuery implements consensus.LongQuerier: the queries that walk the
// range's keys (a count, INFO's key statistics, RANDOMKEY's pick, a SCAN
// page, whose COUNT the client chooses) grow with the range, and run off
// the driver, which would otherwise hold every write of the node for as
// long as they read.
func (sm *StateMachine) LongQuery(cmd []byte) bool {
	w, ok := peel(cmd)
	if !ok {
		return false
	}
	switch w.cmd[1] {
	case opScan, opCount, opKeyStats, opRandom:
		return true
	}
	return false
}

// wrapped is a command with its wrappers peeled: keyspace events to
// collect (opNotify), the object encoding settings (opConfig) and the
// database (opDB), outermost first; cmd is the command inside.
type wrapped struct {
	ev     *events
	objCfg *ObjectConfig
	db     int
	cmd    []byte
}

// peel takes cmd's wrappers off; false if they are malformed.
func peel(cmd []byte) (w wrapped, ok bool) {
	if len(cmd) < 2 || cmd[0] != cmdVersion {
		return w, false
	}
	if cmd[1] == opNotify {
		if w.ev, cmd, ok = readNotify(cmd); !ok {
			return w, false
		}
	}
	if cmd[1] == opConfig {
		cfg, rest, ok := readObjectConfig(cmd)
		if !ok || len(rest) < 2 || rest[0] != cmdVersion || rest[1] == opConfig {
			return w, false
		}
		w.objCfg, cmd = cfg, rest
	}
	if cmd[1] == opDB {
		if len(cmd) < 5 || cmd[2] == 0 || int(cmd[2]) >= Databases || cmd[3] != cmdVersion || cmd[4] == opDB {
			return w, false
		}
		w.db, cmd = int(cmd[2]), cmd[3:]
	}
	w.cmd = cmd
	return w, true
}

// Apply implements consensus.StateMachine.
func (sm *StateMachine) Apply(data consensus.RangeData, cmd []byte, meta consensus.CommandMeta) ([]byte, error) {
	r, err := run(data, cmd, meta, true)
	if err == nil && r.Err != nil {
		err = r.Err
	}
	if err != nil {
		return nil, fmt.Errorf("redis: apply: %w", err)
	}
	return EncodeReply(nil, r), nil
}

// Query implements consensus.StateMachine.
func (sm *StateMachine) Query(data consensus.RangeData, cmd []byte, meta consensus.CommandMeta) ([]byte, error) {
	r, err := run(data, cmd, meta, false)
	if err != nil {
		return nil, fmt.Errorf("redis: query: %w", err)
	}
	r.Err = nil // an error reply; the node's data is not at stake in a read
	return EncodeReply(nil, r), nil
}

func run(data consensus.RangeData, cmd []byte, meta consensus.CommandMeta, write bool) (r Reply, err error) {
	w, ok := peel(cmd)
	if !ok {
		return Reply{}, fmt.Errorf("malformed command %x", cmd[:min(len(cmd), 8)])
	}
	ev := w.ev
	if ev != nil {
		defer func() {
			if err == nil && r.Err == nil && len(ev.list) > 0 {
				r.Events = ev.list
			}
		}()
	}
	objCfg, db, cmd := w.objCfg, w.db, w.cmd
	op := cmd[1]
	d := fieldReader{b: cmd[2:]}
	rs := &rangeStore{data: data}
	if write {
		// A lock record written ends the range's certificate that it
		// holds none (locks.go, "The no-locks certificate").
		defer func() {
			if rs.lockWritten && !mutation.On(MutLockKeepsCertificate) {
				err = errors.Join(err, data.SetHints(data.Hints()&^hintNoLocks))
			}
		}()
	}
	// Commands see their database (databases.go); active expiry and
	// FLUSHALL work on every database's records; none sees the lock
	// areas, which only locks (below) reads and writes (locks.go).
	locks := lockArea{rs: rs}
	raw, st := Store(hideLocks{rs}), viewOf(hideLocks{rs}, db)
	if !write {
		locks.readOnly = true
		raw, st = ReadOnly(raw), ReadOnly(st)
		switch op {
		case opFlush, opFlushAll:
			return Reply{}, fmt.Errorf("write op %q sent as a query", op)
		case opSweep:
			// A dry run: how many keys of the batch have expired, with
			// nothing deleted (the session asks before proposing a sweep).
			raw = dryRun{raw}
		}
	}
	now := meta.NowMillis
	switch op {
	case opExec:
		args := d.list()
		if d.err != nil {
			return Reply{}, d.err
		}
		if r, ok, err := checkLocks(locks, db, Keys(args), now); (!ok || err != nil) && !lockCheckPlanted(write) {
			return r, err
		}
		return execWith(st, now, meta.Rand, args, objCfg, ev), nil
	case opMulti:
		return runMulti(st, locks, db, &d, meta, objCfg, ev)
	case opBlock:
		args := d.list()
		if d.err != nil {
			return Reply{}, d.err
		}
		if r, ok, err := checkLocks(locks, db, Keys(args), now); !ok || err != nil {
			return r, err
		}
		if !write {
			// The probe: "not ready" is certain (nothing was written);
			// anything else — an element to pop, an error, a write refused
			// by the read-only store — says "run the real step".
			_, ready := TryBlocking(st, now, args)
			return Bool(ready), nil
		}
		r, ready := tryBlocking(st, now, args, ev)
		if r.Err != nil {
			return r, nil
		}
		return Array(Bool(ready), r), nil
	case opSweep:
		rs.start = d.field()
		from, limit := d.optField(), d.uint()
		if d.err != nil {
			return Reply{}, d.err
		}
		if from == nil {
			from = rs.start
		}
		expired := ev
		if !write {
			expired = nil // a dry run deletes nothing
		}
		n, next, err := expireSweepFrom(raw, now, from, int(limit), expired)
		if err != nil {
			return Reply{}, err
		}
		return Array(Int(int64(n)), nullOrBulk(next)), nil
	case opFlush, opFlushAll:
		rs.start = d.field()
		if d.err != nil {
			return Reply{}, d.err
		}
		// A lock's transaction may be committed with images to write:
		// the flush waits until the range has none (locks.go).
		if r, ok, err := anyLock(locks, now); !ok || err != nil {
			return r, err
		}
		if op == opFlush {
			return OK(), Flush(st)
		}
		return OK(), Flush(raw)
	case opLockScan:
		rs.start = d.field()
		after := d.optField()
		if d.err != nil {
			return Reply{}, d.err
		}
		var from []byte
		if after != nil {
			from = append(lockKey(after), 0)
		}
		r, ok, err := anyLockFrom(locks, from, now)
		if ok || err != nil {
			if err == nil && after == nil && !locks.none() {
				return Int(0), nil // none, and worth a certificate
			}
			return Null(), err
		}
		// As a plain array: a Locked reply would make the caller wait
		// for the lock rather than read it.
		id, rk, age, _ := LockedBy(r)
		return Array(Bulk(id[:]), Bulk(rk), Int(age)), nil
	case opLock, opResolve:
		if !write || db != 0 {
			return Reply{}, fmt.Errorf("op %q sent as a query or in a database", op)
		}
		var id TxnID
		if f := d.field(); len(f) == len(id) {
			copy(id[:], f)
		} else {
			return Reply{}, fmt.Errorf("%w: a transaction ID of %d bytes", errMalformed, len(f))
		}
		commit := false
		if op == opResolve {
			c := d.bytes(1)
			commit = len(c) == 1 && c[0] == 1
		}
		rks := d.list()
		for _, rk := range rks {
			if _, n, _, ok := decodeRouteKey(rk); !ok || n != len(rk) {
				return Reply{}, fmt.Errorf("%w: %x is not a route key", errMalformed, rk)
			}
		}
		if op == opLock {
			if d.err != nil || len(d.b) != 0 {
				return Reply{}, errors.Join(errMalformed, d.err)
			}
			return lockKeys(raw, locks, id, rks, now, meta.Rand)
		}
		images := readImages(&d)
		if d.err != nil || len(d.b) != 0 {
			return Reply{}, errors.Join(errMalformed, d.err)
		}
		return resolveKeys(raw, locks, id, commit, rks, images)
	case opCertify:
		rs.start = d.field()
		if !write || db != 0 || d.err != nil || len(d.b) != 0 {
			return Reply{}, errors.Join(fmt.Errorf("op %q sent as a query, in a database or malformed", op), d.err)
		}
		if _, none, err := anyLock(locks, now); !none || err != nil {
			return Bool(false), err
		}
		return Bool(true), data.SetHints(data.Hints() | hintNoLocks)
	case opImport:
		if !write || db != 0 {
			return Reply{}, fmt.Errorf("op %q sent as a query or in a database", op)
		}
		kvs := d.list()
		if d.err != nil || len(d.b) != 0 || len(kvs)%2 != 0 {
			return Reply{}, errors.Join(errMalformed, d.err)
		}
		for i := 0; i < len(kvs); i += 2 {
			if _, _, _, ok := decodeRouteKey(kvs[i]); !ok || IsLockKey(kvs[i]) {
				return Error(fmt.Sprintf("ERR a restore's record %x is not a key's record", kvs[i])), nil
			}
		}
		for i := 0; i < len(kvs); i += 2 {
			if err := raw.Set(kvs[i], kvs[i+1]); err != nil {
				return Reply{}, err
			}
		}
		return Int(int64(len(kvs) / 2)), nil
	}
	// Reads (on a read-only store even when applied).
	raw, st = ReadOnly(hideLocks{rs}), ReadOnly(viewOf(hideLocks{rs}, db))
	switch op {
	case opScan:
		rs.start = d.field()
		from, count := d.optField(), d.uint()
		var opts ScanOptions
		opts.Match, opts.Type = d.optField(), d.optField()
		if d.err != nil {
			return Reply{}, d.err
		}
		if from == nil {
			from = rs.start
		}
		keys, next, err := ScanRange(st, now, from, int(count), opts)
		if err != nil {
			return Reply{}, err
		}
		return Array(bulks(keys), nullOrBulk(next)), nil
	case opCount:
		rs.start = d.field()
		if d.err != nil {
			return Reply{}, d.err
		}
		n, err := CountKeys(st, now)
		return Int(n), err
	case opKeyStats:
		rs.start = d.field()
		if d.err != nil {
			return Reply{}, d.err
		}
		stats, err := CountKeyStats(raw, now)
		var out []Reply
		for db, ks := range stats {
			if ks.Keys > 0 {
				out = append(out, Array(Int(int64(db)), Int(ks.Keys), Int(ks.Expires), Int(ks.TTLSum)))
			}
		}
		return Array(out...), err
	case opRandom:
		rs.start = d.field()
		if d.err != nil {
			return Reply{}, d.err
		}
		k, ok, err := RandomKey(st, now, meta.Rand)
		if err != nil || !ok {
			return Null(), err
		}
		return Bulk(k), nil
	case opDigest:
		keys := d.list()
		if d.err != nil {
			return Reply{}, d.err
		}
		// A digest taken under a lock would be of the value the lock's
		// transaction may be about to replace: EXEC would abort for it.
		if r, ok, err := checkLocks(locks, db, keys, now); !ok || err != nil {
			return r, err
		}
		var out []Reply
		for _, k := range keys {
			dg, err := keyDigest(st, now, k)
			if err != nil {
				return Reply{}, err
			}
			out = append(out, Bulk(dg))
		}
		return Array(out...), nil
	}
	return Reply{}, fmt.Errorf("unknown op %q", op)
}

func nullOrBulk(b []byte) Reply {
	if b == nil {
		return Null()
	}
	return Bulk(b)
}

// Watch is a key watched by WATCH and its digest when it was watched.
type Watch struct {
	Key, Digest []byte
}

// keyDigest identifies a key's current value: a hash of every record of a
// live key, a fixed "absent" marker otherwise. WATCH compares digests, so
// a key changed and changed back to the same value (and type and TTL) is
// not seen as modified, unlike Redis.
func keyDigest(st Store, now int64, key []byte) ([]byte, error) {
	rk := RouteKey(key)
	v, found, err := st.Get(rk)
	if err != nil {
		return nil, err
	}
	if !found {
		return []byte("absent"), nil
	}
	m, err := decodeMeta(v)
	if err != nil {
		return nil, err
	}
	if !live(m, now) {
		return []byte("absent"), nil
	}
	h := sha256.New()
	if mutation.On(MutWatchDigestMetaOnly) {
		h.Write(v)
		return h.Sum(nil)[:16], nil
	}
	err = eachKV(st, rk, prefixEnd(rk), func(kv KV) (bool, error) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(kv.Key)))
		h.Write(n[:])
		h.Write(kv.Key)
		binary.BigEndian.PutUint64(n[:], uint64(len(kv.Value)))
		h.Write(n[:])
		h.Write(kv.Value)
		return true, nil
	})
	return h.Sum(nil)[:16], err
}

// runMulti is EXEC of one range: unless a key it names is locked (the
// reply is then Locked), execBatch.
func runMulti(st Store, locks lockArea, db int, d *fieldReader, meta consensus.CommandMeta, objCfg *ObjectConfig, ev *events) (Reply, error) {
	nw := d.uint()
	var watches []Watch
	for range min(nw, 1<<16) {
		watches = append(watches, Watch{Key: d.field(), Digest: d.field()})
	}
	nc := d.uint()
	var cmds [][][]byte
	for range min(nc, 1<<20) {
		cmds = append(cmds, d.list())
	}
	if d.err != nil {
		return Reply{}, d.err
	}
	var keys [][]byte
	for _, w := range watches {
		keys = append(keys, w.Key)
	}
	for _, args := range cmds {
		keys = append(keys, Keys(args)...)
	}
	if r, ok, err := checkLocks(locks, db, keys, meta.NowMillis); (!ok || err != nil) && !lockCheckPlanted(true) {
		return r, err
	}
	return execBatch(st, meta.NowMillis, meta.Rand, watches, cmds, objCfg, ev), nil
}

// execBatch is EXEC: if every watched key still has its digest, the
// queued commands run in order, as one atomic write; otherwise nothing
// runs and the reply is a null array. A reply with Reply.Err stops it,
// and its writes must be discarded.
func execBatch(st Store, now int64, seed uint64, watches []Watch, cmds [][][]byte, objCfg *ObjectConfig, ev *events) Reply {
	for _, w := range watches {
		dg, err := keyDigest(st, now, w.Key)
		if err != nil {
			return internalError(err)
		}
		if string(dg) != string(w.Digest) {
			return NullArray()
		}
	}
	out := make([]Reply, 0, len(cmds))
	for i, args := range cmds {
		// Each command gets its own seed, derived from the entry's.
		seed := seed ^ uint64(i)*0x9E3779B97F4A7C15
		var r Reply
		if spec, ok := lookupBytes(args[0]); ok && spec.Where == WhereBlocking {
			// In a transaction a blocking command does not block (Redis
			// treats it as its non-blocking form with a timeout).
			var ready bool
			r, ready = tryBlocking(st, now, args, ev)
			if !ready && r.Err == nil {
				r = TimeoutReply(spec.Name)
			}
		} else {
			r = execWith(st, now, seed, args, objCfg, ev)
		}
		if r.Err != nil || (mutation.On(MutExecErrorAborts) && r.Kind == KindError) {
			return r
		}
		out = append(out, r)
	}
	return Array(out...)
}

// rangeStore is Store over a consensus range. start stands in for a nil
// start key (the range's first key) in range-wide operations, which the
// command carries because RangeData refuses keys outside the range.
type rangeStore struct {
	data  consensus.RangeData
	start []byte
	// lockWritten: the command wrote a lock record (locks.go).
	lockWritten bool
}

func (s *rangeStore) Get(key []byte) ([]byte, bool, error) { return s.data.Get(key) }

func (s *rangeStore) Scan(start, end []byte, limit int) ([]KV, error) {
	if start == nil {
		start = s.start
	}
	end = s.bound(end)
	if bytes.Compare(start, end) >= 0 {
		return nil, nil
	}
	kvs, err := s.data.Scan(start, end, limit)
	if err != nil {
		return nil, err
	}
	out := make([]KV, len(kvs))
	for i, kv := range kvs {
		out[i] = KV{Key: kv.Key, Value: kv.Value}
	}
	return out, nil
}

func (s *rangeStore) Set(key, value []byte) error {
	if IsLockKey(key) {
		s.lockWritten = true
	}
	return s.data.Set(key, value)
}

func (s *rangeStore) Delete(key []byte) error { return s.data.Delete(key) }
func (s *rangeStore) DeleteRange(start, end []byte) error {
	if start == nil {
		start = s.start
	}
	end = s.bound(end)
	if bytes.Compare(start, end) >= 0 {
		return nil
	}
	return s.data.DeleteRange(start, end)
}

// bound is the end of a scan or a range deletion: end, or for nil the
// range's end, and never past KeyspaceEnd (the range that holds the last
// slots also holds the kernel's system keys, which FLUSHALL, SCAN and
// active expiry must not see).
func (s *rangeStore) bound(end []byte) []byte {
	if end == nil {
		_, end = s.data.Bounds()
	}
	if end == nil || bytes.Compare(end, KeyspaceEnd) > 0 {
		end = KeyspaceEnd
	}
	return end
}

// Command encoders, for the server.

// ExecCommand is a keyed command (args[0] is its name).
func ExecCommand(args [][]byte) []byte {
	return appendList([]byte{cmdVersion, opExec}, args)
}

// MultiCommand is EXEC of the queued commands, guarded by the watches.
func MultiCommand(watches []Watch, cmds [][][]byte) []byte {
	b := []byte{cmdVersion, opMulti}
	b = binary.AppendUvarint(b, uint64(len(watches)))
	for _, w := range watches {
		b = appendField(appendField(b, w.Key), w.Digest)
	}
	b = binary.AppendUvarint(b, uint64(len(cmds)))
	for _, c := range cmds {
		b = appendList(b, c)
	}
	return b
}

// BlockingCommand is the step of a blocking command: as a write it replies
// [ready (bool), reply]; as a query it is a probe that replies false only if
// the step would certainly not be ready.
func BlockingCommand(args [][]byte) []byte {
	return appendList([]byte{cmdVersion, opBlock}, args)
}

// LockScanCommand asks the range starting at start for its first lock
// past the key of raw route key after (nil: its first lock): a read that
// answers [transaction ID, raw route key, age in ms], or null when there
// is none (the session's lock sweeper, ParseLockScan).
func LockScanCommand(start, after []byte) []byte {
	return appendOptField(appendField([]byte{cmdVersion, opLockScan}, start), after)
}

// CertifyCommand certifies that the range starting at start holds no
// lock record, if it holds none (locks.go, "The no-locks certificate"):
// a write that replies whether it did.
func CertifyCommand(start []byte) []byte {
	return appendField([]byte{cmdVersion, opCertify}, start)
}

// LockScanWantsCertificate reports whether LockScanCommand's reply says
// the range holds no lock and no certificate of it: worth a
// CertifyCommand.
func LockScanWantsCertificate(r Reply) bool { return r.Kind == KindInt && r.Int == 0 }

// ParseLockScan reads LockScanCommand's reply; ok false: no lock.
func ParseLockScan(r Reply) (id TxnID, rawRK []byte, ageMillis int64, ok bool) {
	if r.Kind != KindArray || len(r.Elems) != 3 || len(r.Elems[0].Str) != len(id) {
		return id, nil, 0, false
	}
	copy(id[:], r.Elems[0].Str)
	return id, r.Elems[1].Str, r.Elems[2].Int, true
}

// SweepCommand is active expiry on the range starting at start, from the
// internal key from (nil: the start), visiting at most limit keys. It replies
// [deleted, next or null].
func SweepCommand(start, from []byte, limit int) []byte {
	b := appendOptField(appendField([]byte{cmdVersion, opSweep}, start), from)
	return binary.AppendUvarint(b, uint64(max(limit, 0)))
}

// FlushCommand deletes every key of the range starting at start, in the
// command's database (InDB): the range's share of FLUSHDB.
func FlushCommand(start []byte) []byte {
	return appendField([]byte{cmdVersion, opFlush}, start)
}

// FlushAllCommand deletes every key of every database of the range
// starting at start: the range's share of FLUSHALL.
func FlushAllCommand(start []byte) []byte {
	return appendField([]byte{cmdVersion, opFlushAll}, start)
}

// InDB runs cmd (any command above but a sweep, FLUSHALL's or the key
// statistics, which cover every database) in database db; database 0 is
// a command's own.
func InDB(db int, cmd []byte) []byte {
	if db == 0 {
		return cmd
	}
	return append([]byte{cmdVersion, opDB, byte(db)}, cmd...)
}

// ScanCommand is ScanRange on the range starting at start, from the internal
// key from (nil: the start). It replies [keys, next or null].
func ScanCommand(start, from []byte, count int, opts ScanOptions) []byte {
	b := appendOptField(appendField([]byte{cmdVersion, opScan}, start), from)
	b = binary.AppendUvarint(b, uint64(max(count, 0)))
	return appendOptField(appendOptField(b, opts.Match), opts.Type)
}

// CountCommand is CountKeys on the range starting at start.
func CountCommand(start []byte) []byte { return appendField([]byte{cmdVersion, opCount}, start) }

// KeyStatsCommand is CountKeyStats on the range starting at start: it
// replies, for each database holding keys, [db, keys, expires, TTL sum in
// ms], in database order.
func KeyStatsCommand(start []byte) []byte { return appendField([]byte{cmdVersion, opKeyStats}, start) }

// RandomKeyCommand is RandomKey on the range starting at start.
func RandomKeyCommand(start []byte) []byte { return appendField([]byte{cmdVersion, opRandom}, start) }

// ImportCommand writes records (raw keys of one range's keys, and their
// values) as they are: a restore's (backup.ImportRedis). Lock records
// are refused: a backup holds none.
func ImportCommand(records []KV) []byte {
	l := make([][]byte, 0, 2*len(records))
	for _, kv := range records {
		l = append(l, kv.Key, kv.Value)
	}
	return appendList([]byte{cmdVersion, opImport}, l)
}

// RouteKeyOf is the raw route key of the Redis key a record of the raw
// keyspace belongs to (false: the record is under no key).
func RouteKeyOf(raw []byte) ([]byte, bool) {
	_, n, _, ok := decodeRouteKey(raw)
	if !ok {
		return nil, false
	}
	return raw[:n:n], true
}

// LockRecord reads a lock record of the raw keyspace (IsLockKey): the
// transaction holding it and the raw route key of the key it locks.
func LockRecord(kv KV) (TxnID, []byte, error) {
	if !IsLockKey(kv.Key) {
		return TxnID{}, nil, corruptf("%x is not a lock record", kv.Key)
	}
	l, err := decodeLock(kv.Value)
	return l.id, append(append([]byte{}, kv.Key[:2]...), kv.Key[4:]...), err
}

// DigestCommand reads the WATCH digests of keys (one range's).
func DigestCommand(keys [][]byte) []byte { return appendList([]byte{cmdVersion, opDigest}, keys) }

// Field encoding: a uvarint length and the bytes. An optional field is a
// uvarint 0 (absent) or 1+length and the bytes.

func appendField(b, f []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(f))), f...)
}

func appendOptField(b, f []byte) []byte {
	if f == nil {
		return binary.AppendUvarint(b, 0)
	}
	return append(binary.AppendUvarint(b, uint64(len(f))+1), f...)
}

func appendList(b []byte, l [][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, f := range l {
		b = appendField(b, f)
	}
	return b
}

var errMalformed = errors.New("redis: malformed command or reply encoding")

type fieldReader struct {
	b   []byte
	err error
}

func (r *fieldReader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errMalformed
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *fieldReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errMalformed
		return nil
	}
	f := r.b[:n:n]
	r.b = r.b[n:]
	return f
}

func (r *fieldReader) field() []byte { return r.bytes(r.uint()) }

func (r *fieldReader) optField() []byte {
	n := r.uint()
	if n == 0 || r.err != nil {
		return nil
	}
	return r.bytes(n - 1)
}

func (r *fieldReader) list() [][]byte {
	n := r.uint()
	if n > uint64(len(r.b)) { // every field takes at least a byte
		r.err = errMalformed
	}
	var out [][]byte
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, r.field())
	}
	if r.err == nil && len(out) == 0 {
		r.err = errMalformed
	}
	return out
}

// EncodeReply appends r in the state machine's binary reply form: the kind,
// a flags byte (1 FlatInRESP2, 2 HumanDouble, 4 PairsInRESP2, 8 events
// follow), then the value, then the events. Reply.Err is not carried.
func EncodeReply(dst []byte, r Reply) []byte {
	flags := byte(0)
	if r.FlatInRESP2 {
		flags |= 1
	}
	if r.HumanDouble {
		flags |= 2
	}
	if r.PairsInRESP2 {
		flags |= 4
	}
	if len(r.Events) > 0 {
		flags |= 8
	}
	dst = append(dst, byte(r.Kind), flags)
	switch r.Kind {
	case KindSimple, KindError, KindBulk:
		dst = appendField(dst, r.Str)
	case KindLocked:
		dst = binary.AppendVarint(appendField(dst, r.Str), r.Int)
		dst = EncodeReply(dst, r.Elems[0])
	case KindVerbatim:
		dst = appendField(appendField(dst, []byte(r.Format)), r.Str)
	case KindInt, KindBool:
		dst = binary.AppendVarint(dst, r.Int)
	case KindDouble:
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(r.Float))
	case KindArray, KindSet, KindMap, KindPush:
		dst = binary.AppendUvarint(dst, uint64(len(r.Elems)))
		for _, e := range r.Elems {
			dst = EncodeReply(dst, e)
		}
	}
	if len(r.Events) > 0 {
		dst = appendEvents(dst, r.Events)
	}
	return dst
}

// DecodeReply reads a reply written by EncodeReply.
func DecodeReply(b []byte) (Reply, error) {
	fr := fieldReader{b: b}
	r := decodeReply(&fr, 0)
	if fr.err == nil && len(fr.b) != 0 {
		fr.err = errMalformed
	}
	return r, fr.err
}

func decodeReply(fr *fieldReader, depth int) (r Reply) {
	if len(fr.b) < 2 || depth > 64 {
		fr.err = errMalformed
		return Reply{}
	}
	r = Reply{Kind: Kind(fr.b[0]), FlatInRESP2: fr.b[1]&1 != 0, HumanDouble: fr.b[1]&2 != 0, PairsInRESP2: fr.b[1]&4 != 0}
	withEvents := fr.b[1]&8 != 0
	fr.b = fr.b[2:]
	if withEvents {
		defer func() {
			if fr.err == nil {
				r.Events = readEvents(fr)
			}
		}()
	}
	switch r.Kind {
	case KindSimple, KindError, KindBulk:
		r.Str = fr.field()
	case KindLocked:
		r.Str = fr.field()
		v, n := binary.Varint(fr.b)
		if n <= 0 {
			fr.err = errMalformed
			return r
		}
		r.Int, fr.b = v, fr.b[n:]
		r.Elems = []Reply{decodeReply(fr, depth+1)}
	case KindVerbatim:
		r.Format, r.Str = string(fr.field()), fr.field()
	case KindInt, KindBool:
		v, n := binary.Varint(fr.b)
		if n <= 0 {
			fr.err = errMalformed
			return r
		}
		r.Int, fr.b = v, fr.b[n:]
	case KindDouble:
		f := fr.bytes(8)
		if fr.err == nil {
			r.Float = math.Float64frombits(binary.BigEndian.Uint64(f))
		}
	case KindArray, KindSet, KindMap, KindPush:
		n := fr.uint()
		if n > uint64(len(fr.b)) {
			fr.err = errMalformed
			return r
		}
		r.Elems = make([]Reply, 0, n)
		for i := uint64(0); i < n && fr.err == nil; i++ {
			r.Elems = append(r.Elems, decodeReply(fr, depth+1))
		}
	case KindNull, KindNullArray:
	default:
		fr.err = errMalformed
	}
	return r
}

// dryRun is a store whose writes do nothing: a sweep run as a query counts
// what it would delete.
type dryRun struct{ Store }

func (dryRun) Set(key, value []byte) error         { return nil }
func (dryRun) Delete(key []byte) error             { return nil }
func (dryRun) DeleteRange(start, end []byte) error { return nil }
