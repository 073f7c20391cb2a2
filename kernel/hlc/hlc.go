// Package hlc is a hybrid logical clock (Kulkarni et al., "Logical
// Physical Clocks", 2014; CockroachDB's pkg/util/hlc): timestamps that
// follow the node's wall clock, never go backwards, and order every event
// a node has heard of after the events that caused it, across nodes whose
// clocks disagree by at most a known bound. The transaction layer's MVCC
// timestamps and uncertainty intervals are made of them (docs/txn.md).
//
// A Clock reads the node's wall clock through the function it is given
// (Runtime.Now, whose steps and drift the simulator controls), so it is
// deterministic under the simulator.
package hlc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Timestamp is a hybrid logical clock reading: the wall time in
// nanoseconds since the Unix epoch and a logical counter that orders
// events within one wall reading. The zero Timestamp is below every
// reading.
type Timestamp struct {
	WallNanos int64
	Logical   int32
}

// Compare returns -1, 0 or +1 as t is below, equal to or above u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.WallNanos < u.WallNanos:
		return -1
	case t.WallNanos > u.WallNanos:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// Less reports whether t is below u.
func (t Timestamp) Less(u Timestamp) bool { return t.Compare(u) < 0 }

// IsZero reports whether t is the zero Timestamp.
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// Next is the smallest timestamp above t.
func (t Timestamp) Next() Timestamp {
	if t.Logical == math.MaxInt32 {
		return Timestamp{WallNanos: t.WallNanos + 1}
	}
	return Timestamp{WallNanos: t.WallNanos, Logical: t.Logical + 1}
}

// Add is t moved by d on the wall, logical part kept.
func (t Timestamp) Add(d time.Duration) Timestamp {
	return Timestamp{WallNanos: t.WallNanos + int64(d), Logical: t.Logical}
}

func (t Timestamp) String() string {
	return fmt.Sprintf("%d.%09d,%d", t.WallNanos/1e9, t.WallNanos%1e9, t.Logical)
}

// EncodedLen is the length of an encoded Timestamp.
const EncodedLen = 12

// AppendEncoded appends t in 12 bytes whose byte order is the timestamps'
// order (big-endian, the wall time's sign bit flipped), for keys.
func (t Timestamp) AppendEncoded(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.WallNanos)^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Logical)^(1<<31))
}

// ErrMalformed is a timestamp encoding of the wrong length.
var ErrMalformed = errors.New("hlc: malformed timestamp")

// Decode reads a Timestamp that AppendEncoded wrote.
func Decode(b []byte) (Timestamp, error) {
	if len(b) != EncodedLen {
		return Timestamp{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	return Timestamp{
		WallNanos: int64(binary.BigEndian.Uint64(b) ^ (1 << 63)),
		Logical:   int32(binary.BigEndian.Uint32(b[8:]) ^ (1 << 31)),
	}, nil
}

// ErrOffsetExceeded refuses a remote timestamp further ahead of this
// node's wall clock than the maximum offset: one of the two clocks is out
// of bounds, and the guarantees built on the bound (uncertainty
// intervals) would not hold. It comes wrapped in an *OffsetError.
var ErrOffsetExceeded = errors.New("hlc: remote clock ahead by more than the maximum offset")

// OffsetError says by how much a remote timestamp was ahead.
type OffsetError struct {
	Remote, Local Timestamp
	MaxOffset     time.Duration
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("%v: remote %v, local %v (%v ahead; bound %v)", ErrOffsetExceeded, e.Remote, e.Local,
		time.Duration(e.Remote.WallNanos-e.Local.WallNanos), e.MaxOffset)
}

func (e *OffsetError) Unwrap() error { return ErrOffsetExceeded }

// Source is what a Clock reads: the node's wall clock and its monotonic
// clock (a kernel.Runtime is one).
type Source interface {
	Now() time.Time
	Monotonic() time.Duration
}

// Clock is a node's hybrid logical clock. It is safe for use by all tasks
// of its node.
//
// Its physical part follows the wall clock, but not across a step: when
// the wall clock moves against the monotonic clock (which NTP slews but
// never steps, and which runs at the wall clock's rate) by more than half
// the maximum offset, the clock goes on from its last reading at the
// monotonic clock's pace instead, and follows the wall again once the
// wall comes back within that margin of it. A node whose clock an
// operator, a broken NTP server or a test's fault steps by a minute thus
// keeps handing out timestamps its peers accept, and never a timestamp a
// minute ahead that would outlive the step: an HLC never goes back, so a
// followed step ahead would leave the node's readings ahead (and refused
// by every peer as beyond the offset) until real time caught up, and
// values written at them would be invisible to readers elsewhere for that
// long. CockroachDB panics on a forward jump of the same size (its
// forward jump check); going on at the monotonic pace keeps the node
// serving. A step that was a correction (the clock was wrong before) is
// taken when the node's clock-offset check finds its peers' clocks near
// the wall clock and far from this clock (TakeWall); meanwhile Steps
// reports it, and the node's log says so (the step hook).
type Clock struct {
	src       Source
	maxOffset time.Duration
	// maxStep is the largest move of the wall clock against the
	// monotonic one that the clock follows (half the maximum offset; 0:
	// every move).
	maxStep time.Duration

	mu   sync.Mutex
	last Timestamp // the highest reading handed out or heard of
	// The physical part's reference: the last wall reading the clock
	// followed and the monotonic reading at the same moment.
	anchorWall int64
	anchorMono time.Duration
	// stepped is the wall clock's current distance from the physical
	// part while a step is not followed (0 while following); ignored
	// counts the steps not followed.
	stepped time.Duration
	ignored uint64
	// steppedAt is the monotonic reading at which the wall clock was
	// last seen to step while not followed.
	steppedAt time.Duration
	onStep    func(step time.Duration, followed bool)
	// fenced, while set, says why this node's clock must not be trusted
	// (Fence). Atomic: the transaction layer asks on every request.
	fenced atomic.Pointer[error]
}

// DefaultMaxOffset is the maximum clock offset a cluster runs with
// unless told otherwise: CockroachDB's default (docs/txn.md).
const DefaultMaxOffset = 500 * time.Millisecond

// NewClock returns a clock over src (the node's Runtime) that refuses
// remote timestamps more than maxOffset ahead of it and follows no step
// of the wall clock larger than maxOffset/2 (0: no bound and every step
// followed, for tests that need neither).
//
// The wall clock as it reads now is the clock's first reference: a step
// after this is measured from it.
func NewClock(src Source, maxOffset time.Duration) *Clock {
	c := &Clock{src: src, maxOffset: maxOffset, maxStep: maxOffset / 2}
	c.anchorWall, c.anchorMono = src.Now().UnixNano(), src.Monotonic()
	return c
}

// OnStep sets a function the clock calls (outside its lock) when it
// stops following the wall clock because it stepped (followed false;
// step is the wall clock's distance from the clock's physical part) and
// when it follows the wall again (followed true). The node logs them.
// Call it before the clock is used.
func (c *Clock) OnStep(fn func(step time.Duration, followed bool)) { c.onStep = fn }

// MaxOffset is the bound the clock enforces.
func (c *Clock) MaxOffset() time.Duration { return c.maxOffset }

// Steps reports how many wall-clock steps the clock has not followed,
// and by how much the wall clock is off its physical part now (0 while
// it follows the wall).
func (c *Clock) Steps() (ignored uint64, off time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ignored, c.stepped
}

// Stepped reports by how much the wall clock is off the physical part
// while a step of it is not followed (0 while it is followed), and the
// monotonic reading at which it was last seen to step: a measurement
// against other nodes' wall clocks that predates it says nothing of the
// wall clock as it is now.
func (c *Clock) Stepped() (off, at time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stepped, c.steppedAt
}

// ErrFenced is the refusal of a node whose clock is fenced: its offset
// from its peers is beyond what the cluster tolerates, or not yet
// measured (Fence). It comes wrapped with the reason.
var ErrFenced = errors.New("hlc: this node's clock is fenced")

// Fence marks the clock as not to be trusted, for the reason err (nil
// lifts the fence). The node's clock-offset check (consensus) fences it
// while its offset from most of its peers is beyond what the cluster
// tolerates, and until it has been measured at all; the transaction
// layer hands out and takes in no timestamp while it is fenced, and Now
// does not advance with the physical part.
func (c *Clock) Fence(err error) {
	if err == nil {
		c.fenced.Store(nil)
		return
	}
	if !errors.Is(err, ErrFenced) {
		err = fmt.Errorf("%w: %w", ErrFenced, err)
	}
	c.fenced.Store(&err)
}

// Fenced is the reason the clock is fenced (wrapping ErrFenced), or nil.
func (c *Clock) Fenced() error {
	if p := c.fenced.Load(); p != nil {
		return *p
	}
	return nil
}

// TakeWall makes the physical part follow the wall clock again at once,
// taking a step it did not follow: what the clock-offset check does when
// this node's clock is far from its peers' and its wall clock is not (the
// step was a correction). Readings still never go back: after a step
// back, Now counts logical ticks on the last reading until the wall
// passes it.
func (c *Clock) TakeWall() {
	c.mu.Lock()
	c.anchorWall, c.anchorMono = c.src.Now().UnixNano(), c.src.Monotonic()
	report := noReport
	if c.stepped != 0 {
		c.stepped = 0
		report = c.report(0, true)
	}
	c.mu.Unlock()
	report()
}

// Physical is the clock's physical part now: the wall clock, or while a
// step of it is not followed, where the wall clock would be without it.
// What must wait for the clock to pass a timestamp (a commit wait) waits
// on this.
func (c *Clock) Physical() time.Time {
	c.mu.Lock()
	p, report := c.physicalLocked()
	c.mu.Unlock()
	report()
	return time.Unix(0, p)
}

// physicalLocked reads the physical part (c.mu held) and returns what to
// tell the step hook once the lock is released.
func (c *Clock) physicalLocked() (int64, func()) {
	wall, mono := c.src.Now().UnixNano(), c.src.Monotonic()
	if c.maxStep <= 0 || mutation.On(MutFollowsSteps) {
		c.anchorWall, c.anchorMono = wall, mono
		return wall, noReport
	}
	expected := c.anchorWall + int64(mono-c.anchorMono)
	off := time.Duration(wall - expected)
	if off.Abs() <= c.maxStep {
		c.anchorWall, c.anchorMono = wall, mono
		if c.stepped == 0 {
			return wall, noReport
		}
		c.stepped = 0
		return wall, c.report(off, true)
	}
	was := c.stepped
	c.stepped = off
	if was != 0 {
		if (off - was).Abs() > c.maxStep {
			c.steppedAt = mono // stepped again
		}
		return expected, noReport
	}
	c.steppedAt = mono
	c.ignored++
	return expected, c.report(off, false)
}

func noReport() {}

func (c *Clock) report(off time.Duration, followed bool) func() {
	if c.onStep == nil {
		return noReport
	}
	fn := c.onStep
	return func() { fn(off, followed) }
}

// Now returns a reading above every earlier one and every timestamp
// Update accepted: the physical part when it is ahead of them, otherwise
// the last reading with its logical counter advanced (the wall clock
// stepped back, or has not moved).
//
// While the clock is fenced (Fence) its physical part is not trusted, and
// Now only counts logical ticks on the last reading: what a fenced node
// reads is never a timestamp its peers would take for a wrong clock's,
// and the clock does not stay ahead once the fence is lifted.
func (c *Clock) Now() Timestamp {
	c.mu.Lock()
	physical, report := c.physicalLocked()
	if physical > c.last.WallNanos && c.fenced.Load() == nil {
		c.last = Timestamp{WallNanos: physical}
	} else {
		c.last = c.last.Next()
	}
	now := c.last
	c.mu.Unlock()
	report()
	return now
}

// Update takes in a timestamp from another node: later readings are
// above it. It refuses (ErrOffsetExceeded, nothing changed) a timestamp
// more than the maximum offset ahead of this node's physical part.
func (c *Clock) Update(remote Timestamp) error {
	c.mu.Lock()
	physical, report := c.physicalLocked()
	var err error
	if c.maxOffset > 0 && remote.WallNanos-physical > int64(c.maxOffset) {
		err = &OffsetError{Remote: remote, Local: Timestamp{WallNanos: physical}, MaxOffset: c.maxOffset}
	} else if c.last.Less(remote) {
		c.last = remote
	}
	c.mu.Unlock()
	report()
	return err
}
