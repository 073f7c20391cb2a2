package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/txn"
)

// Backup fences (docs/backup.md, "The Redis keyspace").
//
// A backup of the Redis keyspace reads each range whole at one point (a
// pinned scan), one range after another. A transaction across ranges
// that committed between two of those reads would show in one range and
// not in the other. So while a backup reads, it holds a fence in the
// transactional keyspace, and a coordinator that finds a fence in force
// when it writes its decision writes "aborted" instead (and tries the
// transaction again later, as it does when someone aborted it): no
// transaction across ranges commits while the fence holds. Those that
// decided before it are whole in the backup: each range read shows their
// keys resolved, or still locked with a committed decision, which the
// backup reads once every range is read (ReadDecision) and applies.
//
// Why a decision cannot slip past the fence: the coordinator reads the
// fences in the same transaction that writes its decision. If that
// transaction began after the fence committed, its read sees the fence
// (the uncertainty window covers clocks up to the maximum offset apart).
// If it began before, its locks were all taken before the fence, so
// every range the backup reads after it shows them; and once the backup
// has read a decision's key, no decision can commit below that read
// (the timestamp cache), and one above it sees the fence or fails its
// refresh over the fence's span.
//
// A decision is not deleted while a fence holds (forgetUnlessFenced): a
// backup that read a range while a transaction locked a key of it reads
// the decision once every range is read, and no decision means no
// commit.
//
// A fence names its deadline: one whose backup died lapses then, and a
// backup that outlived its fence fails (FenceHolds). Each backup has a
// fence of its own, so two at once do not lift each other's.

// fencePrefix is where fences live in the transactional keyspace.
const fencePrefix = "redis/fence/"

// maxFences bounds the fences a decision looks at: more backups than
// this at once find their fence refused (ErrTooManyFences).
const maxFences = 8

// ErrTooManyFences: maxFences backups of the Redis keyspace run already.
var ErrTooManyFences = errors.New("session: too many backups of the Redis keyspace at once")

// Fence is a backup's fence: its key and when it lapses.
type Fence struct {
	key      []byte
	Deadline hlc.Timestamp
}

// SetFence writes a fence that holds for d, named id (unique per backup).
// It deletes the fences that lapsed (their backups died), so that the
// fences stored are never more than maxFences: fenced reads them all.
func SetFence(ctx context.Context, db *txn.DB, id string, d time.Duration) (Fence, error) {
	f := Fence{key: []byte(fencePrefix + id)}
	err := db.Txn(ctx, func(tx *txn.Tx) error {
		// Never more than maxFences are stored (each SetFence leaves at
		// most that many): one page reads them all.
		kvs, err := tx.Scan(ctx, []byte(fencePrefix), fenceEnd(), maxFences)
		if err != nil {
			return err
		}
		live := 0
		for _, kv := range kvs {
			if inForce(kv.Value, tx) {
				live++
			} else if err := tx.Delete(ctx, kv.Key); err != nil {
				return err
			}
		}
		if live >= maxFences {
			return fmt.Errorf("%w (%d)", ErrTooManyFences, live)
		}
		f.Deadline = tx.ReadTimestamp().Add(d)
		return tx.Put(ctx, f.key, binary.BigEndian.AppendUint64(nil, uint64(f.Deadline.WallNanos)))
	})
	return f, err
}

// inForce reports whether a fence's value (its deadline) still holds at
// tx's read time.
func inForce(v []byte, tx *txn.Tx) bool {
	return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > tx.ReadTimestamp().WallNanos
}

// Lift removes the fence.
func (f Fence) Lift(ctx context.Context, db *txn.DB) error { return db.Delete(ctx, f.key) }

// Holds reports whether the fence still held, for every node's clock, at
// the node's now: a backup checks it once it read every range.
func (f Fence) Holds(db *txn.DB) bool {
	return db.Now().Add(db.MaxOffset()).Less(f.Deadline)
}

// fenceEnd ends the fences' span: fencePrefix with its last byte ('/')
// moved up one.
func fenceEnd() []byte { return []byte("redis/fence0") }

// fenced reports whether a fence is in force at tx's read time.
func fenced(ctx context.Context, tx *txn.Tx) (bool, error) {
	kvs, err := tx.Scan(ctx, []byte(fencePrefix), fenceEnd(), maxFences)
	if err != nil {
		return false, err
	}
	for _, kv := range kvs {
		if inForce(kv.Value, tx) {
			return true, nil
		}
	}
	return false, nil
}

// forgetUnlessFenced deletes a decision in tx, unless a fence is in
// force: a backup that read a range while the transaction still locked
// a key of it reads the decision later (ReadDecision), and must find it.
// A decision kept is collected later (collectDecisions).
func forgetUnlessFenced(ctx context.Context, tx *txn.Tx, key []byte) error {
	if f, err := fenced(ctx, tx); err != nil || f {
		return err
	}
	return tx.Delete(ctx, key)
}

// ReadDecision reads transaction id's decision: whether it committed,
// and if so the images it wrote. No decision (nothing decided yet, or a
// read-only transaction) reads as not committed: with a fence in force,
// none can commit later.
func ReadDecision(ctx context.Context, db *txn.DB, id redis.TxnID) (bool, []redis.Image, error) {
	v, found, err := db.Get(ctx, decisionKey(id))
	if err != nil || !found {
		return false, nil, err
	}
	d, err := decodeDecision(v)
	return d.committed, d.images, err
}
