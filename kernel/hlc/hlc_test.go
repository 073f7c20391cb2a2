package hlc

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// fakeWall is a wall clock a test moves by hand, and steps backwards
// and forwards against its monotonic clock.
type fakeWall struct {
	t    time.Time
	mono time.Duration
}

func (w *fakeWall) Now() time.Time           { return w.t }
func (w *fakeWall) Monotonic() time.Duration { return w.mono }

// pass moves both clocks by d, as time passing does.
func (w *fakeWall) pass(d time.Duration) { w.t, w.mono = w.t.Add(d), w.mono+d }

// TestClockProperties drives a clock through time passing, random
// wall-clock steps (back and forth, within and beyond half the bound),
// readings and remote timestamps within and beyond the bound, and checks
// the clock's promises after every step.
func TestClockProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const bound = 500 * time.Millisecond
		w := &fakeWall{t: time.Unix(1_800_000_000, 0), mono: time.Hour}
		c := NewClock(w, bound)
		var last Timestamp // the highest reading or accepted remote so far
		// The physical part and the monotonic clock at the last reading.
		prevPhys, prevMono := c.Physical().UnixNano(), w.mono
		// physical reads the physical part and checks that it moved with
		// the monotonic clock since the last reading, give or take half
		// the bound, and followed the wall when the wall was that close.
		physical := func(i int) time.Time {
			expected := prevPhys + int64(w.mono-prevMono)
			phys := c.Physical()
			if d := time.Duration(phys.UnixNano() - expected); d.Abs() > bound/2 {
				t.Fatalf("step %d: the physical part jumped by %v", i, d)
			}
			if wall := w.t.UnixNano(); time.Duration(wall-expected).Abs() <= bound/2 && phys.UnixNano() != wall {
				t.Fatalf("step %d: the wall %v is within half the bound, the physical part %v does not follow it", i, wall, phys)
			}
			prevPhys, prevMono = phys.UnixNano(), w.mono
			return phys
		}
		for i := range rapid.IntRange(1, 200).Draw(t, "steps") {
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0: // the wall clock steps, forwards or back
				w.t = w.t.Add(time.Duration(rapid.Int64Range(-int64(2*time.Second), int64(2*time.Second)).Draw(t, "step")))
			case 1: // time passes
				w.pass(time.Duration(rapid.Int64Range(0, int64(time.Second)).Draw(t, "pass")))
			case 2:
				phys := physical(i).UnixNano()
				now := c.Now()
				if !last.Less(now) {
					t.Fatalf("step %d: Now %v not above %v", i, now, last)
				}
				if now.WallNanos < phys {
					t.Fatalf("step %d: Now %v behind the physical part %v", i, now, phys)
				}
				last = now
			case 3:
				ahead := time.Duration(rapid.Int64Range(-int64(2*bound), int64(2*bound)).Draw(t, "ahead"))
				phys := physical(i)
				remote := Timestamp{WallNanos: phys.Add(ahead).UnixNano(), Logical: rapid.Int32Range(0, 5).Draw(t, "logical")}
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
	c := NewClock(w, time.Second)
	err := c.Update(Timestamp{WallNanos: time.Unix(103, 0).UnixNano()})
	var oe *OffsetError
	if !errors.As(err, &oe) || oe.MaxOffset != time.Second || oe.Remote.WallNanos-oe.Local.WallNanos != int64(3*time.Second) {
		t.Fatalf("err = %v", err)
	}
	if c.Now().WallNanos != time.Unix(100, 0).UnixNano() {
		t.Fatal("a refused remote timestamp moved the clock")
	}
}

// TestStepsAreNotFollowed: a step of the wall clock beyond half the bound
// (the Jepsen clock nemesis's minute) leaves the clock's readings where
// time alone takes them, is reported to the hook once, and the clock
// follows the wall again when the step is undone.
func TestStepsAreNotFollowed(t *testing.T) {
	w := &fakeWall{t: time.Unix(100, 0), mono: time.Hour}
	c := NewClock(w, 500*time.Millisecond)
	var events []string
	c.OnStep(func(step time.Duration, followed bool) { events = append(events, fmt.Sprint(step, followed)) })
	start := c.Now()
	w.t = w.t.Add(time.Minute)
	w.pass(time.Second)
	if got := c.Now(); got.WallNanos != start.WallNanos+int64(time.Second) {
		t.Fatalf("after a minute's step and a second: %v, want %v + 1s", got, start)
	}
	w.pass(time.Second)
	if ignored, off := c.Steps(); ignored != 1 || off != time.Minute {
		t.Fatalf("Steps = %d, %v", ignored, off)
	}
	if err := c.Update(Timestamp{WallNanos: w.t.UnixNano()}); !errors.Is(err, ErrOffsetExceeded) {
		t.Fatalf("a peer at the stepped wall time was taken in: %v", err)
	}
	w.t = w.t.Add(-time.Minute + 100*time.Millisecond) // undone, give or take a small step
	if got, want := c.Now().WallNanos, w.t.UnixNano(); got != want {
		t.Fatalf("after the step was undone: %d, want the wall %d", got, want)
	}
	if ignored, off := c.Steps(); ignored != 1 || off != 0 {
		t.Fatalf("Steps after = %d, %v", ignored, off)
	}
	if want := []string{"1m0s false", "100ms true"}; fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("hook saw %v, want %v", events, want)
	}
}

// TestSteppedSaysWhen: Stepped reports the step not followed and the
// monotonic reading at which the wall clock was seen to step, moved by a
// further step, not by drift within the margin.
func TestSteppedSaysWhen(t *testing.T) {
	w := &fakeWall{t: time.Unix(100, 0), mono: time.Hour}
	c := NewClock(w, 500*time.Millisecond)
	c.Now()
	if off, _ := c.Stepped(); off != 0 {
		t.Fatalf("Stepped before any step: %v", off)
	}
	w.t = w.t.Add(time.Minute)
	w.pass(time.Second)
	c.Now()
	off, at := c.Stepped()
	if off != time.Minute || at != time.Hour+time.Second {
		t.Fatalf("Stepped = %v at %v, want 1m at 1h0m1s", off, at)
	}
	w.t = w.t.Add(10 * time.Millisecond) // within the margin: the same step
	w.pass(time.Second)
	c.Now()
	if off, again := c.Stepped(); again != at || off != time.Minute+10*time.Millisecond {
		t.Fatalf("after a small move: Stepped = %v at %v, want 1m0.01s at %v", off, again, at)
	}
	w.t = w.t.Add(time.Minute) // a second step
	w.pass(time.Second)
	c.Now()
	if off, again := c.Stepped(); again != time.Hour+3*time.Second || off != 2*time.Minute+10*time.Millisecond {
		t.Fatalf("after a second step: Stepped = %v at %v", off, again)
	}
}
