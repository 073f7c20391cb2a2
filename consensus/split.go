package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Splits (docs/consensus.md, "Splits").
//
// Every replica keeps its range's descriptor in the range's replicated
// range-local data (rangeLocalDesc): the span and its generation. A split
// is one log entry of the range (a split trigger: the generation it was
// proposed against, the split key, the new range's ID), proposed by the
// leader and applied by every replica in log order, atomically with the
// rest of its apply batch: the left-hand range's span ends at the key and
// its generation goes up; the right-hand range is created on the same
// node, from the same engine state (user data is not range-prefixed, so
// nothing moves), with the same replicas (their Raft IDs too), the left
// range's range-local state (its client table, so that a write retried
// across the split still applies once; its clock; its membership
// bookkeeping), and a log that starts at (splitInitIndex, splitInitTerm)
// on every replica, as CockroachDB's split trigger does.
//
// While its split is in flight the leader takes no write at or after the
// split key (they would land in the log after the trigger, on the wrong
// range); they retry, and find the new range. Reads need nothing: a
// replica checks that its range holds a read's key when it serves it,
// after applying up to the read's index.
//
// A replica that lags behind a split may meet the right-hand range first:
// a message to a range it does not hold creates an uninitialized replica
// (no span, no data), which may vote but installs no snapshot that
// overlaps a range the node still holds (the left-hand range, which has
// not applied the split yet): once the lagging left-hand replica applies
// the split it initializes the right-hand one, keeping the term and vote
// it already gave. If the right-hand range has removed this node's
// replica meanwhile (a tombstone above its ID), the split leaves the span
// to nobody here and deletes its data.
//
// Range IDs come from a counter in the system keyspace (RangeIDKey),
// advanced with compare-and-set through the ordinary KV path before the
// split is asked for (Client.Split): unique across the cluster, never
// reused; an ID taken for a split that never happens is skipped.

const (
	rangeLocalDesc = "desc"
	// rangeLocalSticky marks a range an operator split off (kind 6).
	rangeLocalSticky = "sticky"
	// The right-hand range's log starts after (splitInitIndex,
	// splitInitTerm), above a bootstrapped range's (1, 1).
	splitInitIndex = 10
	splitInitTerm  = 5
)

// SystemKeyPrefix starts the system keyspace: keys the kernel keeps for
// itself in the replicated key-value space, which no layer above may
// write. Redis's keys start with their hash slot (below 0x40), so they
// never meet it.
var SystemKeyPrefix = []byte{0xff, 0xff}

// RangeIDKey holds the next range ID to hand out (8 bytes, big endian;
// missing: one past the layout's ranges).
var RangeIDKey = append(slices.Clone(SystemKeyPrefix), "range-id"...)

// storedDescriptor reads range id's descriptor from its range-local data
// (false: none stored, a replica bootstrapped before descriptors were).
func storedDescriptor(r rangeLocalReader, id storage.RangeID) (Descriptor, bool) {
	v, err := r.GetRangeLocal(id, []byte(rangeLocalDesc))
	if errors.Is(err, storage.ErrNotFound) {
		return Descriptor{}, false
	}
	if err != nil {
		kernel.Crash("range %d: descriptor: %v", id, err)
	}
	d, err := decodeDescriptor(v)
	if err != nil || d.ID != id {
		kernel.Crash("range %d: descriptor %x does not decode as its own: %v", id, v, err)
	}
	return d, true
}

// setDescriptor stages d as its range's descriptor. Its replicas are not
// stored: the range's ConfState is the truth about them.
func setDescriptor(b writeState, d Descriptor) {
	d.Replicas = nil
	b.SetRangeLocal(d.ID, []byte(rangeLocalDesc), d.appendTo(nil))
}

// describe returns r's descriptor with its replicas' nodes as r's applied
// configuration names them.
func (s *Store) describe(r *replica) Descriptor {
	d := r.desc
	d.Replicas = nil
	for _, id := range members(r.log.ConfState()) {
		d.Replicas = append(d.Replicas, nodeOf(id))
	}
	return d
}

// lookup returns the replica here whose range holds key, if any. (A linear
// walk, fine for tens of ranges; a node with hundreds wants an ordered
// index kept as descriptors change.)
func (s *Store) lookup(key []byte) *replica {
	for _, id := range s.ids {
		if r := s.replicas[id]; r.desc.Contains(key) {
			return r
		}
	}
	return nil
}

// holds reports whether r's range holds key now.
func holds(r *replica, key []byte) bool {
	return r.desc.Contains(key) || mutation.On(MutStaleRangeAccepted)
}

// route finds the replica req is for: the range the client routed it to,
// if this node holds it and its span still holds the key, or else the
// range holding the key (a request routed by key alone). It returns an
// error for the client otherwise.
func (s *Store) route(req Request) (*replica, error) {
	if req.Range == 0 {
		if r := s.lookup(req.Key); r != nil {
			return r, nil
		}
		return nil, NotLeaderError{}
	}
	r := s.replicas[req.Range]
	if r != nil && holds(r, req.Key) {
		return r, nil
	}
	mismatch := RangeMismatchError{Key: req.Key}
	if r != nil && !r.desc.Empty() {
		mismatch.Ranges = append(mismatch.Ranges, s.describe(r))
	}
	if o := s.lookup(req.Key); o != nil && o != r && (r != nil || o.desc.Generation > req.Generation) {
		// Without r, the key's range here is news only if it is newer than
		// what the client routed by (they overlap: both hold the key).
		mismatch.Ranges = append(mismatch.Ranges, s.describe(o))
	}
	if len(mismatch.Ranges) == 0 {
		return nil, NotLeaderError{} // nothing to teach: try another node
	}
	return nil, mismatch
}

// proposeSplit runs at r's leader: it proposes a split of r at req.Key,
// answering once it applies, or at once if the range already starts there.
func (s *Store) proposeSplit(r *replica, id uint64, req Request, reply func(Response, error)) {
	if (len(req.Value) != 8 && len(req.Value) != 9) || binary.BigEndian.Uint64(req.Value) == 0 {
		reply(Response{}, fmt.Errorf("%w: a split without a new range ID", errMalformed))
		return
	}
	newID := storage.RangeID(binary.BigEndian.Uint64(req.Value))
	sticky := len(req.Value) == 9 && req.Value[8] == 1
	if bytes.Equal(req.Key, r.desc.Start) {
		reply(Response{OK: true, Value: binary.BigEndian.AppendUint64(nil, uint64(r.desc.ID))}, nil)
		return
	}
	if insideMeta(req.Key) {
		// One range holds the whole meta span (meta.go); Client.split
		// refuses such a key before it asks.
		reply(Response{}, fmt.Errorf("%w: %q", ErrSplitInsideMeta, req.Key))
		return
	}
	if absorbed(s.eng, r.desc.ID, newID) {
		// A split retried after it applied and its right-hand range was
		// merged back: that ID is spent.
		reply(Response{}, fmt.Errorf("consensus: range ID %d was merged away; a split needs a new one", newID))
		return
	}
	if s.replicas[newID] != nil && !s.replicas[newID].desc.Empty() {
		reply(Response{}, fmt.Errorf("consensus: range ID %d is in use", newID))
		return
	}
	if err := s.changeInFlight(r); err != nil {
		reply(Response{}, err)
		return
	}
	data := encodeSplit(id, splitTrigger{generation: r.desc.Generation, newID: newID, key: req.Key, sticky: sticky})
	if err := r.propose(data); err != nil {
		reply(Response{}, retryf("%v", err))
		return
	}
	r.splitProposed(req.Key)
	s.proposed++
	r.await(id, reply)
}

// changeInFlight refuses, to be retried, a split or a freeze of r while
// another split of it or a configuration change is in flight: the
// right-hand range of a split starts with the left's configuration, not
// one halfway through a change (a learner there would never be promoted),
// and a frozen range must never need one.
func (s *Store) changeInFlight(r *replica) error {
	cs := r.log.ConfState()
	switch {
	case r.splitKey != nil:
		return retryf("range %d is splitting at %q", r.desc.ID, r.splitKey)
	case r.confProposed || len(cs.VotersOutgoing) > 0 || len(cs.Learners) > 0 || s.unappliedConfChange(r):
		return retryf("range %d has a configuration change in progress", r.desc.ID)
	}
	return nil
}

// splitDone is what is left of an applied split once its batch commits:
// open the right-hand replica.
type splitDone struct {
	log   *storage.LogStore // staged in the apply batch: closed once it commits
	right Descriptor
	id    uint64    // the replica's Raft ID
	lead  bool      // the left-hand replica leads: campaign at once
	note  SplitNote // for the keyspaces' SplitNoters, when lead
	// cancelled: a merge later in the same batch absorbed the right-hand
	// range (merge.go); its state is deleted, and it is never opened.
	cancelled bool
}

// applySplit applies a split trigger to r in b, the apply batch, where cs
// is r's configuration as the entries before it in the batch leave it (the
// log store's is the last committed batch's). It returns what to do once
// b commits (nil: nothing) and whether the split took place (the core's
// applySplit says).
func (s *Store) applySplit(b *storage.Batch, r *replica, cs raftpb.ConfState, t *splitTrigger) (*splitDone, bool) {
	d := r.desc
	left, right, ok := r.replicaCore.applySplit(b, d, cs, t)
	if !ok {
		return nil, false
	}
	r.desc = left
	// A snapshot from before the split would carry the old, wider span,
	// which a node that holds the right-hand range already must refuse
	// (snapshotFits): take a fresh one, so that the next one sent fits
	// (kvsplit5 seed 291 sent the same pre-split snapshot forever).
	r.needSnapshot = true
	s.rt.Logger().Info("range split", "left", left, "right", right)

	existing := s.replicas[right.ID]
	rec, err := s.eng.ReplicaRecord(right.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		kernel.Crash("range %d: replica record: %v", right.ID, err)
	}
	switch {
	case existing != nil && !existing.desc.Empty():
		// Initialized already (it cannot be while this replica held its
		// span; kept as a guard): its data is its own.
		return nil, true
	case rec.MinReplicaID > r.id || (existing != nil && existing.id > r.id):
		// The right-hand range removed this node's replica meanwhile (or
		// added a newer one, which a snapshot will fill): nobody here holds
		// the span any more.
		b.DeleteRange(right.Start, right.End)
		return nil, true
	case len(s.newerOverlaps(r, right)) > 0:
		// This replica lags behind a merge and what followed it, and a
		// newer replica here holds part of the span (merge.go): the
		// right-hand range's state from here would be stale. Its replica
		// here, if the range has one, comes by a snapshot; what is not the
		// newer replica's goes.
		for _, p := range storage.SpanMinus(storage.Span{Start: right.Start, End: right.End}, s.newerOverlaps(r, right)) {
			b.DeleteRange(p.Start, p.End)
		}
		return nil, true
	}
	var hs raftpb.HardState
	if existing != nil {
		// A message made it first, uninitialized: keep the term and vote
		// it may have given, and let the split initialize it.
		hs, _, err = existing.log.InitialState()
		if err != nil {
			kernel.Crash("range %d: hard state: %v", right.ID, err)
		}
		s.detach(existing)
	}
	log, err := storage.OpenLogStore(s.eng, right.ID)
	if err != nil {
		kernel.Crash("range %d: open the right-hand range of a split: %v", right.ID, err)
	}
	snap := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: splitInitIndex, Term: splitInitTerm, ConfState: cs}}
	if err := log.ApplySnapshot(b, snap); err != nil {
		kernel.Crash("range %d: bootstrap the right-hand range of a split: %v", right.ID, err)
	}
	init := raftpb.HardState{Term: max(hs.Term, splitInitTerm), Commit: splitInitIndex}
	if hs.Term >= splitInitTerm {
		init.Vote = hs.Vote
	}
	log.SetHardState(b, init)
	stageRightHand(b, d.ID, right, t.sticky)
	b.SetReplicaRecord(right.ID, storage.ReplicaRecord{ReplicaID: r.id, MinReplicaID: r.id})
	return &splitDone{log: log, right: right, id: r.id, lead: r.leading,
		note: SplitNote{Left: d.ID, Right: right.ID, LeftTerm: r.rn.BasicStatus().Term, LeftGeneration: d.Generation, FirstTerm: splitInitTerm + 1}}, true
}

// applySplit applies split trigger t to this replica of range d, where cs
// is its configuration as the entries before the trigger leave it, and
// stages the left-hand range's new descriptor in w. A trigger proposed
// against an older generation, or that no longer fits the range, is a
// no-op (false), on every replica alike: the range is frozen for a merge,
// the key is outside it or at its start, the new range's ID is one it
// absorbed (a split retried after its right-hand range merged back: IDs
// are never reused, simulator kvsplit seed 211), or the configuration is
// joint or has learners. Either way the split this leader had in flight
// at t's key is over.
func (c *replicaCore) applySplit(w writeState, d Descriptor, cs raftpb.ConfState, t *splitTrigger) (left, right Descriptor, ok bool) {
	c.lastHandover = nil // a summary of the range as it was
	if c.splitKey != nil && bytes.Equal(c.splitKey, t.key) {
		c.splitApplied()
	}
	if t.generation != d.Generation || c.frozen || absorbed(w, d.ID, t.newID) || !d.Contains(t.key) || bytes.Equal(t.key, d.Start) ||
		len(cs.VotersOutgoing) > 0 || len(cs.Learners) > 0 {
		return Descriptor{}, Descriptor{}, false
	}
	left = Descriptor{ID: d.ID, Generation: d.Generation + 1, Start: d.Start, End: slices.Clone(t.key)}
	right = Descriptor{ID: t.newID, Generation: d.Generation + 1, Start: slices.Clone(t.key), End: d.End}
	setDescriptor(w, left)
	return left, right, true
}

// stageRightHand stages in w the right-hand range of a split of range
// left, as a node makes its replica of it: the left range's range-local
// data (its client table, so that a write retried across the split
// still applies once; its clock; its membership bookkeeping), but for what
// is the left's alone (its descriptor, its evaluation chain, an
// operator's mark), then its own descriptor, and the operator's mark if
// the split was an operator's. User data is not range-prefixed: it stays
// where it is, and is the right-hand range's by its span.
func stageRightHand(w rangeState, left storage.RangeID, right Descriptor, sticky bool) {
	var start []byte
	for {
		kvs, resume, err := w.ScanRangeLocal(left, start, nil, scanPage)
		if err != nil {
			kernel.Crash("range %d: copy range-local data: %v", left, err)
		}
		for _, kv := range kvs {
			switch {
			case string(kv.Key) == rangeLocalDesc || string(kv.Key) == rangeLocalLastEffect || string(kv.Key) == rangeLocalSticky:
			case bytes.HasPrefix(kv.Key, []byte("client/")) && mutation.On(MutSplitForgetsClients):
			default:
				w.SetRangeLocal(right.ID, kv.Key, kv.Value)
			}
		}
		if resume == nil {
			break
		}
		start = resume
	}
	setDescriptor(w, right)
	if sticky {
		w.SetRangeLocal(right.ID, []byte(rangeLocalSticky), nil)
	}
}

// finishSplit opens the right-hand replica of an applied split, after its
// batch committed.
func (s *Store) finishSplit(done *splitDone) {
	done.log.Close()
	if done.cancelled {
		return
	}
	nr, err := s.openReplica(done.right, done.id)
	if err != nil {
		kernel.Crash("range %d: open the right-hand range of a split: %v", done.right.ID, err)
	}
	// No quiet window (lease.go): the window keeps a restarted replica
	// from voting away a lease it may have promised, and a replica the
	// split just made has promised nothing.
	nr.promisedNothing()
	s.addReplica(nr)
	s.snapshotNow(nr)
	// The left-hand leader leads the right-hand range too, at once
	// (pre-vote first: a right-hand leader elected elsewhere keeps it).
	// Perturbation: it does not, and the new range elects whoever times
	// out first, as when the left-hand leader dies right after the split:
	// the two halves then often have different leaders, and a node's
	// replicas of them lag each other.
	if done.lead && !s.rt.Buggify("consensus.split-elections") {
		for _, k := range s.opts.Keyspaces {
			if n, ok := k.Machine.(SplitNoter); ok {
				n.NoteSplit(done.note)
			}
		}
		_ = nr.rn.Campaign()
	}
}

// detach stops running r and lets go of what it holds in the engine,
// without touching its stored state: what destroy does once that state is
// deleted, and what a split does to the uninitialized replica it takes
// over.
func (s *Store) detach(r *replica) {
	s.rangesChanged = true
	r.detached = true
	r.view.Store(nil)
	s.abandon(r)
	r.log.Close()
	if r.snapView != nil {
		r.snapView.release()
		r.snapView = nil
	}
	delete(s.replicas, r.desc.ID)
	s.ids = slices.DeleteFunc(s.ids, func(id storage.RangeID) bool { return id == r.desc.ID })
}

// snapshotFits reports whether a snapshot for r, whose data describes the
// range as d, may be installed: its span overlaps no other range this
// node holds. (A lagging node's left-hand range still holds the span of a
// right-hand range's snapshot until it applies the split.)
func (s *Store) snapshotFits(r *replica, d Descriptor) bool {
	for _, id := range s.ids {
		if o := s.replicas[id]; o != r && o.desc.Overlaps(d) {
			return false
		}
	}
	return true
}

// snapshotDescriptor finds the descriptor in snapshot data (false: the
// sender stored none, a range bootstrapped before descriptors were).
func snapshotDescriptor(id storage.RangeID, data []byte) (Descriptor, bool, error) {
	var found Descriptor
	ok := false
	err := visitRangeData(data, func(kind byte, key, value []byte) error {
		if kind == 'l' && string(key) == rangeLocalDesc {
			d, err := decodeDescriptor(value)
			if err != nil || d.ID != id {
				return fmt.Errorf("%w: snapshot descriptor of range %d: %v", errMalformed, id, err)
			}
			found, ok = d, true
		}
		return nil
	})
	return found, ok, err
}

// Ranges returns the ranges this node holds initialized replicas of, in ID
// order, as of the driver's last cycle: safe to call from any task (the
// Redis server's active expiry and INFO, the node's /cluster and metrics).
func (s *Store) Ranges() []Descriptor {
	if p := s.ranges.Load(); p != nil {
		return *p
	}
	return nil
}

// publishRanges publishes Descriptors for Ranges, if they changed.
func (s *Store) publishRanges() {
	if !s.rangesChanged {
		return
	}
	s.rangesChanged = false
	ds := s.Descriptors()
	s.ranges.Store(&ds)
	s.publishViews()
}

// Descriptors returns the ranges this node holds initialized replicas of,
// in ID order. Like RangeStatus, call it only while the driver is idle;
// other tasks call Ranges.
func (s *Store) Descriptors() []Descriptor {
	var out []Descriptor
	for _, id := range s.ids {
		if r := s.replicas[id]; !r.desc.Empty() {
			out = append(out, s.describe(r))
		}
	}
	return out
}

// Split splits the range holding key at key, so that a range starts
// there, and returns that range's ID: a new one, taken from RangeIDKey,
// or the range that already starts at key. The split is sticky:
// automatic merges (Options.MergeBytes) leave it alone.
func (c *Client) Split(ctx context.Context, key []byte) (storage.RangeID, error) {
	return c.split(ctx, key, true)
}

// split is Split, sticky or not (an automatic split).
func (c *Client) split(ctx context.Context, key []byte, sticky bool) (storage.RangeID, error) {
	if len(key) == 0 {
		return 0, errors.New("consensus: split at the empty key: the first range starts there")
	}
	if insideMeta(key) {
		return 0, errors.Join(ErrNotApplied, fmt.Errorf("%w: %q (split at %q or %q)", ErrSplitInsideMeta, key, MetaStart, MetaEnd))
	}
	id, err := c.allocateRangeID(ctx)
	if err != nil {
		return 0, err
	}
	value := binary.BigEndian.AppendUint64(nil, uint64(id))
	if sticky {
		value = append(value, 1)
	}
	r, err := c.Do(ctx, Request{Op: OpSplit, Key: key, Value: value})
	if err != nil {
		return 0, err
	}
	if len(r.Value) != 8 {
		return 0, fmt.Errorf("consensus: a split's answer of %d bytes", len(r.Value))
	}
	return storage.RangeID(binary.BigEndian.Uint64(r.Value)), nil
}

// allocateRangeID takes the next range ID from RangeIDKey.
func (c *Client) allocateRangeID(ctx context.Context) (storage.RangeID, error) {
	for {
		v, found, err := c.Get(ctx, RangeIDKey)
		if err != nil {
			return 0, err
		}
		next := uint64(0)
		for _, d := range c.router.layout.Ranges() {
			next = max(next, uint64(d.ID)+1)
		}
		if found {
			if len(v) != 8 {
				return 0, fmt.Errorf("consensus: %q holds %d bytes, not a range ID", RangeIDKey, len(v))
			}
			next = binary.BigEndian.Uint64(v)
		}
		ok, err := c.CompareAndSet(ctx, RangeIDKey, v, binary.BigEndian.AppendUint64(nil, next+1))
		if err != nil {
			return 0, err
		}
		if ok {
			return storage.RangeID(next), nil
		}
	}
}

// effectsFit reports whether every write of ev is r's range's (a write
// evaluated before a split that applied first is not).
func (s *Store) effectsFit(r *replica, ev *evaluated) bool {
	return storage.CheckEffects(r.desc.ID, r.desc.Start, r.desc.End, ev.writes) == nil
}

// Automatic splits (Options.SplitBytes). A leader counts the bytes its
// range's writes carry; once they reach a quarter of SplitBytes it hands
// the range's descriptor to the node's splitter task, which measures the
// range off the driver (a scan of the engine, at most SplitBytes plus a
// page: a driver busy scanning megabytes would stall every range here)
// and, if the range holds more than SplitBytes, splits it through a
// client (a range ID first, then the split itself) at the key that
// halves it, or at the key the state machine picks near it (SplitKeyer).
// One split at a time per node; a split that fails or finds nothing to do
// is forgotten, and the next quarter of writes measures again.

// SplitKeyer is implemented by a state machine whose records of one user
// object span several keys (Redis: a key's records share its slot
// prefix, and keys of one slot must stay in one range). SplitKey returns
// a key strictly inside (start, end) where the range may split, chosen
// near halving, or nil if none may. A state machine without it splits at
// any key.
type SplitKeyer interface {
	SplitKey(start, end, halving []byte) []byte
}

// splitterMailbox bounds the jobs waiting for the splitter task.
const splitterMailbox = 16

// sizeJob is a range handed to the splitter task: to split if it is too
// large, to split near at (a load split, load.go), or to merge into its
// left neighbour if both are small (merge).
type sizeJob struct {
	d     Descriptor
	at    []byte
	merge bool
}

// noteWrites counts a leader's applied write bytes toward its next
// measurement, and hands the range to the splitter when they are enough.
func (s *Store) noteWrites(r *replica, n int) {
	r.warm = true
	if s.opts.SplitBytes <= 0 || !r.leading {
		return
	}
	r.written += int64(n)
	if r.written < s.opts.SplitBytes/4 || r.splitKey != nil || s.splitsAsked[r.desc.ID] {
		return
	}
	r.written = 0
	if s.splitter.Send(sizeJob{d: r.desc}) {
		s.splitsAsked[r.desc.ID] = true
	}
}

// halvingKey measures d's user data and returns the key that halves it,
// or nil if the range holds no more than SplitBytes (or a single key).
// It reads the engine as it is now; the split itself is checked against
// the range as it is when it applies.
func (s *Store) halvingKey(d Descriptor) []byte {
	var sizes []int64
	var keys [][]byte
	var total int64
	start := d.Start
	for start != nil && total <= s.opts.SplitBytes {
		kvs, resume, err := s.eng.Scan(start, d.End, scanPage)
		if err != nil {
			kernel.Crash("range %d: measure: %v", d.ID, err)
		}
		for _, kv := range kvs {
			total += int64(len(kv.Key) + len(kv.Value))
			sizes, keys = append(sizes, total), append(keys, kv.Key)
		}
		start = resume
	}
	if total <= s.opts.SplitBytes || len(keys) < 2 {
		return nil
	}
	// The first key past half; never the range's first key (a split
	// there would leave the left side empty).
	i := sort.Search(len(sizes), func(i int) bool { return sizes[i] > total/2 })
	return s.splitKeyNear(d, slices.Clone(keys[max(i, 1)]))
}

// splitKeyNear is where d may split near key (strictly inside d): key
// itself, or the boundary the state machine picks near it if it is a
// SplitKeyer (nil: nowhere).
func (s *Store) splitKeyNear(d Descriptor, key []byte) []byte {
	ks, ok := s.keyspaceOf(key)
	if sk, isKeyer := ks.Machine.(SplitKeyer); ok && isKeyer {
		// A keyspace's own bounds are always split points; inside it,
		// the machine chooses.
		in := clip(d, ks)
		key = sk.SplitKey(in.Start, in.End, key)
		if key == nil && !bytes.Equal(in.Start, d.Start) {
			key = in.Start
		} else if key == nil && !bytes.Equal(in.End, d.End) {
			key = in.End
		}
		if key != nil && (bytes.Compare(key, d.Start) <= 0 || (d.End != nil && bytes.Compare(key, d.End) >= 0)) {
			kernel.Crash("range %d: the state machine chose split key %q outside (%q, %q)", d.ID, key, d.Start, d.End)
		}
	}
	return clearOfMeta(d, key)
}

// split runs on the splitter task: every range the driver hands it, one
// at a time.
func (s *Store) split(ctx context.Context) {
	cl := NewClient(s.opts.Router, "splitter")
	for {
		job, err := s.splitter.Recv(ctx)
		if err != nil {
			return
		}
		if job.merge {
			merged := s.mergeIfSmall(ctx, cl, job.d)
			s.events.Send(event{splitDone: true, mergeChecked: job.d.ID, merged: merged})
			continue
		}
		d, why, key := job.d, "size", []byte(nil)
		if job.at != nil {
			why, key = "load", s.splitKeyNear(d, job.at)
		} else if s.opts.SplitBytes > 0 {
			key = s.halvingKey(d)
		}
		if key != nil {
			actx, cancel := s.rt.WithTimeout(ctx, 10*time.Second)
			id, err := cl.split(actx, key, false)
			cancel()
			if err != nil {
				s.rt.Logger().Info("automatic split failed", "by", why, "key", fmt.Sprintf("%q", key), "err", err)
			} else {
				s.rt.Logger().Info("automatic split", "by", why, "key", fmt.Sprintf("%q", key), "range", id)
			}
		}
		s.events.Send(event{splitDone: true})
	}
}
