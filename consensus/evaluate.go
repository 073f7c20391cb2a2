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

// evaluate runs req against r's overlay and returns the entry to propose
// (and what r's chain becomes if it is proposed). The overlay keeps the
// effects: the caller either proposes the entry (chain it) or calls
// resetOverlay, as it must after an error (a command that reached outside
// the range, errOutsideRange).
func (s *Store) evaluate(r *replica, d Descriptor, id uint64, req Request) (data []byte, writes []byte, err error) {
	if r.overlay == nil {
		r.overlay = s.eng.NewBatch()
		r.chainFrom(lastEffect(s.eng, d.ID))
	}
	mark := r.overlay.Mark()
	// The reply lands in the client table (applyRequest), which the
	// effects carry: it travels once.
	if _, err := s.applyRequest(r.overlay, d, req); err != nil {
		return nil, nil, err
	}
	r.overlay.SetRangeLocal(d.ID, []byte(rangeLocalLastEffect), binary.BigEndian.AppendUint64(nil, id))
	writes = r.overlay.EffectsSince(mark)
	ev := evaluated{prev: r.tip, nowMillis: req.NowMillis, client: req.Client, writes: writes}
	if mutation.On(MutFollowerReevaluates) {
		plain := req
		plain.NowMillis, plain.Rand = 0, 0
		ev.req = &plain
	}
	return encodeEffects(id, ev), writes, nil
}

// resetOverlay drops r's overlay; with keep, the entries still in flight
// are put back in a fresh one (their chain goes on), otherwise they are
// forgotten too (they will be rejected as they apply).
func (s *Store) resetOverlay(r *replica, keep bool) {
	if r.overlay != nil {
		r.overlay.Close()
		r.overlay = nil
	}
	kept := r.resetChain(keep)
	if len(kept) == 0 {
		return
	}
	r.overlay = s.eng.NewBatch()
	for _, f := range kept {
		if err := r.overlay.ApplyEffects(r.desc.ID, r.desc.Start, r.desc.End, f.writes); err != nil {
			kernel.Crash("range %d: own effects: %v", r.desc.ID, err)
		}
	}
}

// applyEffects applies one effects entry in b, the apply batch, and
// returns its reply, or false when it is rejected.
func (s *Store) applyEffects(b *storage.Batch, r *replica, id uint64, ev *evaluated) (Response, bool) {
	d := r.desc
	if cur := lastEffect(b, d.ID); cur != ev.prev && !mutation.On(MutUncheckedEvaluation) {
		// Evaluated after an entry that never applied: reject it, and
		// throw away this leader's chain if it is one of ours (every
		// later entry of it will be rejected too).
		if r.inChain(id) {
			s.resetOverlay(r, false)
		}
		return Response{}, false
	}
	if ev.req != nil && !r.leading && mutation.On(MutFollowerReevaluates) {
		req := *ev.req
		meta := s.stamp(r)
		req.NowMillis, req.Rand = meta.NowMillis, meta.Rand
		resp, err := s.applyRequest(b, d, req)
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
	overlayBytes := 0
	if r.overlay != nil {
		overlayBytes = r.overlay.Bytes()
	}
	switch r.chainApplied(id, overlayBytes) {
	case overlayDrop:
		s.resetOverlay(r, false)
	case overlayRebuild:
		s.resetOverlay(r, true)
	}
	return Response{OK: rec.ok, Value: rec.reply}, true
}
