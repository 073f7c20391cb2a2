package txn

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// Tx is one transaction (docs/txn.md): its reads at its read timestamp
// with an uncertainty window, its writes as intents at its write
// timestamp, its record with its first write. Commit refreshes the reads
// if the write timestamp moved, decides at the record, waits until the
// commit timestamp has passed, and resolves the intents. One task uses a
// Tx; its heartbeat runs on a task of its own.
type Tx struct {
	db          *DB
	id          [16]byte
	start, read hlc.Timestamp
	write       hlc.Timestamp
	uncertainty hlc.Timestamp
	anchor      []byte          // stored key of the first write (nil: none yet)
	writes      map[string]bool // stored keys written
	reads       []span
	done        bool
	committed   bool
	// wounded is set by the heartbeat task when the record says aborted.
	wounded     atomic.Bool
	stopBeating func()
}

// Begin starts a transaction at the node's clock's now. Prefer Txn, which
// retries; a Tx from Begin ends with Commit or Rollback.
func (db *DB) Begin() *Tx {
	now := db.clock.Now()
	tx := &Tx{db: db, start: now, read: now, write: now, uncertainty: now.Add(db.clock.MaxOffset()), writes: map[string]bool{}}
	if mutation.On(MutUncertaintyIgnored) {
		tx.uncertainty = now
	}
	r := db.rt.Rand()
	for i := range tx.id {
		tx.id[i] = byte(r.Uint32())
	}
	return tx
}

func (tx *Tx) meta() storage.TxnMeta {
	return storage.TxnMeta{ID: tx.id, Timestamp: tx.write, Anchor: tx.anchor}
}

func (tx *Tx) check() error {
	switch {
	case tx.done:
		return errors.New("txn: the transaction has ended")
	case tx.wounded.Load():
		return retry("aborted by another transaction")
	}
	return nil
}

// Get reads key as of the transaction's read timestamp, its own writes
// included.
func (tx *Tx) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	k := spaceKey(key)
	for {
		if err := tx.check(); err != nil {
			return nil, false, err
		}
		meta := tx.meta()
		res, err := tx.db.send(ctx, tx.db.cl, k, &command{op: opGet, key: k, read: tx.read, uncertainty: tx.uncertainty, txn: &meta})
		if err != nil {
			return nil, false, err
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
	if limit <= 0 {
		return nil, fmt.Errorf("txn: scan limit %d", limit)
	}
	from, to := spaceKey(start), spaceEnd(end)
	var out []storage.KeyValue
	for from != nil && len(out) < limit {
		if err := tx.check(); err != nil {
			return nil, err
		}
		meta := tx.meta()
		res, err := tx.db.send(ctx, tx.db.cl, from, &command{op: opScan, key: from, end: to, read: tx.read, uncertainty: tx.uncertainty, txn: &meta, limit: min(limit-len(out), consensus.MaxScanLimit)})
		if err != nil {
			return nil, err
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

// conflict handles a read's conflict: an intent is pushed (and resolved),
// an uncertain version moves the read timestamp above it if the reads so
// far can move (a refresh); again says to send the read once more.
func (tx *Tx) conflict(ctx context.Context, res *result) (again bool, err error) {
	switch res.code {
	case codeIntent:
		if res.intent.Txn.ID == tx.id {
			return false, fmt.Errorf("txn: met its own intent of another epoch")
		}
		return true, tx.db.push(ctx, tx, res)
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

// Put writes key in the transaction.
func (tx *Tx) Put(ctx context.Context, key, value []byte) error {
	return tx.put(ctx, spaceKey(key), value, false)
}

// Delete removes key in the transaction.
func (tx *Tx) Delete(ctx context.Context, key []byte) error {
	return tx.put(ctx, spaceKey(key), nil, true)
}

func (tx *Tx) put(ctx context.Context, k, value []byte, deleted bool) error {
	for {
		if err := tx.check(); err != nil {
			return err
		}
		begin := tx.anchor == nil // the first write: it writes the record too, at k
		meta := tx.meta()
		if begin {
			meta.Anchor = k
		}
		res, err := tx.db.send(ctx, tx.db.cl, k, &command{op: opPut, key: k, value: value, deleted: deleted, txn: &meta, begin: begin, start: tx.start})
		if !errors.Is(err, consensus.ErrNotApplied) && (err != nil || res.code != codeIntent) {
			// Written, or maybe: a rollback resolves it (and aborts the
			// record, if this was the first write).
			tx.writes[string(k)] = true
			if begin {
				tx.anchor = k
			}
		}
		if err != nil {
			return err
		}
		switch res.code {
		case codeIntent:
			if err := tx.db.push(ctx, tx, res); err != nil {
				return err
			}
			continue
		case codeAborted:
			return retry("aborted before its first write")
		}
		if tx.write.Less(res.ts) {
			tx.write = res.ts
		}
		if begin {
			tx.heartbeat()
		}
		return nil
	}
}

// heartbeat starts the task that keeps the record alive, and notes a
// wound.
func (tx *Tx) heartbeat() {
	db := tx.db
	if db.hb == nil {
		db.hb = consensus.NewClient(db.router, db.name+"/heartbeat")
	}
	ctx, cancel := db.rt.WithCancel(context.Background())
	tx.stopBeating = cancel
	anchor, meta := tx.anchor, tx.meta()
	db.rt.Go("txn heartbeat", func(context.Context) {
		for db.rt.Sleep(ctx, db.opts.HeartbeatInterval) == nil {
			actx, acancel := db.rt.WithTimeout(ctx, db.opts.HeartbeatInterval)
			db.hbMu.Lock() // a finished transaction's beat may still be in flight
			res, err := db.send(actx, db.hb, anchor, &command{op: opHeartbeat, key: anchor, txn: &meta})
			db.hbMu.Unlock()
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
	if tx.anchor == nil {
		tx.end() // read only: its reads were all at its read timestamp
		return nil
	}
	if tx.read.Less(tx.write) && !mutation.On(MutRefreshSkipped) {
		if err := tx.db.refresh(ctx, tx, tx.write); err != nil {
			return err
		}
	}
	keys := sortedKeys(tx.writes)
	meta := tx.meta()
	if mutation.On(MutResolveBeforeDecision) {
		tx.resolve(ctx, keys, true, tx.write)
	}
	var res *result
	for {
		var err error
		res, err = tx.db.send(ctx, tx.db.cl, tx.anchor, &command{op: opEnd, key: tx.anchor, txn: &meta, commit: true, read: tx.write, keys: keys})
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
	tx.resolve(ctx, keys, true, res.ts)
	return nil
}

// Rollback aborts the transaction if it wrote, and removes its intents;
// a transaction that committed stays committed.
func (tx *Tx) Rollback(ctx context.Context) {
	tx.end()
	if tx.anchor == nil || tx.committed {
		return
	}
	keys := sortedKeys(tx.writes)
	meta := tx.meta()
	res, err := tx.db.send(ctx, tx.db.cl, tx.anchor, &command{op: opEnd, key: tx.anchor, txn: &meta, commit: false, keys: keys})
	if err != nil || res.status != statusAborted {
		return // its intents are resolved by whoever meets them
	}
	tx.resolve(ctx, keys, false, hlc.Timestamp{})
}

// resolve settles the transaction's intents after its decision, then
// forgets its record. Best effort: an intent left behind is resolved by
// the first request that meets it (its record says how).
func (tx *Tx) resolve(ctx context.Context, keys [][]byte, commit bool, ts hlc.Timestamp) {
	meta := tx.meta()
	for _, k := range keys {
		if _, err := tx.db.send(ctx, tx.db.cl, k, &command{op: opResolve, key: k, txn: &meta, commit: commit, read: ts}); err != nil {
			return
		}
	}
	_, _ = tx.db.send(ctx, tx.db.cl, tx.anchor, &command{op: opForget, key: tx.anchor, txn: &meta})
}
