package avail

import (
	"fmt"
	"slices"
	"strings"

	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/topo"
)

// Cause says why range r served nothing through node during fault f, from
// what the nemesis recorded: the range's replicas and leader just before
// the fault (GET /cluster, /metrics), the nodes the fault stopped, the
// links it cut, and what node's own GET /cluster saw late in the fault.
// When these do not explain it, the sentence starts "cannot tell".
func Cause(f history.Fault, r, node int) string {
	rg, known := rangeBefore(f, r)
	var why string
	switch q, majority := topo.Judge(rg, f.Net(), node); {
	case !known || q == topo.QuorumUnknown:
		why = fmt.Sprintf("cannot tell: range %d's replicas are unknown (no node answered GET /cluster before the fault)", r)
	case q == topo.QuorumDown:
		why = fmt.Sprintf("range %d lost quorum: replicas on %s %s", r, topo.Nodes(intersect(rg.Replicas, f.Down)), stoppedVerb(f.Kind))
	case q == topo.QuorumSplit:
		why = fmt.Sprintf("range %d lost quorum: no majority of its replicas %s could reach one another (links cut)", r, topo.Nodes(rg.Replicas))
	case q == topo.QuorumUnreachable:
		why = fmt.Sprintf("n%d was cut off from range %d's majority %s", node, r, topo.Nodes(majority))
	case rg.Leader != 0 && slices.Contains(f.Down, rg.Leader):
		why = fmt.Sprintf("range %d's leader n%d was %s and a majority %s remained: it should have elected a new leader", r, rg.Leader, stoppedVerb(f.Kind), topo.Nodes(majority))
	case rg.Leader != 0 && slices.Contains(f.Slow, rg.Leader) && stillLed(f, r, rg.Leader) && len(healthy(rg, f)) > len(rg.Replicas)/2:
		why = fmt.Sprintf("range %d's leader n%d was slowed while %s (a majority without it) were not: leadership should have moved to them",
			r, rg.Leader, topo.Nodes(healthy(rg, f)))
	case slices.Contains(f.Slow, node):
		why = fmt.Sprintf("n%d's own links were slowed, and it forwards range %d's operations to the leader over them", node, r)
	default:
		why = fmt.Sprintf("cannot tell: range %d kept a majority %s that n%d reaches", r, topo.Nodes(majority), node)
		if rg.Leader != 0 {
			why += fmt.Sprintf(" (leader n%d before the fault)", rg.Leader)
		}
		why += fmt.Sprintf("; see n%d's log", node)
	}
	why += lateLeader(f, r)
	if seen, probed := f.Unanswered[node]; probed {
		if slices.Contains(seen, r) {
			why += fmt.Sprintf(" [n%d's GET /cluster late in the fault: range %d did not answer]", node, r)
		} else {
			why += fmt.Sprintf(" [n%d's GET /cluster late in the fault: range %d answered]", node, r)
		}
	}
	return why
}

// leaderFate says what the fault did to range r as seen through node,
// when the nemesis recorded something that explains a wait: "its leader
// n2 was killed", "n1 was cut off from its majority n2,n3", "n3's own
// links were slowed". Empty when nothing recorded explains it.
func leaderFate(f history.Fault, r, node int) string {
	rg, known := rangeBefore(f, r)
	if slices.Contains(f.Slow, node) && (!known || rg.Leader != node) {
		return fmt.Sprintf("n%d's own links were slowed", node) + lateLeader(f, r)
	}
	if !known {
		return ""
	}
	switch {
	case rg.Leader != 0 && slices.Contains(f.Down, rg.Leader):
		return fmt.Sprintf("its leader n%d was %s", rg.Leader, stoppedVerb(f.Kind))
	case rg.Leader != 0 && slices.Contains(f.Slow, rg.Leader):
		return fmt.Sprintf("its leader n%d was slowed", rg.Leader) + lateLeader(f, r)
	}
	switch q, majority := topo.Judge(rg, f.Net(), node); q {
	case topo.QuorumDown:
		return "it lost quorum: replicas on " + topo.Nodes(intersect(rg.Replicas, f.Down)) + " " + stoppedVerb(f.Kind)
	case topo.QuorumSplit:
		return "it lost quorum: its replicas could not reach one another"
	case topo.QuorumUnreachable:
		return fmt.Sprintf("n%d was cut off from its majority %s", node, topo.Nodes(majority))
	}
	if rg.Leader != 0 {
		if q, _ := topo.Judge(rg, f.Net(), rg.Leader); q == topo.QuorumUnreachable {
			return fmt.Sprintf("its leader n%d was cut off from the majority", rg.Leader) + lateLeader(f, r)
		}
	}
	return ""
}

// lateLeader says who led range r late in the fault, when that was
// probed and the range had a leader before: "; late in the fault n2
// still led it" or "; late in the fault n3 led it".
func lateLeader(f history.Fault, r int) string {
	rg, known := rangeBefore(f, r)
	if f.LeadersLate == nil || !known || rg.Leader == 0 {
		return ""
	}
	switch late, ok := f.LeadersLate[r]; {
	case !ok:
		return "; late in the fault no node led it"
	case late == rg.Leader:
		return fmt.Sprintf("; late in the fault n%d still led it", late)
	default:
		return fmt.Sprintf("; late in the fault n%d led it", late)
	}
}

// stillLed reports whether leader still led range r late in the fault
// (true when that was not probed: nothing says it moved).
func stillLed(f history.Fault, r, leader int) bool {
	late, ok := f.LeadersLate[r]
	return f.LeadersLate == nil || ok && late == leader
}

// healthy are r's replicas the fault neither stopped nor slowed.
func healthy(r topo.Range, f history.Fault) []int {
	var out []int
	for _, x := range r.Replicas {
		if !slices.Contains(f.Down, x) && !slices.Contains(f.Slow, x) {
			out = append(out, x)
		}
	}
	return out
}

func rangeBefore(f history.Fault, r int) (topo.Range, bool) {
	for _, rg := range f.Before {
		if rg.ID == r {
			return rg, true
		}
	}
	return topo.Range{ID: r}, false
}

// stoppedVerb is how a fault of kind stops a node.
func stoppedVerb(kind string) string {
	switch {
	case strings.HasPrefix(kind, "kill"):
		return "killed"
	case strings.HasPrefix(kind, "pause"):
		return "paused"
	}
	return "down"
}

func intersect(a, b []int) []int {
	var out []int
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
