package hlc

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// fakeWall is a wall clock a test moves by hand, backwards too.
type fakeWall struct{ t time.Time }

func (w *fakeWall) now() time.Time { return w.t }

// TestClockProperties drives a clock through random wall-clock moves
// (steps back included), readings and remote timestamps within and
// beyond the bound, and checks the clock's promises after every step.
func TestClockProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const bound = 500 * time.Millisecond
		w := &fakeWall{t: time.Unix(1_800_000_000, 0)}
		c := NewClock(w.now, bound)
		var last Timestamp // the highest reading or accepted remote so far
		for i := range rapid.IntRange(1, 200).Draw(t, "steps") {
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0: // the wall clock moves, forwards or back
				w.t = w.t.Add(time.Duration(rapid.Int64Range(-int64(time.Second), int64(time.Second)).Draw(t, "move")))
			case 1:
				now := c.Now()
				if !last.Less(now) {
					t.Fatalf("step %d: Now %v not above %v", i, now, last)
				}
				if now.WallNanos < w.t.UnixNano() {
					t.Fatalf("step %d: Now %v behind the wall clock %v", i, now, w.t.UnixNano())
				}
				last = now
			case 2:
				ahead := time.Duration(rapid.Int64Range(-int64(2*bound), int64(2*bound)).Draw(t, "ahead"))
				remote := Timestamp{WallNanos: w.t.Add(ahead).UnixNano(), Logical: rapid.Int32Range(0, 5).Draw(t, "logical")}
				err := c.Update(remote)
				switch {
				case ahead > bound && !errors.Is(err, ErrOffsetExceeded):
					t.Fatalf("step %d: a remote %v ahead accepted (bound %v): %v", i, ahead, bound, err)
				case ahead <= bound && err != nil:
					t.Fatalf("step %d: a remote %v ahead refused: %v", i, ahead, err)
				case err == nil && last.Less(remote):
					last = remote
				}
			}
		}
		if now := c.Now(); !last.Less(now) {
			t.Fatalf("final Now %v not above %v", now, last)
		}
	})
}

// TestEncodingKeepsOrder: encoded timestamps sort as the timestamps do,
// and decode back.
func TestEncodingKeepsOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.Custom(func(t *rapid.T) Timestamp {
			return Timestamp{WallNanos: rapid.Int64().Draw(t, "wall"), Logical: rapid.Int32().Draw(t, "logical")}
		})
		a, b := gen.Draw(t, "a"), gen.Draw(t, "b")
		ea, eb := a.AppendEncoded(nil), b.AppendEncoded(nil)
		if got, want := bytes.Compare(ea, eb), a.Compare(b); got != want {
			t.Fatalf("%v vs %v: encodings compare %d, timestamps %d", a, b, got, want)
		}
		back, err := Decode(ea)
		if err != nil || back != a {
			t.Fatalf("decode %v: %v, %v", a, back, err)
		}
	})
	if _, err := Decode([]byte{1, 2}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a short encoding: %v, want ErrMalformed", err)
	}
}

func TestNextCarriesIntoTheWall(t *testing.T) {
	ts := Timestamp{WallNanos: 7, Logical: math.MaxInt32}
	if n := ts.Next(); n != (Timestamp{WallNanos: 8}) || !ts.Less(n) {
		t.Fatalf("Next of %v = %v", ts, n)
	}
}

// TestOffsetErrorSaysHowFar: the refusal names both readings and the
// bound, for the log line an operator reads.
func TestOffsetErrorSaysHowFar(t *testing.T) {
	w := &fakeWall{t: time.Unix(100, 0)}
	c := NewClock(w.now, time.Second)
	err := c.Update(Timestamp{WallNanos: time.Unix(103, 0).UnixNano()})
	var oe *OffsetError
	if !errors.As(err, &oe) || oe.MaxOffset != time.Second || oe.Remote.WallNanos-oe.Local.WallNanos != int64(3*time.Second) {
		t.Fatalf("err = %v", err)
	}
	if c.Now().WallNanos != time.Unix(100, 0).UnixNano() {
		t.Fatal("a refused remote timestamp moved the clock")
	}
}
