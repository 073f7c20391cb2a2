package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Options configure a node's cluster management. Engine, Router and
// Record are required; every zero duration takes its default
// (EnsureDefaults).
type Options struct {
	// Engine holds the cluster record (storage's cluster record).
	Engine *storage.Engine

	// Router is the node's range cache, shared with its other clients:
	// what the manager's walks over the ranges learn, they learn too.
	Router *consensus.Router

	// Record is the cluster record the node starts with (LoadRecord's,
	// or a new one for a fresh data directory).
	Record Record

	// Pinned are addresses from this node's command line: they win over
	// gossiped ones.
	Pinned map[kernel.NodeID]string

	// Connect tells the transport how to reach a node. Nil: the runtime's
	// network reaches every node by its ID (the simulator's does).
	Connect func(node kernel.NodeID, addr string) error

	// SlowLeader, if set, reports whether node would lead range id (led
	// here) so slowly that the consensus health check would hand the
	// range away from it (consensus.Store.SlowLeader): the rebalancer
	// then hands no leadership to it, or the two would bounce the range
	// between them.
	SlowLeader func(id storage.RangeID, node kernel.NodeID) bool

	// LeaderLoad, if set, returns the requests a second this node served
	// lately as leader of each range it leads
	// (consensus.Store.LeaderLoad): the rebalancer weighs leaderships by
	// it, and the gossip tells the other nodes this node's total.
	LeaderLoad func() map[storage.RangeID]float64

	// Standalone is a single node with no network: it gossips nothing and
	// rebalances nothing.
	Standalone bool

	// RebalanceInterval is how often the rebalancer looks at the ranges
	// this node leads (Manager.Start): a little more or less, at random,
	// so that nodes do not look in step.
	//
	// The default is 10 s. A negative value turns the rebalancer off.
	RebalanceInterval time.Duration

	// DeadAfter is how long a node may stay silent (no gossip, which it
	// sends every 2 s) before the rebalancer counts it dead: its replicas
	// are replaced on live nodes, and nothing new is placed on it.
	// Shorter than a restart would move data for nothing; CockroachDB
	// waits 5 minutes, for disks of terabytes; ranges here are at most
	// 64 MiB, so a minute is cheap.
	//
	// The default is 1 min. It must be at least 3 gossip periods (6 s).
	DeadAfter time.Duration

	// Logger receives membership and rebalancing events.
	//
	// The default is the runtime's logger.
	Logger *slog.Logger
}

// Defaults, as EnsureDefaults applies them.
const (
	DefaultRebalanceInterval = 10 * time.Second
	DefaultDeadAfter         = time.Minute
)

// EnsureDefaults fills every zero field with its default and returns o.
func (o *Options) EnsureDefaults(rt kernel.Runtime) *Options {
	if o.RebalanceInterval == 0 {
		o.RebalanceInterval = DefaultRebalanceInterval
	}
	if o.DeadAfter == 0 {
		o.DeadAfter = DefaultDeadAfter
	}
	if o.Logger == nil {
		o.Logger = rt.Logger()
	}
	return o
}

// Validate reports the first field out of range.
func (o *Options) Validate() error {
	switch {
	case o.Engine == nil:
		return errors.New("cluster: Options.Engine is required")
	case o.Router == nil:
		return errors.New("cluster: Options.Router is required")
	case o.Record.ClusterID == 0:
		return errors.New("cluster: Options.Record has no cluster ID")
	case o.Record.Replicas < 1:
		return fmt.Errorf("cluster: Options.Record.Replicas is %d, want at least 1", o.Record.Replicas)
	case o.DeadAfter < 3*gossipPeriod:
		return fmt.Errorf("cluster: Options.DeadAfter is %v, want at least %v (three gossip periods)", o.DeadAfter, 3*gossipPeriod)
	}
	return nil
}
