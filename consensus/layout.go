package consensus

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Descriptor is a range: a span of the keyspace replicated by one Raft group.
type Descriptor struct {
	ID storage.RangeID
	// Start and End bound the range's keys: [Start, End). A nil End means the
	// end of the keyspace.
	Start, End []byte
	// Replicas are the nodes that hold the range, in placement order.
	Replicas []kernel.NodeID
}

// Contains reports whether key belongs to the range.
func (d Descriptor) Contains(key []byte) bool {
	return bytes.Compare(key, d.Start) >= 0 && (d.End == nil || bytes.Compare(key, d.End) < 0)
}

func (d Descriptor) String() string {
	return fmt.Sprintf("r%d[%q,%q)@%v", d.ID, d.Start, d.End, d.Replicas)
}

// Layout is the ranges of a cluster, fixed at bootstrap: contiguous, sorted,
// covering every key exactly once.
//
// Invariant: ranges[0].Start is empty, ranges[i].End == ranges[i+1].Start,
// and the last End is nil.
type Layout struct {
	ranges []Descriptor
	nodes  []kernel.NodeID // sorted
}

// NewLayout splits the keyspace at splits (in any order) and places each
// range on replicas nodes (all of them when there are fewer), rotating so
// that leadership and load spread over the cluster.
func NewLayout(splits [][]byte, nodes []kernel.NodeID, replicas int) (Layout, error) {
	if len(nodes) == 0 || replicas <= 0 {
		return Layout{}, fmt.Errorf("consensus: a layout needs nodes and a replication factor")
	}
	sorted := slices.Clone(splits)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i], sorted[j]) < 0 })
	for i, s := range sorted {
		if len(s) == 0 || (i > 0 && bytes.Equal(s, sorted[i-1])) {
			return Layout{}, fmt.Errorf("consensus: split points must be distinct and non-empty")
		}
	}
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	n := min(replicas, len(nodes))
	l := Layout{nodes: nodes}
	start := []byte{}
	for i := 0; i <= len(sorted); i++ {
		var end []byte
		if i < len(sorted) {
			end = sorted[i]
		}
		d := Descriptor{ID: storage.RangeID(i + 1), Start: start, End: end}
		for k := range n {
			d.Replicas = append(d.Replicas, nodes[(i+k)%len(nodes)])
		}
		l.ranges = append(l.ranges, d)
		start = end
	}
	return l, nil
}

// Nodes returns the cluster's nodes, sorted.
func (l Layout) Nodes() []kernel.NodeID { return l.nodes }

// Ranges returns every range, in key order. Their Replicas are the initial
// ones: membership changes (membership.go) move replicas later.
func (l Layout) Ranges() []Descriptor { return l.ranges }

// Lookup returns the range holding key.
func (l Layout) Lookup(key []byte) Descriptor {
	i := sort.Search(len(l.ranges), func(i int) bool {
		return l.ranges[i].End == nil || bytes.Compare(key, l.ranges[i].End) < 0
	})
	return l.ranges[i]
}

// Range returns the range with the given ID.
func (l Layout) Range(id storage.RangeID) (Descriptor, bool) {
	for _, d := range l.ranges {
		if d.ID == id {
			return d, true
		}
	}
	return Descriptor{}, false
}

// On returns the ranges that have a replica on node.
func (l Layout) On(node kernel.NodeID) []Descriptor {
	var out []Descriptor
	for _, d := range l.ranges {
		if slices.Contains(d.Replicas, node) {
			out = append(out, d)
		}
	}
	return out
}
