package txn

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

	"github.com/orbitkernel/orbit/kernel/hlc"
)

// tsCache is a range's timestamp cache at its leaseholder (docs/txn.md,
// step 3): for every span of keys, the highest timestamp at which it was
// read, so that a later write below that timestamp is pushed above it
// and cannot change what the read saw. Nothing uses it yet: the MVCC
// requests that will come next (docs/txn.md, step 2's consensus half).
//
// It keeps disjoint spans, sorted, each with the highest read timestamp
// over it, and a low-water mark that stands for every span it does not
// keep: a new leaseholder's starts at its clock's now plus the maximum
// offset (the previous leaseholder served reads at most at its own now);
// past maxSpans, the spans with the lowest timestamps are dropped and the
// low-water mark rises to theirs. So the cache may answer higher than the
// truth (a write pushed for nothing), never lower.
type tsCache struct {
	low      hlc.Timestamp
	spans    []tsSpan // disjoint, sorted by start
	maxSpans int
}

// tsSpan is [start, end) read at ts by txn (zero: outside a transaction,
// or by more than one at ts); end nil: to the end of the keyspace.
type tsSpan struct {
	start, end []byte
	ts         hlc.Timestamp
	txn        [16]byte
}

// newTSCache returns an empty cache whose low-water mark is low, keeping
// at most maxSpans spans.
func newTSCache(low hlc.Timestamp, maxSpans int) *tsCache {
	if maxSpans < 1 {
		panic(fmt.Sprintf("consensus: a timestamp cache of %d spans", maxSpans))
	}
	return &tsCache{low: low, maxSpans: maxSpans}
}

// max is the highest timestamp c holds: at or above every read it knows
// of.
func (c *tsCache) max() hlc.Timestamp {
	high := c.low
	for _, s := range c.spans {
		if high.Less(s.ts) {
			high = s.ts
		}
	}
	return high
}

// clone returns a copy of c that changes apart from it.
func (c *tsCache) clone() *tsCache {
	return &tsCache{low: c.low, spans: slices.Clone(c.spans), maxSpans: c.maxSpans}
}

// pointEnd is the end of the span that holds key alone.
func pointEnd(key []byte) []byte { return append(slices.Clone(key), 0) }

// endLess reports whether a is below b as span ends (nil: the end of the
// keyspace, above every key).
func endLess(a, b []byte) bool {
	switch {
	case a == nil:
		return false
	case b == nil:
		return true
	}
	return bytes.Compare(a, b) < 0
}

// overlaps reports whether [start, end) meets s.
func (s tsSpan) overlaps(start, end []byte) bool {
	return endLess(start, s.end) && (end == nil || bytes.Compare(s.start, end) < 0)
}

// get returns the highest timestamp at which any key of [start, end) may
// have been read, and the transaction that read it there (zero: none, or
// several, or unknown).
func (c *tsCache) get(start, end []byte) (hlc.Timestamp, [16]byte) {
	ts, who := c.low, [16]byte{}
	for _, s := range c.spans[c.firstEndingAfter(start):] {
		if !s.overlaps(start, end) {
			break // sorted and disjoint: no later span overlaps either
		}
		switch {
		case s.ts.Less(ts):
		case ts.Less(s.ts):
			ts, who = s.ts, s.txn
		case who != s.txn:
			who = [16]byte{}
		}
	}
	return ts, who
}

// firstEndingAfter is the index of the first span that ends after key:
// the spans are disjoint and sorted, so their ends are sorted too.
func (c *tsCache) firstEndingAfter(key []byte) int {
	return sort.Search(len(c.spans), func(i int) bool { return endLess(key, c.spans[i].end) })
}

// floor is the lowest timestamp at or above ts at which transaction own
// (zero: a write outside a transaction) may write key: above every read
// of it, but for a read by own at exactly ts (a transaction's writes may
// share its reads' timestamp).
func (c *tsCache) floor(key []byte, ts hlc.Timestamp, own [16]byte) hlc.Timestamp {
	read, who := c.get(key, pointEnd(key))
	switch {
	case read.Less(ts):
		return ts
	case read == ts && own != [16]byte{} && who == own:
		return ts
	}
	return read.Next()
}

// add records a read of [start, end) at ts by txn (zero: none). Only the
// spans it overlaps, and their neighbours (to merge with), are rebuilt:
// a read costs O(log n) plus its own spans, not a pass over the cache.
func (c *tsCache) add(start, end []byte, ts hlc.Timestamp, txn [16]byte) {
	if !c.low.Less(ts) {
		return // the low-water mark says as much already
	}
	i := c.firstEndingAfter(start)
	j := i
	for j < len(c.spans) && c.spans[j].overlaps(start, end) {
		j++
	}
	// Cut the new span into the pieces the overlapped spans leave it, and
	// raise the overlapped spans it covers; then sort and merge
	// neighbours with equal timestamps and readers.
	var mid []tsSpan
	pieces := []tsSpan{{start: start, end: end, ts: ts, txn: txn}}
	for _, s := range c.spans[i:j] {
		// The part of s outside [start, end) keeps its timestamp; the
		// part inside takes the higher of the two (at a tie between two
		// readers, it names neither).
		if bytes.Compare(s.start, start) < 0 {
			mid = append(mid, tsSpan{start: s.start, end: start, ts: s.ts, txn: s.txn})
		}
		if end != nil && endLess(end, s.end) {
			mid = append(mid, tsSpan{start: end, end: s.end, ts: s.ts, txn: s.txn})
		}
		in := tsSpan{start: maxKey(s.start, start), end: minEnd(s.end, end), ts: s.ts, txn: s.txn}
		if ts == s.ts && txn != s.txn {
			in.txn = [16]byte{}
		}
		if ts.Less(s.ts) || (ts == s.ts && in.txn != txn) {
			// s is above the new read there, or ties with another
			// reader: it (renamed) wins over the piece.
			mid = append(mid, in)
			pieces = cut(pieces, in.start, in.end)
		}
	}
	mid = append(mid, pieces...)
	slices.SortFunc(mid, func(a, b tsSpan) int { return bytes.Compare(a.start, b.start) })
	lo, hi := max(i-1, 0), min(j+1, len(c.spans))
	window := append(append(slices.Clone(c.spans[lo:i]), mid...), c.spans[j:hi]...)
	c.spans = slices.Replace(c.spans, lo, hi, mergeEqual(window)...)
	c.evict()
}

// evict drops the lowest spans past maxSpans, raising the low-water mark
// to the highest timestamp dropped. It drops an eighth more than it must,
// so that a full cache sorts its spans once per maxSpans/8 reads, not at
// every read.
func (c *tsCache) evict() {
	if len(c.spans) <= c.maxSpans {
		return
	}
	keep := c.maxSpans - c.maxSpans/8
	order := slices.Clone(c.spans)
	slices.SortStableFunc(order, func(a, b tsSpan) int { return a.ts.Compare(b.ts) })
	cutoff := order[len(order)-keep-1].ts
	if c.low.Less(cutoff) {
		c.low = cutoff
	}
	c.spans = slices.DeleteFunc(c.spans, func(s tsSpan) bool { return !c.low.Less(s.ts) })
}

// cut removes [start, end) from every piece.
func cut(pieces []tsSpan, start, end []byte) []tsSpan {
	var out []tsSpan
	for _, p := range pieces {
		if !p.overlaps(start, end) {
			out = append(out, p)
			continue
		}
		if bytes.Compare(p.start, start) < 0 {
			out = append(out, tsSpan{start: p.start, end: start, ts: p.ts, txn: p.txn})
		}
		if end != nil && endLess(end, p.end) {
			out = append(out, tsSpan{start: end, end: p.end, ts: p.ts, txn: p.txn})
		}
	}
	return out
}

// mergeEqual joins neighbouring spans that touch and share a timestamp
// and a reader, and drops empty ones.
func mergeEqual(spans []tsSpan) []tsSpan {
	var out []tsSpan
	for _, s := range spans {
		if s.end != nil && bytes.Compare(s.start, s.end) >= 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].ts == s.ts && out[n-1].txn == s.txn && out[n-1].end != nil && bytes.Equal(out[n-1].end, s.start) {
			out[n-1].end = s.end
			continue
		}
		out = append(out, s)
	}
	return out
}

func maxKey(a, b []byte) []byte {
	if bytes.Compare(a, b) < 0 {
		return b
	}
	return a
}

func minEnd(a, b []byte) []byte {
	if endLess(a, b) {
		return a
	}
	return b
}
