package txn

import (
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
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
	// version. A batch meeting another transaction's intent writes none
	// of its keys (it may have resolved a finalized transaction's
	// intents in passing: command.finalized).
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
	// opStatus is a query: the record at key, as opPush would find it,
	// changing nothing: codePending while a push must wait; a settled
	// record's status and commit timestamp; otherwise status pending (a
	// push would abort it now). A pusher asks it first, and sends the
	// push (a replicated write) only when it would abort.
	opStatus
	// opResolveSpan settles every intent of txn in [key, end) within the
	// range, as opResolve does: for a record that keeps spans (a large
	// transaction's). Paged like a scan (result.more, result.resume).
	opResolveSpan
	// opChanges is a query, a scan of [key, end) as of read that returns
	// the keys whose newest version at or below read lies above from,
	// deletions included (values tagged as storage.ChangeValue): an
	// incremental backup's read. Recorded in the timestamp cache as a
	// scan is.
	opChanges
	// opHeld is a query: whether txn's intent is still on key (result.
	// found), read at the leaseholder, noting nothing. Pushers before
	// opAwait (2026-12-07) polled with it; still answered for them.
	opHeld
	// opAwait is a query: whether key is free of other transactions'
	// intents (codeOK) or held (codeIntent, result.intent). With wait, a
	// held key's leaseholder keeps the query until the key is written
	// (its intent or a version) or wait is up (consensus.WaitForWrite);
	// with queue too (a waiter that means to write the key), in the
	// key's queue, ranked by start (the waiter's age): a lock's writers
	// go on one by one as it is released, its readers all at once. txn
	// is the waiter (optional: its own intent does not hold it).
	opAwait
)

// lastOp is the highest op: a decoded command's op is at most it.
const lastOp = opAwait

// query says whether o is answered by the leaseholder as a read
// (consensus.OpQuery) rather than evaluated and replicated.
func (o op) query() bool { return o.reads() || o == opStatus || o == opHeld || o == opAwait }

// reads says whether o reads versions at a timestamp (c.read): a read
// the timestamp cache notes, that must not run above the leaseholder's
// clock or below the garbage-collection threshold.
func (o op) reads() bool { return o < opPut || o == opChanges }

// meetsIntents says whether o reads or writes keys that may hold another
// transaction's intent, which a finalized transaction's (command.finalized)
// need not stop. A refresh is not one: it fails on any intent in its
// window, which is always safe.
func (o op) meetsIntents() bool {
	return o == opGet || o == opScan || o == opChanges || o == opPut || o == opOnePhase || o == opLock || o == opAwait
}

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
	// anchor), pending, started at start, coordinated from node.
	begin bool
	node  kernel.NodeID
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
	// finalized are transactions the sender knows decided whose intents
	// may still be unresolved (its own commits, resolved asynchronously:
	// DB.settling): reads take their intents as resolved, and writes
	// resolve them in passing, instead of meeting them as conflicts.
	finalized []storage.FinalizedTxn
	// wait (opAwait): how long the leaseholder may keep the query
	// (consensus.WaitForWrite); 0, answered at once. queue: the waiter
	// means to write the key, and waits in its queue.
	wait  time.Duration
	queue bool
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
	e.Byte(byte(c.op))
	e.ts(c.now)
	e.Bytes(c.key)
	e.Bytes(c.end)
	e.Bytes(c.value)
	e.Bool(c.deleted)
	e.ts(c.read)
	e.ts(c.from)
	e.ts(c.uncertainty)
	e.U64(uint64(c.limit))
	e.Bool(c.txn != nil)
	if c.txn != nil {
		encodeMeta(&e, *c.txn)
	}
	e.Bool(c.begin)
	e.ts(c.start)
	e.B = append(e.B, c.pusher[:]...)
	e.Bool(c.commit)
	e.List(c.keys)
	e.List(c.writes)
	e.Bool(c.reads)
	e.List(c.spans)
	e.Bool(c.mine)
	e.U64(uint64(c.node))
	e.U64(uint64(len(c.finalized)))
	for _, f := range c.finalized {
		encodeMeta(&e, f.Txn)
		e.Bool(f.Commit)
		e.ts(f.TS)
	}
	e.U64(uint64(max(c.wait, 0)))
	e.Bool(c.queue)
	return e.B
}

// maxFinalized bounds a command's finalized list (Options.PendingResolutions
// keeps it far below).
const maxFinalized = 1 << 10

// maxCommandKeys bounds a command's key list (its bytes are bounded by
// the proposal's; Options.BatchBytes and RecordKeyBytes keep well below).
const maxCommandKeys = 1 << 20

func decodeCommand(b []byte) (*command, error) {
	d := newDecoder(b)
	c := &command{op: op(d.Byte())}
	c.now = d.ts()
	c.key, c.end, c.value = d.Bytes(), d.Bytes(), d.Bytes()
	c.deleted = d.Bool()
	c.read, c.from, c.uncertainty = d.ts(), d.ts(), d.ts()
	c.limit = int(min(d.U64(), 1<<20))
	if d.Bool() {
		m := decodeMeta(&d)
		c.txn = &m
	}
	c.begin = d.Bool()
	c.start = d.ts()
	if len(d.B) < 16 {
		d.Fail()
	} else {
		copy(c.pusher[:], d.B)
		d.B = d.B[16:]
	}
	c.commit = d.Bool()
	c.keys = d.List(maxCommandKeys)
	c.writes = d.List(maxCommandKeys)
	c.reads = d.Bool()
	c.spans = d.List(maxCommandKeys)
	c.mine = d.Bool()
	if len(d.B) > 0 { // a command from a binary older than node
		c.node = kernel.NodeID(d.U64())
	}
	if len(d.B) > 0 { // older than finalized (2026-12-07)
		n := d.U64()
		if n > maxFinalized {
			d.Fail()
		}
		for i := uint64(0); i < n && d.Err == nil; i++ {
			f := storage.FinalizedTxn{Txn: decodeMeta(&d)}
			f.Commit = d.Bool()
			f.TS = d.ts()
			c.finalized = append(c.finalized, f)
		}
	}
	if len(d.B) > 0 { // older than wait and queue (2026-12-07)
		c.wait = time.Duration(min(d.U64(), uint64(consensus.MaxQueryWait)))
		c.queue = d.Bool()
	}
	if err := d.Done(); err != nil {
		return nil, err
	}
	if c.op < opGet || c.op > lastOp || ((c.op == opOnePhase || c.op == opPut) && len(c.writes) != len(c.keys)) || len(c.spans)%2 != 0 {
		return nil, errMalformed
	}
	return c, nil
}

func encodeMeta(e *encoder, m storage.TxnMeta) {
	e.B = append(e.B, m.ID[:]...)
	e.ts(m.Timestamp)
	e.U64(uint64(m.Epoch))
	e.Bytes(m.Anchor)
}

func decodeMeta(d *decoder) storage.TxnMeta {
	var m storage.TxnMeta
	if len(d.B) < 16 {
		d.Fail()
		return m
	}
	copy(m.ID[:], d.B)
	d.B = d.B[16:]
	m.Timestamp = d.ts()
	m.Epoch = uint32(d.U64())
	m.Anchor = d.Bytes()
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
	codeFenced             // the leaseholder's own clock is fenced (consensus/clockoffset.go): nothing done; it hands its leadership over, ask again
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
	// abandoned are opGC's intents older than the collection threshold,
	// their keys and transactions, for the collector to push (DB.settle).
	abandoned []storage.IntentError
}

func (r *result) encode() []byte {
	var e encoder
	e.Byte(byte(r.code))
	e.ts(r.now)
	e.Bytes(r.value)
	e.Bool(r.found)
	e.U64(uint64(len(r.kvs)))
	for _, kv := range r.kvs {
		e.Bytes(kv.Key)
		e.Bytes(kv.Value)
	}
	e.Bool(r.more)
	e.Bytes(r.resume)
	e.ts(r.ts)
	encodeMeta(&e, r.intent.Txn)
	e.Bytes(r.intent.Value)
	e.Bool(r.intent.Deleted)
	e.Bytes(r.intentKey)
	e.Byte(byte(r.status))
	e.U64(uint64(len(r.resolved)))
	for _, i := range r.resolved {
		e.U64(i)
	}
	e.U64(uint64(len(r.abandoned)))
	for _, a := range r.abandoned {
		e.Bytes(a.Key)
		encodeMeta(&e, a.Intent.Txn)
	}
	return e.B
}

func decodeResult(b []byte) (*result, error) {
	d := newDecoder(b)
	r := &result{code: code(d.Byte())}
	r.now = d.ts()
	r.value = d.Bytes()
	r.found = d.Bool()
	n := d.U64()
	for i := uint64(0); i < n && d.Err == nil; i++ {
		r.kvs = append(r.kvs, storage.KeyValue{Key: d.Bytes(), Value: d.Bytes()})
	}
	r.more = d.Bool()
	r.resume = d.Bytes()
	r.ts = d.ts()
	r.intent.Txn = decodeMeta(&d)
	r.intent.Value = d.Bytes()
	r.intent.Deleted = d.Bool()
	r.intentKey = d.Bytes()
	r.status = status(d.Byte())
	n = d.U64()
	for i := uint64(0); i < n && d.Err == nil; i++ {
		r.resolved = append(r.resolved, d.U64())
	}
	// abandoned came after the rest (2026-12-06): a reply without it,
	// from a node that predates it, has none.
	n = 0
	if len(d.B) > 0 {
		n = d.U64()
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		a := storage.IntentError{Key: d.Bytes()}
		a.Intent.Txn = decodeMeta(&d)
		r.abandoned = append(r.abandoned, a)
	}
	return r, d.Done()
}
