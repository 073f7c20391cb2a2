package storage

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

var bootSnap = raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{
	Index: 5, Term: 2, ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}},
}}

// bootstrapped is a store of range 1 started from bootSnap, with entries
// [6, 6+n) of term 2 and size bytes of payload each, committed up to
// commitIndex.
func bootstrapped(t *testing.T, e *Engine, n uint64, size int, commitIndex uint64) *LogStore {
	t.Helper()
	s := openStore(t, e, 1)
	commit(t, e, func(b *Batch) {
		if err := s.ApplySnapshot(b, bootSnap); err != nil {
			t.Fatal(err)
		}
		s.Append(b, ents(6, 6+n, 2, size))
		s.SetHardState(b, raftpb.HardState{Term: 2, Vote: 1, Commit: commitIndex})
	})
	return s
}

// TestEntriesMaxSize: Entries returns the longest prefix within maxSize,
// but always at least one entry, whether the entries come from the cache,
// the engine or both.
func TestEntriesMaxSize(t *testing.T) {
	size := uint64((&raftpb.Entry{Index: 6, Term: 2, Data: make([]byte, 100)}).Size())
	for _, cacheBytes := range []int64{-1, int64(4 * size), 1 << 20} { // off, the last 4 entries, all
		t.Run(fmt.Sprintf("cache=%d", cacheBytes), func(t *testing.T) {
			opts := testOptions()
			opts.EntryCacheBytes = cacheBytes
			e := openEngine(t, vfs.NewMem(), opts)
			defer e.Close()
			s := bootstrapped(t, e, 10, 100, 15) // entries 6..15
			for _, tc := range []struct {
				lo, hi, maxSize uint64
				want            int
			}{
				{6, 16, 0, 1},
				{6, 16, size - 1, 1},
				{6, 16, size, 1},
				{6, 16, 2*size - 1, 1},
				{6, 16, 2 * size, 2},
				{6, 16, 7*size + 3, 7}, // crosses from the engine into a 4-entry cache
				{6, 16, 10 * size, 10},
				{6, 16, noLimit, 10},
				{13, 16, 2 * size, 2},
				{15, 16, 0, 1},
				{9, 9, 0, 0},
			} {
				got, err := s.Entries(tc.lo, tc.hi, tc.maxSize)
				if err != nil || len(got) != tc.want {
					t.Errorf("Entries(%d, %d, %d) = %d entries, %v; want %d", tc.lo, tc.hi, tc.maxSize, len(got), err, tc.want)
					continue
				}
				if d := diffEntries(got, ents(tc.lo, tc.lo+uint64(tc.want), 2, 100)); d != "" {
					t.Errorf("Entries(%d, %d, %d): %s", tc.lo, tc.hi, tc.maxSize, d)
				}
			}
			if _, err := s.Entries(5, 10, noLimit); !errors.Is(err, raft.ErrCompacted) {
				t.Errorf("Entries at the snapshot index: %v, want ErrCompacted", err)
			}
			if msg := panicOf(func() { _, _ = s.Entries(6, 17, noLimit) }); !strings.Contains(msg, "beyond last index") {
				t.Errorf("Entries past the last index+1 panicked with %q", msg)
			}
			// The caller owns the slice: appending to it must not reach the store.
			got, _ := s.Entries(6, 8, noLimit)
			_ = append(got[:1], raftpb.Entry{Index: 99})
			if again, _ := s.Entries(7, 8, noLimit); again[0].Index != 7 {
				t.Errorf("an append to a returned slice changed the store: entry 7 reads as %d", again[0].Index)
			}
		})
	}
}

// TestEntryCache: the cache keeps the most recent entries within its
// budget, serves them without touching the engine, follows conflicting
// appends, compactions and snapshots, and holds only committed state.
func TestEntryCache(t *testing.T) {
	size := int64((&raftpb.Entry{Index: 6, Term: 2, Data: make([]byte, 100)}).Size())
	opts := testOptions()
	opts.EntryCacheBytes = 4 * size
	e := openEngine(t, vfs.NewMem(), opts)
	defer e.Close()
	s := bootstrapped(t, e, 10, 100, 10) // entries 6..15; the cache keeps 12..15

	if first, last, _ := s.cache.span(); first != 12 || last != 15 || s.cache.bytes != 4*size {
		t.Fatalf("cache holds [%d, %d] in %d bytes, want [12, 15] in %d", first, last, s.cache.bytes, 4*size)
	}
	s.stats.cacheHits, s.stats.engineReads = 0, 0
	if _, err := s.Entries(12, 16, noLimit); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Term(13); err != nil {
		t.Fatal(err)
	}
	if s.stats.engineReads != 0 || s.stats.cacheHits != 5 {
		t.Fatalf("reads of cached entries: %d from the engine, %d from the cache; want 0 and 5", s.stats.engineReads, s.stats.cacheHits)
	}
	if _, err := s.Entries(8, 16, noLimit); err != nil {
		t.Fatal(err)
	}
	if s.stats.engineReads != 4 {
		t.Fatalf("Entries(8, 16) read %d entries from the engine, want 4 (8..11)", s.stats.engineReads)
	}

	// A conflicting append replaces the cached suffix, but only on commit.
	b := e.NewBatch()
	s.Append(b, ents(14, 15, 3, 10))
	if _, last, _ := s.cache.span(); last != 15 {
		t.Fatalf("the cache changed before commit: ends at %d", last)
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if first, last, _ := s.cache.span(); first != 12 || last != 14 || s.cache.ents[2].Term != 3 {
		t.Fatalf("after a conflicting append the cache holds [%d, %d]", first, last)
	}
	if last, _ := s.LastIndex(); last != 14 {
		t.Fatalf("last index %d, want 14", last)
	}
	if _, err := s.Term(15); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Term(15) after truncation: %v", err)
	}

	// An entry bigger than the whole budget is not kept.
	commit(t, e, func(b *Batch) { s.Append(b, ents(15, 16, 3, int(5*size))) })
	if _, _, ok := s.cache.span(); ok {
		t.Fatal("the cache kept an entry larger than its budget")
	}
	commit(t, e, func(b *Batch) { s.Append(b, ents(16, 18, 3, 10)) })

	// Compaction drops cached entries; a snapshot empties the cache.
	commit(t, e, func(b *Batch) {
		s.SetHardState(b, raftpb.HardState{Term: 3, Vote: 1, Commit: 17})
		s.SetApplied(b, 17)
		if _, err := s.CreateSnapshot(b, 16, bootSnap.Metadata.ConfState); err != nil {
			t.Fatal(err)
		}
		if err := s.Compact(b, 16); err != nil {
			t.Fatal(err)
		}
	})
	if first, last, _ := s.cache.span(); first != 17 || last != 17 {
		t.Fatalf("after compacting to 16 the cache holds [%d, %d]", first, last)
	}
	commit(t, e, func(b *Batch) {
		snap := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 30, Term: 4, ConfState: bootSnap.Metadata.ConfState}}
		if err := s.ApplySnapshot(b, snap); err != nil {
			t.Fatal(err)
		}
	})
	if _, _, ok := s.cache.span(); ok || s.cache.bytes != 0 {
		t.Fatal("a snapshot left entries in the cache")
	}
}

// TestReload: everything a LogStore answers comes back after a clean
// reopen and after a crash, when it was committed with sync.
func TestReload(t *testing.T) {
	fs := vfs.NewCrashableMem()
	e := openEngine(t, fs, testOptions())
	s := bootstrapped(t, e, 20, 30, 25) // entries 6..25
	cs := raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{4}}
	commit(t, e, func(b *Batch) {
		s.SetConfState(b, cs)
		s.SetApplied(b, 20)
		if _, err := s.CreateSnapshot(b, 18, cs); err != nil {
			t.Fatal(err)
		}
		if err := s.Compact(b, 12); err != nil {
			t.Fatal(err)
		}
		s.Append(b, ents(26, 28, 3, 30))
		s.SetHardState(b, raftpb.HardState{Term: 3, Vote: 2, Commit: 26})
	})
	type answers struct {
		hs           raftpb.HardState
		cs           raftpb.ConfState
		first, last  uint64
		applied      uint64
		snap         raftpb.SnapshotMetadata
		entries      []raftpb.Entry
		term12, term uint64
	}
	read := func(s *LogStore) answers {
		var a answers
		a.hs, a.cs, _ = s.InitialState()
		a.first, _ = s.FirstIndex()
		a.last, _ = s.LastIndex()
		a.applied = s.Applied()
		snap, _ := s.Snapshot()
		a.snap = snap.Metadata
		a.entries, _ = s.Entries(a.first, a.last+1, noLimit)
		a.term12, _ = s.Term(12)
		a.term, _ = s.Term(a.last)
		return a
	}
	want := read(s)
	if want.first != 13 || want.last != 27 || want.applied != 20 || want.snap.Index != 18 || want.term12 != 2 || want.term != 3 {
		t.Fatalf("before reopening: %+v", want)
	}
	check := func(how string, s *LogStore) {
		got := read(s)
		if got.hs != want.hs || !sameConf(got.cs, want.cs) || got.first != want.first || got.last != want.last ||
			got.applied != want.applied || !sameMeta(got.snap, want.snap) || got.term12 != want.term12 || got.term != want.term {
			t.Fatalf("after %s: %+v\nwant %+v", how, got, want)
		}
		if d := diffEntries(got.entries, want.entries); d != "" {
			t.Fatalf("after %s: entries: %s", how, d)
		}
	}

	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	s.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, fs, testOptions())
	check("a clean reopen", openStore(t, e, 1))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, crashed, testOptions())
	defer e.Close()
	check("a crash", openStore(t, e, 1))
}

// TestGroupCommit: one synced batch carries the writes of several ranges;
// each store publishes its part only when the batch commits.
func TestGroupCommit(t *testing.T) {
	fs := vfs.NewCrashableMem()
	e := openEngine(t, fs, testOptions())
	a, b := openStore(t, e, 1), openStore(t, e, 2)
	batch := e.NewBatch()
	for _, s := range []*LogStore{a, b} {
		if err := s.ApplySnapshot(batch, bootSnap); err != nil {
			t.Fatal(err)
		}
		s.Append(batch, ents(6, 9, 2, 10))
		s.SetHardState(batch, raftpb.HardState{Term: 2, Commit: 7})
	}
	batch.Set([]byte("user"), []byte("data"))
	if last, _ := a.LastIndex(); last != 0 {
		t.Fatalf("range 1 shows last index %d before the commit", last)
	}
	if err := batch.Commit(true); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	_ = e.Close()
	e = openEngine(t, crashed, testOptions())
	defer e.Close()
	for _, id := range []RangeID{1, 2} {
		s := openStore(t, e, id)
		if last, _ := s.LastIndex(); last != 8 {
			t.Errorf("range %d: last index %d after the crash, want 8", id, last)
		}
	}
	if _, err := e.Get([]byte("user")); err != nil {
		t.Errorf("user data of the group commit: %v", err)
	}
}

// TestAbandonedBatch: closing a batch uncommitted leaves the store as it
// was, ready for the next batch.
func TestAbandonedBatch(t *testing.T) {
	e := openEngine(t, vfs.NewMem(), testOptions())
	defer e.Close()
	s := bootstrapped(t, e, 3, 10, 8) // 6..8
	b := e.NewBatch()
	s.Append(b, ents(9, 12, 2, 10))
	if msg := panicOf(func() { s.Append(e.NewBatch(), ents(12, 13, 2, 10)) }); !strings.Contains(msg, "second batch") {
		t.Fatalf("staging into a second batch panicked with %q", msg)
	}
	b.Close()
	if s.staged.last != 8 || s.pending != nil {
		t.Fatalf("abandoned batch left staged last %d, pending %v", s.staged.last, s.pending != nil)
	}
	commit(t, e, func(b *Batch) { s.Append(b, ents(9, 10, 2, 10)) })
	if last, _ := s.LastIndex(); last != 9 {
		t.Fatalf("last index %d, want 9", last)
	}
}

// TestInvariants: writes that would corrupt the log panic, naming the
// range and what was wrong.
func TestInvariants(t *testing.T) {
	e := openEngine(t, vfs.NewMem(), testOptions())
	defer e.Close()
	s := bootstrapped(t, e, 5, 10, 10) // entries 6..10, applied 5, snapshot 5
	for _, tc := range []struct {
		name, want string
		stage      func(b *Batch)
	}{
		{"gap", "leaves a gap", func(b *Batch) { s.Append(b, ents(12, 13, 2, 1)) }},
		{"overwrite committed", "overwrite committed", func(b *Batch) { s.Append(b, ents(10, 11, 3, 1)) }},
		{"non-consecutive", "appending entry", func(b *Batch) { s.Append(b, []raftpb.Entry{{Index: 11, Term: 2}, {Index: 13, Term: 2}}) }},
		{"term going back in entries", "appending entry", func(b *Batch) { s.Append(b, []raftpb.Entry{{Index: 11, Term: 3}, {Index: 12, Term: 2}}) }},
		{"term below the last", "appending term 1 after term 2", func(b *Batch) { s.Append(b, ents(11, 12, 1, 1)) }},
		{"hard state term", "term going back", func(b *Batch) { s.SetHardState(b, raftpb.HardState{Term: 1, Commit: 10}) }},
		{"vote", "vote changing", func(b *Batch) { s.SetHardState(b, raftpb.HardState{Term: 2, Vote: 2, Commit: 10}) }},
		{"commit going back", "commit index going back", func(b *Batch) { s.SetHardState(b, raftpb.HardState{Term: 2, Vote: 1, Commit: 9}) }},
		{"commit past last", "beyond last index", func(b *Batch) { s.SetHardState(b, raftpb.HardState{Term: 2, Vote: 1, Commit: 11}) }},
		{"applied past commit", "beyond commit index", func(b *Batch) {
			s.Append(b, ents(11, 12, 2, 1))
			s.SetApplied(b, 11)
		}},
		{"applied going back", "applied index going back", func(b *Batch) { s.SetApplied(b, 4) }},
		{"snapshot past applied", "beyond applied index", func(b *Batch) { _, _ = s.CreateSnapshot(b, 8, raftpb.ConfState{}) }},
		{"compact past snapshot", "beyond the latest snapshot", func(b *Batch) { _ = s.Compact(b, 7) }},
		{"snapshot rolls back commit", "roll back", func(b *Batch) {
			_ = s.ApplySnapshot(b, raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 9, Term: 2}})
		}},
	} {
		b := e.NewBatch()
		msg := panicOf(func() { tc.stage(b) })
		b.Close()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "range 1") {
			t.Errorf("%s: panicked with %q, want a message about range 1 containing %q", tc.name, msg, tc.want)
		}
	}
	if msg := panicOf(func() { _, _ = OpenLogStore(e, 1) }); !strings.Contains(msg, "already has an open LogStore") {
		t.Errorf("a second LogStore of range 1 panicked with %q", msg)
	}
	// The store is still intact and usable.
	commit(t, e, func(b *Batch) { s.Append(b, ents(11, 12, 2, 1)) })
	if last, _ := s.LastIndex(); last != 11 {
		t.Fatalf("last index %d after the failed attempts, want 11", last)
	}
}

// TestDestroy: a removed replica's state goes at once, other ranges stay,
// and the range can be created again.
func TestDestroy(t *testing.T) {
	e := openEngine(t, vfs.NewMem(), testOptions())
	defer e.Close()
	s := bootstrapped(t, e, 5, 10, 10)
	other := openStore(t, e, 2)
	commit(t, e, func(b *Batch) { other.Append(b, ents(1, 3, 1, 1)) })
	commit(t, e, func(b *Batch) { s.Destroy(b) })
	if msg := panicOf(func() { _, _ = s.LastIndex() }); !strings.Contains(msg, "after Destroy") {
		t.Fatalf("a destroyed store answered (%q)", msg)
	}
	s.Close()
	if ids, _ := e.RangeIDs(); len(ids) != 1 || ids[0] != 2 {
		t.Fatalf("RangeIDs after destroying range 1 = %v", ids)
	}
	again := openStore(t, e, 1)
	if first, _ := again.FirstIndex(); first != 1 {
		t.Fatalf("a recreated range starts at %d", first)
	}
}

// TestRawNode drives a single-voter etcd RawNode on a LogStore, starting as
// Raft recommends (a snapshot carrying the ConfState), restarts it on the
// reopened store, and checks that it takes up where it left off.
func TestRawNode(t *testing.T) {
	fs := vfs.NewMem()
	e := openEngine(t, fs, testOptions())
	s := openStore(t, e, 1)
	commit(t, e, func(b *Batch) {
		boot := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1, ConfState: raftpb.ConfState{Voters: []uint64{1}}}}
		if err := s.ApplySnapshot(b, boot); err != nil {
			t.Fatal(err)
		}
	})

	applied := map[string]bool{}
	start := func(s *LogStore) *raft.RawNode {
		rn, err := raft.NewRawNode(&raft.Config{
			ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s, Applied: s.Applied(),
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 64, PreVote: true, CheckQuorum: true,
			Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return rn
	}
	// drain handles Readies the way the consensus layer must: snapshot,
	// entries and hard state persisted (synced) before anything is applied.
	drain := func(rn *raft.RawNode, e *Engine, s *LogStore) {
		for rn.HasReady() {
			rd := rn.Ready()
			b := e.NewBatch()
			if !raft.IsEmptySnap(rd.Snapshot) {
				if err := s.ApplySnapshot(b, rd.Snapshot); err != nil {
					t.Fatal(err)
				}
			}
			s.Append(b, rd.Entries)
			if !raft.IsEmptyHardState(rd.HardState) {
				s.SetHardState(b, rd.HardState)
			}
			for _, ent := range rd.CommittedEntries {
				if ent.Type == raftpb.EntryNormal && len(ent.Data) > 0 {
					b.Set(ent.Data, []byte("applied"))
					applied[string(ent.Data)] = true
				}
				s.SetApplied(b, ent.Index)
			}
			if err := b.Commit(true); err != nil {
				t.Fatal(err)
			}
			rn.Advance(rd)
		}
	}

	rn := start(s)
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	drain(rn, e, s)
	if rn.Status().RaftState != raft.StateLeader {
		t.Fatalf("single voter is %v after campaigning", rn.Status().RaftState)
	}
	for i := range 20 {
		if err := rn.Propose(fmt.Appendf(nil, "w%02d", i)); err != nil {
			t.Fatal(err)
		}
		drain(rn, e, s)
	}
	if len(applied) != 20 {
		t.Fatalf("%d proposals applied, want 20", len(applied))
	}
	// Snapshot and truncate, as the consensus layer will to bound the log.
	commit(t, e, func(b *Batch) {
		if _, err := s.CreateSnapshot(b, s.Applied(), s.ConfState()); err != nil {
			t.Fatal(err)
		}
		if err := s.Compact(b, s.Applied()-5); err != nil {
			t.Fatal(err)
		}
	})
	hs, _, _ := s.InitialState()
	appliedBefore := s.Applied()
	s.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openEngine(t, fs, testOptions())
	defer e.Close()
	s = openStore(t, e, 1)
	if got, _, _ := s.InitialState(); got != hs || s.Applied() != appliedBefore {
		t.Fatalf("after restart: hard state %+v, applied %d; want %+v, %d", got, s.Applied(), hs, appliedBefore)
	}
	rn = start(s)
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	drain(rn, e, s)
	if err := rn.Propose([]byte("after restart")); err != nil {
		t.Fatal(err)
	}
	drain(rn, e, s)
	if v, err := e.Get([]byte("after restart")); err != nil || string(v) != "applied" {
		t.Fatalf("proposal after restart: %q, %v", v, err)
	}
	if st := rn.Status(); st.Term <= hs.Term || st.Applied != s.Applied() {
		t.Fatalf("after restart: term %d (was %d), raft applied %d, store applied %d", st.Term, hs.Term, st.Applied, s.Applied())
	}
}

// noLimit is raft's own "no limit" for sizes (unexported in raft v3.6).
const noLimit = math.MaxUint64

// TestReplicated: a configuration is replicated when its voters, both
// halves of a joint one together, are more than one node.
func TestReplicated(t *testing.T) {
	e := openEngine(t, vfs.NewCrashableMem(), testOptions())
	s := bootstrapped(t, e, 1, 10, 6)
	for _, tc := range []struct {
		cs   raftpb.ConfState
		want bool
	}{
		{raftpb.ConfState{Voters: []uint64{1}, Learners: []uint64{2}}, false},
		{raftpb.ConfState{Voters: []uint64{1}, VotersOutgoing: []uint64{1}}, false},
		{raftpb.ConfState{Voters: []uint64{2}, VotersOutgoing: []uint64{1}}, true},
		{raftpb.ConfState{Voters: []uint64{1, 2, 3}}, true},
	} {
		commit(t, e, func(b *Batch) { s.SetConfState(b, tc.cs) })
		if got := s.Replicated(); got != tc.want {
			t.Errorf("Replicated() with %v = %v, want %v", tc.cs, got, tc.want)
		}
	}
}
