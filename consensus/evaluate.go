package consensus

import (
	"encoding/binary"

	"go.etcd.io/raft/v3"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Evaluate at the leader, replicate effects (docs/consensus.md). A write
// (put, delete, CAS, a state machine's command) runs once, on the leader,
// against the range's state as every write proposed before it leaves it;
// what it writes (its effects, in storage's batch encoding) and its reply
// go into the log, and every replica applies the effects as they are,
// never running the command again. So a command may be as
// non-deterministic as it likes (its clock, its random choices, the
// state machine's version), and replicas cannot diverge over it.
//
// The state a write is evaluated against is the applied state plus the
// effects of the leader's own proposals not yet applied: an overlay, a
// batch that is never committed, over the engine. Each effects entry names
// the entry it was evaluated after (prev: a chain of proposal IDs), and
// the range keeps the ID of the last effects entry it applied
// (rangeLocalLastEffect). An entry applies only if it follows the last one
// applied; otherwise an entry it was evaluated after never made it into
// the log (dropped on the way, or cut off by a new leader), the state it
// saw never came to be, and it is rejected: no effects, and its client is
// told to retry (it definitely did not apply). CockroachDB checks the same
// with its lease applied index.
//
// A new leader evaluates nothing until it has applied an entry of its own
// term (the entries of earlier terms first); the overlay is thrown away
// whenever leadership is lost or one of its entries is rejected, and
// rebuilt from the entries still in flight when it grows large.

const rangeLocalLastEffect = "last-effect"

// overlayRebuildBytes: an overlay larger than this is rebuilt from the
// proposals still in flight (the applied ones' writes are in the engine).
const overlayRebuildBytes = 1 << 20

// inflight is a proposal of this leader's chain, not yet applied.
type inflight struct {
	id     uint64
	writes []byte
	// lost: never proposed (the simulator's dropped proposal); it will
	// never apply, and the entries chained after it will be rejected.
	lost bool
}

// lastEffect is the ID of the last effects entry the range applied (0:
// none yet).
func lastEffect(r rangeLocalReader, id storage.RangeID) uint64 {
	v, ok := rangeLocalFixed(r, id, rangeLocalLastEffect, 8)
	if !ok {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// errStaleEvaluation answers the client of a rejected entry: it did not
// apply, and the client retries it (the same client and sequence number:
// should a copy of the request have been proposed too, the client table
// lets one of them apply).
var errStaleEvaluation = retryf("evaluated against a state an earlier entry never produced; not applied")

// canEvaluate reports whether c, leading in st's term, may evaluate
// writes: it applied an entry of its own term, so its state holds every
// write an earlier leader committed.
func (c *replicaCore) canEvaluate(st raft.BasicStatus) bool { return c.appliedTerm == st.Term }

// writeState is what a write is evaluated against and stages its writes
// in: a range's data and its range-local records. *storage.Batch is one
// (the apply batch, and the driver's overlay); the core transcripts keep a
// map (memState, memstate_test.go).
type writeState interface {
	stateReader
	Set(key, value []byte)
	Delete(key []byte)
	DeleteRange(start, end []byte)
	SetRangeLocal(id storage.RangeID, key, value []byte)
}

// rangeState is a writeState that also scans a range's range-local
// records: what a split copies to its right-hand range and a freeze reads
// a range's final state from.
type rangeState interface {
	writeState
	ScanRangeLocal(id storage.RangeID, start, end []byte, limit int) ([]storage.KeyValue, []byte, error)
}

// overlay is a leader's writes in flight staged over its range's applied
// state, never committed: what the next write is evaluated against. The
// core owns it (opening it with the function the driver gave, dropping
// or rebuilding it as the chain says); the driver's is a Pebble batch
// over the engine (batchOverlay).
type overlay interface {
	writeState
	// capture runs fn and returns what it staged, as effects every
	// replica's apply takes (storage's encoding for the driver's).
	capture(fn func() error) ([]byte, error)
	// stage puts effects captured earlier back, for range d.
	stage(d Descriptor, effects []byte) error
	// bytes is the overlay's size, which bounds how long it is kept.
	bytes() int
	Close()
}

// batchOverlay is the driver's overlay: a batch of the engine.
type batchOverlay struct{ b *storage.Batch }

// openOverlay opens an overlay over the engine for a replica's core.
func (s *Store) openOverlay() overlay { return batchOverlay{s.eng.NewBatch()} }

func (o batchOverlay) Get(key []byte) ([]byte, error) { return o.b.Get(key) }
func (o batchOverlay) Scan(start, end []byte, limit int) ([]storage.KeyValue, []byte, error) {
	return o.b.Scan(start, end, limit)
}
func (o batchOverlay) GetRangeLocal(id storage.RangeID, key []byte) ([]byte, error) {
	return o.b.GetRangeLocal(id, key)
}
func (o batchOverlay) Set(key, value []byte)         { o.b.Set(key, value) }
func (o batchOverlay) Delete(key []byte)             { o.b.Delete(key) }
func (o batchOverlay) DeleteRange(start, end []byte) { o.b.DeleteRange(start, end) }
func (o batchOverlay) SetRangeLocal(id storage.RangeID, key, value []byte) {
	o.b.SetRangeLocal(id, key, value)
}
func (o batchOverlay) bytes() int { return o.b.Bytes() }
func (o batchOverlay) Close()     { o.b.Close() }

func (o batchOverlay) capture(fn func() error) ([]byte, error) {
	mark := o.b.Mark()
	if err := fn(); err != nil {
		return nil, err
	}
	return o.b.EffectsSince(mark), nil
}

func (o batchOverlay) stage(d Descriptor, effects []byte) error {
	return o.b.ApplyEffects(d.ID, d.Start, d.End, effects)
}

// evaluate runs write (the driver's evaluation of one request against
// range d: its operation, its state machine, its client table) on the
// overlay, opening one after the last effects entry the range applied if
// there is none, and returns what it evaluated to as entry id: its
// effects, and the entry it follows. The overlay keeps the effects: the
// caller either proposes the entry (chain it) or calls rebuildOverlay, as
// it must after an error (a command that reached outside the range,
// errOutsideRange: part of it may be staged).
func (c *replicaCore) evaluate(d Descriptor, id uint64, write func(writeState) error) (evaluated, error) {
	if c.overlay == nil {
		c.overlay = c.openOverlay()
		c.chainFrom(lastEffect(c.overlay, d.ID))
	}
	writes, err := c.overlay.capture(func() error {
		if err := write(c.overlay); err != nil {
			return err
		}
		c.overlay.SetRangeLocal(d.ID, []byte(rangeLocalLastEffect), binary.BigEndian.AppendUint64(nil, id))
		return nil
	})
	if err != nil {
		return evaluated{}, err
	}
	return evaluated{prev: c.tip, writes: writes}, nil
}

// dropOverlay drops the overlay and forgets the chain: the entries still
// in flight will be rejected as they apply.
func (c *replicaCore) dropOverlay() {
	c.closeOverlay()
	c.resetChain(false)
}

// closeOverlay lets go of the overlay, if there is one.
func (c *replicaCore) closeOverlay() {
	if c.overlay != nil {
		c.overlay.Close()
		c.overlay = nil
	}
}

// rebuildOverlay rebuilds the overlay of range d from the entries still
// in flight (their chain goes on), dropping whatever else it staged.
func (c *replicaCore) rebuildOverlay(d Descriptor) {
	c.closeOverlay()
	kept := c.resetChain(true)
	if len(kept) == 0 {
		return
	}
	c.overlay = c.openOverlay()
	for _, f := range kept {
		if err := c.overlay.stage(d, f.writes); err != nil {
			kernel.Crash("range %d: own effects: %v", d.ID, err)
		}
	}
}

// rejected notes that entry id did not apply (evaluated against a state
// that never came to be, or refused as it applied): if it is of this
// leader's chain, every later entry of the chain will be rejected too, and
// the overlay goes with the chain.
func (c *replicaCore) rejected(id uint64) {
	if c.inChain(id) {
		c.dropOverlay()
	}
}

// evaluate evaluates req, as entry id of range d, on r's overlay and
// returns the entry to propose (see replicaCore.evaluate).
func (s *Store) evaluate(r *replica, d Descriptor, id uint64, req Request) (data []byte, writes []byte, err error) {
	// The reply lands in the client table (applyRequest), which the
	// effects carry: it travels once.
	ev, err := r.evaluate(d, id, func(w writeState) error {
		_, err := applyRequest(w, d, req, s.applyCommand)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	ev.nowMillis, ev.client = req.NowMillis, req.Client
	if mutation.On(MutFollowerReevaluates) {
		plain := req
		plain.NowMillis, plain.Rand = 0, 0
		ev.req = &plain
	}
	return encodeEffects(id, ev), ev.writes, nil
}

// follows reports whether ev may apply to range id as r holds it: it was
// evaluated after the last effects entry the range applied.
func follows(r rangeLocalReader, id storage.RangeID, ev *evaluated) bool {
	return lastEffect(r, id) == ev.prev || mutation.On(MutUncheckedEvaluation)
}

// applyEffects applies one effects entry in b, the apply batch, and
// returns its reply, or false when it is rejected.
func (s *Store) applyEffects(b *storage.Batch, r *replica, id uint64, ev *evaluated) (Response, bool) {
	d := r.desc
	if !follows(b, d.ID, ev) {
		// Evaluated after an entry that never applied: reject it, and
		// throw away this leader's chain if it is one of ours (every
		// later entry of it will be rejected too).
		r.rejected(id)
		return Response{}, false
	}
	if ev.req != nil && !r.leading && mutation.On(MutFollowerReevaluates) {
		req := *ev.req
		meta := s.stamp(r)
		req.NowMillis, req.Rand = meta.NowMillis, meta.Rand
		resp, err := applyRequest(b, d, req, s.applyCommand)
		if err != nil {
			kernel.Crash("range %d: re-evaluate entry %d: %v", d.ID, id, err)
		}
		b.SetRangeLocal(d.ID, []byte(rangeLocalLastEffect), binary.BigEndian.AppendUint64(nil, id))
		return resp, true
	}
	if err := b.ApplyEffectsOutside(d.ID, d.Start, d.End, ev.writes, s.newerOverlaps(r, d)); err != nil {
		kernel.Crash("range %d: effects of entry %d: %v", d.ID, id, err)
	}
	rec, ok := lastApplied(b, d.ID, ev.client)
	if !ok {
		kernel.Crash("range %d: entry %d applied without a client-table record for client %d", d.ID, id, ev.client)
	}
	r.chainApplied(d, id)
	return Response{OK: rec.ok, Value: rec.reply}, true
}
