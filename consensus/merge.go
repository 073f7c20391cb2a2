package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Merges (docs/consensus.md, "Merges").
//
// A merge folds a range (the right-hand range, R) into the range that ends
// where it starts (the left-hand range, L), in two log entries of two
// ranges:
//
//  1. A freeze, in R's log: from the entry on, R takes nothing more, on
//     any replica (writes, reads, splits and membership changes are
//     refused; effects entries that were in flight are not applied), so
//     its state is final. Every replica checks at apply that the range
//     fits in one log entry (MaxMergeBytes); one that does not stays
//     unfrozen, on every replica alike. The freeze is never undone: from
//     here on the merge must finish.
//  2. A merge trigger, in L's log, carrying R's final state: its user
//     data, its client table (a write retried across the merge still
//     applies once) and its clock. Every replica of L applies it in log
//     order: it writes R's data over R's span, takes R's client entries
//     that are newer than its own, extends its span to R's end with a
//     generation above both, and destroys its node's replica of R, if any,
//     leaving a tombstone that drops R's mail.
//
// Carrying the data, not asking each node's replica of R for it (as
// CockroachDB does, after waiting for every replica of R to apply the
// freeze), makes the trigger deterministic whatever the node's replica of
// R looks like (lagging, missing, rebuilt): the price is the bound on the
// right-hand range's size.
//
// Who finishes: the caller (Client.Merge) proposes the trigger as soon as
// the freeze applies. If it dies first, every node holding a replica
// frozen for finishTicks proposes the trigger again from its own copy of
// the final state (the merger task, every mergeRetryInterval) until a
// range covers R's start: then its frozen replica, if still here (a node
// that does not hold L), is garbage and is destroyed. A trigger is
// accepted only by the range ending at R's start, once: L records the
// ranges it absorbed (rangeLocalMerged, copied by splits), so a trigger
// that comes again after L split at the same key is refused.
//
// Garbage. A replica of R on a node where L applied the merge goes with
// it. Others linger: a frozen one on a node that holds no replica of L,
// or one that lagged behind the freeze (or a split before it) and hears
// from no leader any more, since R's other replicas are gone. They are
// found by the merger task, which every mergeRetryInterval asks, for each
// frozen replica here and each replica that has heard from no leader for
// staleTicks (a learner keeps believing in its lost leader: silence is
// the sign, simulator kvsplit5 seed 249), which range serves its start
// key: a range's start key stays in the range for its whole life (a split
// keeps the left half's ID), so
// if another range serves it, the range was merged away and its replica
// here is destroyed (CockroachDB's replica GC queue asks its meta range
// the same question). A snapshot of a range whose span contains an
// initialized replica here of another range with a lower generation
// proves the same, and destroys it before the snapshot installs.

const (
	// MaxMergeBytes bounds the user data and client table a right-hand
	// range may hold to be merged: they travel in one log entry.
	MaxMergeBytes = 1 << 20
	// mergeRetryInterval is how often a node with frozen replicas tries
	// to finish their merges.
	mergeRetryInterval = time.Second
	// mergeCheckTicks is how often a leader looks for cold ranges to
	// merge (Options.MergeBytes; 2 s by default); mergeBackoffTicks how
	// long it leaves one alone after a check that did not merge it (30 s).
	mergeCheckTicks   = 100
	mergeBackoffTicks = 1500
	// staleTicks is how long a replica hears from no leader before the
	// merger task asks whether its range still exists (2 s by default).
	staleTicks = 100
	// finishTicks is how long a range stays frozen before the merger
	// task proposes its merge trigger itself (1 s by default): until
	// then the merge is its caller's, whose trigger carries the frozen
	// leader's hand-over summaries (a copy read from the engine cannot).
	// Proposed at once, the merger's copy raced the caller's and, first
	// in the log, left the merged range's timestamp cache to start afresh
	// (txn TestMergeCarriesTheReads, under -race in CI).
	finishTicks      = 50
	rangeLocalFrozen = "frozen"
	rangeLocalMerged = "merged/"
	clientPrefix     = "client/"
)

// ErrTooLargeToMerge refuses a merge of a range holding more than
// MaxMergeBytes.
var ErrTooLargeToMerge = errors.New("consensus: too large to merge")

// mergeTrigger is R's final state, as its freeze left it.
type mergeTrigger struct {
	right Descriptor
	now   int64
	data  []storage.KeyValue
	// local holds R's range-local entries that L takes over: its client
	// table, and its records of the ranges it (or a range it split from)
	// absorbed, so that a trigger of theirs that comes again is refused
	// by every range that holds their span's neighbourhood.
	local []storage.KeyValue
	// summaries are R's keyspaces' hand-over summaries, from the leader
	// that answered the freeze (handover.go): L's leader takes them over
	// as it applies the merge.
	summaries []keyspaceSummary
}

func (m *mergeTrigger) encode() []byte {
	b := m.right.appendTo(nil)
	b = binary.BigEndian.AppendUint64(b, uint64(m.now))
	for _, kvs := range [][]storage.KeyValue{m.data, m.local} {
		b = binary.AppendUvarint(b, uint64(len(kvs)))
		for _, kv := range kvs {
			b = appendBytes(appendBytes(b, kv.Key), kv.Value)
		}
	}
	if len(m.summaries) > 0 {
		b = binary.AppendUvarint(b, uint64(len(m.summaries)))
		b = appendSummaries(b, m.summaries)
	}
	return b
}

func decodeMergeTrigger(b []byte) (*mergeTrigger, error) {
	d, b, err := readDescriptor(b)
	if err != nil || len(b) < 8 || len(d.Start) == 0 {
		return nil, fmt.Errorf("%w: merge trigger", errMalformed)
	}
	m := &mergeTrigger{right: d, now: int64(binary.BigEndian.Uint64(b))}
	b = b[8:]
	for _, kvs := range []*[]storage.KeyValue{&m.data, &m.local} {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)) {
			return nil, fmt.Errorf("%w: merge trigger", errMalformed)
		}
		b = b[w:]
		for range n {
			var kv storage.KeyValue
			if kv.Key, b, err = readBytes(b); err != nil {
				return nil, err
			}
			if kv.Value, b, err = readBytes(b); err != nil {
				return nil, err
			}
			*kvs = append(*kvs, storage.KeyValue{Key: slices.Clone(kv.Key), Value: slices.Clone(kv.Value)})
		}
	}
	if len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n == 0 {
			return nil, fmt.Errorf("%w: merge trigger", errMalformed)
		}
		sums, err := readSummaries(b[w:])
		if err != nil || uint64(len(sums)) != n {
			return nil, fmt.Errorf("%w: merge trigger's summaries", errMalformed)
		}
		m.summaries = sums
	}
	return m, nil
}

// mergeSource reads a range's final state: the apply batch, or the engine
// (the merger task, for a frozen replica).
type mergeSource interface {
	Scan(start, end []byte, limit int) ([]storage.KeyValue, []byte, error)
	ScanRangeLocal(id storage.RangeID, start, end []byte, limit int) ([]storage.KeyValue, []byte, error)
	GetRangeLocal(storage.RangeID, []byte) ([]byte, error)
}

// readMergeTrigger reads d's state from src as a merge trigger, or false
// if it holds more than MaxMergeBytes.
func readMergeTrigger(src mergeSource, d Descriptor) (*mergeTrigger, bool) {
	m := &mergeTrigger{right: d, now: rangeNow(src, d.ID)}
	m.right.Replicas = nil
	size := 0
	read := func(scan func(start []byte) ([]storage.KeyValue, []byte, error), into *[]storage.KeyValue) bool {
		var start []byte
		for first := true; first || start != nil; first = false {
			kvs, resume, err := scan(start)
			if err != nil {
				kernel.Crash("range %d: read for a merge: %v", d.ID, err)
			}
			for _, kv := range kvs {
				if size += len(kv.Key) + len(kv.Value); size > MaxMergeBytes {
					return false
				}
				*into = append(*into, kv)
			}
			start = resume
		}
		return true
	}
	userData := func(start []byte) ([]storage.KeyValue, []byte, error) {
		if start == nil {
			start = d.Start
		}
		return src.Scan(start, d.End, scanPage)
	}
	if !read(userData, &m.data) {
		return nil, false
	}
	for _, prefix := range []string{clientPrefix, rangeLocalMerged} {
		local := func(start []byte) ([]storage.KeyValue, []byte, error) {
			if start == nil {
				start = []byte(prefix)
			}
			return src.ScanRangeLocal(d.ID, start, prefixEnd([]byte(prefix)), scanPage)
		}
		if !read(local, &m.local) {
			return nil, false
		}
	}
	return m, true
}

// prefixEnd is the first key after every key with prefix p (p is not all
// 0xff).
func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i]++; end[i] != 0 {
			return end[:i+1]
		}
	}
	panic("consensus: prefixEnd of an all-0xff prefix")
}

func mergedKey(id storage.RangeID) []byte {
	return binary.BigEndian.AppendUint64([]byte(rangeLocalMerged), uint64(id))
}

// absorbed reports whether range id, or the range it split from, merged
// range right.
func absorbed(r rangeLocalReader, id, right storage.RangeID) bool {
	_, ok := rangeLocalFixed(r, id, string(mergedKey(right)), 0)
	return ok
}

// isFrozen reads whether range id's stored state is frozen for a merge.
func isFrozen(r rangeLocalReader, id storage.RangeID) bool {
	_, ok := rangeLocalFixed(r, id, rangeLocalFrozen, 0)
	return ok
}

// frozenError refuses a request to a frozen range: the client learns
// nothing new from it, and asks elsewhere until a node that applied the
// merge teaches it the merged range.
func (s *Store) frozenError(r *replica, key []byte) error {
	return RangeMismatchError{Key: key, Ranges: []Descriptor{s.describe(r)}}
}

// proposeFreeze runs at r's leader for OpFreeze: the first step of merging
// r into the range on its left.
func (s *Store) proposeFreeze(r *replica, id uint64, req Request, reply func(Response, error)) {
	switch {
	case len(r.desc.Start) == 0:
		reply(Response{}, errors.New("consensus: the first range has no range on its left to merge into"))
		return
	case !bytes.Equal(req.Key, r.desc.Start):
		reply(Response{}, fmt.Errorf("consensus: no range starts at %q (range %d holds it)", req.Key, r.desc.ID))
		return
	case r.freezing:
		reply(Response{}, retryf("range %d is freezing", r.desc.ID))
		return
	}
	if err := s.changeInFlight(r); err != nil {
		reply(Response{}, err)
		return
	}
	if _, ok := readMergeTrigger(s.eng, r.desc); !ok {
		// Checked again as the freeze applies (the range may grow
		// meanwhile); refused here without a log entry in the common case.
		reply(Response{}, fmt.Errorf("%w: range %d holds more than %d bytes", ErrTooLargeToMerge, r.desc.ID, MaxMergeBytes))
		return
	}
	if err := r.propose(encodeFreeze(id, r.desc.Generation)); err != nil {
		reply(Response{}, retryf("%v", err))
		return
	}
	r.freezeProposed()
	s.proposed++
	r.await(id, reply)
}

// applyFreeze applies a freeze proposed against generation gen to r in b:
// it returns R's final state (nil: the freeze is a no-op, on every
// replica alike: the range changed since, or is too large to merge).
func (s *Store) applyFreeze(b *storage.Batch, r *replica, gen uint64) *mergeTrigger {
	m, frozeNow := r.replicaCore.applyFreeze(b, r.desc, gen)
	if m == nil {
		return nil
	}
	if frozeNow {
		s.rangesChanged = true
		s.rt.Logger().Info("range frozen for a merge", "range", r.desc)
	}
	s.summarizeFrozen(r, m)
	return m
}

// applyFreeze applies a freeze of this replica of range d, proposed
// against generation gen, staging the frozen mark in w: it returns the
// range's final state as a merge trigger (nil: a no-op, on every replica
// alike: the range changed since, or holds more than MaxMergeBytes), and
// whether this freeze froze it (false: frozen already, a freeze asked
// again). The freeze in flight is over either way.
func (c *replicaCore) applyFreeze(w rangeState, d Descriptor, gen uint64) (m *mergeTrigger, frozeNow bool) {
	c.freezeApplied()
	if gen != d.Generation || d.Empty() {
		return nil, false
	}
	m, ok := readMergeTrigger(w, d)
	if !ok {
		return nil, false
	}
	if !c.frozen {
		w.SetRangeLocal(d.ID, []byte(rangeLocalFrozen), nil)
		c.setFrozen(true)
		frozeNow = true
	}
	return m, frozeNow
}

// summarizeFrozen adds to m, the final state of the frozen range r, its
// keyspaces' hand-over summaries if r leads: frozen, it serves nothing
// more, and its leader (this one, or, in an earlier term, one whose reads
// this one's memory starts above) served every read it ever will.
func (s *Store) summarizeFrozen(r *replica, m *mergeTrigger) {
	if st := r.rn.BasicStatus(); st.RaftState == raft.StateLeader {
		m.summaries = s.summaries(r, st.Term)
	}
}

// routeMerge finds the replica a merge trigger is for: the range routed
// to, if this node holds it and it ends at the right-hand range's start
// (or has absorbed it already).
func (s *Store) routeMerge(req Request) (*replica, error) {
	r := s.replicas[req.Range]
	if r != nil && !r.desc.Empty() && (bytes.Equal(r.desc.End, req.Key) || (bytes.Compare(r.desc.Start, req.Key) < 0 && r.desc.Contains(req.Key))) {
		return r, nil
	}
	var known []Descriptor
	for _, id := range s.ids {
		if o := s.replicas[id]; !o.desc.Empty() && (bytes.Equal(o.desc.End, req.Key) || o.desc.Contains(req.Key)) {
			known = append(known, s.describe(o))
		}
	}
	if len(known) == 0 {
		return nil, NotLeaderError{}
	}
	return nil, RangeMismatchError{Key: req.Key, Ranges: known}
}

// proposeMerge runs at r's leader for OpMerge: it proposes the trigger in
// req.Value, or answers OK at once if r already covers the right-hand
// range's start.
func (s *Store) proposeMerge(r *replica, id uint64, req Request, reply func(Response, error)) {
	m, err := decodeMergeTrigger(req.Value)
	if err != nil {
		reply(Response{}, err)
		return
	}
	switch {
	case absorbed(s.eng, r.desc.ID, m.right.ID) || (bytes.Compare(r.desc.Start, m.right.Start) < 0 && r.desc.Contains(m.right.Start)):
		reply(Response{OK: true}, nil) // merged already
		return
	case r.frozen || r.freezing:
		reply(Response{}, retryf("range %d is itself being merged", r.desc.ID))
		return
	case r.splitKey != nil:
		reply(Response{}, retryf("range %d is splitting at %q", r.desc.ID, r.splitKey))
		return
	}
	if err := r.propose(encodeMerge(id, m)); err != nil {
		reply(Response{}, retryf("%v", err))
		return
	}
	s.proposed++
	r.await(id, reply)
}

// mergeDone is what is left of an applied merge once its batch commits:
// stop running the node's replicas of ranges merged away.
type mergeDone struct{ gone []*replica }

// applyMerge applies merge trigger m to r, the left-hand range, in b,
// where splits are the splits applied earlier in the batch. It
// reports whether the right-hand range is merged: by this trigger, or
// already (a trigger that comes again is a no-op). A trigger that meets a
// range not ending at the right-hand range's start is a no-op too.
func (s *Store) applyMerge(b *storage.Batch, r *replica, m *mergeTrigger, splits []*splitDone) (*mergeDone, bool) {
	d, right := r.desc, m.right
	merged, ok, now := r.replicaCore.applyMerge(b, d, m)
	if !now {
		return nil, ok
	}
	// The node's replica of R, whatever its state, is done: its data is
	// L's now. So is any other replica here whose span overlaps R's: its
	// start key is in R's span (a replica here cannot overlap L), served
	// by R and now L, so its range was merged away (a replica that lagged
	// behind a split and a merge: simulator kvsplit seed 14 kept one, whose
	// later destruction wiped L's keys). Their spans are cleared before R's
	// data is written, and tombstones drop their mail for good.
	//
	// A replica here that is newer than the merged range is not: this
	// replica lags, and a newer one took (part of) the span meanwhile, by
	// a snapshot into a span no replica here held (simulator kvsplit seed
	// 240 with automatic merges: the merge wrote its old data over the
	// newer replica's). Its span is left alone, by this merge and by every
	// later entry, until this replica applies the entries that gave it
	// away (newerOverlaps).
	keep := s.newerOverlaps(r, merged)
	done := &mergeDone{}
	for _, id := range s.ids {
		o := s.replicas[id]
		if o == r || o.detached || (id != right.ID && (o.desc.Empty() || !o.desc.Overlaps(right) || o.desc.Generation > merged.Generation)) {
			continue
		}
		o.detached = true // for the rest of this cycle; finishMerge lets go of it
		o.log.Destroy(b)
		if !o.desc.Empty() {
			for _, p := range storage.SpanMinus(storage.Span{Start: o.desc.Start, End: o.desc.End}, keep) {
				b.DeleteRange(p.Start, p.End)
			}
		}
		b.SetReplicaRecord(id, storage.ReplicaRecord{MinReplicaID: math.MaxUint64})
		done.gone = append(done.gone, o)
	}
	// Likewise a right-hand range a split earlier in this batch made here
	// (simulator kvsplit seed 122: split and merged away in one batch, it
	// was opened after it and later destroyed, with the keys of the range
	// that held its span by then).
	for _, sd := range splits {
		if !sd.cancelled && (sd.right.ID == right.ID || sd.right.Overlaps(right)) {
			sd.log.Destroy(b)
			for _, p := range storage.SpanMinus(storage.Span{Start: sd.right.Start, End: sd.right.End}, keep) {
				b.DeleteRange(p.Start, p.End)
			}
			b.SetReplicaRecord(sd.right.ID, storage.ReplicaRecord{MinReplicaID: math.MaxUint64})
			sd.cancelled = true
		}
	}
	b.SetReplicaRecord(right.ID, storage.ReplicaRecord{MinReplicaID: math.MaxUint64})
	stageMerge(b, d, merged, m, keep)
	r.desc = merged
	s.absorbSummaries(r, d.Generation, right, m.summaries)
	r.needSnapshot = true // a snapshot of the old span would not fit here any more
	s.rt.Logger().Info("range merged", "left", merged, "right", right)
	return done, true
}

// applyMerge decides merge trigger m for this replica of range d, the
// left-hand range: it returns the merged range's descriptor, whether the
// right-hand range is merged (by this trigger, or already: a trigger that
// comes again finds it absorbed), and whether this trigger merges it now.
// A trigger that meets a range not ending at the right-hand range's start
// (or a frozen or uninitialized one) is a no-op on every replica alike.
func (c *replicaCore) applyMerge(r rangeLocalReader, d Descriptor, m *mergeTrigger) (merged Descriptor, ok, now bool) {
	c.lastHandover = nil // it knows nothing of the right-hand range's reads
	right := m.right
	if absorbed(r, d.ID, right.ID) {
		return Descriptor{}, true, false
	}
	if c.frozen || !bytes.Equal(d.End, right.Start) || d.Empty() {
		return Descriptor{}, false, false
	}
	return Descriptor{ID: d.ID, Generation: max(d.Generation, right.Generation) + 1, Start: d.Start, End: right.End}, true, true
}

// stageMerge stages in w the merge of m's right-hand range into d, which
// becomes merged: the right-hand range's span holds its final data (but
// for the spans in keep, which newer replicas here hold), the merged range
// takes over its client table (each client's newer entry: a client's
// writes are sequenced, whichever range they went to) and its records of
// the ranges it absorbed, the later of the two clocks, a record that it
// absorbed the right-hand range, and its descriptor.
func stageMerge(w writeState, d, merged Descriptor, m *mergeTrigger, keep []storage.Span) {
	right := m.right
	for _, p := range storage.SpanMinus(storage.Span{Start: right.Start, End: right.End}, keep) {
		w.DeleteRange(p.Start, p.End)
	}
	for _, kv := range m.data {
		if !inSpans(kv.Key, keep) {
			w.Set(kv.Key, kv.Value)
		}
	}
	for _, kv := range m.local {
		switch {
		case bytes.HasPrefix(kv.Key, []byte(rangeLocalMerged)):
			w.SetRangeLocal(d.ID, kv.Key, kv.Value)
		case mutation.On(MutMergeForgetsClients):
		case len(kv.Key) != len(clientPrefix)+8 || len(kv.Value) < 9:
			kernel.Crash("range %d: merge trigger of %v: client-table entry %q = %x", d.ID, right, kv.Key, kv.Value)
		default:
			client := binary.BigEndian.Uint64(kv.Key[len(clientPrefix):])
			if mine, ok := lastApplied(w, d.ID, client); !ok || mine.seq < binary.BigEndian.Uint64(kv.Value) {
				w.SetRangeLocal(d.ID, kv.Key, kv.Value)
			}
		}
	}
	// The merged range's hints start at zero: either side's could
	// certify something the other's data breaks (RangeData.Hints).
	setRangeClock(w, d.ID, max(m.now, rangeNow(w, d.ID)), 0)
	w.SetRangeLocal(d.ID, mergedKey(right.ID), nil)
	setDescriptor(w, merged)
}

// finishMerge stops running the replicas an applied merge destroyed,
// after its batch committed.
func (s *Store) finishMerge(done *mergeDone) {
	for _, o := range done.gone {
		s.abandon(o)
		s.detach(o)
		s.rt.Logger().Info("replica merged away", "range", o.desc.ID, "span", o.desc)
	}
}

// dropSubsumed destroys this node's replicas of other ranges whose start
// key d, a snapshot's descriptor, covers with a higher generation: their
// ranges were merged away (the node missed the merge). The descriptors
// that cover a key over time have ever higher generations (a split or a
// merge gives its ranges one above those it started from), and a range's
// start key is its own while it lives: a newer descriptor of another
// range holding it means the range is gone. (A lagging left-hand range
// meeting a snapshot of its right-hand half keeps its start key: it
// stays.)
func (s *Store) dropSubsumed(r *replica, d Descriptor) {
	for _, id := range slices.Clone(s.ids) {
		o := s.replicas[id]
		if o != r && !o.desc.Empty() && o.desc.Generation < d.Generation && d.Contains(o.desc.Start) {
			s.destroy(o)
		}
	}
}

// suspect is a replica the merger task looks at: frozen, stale (it heard
// from no leader for staleTicks), or known removed.
type suspect struct {
	desc    Descriptor
	replica uint64 // its Raft ID: the driver destroys only that incarnation
	frozen  bool
	// finish: frozen for finishTicks, its caller presumed gone: the
	// merger task proposes the trigger from this node's copy.
	finish bool
	// collect: known removed (its own removal applied, or a peer's
	// word: Store.removedHere), waiting for the range's leader to confirm.
	collect bool
}

// noteSuspects runs on the driver every tick: it publishes the suspects
// for the merger task (starting it at the first).
func (s *Store) noteSuspects() {
	var found []suspect
	for _, id := range s.ids {
		r := s.replicas[id]
		if r.leading || r.leaderHeard == 0 {
			r.leaderHeard = s.ticks
		}
		stale := s.ticks-r.leaderHeard >= staleTicks
		switch {
		case !r.frozen:
			r.frozenSeen = 0
		case r.frozenSeen == 0:
			r.frozenSeen = s.ticks
		}
		if (r.frozen || stale || r.collect) && !r.desc.Empty() {
			finish := r.frozen && s.ticks-r.frozenSeen >= finishTicks
			found = append(found, suspect{desc: r.desc, replica: r.id, frozen: r.frozen, finish: finish, collect: r.collect})
		}
	}
	before := s.suspectsPublished()
	if len(found) == 0 && len(before) == 0 {
		return
	}
	s.suspects.Store(&found)
	if len(found) > 0 && !s.mergerStarted && s.opts.Router != nil {
		s.mergerStarted = true
		s.mergerKick = kernel.NewMailbox[struct{}](s.rt, "merger", 1)
		s.rt.Go("merger", s.merge)
	}
	// A replica just frozen: its merge is under way, and its replicas on
	// nodes without the left-hand range are garbage the moment it is
	// done. Likewise one just known removed. Look now rather than at the
	// next round.
	if s.mergerKick != nil && slices.ContainsFunc(found, func(f suspect) bool {
		return (f.frozen || f.collect) && !slices.ContainsFunc(before, func(b suspect) bool { return (b.frozen || b.collect) && b.desc.ID == f.desc.ID })
	}) {
		s.mergerKick.Send(struct{}{})
	}
}

// Merging reports whether a replica here is frozen, its merge not done
// (as of the driver's last tick): safe to call from any task.
func (s *Store) Merging() bool {
	return slices.ContainsFunc(s.suspectsPublished(), func(f suspect) bool { return f.frozen })
}

func (s *Store) suspectsPublished() []suspect {
	if p := s.suspects.Load(); p != nil {
		return *p
	}
	return nil
}

// merge runs on the merger task: it finishes the merges of the frozen
// replicas here, whoever froze them, and has the replicas of ranges merged
// away destroyed.
func (s *Store) merge(ctx context.Context) {
	cl := NewClient(s.opts.Router, "merger")
	for {
		wait, cancel := s.rt.WithTimeout(ctx, mergeRetryInterval)
		_, _ = s.mergerKick.Recv(wait)
		cancel()
		if ctx.Err() != nil {
			return
		}
		for _, sus := range s.suspectsPublished() {
			actx, cancel := s.rt.WithTimeout(ctx, 5*time.Second)
			gone, err := s.mergedAway(actx, cl, sus)
			cancel()
			switch {
			case err != nil && sus.finish:
				s.rt.Logger().Info("finishing a merge failed; retrying", "right", sus.desc, "err", err)
			case err != nil:
				// A replica cut off from its range looks the same: quietly.
				s.rt.Logger().Debug("asking who serves a silent replica's start key failed", "range", sus.desc, "err", err)
			}
			if gone {
				s.rt.Logger().Info("replica no longer a member of the range that serves its span: collecting it", "range", sus.desc)
				s.events.Send(event{mergedAway: &sus})
			}
		}
	}
}

// mergedAway finishes sus's merge if it falls to this node (sus.finish),
// and reports whether its replica here is garbage: another range serves
// its start key now, or its own range does without this node among its
// members (a replica whose removal it never heard of: a learner removed
// before it caught up stays silent, and its stale span kept a snapshot of
// a range that had split off from it out of the node, simulator kvsplit5
// seed 1149). A replica frozen but not yet its node's to finish waits
// there for the caller's merge, which its Get finds done.
func (s *Store) mergedAway(ctx context.Context, cl *Client, sus suspect) (bool, error) {
	if sus.finish {
		m, ok := readMergeTrigger(s.eng, sus.desc)
		if !ok {
			return false, nil // cannot be: its freeze checked the size
		}
		if err := cl.finishMerge(ctx, m); err != nil {
			return false, err
		}
	}
	resp, err := cl.Do(ctx, Request{Op: OpGet, Key: sus.desc.Start})
	if err != nil {
		return false, err
	}
	switch {
	case resp.Range.ID == 0:
		return false, nil // a reply without its range: an old binary served it
	case resp.Range.ID != sus.desc.ID:
		return true, nil
	default:
		return !slices.Contains(resp.Range.Replicas, s.rt.NodeID()), nil
	}
}

// Merge merges the range that starts at key into the range on its left,
// and returns once the merged range serves both spans.
func (c *Client) Merge(ctx context.Context, key []byte) error {
	if len(key) == 0 {
		return errors.New("consensus: the first range has no range on its left to merge into")
	}
	resp, err := c.Do(ctx, Request{Op: OpFreeze, Key: key})
	if err != nil {
		return err
	}
	if !resp.OK {
		return fmt.Errorf("consensus: the range at %q changed or grew past %d bytes as it froze: not merged", key, MaxMergeBytes)
	}
	m, err := decodeMergeTrigger(resp.Value)
	if err != nil {
		return err
	}
	return c.finishMerge(ctx, m)
}

// finishMerge proposes m to the range ending at its right-hand range's
// start until a range covers that start.
func (c *Client) finishMerge(ctx context.Context, m *mergeTrigger) error {
	resp, err := c.Do(ctx, Request{Op: OpMerge, Key: m.right.Start, Value: m.encode()})
	if err != nil {
		return err
	}
	if !resp.OK {
		return fmt.Errorf("consensus: merge of %v refused", m.right)
	}
	return nil
}

// checkMerges runs on the driver every mergeCheckTicks: it hands the
// splitter task the ranges led here that took no write since the last
// check (cold), to merge into their left neighbours if both are small.
func (s *Store) checkMerges() {
	if s.opts.MergeBytes <= 0 {
		return
	}
	for _, id := range s.ids {
		r := s.replicas[id]
		cold := !r.warm
		r.warm = false
		if !cold || !r.leading || r.frozen || r.freezing || r.splitKey != nil || len(r.desc.Start) == 0 ||
			r.desc.Empty() || s.ticks < r.mergeQuietUntil || s.splitsAsked[id] || s.sticky(r) {
			continue
		}
		if s.splitter.Send(sizeJob{d: r.desc, merge: true}) {
			s.splitsAsked[id] = true
		}
	}
}

// sticky reports whether r's start is a split automatic merges leave
// alone: the layout's, or an operator's (Client.Split).
func (s *Store) sticky(r *replica) bool {
	if _, ok := rangeLocalFixed(s.eng, r.desc.ID, rangeLocalSticky, 0); ok {
		return true
	}
	for _, d := range s.layout.Ranges() {
		if bytes.Equal(d.Start, r.desc.Start) {
			return true
		}
	}
	return false
}

// mergeIfSmall runs on the splitter task: it merges d into its left
// neighbour if both hold at most MergeBytes of user data, and reports
// whether it did.
func (s *Store) mergeIfSmall(ctx context.Context, cl *Client, d Descriptor) bool {
	if !fitsIn(func(start []byte) ([]storage.KeyValue, []byte, error) { return s.eng.Scan(start, d.End, scanPage) }, d.Start, s.opts.MergeBytes) {
		return false
	}
	actx, cancel := s.rt.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	left := cl.router.LookupEndingAt(d.Start)
	scanLeft := func(start []byte) ([]storage.KeyValue, []byte, error) {
		return cl.Scan(actx, start, d.Start, scanPage)
	}
	if !bytes.Equal(left.End, d.Start) || !fitsIn(scanLeft, left.Start, s.opts.MergeBytes) {
		return false
	}
	if err := cl.Merge(actx, d.Start); err != nil {
		s.rt.Logger().Info("automatic merge failed", "right", d, "err", err)
		return false
	}
	s.rt.Logger().Info("automatic merge", "right", d)
	return true
}

// fitsIn reports whether the pages scan returns from start hold at most
// limit bytes (false on a failed read too).
func fitsIn(scan func(start []byte) ([]storage.KeyValue, []byte, error), start []byte, limit int64) bool {
	var total int64
	for first := true; first || start != nil; first = false {
		kvs, resume, err := scan(start)
		if err != nil {
			return false
		}
		for _, kv := range kvs {
			if total += int64(len(kv.Key) + len(kv.Value)); total > limit {
				return false
			}
		}
		start = resume
	}
	return true
}

// newerOverlaps returns the spans of the replicas here, other than r, that
// overlap d, r's span, with a higher generation: r lags behind the
// entries that gave their spans away (a merge widened it over a span a
// newer replica took meanwhile), and must not write there. Empty but in
// that case: replicas on a node do not overlap.
func (s *Store) newerOverlaps(r *replica, d Descriptor) []storage.Span {
	var out []storage.Span
	for _, id := range s.ids {
		if o := s.replicas[id]; o != r && !o.detached && o.desc.Generation > d.Generation && o.desc.Overlaps(d) {
			out = append(out, storage.Span{Start: o.desc.Start, End: o.desc.End})
		}
	}
	return out
}

// inSpans reports whether key is in one of spans.
func inSpans(key []byte, spans []storage.Span) bool {
	for _, sp := range spans {
		if bytes.Compare(key, sp.Start) >= 0 && (sp.End == nil || bytes.Compare(key, sp.End) < 0) {
			return true
		}
	}
	return false
}
