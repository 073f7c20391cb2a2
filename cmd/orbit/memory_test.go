package main

import "testing"

// TestGCPercentFor: the collector runs at gcPercentMax while that pace
// keeps the heap within its budget (gcHeapBudget less what Pebble holds,
// at least gcHeapFloor), slows down toward Go's default as the live heap
// grows or Pebble's caches fill, and never goes below it (no collection
// storm for a live heap beyond the budget).
func TestGCPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, held uint64
		want       int
	}{
		{0, 0, 300},
		{10 * mb, 0, 300},
		{40 * mb, 0, 300},
		{64 * mb, 0, 150},
		{80 * mb, 0, 100},
		{100 * mb, 0, 100},
		{2000 * mb, 0, 100},
		// Ten thousand keys: a few MB of cache, two memtables.
		{20 * mb, 40 * mb, 300},
		{40 * mb, 40 * mb, 200},
		// Ten million keys: the cache full (docs/performance.md).
		{16 * mb, 135 * mb, 300},
		{32 * mb, 135 * mb, 100},
		{50 * mb, 135 * mb, 100},
		{32 * mb, 2000 * mb, 100},
	} {
		got := gcPercentFor(c.live, c.held)
		if got != c.want {
			t.Errorf("live heap %d MB, Pebble %d MB: GOGC %d, want %d", c.live/mb, c.held/mb, got, c.want)
		}
		if c.live > 0 && c.live*uint64(100+got)/100 > max(heapBudget(c.held), 2*c.live) {
			t.Errorf("live heap %d MB, Pebble %d MB: GOGC %d lets the heap grow past the budget", c.live/mb, c.held/mb, got)
		}
	}
	if heapBudget(0) != gcHeapBudget || heapBudget(1<<40) != gcHeapFloor {
		t.Errorf("budget %d with nothing held, %d with everything: want %d and %d", heapBudget(0), heapBudget(1<<40), gcHeapBudget, gcHeapFloor)
	}
}
