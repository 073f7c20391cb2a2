package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/sim"
	"github.com/orbitkernel/orbit/storage"
)

// TestRangeCacheLearnsSplits: a cluster's ranges split at random keys; the
// router hears random descriptors from the history, old and new, in any
// order. Its cache must always cover every key exactly once, never believe
// a descriptor older than one it already knew for a key, and, once it has
// heard the current ones, route every key to the range that holds it.
func TestRangeCacheLearnsSplits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		layout, err := NewLayout([][]byte{[]byte("m")}, []kernel.NodeID{1, 2, 3}, 3)
		if err != nil {
			t.Fatal(err)
		}
		s := sim.New(1)
		defer s.Close()
		var router *Router
		s.AddNode(1, func(rt kernel.Runtime) { router = NewRouter(rt, layout) })
		if err := s.RunFor(0); err != nil {
			t.Fatal(err)
		}
		current := slices.Clone(layout.Ranges())
		history := slices.Clone(current)
		nextID := storage.RangeID(3)
		for range rapid.IntRange(0, 12).Draw(t, "splits") {
			key := rapid.SliceOfN(rapid.ByteRange('a', 'z'), 1, 3).Draw(t, "key")
			i := slices.IndexFunc(current, func(d Descriptor) bool { return d.Contains(key) })
			d := current[i]
			if bytes.Equal(d.Start, key) {
				continue
			}
			left := Descriptor{ID: d.ID, Generation: d.Generation + 1, Start: d.Start, End: key, Replicas: d.Replicas}
			right := Descriptor{ID: nextID, Generation: d.Generation + 1, Start: key, End: d.End, Replicas: d.Replicas}
			nextID++
			current = slices.Insert(slices.Delete(current, i, i+1), i, left, right)
			history = append(history, left, right)
		}
		// What the router heard last for each key, to check it never goes
		// back to an older generation.
		heard := func(key []byte) Descriptor { return router.Lookup(key) }
		probe := [][]byte{{}, []byte("a"), []byte("f"), []byte("m"), []byte("mm"), []byte("t"), []byte("zz")}
		check := func() {
			rs := router.Ranges()
			if len(rs[0].Start) != 0 || rs[len(rs)-1].End != nil {
				t.Fatalf("the cache does not cover the keyspace: %v", rs)
			}
			for i := 1; i < len(rs); i++ {
				if !bytes.Equal(rs[i-1].End, rs[i].Start) {
					t.Fatalf("the cache has a gap or an overlap: %v", rs)
				}
			}
		}
		for range rapid.IntRange(0, 30).Draw(t, "hints") {
			before := map[string]uint64{}
			for _, k := range probe {
				before[string(k)] = heard(k).Generation
			}
			router.LearnRanges([]Descriptor{rapid.SampledFrom(history).Draw(t, "hint")})
			check()
			for _, k := range probe {
				if g := heard(k).Generation; g < before[string(k)] {
					t.Fatalf("key %q went back from generation %d to %d", k, before[string(k)], g)
				}
			}
		}
		router.LearnRanges(current)
		check()
		for _, k := range append(probe, []byte("b"), []byte("q")) {
			want := current[slices.IndexFunc(current, func(d Descriptor) bool { return d.Contains(k) })]
			if got := router.Lookup(k); got.ID != want.ID || got.Generation != want.Generation {
				t.Fatalf("key %q: the cache says %v, the cluster %v", k, got, want)
			}
		}
	})
}

// TestRangeMismatchCrossesTheNetwork: the refusal's descriptors survive the
// wire, and a mangled detail still reads as a refusal.
func TestRangeMismatchCrossesTheNetwork(t *testing.T) {
	rm := RangeMismatchError{Key: []byte("k"), Ranges: []Descriptor{
		{ID: 1, Generation: 2, Start: []byte{}, End: []byte("k"), Replicas: []kernel.NodeID{1, 2, 3}},
		{ID: 7, Generation: 2, Start: []byte("k"), Replicas: []kernel.NodeID{3}},
	}}
	remote := &kernel.RemoteError{Code: rm.RemoteCode(), Detail: rm.RemoteDetail(), Msg: "whatever"}
	got, ok := AsRangeMismatch(fmt.Errorf("call: %w", remote))
	if !ok || fmt.Sprint(got) != fmt.Sprint(rm) {
		t.Fatalf("AsRangeMismatch = %v, %t, want %v", got, ok, rm)
	}
	if got.Ranges[1].End != nil || got.Ranges[0].End == nil {
		t.Fatal("an open end and an empty end must stay apart")
	}
	if got, ok := AsRangeMismatch(&kernel.RemoteError{Code: codeMismatch, Detail: []byte{0x05}}); !ok || len(got.Ranges) != 0 {
		t.Fatalf("a mangled detail: %v, %t", got, ok)
	}
	if _, ok := AsRangeMismatch(errors.New(rm.Error())); ok {
		t.Fatal("read a refusal from an error's text")
	}
	if _, err := decodeDescriptor(rm.Ranges[0].appendTo(nil)[:5]); err == nil {
		t.Fatal("a truncated descriptor decoded")
	}
}
