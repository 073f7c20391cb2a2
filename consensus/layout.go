package consensus

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Descriptor is a range: a span of the keyspace replicated by one Raft group.
//
// A range's descriptor changes when it splits (split.go): its span shrinks
// and its Generation goes up; the right-hand range it splits off starts
// with the same Generation. Of two descriptors that overlap, the one with
// the higher Generation is the newer (the other is an ancestor), which is
// how a range cache (Router) and a node decide which to believe.
type Descriptor struct {
	ID storage.RangeID
	// Generation counts the splits the range's span went through.
	Generation uint64
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
	end := "∞"
	if d.End != nil {
		end = fmt.Sprintf("%q", d.End)
	}
	return fmt.Sprintf("r%d.g%d[%q,%s)@%v", d.ID, d.Generation, d.Start, end, d.Replicas)
}

// uninitialized is the span of a replica that has no state yet (created by
// a message, waiting for a snapshot): it holds no key.
func uninitialized(id storage.RangeID) Descriptor {
	return Descriptor{ID: id, Start: []byte{}, End: []byte{}}
}

// Empty reports whether d holds no key (an uninitialized replica's span).
func (d Descriptor) Empty() bool { return d.End != nil && bytes.Compare(d.Start, d.End) >= 0 }

// Overlaps reports whether d and o share a key.
func (d Descriptor) Overlaps(o Descriptor) bool {
	if d.Empty() || o.Empty() {
		return false
	}
	return (o.End == nil || bytes.Compare(d.Start, o.End) < 0) && (d.End == nil || bytes.Compare(o.Start, d.End) < 0)
}

// Encoding: id, generation (uvarints), start, end flag (1) and end,
// replica count and replicas (uvarints).
func (d Descriptor) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(d.ID))
	b = binary.AppendUvarint(b, d.Generation)
	b = appendBytes(b, d.Start)
	b = appendEnd(b, d.End)
	b = binary.AppendUvarint(b, uint64(len(d.Replicas)))
	for _, n := range d.Replicas {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return b
}

func readDescriptor(b []byte) (Descriptor, []byte, error) {
	var d Descriptor
	id, w := binary.Uvarint(b)
	if w <= 0 {
		return d, nil, errMalformed
	}
	d.ID = storage.RangeID(id)
	b = b[w:]
	if d.Generation, w = binary.Uvarint(b); w <= 0 {
		return d, nil, errMalformed
	}
	var err error
	if d.Start, b, err = readBytes(b[w:]); err != nil {
		return d, nil, err
	}
	d.Start = append([]byte{}, d.Start...) // never nil: the empty key
	if d.End, b, err = readEnd(b); err != nil {
		return d, nil, err
	}
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return d, nil, errMalformed
	}
	b = b[w:]
	for range n {
		node, w := binary.Uvarint(b)
		if w <= 0 {
			return d, nil, errMalformed
		}
		d.Replicas = append(d.Replicas, kernel.NodeID(node))
		b = b[w:]
	}
	return d, b, nil
}

func decodeDescriptor(b []byte) (Descriptor, error) {
	d, rest, err := readDescriptor(b)
	if err == nil && len(rest) != 0 {
		err = errMalformed
	}
	return d, err
}

// Layout is the ranges of a cluster at bootstrap: contiguous, sorted,
// covering every key exactly once. Splits (split.go) divide them later;
// the layout stays what the cluster started with (the Router's first
// guess, and the placement of the first replicas).
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
