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
	"time"
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

// Clock is a node's hybrid logical clock. It is safe for use by all tasks
// of its node.
type Clock struct {
	wall      func() time.Time
	maxOffset time.Duration

	mu   sync.Mutex
	last Timestamp // the highest reading handed out or heard of
}

// DefaultMaxOffset is the maximum clock offset a cluster runs with
// unless told otherwise: CockroachDB's default (docs/txn.md).
const DefaultMaxOffset = 500 * time.Millisecond

// NewClock returns a clock over wall (the node's Runtime.Now) that
// refuses remote timestamps more than maxOffset ahead of it (0: no
// bound, for tests that need none).
func NewClock(wall func() time.Time, maxOffset time.Duration) *Clock {
	return &Clock{wall: wall, maxOffset: maxOffset}
}

// MaxOffset is the bound the clock enforces.
func (c *Clock) MaxOffset() time.Duration { return c.maxOffset }

// Now returns a reading above every earlier one and every timestamp
// Update accepted: the wall time when it is ahead of them, otherwise the
// last reading with its logical counter advanced (the wall clock stepped
// back, or has not moved).
func (c *Clock) Now() Timestamp {
	physical := c.wall().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if physical > c.last.WallNanos {
		c.last = Timestamp{WallNanos: physical}
	} else {
		c.last = c.last.Next()
	}
	return c.last
}

// Update takes in a timestamp from another node: later readings are
// above it. It refuses (ErrOffsetExceeded, nothing changed) a timestamp
// more than the maximum offset ahead of this node's wall clock.
func (c *Clock) Update(remote Timestamp) error {
	physical := c.wall().UnixNano()
	if c.maxOffset > 0 && remote.WallNanos-physical > int64(c.maxOffset) {
		return &OffsetError{Remote: remote, Local: Timestamp{WallNanos: physical}, MaxOffset: c.maxOffset}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last.Less(remote) {
		c.last = remote
	}
	return nil
}
