package sim

import (
	"context"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
)

// The replicated key-value scenario: three nodes, three ranges, clients on
// a small hot key set spread over every range, under swarm faults, while
// replicas are removed and added back. Checked by Porcupine, election
// safety, the final membership and convergence of every range's replicas
// (servers_test.go).

// Sync latency and disk errors are on as the plan draws them (sync latency
// was off here until 2026-12-02, for fear that Pebble's log rotation would
// bill syncs differently from run to run; 300 seeds of this scenario and
// the five-node one, each run twice, matched with it on).
var kvScenario = Scenario{
	Name:         "kv",
	Setup:        func(s *Sim) Workload { return newKVCluster(s, []kernel.NodeID{1, 2, 3}, 3) },
	Rebuilds:     true,
	FaultTime:    5 * time.Second,
	ProgressTime: 30 * time.Second,
	QuiesceTime:  3 * time.Second,
}

// The five-node variant: 3 replicas per range, so membership changes move
// replicas between nodes (learners on nodes new to the range, removed
// replicas garbage-collected), and elections have more voters to split.
var kv5Scenario = Scenario{
	Name:         "kv5",
	Setup:        func(s *Sim) Workload { return newKVCluster(s, []kernel.NodeID{1, 2, 3, 4, 5}, 3) },
	Rebuilds:     true,
	FaultTime:    kvScenario.FaultTime,
	ProgressTime: kvScenario.ProgressTime,
	QuiesceTime:  kvScenario.QuiesceTime,
}

type kvCluster struct {
	*kvWorkload
	*serverSet
}

// Settled waits for every replica to apply what it knows committed
// (serverSet.caughtUp) before the check compares them.
func (c *kvCluster) Settled() bool { return c.caughtUp() }

func newKVCluster(s *Sim, servers []kernel.NodeID, replicas int) *kvCluster {
	layout, err := consensus.NewLayout([][]byte{[]byte("h"), []byte("p")}, servers, replicas)
	if err != nil {
		panic(err)
	}
	c := &kvCluster{}
	c.serverSet = newServerSet(s, servers, layout, func(rt kernel.Runtime) {
		c.openStore(rt, c.openEngine(rt), consensus.Options{})
	})
	c.kvWorkload = newKVWorkload(s, servers, 6, func(rt kernel.Runtime, i int) kvCaller {
		return kvCallerOf(consensus.NewClient(consensus.NewRouter(rt, layout), "kv"))
	})
	c.keys = []string{"a", "b", "k", "m", "s", "z"}
	if s.Rand().IntN(2) == 0 {
		// Swarm: a wider key set in half the seeds, so that a key a lagging
		// replica missed the deletion of is less likely to be written again
		// before the checks look (snapshots must carry deletions).
		c.keys = alphabetKeys()
	}
	c.opTimeout = time.Second
	if s.Rand().IntN(2) == 0 {
		c.crashClients(500 * time.Millisecond)
	}
	return c
}

// alphabetKeys is the wider key set: "a" to "z".
func alphabetKeys() []string {
	var keys []string
	for k := 'a'; k <= 'z'; k++ {
		keys = append(keys, string(k))
	}
	return keys
}

// kvCallerOf performs the workload's operations through a consensus
// client.
func kvCallerOf(cl *consensus.Client) kvCaller {
	return func(ctx context.Context, in KVInput) (KVOutput, error) {
		req := consensus.Request{Key: []byte(in.Key), Value: []byte(in.Value), Expect: []byte(in.Expect)}
		switch in.Op {
		case OpGet:
			req.Op = consensus.OpGet
		case OpPut:
			req.Op = consensus.OpPut
		case OpCAS:
			req.Op = consensus.OpCAS
		case OpDelete:
			req.Op = consensus.OpDelete
		}
		r, err := cl.Do(ctx, req)
		return KVOutput{Value: string(r.Value), OK: r.OK}, err
	}
}

func (c *kvCluster) Healed() {
	c.kvWorkload.Healed()
	c.faultsOver = true
}

// Status tells who waits for what when progress fails.
func (c *kvCluster) Status() string { return c.status(c.served, c.healed) }

// Progressed also requires every range to be back on its placement.
func (c *kvCluster) Progressed() bool { return c.restored && c.kvWorkload.Progressed() }

// Check adds election safety, the final membership and convergence to
// linearizability.
func (c *kvCluster) Check(vizPath string) error {
	if c.safetyError != nil {
		return c.safetyError
	}
	if err := c.kvWorkload.Check(vizPath); err != nil {
		return err
	}
	return c.checkConvergence()
}
