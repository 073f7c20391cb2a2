package txn

import (
	"context"
	"fmt"

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
// intents. Its state and every decision are its coordinator's, a pure
// state machine (coordinator.go); Tx drives it on its caller's task,
// doing what each step asks. One task uses a Tx; its heartbeat runs on a
// task of its own.
type Tx struct {
	db          *DB
	c           *coordinator
	stopBeating func()
}

// Begin starts a transaction at the node's clock's now. Prefer Txn, which
// retries; a Tx from Begin ends with Commit or Rollback.
func (db *DB) Begin() *Tx {
	now := db.clock.Now()
	uncertainty := now.Add(db.clock.MaxOffset())
	if mutation.On(MutUncertaintyIgnored) {
		uncertainty = now
	}
	var id [16]byte
	r := db.rt.Rand()
	for i := range id {
		id[i] = byte(r.Uint32())
	}
	return &Tx{db: db, c: newCoordinator(id, now, uncertainty, db.rt.NodeID(), db.place)}
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
	tx.c.start, tx.c.read, tx.c.write, tx.c.uncertainty = ts, ts, ts, ts
	tx.c.readOnly = true
	return tx
}

// drive runs the coordinator's operation from step s to its end: it does
// what each step asks and hands the coordinator the outcome. It stops the
// heartbeat as soon as the coordinator has ended the transaction.
func (tx *Tx) drive(ctx context.Context, s step) error {
	db := tx.db
	for {
		tx.stopHeartbeatIfEnded()
		switch s.kind {
		case stepDone:
			return s.err
		case stepSend:
			res, err := db.send(ctx, db.cl, s.key, s.cmd)
			s = tx.c.replied(res, err, ctx.Err() != nil)
		case stepPush:
			s = tx.c.pushed(db.push(ctx, tx.c, s.met, s.queue))
		case stepCommitWait:
			s = tx.c.waited(db.commitWait(ctx, s.ts))
		case stepBuggify:
			s = tx.c.buggified(db.rt.Buggify(s.site))
		case stepHeartbeat:
			tx.heartbeat(s.key, s.meta)
			s = tx.c.resumed()
		case stepResolve:
			s = tx.c.resolved(db.settle(ctx, s.res, s.mode))
		default:
			panic(fmt.Sprintf("txn: a coordinator step of kind %d", s.kind))
		}
	}
}

// stopHeartbeatIfEnded stops the heartbeat once the coordinator has
// ended the transaction.
func (tx *Tx) stopHeartbeatIfEnded() {
	if tx.c.ended && tx.stopBeating != nil {
		tx.stopBeating()
		tx.stopBeating = nil
	}
}

// settle settles r as mode says (stepResolve).
func (db *DB) settle(ctx context.Context, r resolution, mode resolveMode) error {
	switch mode {
	case resolveNow:
		db.resolve(ctx, db.cl, r)
	case resolveKeysNow:
		return db.resolveKeys(ctx, db.cl, r)
	case resolveLater:
		db.resolveLater(ctx, r)
	case settleEarly:
		db.settling.add(&r)
	case resolveLate:
		db.late = append(db.late, r)
	}
	return nil
}

// Get reads key as of the transaction's read timestamp, its own writes
// included.
func (tx *Tx) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	if err := tx.drive(ctx, tx.c.get(spaceKey(key))); err != nil {
		return nil, false, err
	}
	return tx.c.value, tx.c.found, nil
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
	if err := tx.drive(ctx, tx.c.scan(spaceKey(start), spaceEnd(end), limit, since)); err != nil {
		return nil, err
	}
	return tx.c.kvs, nil
}

// buffered is a write held by the coordinator until commit.
type buffered struct {
	value   []byte
	deleted bool
}

// ReadTimestamp is the time the transaction reads at now (a refresh or a
// restart moves it up).
func (tx *Tx) ReadTimestamp() hlc.Timestamp { return tx.c.read }

// SetReadOnly makes the transaction refuse writes and locking reads with
// ErrReadOnly from now on (a SQL READ ONLY transaction); what it wrote
// before stays written.
func (tx *Tx) SetReadOnly() { tx.c.readOnly = true }

// Put writes key in the transaction (sent at commit).
func (tx *Tx) Put(ctx context.Context, key, value []byte) error {
	return tx.c.put(spaceKey(key), buffered{value: value})
}

// Delete removes key in the transaction (sent at commit).
func (tx *Tx) Delete(ctx context.Context, key []byte) error {
	return tx.c.put(spaceKey(key), buffered{deleted: true})
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
	if err := tx.drive(ctx, tx.c.lock(spaceKey(key))); err != nil {
		return nil, false, err
	}
	return tx.c.value, tx.c.found, nil
}

// Savepoint is a point in a transaction's writes that RollbackTo returns
// to (SQL's SAVEPOINT).
type Savepoint struct {
	buffer, intents map[string]buffered
}

// Savepoint marks the transaction's writes as they are now.
func (tx *Tx) Savepoint() *Savepoint { return tx.c.savepoint() }

// RollbackTo undoes the writes made since sp: the buffered ones are
// forgotten; an intent written since (a locking read's too: its lock is
// released) is removed now (resolved as aborted: the transaction goes on
// without it), and an intent that held another value at sp gets that
// value back at the next flush. Reads and their timestamps stay (they
// only ever add conflicts; a locking read's is in the timestamp cache,
// so no write lands beneath it once the lock is gone). An error leaves
// the transaction unusable: roll it back.
func (tx *Tx) RollbackTo(ctx context.Context, sp *Savepoint) error {
	return tx.drive(ctx, tx.c.rollbackTo(sp))
}

// heartbeat starts the task that keeps the record of meta, at anchor,
// alive, and notes a wound.
func (tx *Tx) heartbeat(anchor []byte, meta storage.TxnMeta) {
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
	c := tx.c
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
				c.wounded.Store(true)
				return
			}
		}
	})
}

// Commit commits the transaction: ErrRetry if it cannot (nothing of it
// applied), ErrIndeterminate if ctx ended while its decision was in
// flight.
func (tx *Tx) Commit(ctx context.Context) error {
	return tx.drive(ctx, tx.c.commit())
}

// Rollback aborts the transaction if it wrote, and removes its intents;
// a transaction that committed stays committed. It does so even when ctx
// has ended (for at most the heartbeat expiry).
func (tx *Tx) Rollback(ctx context.Context) {
	s := tx.c.rollback()
	tx.stopHeartbeatIfEnded()
	if s.kind != stepDone && ctx.Err() != nil {
		// The caller gave up (a statement timeout, a client gone): the
		// clean-up still runs, or every key the transaction wrote holds
		// up whoever meets it until its heartbeat expires. Bounded by
		// that expiry: past it, pushers abort the record anyway.
		var cancel context.CancelFunc
		ctx, cancel = tx.db.rt.WithTimeout(context.WithoutCancel(ctx), tx.db.opts.HeartbeatExpiry)
		defer cancel()
	}
	_ = tx.drive(ctx, s) // its intents left are resolved by whoever meets them
}
