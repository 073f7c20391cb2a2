package storage

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// LogStore is one range's Raft log and Raft state in the engine. It
// implements raft.Storage for the range's RawNode, and stages the writes
// of each Ready into a caller's Batch, so that one synced commit persists
// the Readies of many ranges (group commit).
//
// Reads (the raft.Storage methods, Applied, ConfState) answer from the
// durable state: what the last committed batch left. Writes are checked
// against the staged state: the durable one with the pending batch's
// operations on top. Within one batch, stage a Ready's parts in this
// order: ApplySnapshot, Append, SetHardState, then SetApplied/SetConfState
// for what was applied; each is checked against what precedes it.
//
// A LogStore belongs to the one task that drives its range (as RawNode
// does); it is not safe for concurrent use. Its assertions panic, with a
// message naming the range, on any use that would corrupt the log: they
// are bugs in the caller.
type LogStore struct {
	e  *Engine
	id RangeID
	// durable is the state as of the last committed batch that wrote to
	// this store (durable on disk if that batch was synced, as the batches
	// that carry Raft state must be). Raft sees only this.
	durable logState
	// staged is durable with the operations of pending applied.
	// Invariant: staged == durable whenever pending is nil.
	staged logState
	// pending is the uncommitted batch holding this store's staged writes.
	// Invariant: at most one such batch exists at a time.
	pending *Batch
	// cacheOps are pending's updates to cache, run in staging order by its
	// commit hook. Invariant: empty whenever pending is nil.
	cacheOps []func()
	cache    entryCache
	// stats count where Entries and Term found their answers, for tests
	// and metrics.
	stats struct{ cacheHits, engineReads uint64 }
	// closed is set by Close; a closed store accepts nothing.
	closed bool
}

var _ raft.Storage = (*LogStore)(nil)

// OpenLogStore loads range id's state from the engine; a range never
// written to starts empty, with first index 1 and last index 0. Bootstrap
// one by applying a snapshot that carries its ConfState (ApplySnapshot).
//
// A range has at most one open LogStore per engine (two would disagree
// about the log): opening a second panics. Close releases it.
func OpenLogStore(e *Engine, id RangeID) (*LogStore, error) {
	e.live()
	if id == 0 {
		panic("storage: OpenLogStore with range 0")
	}
	e.claimRange(id)
	s := &LogStore{e: e, id: id, cache: entryCache{maxBytes: e.opts.EntryCacheBytes}}
	st, err := s.load()
	if err == nil {
		if v := st.violation(); v != "" {
			err = fmt.Errorf("%w: %s", ErrCorrupt, v)
		}
	}
	if err != nil {
		e.releaseRange(id)
		return nil, fmt.Errorf("storage: range %d: %w", id, err)
	}
	s.durable, s.staged = st, st
	return s, nil
}

// Close releases the store, which must have no uncommitted batch, so that
// the range can be opened again.
func (s *LogStore) Close() {
	if s.pending != nil {
		panic(fmt.Sprintf("storage: range %d: Close with an uncommitted batch", s.id))
	}
	if s.closed {
		return
	}
	s.closed = true
	s.e.releaseRange(s.id)
}

// load reads the state of the range, and the bounds of its log.
func (s *LogStore) load() (logState, error) {
	defer s.e.fatal.crashOnPanic("loading the log")
	var st logState
	r := s.e.db
	for _, part := range []struct {
		key    []byte
		decode func(v []byte) error
	}{
		{hardStateKey(s.id), func(v []byte) error { return unmarshal("hard state", &st.hard, v) }},
		{truncatedKey(s.id), func(v []byte) (err error) { st.truncIndex, st.truncTerm, err = decodeTruncated(v); return err }},
		{appliedKey(s.id), func(v []byte) (err error) { st.applied, st.conf, err = decodeApplied(v); return err }},
		{snapshotKey(s.id), func(v []byte) error { return unmarshal("snapshot metadata", &st.snap, v) }},
	} {
		v, err := get(r, part.key)
		if errors.Is(err, ErrNotFound) {
			continue // never written: the zero value is right
		}
		if err == nil {
			err = part.decode(v)
		}
		if err != nil {
			return st, err
		}
	}

	st.last, st.lastTerm = st.truncIndex, st.truncTerm
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: logKey(s.id, 0), UpperBound: logEnd(s.id)})
	if err != nil {
		return st, err
	}
	if it.First() {
		// The log must start right after the truncated state.
		if i, _ := logIndex(s.id, it.Key()); i != st.truncIndex+1 {
			return st, errors.Join(fmt.Errorf("%w: log starts at %d, truncated state is %d", ErrCorrupt, i, st.truncIndex), it.Close())
		}
		it.Last()
		e, err := decodeEntry(s.id, it)
		if err != nil {
			return st, errors.Join(err, it.Close())
		}
		st.last, st.lastTerm = e.Index, e.Term
	}
	return st, errors.Join(it.Error(), it.Close())
}

// decodeEntry decodes the entry under the iterator and checks that it sits
// under its own index.
func decodeEntry(id RangeID, it *pebble.Iterator) (raftpb.Entry, error) {
	var e raftpb.Entry
	i, ok := logIndex(id, it.Key())
	if !ok {
		return e, fmt.Errorf("%w: %s in range %d's log", ErrBadKey, FormatKey(it.Key()), id)
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return e, err
	}
	if err := e.Unmarshal(v); err != nil {
		return e, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, i, err)
	}
	if e.Index != i {
		return e, fmt.Errorf("%w: entry %d stored under index %d", ErrCorrupt, e.Index, i)
	}
	return e, nil
}

// RangeID is the range whose log this is.
func (s *LogStore) RangeID() RangeID { return s.id }

// InitialState implements raft.Storage. The ConfState is the one as of the
// applied index: start the RawNode with Config.Applied = Applied().
func (s *LogStore) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	s.readable()
	return s.durable.hard, cloneConfState(s.durable.conf), nil
}

// FirstIndex implements raft.Storage.
func (s *LogStore) FirstIndex() (uint64, error) {
	s.readable()
	return s.durable.truncIndex + 1, nil
}

// LastIndex implements raft.Storage.
func (s *LogStore) LastIndex() (uint64, error) {
	s.readable()
	return s.durable.last, nil
}

// Snapshot implements raft.Storage. It returns the latest snapshot's
// metadata only: the data is the range's user keys, which the caller
// streams from a View when it sends the snapshot.
func (s *LogStore) Snapshot() (raftpb.Snapshot, error) {
	s.readable()
	meta := s.durable.snap
	meta.ConfState = cloneConfState(meta.ConfState)
	return raftpb.Snapshot{Metadata: meta}, nil
}

// Applied is the durable applied index.
func (s *LogStore) Applied() uint64 {
	s.readable()
	return s.durable.applied
}

// Replicated reports whether the durable configuration as of the applied
// index has more than one voter (in either half of a joint one, both
// counted once), without copying it: whether a commit needs another node.
func (s *LogStore) Replicated() bool {
	s.readable()
	var first uint64
	for _, half := range [2][]uint64{s.durable.conf.Voters, s.durable.conf.VotersOutgoing} {
		for _, v := range half {
			if first == 0 {
				first = v
			} else if v != first {
				return true
			}
		}
	}
	return false
}

// ConfState is the durable ConfState as of the applied index.
func (s *LogStore) ConfState() raftpb.ConfState {
	s.readable()
	return cloneConfState(s.durable.conf)
}

// Term implements raft.Storage: i must be in [FirstIndex()-1, LastIndex()];
// below, ErrCompacted; above, ErrUnavailable.
func (s *LogStore) Term(i uint64) (uint64, error) {
	s.readable()
	st := &s.durable
	switch {
	case i < st.truncIndex:
		return 0, raft.ErrCompacted
	case i > st.last:
		return 0, raft.ErrUnavailable
	case i == st.truncIndex:
		return st.truncTerm, nil
	case i == st.last:
		return st.lastTerm, nil
	}
	if t, ok := s.cache.term(i); ok {
		s.stats.cacheHits++
		return t, nil
	}
	e := s.readEntry(s.e.db, i)
	return e.Term, nil
}

// Entries implements raft.Storage: the entries in [lo, hi), as many as fit
// in maxSize bytes (raftpb.Entry.Size()) but at least one. lo at or below
// the truncated index gives ErrCompacted; an empty log, ErrUnavailable; hi
// beyond LastIndex()+1 is a bug in the caller and panics, as in
// raft.MemoryStorage. The caller owns the returned slice.
func (s *LogStore) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	s.readable()
	st := &s.durable
	switch {
	case lo <= st.truncIndex:
		return nil, raft.ErrCompacted
	case hi > st.last+1:
		panic(fmt.Sprintf("storage: range %d: Entries hi %d beyond last index %d", s.id, hi, st.last))
	case lo > hi:
		panic(fmt.Sprintf("storage: range %d: Entries lo %d above hi %d", s.id, lo, hi))
	case st.last == st.truncIndex:
		return nil, raft.ErrUnavailable
	case lo == hi:
		return []raftpb.Entry{}, nil
	}
	out := make([]raftpb.Entry, 0, min(hi-lo, 64))
	budget := sizeBudget{max: maxSize}
	next := lo
	cacheFirst, _, cached := s.cache.span()
	if !cached || lo < cacheFirst {
		end := hi
		if cached {
			end = min(hi, cacheFirst)
		}
		out = s.readEntries(out, lo, end, &budget)
		if next = lo + uint64(len(out)); next < end {
			return out, nil // the budget ran out
		}
	}
	for ; next < hi; next++ {
		e := s.cache.ents[next-cacheFirst]
		if !budget.take(&e) {
			break
		}
		out = append(out, e)
		s.stats.cacheHits++
	}
	return out, nil
}

// sizeBudget is raft's rule for maxSize: entries are taken while their
// total Size() stays within max, but the first one is always taken.
type sizeBudget struct {
	max, used uint64
	taken     int
}

func (b *sizeBudget) take(e *raftpb.Entry) bool {
	b.used += uint64(e.Size())
	if b.taken > 0 && b.used > b.max {
		return false
	}
	b.taken++
	return true
}

// readEntries appends to out the entries in [lo, hi) from the engine, until
// the budget runs out. Every index in [lo, hi) must be in the durable log:
// a hole is a broken invariant. A read error crashes the node, since Raft
// cannot go on without its log.
func (s *LogStore) readEntries(out []raftpb.Entry, lo, hi uint64, budget *sizeBudget) []raftpb.Entry {
	defer s.e.fatal.crashOnPanic("reading the log")
	it, err := s.e.db.NewIter(&pebble.IterOptions{LowerBound: logKey(s.id, lo), UpperBound: logKey(s.id, hi)})
	if err != nil {
		s.readFailed(lo, err)
	}
	next := lo
	for valid := it.First(); valid; valid = it.Next() {
		e, err := decodeEntry(s.id, it)
		if err != nil {
			s.readFailed(next, errors.Join(err, it.Close()))
		}
		if e.Index != next {
			break // a hole: reported below
		}
		if !budget.take(&e) {
			s.closeIter(it, next)
			return out
		}
		out = append(out, e)
		s.stats.engineReads++
		next++
	}
	s.closeIter(it, next)
	if next < hi {
		panic(fmt.Sprintf("storage: range %d: log hole: entry %d missing from durable log (%d, %d]",
			s.id, next, s.durable.truncIndex, s.durable.last))
	}
	return out
}

// closeIter closes a log iterator, crashing the node if it failed at i.
func (s *LogStore) closeIter(it *pebble.Iterator, i uint64) {
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		s.readFailed(i, err)
	}
}

// readEntry reads entry i, which must exist, from r (the engine, or a
// batch for the staged log).
func (s *LogStore) readEntry(r pebble.Reader, i uint64) raftpb.Entry {
	defer s.e.fatal.crashOnPanic("reading the log")
	v, closer, err := r.Get(logKey(s.id, i))
	if errors.Is(err, pebble.ErrNotFound) {
		panic(fmt.Sprintf("storage: range %d: log hole: entry %d missing from log (%d, %d]",
			s.id, i, s.staged.truncIndex, s.staged.last))
	}
	if err != nil {
		s.readFailed(i, err)
	}
	defer closer.Close()
	var e raftpb.Entry
	if err := e.Unmarshal(v); err != nil {
		s.readFailed(i, fmt.Errorf("%w: %w", ErrCorrupt, err))
	}
	if e.Index != i {
		s.readFailed(i, fmt.Errorf("%w: entry %d stored under index %d", ErrCorrupt, e.Index, i))
	}
	s.stats.engineReads++
	return e
}

func (s *LogStore) readFailed(i uint64, err error) {
	panic(kernel.NodeCrash{Reason: fmt.Errorf("%w: range %d: reading log entry %d: %w", ErrFatal, s.id, i, err)})
}

// readable panics if the store may not be read.
func (s *LogStore) readable() {
	s.e.live()
	if s.closed {
		panic(fmt.Sprintf("storage: range %d: log store used after Close", s.id))
	}
	if s.durable.destroyed {
		panic(fmt.Sprintf("storage: range %d: log store used after Destroy", s.id))
	}
}

// stage makes b the pending batch of this store, registering the hooks that
// publish or discard what is staged into it.
func (s *LogStore) stage(b *Batch) *logState {
	s.e.live()
	b.open()
	switch {
	case s.closed:
		panic(fmt.Sprintf("storage: range %d: log store used after Close", s.id))
	case b.e != s.e:
		panic(fmt.Sprintf("storage: range %d: staging into a batch of another engine", s.id))
	case s.staged.destroyed:
		panic(fmt.Sprintf("storage: range %d: log store used after Destroy", s.id))
	case s.pending == b:
		return &s.staged
	case s.pending != nil:
		panic(fmt.Sprintf("storage: range %d: staging into a second batch while another is uncommitted", s.id))
	}
	s.pending = b
	b.OnCommit(s.publish)
	b.onAbandon(s.discard)
	return &s.staged
}

// publish runs when the pending batch has committed: the staged state is
// now the durable one.
func (s *LogStore) publish() {
	if v := s.staged.violation(); v != "" {
		panic(fmt.Sprintf("storage: range %d: after commit: %s", s.id, v))
	}
	s.durable = s.staged
	for _, op := range s.cacheOps {
		op()
	}
	s.cacheOps, s.pending = nil, nil
}

// discard runs when the pending batch is abandoned.
func (s *LogStore) discard() {
	s.staged = s.durable
	s.cacheOps, s.pending = nil, nil
}

// Append stages entries, which must be consecutive and follow on from the
// staged log: the first may be at most its last index + 1, and must come
// after both the commit and the applied index, since those entries can
// never change. Any entry after the last one given is deleted: it belonged
// to a conflicting suffix that the new entries replace.
//
// The store keeps the entries' Data, which nobody may modify afterwards
// (Raft's rule for Ready.Entries already).
func (s *LogStore) Append(b *Batch, ents []raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	st := s.stage(b)
	at := ents[0].Index
	for i := 1; i < len(ents); i++ {
		if ents[i].Index != ents[i-1].Index+1 || ents[i].Term < ents[i-1].Term {
			panic(fmt.Sprintf("storage: range %d: appending entry (index %d, term %d) after (index %d, term %d)",
				s.id, ents[i].Index, ents[i].Term, ents[i-1].Index, ents[i-1].Term))
		}
	}
	switch {
	case at > st.last+1:
		panic(fmt.Sprintf("storage: range %d: appending at %d leaves a gap after last index %d", s.id, at, st.last))
	case at <= st.hard.Commit || at <= st.applied:
		panic(fmt.Sprintf("storage: range %d: appending at %d would overwrite committed or applied entries (commit %d, applied %d)",
			s.id, at, st.hard.Commit, st.applied))
	case at == st.last+1 && ents[0].Term < st.lastTerm:
		panic(fmt.Sprintf("storage: range %d: appending term %d after term %d", s.id, ents[0].Term, st.lastTerm))
	}
	newLast := ents[len(ents)-1]
	for i := range ents {
		b.set(logKey(s.id, ents[i].Index), marshal(&ents[i]))
	}
	if newLast.Index < st.last {
		b.delRange(logKey(s.id, newLast.Index+1), logEnd(s.id))
	}
	overwrite := at <= st.last
	st.last, st.lastTerm = newLast.Index, newLast.Term
	if overwrite && mutation.On(MutCacheIgnoresOverwrite) {
		return
	}
	s.cacheOps = append(s.cacheOps, func() { s.cache.append(ents) })
}

// SetHardState stages hs. Terms and commit indexes never go back, a vote
// never changes within a term, and the commit index may not pass the last
// index (stage the Ready's entries first).
func (s *LogStore) SetHardState(b *Batch, hs raftpb.HardState) {
	st := s.stage(b)
	old := st.hard
	switch {
	case hs.Term < old.Term:
		panic(fmt.Sprintf("storage: range %d: hard state term going back from %d to %d", s.id, old.Term, hs.Term))
	case hs.Term == old.Term && old.Vote != 0 && hs.Vote != old.Vote:
		panic(fmt.Sprintf("storage: range %d: vote changing from %d to %d in term %d", s.id, old.Vote, hs.Vote, hs.Term))
	case hs.Commit < old.Commit:
		panic(fmt.Sprintf("storage: range %d: commit index going back from %d to %d", s.id, old.Commit, hs.Commit))
	case hs.Commit > st.last:
		panic(fmt.Sprintf("storage: range %d: commit index %d beyond last index %d", s.id, hs.Commit, st.last))
	}
	b.set(hardStateKey(s.id), marshal(&hs))
	st.hard = hs
}

// SetApplied stages the applied index. It never goes back, and never
// passes the commit index: stage the Ready's hard state first. Raft
// requires this: a restarted RawNode with Config.Applied beyond the stored
// commit index panics.
func (s *LogStore) SetApplied(b *Batch, index uint64) {
	st := s.stage(b)
	switch {
	case index < st.applied:
		panic(fmt.Sprintf("storage: range %d: applied index going back from %d to %d", s.id, st.applied, index))
	case index > max(st.hard.Commit, st.snap.Index):
		panic(fmt.Sprintf("storage: range %d: applying %d beyond commit index %d", s.id, index, st.hard.Commit))
	}
	st.applied = index
	b.set(appliedKey(s.id), encodeApplied(st.applied, st.conf))
}

// SetConfState stages the ConfState that results from applying a
// configuration change (RawNode.ApplyConfChange), together with the
// SetApplied of that entry.
func (s *LogStore) SetConfState(b *Batch, cs raftpb.ConfState) {
	st := s.stage(b)
	st.conf = cloneConfState(cs)
	b.set(appliedKey(s.id), encodeApplied(st.applied, st.conf))
}

// ApplySnapshot stages the replacement of the whole log by snap: the log
// becomes empty after (snap index, snap term), and the applied index and
// ConfState become the snapshot's. snap.Data is not stored: the caller
// writes the range's user data in the same batch. It returns
// raft.ErrSnapOutOfDate for a snapshot no newer than the latest one.
//
// This is also how a range is bootstrapped: a snapshot whose ConfState
// names the first voters (raft's recommended start).
func (s *LogStore) ApplySnapshot(b *Batch, snap raftpb.Snapshot) error {
	st := s.stage(b)
	meta := snap.Metadata
	switch {
	case meta.Index <= st.snap.Index:
		return raft.ErrSnapOutOfDate
	case meta.Index <= st.hard.Commit || meta.Index <= st.applied:
		// Raft only hands out a snapshot beyond its commit index.
		panic(fmt.Sprintf("storage: range %d: snapshot at %d would roll back commit index %d or applied index %d",
			s.id, meta.Index, st.hard.Commit, st.applied))
	}
	meta.ConfState = cloneConfState(meta.ConfState)
	b.delRange(logKey(s.id, 0), logEnd(s.id))
	b.set(truncatedKey(s.id), encodeTruncated(meta.Index, meta.Term))
	b.set(snapshotKey(s.id), marshal(&meta))
	b.set(appliedKey(s.id), encodeApplied(meta.Index, meta.ConfState))
	st.truncIndex, st.truncTerm = meta.Index, meta.Term
	st.last, st.lastTerm = meta.Index, meta.Term
	st.snap = meta
	st.applied, st.conf = meta.Index, meta.ConfState
	s.cacheOps = append(s.cacheOps, s.cache.reset)
	return nil
}

// CreateSnapshot stages snapshot metadata at index, an applied entry, with
// cs the ConfState as of that entry, and returns the snapshot (metadata
// only). It returns raft.ErrSnapOutOfDate if index is not past the latest
// snapshot.
func (s *LogStore) CreateSnapshot(b *Batch, index uint64, cs raftpb.ConfState) (raftpb.Snapshot, error) {
	st := s.stage(b)
	switch {
	case index <= st.snap.Index:
		return raftpb.Snapshot{}, raft.ErrSnapOutOfDate
	case index > st.applied:
		panic(fmt.Sprintf("storage: range %d: snapshot at %d beyond applied index %d", s.id, index, st.applied))
	}
	meta := raftpb.SnapshotMetadata{ConfState: cloneConfState(cs), Index: index, Term: s.stagedTerm(b, index)}
	b.set(snapshotKey(s.id), marshal(&meta))
	st.snap = meta
	return raftpb.Snapshot{Metadata: meta}, nil
}

// Compact stages the deletion of every entry up to and including index,
// which becomes the truncated state. It returns raft.ErrCompacted if index
// is already compacted. index may not pass the latest snapshot: Raft must
// always have a snapshot from which a follower can catch up to the log.
func (s *LogStore) Compact(b *Batch, index uint64) error {
	st := s.stage(b)
	switch {
	case index <= st.truncIndex:
		return raft.ErrCompacted
	case index > st.snap.Index:
		panic(fmt.Sprintf("storage: range %d: compacting to %d beyond the latest snapshot at %d", s.id, index, st.snap.Index))
	}
	term := s.stagedTerm(b, index)
	b.delRange(logKey(s.id, st.truncIndex+1), logKey(s.id, index+1))
	b.set(truncatedKey(s.id), encodeTruncated(index, term))
	st.truncIndex, st.truncTerm = index, term
	s.cacheOps = append(s.cacheOps, func() { s.cache.compact(index) })
	return nil
}

// Destroy stages the deletion of all of the range's state, range-local data
// included (a replica removed from this node). Once b commits, the store
// answers nothing; Close it, and the range may be opened afresh.
func (s *LogStore) Destroy(b *Batch) {
	st := s.stage(b)
	b.delRange(rangePrefix(s.id), rangeEnd(s.id))
	*st = logState{destroyed: true}
	s.cacheOps = append(s.cacheOps, s.cache.reset)
}

// stagedTerm is the term of entry i in the staged log, with i in
// [truncIndex, last] of the staged state. Entries staged but not yet
// committed are read back from the batch.
func (s *LogStore) stagedTerm(b *Batch, i uint64) uint64 {
	st := &s.staged
	switch {
	case i < st.truncIndex || i > st.last:
		panic(fmt.Sprintf("storage: range %d: term of %d outside the log (%d, %d]", s.id, i, st.truncIndex, st.last))
	case i == st.truncIndex:
		return st.truncTerm
	case i == st.last:
		return st.lastTerm
	}
	if len(s.cacheOps) == 0 {
		// Nothing staged has touched the log: the durable log answers.
		t, err := s.Term(i)
		if err != nil {
			panic(fmt.Sprintf("storage: range %d: term of %d: %v", s.id, i, err))
		}
		return t
	}
	return s.readEntry(b.b, i).Term
}
