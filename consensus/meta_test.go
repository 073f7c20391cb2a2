package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// TestMetaUpdateRules: an update writes only over older entries, deletes
// every entry it overlaps, and never lets an older reading of a range
// replace a newer one.
func TestMetaUpdateRules(t *testing.T) {
	eng, err := storage.Open(vfs.NewMem(), "/m", storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	meta := Descriptor{ID: 9, Start: []byte{}}
	update := func(e MetaEntry) bool {
		b := eng.NewBatch()
		ok := applyMetaUpdate(b, meta, e.encode())
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	entries := func() []string {
		es, err := ReadMeta(eng)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%v#%d", e.Descriptor, e.Index))
		}
		return out
	}
	desc := func(id, gen uint64, start, end string, replicas ...uint64) Descriptor {
		d := Descriptor{ID: storageID(id), Generation: gen, Start: []byte(start)}
		if end != "" {
			d.End = []byte(end)
		}
		for _, r := range replicas {
			d.Replicas = append(d.Replicas, nodeID(r))
		}
		return d
	}
	whole := MetaEntry{Descriptor: desc(1, 0, "", "", 1, 2, 3), Index: 5}
	left := MetaEntry{Descriptor: desc(1, 1, "", "m", 1, 2, 3), Index: 9}
	right := MetaEntry{Descriptor: desc(2, 1, "m", "", 1, 2, 3), Index: 10}

	if !update(whole) {
		t.Fatal("the first entry was not written")
	}
	if update(MetaEntry{Descriptor: whole.Descriptor, Index: 4}) {
		t.Fatal("an older reading of the same range replaced a newer one")
	}
	// The right half of a split first: it replaces the whole range's entry
	// (the same key), leaving [,m) unknown until the left half comes.
	if !update(right) {
		t.Fatal("a split's right half did not replace the range it came from")
	}
	if got := entries(); !slices.Equal(got, []string{right.String() + "#10"}) {
		t.Fatalf("after the right half: %v", got)
	}
	if update(whole) {
		t.Fatal("the range before its split came back over its right half")
	}
	if !update(left) {
		t.Fatal("the split's left half was not written")
	}
	// A configuration change of the left half: the same generation, read
	// later.
	moved := MetaEntry{Descriptor: desc(1, 1, "", "m", 1, 2, 4), Index: 12}
	if !update(moved) || update(left) {
		t.Fatal("a configuration change did not replace the earlier reading, or the earlier came back")
	}
	// A merge of both: one entry, the others gone.
	merged := MetaEntry{Descriptor: desc(1, 2, "", "", 1, 2, 4), Index: 20}
	if !update(merged) {
		t.Fatal("the merged range was not written")
	}
	if got := entries(); !slices.Equal(got, []string{merged.String() + "#20"}) {
		t.Fatalf("after the merge: %v", got)
	}
	if update(right) || update(moved) {
		t.Fatal("a range the merge absorbed came back")
	}
}

func (e MetaEntry) String() string { return e.Descriptor.String() }

// TestMetaRangeFollowsSplitsAndMerges: in a three-node cluster the meta
// range comes to hold exactly the ranges there are, after splits and a
// merge, and LookupMeta finds each key's range; a split inside the meta
// span is refused.
func TestMetaRangeFollowsSplitsAndMerges(t *testing.T) {
	c := newTestCluster(t, Options{MetaInterval: 50 * time.Millisecond})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "meta-test")
	for _, k := range []string{"c", "k", "t", "x"} {
		if _, err := cl.Split(ctx, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Merge(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Split(ctx, append(slices.Clone(MetaStart), 'x')); !errors.Is(err, ErrSplitInsideMeta) || !errors.Is(err, ErrNotApplied) {
		t.Fatalf("a split inside the meta span: %v", err)
	}
	want, err := cl.Ranges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []MetaEntry
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err = cl.MetaRanges(ctx)
		if err == nil && sameRanges(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the meta range holds %v (%v); the ranges are %v", got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, k := range []string{"", "a", "c", "k", "m", "w", "x", "zz", string(MetaStart), "\xff\xff\xff"} {
		e, found, err := cl.LookupMeta(ctx, []byte(k))
		if err != nil || !found || !e.Contains([]byte(k)) {
			t.Fatalf("LookupMeta(%q) = %v, %t, %v", k, e.Descriptor, found, err)
		}
	}
}

// sameRanges reports whether the meta entries describe exactly ds.
func sameRanges(es []MetaEntry, ds []Descriptor) bool {
	if len(es) != len(ds) {
		return false
	}
	for i := range es {
		d := ds[i]
		if !(MetaEntry{Descriptor: d}).sameAs(es[i]) {
			return false
		}
	}
	return true
}

func TestClearOfMeta(t *testing.T) {
	inside := append(slices.Clone(MetaStart), 'q')
	whole := Descriptor{Start: []byte{}}
	if k := clearOfMeta(whole, inside); !bytes.Equal(k, MetaStart) {
		t.Fatalf("clearOfMeta in a range holding the span = %q, want MetaStart", k)
	}
	fromMeta := Descriptor{Start: MetaStart}
	if k := clearOfMeta(fromMeta, inside); !bytes.Equal(k, MetaEnd) {
		t.Fatalf("clearOfMeta in a range starting at MetaStart = %q, want MetaEnd", k)
	}
	if k := clearOfMeta(Descriptor{Start: MetaStart, End: MetaEnd}, inside); k != nil {
		t.Fatalf("clearOfMeta in the meta span's own range = %q, want nil", k)
	}
	if k := clearOfMeta(whole, []byte("k")); !bytes.Equal(k, []byte("k")) {
		t.Fatalf("clearOfMeta moved a key outside the span: %q", k)
	}
}

func storageID(id uint64) storage.RangeID { return storage.RangeID(id) }
func nodeID(n uint64) kernel.NodeID       { return kernel.NodeID(n) }
