package cluster

import (
	"testing"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// testView is a view of one range d led by node 1, on nodes 1–5 where
// the nodes in dead are dead, those in silent neither dead nor heard from
// lately, and replicas counts what each node holds.
func testView(d consensus.Descriptor, replicas map[kernel.NodeID]int, dead, silent []kernel.NodeID) *view {
	in := func(ns []kernel.NodeID) func(kernel.NodeID) bool {
		return func(n kernel.NodeID) bool {
			for _, m := range ns {
				if m == n {
					return true
				}
			}
			return false
		}
	}
	isDead, isSilent := in(dead), in(silent)
	return &view{ranges: []consensus.Descriptor{d}, leader: map[storage.RangeID]kernel.NodeID{d.ID: 1},
		replicas: replicas, leaders: map[kernel.NodeID]int{}, active: []kernel.NodeID{1, 2, 3, 4, 5},
		removed: map[kernel.NodeID]bool{}, want: 3, extraBefore: map[storage.RangeID]string{},
		weight: map[kernel.NodeID]float64{}, rangeLoad: map[storage.RangeID]float64{},
		dead:       isDead,
		alive:      func(n kernel.NodeID) bool { return !isDead(n) && !isSilent(n) },
		slowLeader: func(storage.RangeID, kernel.NodeID) bool { return false }}
}

// TestPlacementRules checks the repair and spread rules step by step.
func TestPlacementRules(t *testing.T) {
	r := func(nodes ...kernel.NodeID) consensus.Descriptor {
		return consensus.Descriptor{ID: 7, Replicas: nodes}
	}
	even := map[kernel.NodeID]int{1: 3, 2: 3, 3: 3, 4: 3, 5: 3}
	cases := []struct {
		name         string
		d            consensus.Descriptor
		replicas     map[kernel.NodeID]int
		dead, silent []kernel.NodeID
		removed      []kernel.NodeID
		extraBefore  bool
		want         step
		ok           bool
	}{
		{name: "a dead member is replaced on the emptiest live spare", d: r(1, 2, 3), dead: []kernel.NodeID{3},
			replicas: map[kernel.NodeID]int{1: 3, 2: 3, 3: 3, 4: 2, 5: 1}, want: step{add: 5, remove: 3}, ok: true},
		{name: "never on a node not heard from lately", d: r(1, 2, 3), dead: []kernel.NodeID{3}, silent: []kernel.NodeID{5},
			replicas: map[kernel.NodeID]int{1: 3, 2: 3, 3: 3, 4: 2, 5: 0}, want: step{add: 4, remove: 3}, ok: true},
		{name: "a dead extra member just goes", d: r(1, 2, 3, 4), dead: []kernel.NodeID{4}, replicas: even,
			want: step{remove: 4}, ok: true},
		{name: "a dead member stays when no node can take its place", d: r(1, 2, 3), dead: []kernel.NodeID{3}, silent: []kernel.NodeID{4, 5},
			replicas: even},
		{name: "a removed member goes even without a spare", d: r(1, 2, 3), removed: []kernel.NodeID{3}, silent: []kernel.NodeID{4, 5},
			replicas: even, want: step{remove: 3}, ok: true},
		{name: "a range short of replicas gets one", d: r(1, 2), replicas: map[kernel.NodeID]int{1: 3, 2: 3, 3: 3, 4: 1, 5: 2},
			want: step{add: 4}, ok: true},
		{name: "an extra replica seen once may be a move in progress", d: r(1, 2, 3, 4), replicas: even},
		{name: "an extra replica seen twice goes, never the leader's", d: r(1, 2, 3, 4), extraBefore: true,
			replicas: map[kernel.NodeID]int{1: 9, 2: 3, 3: 5, 4: 3, 5: 3}, want: step{remove: 3}, ok: true},
	}
	for _, c := range cases {
		v := testView(c.d, c.replicas, c.dead, c.silent)
		for _, n := range c.removed {
			v.removed[n] = true
		}
		if c.extraBefore {
			v.extraBefore[c.d.ID] = c.d.String()
		}
		got, ok := v.repair(c.d)
		if ok != c.ok || got.add != c.want.add || got.remove != c.want.remove || got.transfer != 0 {
			t.Errorf("%s: repair = %+v %v, want %+v %v", c.name, got, ok, c.want, c.ok)
		}
	}

	// Spread: three full nodes and an empty one move a replica there;
	// 3,3,3,2 does not.
	v := testView(r(1, 2, 3), map[kernel.NodeID]int{1: 3, 2: 3, 3: 3, 4: 0}, nil, []kernel.NodeID{5})
	if s, ok := v.spreadReplicas(r(1, 2, 3)); !ok || s.add != 4 || s.remove != 3 {
		t.Errorf("spreadReplicas = %+v %v, want a move from node 3 to node 4", s, ok)
	}
	v.replicas[4] = 2
	if s, ok := v.spreadReplicas(r(1, 2, 3)); ok {
		t.Errorf("spreadReplicas = %+v on a spread within one", s)
	}

	// Leaderships: node 1 leads four more than node 2, but node 2 would
	// lead slowly; node 3 takes it.
	weigh := func(v *view, leaders map[kernel.NodeID]int) {
		for n, c := range leaders {
			v.weight[n] = float64(c)
		}
	}
	v = testView(r(1, 2, 3), even, nil, nil)
	weigh(v, map[kernel.NodeID]int{1: 4, 2: 0, 3: 0, 4: 1, 5: 1})
	v.slowLeader = func(_ storage.RangeID, n kernel.NodeID) bool { return n == 2 }
	if s, ok := v.spreadLeaders(r(1, 2, 3)); !ok || s.transfer != 3 {
		t.Errorf("spreadLeaders = %+v %v, want node 3 (node 2 is slow)", s, ok)
	}
	// Never toward a node at the mean: 3,2,2,2,1 (mean 2) moves nothing
	// off node 1 within range 7, whose other voters hold 2 each.
	weigh(v, map[kernel.NodeID]int{1: 3, 2: 2, 3: 2, 4: 2, 5: 1})
	v.slowLeader = func(storage.RangeID, kernel.NodeID) bool { return false }
	if s, ok := v.spreadLeaders(r(1, 2, 3)); ok {
		t.Errorf("spreadLeaders = %+v toward a node at the mean", s)
	}

	// Load: three nodes leading two ranges each, node 1's serving 1,000
	// requests a second in all, 1,000 of them range 8's. Node 1 weighs 6
	// (2 + 1000/250), the others 2: it hands a cold range (weight 1)
	// over, but not the hot one (weight 5: the move would only make the
	// other node the heavy one).
	v = testView(r(1, 2, 3), even, nil, nil)
	v.active = []kernel.NodeID{1, 2, 3}
	weigh(v, map[kernel.NodeID]int{1: 6, 2: 2, 3: 2})
	v.rangeLoad = map[storage.RangeID]float64{8: 1000}
	if s, ok := v.spreadLeaders(r(1, 2, 3)); !ok || s.transfer != 2 {
		t.Errorf("spreadLeaders of a cold range on a hot node = %+v %v, want node 2", s, ok)
	}
	hot := consensus.Descriptor{ID: 8, Replicas: []kernel.NodeID{1, 2, 3}}
	v.leader[8] = 1
	if s, ok := v.spreadLeaders(hot); ok {
		t.Errorf("spreadLeaders of the hot range = %+v, want none", s)
	}
}

// TestOneReplicaMoveAtATime: of the ranges that could move a replica,
// the rebalancer picks one — between the nodes furthest apart, the lowest
// range ID first — from the walk alone (not from which node it runs on),
// so that every rebalancer whose walk saw the same picks the same, and
// only that range's leader takes it.
func TestOneReplicaMoveAtATime(t *testing.T) {
	d := func(id storage.RangeID, nodes ...kernel.NodeID) consensus.Descriptor {
		return consensus.Descriptor{ID: id, Replicas: nodes}
	}
	ranges := []consensus.Descriptor{d(3, 1, 2, 5), d(4, 1, 2, 3), d(9, 2, 3, 5), d(12, 1, 3, 5)}
	v := testView(ranges[0], map[kernel.NodeID]int{1: 6, 2: 6, 3: 5, 4: 0, 5: 7}, nil, nil)
	v.ranges = ranges
	s, ok := v.chosenMove(v.spreadReplicas)
	if !ok || s.d.ID != 3 || s.remove != 5 || s.add != 4 {
		t.Fatalf("chose %+v %v; want range 3 from node 5 (the fullest) to node 4", s, ok)
	}
	// Spread within one: nothing to choose.
	v.replicas = map[kernel.NodeID]int{1: 3, 2: 3, 3: 3, 4: 2, 5: 3}
	if s, ok := v.chosenMove(v.spreadReplicas); ok {
		t.Fatalf("chose %+v on an even spread", s)
	}
}
