package txn

import (
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// The commands the transactional keyspace's machine runs (machine.go),
// and their replies. Every command and reply carries its sender's clock
// reading (now), and the receiver's clock takes it in: a timestamp a node
// has seen is never above its own clock after that.

type op byte

const (
	// Queries, answered by the leaseholder (consensus.OpQuery), each
	// recorded in its timestamp cache.
	opGet     op = iota + 1 // key at read, uncertainty limit, txn (optional)
	opScan                  // [key, end) likewise, at most limit pairs
	opRefresh               // [key, end): nothing written in (from, read] but by txn
	// Writes, evaluated by the leaseholder and replicated (OpCommand).
	// opPut writes keys (at least one, in one range, key is the first)
	// with writes (a tag byte and the value, as opOnePhase's): txn's
	// intents, all at one timestamp; or, without txn, one committed
	// version. A batch meeting another transaction's intent writes none.
	opPut
	// opResolve settles txn's intents on keys (in one range, key is the
	// first): committed at read, or removed; up to Options.BatchBytes of
	// writes, then result.more, with result.resume the first key left.
	opResolve
	// opEnd decides the record at key: pending → committed at read, or
	// aborted; it keeps keys and spans, the intents to resolve.
	opEnd
	opPush      // the record at key: its state, aborted if expired or wounded
	opHeartbeat // the record at key: still alive
	opForget    // the record at key: gone (its intents are resolved)
	// opOnePhase commits txn's writes (keys, writes) in one range at
	// once, with no intents and no record (the one-range fast path).
	opOnePhase
	// opGC collects the garbage of [key, end) in this range (at most
	// limit keys): versions no read at or above now − GCTTL can see, and
	// settled records older than that, after resolving their intents here
	// (result.kvs: the records whose intents lie in other ranges too).
	opGC
	// opLock is a locking read (a write, replicated): txn's intent on key
	// holding the key's newest value, which the reply carries with the
	// intent's timestamp (docs/txn.md "Locking reads").
	opLock
	// opStatus is a query: the record at key, as opPush would find it
	// (codePending while a push must wait), changing nothing. A pusher
	// that waits polls with it: a read at the leaseholder, not a
	// replicated write per poll.
	opStatus
	// opResolveSpan settles every intent of txn in [key, end) within the
	// range, as opResolve does: for a record that keeps spans (a large
	// transaction's). Paged like a scan (result.more, result.resume).
	opResolveSpan
)

// lastOp is the highest op: a decoded command's op is at most it.
const lastOp = opResolveSpan

// query says whether o is answered by the leaseholder as a read
// (consensus.OpQuery) rather than evaluated and replicated.
func (o op) query() bool { return o < opPut || o == opStatus }

// command is one request to the machine.
type command struct {
	op       op
	now      hlc.Timestamp
	key, end []byte
	value    []byte
	deleted  bool
	// read is a read's timestamp (a refresh's new one; a resolution's and
	// a commit's commit timestamp); from is a refresh's old one;
	// uncertainty is a read's uncertainty limit.
	read, from, uncertainty hlc.Timestamp
	limit                   int
	// txn is the transaction the command is part of (opGet, opScan,
	// opRefresh, opPut: optional), or the one it acts on.
	txn *storage.TxnMeta
	// begin: opPut also creates txn's record (its first write, at its
	// anchor), pending, started at start.
	begin bool
	// start is the age of the transaction: its record's start (opPut with
	// begin), the pusher's (opPush).
	start hlc.Timestamp
	// pusher is the pushing transaction's ID (opPush; zero: a request
	// outside any transaction).
	pusher [16]byte
	commit bool // opResolve, opEnd: commit, or abort
	// keys are opEnd's intents of txn, opPut's and opOnePhase's keys
	// written, opResolve's intents.
	keys [][]byte
	// writes are opPut's and opOnePhase's values, one per key: a tag
	// byte (0 a value, 1 a deletion) and the value.
	writes [][]byte
	// reads says the transaction read something (opOnePhase): a commit
	// above its read timestamp needs a refresh first.
	reads bool
	// spans are opEnd's intents of txn kept as spans (start, end pairs,
	// flat) when keys would make the record too large.
	spans [][]byte
	// mine (opGet, opLock): txn wrote key as an intent, which must still
	// be there; gone, another transaction aborted txn (codeAborted), and
	// the read must not return the value beneath it.
	mine bool
}

// tagged is a write as opPut and opOnePhase carry it.
func tagged(value []byte, deleted bool) []byte {
	if deleted {
		return append([]byte{1}, value...)
	}
	return append([]byte{0}, value...)
}

// untagged is tagged's inverse (false: not a write).
func untagged(w []byte) (value []byte, deleted, ok bool) {
	if len(w) == 0 || w[0] > 1 {
		return nil, false, false
	}
	return w[1:], w[0] == 1, true
}

func (c *command) encode() []byte {
	var e encoder
	e.byte(byte(c.op))
	e.ts(c.now)
	e.bytes(c.key)
	e.bytes(c.end)
	e.bytes(c.value)
	e.bool(c.deleted)
	e.ts(c.read)
	e.ts(c.from)
	e.ts(c.uncertainty)
	e.u64(uint64(c.limit))
	e.bool(c.txn != nil)
	if c.txn != nil {
		encodeMeta(&e, *c.txn)
	}
	e.bool(c.begin)
	e.ts(c.start)
	e.b = append(e.b, c.pusher[:]...)
	e.bool(c.commit)
	e.list(c.keys)
	e.list(c.writes)
	e.bool(c.reads)
	e.list(c.spans)
	e.bool(c.mine)
	return e.b
}

// maxCommandKeys bounds a command's key list (its bytes are bounded by
// the proposal's; Options.BatchBytes and RecordKeyBytes keep well below).
const maxCommandKeys = 1 << 20

func decodeCommand(b []byte) (*command, error) {
	d := decoder{b: b}
	c := &command{op: op(d.byte())}
	c.now = d.ts()
	c.key, c.end, c.value = d.bytes(), d.bytes(), d.bytes()
	c.deleted = d.bool()
	c.read, c.from, c.uncertainty = d.ts(), d.ts(), d.ts()
	c.limit = int(min(d.u64(), 1<<20))
	if d.bool() {
		m := decodeMeta(&d)
		c.txn = &m
	}
	c.begin = d.bool()
	c.start = d.ts()
	if len(d.b) < 16 {
		d.fail()
	} else {
		copy(c.pusher[:], d.b)
		d.b = d.b[16:]
	}
	c.commit = d.bool()
	c.keys = d.list(maxCommandKeys)
	c.writes = d.list(maxCommandKeys)
	c.reads = d.bool()
	c.spans = d.list(maxCommandKeys)
	c.mine = d.bool()
	if err := d.done(); err != nil {
		return nil, err
	}
	if c.op < opGet || c.op > lastOp || ((c.op == opOnePhase || c.op == opPut) && len(c.writes) != len(c.keys)) || len(c.spans)%2 != 0 {
		return nil, errMalformed
	}
	return c, nil
}

func encodeMeta(e *encoder, m storage.TxnMeta) {
	e.b = append(e.b, m.ID[:]...)
	e.ts(m.Timestamp)
	e.u64(uint64(m.Epoch))
	e.bytes(m.Anchor)
}

func decodeMeta(d *decoder) storage.TxnMeta {
	var m storage.TxnMeta
	if len(d.b) < 16 {
		d.fail()
		return m
	}
	copy(m.ID[:], d.b)
	d.b = d.b[16:]
	m.Timestamp = d.ts()
	m.Epoch = uint32(d.u64())
	m.Anchor = d.bytes()
	return m
}

// code is how a command went.
type code byte

const (
	codeOK            code = iota
	codeIntent             // another transaction's intent is in the way: result.intent
	codeUncertain          // a version in the read's uncertainty window: result.ts
	codeAborted            // the transaction is aborted (result.status)
	codePending            // opPush: the pushee is alive and not younger; wait
	codeClockOffset        // the sender's clock is beyond the maximum offset
	codeRefreshFailed      // opRefresh: a write in the window (result.ts) or an intent
	codeMalformed          // the command does not decode, or is not this kind's
	codeNeedsRefresh       // opOnePhase: the commit must be at result.ts, above the reads
	codeBelowGC            // a read below the garbage collection threshold (result.ts)
	codeFutureRead         // a read above the leaseholder's now plus the maximum offset: wait, ask again (result.now)
)

// result is a command's reply.
type result struct {
	code  code
	now   hlc.Timestamp // the machine's clock
	value []byte
	found bool
	kvs   []storage.KeyValue
	// resume is where a scan, a resolution or a collection goes on (nil
	// with more false: done).
	resume []byte
	more   bool
	// ts: opPut, the timestamp written at; codeUncertain, the version's;
	// opEnd and opPush on a committed record, its commit timestamp.
	ts        hlc.Timestamp
	intent    storage.Intent // codeIntent
	intentKey []byte
	status    status // opPush, opEnd, opHeartbeat
	// resolved are the indexes, in opEnd's keys, of the intents a commit
	// resolved in the record's own range.
	resolved []uint64
}

func (r *result) encode() []byte {
	var e encoder
	e.byte(byte(r.code))
	e.ts(r.now)
	e.bytes(r.value)
	e.bool(r.found)
	e.u64(uint64(len(r.kvs)))
	for _, kv := range r.kvs {
		e.bytes(kv.Key)
		e.bytes(kv.Value)
	}
	e.bool(r.more)
	e.bytes(r.resume)
	e.ts(r.ts)
	encodeMeta(&e, r.intent.Txn)
	e.bytes(r.intent.Value)
	e.bool(r.intent.Deleted)
	e.bytes(r.intentKey)
	e.byte(byte(r.status))
	e.u64(uint64(len(r.resolved)))
	for _, i := range r.resolved {
		e.u64(i)
	}
	return e.b
}

func decodeResult(b []byte) (*result, error) {
	d := decoder{b: b}
	r := &result{code: code(d.byte())}
	r.now = d.ts()
	r.value = d.bytes()
	r.found = d.bool()
	n := d.u64()
	for i := uint64(0); i < n && d.err == nil; i++ {
		r.kvs = append(r.kvs, storage.KeyValue{Key: d.bytes(), Value: d.bytes()})
	}
	r.more = d.bool()
	r.resume = d.bytes()
	r.ts = d.ts()
	r.intent.Txn = decodeMeta(&d)
	r.intent.Value = d.bytes()
	r.intent.Deleted = d.bool()
	r.intentKey = d.bytes()
	r.status = status(d.byte())
	n = d.u64()
	for i := uint64(0); i < n && d.err == nil; i++ {
		r.resolved = append(r.resolved, d.u64())
	}
	return r, d.done()
}
