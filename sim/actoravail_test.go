package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/actor"
	"github.com/orbitkernel/orbit/txn"
)

// The actor availability scenario: the availability scenario's crash,
// pause and isolation, one at a time, each of the node that hosts the
// most activations, while counter actors are called from every server
// node the way orbit serve's gRPC service calls them: a pool of actor
// clients sharing the node's routes (actor.Routes), and callers that give
// a call one attempt's time and then send it again through the next
// pooled client (as the Go client of the gRPC API does). Checked per
// fault: every other node serves again within a lease (the victim's
// actors cannot move sooner), an attempt (a host is suspected only once
// an attempt to it has run out) and availBound of the fault's start, and
// then serves every call within actorAvailSlowOp (a call is a few reads
// and a commit, about 70 ms at the simulator's disk latencies, where a
// KV operation is one round). A slow host is not judged: activations do
// not move off a slow node yet (docs/actors.md).
const (
	actorAvailLease   = time.Second
	actorAvailAttempt = time.Second
	actorAvailBound   = actorAvailLease + actorAvailAttempt + availBound
	actorAvailHold    = 5 * time.Second
	actorAvailPool    = 32
	actorAvailSlowOp  = 300 * time.Millisecond
)

var actorAvailKinds = []string{"crash", "pause", "isolate"}

var actorAvailScenario = Scenario{
	Name:         "actoravail",
	Setup:        func(s *Sim) Workload { return newActorAvailCluster(s) },
	Adjust:       availScenario.Adjust,
	FaultTime:    time.Duration(len(actorAvailKinds)) * (availCalm + actorAvailHold),
	ProgressTime: availScenario.ProgressTime,
	QuiesceTime:  availScenario.QuiesceTime,
}

// TestActorAvailability runs the actor availability scenario: seeds 1–4
// by default, or those named.
func TestActorAvailability(t *testing.T) {
	if testing.Short() && !replaying() {
		t.Skip("-short (make race): seconds a seed under the race detector; make test runs it")
	}
	runScenario(t, actorAvailScenario, seedRange(1, 4))
}

type actorAvailCluster struct {
	*availCluster
	hosts map[kernel.NodeID]*actor.Host // each node's, as last booted
}

func newActorAvailCluster(s *Sim) *actorAvailCluster {
	nodes := []kernel.NodeID{1, 2, 3}
	layout, err := consensus.NewLayout([][]byte{txn.KeyspaceStart, txn.KeyspaceEnd}, nodes, 3)
	if err != nil {
		panic(err)
	}
	c := &actorAvailCluster{hosts: map[kernel.NodeID]*actor.Host{}}
	c.availCluster = newAvailFaults(s, emptyServerSet(s, nodes, layout), actorAvailKinds, actorAvailBound)
	c.hold, c.slowOp = actorAvailHold, actorAvailSlowOp
	c.pick = c.busiestHost
	for _, id := range nodes {
		s.AddNode(id, c.boot)
	}
	c.start()
	return c
}

// busiestHost picks the node that hosts the most activations (the lowest
// of those that tie); none before any actor is active.
func (c *actorAvailCluster) busiestHost() (kernel.NodeID, bool) {
	var best kernel.NodeID
	most := 0
	for _, n := range c.nodes {
		if h := c.hosts[n]; h != nil {
			if k := len(h.Activations()); k > most {
				best, most = n, k
			}
		}
	}
	return best, most > 0
}

func (c *actorAvailCluster) boot(rt kernel.Runtime) {
	clock := newServerClock(rt)
	var st *consensus.Store
	machine := txn.NewMachine(clock, withNodeSilence(simTxnOptions(rt), &st))
	router := consensus.NewRouter(rt, c.layout)
	st = c.openStore(rt, c.openEngine(rt), consensus.Options{Keyspaces: []consensus.Keyspace{machine.Keyspace()}, Router: router, Clock: clock})
	opts := actor.Options{
		Runtime:        rt,
		Wall:           clock.Physical, // as kernel/node gives it
		NewDB:          nodeDBs(rt, func() *consensus.Router { return router }, clock),
		Types:          map[string]actor.Handler{"counter": counterActor},
		LeaseDuration:  actorAvailLease,
		AttemptTimeout: actorAvailAttempt,
		ReminderScan:   -1,
		Hosts:          func() []kernel.NodeID { return c.nodes },
		Routes:         actor.NewRoutes(), // the node's clients and its host's share it, as kernel/node has them
	}
	h, err := actor.NewHost(opts)
	if err != nil {
		kernel.Crash("actor host: %v", err)
	}
	h.Start()
	c.hosts[rt.NodeID()] = h
	pool := kernel.NewMailbox[*actor.Client](rt, "actor clients", actorAvailPool)
	for range actorAvailPool {
		cl, err := actor.NewClient(opts)
		if err != nil {
			kernel.Crash("actor client: %v", err)
		}
		pool.Send(cl)
	}
	keys := []string{"c1", "c2", "c3", "c4", "c5", "c6"}
	for i := range availCallers {
		rt.Go(fmt.Sprintf("caller-%d", i), func(ctx context.Context) {
			c.caller(ctx, rt, func(ctx context.Context, rng *rand.Rand) error {
				cl, err := pool.Recv(ctx)
				if err != nil {
					return err
				}
				defer pool.Send(cl)
				octx, cancel := rt.WithTimeout(ctx, actorAvailAttempt)
				defer cancel()
				method := "incr"
				if rng.IntN(2) == 0 {
					method = "get"
				}
				_, err = cl.Call(octx, actor.Ref{Type: "counter", Key: keys[rng.IntN(len(keys))]}, method, nil)
				return err
			})
		})
	}
}
