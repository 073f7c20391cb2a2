package consensus

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/sim"
	"github.com/orbitkernel/orbit/storage"
)

// offsetWorld is three simulated nodes whose stores check their hybrid
// logical clocks against each other's (Options.Clock), as kernel/node
// wires them: each clock fenced as it is made.
type offsetWorld struct {
	sim    *sim.Sim
	clocks map[kernel.NodeID]*hlc.Clock
	stores map[kernel.NodeID]*Store
}

func newOffsetWorld(t *testing.T) *offsetWorld {
	w := &offsetWorld{clocks: map[kernel.NodeID]*hlc.Clock{}, stores: map[kernel.NodeID]*Store{}}
	w.sim = newThreeNodes(t, 3, func(rt kernel.Runtime, eng *storage.Engine, layout Layout) {
		clock := hlc.NewClock(rt, hlc.DefaultMaxOffset)
		clock.Fence(ErrClockUnchecked)
		st, err := Open(rt, eng, layout, Options{Router: NewRouter(rt, layout), Clock: clock})
		if err != nil {
			kernel.Crash("open consensus: %v", err)
		}
		w.clocks[rt.NodeID()], w.stores[rt.NodeID()] = clock, st
	})
	return w
}

// fenced reports which nodes' clocks are fenced, checking that the store
// and the clock agree.
func (w *offsetWorld) fenced(t *testing.T) map[kernel.NodeID]bool {
	out := map[kernel.NodeID]bool{}
	for id, c := range w.clocks {
		err := c.Fenced()
		if (err != nil) != w.stores[id].ClockOffsetFenced() {
			t.Fatalf("n%d: the clock says %v, the store fenced=%t", id, err, w.stores[id].ClockOffsetFenced())
		}
		out[id] = err != nil
	}
	return out
}

// near reports whether a's and b's clocks read within the bound of each
// other now.
func (w *offsetWorld) near(a, b kernel.NodeID) bool {
	d := time.Duration(w.clocks[a].Now().WallNanos - w.clocks[b].Now().WallNanos)
	return d.Abs() < hlc.DefaultMaxOffset
}

// TestClockOffsetBeyondBoundFencesTheNode: clocks are fenced until they
// are checked; a node that starts with its clock 5 s ahead is fenced from
// its start, and hands its leaderships over while its peers' clocks do not
// agree on a time it could take (460 ms apart); once they agree, it takes
// their time, and follows its wall clock again once the wall comes back.
// A clock that drifts away is fenced before its offset passes the bound,
// and takes its peers' time.
func TestClockOffsetBeyondBoundFencesTheNode(t *testing.T) {
	w := newOffsetWorld(t)
	if err := w.sim.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	for id, f := range w.fenced(t) {
		if f {
			t.Fatalf("n%d still fenced a second after the start: %v", id, w.clocks[id].Fenced())
		}
	}

	// n1 and n2 step apart (steps their clocks follow), and node 3
	// restarts with its wall clock 5 s ahead (no step to notice).
	n1, n3 := w.sim.Node(1), w.sim.Node(3)
	n1.ShiftClock(-230 * time.Millisecond)
	w.sim.Node(2).ShiftClock(230 * time.Millisecond)
	n3.Crash()
	n3.ShiftClock(5 * time.Second)
	n3.Restart()
	if err := w.sim.RunFor(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !w.fenced(t)[3] {
		t.Fatal("n3 restarted unfenced before any measurement")
	}
	if err := w.sim.RunFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if f := w.fenced(t); !f[3] || f[1] || f[2] {
		t.Fatalf("with n3 5 s ahead: fenced %v, want n3 alone", f)
	} else if err := w.clocks[3].Fenced(); !errors.Is(err, ErrClockOffset) || !errors.Is(err, hlc.ErrFenced) {
		t.Fatalf("n3's fence: %v, want ErrClockOffset", err)
	}
	for id, r := range w.stores[3].replicas {
		if r.rn.BasicStatus().RaftState == raft.StateLeader {
			t.Fatalf("fenced n3 still leads range %d", id)
		}
	}
	// Its peers come to agree: n3 takes their time, and is checked.
	n1.ShiftClock(230 * time.Millisecond)
	if err := w.sim.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if f := w.fenced(t); f[1] || f[2] || f[3] {
		t.Fatalf("a second after n1 and n2 came to agree: fenced %v, want none", f)
	}
	if !w.near(3, 1) || !w.near(3, 2) {
		t.Fatal("n3's clock is not near its peers' after taking the cluster's time")
	}
	if _, off := w.clocks[3].Steps(); off < 4*time.Second {
		t.Fatalf("n3's wall clock is %v off its clock, want the 5 s it is ahead", off)
	}
	// The wall clock is corrected: the clock follows it again.
	n3.ShiftClock(-5 * time.Second)
	if err := w.sim.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, off := w.clocks[3].Steps(); off != 0 {
		t.Fatalf("n3's clock still %v off its wall clock", off)
	}
	if f := w.fenced(t); f[3] || !w.near(3, 1) {
		t.Fatalf("n3 after its wall clock came back: fenced %v, near n1 %t", f, w.near(3, 1))
	}

	w.sim.Node(2).ShiftClock(-230 * time.Millisecond)
	if err := w.sim.RunFor(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}

	// Drift: n3's clock runs 4% fast. It is fenced before it is the
	// bound (500 ms) away, and then takes its peers' time: its clock
	// never reads the bound away from theirs.
	n3.SetClockRate(1.04)
	wasFenced := false
	for n3.ClockOffset() < 2*hlc.DefaultMaxOffset {
		if err := w.sim.RunFor(10 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		wasFenced = wasFenced || w.fenced(t)[3]
		if !w.fenced(t)[3] && !w.near(3, 1) {
			t.Fatalf("n3 %v ahead by drift, unfenced and not near n1", n3.ClockOffset())
		}
	}
	if !wasFenced {
		t.Fatal("n3 drifted 1 s ahead and was never fenced")
	}
	if err := w.sim.RunFor(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if f := w.fenced(t); f[3] || !w.near(3, 1) {
		t.Fatalf("n3 drifted 1 s ahead: fenced %v, near n1 %t (it should have taken its peers' time)", f, w.near(3, 1))
	}
}

// TestClockOfANodeWithoutReplicasIsChecked: a node that holds no replica
// (a gateway, or one that just joined) coordinates transactions all the
// same, so its clock is measured against the nodes its router places the
// ranges on: fenced until checked, and when it restarts 5 s ahead, fenced
// until it has taken its peers' time.
func TestClockOfANodeWithoutReplicasIsChecked(t *testing.T) {
	w := newOffsetWorld(t)
	layout, err := NewLayout(nil, []kernel.NodeID{1, 2, 3}, 3) // newThreeNodes's
	if err != nil {
		t.Fatal(err)
	}
	w.sim.AddNode(4, func(rt kernel.Runtime) {
		clock := hlc.NewClock(rt, hlc.DefaultMaxOffset)
		clock.Fence(ErrClockUnchecked)
		st, err := Open(rt, openNodeEngine(rt), layout, Options{Router: NewRouter(rt, layout), Clock: clock})
		if err != nil {
			kernel.Crash("open consensus: %v", err)
		}
		w.clocks[rt.NodeID()], w.stores[rt.NodeID()] = clock, st
	})
	if err := w.sim.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if n := len(w.stores[4].replicas); n != 0 {
		t.Fatalf("n4 holds %d replicas, want none", n)
	}
	if f := w.fenced(t); f[1] || f[2] || f[3] || f[4] {
		t.Fatalf("a second after the start: fenced %v, want none", f)
	}

	n4 := w.sim.Node(4)
	n4.Crash()
	n4.ShiftClock(5 * time.Second)
	n4.Restart()
	if err := w.sim.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if f := w.fenced(t); f[4] || f[1] || f[2] || f[3] {
		t.Fatalf("a second after n4 restarted 5 s ahead: fenced %v, want none", f)
	}
	if !w.near(4, 1) {
		t.Fatal("n4 did not take its peers' time")
	}
	if _, off := w.clocks[4].Steps(); off < 4*time.Second {
		t.Fatalf("n4's wall clock is %v off its clock, want the 5 s it is ahead", off)
	}
}

// TestClockThatRanAheadTakesItsCorrection: a clock that ran ahead,
// followed by its hybrid clock, and was then stepped back (an NTP
// correction) takes the correction even when it is far from only one of
// its peers: n3 ends up just inside the fence from n1 and beyond the
// maximum offset from n2, never fenced (one peer far of two), so only
// taking the wall clock's step brings its timestamps back within what n2
// accepts (the simulator's runaway clocks found it: recovery seed 72).
func TestClockThatRanAheadTakesItsCorrection(t *testing.T) {
	w := newOffsetWorld(t)
	n1, n2, n3 := w.sim.Node(1), w.sim.Node(2), w.sim.Node(3)
	// Steps within the half offset that clocks follow.
	n1.ShiftClock(100 * time.Millisecond)
	n2.ShiftClock(-100 * time.Millisecond)
	if err := w.sim.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	// n3 runs 4% fast until it is 540 ms ahead: 440 ms from n1 (inside
	// the fence), 640 ms from n2.
	n3.SetClockRate(1.04)
	for n3.ClockOffset() < 540*time.Millisecond {
		if err := w.sim.RunFor(10 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	n3.SetClockRate(1)
	if f := w.fenced(t); f[3] {
		t.Fatalf("n3 fenced while inside the fence from n1: %v", w.clocks[3].Fenced())
	}
	// The correction: its wall clock steps back to true time, a step its
	// hybrid clock does not follow by itself.
	n3.ShiftClock(-n3.ClockOffset())
	if err := w.sim.RunFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, off := w.clocks[3].Steps(); off != 0 {
		t.Fatalf("n3's clock still %v off its wall clock two seconds after the correction", off)
	}
	ahead := time.Duration(w.clocks[3].Now().WallNanos - w.clocks[2].Now().WallNanos)
	if ahead > 300*time.Millisecond {
		t.Fatalf("n3's timestamps still %v ahead of n2's", ahead)
	}
}

// TestClocksSteppedTogetherKeepTheirTime: two nodes of three whose wall
// clocks step the same way at once (the Jepsen clock nemesis: n2 and n3
// 51 s ahead, n1 43 s behind) find each other's wall clocks near, but
// their hybrid clocks agree with every peer's: there is nothing to
// correct, and taking the step would put a quorum's timestamps 51 s ahead
// of real time for good (an HLC never goes back), every timestamp they
// hand out refused by n1 (beyond the maximum offset) until real time
// caught up. No clock takes the step, none is fenced, and when the wall
// clocks come back the three hybrid clocks are still together.
func TestClocksSteppedTogetherKeepTheirTime(t *testing.T) {
	w := newOffsetWorld(t)
	if err := w.sim.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	n1, n2, n3 := w.sim.Node(1), w.sim.Node(2), w.sim.Node(3)
	together := func(when string) {
		t.Helper()
		if f := w.fenced(t); f[1] || f[2] || f[3] {
			t.Fatalf("%s: fenced %v, want none", when, f)
		}
		n1now := w.clocks[1].Now()
		for _, id := range []kernel.NodeID{2, 3} {
			if d := time.Duration(w.clocks[id].Now().WallNanos - n1now.WallNanos); d.Abs() > 300*time.Millisecond {
				t.Fatalf("%s: n%d's clock is %v from n1's", when, id, d)
			}
			if err := w.clocks[1].Update(w.clocks[id].Now()); err != nil {
				t.Fatalf("%s: n1 refuses n%d's timestamp: %v", when, id, err)
			}
		}
	}
	n1.ShiftClock(-42700 * time.Millisecond)
	n2.ShiftClock(51 * time.Second)
	n3.ShiftClock(51*time.Second + 200*time.Millisecond)
	if err := w.sim.RunFor(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	together("3 s after the steps")
	n1.ShiftClock(42700 * time.Millisecond)
	n2.ShiftClock(-51 * time.Second)
	n3.ShiftClock(-51*time.Second - 200*time.Millisecond)
	if err := w.sim.RunFor(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	together("3 s after the wall clocks came back")
	for id, c := range w.clocks {
		if _, off := c.Steps(); off != 0 {
			t.Fatalf("n%d's clock still %v off its wall clock", id, off)
		}
	}
}

// TestRestartsUnderASharedStepTakeTheTrustedTime: two nodes of three
// restart while a shared NTP server has their wall clocks 15 s ahead, so
// their clocks start 15 s ahead and agree with each other; the third
// kept the cluster's time. Clocks not checked yet do not outvote one that
// is: the third is never fenced, and the two take its time (planted
// fenced-clocks-vote: they vouch for each other, fence the third, and
// the cluster's timestamps run 15 s ahead).
func TestRestartsUnderASharedStepTakeTheTrustedTime(t *testing.T) {
	if msg := restartsUnderASharedStep(t); msg != "" {
		t.Fatal(msg)
	}
}

// restartsUnderASharedStep runs TestRestartsUnderASharedStepTakeTheTrustedTime's
// story and says what went wrong ("" if nothing).
func restartsUnderASharedStep(t *testing.T) string {
	w := newOffsetWorld(t)
	if err := w.sim.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	n1, n2 := w.sim.Node(1), w.sim.Node(2)
	n1.ShiftClock(15 * time.Second)
	n2.ShiftClock(15*time.Second + 100*time.Millisecond)
	if err := w.sim.RunFor(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	n1.Crash()
	n2.Crash()
	n1.Restart()
	n2.Restart()
	for range 200 { // 2 s
		if err := w.sim.RunFor(10 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if w.fenced(t)[3] {
			return fmt.Sprintf("n3, which kept the cluster's time, is fenced: %v", w.clocks[3].Fenced())
		}
	}
	for _, id := range []kernel.NodeID{1, 2} {
		if w.fenced(t)[id] || !w.near(id, 3) {
			return fmt.Sprintf("n%d two seconds after its restart: fenced %t, near n3 %t", id, w.fenced(t)[id], w.near(id, 3))
		}
	}
	return ""
}
