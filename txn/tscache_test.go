package txn

import (
	"bytes"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/kernel/hlc"
)

// TestTimestampCacheMatchesItsModel: after any sequence of reads recorded
// over random spans by random transactions, the cache answers for any
// span exactly the highest of its low-water mark and the timestamps of the
// reads that overlap it (the reads at or below the mark are what eviction
// may forget), with the one transaction that read there at that
// timestamp (none when several did, or at the mark), and its spans stay
// sorted, disjoint, non-empty, above the mark and within the bound.
func TestTimestampCacheMatchesItsModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		genKey := rapid.Custom(func(t *rapid.T) []byte {
			return []byte(rapid.SampledFrom([]string{"", "a", "a\x00", "ab", "b", "ba", "c"}).Draw(t, "key"))
		})
		genSpan := func(t *rapid.T) (start, end []byte) {
			start = genKey.Draw(t, "start")
			switch rapid.IntRange(0, 3).Draw(t, "end") {
			case 0:
				return start, pointEnd(start)
			case 1:
				return start, nil
			}
			end = genKey.Draw(t, "endKey")
			if bytes.Compare(end, start) <= 0 {
				end = pointEnd(start)
			}
			return start, end
		}
		genTS := rapid.Custom(func(t *rapid.T) hlc.Timestamp {
			return hlc.Timestamp{WallNanos: rapid.Int64Range(0, 20).Draw(t, "wall")}
		})
		c := newTSCache(genTS.Draw(t, "low"), rapid.IntRange(1, 4).Draw(t, "max"))
		type read struct {
			start, end []byte
			ts         hlc.Timestamp
			txn        [16]byte
		}
		var reads []read
		for range rapid.IntRange(1, 40).Draw(t, "ops") {
			if rapid.Bool().Draw(t, "add") {
				start, end := genSpan(t)
				ts := genTS.Draw(t, "ts")
				var txn [16]byte
				txn[0] = byte(rapid.IntRange(0, 2).Draw(t, "txn"))
				c.add(start, end, ts, txn)
				reads = append(reads, read{start, end, ts, txn})
			} else {
				start, end := genSpan(t)
				want := c.low
				for _, r := range reads {
					if (tsSpan{start: r.start, end: r.end}).overlaps(start, end) && want.Less(r.ts) {
						want = r.ts
					}
				}
				readers := map[[16]byte]bool{}
				for _, r := range reads {
					if (tsSpan{start: r.start, end: r.end}).overlaps(start, end) && r.ts == want && c.low.Less(want) {
						readers[r.txn] = true
					}
				}
				var wantWho [16]byte
				for who := range readers {
					if len(readers) == 1 {
						wantWho = who
					}
				}
				if got, who := c.get(start, end); got != want || who != wantWho {
					t.Fatalf("get [%q, %q) = %v by %x, want %v by %x (low %v, spans %v)", start, end, got, who[0], want, wantWho[0], c.low, c.spans)
				}
			}
			if len(c.spans) > c.maxSpans {
				t.Fatalf("%d spans, bound %d", len(c.spans), c.maxSpans)
			}
			for i, s := range c.spans {
				if !c.low.Less(s.ts) || (s.end != nil && bytes.Compare(s.start, s.end) >= 0) {
					t.Fatalf("span %d %+v: empty, or not above the low-water mark %v", i, s, c.low)
				}
				if i > 0 && (c.spans[i-1].end == nil || bytes.Compare(c.spans[i-1].end, s.start) > 0) {
					t.Fatalf("spans %+v and %+v overlap or are out of order", c.spans[i-1], s)
				}
			}
		}
	})
}

// stoppedClock is a clock source that reads 100 s after the epoch.
type stoppedClock struct{}

func (stoppedClock) Now() time.Time           { return time.Unix(100, 0) }
func (stoppedClock) Monotonic() time.Duration { return 0 }

// TestTimestampCacheNewLeaseholder: a new leaseholder's cache answers its
// low-water mark (its clock's now plus the maximum offset) for every key.
func TestTimestampCacheNewLeaseholder(t *testing.T) {
	clock := hlc.NewClock(stoppedClock{}, 500*time.Millisecond)
	low := clock.Now().Add(clock.MaxOffset())
	c := newTSCache(low, 16)
	if got, _ := c.get([]byte("k"), pointEnd([]byte("k"))); got != low {
		t.Fatalf("get = %v, want the low-water mark %v", got, low)
	}
	c.add([]byte("k"), pointEnd([]byte("k")), low.Next(), [16]byte{})
	if got, _ := c.get([]byte("a"), nil); got != low.Next() {
		t.Fatalf("a span over k = %v, want %v", got, low.Next())
	}
	if got, _ := c.get([]byte("l"), nil); got != low {
		t.Fatalf("a span past k = %v, want %v", got, low)
	}
}
