package storage

import (
	"math"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"pgregory.net/rapid"
)

// model is what a LogStore should answer: raft.MemoryStorage for the log,
// hard state and snapshot, plus the applied state MemoryStorage lacks.
type model struct {
	ms      *raft.MemoryStorage
	applied uint64
	conf    raftpb.ConfState
}

func newModel() *model { return &model{ms: raft.NewMemoryStorage()} }

// clone rebuilds an independent copy of m through MemoryStorage's API.
func (m *model) clone() *model {
	ms := raft.NewMemoryStorage()
	first, _ := m.ms.FirstIndex()
	last, _ := m.ms.LastIndex()
	truncTerm, _ := m.ms.Term(first - 1)
	snap, _ := m.ms.Snapshot()
	hs, _, _ := m.ms.InitialState()
	if first > 1 {
		if snap.Metadata.Index == first-1 {
			must(ms.ApplySnapshot(snap))
		} else {
			must(ms.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: first - 1, Term: truncTerm}}))
		}
	}
	if last >= first {
		es, err := m.ms.Entries(first, last+1, math.MaxUint64)
		must(err)
		must(ms.Append(es))
	}
	if snap.Metadata.Index > first-1 {
		cs := snap.Metadata.ConfState
		_, err := ms.CreateSnapshot(snap.Metadata.Index, &cs, nil)
		must(err)
	}
	must(ms.SetHardState(hs))
	return &model{ms: ms, applied: m.applied, conf: cloneConfState(m.conf)}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// shape is the part of a model that the generators need.
type shape struct {
	first, last uint64
	hard        raftpb.HardState
	snap        raftpb.SnapshotMetadata
	applied     uint64
}

func (m *model) shape() shape {
	first, _ := m.ms.FirstIndex()
	last, _ := m.ms.LastIndex()
	hs, _, _ := m.ms.InitialState()
	snap, _ := m.ms.Snapshot()
	return shape{first: first, last: last, hard: hs, snap: snap.Metadata, applied: m.applied}
}

// harness drives a LogStore and two models: staged follows every staged
// operation at once, so that the generators draw valid ones; durable is
// updated by the same operations only when their batch commits, and is
// what the store must answer. synced is durable as of the last synced
// commit: what a crash keeps.
type harness struct {
	fs       *vfs.MemFS
	opts     Options
	e        *Engine
	s        *LogStore
	b        *Batch
	onCommit []func(*model)

	staged, durable, synced *model
}

func newHarness(rt *rapid.T) *harness {
	opts := testOptions()
	opts.EntryCacheBytes = rapid.SampledFrom([]int64{-1, 120, 1 << 20}).Draw(rt, "entryCacheBytes")
	h := &harness{fs: vfs.NewCrashableMem(), opts: opts, staged: newModel(), durable: newModel(), synced: newModel()}
	h.open(rt)
	return h
}

func (h *harness) open(rt *rapid.T) {
	e, err := Open(h.fs, "/db", h.opts)
	if err != nil {
		rt.Fatalf("Open: %v", err)
	}
	h.e = e
	if h.s, err = OpenLogStore(e, 7); err != nil {
		rt.Fatalf("OpenLogStore: %v", err)
	}
}

func (h *harness) close() {
	if h.b != nil {
		h.b.Close()
		h.b = nil
	}
	h.s.Close()
	must(h.e.Close())
}

// batch returns the pending batch, starting one if needed.
func (h *harness) batch() *Batch {
	if h.b == nil {
		h.b = h.e.NewBatch()
	}
	return h.b
}

// do stages an operation: into the store via stage, into the staged model
// at once and into the durable model on commit via op. Half the time it
// commits right away.
func (h *harness) do(rt *rapid.T, stage func(b *Batch), op func(m *model)) {
	stage(h.batch())
	op(h.staged)
	h.onCommit = append(h.onCommit, op)
	if rapid.Bool().Draw(rt, "commitNow") {
		h.commit(rt)
	}
}

func (h *harness) commit(rt *rapid.T) {
	if h.b == nil {
		return
	}
	sync := rapid.IntRange(0, 3).Draw(rt, "sync") > 0
	if err := h.b.Commit(sync); err != nil {
		rt.Fatalf("Commit: %v", err)
	}
	h.b = nil
	for _, op := range h.onCommit {
		op(h.durable)
	}
	h.onCommit = nil
	if sync {
		h.synced = h.durable.clone()
	}
}

func (h *harness) abandon() {
	if h.b == nil {
		return
	}
	h.b.Close()
	h.b, h.onCommit = nil, nil
	h.staged = h.durable.clone()
}

func (h *harness) append(rt *rapid.T) {
	sh := h.staged.shape()
	at := rapid.Uint64Range(max(sh.hard.Commit, sh.applied)+1, sh.last+1).Draw(rt, "at")
	prev, err := h.staged.ms.Term(at - 1)
	must(err)
	n := rapid.IntRange(1, 4).Draw(rt, "n")
	term := max(prev, 1)
	var es []raftpb.Entry
	for i := range n {
		term += rapid.Uint64Range(0, 1).Draw(rt, "termStep")
		data := rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(rt, "data")
		es = append(es, raftpb.Entry{Index: at + uint64(i), Term: term, Data: data})
	}
	h.do(rt, func(b *Batch) { h.s.Append(b, es) }, func(m *model) { must(m.ms.Append(es)) })
}

func (h *harness) setHardState(rt *rapid.T) {
	sh := h.staged.shape()
	hs := raftpb.HardState{Term: sh.hard.Term + rapid.Uint64Range(0, 2).Draw(rt, "termStep")}
	if hs.Term == sh.hard.Term && sh.hard.Vote != 0 {
		hs.Vote = sh.hard.Vote
	} else {
		hs.Vote = rapid.Uint64Range(0, 3).Draw(rt, "vote")
	}
	hs.Commit = rapid.Uint64Range(sh.hard.Commit, sh.last).Draw(rt, "commit")
	h.do(rt, func(b *Batch) { h.s.SetHardState(b, hs) }, func(m *model) { must(m.ms.SetHardState(hs)) })
}

func (h *harness) setApplied(rt *rapid.T) {
	sh := h.staged.shape()
	i := rapid.Uint64Range(sh.applied, max(sh.hard.Commit, sh.snap.Index)).Draw(rt, "applied")
	h.do(rt, func(b *Batch) { h.s.SetApplied(b, i) }, func(m *model) { m.applied = i })
}

func drawConf(rt *rapid.T) raftpb.ConfState {
	voters := rapid.SliceOfNDistinct(rapid.Uint64Range(1, 5), 1, 3, func(v uint64) uint64 { return v }).Draw(rt, "voters")
	return raftpb.ConfState{Voters: voters}
}

func (h *harness) setConfState(rt *rapid.T) {
	cs := drawConf(rt)
	h.do(rt, func(b *Batch) { h.s.SetConfState(b, cs) }, func(m *model) { m.conf = cloneConfState(cs) })
}

func (h *harness) createSnapshot(rt *rapid.T) {
	sh := h.staged.shape()
	var i uint64
	if sh.applied > sh.snap.Index && rapid.IntRange(0, 4).Draw(rt, "stale") > 0 {
		i = rapid.Uint64Range(sh.snap.Index+1, sh.applied).Draw(rt, "index")
	} else {
		i = rapid.Uint64Range(0, sh.snap.Index).Draw(rt, "staleIndex")
	}
	cs := drawConf(rt)
	want, wantErr := h.staged.clone().ms.CreateSnapshot(i, &cs, nil)
	var got raftpb.Snapshot
	var gotErr error
	h.do(rt, func(b *Batch) { got, gotErr = h.s.CreateSnapshot(b, i, cs) }, func(m *model) {
		if wantErr == nil {
			_, err := m.ms.CreateSnapshot(i, &cs, nil)
			must(err)
		}
	})
	if !sameError(gotErr, wantErr) || !sameMeta(got.Metadata, want.Metadata) {
		rt.Fatalf("CreateSnapshot(%d) = %+v, %v; want %+v, %v", i, got.Metadata, gotErr, want.Metadata, wantErr)
	}
}

func (h *harness) compact(rt *rapid.T) {
	sh := h.staged.shape()
	var i uint64
	if sh.snap.Index >= sh.first && rapid.IntRange(0, 4).Draw(rt, "stale") > 0 {
		i = rapid.Uint64Range(sh.first, sh.snap.Index).Draw(rt, "index")
	} else {
		i = rapid.Uint64Range(0, sh.first-1).Draw(rt, "staleIndex")
	}
	wantErr := h.staged.clone().ms.Compact(i)
	var gotErr error
	h.do(rt, func(b *Batch) { gotErr = h.s.Compact(b, i) }, func(m *model) {
		if wantErr == nil {
			must(m.ms.Compact(i))
		}
	})
	if !sameError(gotErr, wantErr) {
		rt.Fatalf("Compact(%d) = %v, want %v", i, gotErr, wantErr)
	}
}

func (h *harness) applySnapshot(rt *rapid.T) {
	sh := h.staged.shape()
	var meta raftpb.SnapshotMetadata
	if sh.snap.Index == 0 || rapid.IntRange(0, 4).Draw(rt, "stale") > 0 {
		lo := max(sh.hard.Commit, sh.applied, sh.snap.Index) + 1
		meta.Index = rapid.Uint64Range(lo, sh.last+5).Draw(rt, "index")
	} else {
		meta.Index = rapid.Uint64Range(1, sh.snap.Index).Draw(rt, "staleIndex")
	}
	meta.Term = rapid.Uint64Range(max(sh.hard.Term, 1), sh.hard.Term+3).Draw(rt, "term")
	meta.ConfState = drawConf(rt)
	snap := raftpb.Snapshot{Metadata: meta}
	wantErr := h.staged.clone().ms.ApplySnapshot(snap)
	var gotErr error
	h.do(rt, func(b *Batch) { gotErr = h.s.ApplySnapshot(b, snap) }, func(m *model) {
		if wantErr == nil {
			must(m.ms.ApplySnapshot(snap))
			m.applied, m.conf = meta.Index, cloneConfState(meta.ConfState)
		}
	})
	if !sameError(gotErr, wantErr) {
		rt.Fatalf("ApplySnapshot(%d) = %v, want %v", meta.Index, gotErr, wantErr)
	}
}

// reopen closes everything cleanly, dropping an uncommitted batch, and
// opens again: everything committed must be back.
func (h *harness) reopen(rt *rapid.T) {
	h.abandon()
	h.close()
	h.synced = h.durable.clone() // Close made everything durable
	h.open(rt)
}

// crash keeps only what was synced, as a power cut would.
func (h *harness) crash(rt *rapid.T) {
	h.abandon()
	crashed := h.fs.CrashClone(vfs.CrashCloneCfg{})
	h.close()
	h.fs = crashed
	h.durable, h.staged = h.synced.clone(), h.synced.clone()
	h.open(rt)
}

// check compares every raft.Storage answer of the store with the durable
// model.
func (h *harness) check(rt *rapid.T) {
	m, s := h.durable, h.s
	wantHS, _, _ := m.ms.InitialState()
	gotHS, gotCS, _ := s.InitialState()
	if gotHS != wantHS {
		rt.Fatalf("hard state %+v, want %+v", gotHS, wantHS)
	}
	if !sameConf(gotCS, m.conf) || !sameConf(s.ConfState(), m.conf) {
		rt.Fatalf("conf state %+v, want %+v", gotCS, m.conf)
	}
	if s.Applied() != m.applied {
		rt.Fatalf("applied %d, want %d", s.Applied(), m.applied)
	}
	wantFirst, _ := m.ms.FirstIndex()
	wantLast, _ := m.ms.LastIndex()
	if got, _ := s.FirstIndex(); got != wantFirst {
		rt.Fatalf("first index %d, want %d", got, wantFirst)
	}
	if got, _ := s.LastIndex(); got != wantLast {
		rt.Fatalf("last index %d, want %d", got, wantLast)
	}
	wantSnap, _ := m.ms.Snapshot()
	if gotSnap, _ := s.Snapshot(); !sameMeta(gotSnap.Metadata, wantSnap.Metadata) {
		rt.Fatalf("snapshot %+v, want %+v", gotSnap.Metadata, wantSnap.Metadata)
	}
	for i := wantFirst - min(wantFirst, 2); i <= wantLast+1; i++ {
		got, gotErr := s.Term(i)
		want, wantErr := m.ms.Term(i)
		if got != want || !sameError(gotErr, wantErr) {
			rt.Fatalf("Term(%d) = %d, %v; want %d, %v", i, got, gotErr, want, wantErr)
		}
	}
	for range 3 {
		lo := rapid.Uint64Range(wantFirst-1, wantLast+1).Draw(rt, "lo")
		hi := rapid.Uint64Range(lo, wantLast+1).Draw(rt, "hi")
		maxSize := rapid.SampledFrom([]uint64{0, 1, 30, 60, 100, 250, math.MaxUint64}).Draw(rt, "maxSize")
		got, gotErr := s.Entries(lo, hi, maxSize)
		want, wantErr := m.ms.Entries(lo, hi, maxSize)
		if d := diffEntries(got, want); d != "" || !sameError(gotErr, wantErr) {
			rt.Fatalf("Entries(%d, %d, %d): %s; error %v, want %v", lo, hi, maxSize, d, gotErr, wantErr)
		}
	}
	// The staged view must agree with the staged model too.
	if sh := h.staged.shape(); s.staged.last != sh.last || s.staged.truncIndex+1 != sh.first || s.staged.applied != sh.applied {
		rt.Fatalf("staged (first %d, last %d, applied %d), want (%d, %d, %d)",
			s.staged.truncIndex+1, s.staged.last, s.staged.applied, sh.first, sh.last, sh.applied)
	}
	if v := s.durable.violation(); v != "" {
		rt.Fatalf("durable state broken: %s", v)
	}
	if c := &s.cache; c.bytes > max(c.maxBytes, 0) {
		rt.Fatalf("entry cache holds %d bytes over its budget of %d", c.bytes, c.maxBytes)
	}
	if _, last, ok := s.cache.span(); ok && last != wantLast {
		rt.Fatalf("entry cache ends at %d, the log at %d", last, wantLast)
	}
}

func sameConf(a, b raftpb.ConfState) bool {
	return slices.Equal(a.Voters, b.Voters) && slices.Equal(a.Learners, b.Learners) &&
		slices.Equal(a.VotersOutgoing, b.VotersOutgoing) && slices.Equal(a.LearnersNext, b.LearnersNext) &&
		a.AutoLeave == b.AutoLeave
}

func sameMeta(a, b raftpb.SnapshotMetadata) bool {
	return a.Index == b.Index && a.Term == b.Term && sameConf(a.ConfState, b.ConfState)
}

// TestLogStoreModel runs random sequences of staged writes, commits (synced
// or not), abandoned batches, clean reopens and crashes against
// raft.MemoryStorage, comparing every raft.Storage answer after each step.
func TestLogStoreModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarness(rt)
		defer func() { h.close() }()
		rt.Repeat(map[string]func(*rapid.T){
			"append":         h.append,
			"append2":        h.append, // the common case, drawn twice as often
			"setHardState":   h.setHardState,
			"setApplied":     h.setApplied,
			"setConfState":   h.setConfState,
			"createSnapshot": h.createSnapshot,
			"compact":        h.compact,
			"applySnapshot":  h.applySnapshot,
			"commit":         h.commit,
			"abandon":        func(*rapid.T) { h.abandon() },
			"reopen":         h.reopen,
			"crash":          h.crash,
			"":               h.check,
		})
	})
}
