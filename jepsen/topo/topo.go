package topo

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Range is one range as a node's GET /cluster (and /metrics) showed it.
type Range struct {
	ID int `json:"id"`
	// First and Last are its hash slots, inclusive.
	First int `json:"first"`
	Last  int `json:"last"`
	// Replicas are the nodes in its configuration; nil when the range did
	// not answer (unknown, not "none").
	Replicas []int `json:"replicas,omitempty"`
	// Leader is the node that led it (0: unknown).
	Leader int `json:"leader,omitempty"`
}

// ParseSlots reads /cluster's "slots" field, "FIRST-LAST".
func ParseSlots(s string) (first, last int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if ok {
		first, err = strconv.Atoi(a)
		if err == nil {
			last, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || first < 0 || last < first || last >= SlotCount {
		return 0, 0, fmt.Errorf("topo: bad slot span %q", s)
	}
	return first, last, nil
}

// EvenRanges is the layout orbit serve bootstraps with n ranges (SlotSplits
// in adapters/redis): range i+1 starts at slot i*16384/n. The harness falls
// back on it when no node answers /cluster.
func EvenRanges(n int) []Range {
	n = max(1, min(n, SlotCount))
	out := make([]Range, n)
	for i := range n {
		out[i] = Range{ID: i + 1, First: i * SlotCount / n, Last: (i+1)*SlotCount/n - 1}
	}
	return out
}

// RangeOf is the ID of the range of rs holding key's slot, or 0.
func RangeOf(rs []Range, key string) int {
	s := Slot(key)
	for _, r := range rs {
		if r.First <= s && s <= r.Last {
			return r.ID
		}
	}
	return 0
}

// KeyIn returns a key starting with prefix whose slot lies in r, found by
// trying suffixes "-0", "-1", ...: deterministic, and a few tries on
// average (as many as there are ranges).
func KeyIn(prefix string, r Range) string {
	for i := 0; ; i++ {
		k := prefix + "-" + strconv.Itoa(i)
		if s := Slot(k); r.First <= s && s <= r.Last {
			return k
		}
	}
}

// Net is the state of the cluster's nodes during a fault: which are down
// (killed, paused, removed) and which directed links are cut.
type Net struct {
	Down []int
	Cut  [][2]int // from → to
}

func (n Net) down(node int) bool { return slices.Contains(n.Down, node) }

// talk reports whether a and b can exchange messages both ways: Raft needs
// the request and the reply.
func (n Net) talk(a, b int) bool {
	if a == b {
		return true
	}
	return !slices.Contains(n.Cut, [2]int{a, b}) && !slices.Contains(n.Cut, [2]int{b, a})
}

// Quorum is a range's fate in a Net, seen from one node.
type Quorum int

const (
	// QuorumOK: a majority of the range's replicas are up and talk to one
	// another, and the node reaches one of them.
	QuorumOK Quorum = iota
	// QuorumDown: a majority of its replicas are down.
	QuorumDown
	// QuorumSplit: enough replicas are up, but no majority of them can
	// all talk to one another (the links between them are cut).
	QuorumSplit
	// QuorumUnreachable: a majority exists, but the node is cut off from
	// every member of it.
	QuorumUnreachable
	// QuorumUnknown: the range's replicas are not known.
	QuorumUnknown
)

// Judge says whether range r can have a working majority that node from
// reaches, in net. It looks for a majority of r's replicas, all up and
// pairwise connected; there are at most a handful of replicas, so every
// subset is tried.
func Judge(r Range, net Net, from int) (q Quorum, majority []int) {
	if len(r.Replicas) == 0 {
		return QuorumUnknown, nil
	}
	var up []int
	for _, x := range r.Replicas {
		if !net.down(x) {
			up = append(up, x)
		}
	}
	need := len(r.Replicas)/2 + 1
	if len(up) < need {
		return QuorumDown, nil
	}
	var best []int // a majority clique, preferring one that from reaches
	for mask := 1; mask < 1<<len(up); mask++ {
		var set []int
		for i, x := range up {
			if mask&(1<<i) != 0 {
				set = append(set, x)
			}
		}
		if len(set) < need || !clique(net, set) {
			continue
		}
		if reaches(net, from, set) {
			return QuorumOK, set
		}
		if best == nil {
			best = set
		}
	}
	if best == nil {
		return QuorumSplit, nil
	}
	return QuorumUnreachable, best
}

func clique(net Net, set []int) bool {
	for i, a := range set {
		for _, b := range set[i+1:] {
			if !net.talk(a, b) {
				return false
			}
		}
	}
	return true
}

func reaches(net Net, from int, set []int) bool {
	if net.down(from) {
		return false
	}
	for _, x := range set {
		if net.talk(from, x) {
			return true
		}
	}
	return false
}

// Nodes formats node IDs as "n1,n2".
func Nodes(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = "n" + strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}
