// Package node builds one Orbit node from its parts, in the one order
// that works: the router its clients share, the cluster manager, the Redis
// session layer (when the node speaks Redis: its state machine runs the
// ranges), and the consensus store over the caller's storage engine.
//
// orbit serve and the simulator's scenarios build their nodes here, so the
// simulator runs the assembly the server runs: a hook, an option or a
// start-up step added here reaches both. What stays with the caller is what
// differs by nature: where the engine's files live (a directory, a
// simulated disk), how the cluster record is found or made (flags and
// HTTP joins for the server, the scenario's plan for the simulator), the
// network (gRPC, the simulator's), and the wire (respwire's sockets).
//
// The package is under the runtime contract (DESIGN.md): it only wires
// components together and starts their tasks through the runtime.
package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/backup"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/actor"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/query"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// Options say what to build. Engine and Layout are required.
type Options struct {
	// Engine is the node's storage, opened by the caller; the node never
	// closes it (the caller closes it after Close).
	Engine *storage.Engine

	// Layout places the cluster's first ranges (consensus.NewLayout; for
	// a Redis cluster, RecordLayout).
	Layout consensus.Layout

	// Record is the node's cluster record, loaded or made by the caller
	// (cluster.LoadRecord; a fresh data directory gets a new one).
	Record cluster.Record

	// Consensus are the store's options. Open sets Router, adds the
	// transactional keyspace and, when Redis is set, the Redis one to
	// Keyspaces, sets Join
	// when the record says the node joined, and chains the Redis layer's
	// leadership and apply hooks after the ones given here.
	Consensus consensus.Options

	// Txn are the transactional keyspace's options (txn.Options; the
	// zero value is valid). Every node hosts the keyspace: its machine
	// runs on the node's hybrid logical clock (Node.Clock), whose bound is
	// MaxClockOffset (default hlc.DefaultMaxOffset). Open sets RowPrefix,
	// if unset, to actor.RecordPrefix.
	Txn            txn.Options
	MaxClockOffset time.Duration

	// Cluster are the cluster manager's options. Open sets Engine,
	// Router, Record, SlowLeader and LeaderLoad.
	Cluster cluster.Options

	// Redis, if set, are the Redis session layer's options: the node's
	// Redis keyspace runs its state machine. Open sets Runtime, Layout,
	// Router, Peers (the cluster's active nodes) and Ranges. Nil: no
	// Redis keyspace (the built-in key-value operations still work).
	Redis *session.Options

	// SQL, if set, are the SQL engine's options (query.Options): the node
	// runs statements on its transactional keyspace (Node.SQL). Open sets
	// Runtime and NewDB.
	SQL *query.Options

	// Actors, if set, are the actor host's options (kernel/actor): the
	// node hosts activations of Actors.Types (Node.Actors). Open sets
	// Runtime, NewDB and, if unset, Hosts (the cluster's active nodes).
	Actors *actor.Options

	// WrapRedis, if set, wraps the Redis state machine before the store
	// gets it (orbit serve counts queries; the simulator plants bugs).
	// The wrapper must keep the consensus.SplitKeyer of what it wraps.
	WrapRedis func(*redis.StateMachine) consensus.StateMachine

	// Logger receives the node's start-up events. The default is the
	// runtime's logger.
	Logger *slog.Logger
}

// ErrInvalidOptions wraps every error of Options.Validate.
var ErrInvalidOptions = errors.New("node: invalid options")

// Validate reports what is missing.
func (o *Options) Validate() error {
	switch {
	case o.Engine == nil:
		return fmt.Errorf("%w: no storage engine", ErrInvalidOptions)
	case len(o.Layout.Ranges()) == 0:
		return fmt.Errorf("%w: the layout has no ranges", ErrInvalidOptions)
	case o.WrapRedis != nil && o.Redis == nil:
		return fmt.Errorf("%w: WrapRedis without Redis", ErrInvalidOptions)
	}
	return nil
}

// Node is one built node. Its parts are exported for the server's admin
// and metrics faces and for the simulator's checkers; the node owns them.
type Node struct {
	rt     kernel.Runtime
	logger *slog.Logger

	Router  *consensus.Router
	Cluster *cluster.Manager
	Store   *consensus.Store
	Redis   *session.Server // nil: no Redis keyspace
	SQL     *query.Engine   // nil: no SQL
	Actors  *actor.Host     // nil: hosts no actors
	// Clock is the node's hybrid logical clock: the transactional
	// keyspace's machine and the node's txn.DBs (NewDB) share it.
	Clock *hlc.Clock
	txn   txn.Options
	// actorRoutes is what the node's actor clients (the host's and
	// NewActorClient's) learn of where actors run, shared.
	actorRoutes *actor.Routes

	mu sync.Mutex
	// stopStart ends the Redis layer's start-up task; closed: Close ran
	// (a start-up task that begins after it ends at once).
	stopStart context.CancelFunc
	closed    bool
}

// Open builds the node: nothing runs until Start, but the store's driver,
// which starts with it (replicas answer their peers at once).
func Open(rt kernel.Runtime, opts Options) (*Node, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	n := &Node{rt: rt, logger: opts.Logger, actorRoutes: actor.NewRoutes()}
	if n.logger == nil {
		n.logger = rt.Logger()
	}
	// One router for the node: the protocol's clients, the cluster
	// manager's and the store's replicas share what each learns of the
	// ranges' leaders.
	n.Router = consensus.NewRouter(rt, opts.Layout)

	// The manager and the Redis layer ask the store for its health, load
	// and ranges; the store is opened last (its options need the Redis
	// layer's state machine and hooks), before anything runs.
	co := opts.Cluster
	co.Engine, co.Router, co.Record = opts.Engine, n.Router, opts.Record
	co.SlowLeader = func(id storage.RangeID, node kernel.NodeID) bool { return n.Store.SlowLeader(id, node) }
	co.LeaderLoad = func() map[storage.RangeID]float64 { return n.Store.LeaderLoad() }
	var err error
	if n.Cluster, err = cluster.New(rt, co); err != nil {
		return nil, err
	}

	so := opts.Consensus
	so.Router = n.Router
	offset := opts.MaxClockOffset
	if offset == 0 {
		offset = hlc.DefaultMaxOffset
	}
	if opts.Txn.Settling == nil {
		// One finalized-transaction cache for every DB of the node: an
		// actor's turns, a SQL engine's sessions run on pooled DBs.
		opts.Txn.Settling = txn.NewSettling()
	}
	n.Clock, n.txn = hlc.NewClock(rt, offset), opts.Txn
	// Not trusted until the consensus store has checked it against the
	// peers' clocks, or found it has none (consensus/clockoffset.go).
	n.Clock.Fence(consensus.ErrClockUnchecked)
	n.Clock.OnStep(func(step time.Duration, followed bool) {
		if followed {
			rt.Logger().Warn("clock: the wall clock is back within half the maximum offset of this node's clock; following it again", "step", step)
			return
		}
		rt.Logger().Error("clock: the wall clock stepped by more than half the maximum offset; this node's clock does not follow it (it goes on at the monotonic clock's pace, and takes the step only if its peers' clocks confirm it)",
			"step", step, "max_offset", offset)
	})
	so.Clock = n.Clock
	if opts.Txn.RowPrefix == nil {
		opts.Txn.RowPrefix = actor.RecordPrefix
	}
	if opts.Txn.NodeSilence == nil {
		// n.Store is open before the machine evaluates anything.
		opts.Txn.NodeSilence = func(node kernel.NodeID) (time.Duration, bool) { return n.Store.Silence(node) }
	}
	so.Keyspaces = withKeyspace(so.Keyspaces, txn.NewMachine(n.Clock, opts.Txn).Keyspace())
	so.Join = so.Join || opts.Record.Joined
	if opts.Redis != nil {
		ro := *opts.Redis
		ro.Runtime, ro.Layout, ro.Router = rt, opts.Layout, n.Router
		if ro.Wall == nil {
			ro.Wall = n.Clock.Physical
		}
		ro.Peers = n.Cluster.Active
		ro.Ranges = func() []consensus.Descriptor { return n.Store.Ranges() }
		ro.NewDB = n.NewDB
		if n.Redis, err = session.New(ro); err != nil {
			return nil, fmt.Errorf("starting the Redis session layer: %w", err)
		}
		var sm consensus.StateMachine = n.Redis.StateMachine()
		if opts.WrapRedis != nil {
			sm = opts.WrapRedis(n.Redis.StateMachine())
		}
		so.Keyspaces = withKeyspace(so.Keyspaces, redis.Keyspace(sm))
		so.BecameLeader = chain(so.BecameLeader, n.Redis.BecameLeader)
		so.LostLeadership = chain(so.LostLeadership, n.Redis.LostLeadership)
		so.Applied = chain(so.Applied, n.Redis.Applied)
	}
	if opts.SQL != nil {
		qo := *opts.SQL
		qo.Runtime, qo.NewDB = rt, n.NewDB
		if n.SQL, err = query.New(qo); err != nil {
			return nil, fmt.Errorf("starting the SQL engine: %w", err)
		}
	}
	if opts.Actors != nil {
		ao := *opts.Actors
		ao.Runtime, ao.NewDB, ao.Routes = rt, n.NewDB, n.actorRoutes
		if ao.Wall == nil {
			ao.Wall = n.Clock.Physical
		}
		if ao.Hosts == nil {
			ao.Hosts = n.Cluster.Active // reminders are fired through any of them
		}
		if n.Actors, err = actor.NewHost(ao); err != nil {
			return nil, fmt.Errorf("starting the actor host: %w", err)
		}
	}
	if n.Store, err = consensus.Open(rt, opts.Engine, opts.Layout, so); err != nil {
		return nil, fmt.Errorf("starting consensus: %w", err)
	}
	return n, nil
}

// NewDB returns a client of the transactional keyspace on this node;
// name labels it, and the DB serves one task at a time.
func (n *Node) NewDB(name string) (*txn.DB, error) {
	return txn.NewDB(n.rt, n.Router, n.Clock, name, n.txn)
}

// NewRedisBackup is how a backup reaches the node's Redis keyspace
// (backup.ExportRedis, ImportRedis), with db for its fence and the
// decisions it reads, its fence named id (unique per backup); nil if the
// node has no Redis keyspace.
func (n *Node) NewRedisBackup(db *txn.DB, id string) *backup.RedisKeyspace {
	if n.Redis == nil {
		return nil
	}
	return &backup.RedisKeyspace{Runtime: n.rt, Client: consensus.NewClient(n.Router, "backup "+id), Router: n.Router, DB: db, ID: id}
}

// NewActorClient returns a client of the cluster's actors on this node
// (opts: placement and timeouts; Runtime, NewDB and, if unset, Hosts, the
// cluster's active nodes, are filled in; it shares what it learns of
// where actors run with the node's other actor clients). It serves one
// task at a time.
func (n *Node) NewActorClient(opts actor.Options) (*actor.Client, error) {
	opts.Runtime, opts.NewDB, opts.Routes = n.rt, n.NewDB, n.actorRoutes
	if opts.Wall == nil {
		opts.Wall = n.Clock.Physical
	}
	if opts.Hosts == nil {
		opts.Hosts = n.Cluster.Active
	}
	return actor.NewClient(opts)
}

// withKeyspace returns ks with k added, in key order (consensus's
// Validate refuses overlaps).
func withKeyspace(ks []consensus.Keyspace, k consensus.Keyspace) []consensus.Keyspace {
	out := append(slices.Clone(ks), k)
	slices.SortFunc(out, func(a, b consensus.Keyspace) int { return bytes.Compare(a.Start, b.Start) })
	return out
}

// chain returns a hook that calls first (if set), then then.
func chain[A, B any](first, then func(A, B)) func(A, B) {
	if first == nil {
		return then
	}
	return func(a A, b B) {
		first(a, b)
		then(a, b)
	}
}

// Start runs the cluster manager (gossip, rebalancer) and, on a Redis
// node, the Redis layer's start-up as a task: a write through every range,
// then active expiry (session.Server.Start). Once every range answered,
// the node logs that it is ready (session.Server.Ready says so too).
func (n *Node) Start() {
	n.Cluster.Start()
	n.startGC()
	if n.Actors != nil {
		n.Actors.Start()
	}
	if n.Redis == nil {
		return
	}
	n.rt.Go("redis start", func(ctx context.Context) {
		ctx, cancel := n.rt.WithCancel(ctx)
		defer cancel()
		n.mu.Lock()
		closed := n.closed
		n.stopStart = cancel
		n.mu.Unlock()
		if closed {
			return
		}
		if err := n.Redis.Start(ctx); err == nil {
			n.logger.Info("node: ready: every range served a write")
		}
	})
}

// startGC starts the task that collects the transactional keyspace's
// garbage in the ranges this node leads, every Txn.GCInterval.
func (n *Node) startGC() {
	opts := n.txn
	if opts.EnsureDefaults().GCInterval < 0 {
		return
	}
	n.rt.Go("txn gc", func(ctx context.Context) {
		db, err := n.NewDB("txn-gc")
		if err != nil {
			n.logger.Error("node: transactional garbage collection not started", "err", err)
			return
		}
		for n.rt.Sleep(ctx, opts.GCInterval) == nil {
			pass, cancel := n.rt.WithTimeout(ctx, opts.GCInterval)
			done, err := db.CollectGarbage(pass, true)
			if err != nil {
				n.logger.Info("node: transactional garbage collection pass ended early", "err", err)
			}
			if done.Abandoned > 0 {
				n.logger.Info("node: transactional garbage collection settled old intents (transactions whose coordinators vanished before their decisions are aborted)",
					"intents", done.Abandoned, "alive", done.Alive)
			}
			cancel()
		}
	})
}

// Drain hands the leadership of every range led here to another voter
// (consensus.Store.Drain), so that a node's planned stop costs its clients
// one hand-over, not an election timeout.
func (n *Node) Drain(ctx context.Context) error { return n.Store.Drain(ctx) }

// Close stops the Redis layer's start-up and the consensus store. The
// runtime's stop ends the rest of the node's tasks; the engine is the
// caller's.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	n.closed = true
	if n.stopStart != nil {
		n.stopStart()
	}
	n.mu.Unlock()
	return n.Store.Close(ctx)
}

// RecordLayout is the layout of a Redis cluster with record rec: its
// ranges split on hash slots, first replicas on the nodes it started with.
func RecordLayout(rec cluster.Record) (consensus.Layout, error) {
	return consensus.NewLayout(redis.SlotSplits(rec.Ranges), rec.Initial, rec.Replicas)
}
