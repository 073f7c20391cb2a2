package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// Tx is one transaction (docs/txn.md): its reads at its read timestamp
// with an uncertainty window, its writes buffered until commit. Commit
// writes them in one command when they share a range; otherwise as
// intents at its write timestamp, the first with its record, then
// refreshes the reads if the write timestamp moved, decides at the
// record, waits until the commit timestamp has passed, and resolves the
// intents. One task uses a Tx; its heartbeat runs on a task of its own.
type Tx struct {
	db          *DB
	id          [16]byte
	start       hlc.Timestamp // its age, for wound–wait (Txn keeps the first attempt's)
	read        hlc.Timestamp
	write       hlc.Timestamp
	uncertainty hlc.Timestamp
	anchor      []byte          // stored key of the first write (nil: none yet)
	writes      map[string]bool // stored keys written as intents (or maybe)
	// intents are the values the transaction's intents hold, as far as
	// it knows (a locking read's: the value it read), for RollbackTo.
	intents map[string]buffered
	// buffer holds the writes not sent yet: a transaction whose writes
	// all land in one range commits them in one command at the end
	// (commitOnePhase); otherwise they become intents at commit, or
	// before a scan.
	buffer    map[string]buffered
	reads     []span
	done      bool
	committed bool
	// vanished is set where a buggify site makes the coordinator leave
	// the transaction as a dead one would: Rollback then does nothing.
	vanished bool
	// readOnly refuses writes and locks (SetReadOnly).
	readOnly bool
	// wounded is set by the heartbeat task when the record says aborted.
	wounded     atomic.Bool
	stopBeating func()
}

// Begin starts a transaction at the node's clock's now. Prefer Txn, which
// retries; a Tx from Begin ends with Commit or Rollback.
func (db *DB) Begin() *Tx {
	now := db.clock.Now()
	tx := &Tx{db: db, start: now, read: now, write: now, uncertainty: now.Add(db.clock.MaxOffset()), writes: map[string]bool{}, buffer: map[string]buffered{}, intents: map[string]buffered{}}
	if mutation.On(MutUncertaintyIgnored) {
		tx.uncertainty = now
	}
	r := db.rt.Rand()
	for i := range tx.id {
		tx.id[i] = byte(r.Uint32())
	}
	return tx
}

// BeginAt starts a read-only transaction that reads as of ts, a time
// already past (a backup's). It has no uncertainty window: what it must
// see is fixed by ts, not by when its reader asked, so a version above ts
// is simply not seen. Its reads note ts in the timestamp caches as any
// read does, so no write lands at or below ts after it read; intents at
// or below ts are pushed and settled first. A ts within the maximum
// clock offset of now may make a leaseholder whose clock is behind wait
// until it passes ts; a ts below the garbage collection threshold is
// refused (ErrRetry).
func (db *DB) BeginAt(ts hlc.Timestamp) *Tx {
	tx := db.Begin()
	tx.start, tx.read, tx.write, tx.uncertainty = ts, ts, ts, ts
	tx.readOnly = true
	return tx
}

func (tx *Tx) meta() storage.TxnMeta {
	return storage.TxnMeta{ID: tx.id, Timestamp: tx.write, Anchor: tx.anchor}
}

func (tx *Tx) check() error {
	switch {
	case tx.done:
		return ErrDone
	case tx.wounded.Load():
		return retry("aborted by another transaction")
	}
	return nil
}

// Get reads key as of the transaction's read timestamp, its own writes
// included.
func (tx *Tx) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	k := spaceKey(key)
	if w, ok := tx.buffer[string(k)]; ok {
		if err := tx.check(); err != nil {
			return nil, false, err
		}
		return slices.Clone(w.value), !w.deleted, nil
	}
	for {
		if err := tx.check(); err != nil {
			return nil, false, err
		}
		meta := tx.meta()
		res, err := tx.db.send(ctx, tx.db.cl, k, &command{op: opGet, key: k, read: tx.read, uncertainty: tx.uncertainty, txn: &meta, mine: tx.writes[string(k)]})
		if err != nil {
			return nil, false, err
		}
		if res.code == codeAborted {
			return nil, false, retry("aborted by another transaction: its write of %q is gone", key)
		}
		if again, err := tx.conflict(ctx, res); again || err != nil {
			if err != nil {
				return nil, false, err
			}
			continue
		}
		tx.reads = append(tx.reads, span{k, append(k[:len(k):len(k)], 0)})
		return res.value, res.found, nil
	}
}

// Scan reads up to limit live pairs with start <= key < end (end nil: to
// the end of the keyspace) as of the read timestamp, across ranges.
func (tx *Tx) Scan(ctx context.Context, start, end []byte, limit int) ([]storage.KeyValue, error) {
	return tx.scan(ctx, start, end, limit, nil)
}

// Change is a key's newest value in a span at a transaction's read
// timestamp, or its deletion, as Tx.Changes finds it.
type Change struct {
	Key, Value []byte
	Deleted    bool
}

// Changes reads up to limit keys with start <= key < end (end nil: to the
// end of the keyspace) whose newest version at or below the read
// timestamp lies above since, with that version's value or its deletion:
// what a backup as of since lacks of one as of the read timestamp. since
// must lie inside the garbage-collection window (a deletion collected
// would be missed; refused with ErrRetry).
func (tx *Tx) Changes(ctx context.Context, start, end []byte, since hlc.Timestamp, limit int) ([]Change, error) {
	kvs, err := tx.scan(ctx, start, end, limit, &since)
	if err != nil {
		return nil, err
	}
	out := make([]Change, 0, len(kvs))
	for _, kv := range kvs {
		v, deleted, ok := storage.SplitChange(kv.Value)
		if !ok {
			return nil, fmt.Errorf("%w: a change of %q that does not decode", ErrMalformed, kv.Key)
		}
		out = append(out, Change{Key: kv.Key, Value: v, Deleted: deleted})
	}
	return out, nil
}

// scan is Scan, or with since Changes (the values then tagged).
func (tx *Tx) scan(ctx context.Context, start, end []byte, limit int, since *hlc.Timestamp) ([]storage.KeyValue, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("txn: scan limit %d", limit)
	}
	// Buffered writes become intents first: the scan then sees them as
	// its own, in order, among everything else.
	if err := tx.flush(ctx); err != nil {
		return nil, err
	}
	from, to := spaceKey(start), spaceEnd(end)
	var out []storage.KeyValue
	for from != nil && len(out) < limit {
		if err := tx.check(); err != nil {
			return nil, err
		}
		meta := tx.meta()
		c := &command{op: opScan, key: from, end: to, read: tx.read, uncertainty: tx.uncertainty, txn: &meta,
			limit: min(limit-len(out), consensus.MaxScanLimit), keys: tx.writesIn(from, to)}
		if since != nil {
			c.op, c.from = opChanges, *since
		}
		res, err := tx.db.send(ctx, tx.db.cl, from, c)
		if err != nil {
			return nil, err
		}
		if res.code == codeAborted {
			return nil, retry("aborted by another transaction: one of its writes in the span it scans is gone")
		}
		if again, err := tx.conflict(ctx, res); again || err != nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		for _, kv := range res.kvs {
			out = append(out, storage.KeyValue{Key: callerKey(kv.Key), Value: kv.Value})
		}
		next := []byte(nil)
		if res.more {
			next = res.resume
		}
		end := to
		if next != nil {
			end = next
		}
		tx.reads = append(tx.reads, span{from, end})
		from = next
	}
	return out, nil
}

// maxScanChecks bounds the keys of its own writes a scan asks the
// leaseholder to find its intents on (see writesIn).
const maxScanChecks = 1024

// writesIn are the keys in [from, to) the transaction wrote as intents,
// sorted: a scan checks that their intents are still there (opScan's
// keys), as a point read does (command.mine). Past maxScanChecks the
// scan checks none of them (a transaction that large scanning its own
// writes reads what lies beneath one an abort removed, until its commit
// fails).
func (tx *Tx) writesIn(from, to []byte) [][]byte {
	var keys [][]byte
	for k := range tx.writes {
		if k >= string(from) && k < string(to) {
			if len(keys) == maxScanChecks {
				return nil
			}
			keys = append(keys, []byte(k))
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys
}

// conflict handles a read's conflict: an intent is pushed (and resolved),
// an uncertain version moves the read timestamp above it if the reads so
// far can move (a refresh); again says to send the read once more.
func (tx *Tx) conflict(ctx context.Context, res *result) (again bool, err error) {
	switch res.code {
	case codeIntent:
		if res.intent.Txn.ID == tx.id {
			return false, fmt.Errorf("txn: met its own intent of another epoch")
		}
		return true, tx.db.push(ctx, tx, res, false)
	case codeBelowGC:
		return false, retry("its reads at %v are below the garbage collection threshold %v", tx.read, res.ts)
	case codeUncertain:
		ts := res.ts
		if err := tx.db.refresh(ctx, tx, ts); err != nil {
			return false, err
		}
		if tx.write.Less(ts) {
			tx.write = ts
		}
		return true, nil
	}
	return false, nil
}

// buffered is a write held by the coordinator until commit.
type buffered struct {
	value   []byte
	deleted bool
}

// ReadTimestamp is the time the transaction reads at now (a refresh or a
// restart moves it up).
func (tx *Tx) ReadTimestamp() hlc.Timestamp { return tx.read }

// SetReadOnly makes the transaction refuse writes and locking reads with
// ErrReadOnly from now on (a SQL READ ONLY transaction); what it wrote
// before stays written.
func (tx *Tx) SetReadOnly() { tx.readOnly = true }

// Put writes key in the transaction (sent at commit).
func (tx *Tx) Put(ctx context.Context, key, value []byte) error {
	return tx.bufferWrite(spaceKey(key), buffered{value: value})
}

// Delete removes key in the transaction (sent at commit).
func (tx *Tx) Delete(ctx context.Context, key []byte) error {
	return tx.bufferWrite(spaceKey(key), buffered{deleted: true})
}

func (tx *Tx) bufferWrite(k []byte, w buffered) error {
	if err := tx.check(); err != nil {
		return err
	}
	if tx.readOnly {
		return ErrReadOnly
	}
	tx.buffer[string(k)] = w
	return nil
}

// flush writes the buffered writes as intents, in key order, in batches
// of one range's keys (Options.BatchBytes each): two transactions
// flushing the same keys meet at the first they share, so they never
// wait on each other in a cycle (a batch writes all its keys or none).
func (tx *Tx) flush(ctx context.Context) error {
	keys := slices.Sorted(maps.Keys(tx.buffer))
	if len(keys) > 1 && mutation.On(MutCommitSkipsAnIntent) {
		delete(tx.buffer, keys[len(keys)-1]) // dropped, as an ignored error would drop it
		keys = keys[:len(keys)-1]
	}
	size := func(k []byte) int { return len(k) + len(tx.buffer[string(k)].value) }
	for len(keys) > 0 {
		batch := bytesKeys(keys[:tx.db.batchLen(bytesKeys(keys), size)])
		if err := tx.put(ctx, batch); err != nil {
			return err
		}
		for _, k := range batch {
			delete(tx.buffer, string(k))
		}
		keys = keys[len(batch):]
	}
	return nil
}

// bytesKeys is keys as byte slices.
func bytesKeys(keys []string) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = []byte(k)
	}
	return out
}

// put writes the buffered writes of keys (one range's) as intents.
func (tx *Tx) put(ctx context.Context, keys [][]byte) error {
	c := &command{op: opPut, key: keys[0], keys: keys}
	for _, k := range keys {
		w := tx.buffer[string(k)]
		c.writes = append(c.writes, tagged(w.value, w.deleted))
	}
	res, err := tx.writeIntent(ctx, c)
	if err != nil {
		return err
	}
	for _, k := range keys {
		tx.intents[string(k)] = tx.buffer[string(k)]
	}
	if tx.write.Less(res.ts) {
		tx.write = res.ts
	}
	return nil
}

// writeIntent sends c (opPut of c.keys, or opLock of c.key) as the
// transaction's write, pushing whatever intent is in its way, and notes
// the keys for the rollback or the commit; the first write also writes
// the record (at c.key) and starts the heartbeat. A batch that a split
// has put in two ranges is sent again as two (the router learned the
// split from the refusal).
func (tx *Tx) writeIntent(ctx context.Context, c *command) (*result, error) {
	k := c.key
	written := c.keys
	if c.op == opLock {
		written = [][]byte{k}
	}
	for {
		if err := tx.check(); err != nil {
			return nil, err
		}
		c.begin, c.node = tx.anchor == nil, 0 // the first write: it writes the record too, at k
		meta := tx.meta()
		if c.begin {
			meta.Anchor, c.node = k, tx.db.rt.NodeID()
		}
		c.txn, c.start, c.read = &meta, tx.start, tx.read
		res, err := tx.db.send(ctx, tx.db.cl, k, c)
		if !errors.Is(err, consensus.ErrNotApplied) && (err != nil || res.code != codeIntent) {
			// Written, or maybe: a rollback resolves it (and aborts the
			// record, if this was the first write).
			for _, w := range written {
				tx.writes[string(w)] = true
			}
			if c.begin {
				tx.anchor = k
			}
		}
		if errors.Is(err, consensus.ErrCrossRange) && len(c.keys) > 1 {
			return tx.splitBatch(ctx, c)
		}
		if err != nil {
			return nil, err
		}
		switch res.code {
		case codeIntent:
			if err := tx.db.push(ctx, tx, res, true); err != nil {
				return nil, err
			}
			continue
		case codeAborted:
			if c.mine {
				return nil, retry("aborted by another transaction: its write of %q is gone", c.key)
			}
			return nil, retry("aborted before its first write")
		}
		if c.begin {
			tx.heartbeat()
		}
		return res, nil
	}
}

// splitBatch sends an opPut batch that a split has put in two ranges as
// one batch per range, as the router now places them; the reply carries
// the highest timestamp written.
func (tx *Tx) splitBatch(ctx context.Context, c *command) (*result, error) {
	n := tx.db.batchLen(c.keys, func([]byte) int { return 0 })
	if n == len(c.keys) {
		return nil, retry("a batch of writes was refused as crossing ranges that the router places in one")
	}
	out := &result{}
	for _, part := range [][2]int{{0, n}, {n, len(c.keys)}} {
		p := &command{op: opPut, key: c.keys[part[0]], keys: c.keys[part[0]:part[1]], writes: c.writes[part[0]:part[1]]}
		res, err := tx.writeIntent(ctx, p)
		if err != nil {
			return nil, err
		}
		if out.ts.Less(res.ts) {
			out.ts = res.ts
		}
	}
	return out, nil
}

// GetForUpdate reads key as Get does and locks it until the transaction
// ends, as SELECT ... FOR UPDATE does: for a key the transaction reads in
// order to write it. The lock is an intent holding the value read, so a
// concurrent writer of the key (a GetForUpdate, or a commit) waits for
// this transaction instead of invalidating its read: on a hot key,
// read-modify-writes queue instead of failing their refreshes and
// retrying. The read happens at the lock's timestamp, which may be above
// the read timestamp; the earlier reads are refreshed up to it (ErrRetry
// if one changed). The lock costs a replicated write, and the
// transaction then commits in two phases.
func (tx *Tx) GetForUpdate(ctx context.Context, key []byte) ([]byte, bool, error) {
	if tx.readOnly {
		return nil, false, ErrReadOnly
	}
	k := spaceKey(key)
	if w, ok := tx.buffer[string(k)]; ok {
		// Written already: written as an intent now, it is locked.
		if err := tx.put(ctx, [][]byte{k}); err != nil {
			return nil, false, err
		}
		delete(tx.buffer, string(k))
		return slices.Clone(w.value), !w.deleted, nil
	}
	res, err := tx.writeIntent(ctx, &command{op: opLock, key: k, mine: tx.writes[string(k)]})
	if err != nil {
		return nil, false, err
	}
	if tx.read.Less(res.ts) {
		if mutation.On(MutLockSkipsRefresh) {
			tx.read = res.ts
		} else if err := tx.db.refresh(ctx, tx, res.ts); err != nil {
			return nil, false, err
		}
	}
	if tx.write.Less(res.ts) {
		tx.write = res.ts
	}
	if _, ok := tx.intents[string(k)]; !ok {
		tx.intents[string(k)] = buffered{value: res.value, deleted: !res.found}
	}
	tx.reads = append(tx.reads, span{k, append(k[:len(k):len(k)], 0)})
	return res.value, res.found, nil
}

// Savepoint is a point in a transaction's writes that RollbackTo returns
// to (SQL's SAVEPOINT).
type Savepoint struct {
	buffer, intents map[string]buffered
}

// Savepoint marks the transaction's writes as they are now.
func (tx *Tx) Savepoint() *Savepoint {
	return &Savepoint{buffer: maps.Clone(tx.buffer), intents: maps.Clone(tx.intents)}
}

// RollbackTo undoes the writes made since sp: the buffered ones are
// forgotten; an intent written since (a locking read's too: its lock is
// released) is removed now (resolved as aborted: the transaction goes on
// without it), and an intent that held another value at sp gets that
// value back at the next flush. Reads and their timestamps stay (they
// only ever add conflicts; a locking read's is in the timestamp cache,
// so no write lands beneath it once the lock is gone). An error leaves
// the transaction unusable: roll it back.
func (tx *Tx) RollbackTo(ctx context.Context, sp *Savepoint) error {
	if err := tx.check(); err != nil {
		return err
	}
	tx.buffer = maps.Clone(sp.buffer)
	var gone [][]byte
	for k, now := range tx.intents {
		was, ok := sp.intents[k]
		switch {
		case !ok:
			gone = append(gone, []byte(k))
		case now.deleted != was.deleted || !bytes.Equal(now.value, was.value):
			if _, pending := tx.buffer[k]; !pending {
				tx.buffer[k] = was
			}
		}
	}
	if len(gone) == 0 {
		return nil
	}
	slices.SortFunc(gone, bytes.Compare)
	if mutation.On(MutRollbackToKeepsIntents) {
		gone = nil
	}
	if err := tx.db.resolveKeys(ctx, tx.db.cl, resolution{meta: tx.meta(), keys: gone}); err != nil {
		tx.done = true // its intents are in an unknown state: only Rollback now
		return fmt.Errorf("txn: rolling back to a savepoint: %w", err)
	}
	for _, k := range gone {
		delete(tx.intents, string(k))
		delete(tx.writes, string(k))
	}
	return nil
}

// heartbeat starts the task that keeps the record alive, and notes a
// wound.
func (tx *Tx) heartbeat() {
	db := tx.db
	if db.hb == nil {
		// One client, taken by one beat at a time: a finished
		// transaction's beat may still be in flight. A mailbox, not a
		// mutex: a task waiting for it must yield (under the simulator,
		// a task blocked on a mutex whose holder waits on the network
		// would stop every task).
		db.hb = kernel.NewMailbox[*consensus.Client](db.rt, "txn heartbeat client", 1)
		db.hb.Send(consensus.NewClient(db.router, db.name+"/heartbeat"))
	}
	ctx, cancel := db.rt.WithCancel(context.Background())
	tx.stopBeating = cancel
	anchor, meta := tx.anchor, tx.meta()
	db.rt.Go("txn heartbeat", func(node context.Context) {
		// It sleeps on the node's context, so that the node stopping
		// ends it at once (a transaction left open must not hold the
		// runtime's Stop), and looks at the transaction's after each
		// sleep. (Not context.AfterFunc: its goroutine is outside the
		// runtime, which made simulator runs irreproducible.)
		for db.rt.Sleep(node, db.opts.HeartbeatInterval) == nil && ctx.Err() == nil {
			actx, acancel := db.rt.WithTimeout(ctx, db.opts.HeartbeatInterval)
			cl, err := db.hb.Recv(actx)
			if err != nil {
				acancel()
				continue
			}
			res, err := db.send(actx, cl, anchor, &command{op: opHeartbeat, key: anchor, txn: &meta})
			db.hb.Send(cl)
			acancel()
			if err == nil && res.code == codeAborted {
				tx.wounded.Store(true)
				return
			}
		}
	})
}

func (tx *Tx) end() {
	tx.done = true
	if tx.stopBeating != nil {
		tx.stopBeating()
	}
}

// Commit commits the transaction: ErrRetry if it cannot (nothing of it
// applied), ErrIndeterminate if ctx ended while its decision was in
// flight.
func (tx *Tx) Commit(ctx context.Context) error {
	if err := tx.check(); err != nil {
		return err
	}
	if len(tx.buffer) > 0 && tx.anchor == nil && tx.db.oneRange(tx.buffer) && bufferBytes(tx.buffer) <= maxOnePhaseBytes {
		if committed, err := tx.commitOnePhase(ctx); committed || err != nil {
			return err
		}
		// The range split under it: two phases after all.
	}
	if err := tx.flush(ctx); err != nil {
		return err
	}
	if tx.anchor == nil {
		// Read only: its reads were all at its read timestamp, and no
		// leaseholder served one before its clock passed it
		// (Machine.futureRead), so nothing later can miss what it saw.
		tx.end()
		return nil
	}
	if tx.read.Less(tx.write) && !mutation.On(MutRefreshSkipped) {
		if err := tx.db.refresh(ctx, tx, tx.write); err != nil {
			return err
		}
	}
	keys := sortedKeys(tx.writes)
	points, spans := tx.db.condense(keys)
	meta := tx.meta()
	if tx.db.rt.Buggify("txn.coordinator-vanishes-before-decision") {
		// The simulator's aimed fault: intents written, no decision, no
		// more heartbeats; whoever meets an intent must settle it.
		tx.vanished = true
		tx.end()
		return fmt.Errorf("%w: buggify: the coordinator vanished before its decision", ErrIndeterminate)
	}
	if mutation.On(MutResolveBeforeDecision) {
		tx.resolve(ctx, keys, true, tx.write)
	}
	if mutation.On(MutFinalizedBeforeDecision) {
		tx.db.settling.add(&resolution{meta: meta, keys: keys, commit: true, ts: tx.write})
	}
	var res *result
	for {
		var err error
		res, err = tx.db.send(ctx, tx.db.cl, tx.anchor, &command{op: opEnd, key: tx.anchor, txn: &meta, commit: true, read: tx.write, keys: points, spans: spans})
		if err == nil {
			break
		}
		if ctx.Err() != nil || !errors.Is(err, consensus.ErrIndeterminate) && !errors.Is(err, consensus.ErrNotApplied) {
			tx.end()
			// %v: the last attempt's error says nothing of the earlier
			// ones (a consensus.ErrNotApplied here must not read as
			// "not committed").
			return fmt.Errorf("%w: %v", ErrIndeterminate, err)
		}
		// Asking again is safe: a decision is made once, and the
		// record answers with it.
	}
	if res.status != statusCommitted {
		return retry("aborted before its commit (%v)", res.status)
	}
	tx.committed = true
	tx.end()
	if err := tx.db.commitWait(ctx, res.ts); err != nil {
		return fmt.Errorf("%w: committed, but the wait for its timestamp ended: %v", ErrIndeterminate, err)
	}
	if tx.db.rt.Buggify("txn.coordinator-vanishes-after-decision") {
		// Committed, nothing resolved: readers finish it from the record.
		return fmt.Errorf("%w: buggify: the coordinator vanished after its decision", ErrIndeterminate)
	}
	tx.db.resolveLater(ctx, resolution{meta: meta, keys: withoutIndexes(keys, res.resolved), commit: true, ts: res.ts})
	if tx.db.rt.Buggify("txn.late-resolution") {
		// The same resolution again, late: sent before a later
		// transaction of this DB, after others may have written the
		// keys (and left intents there) since.
		tx.db.late = append(tx.db.late, resolution{meta: tx.meta(), keys: points, spans: spans, commit: true, ts: res.ts})
	}
	return nil
}

// maxOnePhaseRounds bounds how often a one-phase commit refreshes and
// pushes before it gives up (ErrRetry).
const maxOnePhaseRounds = 10

// maxOnePhaseBytes bounds the writes a one-phase commit carries (one
// proposal); a larger transaction commits in two phases, its intents in
// batches.
const maxOnePhaseBytes = consensus.MaxProposalBytes / 4

// bufferBytes is the size of the buffered writes.
func bufferBytes(buffer map[string]buffered) int {
	n := 0
	for k, w := range buffer {
		n += len(k) + len(w.value)
	}
	return n
}

// commitOnePhase commits the buffered writes, all in one range, in one
// command: no record, no intents. It returns false when the writes turn
// out to span ranges (the range split since the router learned it): the
// caller commits in two phases. A command whose outcome is unknown is
// not sent again (it carries no record to decide by): ErrIndeterminate.
func (tx *Tx) commitOnePhase(ctx context.Context) (bool, error) {
	keys := slices.Sorted(maps.Keys(tx.buffer))
	c := &command{op: opOnePhase, key: []byte(keys[0])}
	for _, k := range keys {
		w := tx.buffer[k]
		c.keys = append(c.keys, []byte(k))
		c.writes = append(c.writes, tagged(w.value, w.deleted))
	}
	for range maxOnePhaseRounds {
		meta := tx.meta()
		c.txn, c.read, c.reads = &meta, tx.read, len(tx.reads) > 0
		res, err := tx.db.send(ctx, tx.db.cl, c.key, c)
		switch {
		case errors.Is(err, consensus.ErrCrossRange):
			return false, nil
		case errors.Is(err, consensus.ErrIndeterminate):
			tx.end()
			return false, fmt.Errorf("%w: a one-phase commit: %v", ErrIndeterminate, err)
		case err != nil:
			return false, err
		}
		switch res.code {
		case codeIntent:
			if err := tx.db.push(ctx, tx, res, true); err != nil {
				return false, err
			}
			continue
		case codeNeedsRefresh:
			if err := tx.db.refresh(ctx, tx, res.ts); err != nil {
				return false, err
			}
			tx.write = res.ts
			continue
		}
		tx.committed, tx.write = true, res.ts
		tx.end()
		if err := tx.db.commitWait(ctx, res.ts); err != nil {
			return true, fmt.Errorf("%w: committed, but the wait for its timestamp ended: %v", ErrIndeterminate, err)
		}
		return true, nil
	}
	return false, retry("a one-phase commit kept meeting newer reads and writes")
}

// Rollback aborts the transaction if it wrote, and removes its intents;
// a transaction that committed stays committed. It does so even when ctx
// has ended (for at most the heartbeat expiry).
func (tx *Tx) Rollback(ctx context.Context) {
	tx.end()
	if tx.anchor == nil || tx.committed || tx.vanished {
		return
	}
	if ctx.Err() != nil {
		// The caller gave up (a statement timeout, a client gone): the
		// clean-up still runs, or every key the transaction wrote holds
		// up whoever meets it until its heartbeat expires. Bounded by
		// that expiry: past it, pushers abort the record anyway.
		var cancel context.CancelFunc
		ctx, cancel = tx.db.rt.WithTimeout(context.WithoutCancel(ctx), tx.db.opts.HeartbeatExpiry)
		defer cancel()
	}
	keys := sortedKeys(tx.writes)
	points, spans := tx.db.condense(keys)
	meta := tx.meta()
	res, err := tx.db.send(ctx, tx.db.cl, tx.anchor, &command{op: opEnd, key: tx.anchor, txn: &meta, commit: false, keys: points, spans: spans})
	if err != nil || res.status != statusAborted {
		return // its intents are resolved by whoever meets them
	}
	tx.resolve(ctx, keys, false, hlc.Timestamp{})
}

// resolve settles the transaction's intents after its decision, then
// forgets its record (DB.resolve).
func (tx *Tx) resolve(ctx context.Context, keys [][]byte, commit bool, ts hlc.Timestamp) {
	tx.db.resolve(ctx, tx.db.cl, resolution{meta: tx.meta(), keys: keys, commit: commit, ts: ts})
}

// withoutIndexes is keys but those at the indexes drop names (in
// ascending order, as a commit lists the intents it resolved).
func withoutIndexes(keys [][]byte, drop []uint64) [][]byte {
	out := make([][]byte, 0, len(keys))
	for i, k := range keys {
		if len(drop) > 0 && drop[0] == uint64(i) {
			drop = drop[1:]
			continue
		}
		out = append(out, k)
	}
	return out
}
