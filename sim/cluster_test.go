package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/node"
)

// The cluster scenario runs the cluster management orbit serve runs
// (package cluster: the node directory and its gossip, joins, removals,
// and each node's rebalancer) under the swarm faults, with the split
// scenario's clients and automatic splits (by size, and in half the seeds
// by load) and merges:
//
//   - four nodes start the cluster; a fifth starts empty and an operator
//     has it join at a random moment of the faults (through one of the
//     running nodes' cluster.Manager, as POST /join does; a crash of that
//     node cuts the request short, and the operator asks another);
//   - in half the seeds one of the first four dies for good (its process
//     comes back holding nothing, silent): the rebalancers must replace
//     its replicas once it has been silent for DeadAfter;
//   - in half the seeds the operator removes another of them once the
//     fifth has joined (POST /remove's cluster.Manager.Remove).
//
// Checked by Porcupine, election and lease safety, and after quiescence:
// the rebalancers have gone quiet (no change for three of their rounds:
// no replica or leadership swinging back and forth); every range holds
// exactly three replicas, all on live nodes still in the cluster; the joined node holds some; every live node's directory
// knows the joined and the removed node; the ranges tile the keyspace and
// their replicas agree (as in the split scenarios).
var clusterScenario = Scenario{
	Name:         "cluster",
	Setup:        func(s *Sim) Workload { return newManagedCluster(s) },
	FaultTime:    8 * time.Second,
	ProgressTime: kvScenario.ProgressTime,
	QuiesceTime:  kvScenario.QuiesceTime,
}

// TestSimCluster runs the cluster scenario: seeds 1–20 by default, or
// those named.
func TestSimCluster(t *testing.T) {
	runScenario(t, clusterScenario, seedRange(1, 20))
}

const (
	// operatorNode sends the joins and removals; never a fault target.
	operatorNode kernel.NodeID = 203
	// joiner is the node that joins during the faults.
	joiner kernel.NodeID = 5
	// clusterDeadAfter and clusterRebalanceInterval are the scenario's
	// cluster.Options: short, so that a replacement fits in a run.
	clusterDeadAfter         = 6 * time.Second
	clusterRebalanceInterval = time.Second
)

type managedCluster struct {
	*kvWorkload
	*serverSet
	initial  []kernel.NodeID
	managers map[kernel.NodeID]*cluster.Manager
	// dead is the node that died for good (0: none); removed the node the
	// operator removes (0: none). joined and removedDone say the
	// operator's requests succeeded.
	dead, removed       kernel.NodeID
	joined, removedDone bool
	// deadAt is when the dead node died (-1: not yet).
	deadAt             time.Duration
	requests, failures int
	splitQPS           int
	// lastSteps is the managers' step count quietFor last saw, changed
	// at quietSince.
	lastSteps  int64
	quietSince time.Duration
}

func newManagedCluster(s *Sim) *managedCluster {
	initial := []kernel.NodeID{1, 2, 3, 4}
	servers := append(slices.Clone(initial), joiner)
	layout, err := consensus.NewLayout([][]byte{[]byte("h"), []byte("p")}, initial, 3)
	if err != nil {
		panic(err)
	}
	c := &managedCluster{serverSet: emptyServerSet(s, servers, layout), initial: initial, managers: map[kernel.NodeID]*cluster.Manager{}, deadAt: -1}
	rng := s.Rand()
	if rng.IntN(2) == 0 {
		c.dead = initial[rng.IntN(len(initial))]
	}
	if rng.IntN(2) == 0 {
		for c.removed == 0 || c.removed == c.dead {
			c.removed = initial[rng.IntN(len(initial))]
		}
	}
	// Half the seeds also split ranges by load (consensus.Options.SplitQPS).
	if rng.IntN(2) == 0 {
		c.splitQPS = 20
	}
	deathAt := time.Duration(rng.Int64N(int64(3 * time.Second)))
	joinAt := time.Duration(rng.Int64N(int64(4 * time.Second)))
	for _, id := range servers {
		s.AddNode(id, func(rt kernel.Runtime) { c.boot(rt) })
	}
	s.AddNode(operatorNode, func(rt kernel.Runtime) {
		rt.Go("operator", func(ctx context.Context) { c.operate(ctx, rt, joinAt, deathAt) })
	})
	c.kvWorkload = newKVWorkload(s, servers, 6, func(rt kernel.Runtime, i int) kvCaller {
		return kvCallerOf(consensus.NewClient(consensus.NewRouter(rt, layout), "kv"))
	})
	c.keys = alphabetKeys()
	c.opTimeout = time.Second
	return c
}

// boot starts a server as orbit serve does (serverSet.bootNode): its
// engine, its cluster record (a new one on a fresh disk: the first four
// start the cluster, the fifth joins it), its consensus store, and its
// cluster manager. The node that died for good boots into nothing.
func (c *managedCluster) boot(rt kernel.Runtime) {
	id := rt.NodeID()
	delete(c.managers, id)
	if id == c.dead && c.deadAt >= 0 {
		return
	}
	nd := c.bootNode(rt, c.openEngine(rt), c.initial, node.Options{
		Consensus: consensus.Options{SplitBytes: 24, MergeBytes: 6, SplitQPS: c.splitQPS},
		Cluster:   cluster.Options{RebalanceInterval: clusterRebalanceInterval, DeadAfter: clusterDeadAfter},
	})
	c.managers[id] = nd.Cluster
}

// operate is the operator: it kills the doomed node at deathAt, has the
// fifth node join at joinAt, and, once it has, removes the node to
// remove; it asks again until each request succeeds, faults or not.
func (c *managedCluster) operate(ctx context.Context, rt kernel.Runtime, joinAt, deathAt time.Duration) {
	if c.dead != 0 {
		rt.Go("reaper", func(ctx context.Context) {
			if rt.Sleep(ctx, deathAt) != nil {
				return
			}
			c.deadAt = c.sim.Elapsed()
			c.sim.logf(0, "operator: node %d dies for good", c.dead)
			c.sim.Node(c.dead).Crash()
		})
	}
	if rt.Sleep(ctx, joinAt) != nil {
		return
	}
	c.joined = c.request(ctx, rt, fmt.Sprintf("join node %d", joiner), func(ctx context.Context, m *cluster.Manager) error {
		_, err := m.Join(ctx, joiner, fmt.Sprintf("n%d", joiner))
		return err
	})
	if c.removed == 0 || !c.joined {
		return
	}
	if rt.Sleep(ctx, time.Duration(rt.Rand().Int64N(int64(2*time.Second)))) != nil {
		return
	}
	c.removedDone = c.request(ctx, rt, fmt.Sprintf("remove node %d", c.removed), func(ctx context.Context, m *cluster.Manager) error {
		_, err := m.Remove(ctx, c.removed)
		return err
	})
}

// requestTimeout bounds one attempt at a join or a removal.
const requestTimeout = 5 * time.Second

// request runs fn on a running server's manager, as an HTTP request to
// that node would, until an attempt succeeds (or ctx ends). An attempt
// whose node crashes dies with it, as the HTTP request would.
func (c *managedCluster) request(ctx context.Context, rt kernel.Runtime, what string, fn func(context.Context, *cluster.Manager) error) bool {
	for {
		var up []kernel.NodeID
		for _, id := range c.nodes {
			if c.managers[id] != nil && c.sim.Node(id).Up() && id != c.removed {
				up = append(up, id)
			}
		}
		if len(up) > 0 {
			via := up[rt.Rand().IntN(len(up))]
			c.requests++
			var done, ok bool
			var failure error
			c.sim.Node(via).Runtime().Go("operator-request", func(nctx context.Context) {
				actx, cancel := c.sim.Node(via).Runtime().WithTimeout(nctx, requestTimeout)
				defer cancel()
				failure = fn(actx, c.managers[via])
				done, ok = true, failure == nil
			})
			deadline := c.sim.Elapsed() + requestTimeout + 100*time.Millisecond
			for !done && c.sim.Elapsed() < deadline {
				if rt.Sleep(ctx, 20*time.Millisecond) != nil {
					return false
				}
			}
			if ok {
				c.sim.logf(0, "operator: %s via node %d: done", what, via)
				return true
			}
			c.failures++
			c.sim.logf(0, "operator: %s via node %d: %v (done %v)", what, via, failure, done)
		}
		if rt.Sleep(ctx, 200*time.Millisecond) != nil {
			return false
		}
	}
}

func (c *managedCluster) Healed() {
	c.kvWorkload.Healed()
	c.faultsOver = true
}

// Status tells who waits for what when progress fails.
func (c *managedCluster) Status() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clients last served at %v (healed at %v); dead node %d, removed node %d; joined %v, removal done %v; %d requests, %d failed\n",
		c.served, c.healed, c.dead, c.removed, c.joined, c.removedDone, c.requests, c.failures)
	return b.String() + c.rangeLines()
}

// Settled: the ranges settled (as in the split scenarios) and placed as
// the check wants them.
func (c *managedCluster) Settled() bool {
	return c.quietFor() >= settledQuiet && c.checkPlacement() == nil && c.rangesSettled()
}

// settledQuiet is how long the rebalancers must have changed nothing for
// the cluster to count as settled: a few of their rounds.
const settledQuiet = 3 * clusterRebalanceInterval

// quietFor is how long no manager has changed anything (the sum of their
// step counts unchanged).
func (c *managedCluster) quietFor() time.Duration {
	var steps int64
	for _, id := range c.nodes {
		if m := c.managers[id]; m != nil && c.sim.Node(id).Up() {
			steps += m.Steps()
		}
	}
	now := c.sim.Elapsed()
	if steps != c.lastSteps {
		c.lastSteps, c.quietSince = steps, now
	}
	return now - c.quietSince
}

// Check adds election and lease safety, placement, the directories'
// agreement, and the ranges' agreement and convergence to
// linearizability.
func (c *managedCluster) Check(vizPath string) error {
	if c.safetyError != nil {
		return c.safetyError
	}
	if err := c.kvWorkload.Check(vizPath); err != nil {
		return err
	}
	if err := c.checkPlacement(); err != nil {
		return fmt.Errorf("%w\n%s", err, c.Status())
	}
	if q := c.quietFor(); q < settledQuiet {
		return fmt.Errorf("placement: the rebalancers still move replicas or leaderships at %v (last change %v ago, want %v of quiet)\n%s",
			c.sim.Elapsed(), q, settledQuiet, c.Status())
	}
	return c.checkRanges()
}

// checkPlacement: the operator's requests succeeded; every range has
// three replicas, on live nodes still in the cluster; the joined node
// holds some; every live node's directory (the removed node's excepted:
// nobody gossips to it) knows the joined node and the removed one's
// removal.
func (c *managedCluster) checkPlacement() error {
	if !c.joined || (c.removed != 0 && !c.removedDone) {
		return fmt.Errorf("placement: the operator's requests did not all succeed (joined %v, removal of node %d done %v)", c.joined, c.removed, c.removedDone)
	}
	held := 0
	for _, d := range c.newestRanges() {
		if len(d.Replicas) != 3 {
			return fmt.Errorf("placement: range %v has %d replicas, want 3", d, len(d.Replicas))
		}
		for _, n := range d.Replicas {
			switch n {
			case c.dead:
				return fmt.Errorf("placement: range %v keeps a replica on node %d, dead for good", d, n)
			case c.removed:
				return fmt.Errorf("placement: range %v keeps a replica on node %d, removed", d, n)
			case joiner:
				held++
			}
		}
	}
	if held == 0 {
		return fmt.Errorf("placement: node %d joined but holds no replica", joiner)
	}
	for _, id := range c.nodes {
		m := c.managers[id]
		if m == nil || !c.sim.Node(id).Up() || id == c.removed {
			continue // a removed node hears no more gossip
		}
		rec := m.Record()
		if e, ok := rec.Nodes[joiner]; !ok || e.Removed {
			return fmt.Errorf("directory: node %d does not know node %d joined: %+v", id, joiner, rec.Nodes)
		}
		if c.removed != 0 && !rec.Nodes[c.removed].Removed {
			return fmt.Errorf("directory: node %d does not know node %d was removed: %+v", id, c.removed, rec.Nodes)
		}
	}
	return nil
}
