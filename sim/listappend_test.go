package sim

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// The list-append scenario (docs/txn.md, "Checking it"): clients run
// transactions of one to four steps, each reading a list or appending a
// distinct element to it (read, then write the list one longer), over
// five keys in three ranges under swarm faults. Elle (jepsen/check)
// infers every write-write, write-read, read-write and real-time
// dependency from the lists read and names any cycle: G0, G1c, G-single,
// G2 (with "-realtime" when strict serializability alone is broken), and
// aborted or intermediate reads.
var listAppendScenario = Scenario{
	Name:         "listappend",
	Setup:        func(s *Sim) Workload { return newListAppendCluster(s, []kernel.NodeID{1, 2, 3}) },
	Adjust:       txnClocks,
	FaultTime:    5 * time.Second,
	ProgressTime: 30 * time.Second,
	QuiesceTime:  3 * time.Second,
}

// TestSimListAppend runs the list-append scenario: seeds 1–20 by
// default, or those named.
func TestSimListAppend(t *testing.T) {
	runScenario(t, listAppendScenario, seedRange(1, 20))
}

var listKeys = []string{"a", "f", "k", "q", "w"}

const listClients = 4

type listAppendCluster struct {
	*serverSet
	s       *Sim
	stopped bool
	healed  int64
	served  []int64
	txns    []*check.Txn
	next    int // the next element to append (elements are distinct)
}

func newListAppendCluster(s *Sim, servers []kernel.NodeID) *listAppendCluster {
	c := &listAppendCluster{s: s, healed: -1, served: make([]int64, listClients)}
	c.serverSet = newTxnServers(s, servers, func() bool { return c.stopped }, "h", "p")
	for i := range listClients {
		s.AddNode(firstClient+kernel.NodeID(i), func(rt kernel.Runtime) {
			rt.Go("list client", func(ctx context.Context) { c.client(ctx, rt, i, newTxnDB(rt, c.layout)) })
		})
	}
	// Coordinators die mid-transaction in half the seeds: their intents
	// stay until a transaction that meets one finds the record's
	// heartbeat expired and aborts it (or finds it committed and
	// resolves it); the transaction in flight stays unknown.
	if s.Rand().IntN(2) == 0 {
		crashClientsUntil(s, listClients, 500*time.Millisecond, func() bool { return c.healed >= 0 || c.stopped }, func(int) {})
	}
	return c
}

func (c *listAppendCluster) client(ctx context.Context, rt kernel.Runtime, i int, db *txn.DB) {
	rng := rt.Rand()
	for !c.stopped {
		// The transaction's plan: its steps, appends with their elements.
		var plan []check.MicroOp
		for range 1 + rng.IntN(4) {
			op := check.MicroOp{Key: listKeys[rng.IntN(len(listKeys))], Append: rng.IntN(2) == 0}
			if op.Append {
				c.next++
				op.Value = strconv.Itoa(c.next)
			}
			plan = append(plan, op)
		}
		// Recorded as unknown from its start: a client that stops
		// mid-transaction leaves it so.
		t := &check.Txn{Process: i, Type: history.TypeInfo, Invoke: c.s.now, Ops: plan}
		c.txns = append(c.txns, t)
		actx, cancel := rt.WithTimeout(ctx, 3*time.Second)
		var done []check.MicroOp
		locking := rng.IntN(2) == 0 // appends read their lists with GetForUpdate
		err := db.Txn(actx, func(tx *txn.Tx) error {
			done = nil // a retry starts over
			for _, op := range plan {
				get := tx.Get
				if locking && op.Append {
					get = tx.GetForUpdate
				}
				v, _, err := get(actx, []byte(op.Key))
				if err != nil {
					return err
				}
				list := splitList(v)
				// Every step reads the list; an append's read tells Elle
				// what it extended, too.
				done = append(done, check.MicroOp{Key: op.Key, Values: list})
				if op.Append {
					if err := tx.Put(actx, []byte(op.Key), []byte(strings.Join(append(list, op.Value), ","))); err != nil {
						return err
					}
					done = append(done, op)
				}
			}
			return nil
		})
		cancel()
		t.Complete = c.s.now
		switch {
		case err == nil:
			t.Type, t.Ops = history.TypeOK, done
			c.served[i] = c.s.now
		case errors.Is(err, txn.ErrRetry) || errors.Is(err, consensus.ErrNotApplied):
			// Definitely not committed: it gave up before its decision,
			// or its record refused it.
			t.Type = history.TypeFail
			c.served[i] = c.s.now
		}
		if ctx.Err() != nil {
			return
		}
		_ = rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(10*time.Millisecond)))
	}
}

func splitList(v []byte) []string {
	if len(v) == 0 {
		return []string{}
	}
	return strings.Split(string(v), ",")
}

func (c *listAppendCluster) Targets() []kernel.NodeID { return c.nodes }
func (c *listAppendCluster) Healed() {
	c.healed, c.faultsOver = c.s.now, true
	for i := range listClients {
		c.s.Node(firstClient + kernel.NodeID(i)).Restart() // a no-op for a running one
	}
}
func (c *listAppendCluster) Stop() { c.stopped = true }

// Settled waits for every replica to apply what it knows committed
// (serverSet.caughtUp) before the check compares them.
func (c *listAppendCluster) Settled() bool { return c.caughtUp() }

func (c *listAppendCluster) Progressed() bool { return c.progressed(c.served, c.healed) }

func (c *listAppendCluster) Status() string {
	return fmt.Sprintf("%d transactions; ", len(c.txns)) + c.status(c.served, c.healed)
}

func (c *listAppendCluster) Check(string) error {
	if c.safetyError != nil {
		return c.safetyError
	}
	if err := checkElle("listappend", c.txns); err != nil {
		return err
	}
	return c.checkConvergence()
}

// checkElle judges a run's list-append transactions with Elle; a run
// without a committed read checks nothing, and fails.
func checkElle(scenario string, recorded []*check.Txn) error {
	txns := make([]check.Txn, len(recorded))
	reads := 0
	for i, t := range recorded {
		txns[i] = *t
		for _, op := range t.Ops {
			if t.Type == history.TypeOK && !op.Append {
				reads++
			}
		}
	}
	if reads == 0 {
		return fmt.Errorf("%s: no committed read: the run checks nothing", scenario)
	}
	if r := check.Elle(txns); !r.Valid {
		return fmt.Errorf("%s: %s\n%s", scenario, r.Summary, strings.Join(r.Problems, "\n"))
	}
	return nil
}
