package consensus

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/sim"
	"github.com/orbitkernel/orbit/storage"
)

// drainWorld is three simulated nodes, three ranges, each node counting
// the leaderships it wins.
type drainWorld struct {
	sim    *sim.Sim
	stores map[kernel.NodeID]*Store
	wins   map[kernel.NodeID]int
}

func newDrainWorld(t *testing.T, seed uint64) *drainWorld {
	w := &drainWorld{sim: sim.New(seed), stores: map[kernel.NodeID]*Store{}, wins: map[kernel.NodeID]int{}}
	t.Cleanup(w.sim.Close)
	w.sim.Net().LatencyMin, w.sim.Net().LatencyMean = time.Millisecond, 0
	nodes := []kernel.NodeID{1, 2, 3}
	layout, err := NewLayout([][]byte{[]byte("h"), []byte("p")}, nodes, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range nodes {
		w.sim.AddNode(id, func(rt kernel.Runtime) {
			st, err := Open(rt, openNodeEngine(rt), layout, Options{Router: NewRouter(rt, layout),
				BecameLeader: func(storage.RangeID, uint64) { w.wins[rt.NodeID()]++ }})
			if err != nil {
				kernel.Crash("open consensus: %v", err)
			}
			w.stores[rt.NodeID()] = st
		})
	}
	return w
}

// drain starts a Drain (bounded by 3 s, as orbit serve's) on each of
// nodes at the same moment and runs the world until every one returned;
// it returns how long each took.
func (w *drainWorld) drain(t *testing.T, nodes ...kernel.NodeID) map[kernel.NodeID]time.Duration {
	took := map[kernel.NodeID]time.Duration{}
	start := w.sim.Elapsed()
	for _, id := range nodes {
		rt := w.sim.Node(id).Runtime()
		rt.Go("drain", func(ctx context.Context) {
			dctx, cancel := rt.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if err := w.stores[id].Drain(dctx); err != nil {
				t.Errorf("n%d: Drain: %v", id, err)
			}
			took[id] = w.sim.Elapsed() - start
		})
	}
	for len(took) < len(nodes) {
		if err := w.sim.RunFor(10 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if w.sim.Elapsed()-start > 4*time.Second {
			t.Fatalf("drains of %v still running after 4 s", nodes)
		}
	}
	return took
}

func (w *drainWorld) leaders() map[storage.RangeID]kernel.NodeID {
	out := map[storage.RangeID]kernel.NodeID{}
	for node, st := range w.stores {
		for id, r := range st.replicas {
			if r.rn.BasicStatus().RaftState == raft.StateLeader {
				out[id] = node
			}
		}
	}
	return out
}

// TestNodesDrainedTogetherHandNothingToEachOther: a draining node takes
// no leadership through a hand-over and tells its peers it is draining,
// so nodes stopped together do not hand their ranges back and forth for
// as long as their drains are allowed (two nodes at a Jepsen run's end
// handed ranges to each other some 70 times each in 3 s). Two nodes
// drained at once hand everything to the third; the third drained too
// (the whole cluster stopped) returns at once, leading what it led.
func TestNodesDrainedTogetherHandNothingToEachOther(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		w := newDrainWorld(t, seed)
		if err := w.sim.RunFor(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		before := w.leaders()
		if len(before) != 3 {
			t.Fatalf("seed %d: leaders %v after 2 s, want one for each of 3 ranges", seed, before)
		}
		clear(w.wins)
		took := w.drain(t, 1, 2)
		after := w.leaders()
		for id, node := range after {
			if node != 3 {
				t.Errorf("seed %d: range %d led by n%d after n1 and n2 drained, want n3 (before: %v)", seed, id, node, before)
			}
		}
		moved := 0
		for _, node := range before {
			if node != 3 {
				moved++
			}
		}
		if w.wins[3] != moved || w.wins[1]+w.wins[2] != 0 {
			t.Errorf("seed %d: leaderships won during the drains %v, want n3's alone, one for each of the %d ranges that moved (before: %v)", seed, w.wins, moved, before)
		}
		for id, d := range took {
			if d > time.Second {
				t.Errorf("seed %d: n%d's drain took %v", seed, id, d)
			}
		}

		clear(w.wins)
		took = w.drain(t, 3)
		if d := took[3]; d > 100*time.Millisecond {
			t.Errorf("seed %d: n3, draining with both peers draining, took %v, want it back at once", seed, d)
		}
		if got := w.leaders(); len(w.wins) != 0 || !slices.Equal(sortedLeaders(got), sortedLeaders(after)) {
			t.Errorf("seed %d: the last node's drain moved leadership: wins %v, leaders %v, before %v", seed, w.wins, got, after)
		}
	}
}

func sortedLeaders(m map[storage.RangeID]kernel.NodeID) []kernel.NodeID {
	var out []kernel.NodeID
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}
