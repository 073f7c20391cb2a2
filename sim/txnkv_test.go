package sim

import (
	"context"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// The transactional key-value scenario: the KV scenario's clients,
// operations and checks (Porcupine, election safety, membership,
// convergence) on the transactional keyspace through txn.DB: gets and
// puts outside transactions, deletes, and compare-and-sets as
// read-then-write transactions. Linearizability here is the real-time
// half of strict serializability that the bank's totals cannot see: a
// read that begins after a write was acknowledged must see it, whatever
// the clocks of the nodes involved (the uncertainty window, commit-wait).
var txnKVScenario = Scenario{
	Name:         "txnkv",
	Setup:        func(s *Sim) Workload { return newTxnKVCluster(s, []kernel.NodeID{1, 2, 3}) },
	Adjust:       txnClocks,
	Rebuilds:     true,
	FaultTime:    kvScenario.FaultTime,
	ProgressTime: kvScenario.ProgressTime,
	QuiesceTime:  kvScenario.QuiesceTime,
}

// TestSimTxnKV runs the transactional KV scenario: seeds 1–20 by default,
// or those named.
func TestSimTxnKV(t *testing.T) {
	runScenario(t, txnKVScenario, seedRange(1, 20))
}

func newTxnKVCluster(s *Sim, servers []kernel.NodeID) *kvCluster {
	c := &kvCluster{}
	c.serverSet = newTxnServers(s, servers, func() bool { return c.stopped }, "h", "p")
	c.kvWorkload = newKVWorkload(s, servers, 6, func(rt kernel.Runtime, i int) kvCaller {
		return txnCallerOf(newTxnDB(rt, c.layout))
	})
	c.keys = []string{"a", "b", "k", "m", "s", "z"}
	if s.Rand().IntN(2) == 0 {
		c.keys = alphabetKeys()
	}
	c.opTimeout = 2 * time.Second
	if s.Rand().IntN(2) == 0 {
		c.crashClients(500 * time.Millisecond)
	}
	return c
}

// txnCallerOf performs the workload's operations through a txn.DB: a
// compare-and-set is a transaction ("" matches a missing key, as the
// model has it).
func txnCallerOf(db *txn.DB) kvCaller {
	return func(ctx context.Context, in KVInput) (KVOutput, error) {
		key := []byte(in.Key)
		switch in.Op {
		case OpGet:
			v, _, err := db.Get(ctx, key)
			return KVOutput{Value: string(v)}, err
		case OpPut:
			return KVOutput{}, db.Put(ctx, key, []byte(in.Value))
		case OpDelete:
			return KVOutput{}, db.Delete(ctx, key)
		}
		var swapped bool
		err := db.Txn(ctx, func(tx *txn.Tx) error {
			v, _, err := tx.Get(ctx, key)
			if err != nil {
				return err
			}
			if swapped = string(v) == in.Expect; swapped {
				return tx.Put(ctx, key, []byte(in.Value))
			}
			return nil
		})
		return KVOutput{OK: swapped}, err
	}
}
