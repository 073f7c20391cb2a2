package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// The Redis keyspace (docs/backup.md, "The Redis keyspace").
//
// Its ranges are Redis's state machine, not MVCC: there is no timestamp
// to read them all at. A backup reads each range whole at one point (a
// pinned scan: the state its leaseholder had applied when the first page
// was read), range after range, under a fence (session.SetFence) that
// keeps every transaction across ranges from committing meanwhile. So a
// backup of the Redis keyspace holds each range as it was at one moment,
// and every transaction across ranges whole or not at all; two ranges
// are read at moments apart, as Redis Cluster's nodes save theirs. It
// is read now (after the transactional keyspace's AsOf): it keeps no
// history, so a backup as of a past time holds none of it.
//
// A range read may show keys a transaction across ranges still locks:
// their records are held back until every range is read, and then
// replaced by the images the transaction's decision wrote, if it
// committed. The records are the keyspace's own (raw keys, values,
// expiry times included), written back as they are (ImportRedis).

// RedisKeyspace is how a node reaches the Redis keyspace.
type RedisKeyspace struct {
	Runtime kernel.Runtime
	// Client reads the ranges (pinned scans) and writes a restore's
	// records; Router groups records by range.
	Client *consensus.Client
	Router *consensus.Router
	// DB holds the fences and the decisions of transactions across
	// ranges.
	DB *txn.DB
	// FenceFor bounds how long reading the keyspace may take (default
	// DefaultFenceFor): transactions across ranges wait, and fail after
	// their command timeout, while it runs; a backup that takes longer
	// fails.
	FenceFor time.Duration
	// ID names the backup's fence; unique per backup.
	ID string
	// Page is how many records one page of a range asks for (default
	// consensus.MaxScanLimit); the simulator takes small pages, so that
	// a range's reads interleave with its writes.
	Page int
}

// DefaultFenceFor is RedisKeyspace.FenceFor's default.
const DefaultFenceFor = 5 * time.Minute

// ErrFenceLapsed: reading the Redis keyspace took longer than its fence.
var ErrFenceLapsed = errors.New("backup: reading the Redis keyspace took longer than its fence held")

// heldKey is a key a transaction across ranges locked when its range
// was read: its records wait for the decision.
type heldKey struct {
	id      redis.TxnID
	rk      []byte
	records []redis.KV
}

// ExportRedis writes every record of the Redis keyspace to enc (Entry.Redis
// set) and returns how many.
func ExportRedis(ctx context.Context, rk RedisKeyspace, enc *Encoder) (uint64, error) {
	if rk.FenceFor <= 0 {
		rk.FenceFor = DefaultFenceFor
	}
	fenceFor := rk.FenceFor
	if mutation.On(MutRedisUnfenced) {
		fenceFor = 0 // lapsed as soon as set
	}
	fence, err := session.SetFence(ctx, rk.DB, rk.ID, fenceFor)
	if err != nil {
		return 0, fmt.Errorf("backup: fencing the Redis keyspace's transactions: %w", err)
	}
	defer func() {
		// Lifted even when ctx ended: transactions across ranges wait
		// while it holds.
		lctx, cancel := rk.Runtime.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = fence.Lift(lctx, rk.DB) // a fence left behind lapses at its deadline
	}()
	var entries uint64
	emit := func(kv redis.KV) error {
		entries++
		return enc.Add(Entry{Key: kv.Key, Value: kv.Value, Redis: true})
	}
	var held []heldKey
	for from := []byte{}; from != nil; {
		var slot []redis.KV // the records of one hash slot, until the next starts
		flush := func() error {
			h, err := splitLocked(slot, emit)
			held, slot = append(held, h...), slot[:0]
			return err
		}
		_, next, err := rk.Client.ScanPinned(ctx, from, redis.KeyspaceEnd, rk.Page, func(kvs []storage.KeyValue) error {
			for _, skv := range kvs {
				kv := redis.KV{Key: skv.Key, Value: skv.Value}
				if len(kv.Key) < 2 {
					return fmt.Errorf("%w: a Redis record key of %d bytes", ErrCorrupt, len(kv.Key))
				}
				if len(slot) > 0 && !bytes.Equal(slot[0].Key[:2], kv.Key[:2]) {
					if err := flush(); err != nil {
						return err
					}
				}
				slot = append(slot, kv)
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return entries, fmt.Errorf("backup: reading the Redis keyspace at %x: %w", from, err)
		}
		from = next
	}
	if err := settleHeld(ctx, rk.DB, held, emit); err != nil {
		return entries, err
	}
	if !fence.Holds(rk.DB) && !mutation.On(MutRedisUnfenced) {
		return entries, fmt.Errorf("%w (%v)", ErrFenceLapsed, rk.FenceFor)
	}
	return entries, nil
}

// splitLocked emits the records of one slot's keys that no transaction
// locks, and returns the locked ones' (lock records are not emitted).
func splitLocked(slot []redis.KV, emit func(redis.KV) error) ([]heldKey, error) {
	locked := map[string]redis.TxnID{}
	for _, kv := range slot {
		if redis.IsLockKey(kv.Key) {
			id, rk, err := redis.LockRecord(kv)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			locked[string(rk)] = id
		}
	}
	var held []heldKey
	byRK := map[string]int{}
	for _, kv := range slot {
		if redis.IsLockKey(kv.Key) {
			continue
		}
		if len(locked) > 0 {
			rk, ok := redis.RouteKeyOf(kv.Key)
			if !ok {
				return nil, fmt.Errorf("%w: Redis record %x is under no key", ErrCorrupt, kv.Key)
			}
			if id, ok := locked[string(rk)]; ok {
				i, seen := byRK[string(rk)]
				if !seen {
					i = len(held)
					byRK[string(rk)] = i
					held = append(held, heldKey{id: id, rk: rk})
				}
				held[i].records = append(held[i].records, kv)
				continue
			}
		}
		if err := emit(kv); err != nil {
			return nil, err
		}
	}
	// A locked key that had no records (a transaction creating it), in
	// key order: the decisions are read in held's order.
	for _, rk := range slices.Sorted(maps.Keys(locked)) {
		if _, ok := byRK[rk]; !ok {
			held = append(held, heldKey{id: locked[rk], rk: []byte(rk)})
		}
	}
	return held, nil
}

// settleHeld emits each held key as its transaction's decision leaves
// it: the image it wrote if it committed, its records as read if not.
func settleHeld(ctx context.Context, db *txn.DB, held []heldKey, emit func(redis.KV) error) error {
	type outcome struct {
		committed bool
		images    map[string][]redis.KV
	}
	decided := map[redis.TxnID]outcome{}
	for _, h := range held {
		o, ok := decided[h.id]
		if !ok {
			committed, images, err := session.ReadDecision(ctx, db, h.id)
			if err != nil {
				return fmt.Errorf("backup: reading the decision of transaction %x: %w", h.id, err)
			}
			o = outcome{committed: committed, images: map[string][]redis.KV{}}
			for _, im := range images {
				o.images[string(im.RK)] = im.Records
			}
			decided[h.id] = o
		}
		records := h.records
		if im, ok := o.images[string(h.rk)]; ok && o.committed && !mutation.On(MutHeldAsRead) {
			records = im
		}
		for _, kv := range records {
			if err := emit(kv); err != nil {
				return err
			}
		}
	}
	return nil
}

// EmptyRedis says whether the Redis keyspace holds no record; if not, it
// names the first.
func EmptyRedis(ctx context.Context, rk RedisKeyspace) (bool, []byte, error) {
	for from := []byte{}; from != nil; {
		kvs, resume, err := rk.Client.Scan(ctx, from, redis.KeyspaceEnd, 1)
		if err != nil {
			return false, nil, err
		}
		if len(kvs) > 0 {
			return false, kvs[0].Key, nil
		}
		from = resume
	}
	return true, nil, nil
}

// redisWriter writes a restore's Redis records, a command per range of
// at most redisBatchBytes or redisBatchRecords records.
type redisWriter struct {
	rk    RedisKeyspace
	batch []redis.KV
	size  int
}

const (
	redisBatchBytes   = 512 << 10
	redisBatchRecords = 500
)

func (w *redisWriter) add(ctx context.Context, kv redis.KV) error {
	w.batch = append(w.batch, kv)
	w.size += len(kv.Key) + len(kv.Value)
	if w.size >= redisBatchBytes || len(w.batch) >= redisBatchRecords {
		return w.flush(ctx)
	}
	return nil
}

// flush writes the batch, a command for each run of records in one range
// (as the router knows the ranges; a split it had not seen refuses the
// command, teaches it, and the run is cut again).
func (w *redisWriter) flush(ctx context.Context) error {
	pending := w.batch
	for len(pending) > 0 {
		d := w.rk.Router.Lookup(pending[0].Key)
		n := 1
		for n < len(pending) && d.Contains(pending[n].Key) {
			n++
		}
		b, err := w.rk.Client.Command(ctx, pending[0].Key, redis.ImportCommand(pending[:n]))
		if errors.Is(err, consensus.ErrCrossRange) && ctx.Err() == nil {
			continue
		}
		if err == nil {
			var r redis.Reply
			if r, err = redis.DecodeReply(b); err == nil && r.Kind == redis.KindError {
				err = errors.New(string(r.Str))
			}
		}
		if err != nil {
			return fmt.Errorf("backup: writing %d Redis records from %x: %w", n, pending[0].Key, err)
		}
		pending = pending[n:]
	}
	w.batch, w.size = w.batch[:0], 0
	return nil
}
