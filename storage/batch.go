package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Batch is an atomic write: every operation in it is applied, or none is.
// Reads through the batch see its own writes over the committed state.
//
// Components hang in-memory updates on it with OnCommit, so that a cache
// never runs ahead of the disk: the hooks run only once Commit has applied
// the batch (and, with sync, made it durable), and never if the batch is
// abandoned.
//
// A Batch belongs to one task; it is not safe for concurrent use.
type Batch struct {
	e *Engine
	b *pebble.Batch
	// onCommit runs in order after a successful Commit; onAbort in order if
	// the batch is closed uncommitted or its commit fails.
	onCommit, onAbort []func()
	// locals holds this batch's own writes of range-local keys, by raw
	// key, so that reading one back does not seek Pebble's batch,
	// memtables and levels: see "Own range-local writes".
	locals map[string]*localWrite
	// Invariant: once done is set (by Commit or Close), the batch accepts
	// no operation and b has been released.
	done bool
}

func (b *Batch) open() {
	if b.done {
		panic("storage: batch used after Commit or Close")
	}
}

// Set writes value under user key.
func (b *Batch) Set(key, value []byte) { b.set(dataKey(key), value) }

// Delete removes user key.
func (b *Batch) Delete(key []byte) { b.del(dataKey(key)) }

// DeleteRange removes every user key in [start, end); a nil end means no
// upper bound. Installing a Raft snapshot clears its range's span this way.
func (b *Batch) DeleteRange(start, end []byte) {
	lo, hi := dataSpace.span(start, end)
	b.delRange(lo, hi)
}

// Get returns a copy of the value of user key as this batch would leave it,
// or ErrNotFound.
func (b *Batch) Get(key []byte) ([]byte, error) {
	b.open()
	b.e.live()
	defer b.e.fatal.crashOnPanic("batch get")
	return get(b.b, dataKey(key))
}

// Scan is Engine.Scan as this batch would leave the data.
func (b *Batch) Scan(start, end []byte, limit int) (kvs []KeyValue, resume []byte, err error) {
	b.open()
	b.e.live()
	defer b.e.fatal.crashOnPanic("batch scan")
	return scan(b.b, dataSpace, start, end, limit)
}

// GetRangeLocal returns a copy of the value of key in range id's
// range-local data, as this batch would leave it, or ErrNotFound.
//
// Range-local data is replicated state that belongs to a range rather than
// to a user key (the client table that makes retried writes apply once):
// it moves with the range's snapshots, and Destroy removes it.
func (b *Batch) GetRangeLocal(id RangeID, key []byte) ([]byte, error) {
	b.open()
	b.e.live()
	raw := localSpace(id).key(key)
	if w, ok := b.locals[string(raw)]; ok {
		if w.deleted {
			return nil, ErrNotFound
		}
		return append(make([]byte, 0, len(w.value)), w.value...), nil
	}
	defer b.e.fatal.crashOnPanic("batch get")
	return get(b.b, raw)
}

// Own range-local writes. A range's leader reads a few range-local records
// for every write it evaluates and applies (the range's clock, the ID of
// its last effects entry, the writing client's record), and nearly always
// the batch itself wrote them last, for the write before. Pebble answers
// such a read by seeking the batch's index, every memtable and the levels
// in a merged iterator; the batch answers it from locals instead.
//
// locals is exact, not a guess: it holds only what this batch wrote, and
// a batch's own write of a key is what every read of it through the batch
// returns, whatever the engine holds under it. Every staging path
// records its writes of range-local keys (set, del, ApplyEffects) and
// forgets those a range deletion covers (delRange); a key the batch has not
// written is read from Pebble as before. Reads of the engine are never
// kept: a commit of another batch may change them.

// isLocalKey reports whether raw is a range-local key.
func isLocalKey(raw []byte) bool {
	return len(raw) >= rangeKeyLen && raw[0] == prefixRange && raw[rangePrefixLen] == suffixLocal
}

// localWrite is the batch's latest write of a range-local key.
type localWrite struct {
	value   []byte
	deleted bool
}

// noteWrite records the batch's write of raw (deleted: a delete) if it
// is range-local. A key written again reuses its record and its buffer:
// an overlay rewrites the same few keys for every write it evaluates.
func (b *Batch) noteWrite(raw, value []byte, deleted bool) {
	if !isLocalKey(raw) {
		return
	}
	w, ok := b.locals[string(raw)]
	if !ok {
		if b.locals == nil {
			b.locals = make(map[string]*localWrite)
		}
		w = &localWrite{}
		b.locals[string(raw)] = w
	}
	w.value, w.deleted = append(w.value[:0], value...), deleted
}

// noteDeleteRange forgets the recorded writes in [lo, hi): Pebble's batch
// answers for them now.
func (b *Batch) noteDeleteRange(lo, hi []byte) {
	for k := range b.locals {
		if k >= string(lo) && k < string(hi) {
			delete(b.locals, k)
		}
	}
}

// SetRangeLocal writes value under key in range id's range-local data.
func (b *Batch) SetRangeLocal(id RangeID, key, value []byte) { b.set(localSpace(id).key(key), value) }

// DeleteRangeLocal removes key from range id's range-local data.
func (b *Batch) DeleteRangeLocal(id RangeID, key []byte) { b.del(localSpace(id).key(key)) }

// ClearRangeLocal removes all of range id's range-local data, as installing
// a snapshot of the range must before writing the snapshot's.
func (b *Batch) ClearRangeLocal(id RangeID) {
	ks := localSpace(id)
	b.delRange(ks.prefix, ks.end)
}

// ScanRangeLocal is Scan over range id's range-local data.
func (b *Batch) ScanRangeLocal(id RangeID, start, end []byte, limit int) (kvs []KeyValue, resume []byte, err error) {
	b.open()
	b.e.live()
	defer b.e.fatal.crashOnPanic("batch scan")
	return scan(b.b, localSpace(id), start, end, limit)
}

// SetIdent records who owns the store.
func (b *Batch) SetIdent(id Ident) {
	if id.ClusterID == 0 || id.NodeID == 0 {
		panic(fmt.Sprintf("storage: SetIdent(%+v): zero cluster or node ID", id))
	}
	b.setUint64(metaKey(metaClusterID), id.ClusterID)
	b.setUint64(metaKey(metaNodeID), uint64(id.NodeID))
}

// SetClusterRecord stores what the server knows of its cluster (its
// nodes and their addresses, as the server encodes it), next to the Ident.
func (b *Batch) SetClusterRecord(rec []byte) { b.set(metaKey(metaCluster), rec) }

// SetIncarnation records the node's incarnation (Engine.Incarnation).
func (b *Batch) SetIncarnation(n uint64) { b.setUint64(metaKey(metaIncarnation), n) }

// OnCommit registers fn to run after the batch commits, after the hooks
// registered before it.
func (b *Batch) OnCommit(fn func()) {
	b.open()
	b.onCommit = append(b.onCommit, fn)
}

// onAbandon registers fn to run if the batch never commits.
func (b *Batch) onAbandon(fn func()) {
	b.open()
	b.onAbort = append(b.onAbort, fn)
}

// Empty reports whether the batch holds no operation.
func (b *Batch) Empty() bool { b.open(); return b.b.Empty() }

// Bytes is the size of the batch's encoding: what it will write to the WAL.
// Callers bound their batches with it.
func (b *Batch) Bytes() int { b.open(); return b.b.Len() }

// Commit applies the batch atomically and runs its OnCommit hooks. With
// sync, the batch is durable (pebble.Sync: the WAL is synced) before Commit
// returns, and so is every batch committed before it, even if this one is
// empty. The batch is released either way.
//
// A disk error panics with kernel.NodeCrash. The error returned is for
// misuse that wrote nothing (a closed Pebble).
func (b *Batch) Commit(sync bool) error {
	b.open()
	b.e.live()
	if err := b.apply(sync); err != nil {
		b.release()
		return fmt.Errorf("storage: commit: %w", err)
	}
	bytes, ops := b.b.Len(), b.b.Count()
	hooks := b.onCommit
	b.onCommit, b.onAbort = nil, nil
	b.release()
	for _, fn := range hooks {
		fn()
	}
	b.e.committed(bytes, ops)
	return nil
}

func (b *Batch) apply(sync bool) error {
	defer b.e.fatal.crashOnPanic("commit")
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
		if b.b.Empty() {
			// Pebble skips an empty batch altogether, sync included; a
			// WAL-only record keeps the promise that every earlier commit
			// is durable once a synced one returns.
			if err := b.b.LogData(nil, nil); err != nil {
				return err
			}
		}
	}
	return b.b.Commit(opts)
}

// Close abandons an uncommitted batch, running the hooks that undo what its
// stagers expected. It is a no-op after Commit, so `defer b.Close()` is the
// idiom.
func (b *Batch) Close() {
	if b.done {
		return
	}
	b.release()
}

// release marks the batch done, runs the abandon hooks still registered
// (none after a successful commit) and returns the Pebble batch to its pool.
func (b *Batch) release() {
	b.done = true
	hooks := b.onAbort
	b.onCommit, b.onAbort = nil, nil
	for _, fn := range hooks {
		fn()
	}
	_ = b.b.Close() // only fails for a batch that is not Pebble's, which this is
}

func (b *Batch) set(key, value []byte) {
	b.open()
	if err := b.b.Set(key, value, nil); err != nil {
		panic(fmt.Sprintf("storage: staging a set of %s: %v", FormatKey(key), err))
	}
	b.noteWrite(key, value, false)
}

func (b *Batch) setUint64(key []byte, v uint64) {
	b.set(key, binary.BigEndian.AppendUint64(nil, v))
}

func (b *Batch) del(key []byte) {
	b.open()
	if err := b.b.Delete(key, nil); err != nil {
		panic(fmt.Sprintf("storage: staging a delete of %s: %v", FormatKey(key), err))
	}
	b.noteWrite(key, nil, true)
}

func (b *Batch) delRange(lo, hi []byte) {
	b.open()
	if err := b.b.DeleteRange(lo, hi, nil); err != nil {
		panic(fmt.Sprintf("storage: staging a delete of [%s, %s): %v", FormatKey(lo), FormatKey(hi), err))
	}
	b.noteDeleteRange(lo, hi)
}
