package cluster

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/prod"
	"github.com/orbitkernel/orbit/storage"
)

// TestDirectoryMerge: entries merge newest-version-wins, every change is
// on disk at once, and set always makes a version above the entry's.
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
	d := newDirectory(rt, &opts)

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
	if err := d.update(3, func(e *NodeEntry) { e.Removed = false }); err != nil {
		t.Fatal(err)
	}
	if e, _ := d.entry(3); e.Removed || e.Version <= 9 {
		t.Fatalf("update made %+v, want active above version 9", e)
	}
	// What merge and set did is on disk.
	stored, found, err := LoadRecord(eng)
	if err != nil || !found {
		t.Fatalf("LoadRecord: %v %v", found, err)
	}
	if stored.Nodes[4].Addr != "a:4" || stored.Nodes[3].Removed || stored.ClusterID != 7 {
		t.Fatalf("stored record = %+v", stored)
	}
}

// TestGossipFreshness: only a message newer than the last of its
// incarnation, or the first of a new incarnation, is news of its sender;
// messages the network delivers again, and an earlier incarnation's, are
// not (a dead node's replayed gossip must not keep it alive).
func TestGossipFreshness(t *testing.T) {
	rt := prod.New(prod.Options{NodeID: 1})
	defer rt.Stop()
	opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d := newDirectory(rt, &opts)
	steps := []struct {
		st   gossipStamp
		want bool
	}{
		{gossipStamp{Boot: 7, Seq: 1}, true},
		{gossipStamp{Boot: 7, Seq: 1}, false}, // delivered again
		{gossipStamp{Boot: 7, Seq: 3}, true},
		{gossipStamp{Boot: 7, Seq: 2}, false}, // late
		{gossipStamp{Boot: 9, Seq: 1}, true},  // restarted
		{gossipStamp{Boot: 7, Seq: 4}, false}, // the earlier incarnation's, late
		{gossipStamp{Boot: 9, Seq: 2}, true},
		{gossipStamp{}, false}, // no stamp
	}
	for i, s := range steps {
		if got := d.fresh(2, s.st); got != s.want {
			t.Fatalf("step %d: fresh(%+v) = %v, want %v", i, s.st, got, s.want)
		}
	}
}
