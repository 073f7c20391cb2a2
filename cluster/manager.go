package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Manager is one node's share of cluster management: its directory of the
// cluster's nodes, the membership requests it serves (join, remove), and
// the rebalancer that runs on it by itself. orbit serve and the
// simulator's cluster scenario build it the same way.
//
// A join (Join) records the new node in the directory (gossip spreads
// it) and walks the ranges: ranges short of replicas get one on the new
// node (a learner first, caught up by a streamed snapshot, then a voter),
// then replicas and leaderships move toward an even spread.
//
// A removal (Remove) takes the node's replicas out of every range, adding
// one on another active node first where the range would otherwise fall
// short of the cluster's replica count; then it marks the node removed in
// the directory. Meanwhile the directory marks it leaving, so that no
// rebalancer places a replica or a leadership on it (and theirs help move
// its replicas away). The removed node's replicas are destroyed when it applies
// its removal or hears of it (replica GC); the process keeps running,
// holding nothing, until it is stopped. A node that comes back with a
// wiped disk joins again (same or new ID: its replicas are new Raft
// peers, generations apart from the old ones).
//
// Both requests are idempotent: each step is a compare-and-swap on the
// range's configuration, so a retried or repeated request goes on from
// where the configuration is. A removal is refused, range by range, when
// the voters it would leave do not hold a quorum of replicas the range's
// leader heard from within an election timeout (etcd's strict
// reconfiguration check).
//
// The rebalancer (rebalancer.go) keeps doing, for the ranges this node
// leads, what a join does once: it replaces replicas on dead and removed
// nodes, and evens out replicas and leaderships.
type Manager struct {
	rt   kernel.Runtime
	opts Options
	dir  *directory
	// pool holds the consensus clients requests take turns with: a client
	// lives as long as the node (its reply port and task), so they are
	// made once, not per request.
	pool *kernel.Mailbox[*consensus.Client]

	// steps counts the changes this manager made (Steps).
	steps atomic.Int64

	// spreading is set by a rebalancer pass that found a replica move to
	// make, taken here or by another range's leader (pass).
	spreading atomic.Bool

	mu sync.Mutex
	// extra is, per range, the descriptor the last look saw with more
	// replicas than the cluster wants (the repair rule removes one only
	// when the next look sees the same).
	extra map[storage.RangeID]string
	// learners is, per range, a configuration with learners and when it
	// was first seen (learnerStuck).
	learners map[storage.RangeID]learnerSeen
}

// requestClients is how many membership or operator requests run at once.
const requestClients = 4

// New builds a node's manager and tells the transport how to reach the
// nodes its record names. Start starts its tasks.
func New(rt kernel.Runtime, opts Options) (*Manager, error) {
	opts.EnsureDefaults(rt)
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{rt: rt, opts: opts, pool: kernel.NewMailbox[*consensus.Client](rt, "cluster-clients", requestClients),
		learners: map[storage.RangeID]learnerSeen{}}
	boot, err := nextIncarnation(rt, opts.Engine)
	if err != nil {
		return nil, err
	}
	m.dir = newDirectory(rt, &m.opts, boot)
	for i := range requestClients {
		m.pool.Send(consensus.NewClient(opts.Router, fmt.Sprintf("cluster-%d", i)))
	}
	m.dir.connect()
	return m, nil
}

// nextIncarnation takes this start's incarnation: above the last one
// recorded in eng (if any), and at least the wall clock in milliseconds,
// so that a node whose data directory was rebuilt still counts up unless
// its clock stepped back. It is recorded (synced) before the first
// message carries it: a crash must not let the next start reuse it. (Not
// in the cluster record: saving that early would tell the next start
// that a join had been recorded.)
func nextIncarnation(rt kernel.Runtime, eng *storage.Engine) (uint64, error) {
	boot := uint64(max(rt.Now().UnixMilli(), 1))
	if eng == nil {
		return boot, nil
	}
	last, err := eng.Incarnation()
	if err != nil {
		return 0, err
	}
	boot = max(boot, last+1)
	b := eng.NewBatch()
	defer b.Close()
	b.SetIncarnation(boot)
	if err := b.Commit(true); err != nil {
		return 0, fmt.Errorf("recording the node's incarnation: %w", err)
	}
	return boot, nil
}

// Start runs the gossip and the rebalancer as tasks of the runtime, until
// it stops (neither on a standalone node).
func (m *Manager) Start() {
	if m.opts.Standalone {
		return
	}
	m.dir.gossip()
	if m.opts.RebalanceInterval > 0 {
		cl := consensus.NewClient(m.opts.Router, "rebalancer")
		m.rt.Go("rebalancer", func(ctx context.Context) { m.rebalanceLoop(ctx, cl) })
	}
}

// Steps counts the changes this node's manager made since it started
// (replicas added or removed, leaderships moved), by requests and by its
// rebalancer: a cluster whose counts stop moving has settled.
func (m *Manager) Steps() int64 { return m.steps.Load() }

// NodeHealth is what this node knows of another's health.
type NodeHealth struct {
	// Alive: news from it came within DeadAfter; Dead: none for
	// DeadAfter (a node just restarted knows neither for a while).
	Alive, Dead bool
	// LeaderLoad is the requests a second it serves as a leader, as its
	// gossip last said (this node's own: now).
	LeaderLoad float64
}

// Health returns what this node knows of node's health.
func (m *Manager) Health(node kernel.NodeID) NodeHealth {
	return NodeHealth{Alive: m.dir.alive(node), Dead: m.dir.dead(node), LeaderLoad: m.dir.loadOf(node)}
}

// Record returns a copy of the cluster record as the directory has it.
func (m *Manager) Record() Record { return m.dir.record() }

// Active lists the nodes not removed, sorted.
func (m *Manager) Active() []kernel.NodeID { return m.dir.active() }

// Advertise records this node's own address (first start, or moved), to
// be gossiped to every node.
func (m *Manager) Advertise(addr string) error {
	e, _ := m.dir.entry(m.rt.NodeID())
	if e.Addr == addr {
		return nil
	}
	return m.dir.updateOwn(func(e *NodeEntry) { e.Addr = addr })
}

// WithClient runs fn with a consensus client of the request pool,
// waiting for one until ctx ends.
func (m *Manager) WithClient(ctx context.Context, fn func(*consensus.Client) error) error {
	cl, err := m.pool.Recv(ctx)
	if err != nil {
		return err
	}
	defer m.pool.Send(cl)
	return fn(cl)
}

// Changes lists what a request did, one line per replica added, removed
// or moved, or leadership moved.
type Changes []string

// ErrIDTaken refuses a join under the ID of an active node at another
// address: two processes with one ID would each take the other's messages.
var ErrIDTaken = errors.New("a node with this ID is already a member")

// ErrUnknownNode refuses the removal of a node the directory never had.
var ErrUnknownNode = errors.New("no such node in this cluster")

// Join adds node, reachable at addr, to the cluster: see Manager.
func (m *Manager) Join(ctx context.Context, node kernel.NodeID, addr string) (Changes, error) {
	if e, ok := m.dir.entry(node); ok && !e.Removed && e.Addr != "" && e.Addr != addr {
		return nil, fmt.Errorf("%w at %s (this request says %s): remove it first (orbit node remove %d) or pick another --node-id", ErrIDTaken, e.Addr, addr, node)
	}
	if err := m.change(ctx, node, func(e *NodeEntry) { e.Addr, e.Leaving, e.Removed = addr, false, false }); err != nil {
		return nil, err
	}
	var out Changes
	err := m.WithClient(ctx, func(cl *consensus.Client) error {
		if err := untilSettled(func() (int, error) { return m.pass(ctx, cl, repairOnly, nil, &out) }); err != nil {
			return err
		}
		if m.opts.RebalanceInterval > 0 {
			// Each range's leader moves replicas and leaderships onto the
			// new node: two parties moving one range's replicas at once
			// would each undo the other's half-done move.
			out = append(out, "each range's leader now evens out replicas and leaderships (the rebalancer)")
			return nil
		}
		return untilSettled(func() (int, error) { return m.pass(ctx, cl, allRules, nil, &out) })
	})
	return out, err
}

// Remove takes node out of the cluster: see Manager.
func (m *Manager) Remove(ctx context.Context, node kernel.NodeID) (Changes, error) {
	if _, known := m.dir.entry(node); !known {
		return nil, ErrUnknownNode
	}
	// Leaving first: from now on no rebalancer places anything on the
	// node, and theirs move its replicas away as this request does.
	if err := m.change(ctx, node, func(e *NodeEntry) { e.Leaving = true }); err != nil {
		return nil, err
	}
	var out Changes
	err := m.WithClient(ctx, func(cl *consensus.Client) error {
		return untilSettled(func() (int, error) { return m.removeFromRanges(ctx, cl, node, &out) })
	})
	if err != nil {
		// Refused or cut short: the node stays a member (what moved off it
		// stays moved), so that a removal that cannot finish, refused for
		// want of a quorum say, does not keep draining it. Asking again
		// goes on.
		// Not bound to the request's end: a request that timed out must
		// still put the node back.
		uctx, cancel := m.rt.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		if uerr := m.change(uctx, node, func(e *NodeEntry) { e.Leaving = false }); uerr != nil {
			return out, errors.Join(err, uerr)
		}
		return out, err
	}
	return out, m.change(ctx, node, func(e *NodeEntry) { e.Leaving, e.Removed = false, true })
}

// requestTimeout bounds what a request does after its caller's deadline.
const requestTimeout = 10 * time.Second

// change makes a change to node's entry in the meta range, then here
// (directory.changeEntry): a join or a removal holds once it returns.
func (m *Manager) change(ctx context.Context, node kernel.NodeID, change func(e *NodeEntry)) error {
	return m.WithClient(ctx, func(cl *consensus.Client) error { return m.dir.changeEntry(ctx, cl, node, change) })
}

// maxPasses bounds the passes of a join or a removal over the ranges.
const maxPasses = 8

// untilSettled runs pass (a join's or a removal's walk over the ranges)
// until one changes nothing: a range that split during a pass shows up
// whole in the next one.
// A pass whose steps partly failed counts as a change when some
// succeeded; its failure is the request's only when a pass changes
// nothing.
func untilSettled(pass func() (changes int, err error)) error {
	var last error
	for range maxPasses {
		n, err := pass()
		if n == 0 {
			return err
		}
		last = err
	}
	if last != nil {
		return fmt.Errorf("%w: %w", errKeptChanging, last)
	}
	return errKeptChanging
}

var errKeptChanging = fmt.Errorf("the ranges kept changing over %d passes; run the request again", maxPasses)

// removeFromRanges takes node's replicas out of every range, adding one on
// a spare node first where the range would otherwise fall short, and
// returns how many ranges it changed.
func (m *Manager) removeFromRanges(ctx context.Context, cl *consensus.Client, node kernel.NodeID, out *Changes) (int, error) {
	v, err := m.look(ctx, cl)
	if err != nil {
		return 0, err
	}
	changes := 0
	for _, d := range v.ranges {
		if !slices.Contains(d.Replicas, node) {
			continue
		}
		spare := v.spares(d, node)
		if len(d.Replicas)-1 < v.want && len(spare) > 0 {
			if err := m.take(ctx, cl, v, step{d: d, add: v.fewest(spare, v.replicas)}, out); err != nil {
				return changes, err
			}
		}
		if len(d.Replicas) == 1 && len(spare) == 0 {
			return changes, fmt.Errorf("range %d: node %d holds its only replica and no other node can take it: add a node first", d.ID, node)
		}
		err := m.take(ctx, cl, v, step{d: d, remove: node}, out)
		if errors.Is(err, errChangeInProgress) {
			// Another party's addition is under way: the next pass.
			if err := m.rt.Sleep(ctx, 100*time.Millisecond); err != nil {
				return changes, err
			}
			changes++
			continue
		}
		if err != nil {
			return changes, err
		}
		changes++
	}
	return changes, nil
}
