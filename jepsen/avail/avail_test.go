package avail

import (
	"math"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/topo"
)

const (
	ms   = int64(1e6)
	sec  = int64(1e9)
	step = 50 * ms // each (node, range) pair issues an op every 50 ms
	lat  = 5 * ms  // that completes 5 ms later
)

var ranges = topo.EvenRanges(3)

// history3 is three nodes' clients, each issuing an op on every range
// every 50 ms from 0 to end; ok(node, range, t) says whether the op
// invoked at t succeeded.
func history3(end int64, ok func(node, rng int, t int64) bool) []history.Op {
	var ops []history.Op
	for t := int64(0); t < end; t += step {
		for node := 1; node <= 3; node++ {
			for _, r := range ranges {
				op := history.Op{Node: node, F: "write", Key: topo.KeyIn("k", r), Invoke: t, Complete: t + lat, Type: history.TypeOK}
				if !ok(node, r.ID, t) {
					op.Type = history.TypeFail
				}
				ops = append(ops, op)
			}
		}
	}
	return ops
}

func before(leaders ...int) []topo.Range {
	out := make([]topo.Range, len(ranges))
	for i, r := range ranges {
		r.Replicas, r.Leader = []int{1, 2, 3}, leaders[i]
		out[i] = r
	}
	return out
}

// TestKillLeaderRecovery: n2 leads range 2 and is killed from 10 s to
// 15 s; range 2 serves again through n1 at 10.8 s and through n3 at
// 11.2 s; n2's clients succeed from 15.5 s.
func TestKillLeaderRecovery(t *testing.T) {
	ops := history3(30*sec, func(node, r int, at int64) bool {
		switch {
		case node == 2:
			return at < 10*sec || at >= 15500*ms
		case r == 2 && node == 1:
			return at < 10*sec || at >= 10800*ms
		case r == 2 && node == 3:
			return at < 10*sec || at >= 11200*ms
		}
		return true
	})
	f := history.Fault{Kind: "kill-leader", Detail: "n2", Start: 10 * sec, End: 15 * sec, Down: []int{2}, Before: before(1, 2, 3)}
	rep := Analyze(Input{Ops: ops, Faults: []history.Fault{f}, Nodes: []int{1, 2, 3}, Ranges: ranges, End: 30 * sec})

	// Calm: [0,10) and [16,30) (a second of settling), 9 pairs at 20/s.
	if rep.Calm.Span != 24*sec || rep.Calm.PerSec() != 180 {
		t.Fatalf("calm = %+v (%.1f/s), want 24 s at 180/s", rep.Calm, rep.Calm.PerSec())
	}
	af := rep.Faults[0]
	// During: n1 200 + 84, n3 200 + 76, n2 nothing: 560 in 5 s.
	if af.During.OK != 560 || math.Abs(af.Availability(rep.Calm)-112.0/180) > 1e-9 {
		t.Fatalf("during = %+v, availability %.4f", af.During, af.Availability(rep.Calm))
	}
	want := map[int]struct {
		from, end int64
		down      bool
	}{1: {805 * ms, lat, false}, 2: {0, 505 * ms, true}, 3: {1205 * ms, lat, false}}
	for _, nd := range af.Nodes {
		w := want[nd.Node]
		if nd.Down != w.down {
			t.Errorf("n%d down = %v", nd.Node, nd.Down)
		}
		if !nd.FromEnd.Recovered || nd.FromEnd.After != w.end {
			t.Errorf("n%d from the end: %+v, want %v", nd.Node, nd.FromEnd, w.end)
		}
		if nd.Down {
			if nd.FromStart.Recovered && nd.FromStart.After < 5*sec {
				t.Errorf("n2 (killed) recovered from the start in %v", nd.FromStart.After)
			}
			continue
		}
		if !nd.FromStart.Recovered || nd.FromStart.After != w.from || nd.FromStart.Range != 2 {
			t.Errorf("n%d from the start: %+v, want %v on range 2", nd.Node, nd.FromStart, w.from)
		}
		if nd.FromStart.Why != "its leader n2 was killed" {
			t.Errorf("n%d why = %q", nd.Node, nd.FromStart.Why)
		}
		if len(nd.Offline) != 0 {
			t.Errorf("n%d offline: %+v (range 2 served part of the fault)", nd.Node, nd.Offline)
		}
	}
	if r := rep.CalmByNode[1]; r.PerSec() != 60 {
		t.Errorf("n1 calm = %.1f/s, want 60", r.PerSec())
	}
}

// TestNeverRecovers: a range that serves nothing again is not recovered,
// and the time is counted to the end of the workload.
func TestNeverRecovers(t *testing.T) {
	ops := history3(20*sec, func(node, r int, at int64) bool { return r != 3 || at < 5*sec })
	f := history.Fault{Kind: "pause-leader", Detail: "n3", Start: 5 * sec, End: 8 * sec, Before: before(1, 2, 3)}
	rep := Analyze(Input{Ops: ops, Faults: []history.Fault{f}, Nodes: []int{1, 2, 3}, Ranges: ranges, End: 20 * sec})
	for _, nd := range rep.Faults[0].Nodes {
		if nd.FromStart.Recovered || nd.FromStart.Range != 3 || nd.FromStart.After != 15*sec {
			t.Errorf("n%d: %+v, want not recovered on range 3 after 15 s", nd.Node, nd.FromStart)
		}
		if len(nd.Offline) != 1 || nd.Offline[0].Range != 3 || nd.Offline[0].Attempts != 60 {
			t.Errorf("n%d offline: %+v", nd.Node, nd.Offline)
		}
		// Nothing recorded explains it: n3 was not recorded as down.
		if !strings.HasPrefix(nd.Offline[0].Cause, "cannot tell: range 3 kept a majority") {
			t.Errorf("cause: %q", nd.Offline[0].Cause)
		}
	}
}

func TestOfflineCauses(t *testing.T) {
	// n2 and n3 killed: every range lost quorum; n1 is alive but serves
	// nothing.
	ops := history3(20*sec, func(node, r int, at int64) bool { return at < 5*sec || at >= 9*sec })
	kill := history.Fault{Kind: "kill", Detail: "{n2,n3}", Start: 5 * sec, End: 8 * sec, Down: []int{2, 3}, Before: before(1, 2, 3),
		Unanswered: map[int][]int{1: {1, 2, 3}}}
	rep := Analyze(Input{Ops: ops, Faults: []history.Fault{kill}, Nodes: []int{1, 2, 3}, Ranges: ranges, End: 20 * sec})
	n1 := rep.Faults[0].Nodes[0]
	if n1.During.OK != 0 || len(n1.Offline) != 3 {
		t.Fatalf("n1: %+v", n1)
	}
	want := "range 2 lost quorum: replicas on n2,n3 killed [n1's GET /cluster late in the fault: range 2 did not answer]"
	if got := n1.Offline[1].Cause; got != want {
		t.Errorf("cause:\n got %q\nwant %q", got, want)
	}
	if rep.Faults[0].Nodes[1].Offline != nil {
		t.Errorf("a stopped node's ranges are not offline causes: %+v", rep.Faults[0].Nodes[1].Offline)
	}

	// n1 isolated by a partition.
	var cut [][2]int
	for _, o := range []int{2, 3} {
		cut = append(cut, [2]int{1, o}, [2]int{o, 1})
	}
	iso := history.Fault{Kind: "partition", Detail: "isolated n1", Start: 5 * sec, End: 8 * sec, Cut: cut, Before: before(1, 2, 3)}
	ops = history3(20*sec, func(node, r int, at int64) bool { return node != 1 || at < 5*sec || at >= 9*sec })
	rep = Analyze(Input{Ops: ops, Faults: []history.Fault{iso}, Nodes: []int{1, 2, 3}, Ranges: ranges, End: 20 * sec})
	if got := rep.Faults[0].Nodes[0].Offline[0].Cause; got != "n1 was cut off from range 1's majority n2,n3" {
		t.Errorf("isolated: %q", got)
	}
	if off := rep.Faults[0].Nodes[1].Offline; off != nil {
		t.Errorf("n2 offline: %+v", off)
	}

	// The isolated node waits because it is cut off; the others, on
	// range 1, because its leader was the isolated node.
	if why := rep.Faults[0].Nodes[0].FromStart.Why; why != "n1 was cut off from its majority n2,n3" {
		t.Errorf("isolated n1's wait: %q", why)
	}
	if n2 := rep.Faults[0].Nodes[1].FromStart; n2.Range != 1 || n2.Why != "its leader n1 was cut off from the majority" {
		t.Errorf("n2's wait: %+v", n2)
	}
	// A leader cut off from one node only is not blamed.
	iso.Before = before(2, 2, 2)
	rep = Analyze(Input{Ops: ops, Faults: []history.Fault{iso}, Nodes: []int{1, 2, 3}, Ranges: ranges, End: 20 * sec})
	if why := rep.Faults[0].Nodes[1].FromStart.Why; why != "" {
		t.Errorf("n2's wait, its leader n2 reaching n3: %q", why)
	}

	// Without knowing the replicas, it says it cannot tell.
	iso.Before = nil
	rep = Analyze(Input{Ops: ops, Faults: []history.Fault{iso}, Nodes: []int{1, 2, 3}, Ranges: ranges, End: 20 * sec})
	if got := rep.Faults[0].Nodes[0].Offline[0].Cause; !strings.HasPrefix(got, "cannot tell: range 1's replicas are unknown") {
		t.Errorf("unknown replicas: %q", got)
	}

	// A majority remained but the killed leader's range served nothing:
	// the report says it should have elected a new leader.
	ops = history3(20*sec, func(node, r int, at int64) bool { return r != 1 || at < 5*sec || at >= 9*sec })
	kl := history.Fault{Kind: "kill-leader", Detail: "n2", Start: 5 * sec, End: 8 * sec, Down: []int{2}, Before: before(2, 1, 3)}
	rep = Analyze(Input{Ops: ops, Faults: []history.Fault{kl}, Nodes: []int{1, 2, 3}, Ranges: ranges, End: 20 * sec})
	want = "range 1's leader n2 was killed and a majority n1,n3 remained: it should have elected a new leader"
	if got := rep.Faults[0].Nodes[0].Offline[0].Cause; got != want {
		t.Errorf("leader killed:\n got %q\nwant %q", got, want)
	}
}

// TestSlowLeaderCauses: a slowed leader that kept its ranges is named as
// the cause, and so is a slowed node's own forwarding.
func TestSlowLeaderCauses(t *testing.T) {
	// Range 2 (led by n2) serves nothing anywhere; range 1 serves nothing
	// through n2.
	ops := history3(20*sec, func(node, r int, at int64) bool {
		during := at >= 5*sec && at < 9*sec
		return !during || (r != 2 && !(node == 2 && r == 1))
	})
	f := history.Fault{Kind: "slow-leader", Detail: "n2", Start: 5 * sec, End: 8 * sec, Slow: []int{2}, Before: before(1, 2, 3),
		LeadersLate: map[int]int{1: 1, 2: 2, 3: 3}}
	rep := Analyze(Input{Ops: ops, Faults: []history.Fault{f}, Nodes: []int{1, 2, 3}, Ranges: ranges, End: 20 * sec})
	n1, n2 := rep.Faults[0].Nodes[0], rep.Faults[0].Nodes[1]
	want := "range 2's leader n2 was slowed while n1,n3 (a majority without it) were not: leadership should have moved to them; late in the fault n2 still led it"
	if len(n1.Offline) != 1 || n1.Offline[0].Cause != want {
		t.Errorf("through n1:\n got %+v\nwant %q", n1.Offline, want)
	}
	want = "n2's own links were slowed, and it forwards range 1's operations to the leader over them; late in the fault n1 still led it"
	if len(n2.Offline) != 2 || n2.Offline[0].Cause != want {
		t.Errorf("through n2:\n got %+v\nwant %q", n2.Offline, want)
	}
	if why := n1.FromStart.Why; why != "its leader n2 was slowed; late in the fault n2 still led it" {
		t.Errorf("why = %q", why)
	}
	if why := n2.FromStart.Why; !strings.HasPrefix(why, "n2's own links were slowed") {
		t.Errorf("why through the slowed node = %q", why)
	}
	// Had leadership moved, the report says so, and does not claim it
	// should have.
	f.LeadersLate = map[int]int{1: 1, 2: 3, 3: 3}
	if got := Cause(f, 2, 1); !strings.HasPrefix(got, "cannot tell") || !strings.Contains(got, "; late in the fault n3 led it") {
		t.Errorf("moved, through n1: %q", got)
	}
	if got := Cause(f, 2, 2); !strings.HasPrefix(got, "n2's own links were slowed") {
		t.Errorf("moved, through n2: %q", got)
	}
}

// TestOpenFaultAndFinalReads: a fault the run ended first is closed at the
// workload's end, and ops after the end (final reads) are not counted.
func TestOpenFaultAndFinalReads(t *testing.T) {
	ops := history3(10*sec, func(int, int, int64) bool { return true })
	ops = append(ops, history.Op{Node: 1, F: "read", Key: "x", Type: history.TypeOK, Invoke: 12 * sec, Complete: 12*sec + ms})
	f := history.Fault{Kind: "slow-leader", Detail: "n1", Start: 8 * sec, Slow: []int{1}}
	rep := Analyze(Input{Ops: ops, Faults: []history.Fault{f}, Nodes: []int{1, 2, 3}, Ranges: ranges, End: 10 * sec})
	af := rep.Faults[0]
	if !af.Open || af.End != 10*sec || af.During.Span != 2*sec {
		t.Fatalf("open fault: %+v", af)
	}
	if rep.Calm.Span != 8*sec || rep.Calm.OK != 9*160 {
		t.Fatalf("calm = %+v", rep.Calm)
	}
	if a := af.Availability(rep.Calm); math.Abs(a-1) > 0.01 {
		t.Errorf("availability = %v, want 1", a)
	}
	if af.Nodes[0].FromEnd.Measured {
		t.Errorf("an open fault's end is not measured: %+v", af.Nodes[0].FromEnd)
	}
	// No calm at all: availability is unknown, not infinite.
	f.Start = 0
	rep = Analyze(Input{Ops: ops, Faults: []history.Fault{f}, Nodes: []int{1}, Ranges: ranges, End: 10 * sec})
	if a := rep.Faults[0].Availability(rep.Calm); !math.IsNaN(a) {
		t.Errorf("availability without calm = %v, want NaN", a)
	}
}
