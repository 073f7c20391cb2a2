package txn

import (
	"fmt"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// movingClock is a clock source whose wall and monotonic clocks move
// when the test says.
type movingClock struct{ at time.Duration }

func (c *movingClock) Now() time.Time           { return time.Unix(100, 0).Add(c.at) }
func (c *movingClock) Monotonic() time.Duration { return c.at }

// boundsOnly is a range that says only its ID and bounds (what the
// timestamp cache's bookkeeping reads).
type boundsOnly struct {
	consensus.RangeData
	id         storage.RangeID
	start, end string
}

func (b boundsOnly) Range() storage.RangeID { return b.id }
func (b boundsOnly) Bounds() ([]byte, []byte) {
	var end []byte
	if b.end != "" {
		end = []byte(b.end)
	}
	return []byte(b.start), end
}

// TestCacheAcrossSplitsAndMerges: within a term a split keeps the left
// range's timestamp cache and hands the right-hand range a copy, taken
// only if the node leads the right-hand range in its first term; a merge
// starts the cache afresh.
func TestCacheAcrossSplitsAndMerges(t *testing.T) {
	src := &movingClock{}
	m := NewMachine(hlc.NewClock(src, 500*time.Millisecond), Options{})
	key := func(k string) ([]byte, []byte) { return []byte(k), pointEnd([]byte(k)) }
	m.mu.Lock()
	defer m.mu.Unlock()

	whole := m.cache(boundsOnly{id: 1, start: "a", end: "z"}, consensus.CommandMeta{Term: 3, Generation: 1})
	firstLow := whole.low
	read := firstLow.Add(time.Second)
	for _, k := range []string{"c", "q"} {
		s, e := key(k)
		whole.add(s, e, read, [16]byte{})
	}
	src.at = 10 * time.Second // a fresh cache would start far above firstLow

	// The split [a, z) → [a, m) + [m, z), applied while this node led.
	note := consensus.SplitNote{Left: 1, Right: 2, LeftTerm: 3, LeftGeneration: 1, FirstTerm: 6}
	m.mu.Unlock()
	m.NoteSplit(note)
	m.NoteSplit(consensus.SplitNote{Left: 1, Right: 3, LeftTerm: 3, LeftGeneration: 1, FirstTerm: 6})
	m.NoteSplit(consensus.SplitNote{Left: 1, Right: 4, LeftTerm: 2, LeftGeneration: 1, FirstTerm: 6}) // not the cache's term
	m.mu.Lock()
	if left := m.cache(boundsOnly{id: 1, start: "a", end: "m"}, consensus.CommandMeta{Term: 3, Generation: 2}); left != whole {
		t.Fatal("the left-hand range's cache was not kept across its split in the same term")
	}
	right := m.cache(boundsOnly{id: 2, start: "m", end: "z"}, consensus.CommandMeta{Term: 6, Generation: 2})
	if s, e := key("q"); right == whole || func() bool { got, _ := right.get(s, e); return got != read }() {
		t.Fatalf("the right-hand range led in its first term has no copy of the left's cache (a read of q at %v)", read)
	}
	if s, e := key("r"); func() bool { got, _ := right.get(s, e); return got != firstLow }() {
		t.Fatal("the right-hand range's copy lost the left's low-water mark")
	}
	// Led first in a later term, another node may have led it before.
	if late := m.cache(boundsOnly{id: 3, start: "m", end: "z"}, consensus.CommandMeta{Term: 7, Generation: 2}); late.low == firstLow {
		t.Fatal("a right-hand range first led in a later term took the left's cache")
	}
	if other := m.cache(boundsOnly{id: 4, start: "m", end: "z"}, consensus.CommandMeta{Term: 6, Generation: 2}); other.low == firstLow {
		t.Fatal("a right-hand range took a cache from a term of the left other than the split's")
	}
	// The left absorbs [m, z) again in the same term: its reads were noted
	// by the right-hand range's leader, so the cache starts afresh.
	if merged := m.cache(boundsOnly{id: 1, start: "a", end: "z"}, consensus.CommandMeta{Term: 3, Generation: 3}); merged == whole || merged.low == firstLow {
		t.Fatal("a merge kept the left-hand range's cache")
	}
}

// TestCacheAcrossHandOvers: a leader handing its range over summarizes
// its cache by the highest read it noted in its term; the next leader
// starts its cache there, in that term and span only, when that is below
// its own start (its clock plus the maximum offset).
func TestCacheAcrossHandOvers(t *testing.T) {
	src := &movingClock{}
	old := NewMachine(hlc.NewClock(src, 500*time.Millisecond), Options{})
	d := consensus.Descriptor{ID: 1, Start: []byte("a"), End: []byte("z"), Generation: 1}
	if sum := old.HandOver(d, 3); sum != nil {
		t.Fatal("a summary from a leader that served nothing in its term")
	}
	old.mu.Lock()
	c := old.cache(boundsOnly{id: 1, start: "a", end: "z"}, consensus.CommandMeta{Term: 3, Generation: 1})
	read := c.low.Add(time.Second)
	c.add([]byte("q"), pointEnd([]byte("q")), read, [16]byte{})
	old.mu.Unlock()
	if sum := old.HandOver(d, 4); sum != nil {
		t.Fatal("a summary of another term's cache")
	}
	if sum := old.HandOver(consensus.Descriptor{ID: 1, Start: []byte("a"), Generation: 2}, 3); sum != nil {
		t.Fatal("a summary of a cache that does not cover the range (merged since)")
	}
	sum := old.HandOver(d, 3)
	if got, err := hlc.Decode(sum); err != nil || got != read {
		t.Fatalf("summary %v (%v), want the highest read %v", got, err, read)
	}

	src.at = 10 * time.Second // the new leader's own start is far above the read
	next := NewMachine(hlc.NewClock(src, 500*time.Millisecond), Options{})
	next.TakeOver(consensus.TakeOverNote{Range: 1, Term: 5, Start: d.Start, End: d.End, Summary: sum})
	next.TakeOver(consensus.TakeOverNote{Range: 2, Term: 5, Start: []byte("m"), End: []byte("z"), Summary: sum})
	next.TakeOver(consensus.TakeOverNote{Range: 3, Term: 5, Start: []byte("a"), End: []byte("m"), Summary: sum})
	next.mu.Lock()
	defer next.mu.Unlock()
	if got := next.cache(boundsOnly{id: 1, start: "a", end: "z"}, consensus.CommandMeta{Term: 5, Generation: 1}).low; got != read {
		t.Fatalf("the new leader's cache starts at %v, want the summary %v", got, read)
	}
	if got := next.cache(boundsOnly{id: 2, start: "m", end: "z"}, consensus.CommandMeta{Term: 6, Generation: 1}).low; got == read {
		t.Fatal("a summary taken in a later term than the one it was for")
	}
	if got := next.cache(boundsOnly{id: 3, start: "a", end: "z"}, consensus.CommandMeta{Term: 5, Generation: 2}).low; got == read {
		t.Fatal("a summary taken for a wider span than it covers (a merge)")
	}
}

// TestCacheAcrossMerges: a merge's left-hand leader keeps its cache and
// extends it over the absorbed span at the right-hand range's summary,
// only for its own term and the left-hand range as it was.
func TestCacheAcrossMerges(t *testing.T) {
	src := &movingClock{}
	m := NewMachine(hlc.NewClock(src, 500*time.Millisecond), Options{})
	m.mu.Lock()
	left := m.cache(boundsOnly{id: 1, start: "a", end: "m"}, consensus.CommandMeta{Term: 3, Generation: 1})
	leftRead := left.low.Add(time.Second)
	left.add([]byte("c"), pointEnd([]byte("c")), leftRead, [16]byte{})
	m.mu.Unlock()
	rightRead := leftRead.Add(time.Second)
	src.at = 10 * time.Second
	merged := consensus.Descriptor{ID: 1, Start: []byte("a"), End: []byte("z"), Generation: 2}
	note := consensus.AbsorbNote{Range: 1, Term: 3, LeftGeneration: 1, Merged: merged, RightStart: []byte("m"), RightEnd: []byte("z"), Summary: rightRead.AppendEncoded(nil)}
	m.Absorb(consensus.AbsorbNote{Range: 1, Term: 4, LeftGeneration: 1, Merged: merged, RightStart: []byte("m"), RightEnd: []byte("z"), Summary: note.Summary})
	m.mu.Lock()
	if got := m.caches[1]; got.generation != 1 {
		t.Fatal("a merge applied in another term than the cache's extended it")
	}
	m.mu.Unlock()
	m.Absorb(note)
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cache(boundsOnly{id: 1, start: "a", end: "z"}, consensus.CommandMeta{Term: 3, Generation: 2})
	if c != left {
		t.Fatal("the merged range started its cache afresh")
	}
	for k, want := range map[string]hlc.Timestamp{"c": leftRead, "q": rightRead, "b": left.low} {
		if got, _ := c.get([]byte(k), pointEnd([]byte(k))); got != want {
			t.Fatalf("read of %s at %v after the merge, want %v", k, got, want)
		}
	}
}

// TestNoReadAboveTheClock: a leaseholder neither notes nor serves a read
// above its own clock (a refresh to a commit timestamp that a cache's
// low-water mark pushed into the future); it answers "future read", and
// the reader waits for the clock. A read it served there would lie above
// where a successor whose clock is behind starts its cache (its clock
// plus the maximum offset, when the leadership is lost rather than handed
// over), and that successor would place a write beneath it: the planted
// future-reads-served, which the simulator's sweep does not reach
// (docs/txn.md; sim/mutation_test.go, outsideTheSweep).
func TestNoReadAboveTheClock(t *testing.T) {
	if msg := futureReadSurvives(); msg != "" {
		t.Fatal(msg)
	}
}

// futureReadSurvives sends a leaseholder a read 400 ms above its clock
// and returns what went wrong ("": nothing).
func futureReadSurvives() string {
	const offset = 500 * time.Millisecond
	src := &movingClock{}
	old := NewMachine(hlc.NewClock(src, offset), Options{})
	data, meta := boundsOnly{id: 1, start: "a", end: "z"}, consensus.CommandMeta{Term: 3, Generation: 1}
	old.mu.Lock()
	old.cache(data, meta) // the leaseholder's term began a second ago
	old.mu.Unlock()
	src.at = time.Second
	now := old.clock.Now()
	read := now.Add(400 * time.Millisecond)
	c := &command{op: opGet, key: []byte("q"), now: now, read: read, uncertainty: read}
	old.NoteQuery(data, c.encode(), meta)
	old.mu.Lock()
	noted, _ := old.cache(data, meta).get([]byte("q"), pointEnd([]byte("q")))
	old.mu.Unlock()
	// The next leader, 200 ms behind, took over from a lost one (no
	// summary): its cache starts at its clock plus the maximum offset.
	next := NewMachine(hlc.NewClock(&movingClock{at: src.at - 200*time.Millisecond}, offset), Options{})
	next.mu.Lock()
	low := next.cache(data, consensus.CommandMeta{Term: 4, Generation: 1}).low
	next.mu.Unlock()
	if low.Less(noted) {
		return fmt.Sprintf("a read at %v, above the leaseholder's clock %v, was noted at %v: a successor 200 ms behind starts its cache at %v and places writes beneath it", read, now, noted, low)
	}
	out, err := old.Query(data, c.encode(), meta)
	if err != nil {
		return fmt.Sprintf("the read failed: %v", err)
	}
	if res, err := decodeResult(out); err != nil || res.code != codeFutureRead {
		return fmt.Sprintf("a read at %v, above the leaseholder's clock %v, was answered %+v, %v; want a future read", read, now, res, err)
	}
	return ""
}
