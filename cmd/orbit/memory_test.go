package main

import "testing"

// TestGCPercentFor: the collector runs at gcPercentMax while that pace
// keeps the heap within gcHeapBudget, slows down toward Go's default as
// the live heap grows, and never goes below it (no collection storm for a
// live heap beyond the budget).
func TestGCPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 300},
		{10 * mb, 300},
		{40 * mb, 300},
		{64 * mb, 150},
		{80 * mb, 100},
		{100 * mb, 100},
		{2000 * mb, 100},
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("live heap %d MB: GOGC %d, want %d", c.live/mb, got, c.want)
		}
		if got := gcPercentFor(c.live); c.live > 0 && c.live*uint64(100+got)/100 > max(gcHeapBudget, 2*c.live) {
			t.Errorf("live heap %d MB: GOGC %d lets the heap grow past the budget", c.live/mb, got)
		}
	}
}
