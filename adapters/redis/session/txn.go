package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// Cross-range transactions: the coordinator of redis/locks.go's protocol.
// A command, a blocking command's step or a MULTI/EXEC run whose keys lie
// in more than one range locks them range by range in key order, runs on
// their images here, writes its decision (with the images it wrote) by
// compare-and-set in the transactional keyspace, and resolves each range.
// Whoever meets a lock older than LockTimeout decides the transaction in
// its place: aborted, unless its decision says committed, and resolves
// the key it met (commandAt); each node's lock sweeper does the same for
// the locks nobody meets (lockSweepLoop). The decision is deleted by its
// coordinator once it saw every range resolved; one whose coordinator
// died first is collected once older than DecisionTTL (collectDecisions).

// decisionPrefix is where decisions live in the transactional keyspace.
const decisionPrefix = "redis/decision/"

func decisionKey(id redis.TxnID) []byte { return append([]byte(decisionPrefix), id[:]...) }

// decision is a transaction's outcome: committed with the images of the
// keys it wrote and the keys it locked (raw route keys), or aborted. At
// is when it was written (unix ms; 0 for a decision of the first format,
// which had neither time nor keys).
type decision struct {
	committed bool
	images    []redis.Image
	keys      [][]byte
	at        int64
}

// The decision's first byte: 0 and 1 (aborted, committed) were the first
// format's; 2 and 3 are followed by the time and the locked keys.
const (
	decisionAborted   = 2
	decisionCommitted = 3
)

func (d decision) encode() []byte {
	tag := byte(decisionAborted)
	if d.committed {
		tag = decisionCommitted
	}
	b := binary.BigEndian.AppendUint64([]byte{tag}, uint64(d.at))
	b = binary.AppendUvarint(b, uint64(len(d.keys)))
	for _, k := range d.keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	if d.committed {
		b = redis.AppendImages(b, d.images)
	}
	return b
}

func decodeDecision(b []byte) (decision, error) {
	bad := func(err error) (decision, error) {
		return decision{}, fmt.Errorf("session: a corrupt transaction decision (%d bytes): %w", len(b), err)
	}
	if len(b) == 0 || b[0] > decisionCommitted {
		return bad(errors.New("an unknown tag"))
	}
	d := decision{committed: b[0] == 1 || b[0] == decisionCommitted}
	rest := b[1:]
	if b[0] >= decisionAborted {
		if len(rest) < 8 {
			return bad(errors.New("no time"))
		}
		d.at, rest = int64(binary.BigEndian.Uint64(rest)), rest[8:]
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)) {
			return bad(errors.New("a bad key count"))
		}
		rest = rest[w:]
		for range n {
			l, w := binary.Uvarint(rest)
			if w <= 0 || l > uint64(len(rest)-w) {
				return bad(errors.New("a bad key"))
			}
			d.keys, rest = append(d.keys, rest[w:w+int(l)]), rest[w+int(l):]
		}
	}
	if !d.committed {
		if len(rest) != 0 {
			return bad(errors.New("trailing bytes"))
		}
		return d, nil
	}
	images, rest, err := redis.ReadImages(rest)
	if err != nil || len(rest) != 0 {
		return bad(err)
	}
	d.images = images
	return d, nil
}

// errNoTransactions answers a cross-range command on a server without
// the transactional keyspace (Options.NewDB unset).
var errNoTransactions = redis.Error(redis.ErrCrossSlot)

// across runs cmds (one command, or a MULTI/EXEC run with its watches) in
// database db as a cross-range transaction, retrying it when someone
// aborted it, until it ran or the command's time is up.
func (s *Server) across(ctx context.Context, db int, watches []redis.Watch, cmds [][][]byte, multi bool) redis.TxnRun {
	if s.dbs == nil {
		return redis.TxnRun{Reply: errNoTransactions, Ready: true}
	}
	ctx, cancel := s.rt.WithTimeout(ctx, s.opts.CommandTimeout)
	defer cancel()
	var rks [][]byte
	for _, w := range watches {
		rks = append(rks, redis.RawRouteKey(db, w.Key))
	}
	for _, q := range cmds {
		for _, k := range redis.Keys(q) {
			rks = append(rks, redis.RawRouteKey(db, k))
		}
		rks = append(rks, redis.OtherDBKeys(db, q)...)
	}
	slices.SortFunc(rks, bytes.Compare)
	rks = slices.CompactFunc(rks, bytes.Equal)
	cfg := s.objectConfig()
	for attempt := 0; ; attempt++ {
		run, again, err := s.tryAcross(ctx, rks, db, watches, cmds, multi, &cfg)
		if err != nil {
			return redis.TxnRun{Reply: failure(err), Ready: true}
		}
		if !again {
			return run
		}
		backoff := time.Duration(1+s.rt.Rand().IntN(1<<min(attempt, 6))) * time.Millisecond
		if err := s.rt.Sleep(ctx, backoff); err != nil {
			return redis.TxnRun{Reply: failure(errors.Join(consensus.ErrNotApplied, err)), Ready: true}
		}
	}
}

// tryAcross is one attempt: again is set when the transaction was aborted
// by someone who found it too slow, and nothing of it took effect.
func (s *Server) tryAcross(ctx context.Context, rks [][]byte, db int, watches []redis.Watch, cmds [][][]byte, multi bool, cfg *redis.ObjectConfig) (run redis.TxnRun, again bool, err error) {
	var id redis.TxnID
	for i := range id {
		id[i] = byte(s.rt.Rand().IntN(256))
	}
	var groups [][][]byte // the keys locked, by range, in the order locked
	var images []redis.Image
	var now int64
	var seed uint64
	for pending := rks; len(pending) > 0; {
		d := s.router.Lookup(pending[0])
		n := 1
		for n < len(pending) && d.Contains(pending[n]) {
			n++
		}
		group := pending[:n]
		r, err := s.command(ctx, group[0], redis.LockCommand(id, group), false)
		if errors.Is(err, consensus.ErrCrossRange) && ctx.Err() == nil {
			continue // the router learned the range as it is now: regroup
		}
		if err != nil {
			// The lock may have been taken: release it with the others.
			// Nothing was decided, so nothing took effect.
			s.release(ctx, id, append(groups, group))
			return redis.TxnRun{}, false, fmt.Errorf("%w: locking the keys: %v", consensus.ErrNotApplied, err)
		}
		if r.Kind == redis.KindError {
			s.release(ctx, id, groups)
			return redis.TxnRun{Reply: r, Ready: true}, false, nil
		}
		gnow, gseed, gimages, err := redis.LockReply(r, group)
		if err != nil {
			s.release(ctx, id, append(groups, group))
			return redis.TxnRun{}, false, err
		}
		if len(groups) == 0 {
			seed = gseed
		}
		groups, images, now = append(groups, group), append(images, gimages...), max(now, gnow)
		pending = pending[n:]
	}
	if s.rt.Buggify("redis.txn.coordinator-vanishes-after-locks") {
		// The simulator's aimed fault: locks held, nothing decided;
		// whoever meets them settles them after LockTimeout.
		return redis.TxnRun{}, false, fmt.Errorf("%w: buggify: the coordinator vanished holding its locks", consensus.ErrIndeterminate)
	}
	notify := s.notifyFlags()
	run = redis.RunTxn(images, db, now, seed, watches, cmds, multi, cfg, notify)
	// From here on the work goes on if the client's context ends: every
	// lock resolved now is one nobody waits on.
	ctx, cancel := s.rt.WithTimeout(context.WithoutCancel(ctx), s.opts.CommandTimeout)
	defer cancel()
	if run.Reply.Err != nil || len(run.Writes) == 0 {
		// A read, a failed watch, an error, or a blocking step not
		// ready: nothing to write, and no decision. What it read holds
		// only if it held every lock until now: someone who found the
		// transaction too slow may have settled one (and the key may
		// have changed since), which the release's count tells.
		if held, _ := s.resolve(ctx, id, false, groups, nil); !held {
			return redis.TxnRun{}, true, nil
		}
		run.Reply.Err = nil
		run.Reply.Events = s.publishEvents(notify, run.Reply.Events)
		return run, false, nil
	}
	dec, err := s.decide(ctx, id, decision{committed: true, images: run.Writes, keys: rks})
	if err != nil {
		// The decision may stand: the locks stay for whoever meets them
		// to settle by it.
		return redis.TxnRun{}, false, errors.Join(consensus.ErrIndeterminate, err)
	}
	if !dec.committed {
		s.resolve(ctx, id, false, groups, nil)
		s.forget(ctx, id)
		return redis.TxnRun{}, true, nil
	}
	if s.rt.Buggify("redis.txn.coordinator-vanishes-after-decision") {
		// Committed, nothing resolved: whoever meets a lock finishes it
		// from the decision.
		return redis.TxnRun{}, false, fmt.Errorf("%w: buggify: the coordinator vanished after its decision", consensus.ErrIndeterminate)
	}
	if s.rt.Buggify("redis.txn.late-resolution") {
		// The same resolution again, later, when other transactions may
		// hold the keys: it must change nothing.
		s.rt.Go("redis txn late resolution", func(ctx context.Context) {
			if s.rt.Sleep(ctx, time.Duration(s.rt.Rand().IntN(300))*time.Millisecond) == nil {
				s.resolve(ctx, id, true, groups, run.Writes)
			}
		})
	}
	if _, ok := s.resolve(ctx, id, true, groups, run.Writes); ok {
		// No lock of it is left anywhere: nobody reads the decision again.
		s.rt.Go("redis txn forget", func(ctx context.Context) { s.forget(ctx, id) })
	}
	run.Reply.Events = s.publishEvents(notify, run.Reply.Events)
	return run, false, nil
}

// resolve resolves id's locks on the keys of groups, each group's range
// in a task of its own, with the images of the keys written if commit.
// held reports whether every lock was still id's to drop; ok whether
// every range answered (a failure leaves its locks for whoever meets
// them).
func (s *Server) resolve(ctx context.Context, id redis.TxnID, commit bool, groups [][][]byte, images []redis.Image) (held, ok bool) {
	var dropped []*kernel.Future[int]
	for _, g := range groups {
		f := kernel.NewFuture[int](s.rt, "a cross-range transaction's resolution")
		s.rt.Go("redis txn resolve", func(context.Context) { f.Set(s.resolveGroup(ctx, id, commit, g, images)) })
		dropped = append(dropped, f)
	}
	held, ok = true, true
	for i, f := range dropped {
		n, err := f.Wait(ctx)
		ok = ok && err == nil
		held = held && err == nil && n == len(groups[i])
	}
	return held, ok
}

// resolveGroup resolves id's locks on the keys of g, regrouped by range
// if the range split since they were locked, and returns how many it
// dropped.
func (s *Server) resolveGroup(ctx context.Context, id redis.TxnID, commit bool, g [][]byte, images []redis.Image) (int, error) {
	r, err := s.command(ctx, g[0], redis.ResolveCommand(id, commit, g, imagesOf(images, g)), false)
	if errors.Is(err, consensus.ErrCrossRange) && ctx.Err() == nil {
		// The range split (the router learned how): each part alone.
		d := s.router.Lookup(g[0])
		n := 1
		for n < len(g) && d.Contains(g[n]) {
			n++
		}
		a, err := s.resolveGroup(ctx, id, commit, g[:n], images)
		if err != nil || n == len(g) {
			return a, err
		}
		b, err := s.resolveGroup(ctx, id, commit, g[n:], images)
		return a + b, err
	}
	if err != nil {
		return 0, err
	}
	if r.Kind != redis.KindInt {
		return 0, fmt.Errorf("session: a resolution answered %v", r)
	}
	return int(r.Int), nil
}

// imagesOf returns the images of the keys of rks.
func imagesOf(images []redis.Image, rks [][]byte) []redis.Image {
	var out []redis.Image
	for _, im := range images {
		if slices.ContainsFunc(rks, func(rk []byte) bool { return bytes.Equal(rk, im.RK) }) {
			out = append(out, im)
		}
	}
	return out
}

// release drops id's locks on groups after a failure, in a task of its
// own: the client's answer does not wait for it.
func (s *Server) release(ctx context.Context, id redis.TxnID, groups [][][]byte) {
	if len(groups) == 0 {
		return
	}
	s.rt.Go("redis txn release", func(ctx context.Context) {
		ctx, cancel := s.rt.WithTimeout(ctx, s.opts.CommandTimeout)
		defer cancel()
		s.resolve(ctx, id, false, groups, nil)
	})
}

// takeDB takes a DB from the pool (making it the first time its slot
// is taken); give it back with s.dbs.Send.
func (s *Server) takeDB(ctx context.Context) (*txn.DB, error) {
	tdb, err := s.dbs.Recv(ctx)
	if err != nil || tdb != nil {
		return tdb, err
	}
	s.mu.Lock()
	s.dbsMade++
	name := fmt.Sprintf("redis-txn-%d", s.dbsMade)
	s.mu.Unlock()
	if tdb, err = s.opts.NewDB(name); err != nil {
		s.dbs.Send(nil)
		return nil, err
	}
	return tdb, nil
}

// decide writes want as id's decision unless one is written already, and
// returns the one that stands. It retries until it knows, or ctx ends.
func (s *Server) decide(ctx context.Context, id redis.TxnID, want decision) (decision, error) {
	tdb, err := s.takeDB(ctx)
	if err != nil {
		return decision{}, err
	}
	defer s.dbs.Send(tdb)
	key := decisionKey(id)
	want.at = s.opts.Wall().UnixMilli()
	for {
		var got decision
		err := tdb.Txn(ctx, func(tx *txn.Tx) error {
			v, found, err := tx.Get(ctx, key)
			if mutation.On(MutDecisionOverwritten) {
				found = false
			}
			if err != nil || found {
				if err == nil {
					got, err = decodeDecision(v)
				}
				return err
			}
			got = want
			if want.committed {
				// A backup of the Redis keyspace in progress: no
				// transaction across ranges commits (fence.go).
				f, err := fenced(ctx, tx)
				if err != nil {
					return err
				}
				if f {
					got = decision{at: want.at}
				}
			}
			return tx.Put(ctx, key, got.encode())
		})
		if err == nil || ctx.Err() != nil {
			return got, err
		}
		// Unknown (a commit that may have landed) or refused: read again.
		if err := s.rt.Sleep(ctx, time.Millisecond); err != nil {
			return decision{}, err
		}
	}
}

// forget deletes id's decision once every lock of it is resolved.
func (s *Server) forget(ctx context.Context, id redis.TxnID) {
	tdb, err := s.takeDB(ctx)
	if err != nil {
		return
	}
	defer s.dbs.Send(tdb)
	_ = tdb.Txn(ctx, func(tx *txn.Tx) error { return forgetUnlessFenced(ctx, tx, decisionKey(id)) })
}

// settleLock is for a command that met id's lock on the key of raw
// route key rk, older than LockTimeout: it decides id (aborted, unless
// it committed) and resolves that key by the decision.
func (s *Server) settleLock(ctx context.Context, id redis.TxnID, rk []byte) error {
	if s.dbs == nil {
		return fmt.Errorf("session: a lock of transaction %x, and no transactional keyspace to settle it", id)
	}
	dec, err := s.decide(ctx, id, decision{})
	if err != nil {
		return err
	}
	if mutation.On(MutSettleAbortsCommitted) {
		dec = decision{}
	}
	rks := [][]byte{rk}
	_, err = s.command(ctx, rk, redis.ResolveCommand(id, dec.committed, rks, imagesOf(dec.images, rks)), false)
	return err
}

// maxCollected bounds the decisions one collection looks at.
const maxCollected = 1000

// decisionLoop collects, every DecisionGCInterval, the decisions older
// than DecisionTTL (collectDecisions). Every node runs it; two at once
// delete the same decision once, through the transactional keyspace.
func (s *Server) decisionLoop(ctx context.Context) {
	for s.rt.Sleep(ctx, s.opts.DecisionGCInterval) == nil {
		_ = s.collectDecisions(ctx) // a failed pass is tried again next time
	}
}

// collectDecisions deletes the decisions older than DecisionTTL whose
// coordinators died before deleting them. A coordinator decides within
// twice CommandTimeout of taking its first lock (across bounds both
// steps), and DecisionTTL is far longer (Validate), so no coordinator
// still means to decide when its transaction's decision goes: a settler
// that finds none afterwards decides "aborted", as the coordinator could
// not have committed then. A committed decision's keys are settled by it
// first (a lock still there is resolved as committed; resolving a key
// twice does nothing), so no lock outlives the decision it needs.
func (s *Server) collectDecisions(ctx context.Context) error {
	tdb, err := s.takeDB(ctx)
	if err != nil {
		return err
	}
	defer s.dbs.Send(tdb)
	var old []storage.KeyValue
	cutoff := s.opts.Wall().Add(-s.opts.DecisionTTL).UnixMilli()
	prefix := []byte(decisionPrefix)
	end := append(slices.Clone(prefix[:len(prefix)-1]), prefix[len(prefix)-1]+1)
	err = tdb.Txn(ctx, func(tx *txn.Tx) error {
		old = old[:0]
		kvs, err := tx.Scan(ctx, prefix, end, maxCollected)
		for _, kv := range kvs {
			if d, err := decodeDecision(kv.Value); err != nil || (d.at != 0 && d.at < cutoff) {
				old = append(old, kv)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, kv := range old {
		var id redis.TxnID
		copy(id[:], kv.Key[len(prefix):])
		d, err := decodeDecision(kv.Value)
		if err == nil && d.committed {
			for _, rk := range d.keys {
				if _, err := s.command(ctx, rk, redis.ResolveCommand(id, true, [][]byte{rk}, imagesOf(d.images, [][]byte{rk})), false); err != nil {
					return err
				}
			}
		}
		err = tdb.Txn(ctx, func(tx *txn.Tx) error {
			v, found, err := tx.Get(ctx, kv.Key)
			if err != nil || !found || !bytes.Equal(v, kv.Value) {
				return err
			}
			return forgetUnlessFenced(ctx, tx, kv.Key)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
