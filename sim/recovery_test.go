package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// The recovery scenario (docs/txn.md, "Checking it"): transactions whose
// coordinators are not there to finish them, on keys nobody reads until
// the end. Clients insert fresh keys, two to seven per transaction,
// spread over the ranges, and never read them; a coordinator that
// vanishes after its decision (the txn.coordinator-vanishes-after-decision
// buggify site) or whose resolution fails under the faults leaves its
// intents and its record to garbage collection alone, which resolves
// them from the record (a condensed record's spans, for the clients
// that keep records of a few keys' bytes) and forgets it. Once the
// clients stop, a last collection pass runs past GCTTL, and one scan
// reads everything: every transaction must be whole or absent (a
// fractured transaction broke atomicity), and every acknowledged one
// whole (a lost write). The bank cannot see this: its audits read every
// account within moments, and each intent an audit meets is settled
// from the record before collection gets to it.
var recoveryScenario = Scenario{
	Name:         "recovery",
	Setup:        func(s *Sim) Workload { return newRecoveryCluster(s, []kernel.NodeID{1, 2, 3}) },
	Adjust:       txnClocks,
	FaultTime:    5 * time.Second,
	ProgressTime: 30 * time.Second,
	// Time for the auditor after the clients stop: their last
	// transactions, GCTTL, a collection pass, and one read-only scan of
	// every key across many ranges, which restarts on every uncertain
	// value (seed 606's took 6 s); Settled waits for it after that.
	QuiesceTime: 10 * time.Second,
	Regressions: map[uint64]string{
		87: "the final read met the intents of transactions whose coordinators vanished before their decisions, which collection left (their records pending): pushing each one kept every attempt of the scan past the read floor (GCTTL less the maximum offset), until the settle time ran out; collection now pushes the transactions of intents older than its threshold (docs/txn.md, step 6, \"Garbage collection\")",
	},
}

// TestSimRecovery runs the recovery scenario: seeds 1–20 by default, or
// those named.
func TestSimRecovery(t *testing.T) {
	runScenario(t, recoveryScenario, seedRange(1, 20))
}

const (
	recoveryClients = 4
	// auditorNode runs the last collection pass and the final read;
	// like the clients, never a fault target.
	auditorNode kernel.NodeID = 204
)

// insertTxn is one client transaction: the keys it inserts (each holding
// the transaction's label), and whether it was acknowledged.
type insertTxn struct {
	label string
	keys  []string
	acked bool
}

type recoveryCluster struct {
	*serverSet
	s        *Sim
	stopped  bool
	healed   int64
	served   []int64
	inFlight int
	txns     []*insertTxn
	failed   int
	lastErr  error
	// The final read: done once it ran, found the keys it read (key to
	// value), or err if it could not run.
	done    bool
	found   map[string]string
	readErr error
}

func newRecoveryCluster(s *Sim, servers []kernel.NodeID) *recoveryCluster {
	c := &recoveryCluster{s: s, healed: -1, served: make([]int64, recoveryClients)}
	c.serverSet = newTxnServers(s, servers, func() bool { return c.stopped }, "h", "p")
	for i := range recoveryClients {
		s.AddNode(firstClient+kernel.NodeID(i), func(rt kernel.Runtime) {
			rt.Go("recovery client", func(ctx context.Context) { c.client(ctx, rt, i, newTxnDB(rt, c.layout)) })
		})
	}
	s.AddNode(auditorNode, func(rt kernel.Runtime) {
		rt.Go("recovery auditor", func(ctx context.Context) { c.audit(ctx, rt, newTxnDB(rt, c.layout)) })
	})
	return c
}

// client inserts transactions of fresh keys until the workload stops.
// Its keys are letter/client/n, the letters distinct and drawn at random,
// so that one transaction's keys lie in several ranges.
func (c *recoveryCluster) client(ctx context.Context, rt kernel.Runtime, i int, db *txn.DB) {
	rng := rt.Rand()
	for n := 0; !c.stopped; n++ {
		t := &insertTxn{label: fmt.Sprintf("%d/%d", i, n)}
		for _, l := range rng.Perm(26)[:2+rng.IntN(6)] {
			t.keys = append(t.keys, fmt.Sprintf("%c/%s", 'a'+l, t.label))
		}
		c.txns = append(c.txns, t)
		c.inFlight++
		actx, cancel := rt.WithTimeout(ctx, 3*time.Second)
		err := db.Txn(actx, func(tx *txn.Tx) error {
			for _, k := range t.keys {
				if err := tx.Put(actx, []byte(k), []byte(t.label)); err != nil {
					return err
				}
			}
			return nil
		})
		cancel()
		c.inFlight--
		if err != nil {
			c.failed++
			c.lastErr = err
		} else {
			t.acked = true
			c.served[i] = c.s.now
		}
		if ctx.Err() != nil {
			return
		}
		_ = rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(10*time.Millisecond)))
	}
}

// audit waits for the clients to stop and their transactions to end,
// then for GCTTL (and the clocks' offset) to pass, runs a collection
// pass, and reads every key in one scan; each step tried again until it
// completes (auditAttempts), else the final read's error says which.
func (c *recoveryCluster) audit(ctx context.Context, rt kernel.Runtime, db *txn.DB) {
	for !c.stopped || c.inFlight > 0 {
		if rt.Sleep(ctx, 50*time.Millisecond) != nil {
			return
		}
	}
	if rt.Sleep(ctx, simGCTTL+500*time.Millisecond) != nil {
		return
	}
	err := retried(ctx, rt, 2*time.Second, func(pass context.Context) error {
		_, err := db.CollectGarbage(pass, false)
		return err
	})
	if err != nil {
		c.readErr, c.done = fmt.Errorf("the last collection pass: %w", err), true
		return
	}
	var keys int
	for _, t := range c.txns {
		keys += len(t.keys)
	}
	found := map[string]string{}
	err = retried(ctx, rt, 15*time.Second, func(rctx context.Context) error {
		return db.Txn(rctx, func(tx *txn.Tx) error {
			tx.SetReadOnly()
			clear(found)
			kvs, err := tx.Scan(rctx, []byte("a/"), []byte("{"), keys+1)
			for _, kv := range kvs {
				found[string(kv.Key)] = string(kv.Value)
			}
			return err
		})
	})
	if err != nil {
		c.readErr, c.done = fmt.Errorf("the final read: %w", err), true
		return
	}
	c.found, c.done = found, true
}

// auditAttempts bounds how often the auditor tries a step.
const auditAttempts = 11

// retried runs fn, each attempt within timeout, until it succeeds or has
// failed auditAttempts times (its last error), 200 ms apart; ctx's end
// stops it too.
func retried(ctx context.Context, rt kernel.Runtime, timeout time.Duration, fn func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := rt.WithTimeout(ctx, timeout)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		if attempt == auditAttempts {
			return fmt.Errorf("failed %d times: %w", attempt, err)
		}
		if serr := rt.Sleep(ctx, 200*time.Millisecond); serr != nil {
			return serr
		}
	}
}

var errRecoveryViolation = errors.New("recovery: atomicity broken")

func (c *recoveryCluster) Targets() []kernel.NodeID { return c.nodes }

func (c *recoveryCluster) Healed() {
	c.healed = c.s.now
	c.faultsOver = true
}

func (c *recoveryCluster) Stop() { c.stopped = true }

// Settled waits for the final read too.
func (c *recoveryCluster) Settled() bool { return c.done && c.caughtUp() }

func (c *recoveryCluster) Progressed() bool { return c.progressed(c.served, c.healed) }

func (c *recoveryCluster) Status() string {
	return fmt.Sprintf("transactions %d, failed %d (last: %v); ", len(c.txns), c.failed, c.lastErr) + c.status(c.served, c.healed)
}

func (c *recoveryCluster) Check(string) error {
	if c.safetyError != nil {
		return c.safetyError
	}
	if err := c.checkFinalRead(); err != nil {
		return err
	}
	return c.checkConvergence()
}

// checkFinalRead judges the final read: each transaction whole or absent,
// each acknowledged one whole, and nothing read that no transaction wrote.
func (c *recoveryCluster) checkFinalRead() error {
	switch {
	case !c.done:
		return fmt.Errorf("recovery: the final read did not finish within the settle time (transactions %d, failed %d, last: %v)", len(c.txns), c.failed, c.lastErr)
	case c.readErr != nil:
		return fmt.Errorf("recovery: %w", c.readErr)
	}
	written := map[string]string{}
	acked := 0
	for _, t := range c.txns {
		var present, missing []string
		for _, k := range t.keys {
			written[k] = t.label
			if v, ok := c.found[k]; ok && v == t.label {
				present = append(present, k)
			} else {
				missing = append(missing, k)
			}
		}
		if t.acked {
			acked++
		}
		switch {
		case len(present) > 0 && len(missing) > 0:
			return fmt.Errorf("%w: fractured transaction %s (acknowledged: %v): the final read found %v but not %v",
				errRecoveryViolation, t.label, t.acked, present, missing)
		case t.acked && len(missing) > 0:
			return fmt.Errorf("%w: lost write: acknowledged transaction %s is missing all of %v", errRecoveryViolation, t.label, missing)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.found)) {
		if want, ok := written[k]; !ok || c.found[k] != want {
			return fmt.Errorf("%w: the final read found %s = %q, which no transaction wrote", errRecoveryViolation, k, c.found[k])
		}
	}
	if acked == 0 {
		return fmt.Errorf("recovery: a run without an acknowledged transaction checks nothing (%d failed; last: %v)", c.failed, c.lastErr)
	}
	return nil
}
