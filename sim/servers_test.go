package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// serverSet is what the replicated scenarios (kv, kv5, redis) share: server
// nodes running Pebble and consensus, an admin task that moves replicas
// while the clients work, the election-safety record, and the final
// membership and convergence checks.
type serverSet struct {
	sim     *Sim
	layout  consensus.Layout
	nodes   []kernel.NodeID
	engines map[kernel.NodeID]*storage.Engine
	stores  map[kernel.NodeID]*consensus.Store
	// placement is where the membership task wants each range: the
	// initial replicas, then wherever its moves took them.
	placement            map[storage.RangeID][]kernel.NodeID
	faultsOver, restored bool
	removals, additions  int
	// leaders records who won each (range, term): Raft's election safety
	// says at most one node.
	leaders     map[[2]uint64]kernel.NodeID
	safetyError error
}

// adminNode runs the membership changes; like the clients, never a fault
// target.
const adminNode kernel.NodeID = 201

// newServerSet adds the server nodes (booted by boot) and the admin node.
func newServerSet(s *Sim, nodes []kernel.NodeID, layout consensus.Layout, boot func(rt kernel.Runtime)) *serverSet {
	c := &serverSet{sim: s, layout: layout, nodes: nodes, engines: map[kernel.NodeID]*storage.Engine{},
		stores: map[kernel.NodeID]*consensus.Store{}, placement: map[storage.RangeID][]kernel.NodeID{},
		leaders: map[[2]uint64]kernel.NodeID{}}
	for _, d := range layout.Ranges() {
		c.placement[d.ID] = slices.Clone(d.Replicas)
	}
	for _, id := range nodes {
		s.AddNode(id, boot).Disk().SpareFromErrors(func(p string) bool {
			// The MANIFEST, its marker, and syncs of the directory that
			// moving the marker makes (see Disk.SpareFromErrors).
			return strings.Contains(p, "MANIFEST") || strings.Contains(p, "marker") || p == "/data"
		})
	}
	s.AddNode(adminNode, func(rt kernel.Runtime) { rt.Go("membership", func(ctx context.Context) { c.membership(ctx, rt) }) })
	return c
}

// openEngine opens the node's storage and keeps it open for the node's
// lifetime.
func (c *serverSet) openEngine(rt kernel.Runtime) *storage.Engine {
	entryCache := int64(0) // the default
	if rt.Buggify("storage.no-entry-cache") {
		entryCache = -1 // every Raft entry read goes to Pebble
	}
	eng, err := storage.Open(rt.FS(), "/data", storage.Options{
		EntryCacheBytes:             entryCache,
		DisableAutomaticCompactions: true,
		Logger:                      rt.Logger(),
		// A fatal error on one of Pebble's goroutines poisons the engine;
		// the node's next call crashes it. Park that goroutine.
		OnBackgroundFatal: func(error) { select {} },
	})
	if err != nil {
		kernel.Crash("open storage: %v", err)
	}
	c.engines[rt.NodeID()] = eng
	rt.Go("engine", func(ctx context.Context) {
		// The engine lives as long as the node; a crash closes it (on the
		// discarded disk image) so that Pebble's goroutines end too.
		defer eng.Close()
		kernel.NewFuture[struct{}](rt, "node lifetime").Wait(ctx)
	})
	return eng
}

// openStore starts consensus on the node, recording its elections.
func (c *serverSet) openStore(rt kernel.Runtime, eng *storage.Engine, opts consensus.Options) *consensus.Store {
	hook := opts.BecameLeader
	opts.BecameLeader = func(id storage.RangeID, term uint64) {
		if hook != nil {
			hook(id, term)
		}
		c.leaderElected(id, term, rt.NodeID())
	}
	st, err := consensus.Open(rt, eng, c.layout, opts)
	if err != nil {
		kernel.Crash("open consensus: %v", err)
	}
	c.stores[rt.NodeID()] = st
	return st
}

func (c *serverSet) leaderElected(id storage.RangeID, term uint64, node kernel.NodeID) {
	key := [2]uint64{uint64(id), term}
	if prev, ok := c.leaders[key]; ok && prev != node && c.safetyError == nil {
		c.safetyError = fmt.Errorf("election safety: range %d has two leaders in term %d: n%d and n%d", id, term, prev, node)
	}
	c.leaders[key] = node
}

// membership moves replicas while the clients work. During the faults,
// again and again: with a replica on every node, it removes a random
// range's replica from a random node and adds it back (a new replica,
// caught up by a snapshot); with spare nodes, it moves a random replica to
// a node without one (add first, then remove). After the heal it brings
// every range to exactly its placement.
func (c *serverSet) membership(ctx context.Context, rt kernel.Runtime) {
	admin := consensus.NewClient(consensus.NewRouter(rt, c.layout), "admin")
	rng := rt.Rand()
	attempt := func(f func(ctx context.Context) error) error {
		actx, cancel := rt.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return f(actx)
	}
	add := func(d consensus.Descriptor, node kernel.NodeID) error {
		return attempt(func(ctx context.Context) error { return admin.AddReplica(ctx, d.Start, node) })
	}
	remove := func(d consensus.Descriptor, node kernel.NodeID) error {
		return attempt(func(ctx context.Context) error { return admin.RemoveReplica(ctx, d.Start, node) })
	}
	for !c.faultsOver {
		d := c.layout.Ranges()[rng.IntN(len(c.layout.Ranges()))]
		at := c.placement[d.ID]
		from := at[rng.IntN(len(at))]
		var spare []kernel.NodeID
		for _, n := range c.nodes {
			if !slices.Contains(at, n) {
				spare = append(spare, n)
			}
		}
		to := from // nowhere else to go: out and back in
		if len(spare) > 0 {
			to = spare[rng.IntN(len(spare))]
			for !c.faultsOver && add(d, to) != nil {
			}
			if c.faultsOver {
				break
			}
			c.additions++
			c.placement[d.ID] = append(slices.DeleteFunc(slices.Clone(at), func(n kernel.NodeID) bool { return n == from }), to)
		}
		if remove(d, from) == nil {
			c.removals++
		}
		if to == from {
			for !c.faultsOver {
				if add(d, to) == nil {
					c.additions++
					break
				}
			}
		}
	}
	for _, d := range c.layout.Ranges() {
		for _, node := range c.nodes {
			for {
				var err error
				if slices.Contains(c.placement[d.ID], node) {
					err = add(d, node)
				} else {
					err = remove(d, node)
				}
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
			}
		}
	}
	c.restored = true
}

// status tells who waits for what: clients' last answers, the membership
// task, and every range's replicas.
func (c *serverSet) status(served []int64, healed int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "clients last served at %v (healed at %v); membership: %d removals, %d additions, restored=%v\n",
		served, healed, c.removals, c.additions, c.restored)
	for _, d := range c.layout.Ranges() {
		fmt.Fprintf(&b, "range %d: %s\n", d.ID, c.appliedIndexes(d))
	}
	return b.String()
}

// appliedIndexes tells lag (different applied indexes) from divergence (the
// same index, different data).
func (c *serverSet) appliedIndexes(d consensus.Descriptor) string {
	var parts []string
	for _, id := range c.nodes {
		parts = append(parts, fmt.Sprintf("n%d %s", id, c.stores[id].RangeStatus(d.ID)))
	}
	return strings.Join(parts, "; ")
}

// checkConvergence, after quiescence: every range is on exactly its
// placement, as each of its replicas sees it, and they hold the same data.
func (c *serverSet) checkConvergence() error {
	for _, d := range c.layout.Ranges() {
		var first string
		var firstNode kernel.NodeID
		want := slices.Sorted(slices.Values(c.placement[d.ID]))
		for _, id := range want {
			if !c.sim.Node(id).Up() {
				return fmt.Errorf("convergence: node %d is down after quiescence", id)
			}
			m, ok := c.stores[id].Members(d.ID)
			slices.Sort(m)
			if !ok || !slices.Equal(m, want) {
				return fmt.Errorf("membership: node %d: range %d has members %v, want %v (%s)", id, d.ID, m, want, c.appliedIndexes(d))
			}
		}
		for _, id := range want {
			h, err := rangeHash(c.engines[id], d)
			if err != nil {
				return fmt.Errorf("convergence: node %d range %d: %w", id, d.ID, err)
			}
			if firstNode == 0 {
				first, firstNode = h, id
			} else if h != first {
				return fmt.Errorf("convergence: range %d differs between node %d (%s) and node %d (%s); applied indexes %s",
					d.ID, firstNode, first, id, h, c.appliedIndexes(d))
			}
		}
	}
	return nil
}

func rangeHash(eng *storage.Engine, d consensus.Descriptor) (string, error) {
	kvs, _, err := eng.Scan(d.Start, d.End, 1<<20)
	if err != nil {
		return "", err
	}
	h := fnv.New64a()
	for _, kv := range kvs {
		fmt.Fprintf(h, "%q=%q;", kv.Key, kv.Value)
	}
	return fmt.Sprintf("%d keys %016x", len(kvs), h.Sum64()), nil
}
