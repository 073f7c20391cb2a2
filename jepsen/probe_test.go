package jepsen

import (
	"testing"

	"github.com/orbitkernel/orbit/jepsen/topo"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP orbit_raft_leader 1 if this node leads the range now.
# TYPE orbit_raft_leader gauge
orbit_raft_leader{range="1"} 1
orbit_raft_leader{range="2"} 0
orbit_raft_leader_term{range="1"} 7
orbit_transport_oversized_messages_total{peer="3"} 2
weird{a="x\"y,z}",b="\\"} 1.5e+00
process_open_fds 12
broken{a="x} 1
`
	got := parseMetrics(text)
	if len(got) != 6 {
		t.Fatalf("parsed %d samples: %+v", len(got), got)
	}
	if got[0].name != "orbit_raft_leader" || got[0].labels["range"] != "1" || got[0].value != 1 {
		t.Errorf("first: %+v", got[0])
	}
	if w := got[4]; w.labels["a"] != `x"y,z}` || w.labels["b"] != `\` || w.value != 1.5 {
		t.Errorf("escapes: %+v", w)
	}
	if got[5].name != "process_open_fds" || got[5].value != 12 {
		t.Errorf("no labels: %+v", got[5])
	}
}

func TestLeaderTarget(t *testing.T) {
	before := []topo.Range{{ID: 1, Leader: 2}, {ID: 2, Leader: 3}, {ID: 3, Leader: 2}, {ID: 4}}
	if n, leads, err := leaderTarget(before, 0, 5); err != nil || n != 2 || intsText(leads) != "1,3" {
		t.Errorf("most ranges: n%d %v %v", n, leads, err)
	}
	if n, _, err := leaderTarget(before, 2, 5); err != nil || n != 3 {
		t.Errorf("range 2's leader: n%d %v", n, err)
	}
	if _, _, err := leaderTarget(before, 4, 5); err == nil {
		t.Errorf("range 4 has no leader, yet a target")
	}
	// Ties are drawn: both nodes are picked for some draws.
	tie := []topo.Range{{ID: 1, Leader: 1}, {ID: 2, Leader: 3}}
	seen := map[int]bool{}
	for pick := range 4 {
		n, _, _ := leaderTarget(tie, 0, pick)
		seen[n] = true
	}
	if !seen[1] || !seen[3] {
		t.Errorf("ties: %v", seen)
	}
	if _, _, err := leaderTarget(nil, 0, 0); err == nil {
		t.Errorf("no ranges known, yet a target")
	}
}
