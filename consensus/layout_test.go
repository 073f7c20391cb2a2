package consensus

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/kernel"
)

func TestLayoutCoversEveryKeyOnce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		splits := rapid.SliceOfDistinct(rapid.SliceOfN(rapid.Byte(), 1, 3), func(b []byte) string { return string(b) }).Draw(t, "splits")
		nodes := []kernel.NodeID{1, 2, 3, 4, 5}[:rapid.IntRange(1, 5).Draw(t, "nodes")]
		l, err := NewLayout(splits, nodes, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Ranges()) != len(splits)+1 {
			t.Fatalf("%d splits made %d ranges", len(splits), len(l.Ranges()))
		}
		key := rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "key")
		owners := 0
		for _, d := range l.Ranges() {
			if d.Contains(key) {
				owners++
				if got := l.Lookup(key); got.ID != d.ID {
					t.Fatalf("Lookup(%q) = r%d, but r%d contains it", key, got.ID, d.ID)
				}
			}
			if want := min(3, len(nodes)); len(d.Replicas) != want {
				t.Fatalf("%v has %d replicas, want %d", d, len(d.Replicas), want)
			}
		}
		if owners != 1 {
			t.Fatalf("key %q belongs to %d ranges", key, owners)
		}
	})
}
