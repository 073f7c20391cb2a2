package jepsen

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/jepsen/avail"
	"github.com/orbitkernel/orbit/jepsen/history"
)

const second = int64(time.Second)

func recovered(node int, after time.Duration) avail.Node {
	return avail.Node{Node: node, FromStart: avail.Recovery{Measured: true, Recovered: true, After: int64(after), Range: 2}}
}

func TestLeaderRecoveryVerdict(t *testing.T) {
	fault := func(nodes ...avail.Node) avail.Fault {
		return avail.Fault{Fault: history.Fault{Kind: "kill-leader", Detail: "n2 (leads ranges 2)", Start: 10 * second, End: 15 * second}, Nodes: nodes}
	}
	down := avail.Node{Node: 2, Down: true}
	nem := []string{"kill-leader"}

	rep := avail.Report{Faults: []avail.Fault{fault(recovered(1, 805*time.Millisecond), down, recovered(3, 1210*time.Millisecond))}}
	r, ok := leaderRecoveryResult(rep, nem, 2*time.Second, 30*second)
	if !ok || !r.Valid || r.Unknown || !strings.Contains(r.Summary, "n1 805ms, n3 1.21s") {
		t.Errorf("within the bound: %+v", r)
	}

	rep = avail.Report{Faults: []avail.Fault{fault(recovered(1, 805*time.Millisecond), down, recovered(3, 2345*time.Millisecond))}}
	r, _ = leaderRecoveryResult(rep, nem, 2*time.Second, 30*second)
	if r.Valid || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "n3 served again only after 2.35s") {
		t.Errorf("over the bound: %+v", r)
	}

	never := avail.Node{Node: 3, FromStart: avail.Recovery{Measured: true, After: 20 * second, Range: 2}}
	rep = avail.Report{Faults: []avail.Fault{fault(recovered(1, time.Second), down, never)}}
	if r, _ = leaderRecoveryResult(rep, nem, 2*time.Second, 30*second); r.Valid {
		t.Errorf("never recovered yet valid: %+v", r)
	}
	// The workload ended a second after the fault began: not judged.
	if r, _ = leaderRecoveryResult(avail.Report{Faults: []avail.Fault{fault(down, never)}}, nem, 2*time.Second, 11*second); r.Valid || !r.Unknown {
		t.Errorf("unjudgeable: %+v", r)
	}
	// Asked for, never injected: unknown, not valid.
	if r, ok = leaderRecoveryResult(avail.Report{}, []string{"pause-leader", "kill"}, 2*time.Second, 30*second); !ok || r.Valid || !r.Unknown {
		t.Errorf("no fault: %+v %v", r, ok)
	}
	if _, ok = leaderRecoveryResult(avail.Report{}, []string{"kill"}, 2*time.Second, 30*second); ok {
		t.Errorf("judged without a leader nemesis")
	}
}

func TestAvailabilityVerdict(t *testing.T) {
	// Three nodes, 60/s each in the calm; node 1 is the slow one. Its own
	// clients are shown but not judged: only nodes 2 and 3 count.
	calmBy := map[int]avail.Rate{1: {OK: 600, Span: 10 * second}, 2: {OK: 600, Span: 10 * second}, 3: {OK: 600, Span: 10 * second}}
	calm := avail.Rate{OK: 1800, Span: 10 * second}
	slow := func(okOthers int) avail.Fault {
		during := func(ok int) avail.Rate { return avail.Rate{OK: ok, Span: 5 * second} }
		return avail.Fault{Fault: history.Fault{Kind: "slow-leader", Detail: "n1", Start: 5 * second, End: 10 * second, Slow: []int{1}},
			During: during(2*okOthers + 1),
			Nodes:  []avail.Node{{Node: 1, During: during(1)}, {Node: 2, During: during(okOthers)}, {Node: 3, During: during(okOthers)}}}
	}
	nem := []string{"slow-leader"}
	rep := func(fs ...avail.Fault) avail.Report { return avail.Report{Calm: calm, CalmByNode: calmBy, Faults: fs} }
	if r, _ := availabilityResult(rep(slow(200)), nem, 0.5); !r.Valid {
		t.Errorf("0.67 of calm through the other nodes: %+v", r)
	}
	r, _ := availabilityResult(rep(slow(200), slow(30)), nem, 0.5)
	if r.Valid || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], ": 0.10 (all nodes") {
		t.Errorf("0.10 of calm: %+v", r)
	}
	if r, _ := availabilityResult(avail.Report{Faults: []avail.Fault{slow(200)}}, nem, 0.5); r.Valid || !r.Unknown {
		t.Errorf("no calm: %+v", r)
	}
}

func TestMessageSizeVerdict(t *testing.T) {
	clean := []sizeFinding{{node: 1, scraped: true}, {node: 2, scraped: true}}
	if r := messageSizeResult(clean); !r.Valid || !strings.Contains(r.Summary, "n1,n2") {
		t.Errorf("clean: %+v", r)
	}
	counted := []sizeFinding{{node: 1, scraped: true, counter: 3, byPeer: []string{"peer 2: 3"}}, {node: 2, scraped: true}}
	if r := messageSizeResult(counted); r.Valid || !strings.Contains(r.Problems[0], "n1: orbit_transport_oversized_messages_total = 3 (peer 2: 3)") {
		t.Errorf("counter: %+v", r)
	}
	// A restarted node forgot its counter; its log remembers.
	logged := []sizeFinding{{node: 1, scrapeErr: errors.New("n1 is not running"), logHits: 1,
		firstHit: `level=WARN msg="grpcnet: refusing a message larger than MaxMessageBytes (logged once per peer)" to=2`}}
	if r := messageSizeResult(logged); r.Valid || !strings.Contains(r.Problems[0], "n1: 1 log lines say") || !strings.Contains(r.Problems[1], "not read") {
		t.Errorf("log: %+v", r)
	}
}

// TestVerdictsWithNothingToJudge: a run of leader nemeses only that
// injected none fails; a run of every nemesis that drew none notes it.
func TestVerdictsWithNothingToJudge(t *testing.T) {
	only := Config{Nemeses: []string{"kill-leader", "slow-leader"}, RecoveryBound: 2 * time.Second, AvailabilityFloor: 0.5}
	rs, notes := availabilityVerdicts(avail.Report{}, only, 30*second)
	if len(rs) != 2 || rs[0].Valid || !rs[0].Unknown || rs[1].Valid || len(notes) != 0 {
		t.Errorf("leader nemeses only: %+v %v", rs, notes)
	}
	all := only
	all.Nemeses = AllNemeses
	rs, notes = availabilityVerdicts(avail.Report{}, all, 30*second)
	if len(rs) != 0 || len(notes) != 2 || !strings.HasPrefix(notes[0], "leader-recovery not judged: nothing to judge") {
		t.Errorf("every nemesis: %+v %v", rs, notes)
	}
	rs, notes = availabilityVerdicts(avail.Report{}, Config{Nemeses: []string{"partition"}}, 30*second)
	if len(rs) != 0 || len(notes) != 0 {
		t.Errorf("no leader nemesis: %+v %v", rs, notes)
	}
}
