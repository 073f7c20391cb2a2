package cluster

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/prod"
	"github.com/orbitkernel/orbit/storage"
)

// TestDirectoryMerge: entries merge newest-version-wins (ties settled
// alike everywhere), every change is on disk at once, and updateOwn makes
// a version above the entry's.
func TestDirectoryMerge(t *testing.T) {
	eng, err := storage.Open(vfs.NewMem(), "d", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rec := Record{ClusterID: 7, Ranges: 3, Replicas: 3, Initial: []kernel.NodeID{1, 2, 3},
		Nodes: map[kernel.NodeID]NodeEntry{1: {Addr: "a:1", Version: 1}, 2: {Addr: "a:2", Version: 1}, 3: {Addr: "a:3", Version: 1}}}
	opts := Options{Engine: eng, Record: rec, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rt := prod.New(prod.Options{NodeID: 1})
	defer rt.Stop()
	d := newDirectory(rt, &opts, 1)

	// An older entry is ignored, a newer one taken.
	if changed, err := d.merge(map[kernel.NodeID]NodeEntry{2: {Addr: "old:2", Version: 0}}); err != nil || changed {
		t.Fatalf("an older entry changed the directory: %v %v", changed, err)
	}
	if changed, err := d.merge(map[kernel.NodeID]NodeEntry{4: {Addr: "a:4", Version: 5}, 3: {Addr: "a:3", Removed: true, Version: 9}}); err != nil || !changed {
		t.Fatalf("newer entries were not taken: %v %v", changed, err)
	}
	if got := d.active(); !slices.Equal(got, []kernel.NodeID{1, 2, 4}) {
		t.Fatalf("active = %v", got)
	}
	// A removal is undone only by a newer change: a stale "active" gossip
	// from the removed node itself is ignored.
	d.merge(map[kernel.NodeID]NodeEntry{3: {Addr: "a:3", Version: 8}})
	if e, _ := d.entry(3); !e.Removed {
		t.Fatal("a stale entry undid a removal")
	}
	if err := d.updateOwn(func(e *NodeEntry) { e.Addr = "b:1" }); err != nil {
		t.Fatal(err)
	}
	if e, _ := d.entry(1); e.Addr != "b:1" || e.Version != 2 {
		t.Fatalf("updateOwn made %+v, want b:1 at version 2", e)
	}
	// Two entries of one version (changed on two nodes apart): every node
	// keeps the same one, whichever order they come in.
	x, y := NodeEntry{Addr: "x:4", Version: 6}, NodeEntry{Addr: "y:4", Version: 6}
	if newer(x, y) == newer(y, x) {
		t.Fatal("newer does not order two entries of one version")
	}
	d.merge(map[kernel.NodeID]NodeEntry{4: x})
	d.merge(map[kernel.NodeID]NodeEntry{4: y})
	if e, _ := d.entry(4); e.Addr != "y:4" {
		t.Fatalf("of two entries at version 6, kept %+v, want y:4's", e)
	}
	// What merge and set did is on disk.
	stored, found, err := LoadRecord(eng)
	if err != nil || !found {
		t.Fatalf("LoadRecord: %v %v", found, err)
	}
	if stored.Nodes[4].Addr != "y:4" || !stored.Nodes[3].Removed || stored.Nodes[1].Addr != "b:1" || stored.ClusterID != 7 {
		t.Fatalf("stored record = %+v", stored)
	}
}

// TestGossipFreshness: only a message newer than the last of its
// incarnation, or one of a later incarnation, is news of its sender;
// messages the network delivers again, and an earlier incarnation's, are
// not (a dead node's replayed gossip must not keep it alive, and a late
// message of an incarnation never seen here must not pass for a new one:
// the simulator's cluster seed 369). An earlier incarnation is news again
// only after DeadAfter without any.
func TestGossipFreshness(t *testing.T) {
	rt := prod.New(prod.Options{NodeID: 1})
	defer rt.Stop()
	opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DeadAfter: 50 * time.Millisecond}
	d := newDirectory(rt, &opts, 1)
	type step struct {
		st   gossipStamp
		want bool
	}
	steps := []step{
		{gossipStamp{Boot: 7, Seq: 1}, true},
		{gossipStamp{Boot: 7, Seq: 1}, false}, // delivered again
		{gossipStamp{Boot: 7, Seq: 3}, true},
		{gossipStamp{Boot: 7, Seq: 2}, false}, // late
		{gossipStamp{Boot: 9, Seq: 1}, true},  // restarted
		{gossipStamp{Boot: 7, Seq: 4}, false}, // the earlier incarnation's, late
		{gossipStamp{Boot: 8, Seq: 1}, false}, // an earlier incarnation never seen here, late
		{gossipStamp{Boot: 9, Seq: 2}, true},  // the current one still counts
		{gossipStamp{}, false},                // no stamp
	}
	check := func(steps []step) {
		t.Helper()
		for i, s := range steps {
			d.mu.Lock()
			got := d.fresh(2, s.st)
			if got {
				d.heard[2] = rt.Monotonic()
			}
			d.mu.Unlock()
			if got != s.want {
				t.Fatalf("step %d: fresh(%+v) = %v, want %v", i, s.st, got, s.want)
			}
		}
	}
	check(steps)
	// Silent for DeadAfter: a lower incarnation (a data directory rebuilt
	// on a clock that stepped back) is heard again.
	time.Sleep(60 * time.Millisecond)
	check([]step{{gossipStamp{Boot: 5, Seq: 1}, true}, {gossipStamp{Boot: 5, Seq: 2}, true}, {gossipStamp{Boot: 4, Seq: 9}, false}})
}

// TestIncarnationsCountUp: every start of a node takes an incarnation
// above the last one saved, whatever its clock says.
func TestIncarnationsCountUp(t *testing.T) {
	eng, err := storage.Open(vfs.NewMem(), "d", storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rt := prod.New(prod.Options{NodeID: 1})
	defer rt.Stop()
	first, err := nextIncarnation(rt, eng)
	if err != nil || first < uint64(time.Now().UnixMilli())-60_000 {
		t.Fatalf("first incarnation %d, %v: want the wall clock in ms", first, err)
	}
	// Recorded far ahead of the clock (a clock that stepped back since).
	b := eng.NewBatch()
	b.SetIncarnation(first + 1_000_000)
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	for want := first + 1_000_001; want < first+1_000_003; want++ {
		next, err := nextIncarnation(rt, eng)
		if err != nil || next != want {
			t.Fatalf("next incarnation %d, %v; want %d", next, err, want)
		}
	}
}

// TestDirectoryChangesGoThroughTheMetaRange: a change made through the
// meta range (a join's) reaches a directory that never heard the gossip,
// at its next syncMeta; what a directory has newer (its own address) goes
// to the meta range; and a change starts from the meta range's entry when
// it is newer than the node's own copy, so no change is lost.
func TestDirectoryChangesGoThroughTheMetaRange(t *testing.T) {
	eng, err := storage.Open(vfs.NewMem(), "d", storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rt := prod.New(prod.Options{NodeID: 1})
	defer rt.Stop()
	layout, err := consensus.NewLayout(nil, []kernel.NodeID{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	router := consensus.NewRouter(rt, layout)
	st, err := consensus.Open(rt, eng, layout, consensus.Options{Router: router, MetaInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := consensus.NewClient(router, "test")

	rec := Record{ClusterID: 7, Replicas: 1, Initial: []kernel.NodeID{1}, Nodes: map[kernel.NodeID]NodeEntry{1: {Addr: "a:1", Version: 1}}}
	quiet := slog.New(slog.DiscardHandler)
	// Two directories over one engine's record would fight over it: the
	// second keeps its record in memory only (another engine).
	other, err := storage.Open(vfs.NewMem(), "o", storage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	a := newDirectory(rt, &Options{Engine: eng, Record: rec, Logger: quiet}, 1)
	b := newDirectory(rt, &Options{Engine: other, Record: rec, Logger: quiet}, 1)

	if err := a.changeEntry(ctx, cl, 5, func(e *NodeEntry) { e.Addr = "a:5" }); err != nil {
		t.Fatal(err)
	}
	if err := b.updateOwn(func(e *NodeEntry) { e.Addr = "b:1" }); err != nil {
		t.Fatal(err)
	}
	if err := b.syncMeta(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if e, ok := b.entry(5); !ok || e.Addr != "a:5" {
		t.Fatalf("after syncMeta, b has node 5 as %+v (%t); a's join said a:5", e, ok)
	}
	stored, _, err := readNodes(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if stored[1].Addr != "b:1" || stored[5].Addr != "a:5" {
		t.Fatalf("the meta range holds %+v", stored)
	}
	// b changes node 5 too, its own copy older than a's change: it starts
	// from the meta range's entry, so neither change is lost.
	if err := a.changeEntry(ctx, cl, 5, func(e *NodeEntry) { e.Leaving = true }); err != nil {
		t.Fatal(err)
	}
	if err := b.changeEntry(ctx, cl, 5, func(e *NodeEntry) { e.Removed = true }); err != nil {
		t.Fatal(err)
	}
	if e, _ := b.entry(5); !e.Leaving || !e.Removed || e.Addr != "a:5" {
		t.Fatalf("b's change on top of a's made %+v; want both", e)
	}
}
