package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
)

// The node directory: what a node knows of its cluster's nodes, kept on
// its disk (storage's cluster record) and spread by gossip.
//
// A cluster starts from the nodes it was given (orbit serve --peers).
// Nodes that join later and nodes that are removed change it: the node
// that handles the change makes it in the meta range first (meta.go: a
// compare-and-set, one version up), then records it, and every node sends
// its whole directory to every other node every gossipPeriod (and at once
// after a change), and reads the meta range's entries back as often, so
// that all of them learn a new node's address, and that a node is
// removed. Entries merge by version, the newest wins (newer).
//
// Addresses pinned by this node's command line (Options.Pinned) win over
// gossiped ones: an operator (or the Jepsen harness, which routes every
// link through a fault proxy) decides how this node reaches the nodes it
// names.
//
// The gossip is also how a node knows which nodes are up: each node's
// last message, by this node's monotonic clock (alive, dead). It says who the
// nodes are, how to reach them and whether they still talk. Which node
// holds which range is Raft's business (each range's configuration),
// never the directory's.

const (
	directoryPort = "node-directory"
	gossipPeriod  = 2 * time.Second
)

// directory is a running node's view of its cluster's nodes.
type directory struct {
	rt   kernel.Runtime
	opts *Options

	mu      sync.Mutex
	rec     Record
	changed *kernel.Mailbox[struct{}] // signalled after a change, to gossip at once
	// heard is when (monotonic) each node's gossip last arrived; started
	// is when this directory started listening: a node never heard of is
	// not dead before DeadAfter has passed since then.
	heard   map[kernel.NodeID]time.Duration
	started time.Duration
	// newest is, per node, the stamp of the newest message of its gossip:
	// a message the network delivers again, or late, or one of an earlier
	// incarnation, proves nothing about the node now.
	newest map[kernel.NodeID]gossipStamp
	// load is each node's leader load as its newest message said.
	load map[kernel.NodeID]float64
	// boot names this incarnation (nextIncarnation: higher for every
	// start); seq counts its messages.
	boot uint64
	seq  uint64
}

// gossipMessage is what a node sends: its directory, stamped.
type gossipMessage struct {
	Stamp gossipStamp                 `json:"stamp"`
	Nodes map[kernel.NodeID]NodeEntry `json:"nodes"`
	// Load is the requests a second the sender served lately as a
	// leader, all its ranges together (Options.LeaderLoad).
	Load float64 `json:"load,omitempty"`
}

// gossipStamp orders a node's messages: its incarnation (higher at every
// start: nextIncarnation), then their sequence within it.
type gossipStamp struct {
	Boot uint64 `json:"boot"`
	Seq  uint64 `json:"seq"`
}

// fresh reports whether a message stamped st is news from node n: the
// next of its current incarnation, or one of a later incarnation; and
// records it. Called with mu held.
//
// Incarnations are ordered, not merely told apart: with random ones
// (until 2026-12-03), a message of an earlier incarnation that this node
// had never seen, delivered late, passed for a new one, and the real
// current incarnation's messages were ignored from then on as a past
// one's: the node looked dead here for good while alive everywhere else,
// and the rebalancers swung a replica back and forth between the two
// views for as long as the run lasted (the simulator's cluster seed 369).
//
// A lower incarnation is news only after DeadAfter without any: a node
// whose data directory was rebuilt on a clock that stepped back counts
// from below its old incarnation (nextIncarnation), and must not stay
// dead to its peers for good.
func (d *directory) fresh(n kernel.NodeID, st gossipStamp) bool {
	cur, ok := d.newest[n]
	switch {
	case st.Boot == 0:
		return false // no stamp
	case !ok || st.Boot > cur.Boot:
	case st.Boot == cur.Boot:
		if st.Seq <= cur.Seq {
			return false
		}
	case d.rt.Monotonic()-max(d.heard[n], d.started) < d.opts.DeadAfter:
		return false // an earlier incarnation's, delivered late
	}
	d.newest[n] = st
	return true
}

// newDirectory returns the directory of this node's incarnation boot.
func newDirectory(rt kernel.Runtime, opts *Options, boot uint64) *directory {
	rec := opts.Record
	rec.Nodes = maps.Clone(rec.Nodes)
	return &directory{rt: rt, opts: opts, rec: rec, changed: kernel.NewMailbox[struct{}](rt, "node-directory-changed", 1),
		heard: map[kernel.NodeID]time.Duration{}, started: rt.Monotonic(),
		newest: map[kernel.NodeID]gossipStamp{}, load: map[kernel.NodeID]float64{}, boot: boot}
}

// addrOf is the address this node uses to reach n.
func (d *directory) addrOf(n kernel.NodeID, e NodeEntry) string {
	if a, ok := d.opts.Pinned[n]; ok {
		return a
	}
	return e.Addr
}

// connect tells the transport how to reach every node it knows, removed
// ones included: a removed node that has not heard of its removal is told
// to destroy its replicas when it talks to a range (consensus's replica
// GC), which needs an address to answer.
func (d *directory) connect() {
	if d.opts.Connect == nil {
		return
	}
	d.mu.Lock()
	nodes := maps.Clone(d.rec.Nodes)
	d.mu.Unlock()
	for _, n := range slices.Sorted(maps.Keys(nodes)) {
		if n == d.rt.NodeID() {
			continue
		}
		e := nodes[n]
		if err := d.opts.Connect(n, d.addrOf(n, e)); err != nil {
			d.opts.Logger.Warn("node directory: cannot reach node", "node", n, "addr", e.Addr, "err", err)
		}
	}
}

// record returns a copy of the cluster record.
func (d *directory) record() Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec := d.rec
	rec.Nodes = maps.Clone(d.rec.Nodes)
	return rec
}

// active lists the nodes not removed, sorted (this one included, unless it
// was removed).
func (d *directory) active() []kernel.NodeID {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []kernel.NodeID
	for n, e := range d.rec.Nodes {
		if !e.Removed {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// alive reports whether node n is up as far as this node knows: it is
// this node, or a new message of its gossip arrived within aliveWithin
// (or DeadAfter, if shorter). A node silent for longer is neither alive
// nor yet dead: nothing is placed on it (no replica, no leadership: a
// minute's DeadAfter must not mean a minute of hand-overs to a dead
// node), and its replicas stay until it is dead.
func (d *directory) alive(n kernel.NodeID) bool {
	if n == d.rt.NodeID() {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.heard[n]
	return ok && d.rt.Monotonic()-at < min(d.opts.DeadAfter, aliveWithin)
}

// aliveWithin is how recent a node's news must be for it to receive
// replicas or leaderships: three gossip periods.
const aliveWithin = 3 * gossipPeriod

// dead reports whether node n has been silent for DeadAfter: no new
// message of its gossip within DeadAfter, nor since this directory
// started (after a restart, no node is dead at once; nor alive: see
// alive).
func (d *directory) dead(n kernel.NodeID) bool {
	if n == d.rt.NodeID() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rt.Monotonic()-max(d.heard[n], d.started) >= d.opts.DeadAfter
}

// ownLoad is this node's leader load, all ranges together.
func (d *directory) ownLoad() float64 {
	if d.opts.LeaderLoad == nil {
		return 0
	}
	load := d.opts.LeaderLoad()
	var total float64
	for _, id := range slices.Sorted(maps.Keys(load)) { // one order: the same sum every run
		total += load[id]
	}
	return total
}

// loadOf is node n's leader load as this node knows it.
func (d *directory) loadOf(n kernel.NodeID) float64 {
	if n == d.rt.NodeID() {
		return d.ownLoad()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.load[n]
}

// entry returns what the directory knows of n.
func (d *directory) entry(n kernel.NodeID) (NodeEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.rec.Nodes[n]
	return e, ok
}

// updateOwn records a change of this node's own entry (its address, at
// start-up) here, one version up; the meta range gets it at the next
// syncMeta. Joins and removals go through the meta range first
// (changeEntry).
func (d *directory) updateOwn(change func(e *NodeEntry)) error {
	n := d.rt.NodeID()
	d.mu.Lock()
	e := d.rec.Nodes[n]
	change(&e)
	e.Version++
	d.mu.Unlock()
	_, err := d.merge(map[kernel.NodeID]NodeEntry{n: e})
	return err
}

// newer orders two entries of one node: the higher version, and between
// two of one version (two nodes that changed the entry without the meta
// range, e.g. its own address and a removal gossiped before either
// reached it), the one whose encoding sorts last, so that every node
// settles on the same.
func newer(a, b NodeEntry) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) > string(jb)
}

// merge takes every entry newer than the one it has, persists the result
// if anything changed, and reports whether it did.
func (d *directory) merge(in map[kernel.NodeID]NodeEntry) (bool, error) {
	d.mu.Lock()
	changed := false
	for _, n := range slices.Sorted(maps.Keys(in)) {
		e := in[n]
		if n == 0 || e.Version == 0 {
			continue // version 0: a joining node's own say-so, not the cluster's yet
		}
		if cur, ok := d.rec.Nodes[n]; ok && !newer(e, cur) {
			continue
		}
		if d.rec.Nodes == nil {
			d.rec.Nodes = map[kernel.NodeID]NodeEntry{}
		}
		if cur := d.rec.Nodes[n]; cur.Removed != e.Removed || cur.Leaving != e.Leaving || cur.Addr != e.Addr {
			d.opts.Logger.Info("node directory: node changed", "node", n, "addr", e.Addr, "leaving", e.Leaving, "removed", e.Removed)
		}
		d.rec.Nodes[n] = e
		changed = true
	}
	rec := d.rec
	d.mu.Unlock()
	if !changed {
		return false, nil
	}
	if err := SaveRecord(d.opts.Engine, rec); err != nil {
		return true, fmt.Errorf("saving the node directory: %w", err)
	}
	d.connect()
	d.changed.Send(struct{}{}) // refused when a signal is queued already
	return true, nil
}

// gossip sends the directory to every other node now and then, and merges
// what the others send, until the runtime stops. Messages may be lost: the next
// round repairs that.
func (d *directory) gossip() {
	inbox := d.rt.Net().Listen(directoryPort)
	d.rt.Go("node-directory-inbox", func(ctx context.Context) {
		for {
			env, err := inbox.Recv(ctx)
			if err != nil {
				return
			}
			var in gossipMessage
			if err := json.Unmarshal(env.Body, &in); err != nil {
				d.opts.Logger.Warn("node directory: a malformed message", "from", env.From, "err", err)
				continue
			}
			d.mu.Lock()
			if d.fresh(env.From, in.Stamp) {
				d.heard[env.From] = d.rt.Monotonic()
				d.load[env.From] = in.Load
			}
			d.mu.Unlock()
			if _, err := d.merge(in.Nodes); err != nil {
				kernel.Crash("node directory: %v", err) // the disk failed
			}
		}
	})
	d.rt.Go("node-directory-meta", func(ctx context.Context) {
		cl := consensus.NewClient(d.opts.Router, "node-directory")
		for {
			if d.rt.Sleep(ctx, gossipPeriod) != nil {
				return
			}
			sctx, cancel := d.rt.WithTimeout(ctx, gossipPeriod)
			if err := d.syncMeta(sctx, cl); err != nil && ctx.Err() == nil {
				d.opts.Logger.Debug("node directory: reading the meta range failed; next period", "err", err)
			}
			cancel()
		}
	})
	d.rt.Go("node-directory-gossip", func(ctx context.Context) {
		for {
			rec := d.record()
			d.seq++
			body, err := json.Marshal(gossipMessage{Stamp: gossipStamp{Boot: d.boot, Seq: d.seq}, Nodes: rec.Nodes, Load: d.ownLoad()})
			if err != nil {
				kernel.Crash("node directory: %v", err)
			}
			for _, n := range slices.Sorted(maps.Keys(rec.Nodes)) {
				if n != d.rt.NodeID() && !rec.Nodes[n].Removed {
					d.rt.Net().Send(n, directoryPort, body)
				}
			}
			wait, cancel := d.rt.WithTimeout(ctx, gossipPeriod)
			_, _ = d.changed.Recv(wait) // a change, or the period's end
			cancel()
			if ctx.Err() != nil {
				return
			}
		}
	})
}
