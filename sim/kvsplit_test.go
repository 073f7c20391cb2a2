package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// The split scenario: the replicated key-value scenario's clients and
// faults, while a splitter divides the ranges again and again at keys
// among the clients' (and, in half the seeds, the ranges split by
// themselves as they grow), merges neighbours back together and moves
// ranges' leaderships (and leases), so writes race the split and merge
// triggers and the hand-overs, and clients route by range caches that
// splits and merges keep making stale. A node cut off through a split
// or a merge catches up through the log or a snapshot. On five
// nodes (kvsplit5), a mover moves replicas of whatever ranges there are
// meanwhile, so that a node's replicas of two neighbouring ranges come and
// go independently.
//
// Checked by Porcupine and election and lease safety as in the kv
// scenario, and after quiescence: every range's replicas agree on its
// descriptor and hold the same data, and the newest descriptors tile the
// keyspace: every key is served by exactly one range.
var kvSplitScenario = Scenario{
	Name:         "kvsplit",
	Setup:        func(s *Sim) Workload { return newKVSplitCluster(s, []kernel.NodeID{1, 2, 3}) },
	FaultTime:    kvScenario.FaultTime,
	ProgressTime: kvScenario.ProgressTime,
	QuiesceTime:  kvScenario.QuiesceTime,
}

var kvSplit5Scenario = Scenario{
	Name:         "kvsplit5",
	Setup:        func(s *Sim) Workload { return newKVSplitCluster(s, []kernel.NodeID{1, 2, 3, 4, 5}) },
	FaultTime:    kvScenario.FaultTime,
	ProgressTime: kvScenario.ProgressTime,
	QuiesceTime:  kvScenario.QuiesceTime,
}

// TestSimSplits runs the split scenarios: seeds 1–20 of each by default,
// or those named.
func TestSimSplits(t *testing.T) {
	runScenario(t, kvSplitScenario, seedRange(1, 20))
	runScenario(t, kvSplit5Scenario, seedRange(1, 20))
}

type kvSplitCluster struct {
	*kvWorkload
	*serverSet
	splits, splitFailures       int
	merges, mergeFailures       int
	transfers, transferFailures int
	moves, moveFailures         int
}

// splitterNode runs the splits; never a fault target.
const splitterNode kernel.NodeID = 202

func newKVSplitCluster(s *Sim, servers []kernel.NodeID) *kvSplitCluster {
	layout, err := consensus.NewLayout([][]byte{[]byte("h"), []byte("p")}, servers, 3)
	if err != nil {
		panic(err)
	}
	c := &kvSplitCluster{serverSet: emptyServerSet(s, servers, layout)}
	// In half the seeds the ranges also split by themselves, past a few
	// of the clients' keys (Options.SplitBytes), and merge back when
	// small and cold (Options.MergeBytes).
	autoSplit := s.Rand().IntN(2) == 0
	for _, id := range servers {
		s.AddNode(id, func(rt kernel.Runtime) {
			// A router, as orbit serve gives its store: the merger task
			// finishes merges and collects replicas of merged ranges.
			opts := consensus.Options{Router: consensus.NewRouter(rt, layout)}
			if autoSplit {
				opts.SplitBytes, opts.MergeBytes = 24, 6
			}
			c.openStore(rt, c.openEngine(rt), opts)
		})
	}
	s.AddNode(splitterNode, func(rt kernel.Runtime) {
		rt.Go("splitter", func(ctx context.Context) { c.split(ctx, rt) })
		if len(servers) > 3 {
			rt.Go("mover", func(ctx context.Context) { c.move(ctx, rt) })
		}
	})
	// Clients start over now and then (a new process: a new identity and
	// a range cache that knows only the layout), so requests routed by a
	// cache that splits made stale keep coming, reads included (a read
	// never teaches a cache: only a refusal does).
	restarts := s.Rand().IntN(2) == 0
	c.kvWorkload = newKVWorkload(s, servers, 6, func(rt kernel.Runtime, i int) kvCaller {
		call := kvCallerOf(consensus.NewClient(consensus.NewRouter(rt, layout), "kv"))
		rng := rt.Rand()
		incarnation := 0
		return func(ctx context.Context, in KVInput) (KVOutput, error) {
			if restarts && rng.IntN(8) == 0 {
				// A name of its own: a client's name is its RPC reply port.
				incarnation++
				call = kvCallerOf(consensus.NewClient(consensus.NewRouter(rt, layout), fmt.Sprintf("kv-%d", incarnation)))
			}
			return call(ctx, in)
		}
	})
	c.keys = alphabetKeys()
	c.opTimeout = time.Second
	if s.Rand().IntN(2) == 0 {
		c.crashClients(500 * time.Millisecond)
	}
	return c
}

// split splits ranges while the faults last, at a key drawn among the
// clients' (or just after one), every few hundred milliseconds; one time
// in three it merges a range drawn among those there are into its left
// neighbour instead, and one time in six hands the leadership (and lease)
// of a random key's range to another of its replicas.
func (c *kvSplitCluster) split(ctx context.Context, rt kernel.Runtime) {
	cl := consensus.NewClient(consensus.NewRouter(rt, c.layout), "splitter")
	rng := rt.Rand()
	for !c.faultsOver {
		if rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(100*time.Millisecond))) != nil {
			return
		}
		switch rng.IntN(6) {
		case 0, 1:
			c.merge(ctx, rt, cl)
			continue
		case 2:
			c.transfer(ctx, rt, cl)
			continue
		}
		key := []byte(c.keys[rng.IntN(len(c.keys))])
		if rng.IntN(2) == 0 {
			key = append(key, '5')
		}
		actx, cancel := rt.WithTimeout(ctx, 2*time.Second)
		_, err := cl.Split(actx, key)
		cancel()
		if err != nil {
			c.splitFailures++
		} else {
			c.splits++
		}
	}
}

// transfer hands the leadership of the range holding a random key to
// another of its members.
func (c *kvSplitCluster) transfer(ctx context.Context, rt kernel.Runtime, cl *consensus.Client) {
	if transferLease(ctx, rt, cl, []byte(c.keys[rt.Rand().IntN(len(c.keys))])) != nil {
		c.transferFailures++
		return
	}
	c.transfers++
}

// transferLease hands the leadership (and with it the lease) of the range
// holding key to one of its members drawn at random, within 2 s.
func transferLease(ctx context.Context, rt kernel.Runtime, cl *consensus.Client, key []byte) error {
	actx, cancel := rt.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	members, err := cl.Members(actx, key)
	if err != nil || len(members) == 0 {
		return err
	}
	return cl.TransferLeadership(actx, key, members[rt.Rand().IntN(len(members))])
}

// merge merges a range drawn among those there are (the first excepted)
// into its left neighbour.
func (c *kvSplitCluster) merge(ctx context.Context, rt kernel.Runtime, cl *consensus.Client) {
	if mergeRandomRange(ctx, rt, cl) != nil {
		c.mergeFailures++
		return
	}
	c.merges++
}

// mergeRandomRange merges a range drawn among those there are (the first
// excepted) into its left neighbour, within 2 s.
func mergeRandomRange(ctx context.Context, rt kernel.Runtime, cl *consensus.Client) error {
	actx, cancel := rt.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ranges, err := cl.Ranges(actx)
	if err != nil {
		return err
	}
	if len(ranges) < 2 {
		return errors.New("one range: nothing to merge")
	}
	return cl.Merge(actx, ranges[1+rt.Rand().IntN(len(ranges)-1)].Start)
}

// move moves a replica of the range holding a random key to a node
// without one (add first, then remove), again and again while the faults
// last, and finishes the move it is in after.
func (c *kvSplitCluster) move(ctx context.Context, rt kernel.Runtime) {
	cl := consensus.NewClient(consensus.NewRouter(rt, c.layout), "mover")
	rng := rt.Rand()
	attempt := func(f func(ctx context.Context) error) error {
		actx, cancel := rt.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return f(actx)
	}
	for !c.faultsOver {
		if rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(150*time.Millisecond))) != nil {
			return
		}
		key := []byte(c.keys[rng.IntN(len(c.keys))])
		var members []kernel.NodeID
		if attempt(func(ctx context.Context) (err error) { members, err = cl.Members(ctx, key); return err }) != nil {
			c.moveFailures++
			continue
		}
		var spare []kernel.NodeID
		for _, n := range c.nodes {
			if !slices.Contains(members, n) {
				spare = append(spare, n)
			}
		}
		if len(spare) == 0 || len(members) == 0 {
			continue
		}
		from, to := members[rng.IntN(len(members))], spare[rng.IntN(len(spare))]
		// Once added, the move is finished even after the heal: a range
		// left with a fourth replica is fine, but one whose removal was
		// interrupted is checked as it stands.
		if attempt(func(ctx context.Context) error { return cl.AddReplica(ctx, key, to) }) != nil {
			c.moveFailures++
			continue
		}
		for attempt(func(ctx context.Context) error { return cl.RemoveReplica(ctx, key, from) }) != nil {
			if ctx.Err() != nil {
				return
			}
		}
		c.moves++
	}
}

func (c *kvSplitCluster) Healed() {
	c.kvWorkload.Healed()
	c.faultsOver = true
}

// Status tells who waits for what when progress fails.
func (c *kvSplitCluster) Status() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clients last served at %v (healed at %v); %d splits, %d failed; %d merges, %d failed; %d transfers, %d failed; %d moves, %d failed\n",
		c.served, c.healed, c.splits, c.splitFailures, c.merges, c.mergeFailures, c.transfers, c.transferFailures, c.moves, c.moveFailures)
	return b.String() + c.rangeLines()
}

// Settled reports whether no merge is under way and the ranges agree
// (their check passes).
func (c *kvSplitCluster) Settled() bool { return c.rangesSettled() }

// Check adds election and lease safety, and the ranges' agreement and
// convergence, to linearizability.
func (c *kvSplitCluster) Check(vizPath string) error {
	if c.safetyError != nil {
		return c.safetyError
	}
	if err := c.kvWorkload.Check(vizPath); err != nil {
		return err
	}
	return c.checkRanges()
}

// newestRanges is, per range ID any up node holds, the descriptor of the
// highest generation among them, in key order.
func (c *serverSet) newestRanges() []consensus.Descriptor {
	newest := map[storage.RangeID]consensus.Descriptor{}
	for _, id := range c.nodes {
		st := c.stores[id]
		if st == nil || !c.sim.Node(id).Up() || c.storeInc[id] != c.sim.Node(id).inc {
			continue
		}
		for _, d := range st.Descriptors() {
			if cur, ok := newest[d.ID]; !ok || d.Generation > cur.Generation {
				newest[d.ID] = d
			}
		}
	}
	var out []consensus.Descriptor
	for _, d := range newest {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b consensus.Descriptor) int { return bytes.Compare(a.Start, b.Start) })
	return out
}

// rangeLines is a line per range (the newest descriptors) with each
// node's applied index, for a workload's Status.
func (c *serverSet) rangeLines() string {
	var b strings.Builder
	for _, d := range c.newestRanges() {
		fmt.Fprintf(&b, "%v: %s\n", d, c.appliedIndexes(d))
	}
	return b.String()
}

// rangesSettled reports whether no up node is in the middle of a merge
// and the ranges check passes: automatic merges of ranges gone cold go on
// after the clients stop.
func (c *serverSet) rangesSettled() bool {
	// Polled after every event: look every 50 ms (the check hashes every
	// replica's data).
	now := c.sim.Elapsed()
	if now < c.nextSettleCheck {
		return false
	}
	c.nextSettleCheck = now + 50*time.Millisecond
	for _, id := range c.nodes {
		if st := c.stores[id]; st != nil && c.sim.Node(id).Up() && c.storeInc[id] == c.sim.Node(id).inc && st.Merging() {
			return false
		}
	}
	return c.checkRanges() == nil
}

// checkRanges, after quiescence: the newest descriptors tile the keyspace
// (no key in two ranges, none in no range), every replica of each range
// holds that descriptor, and the replicas hold the same data.
func (c *serverSet) checkRanges() error {
	ranges := c.newestRanges()
	for i, d := range ranges {
		switch {
		case i == 0 && len(d.Start) != 0:
			return fmt.Errorf("ranges: the first range %v does not start at the empty key", d)
		case i > 0 && !bytes.Equal(ranges[i-1].End, d.Start):
			return fmt.Errorf("ranges: %v and %v do not meet: keys served twice or never", ranges[i-1], d)
		case i == len(ranges)-1 && d.End != nil:
			return fmt.Errorf("ranges: the last range %v ends before the keyspace does", d)
		}
	}
	for _, d := range ranges {
		var first string
		var firstNode kernel.NodeID
		for _, id := range d.Replicas {
			if !c.sim.Node(id).Up() {
				return fmt.Errorf("convergence: node %d is down after quiescence", id)
			}
			var held *consensus.Descriptor
			for _, o := range c.stores[id].Descriptors() {
				if o.ID == d.ID {
					held = &o
				}
			}
			if held == nil || held.String() != d.String() {
				return fmt.Errorf("ranges: node %d holds %v of range %d, the newest is %v (%s)", id, held, d.ID, d, c.appliedIndexes(d))
			}
			h, err := rangeHash(c.engines[id], d)
			if err != nil {
				return fmt.Errorf("convergence: node %d range %d: %w", id, d.ID, err)
			}
			if firstNode == 0 {
				first, firstNode = h, id
			} else if h != first {
				return fmt.Errorf("convergence: range %v differs between node %d (%s) and node %d (%s); applied indexes %s",
					d, firstNode, first, id, h, c.appliedIndexes(d))
			}
		}
	}
	return c.checkMeta(ranges)
}

// checkMeta, after quiescence and convergence: the meta range (read from a
// replica of the range that holds it: they hold the same data) describes
// exactly the ranges there are, with their replicas.
func (c *serverSet) checkMeta(ranges []consensus.Descriptor) error {
	var metaRange *consensus.Descriptor
	for i, d := range ranges {
		if d.Contains(consensus.MetaStart) {
			metaRange = &ranges[i]
		}
	}
	if metaRange == nil || len(metaRange.Replicas) == 0 {
		return fmt.Errorf("meta: no range holds the meta span in %v", ranges)
	}
	entries, err := consensus.ReadMeta(c.engines[metaRange.Replicas[0]])
	if err != nil {
		return fmt.Errorf("meta: node %d: %w", metaRange.Replicas[0], err)
	}
	var got, want []string
	for _, e := range entries {
		got = append(got, e.Descriptor.String())
	}
	for _, d := range ranges {
		want = append(want, d.String())
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("meta: the meta range (node %d's copy) holds %v; the ranges are %v", metaRange.Replicas[0], got, want)
	}
	return nil
}
