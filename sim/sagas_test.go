package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/actor"
)

// The saga scenario (docs/actors.md, "Checking it"): account actors on
// three hosts under swarm faults, and transfers between them as sagas
// (withdraw, undone by a refund; then deposit), started by clients while
// the faults run. A deposit that would take an account over a cap is
// refused, so some sagas compensate. After the heal a checker waits for
// every saga to settle (done or aborted: never stuck) and then reads
// every balance: the total must be the starting one and no balance
// negative — a step run twice, a compensation of a step that did not
// happen, or a step abandoned half-way shows as money made or lost. The
// hosts' commits are checked for single activation and exactly once, as
// in the actors scenario (calls between actors included).
var sagasScenario = Scenario{
	Name:          "sagas",
	Setup:         func(s *Sim) Workload { return newSagaCluster(s, []kernel.NodeID{1, 2, 3}) },
	Adjust:        txnClocks,
	FaultTime:     5 * time.Second,
	ProgressTime:  30 * time.Second,
	QuiesceTime:   3 * time.Second,
	KnownFailures: sagasKnownFailures,
	Regressions: map[uint64]string{
		244: "a call between actors ran twice: its record expired while the outbox kept resending it (a runaway clock; docs/actors.md, \"Exactly-once state changes\")",
		520: "the same as 244 with the code before that fix (planted: requests-not-touched); 244 no longer resends past the TTL since the traces moved",
	},
}

// TestSimSagas runs the saga scenario: seeds 1–20 and its regression
// seeds by default (but its known failures), or those named.
func TestSimSagas(t *testing.T) {
	runScenario(t, sagasScenario, seedRange(1, 20))
}

// sagasKnownFailures are the scenario's KnownFailures. (The two seeds once
// listed failed a convergence check that compared the wrong nodes:
// docs/consensus.md, "Next steps" 9.)
var sagasKnownFailures = map[uint64]string{
	171: "a leader that removed itself is asked by its node's clients until their deadlines, replica GC's query among them, and the range stays a replica short (docs/consensus.md, \"Next steps\" 14)",
}

// The accounts: each starts with sagaInitial; a deposit above sagaCap is
// refused.
var sagaAccounts = []string{"a", "b", "c", "d"}

const (
	sagaInitial = 100
	sagaCap     = 150
	sagaClients = 3
)

type sagaCluster struct {
	*serverSet
	*commitLog
	s       *Sim
	stopped bool
	healed  int64
	served  []int64
	// started are the sagas a client asked to start (some may not have),
	// with their plans, and which starts were acknowledged.
	started []string
	plans   map[string][]byte
	acked   map[string]bool
	// Set by the checker after the heal.
	settled      bool
	done, undone int
	status       string
}

func newSagaCluster(s *Sim, servers []kernel.NodeID) *sagaCluster {
	c := &sagaCluster{s: s, commitLog: newCommitLog(), healed: -1, served: make([]int64, sagaClients),
		plans: map[string][]byte{}, acked: map[string]bool{}}
	c.serverSet = newActorServers(s, servers, func() bool { return c.stopped }, func(kernel.Runtime, time.Duration) map[string]actor.Handler {
		return map[string]actor.Handler{"account": sagaAccount}
	}, c.commitLog)
	newClient := func(rt kernel.Runtime) *actor.Client {
		return newSimActorClient(rt, c.layout, servers, actor.PlaceRandom)
	}
	for i := range sagaClients {
		s.AddNode(firstClient+kernel.NodeID(i), func(rt kernel.Runtime) {
			rt.Go("saga client", func(ctx context.Context) { c.client(ctx, rt, i, newClient(rt)) })
		})
	}
	s.AddNode(reminderClient, func(rt kernel.Runtime) {
		rt.Go("saga checker", func(ctx context.Context) { c.checker(ctx, rt, newClient(rt)) })
	})
	return c
}

// sagaAccount is an account: its state is its balance (sagaInitial when
// none); "withdraw" and "deposit" (payload: the amount) refuse to go
// below zero or above sagaCap; "refund" (a withdrawal's compensation)
// always adds; "balance" answers it.
func sagaAccount(_ context.Context, c actor.Call) (actor.Result, error) {
	bal := sagaInitial
	if c.State != nil {
		bal, _ = strconv.Atoi(string(c.State))
	}
	if c.Method == "balance" {
		return actor.Result{Reply: []byte(strconv.Itoa(bal))}, nil
	}
	var amount int
	if err := json.Unmarshal(c.Payload, &amount); err != nil || amount <= 0 {
		return actor.Result{}, fmt.Errorf("account: %s takes a positive amount, not %q", c.Method, c.Payload)
	}
	switch c.Method {
	case "withdraw":
		if amount > bal {
			return actor.Result{}, fmt.Errorf("account %s: %d > balance %d", c.Ref.Key, amount, bal)
		}
		bal -= amount
	case "deposit":
		if bal+amount > sagaCap {
			return actor.Result{}, fmt.Errorf("account %s: %d + %d over the cap", c.Ref.Key, bal, amount)
		}
		bal += amount
	case "refund":
		bal += amount
	default:
		return actor.Result{}, fmt.Errorf("account: no method %q", c.Method)
	}
	s := []byte(strconv.Itoa(bal))
	return actor.Result{Reply: s, Write: true, State: s}, nil
}

// transferPlan is a saga moving amount from one account to another.
func transferPlan(from, to string, amount int) []byte {
	a := json.RawMessage(strconv.Itoa(amount))
	plan := actor.SagaPlan{Steps: []actor.SagaStep{
		{Do: actor.SagaCall{Type: "account", Key: from, Method: "withdraw", Payload: a},
			Undo: &actor.SagaCall{Type: "account", Key: from, Method: "refund", Payload: a}},
		{Do: actor.SagaCall{Type: "account", Key: to, Method: "deposit", Payload: a}},
	}}
	b, err := json.Marshal(plan)
	if err != nil {
		panic(err)
	}
	return b
}

// client starts transfers until the heal.
func (c *sagaCluster) client(ctx context.Context, rt kernel.Runtime, i int, cl *actor.Client) {
	rng := rt.Rand()
	for n := 0; c.healed < 0 && !c.stopped; n++ {
		from := rng.IntN(len(sagaAccounts))
		to := (from + 1 + rng.IntN(len(sagaAccounts)-1)) % len(sagaAccounts)
		key := fmt.Sprintf("s%d-%d", i, n)
		c.started = append(c.started, key)
		c.plans[key] = transferPlan(sagaAccounts[from], sagaAccounts[to], 1+rng.IntN(60))
		cctx, cancel := rt.WithTimeout(ctx, 3*time.Second)
		_, err := cl.Call(cctx, actor.Ref{Type: actor.SagaType, Key: key}, "start", c.plans[key])
		cancel()
		if err == nil {
			c.served[i] = c.s.now
			c.acked[key] = true
		}
		if rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(50*time.Millisecond))) != nil {
			return
		}
	}
}

// errSagaViolation marks what the checker found broken.
var errSagaViolation = errors.New("sagas: invariant broken")

// checker, after the heal, waits for every saga to settle, then audits
// the balances.
func (c *sagaCluster) checker(ctx context.Context, rt kernel.Runtime, cl *actor.Client) {
	for c.healed < 0 {
		if rt.Sleep(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
	// A call to a cold actor pays an activation and a turn, each a few
	// transactional reads that wait out the clock offsets between hosts
	// and leaseholders (up to 400 ms: a leaseholder serves no read above
	// its clock): seconds, not one.
	call := func(typ, key, method string) ([]byte, error) {
		cctx, cancel := rt.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return cl.Call(cctx, actor.Ref{Type: typ, Key: key}, method, nil)
	}
	checked := false // the checker's own saga started (below)
	for pending := 0; !c.stopped; pending = 0 {
		c.done, c.undone = 0, 0
		for _, key := range c.started {
			out, err := call(actor.SagaType, key, "status")
			var st actor.SagaState
			if err == nil {
				err = json.Unmarshal(out, &st)
			}
			switch {
			case err != nil, st.Phase == actor.SagaRunning, st.Phase == actor.SagaCompensating:
				pending++
			case st.Phase == "none" && c.acked[key]:
				if c.commitLog.violation == nil {
					c.commitLog.violation = fmt.Errorf("%w: saga %s's start was acknowledged and it has no state", errSagaViolation, key)
				}
			case st.Phase == "none":
				// A start whose outcome its client never learned may
				// still run (a copy queued at a host, or on the way):
				// "none" is not settled. Start it here, with its plan
				// (a second start answers the saga's state and runs
				// nothing), and wait for it to settle (seed 237 audited
				// while such a start withdrew from an account).
				pending++
				cctx, cancel := rt.WithTimeout(ctx, 5*time.Second)
				if _, err := cl.Call(cctx, actor.Ref{Type: actor.SagaType, Key: key}, "start", c.plans[key]); err == nil {
					c.acked[key] = true
				}
				cancel()
			case st.Phase == actor.SagaStuck:
				if c.commitLog.violation == nil {
					c.commitLog.violation = fmt.Errorf("%w: saga %s is stuck: a refund was refused (%s)", errSagaViolation, key, st.LastError)
				}
			case st.Phase == actor.SagaDone:
				c.done++
			case st.Phase == actor.SagaAborted:
				c.undone++
			}
		}
		c.status = fmt.Sprintf("sagas: %d started, %d done, %d aborted, %d not settled", len(c.started), c.done, c.undone, pending)
		if pending == 0 && c.done == 0 && !checked {
			// The faults let no saga through (seed 37: five of six
			// starts refused, one aborted): the checker starts one
			// of its own, so that the run checks a saga that runs to
			// its end. Listed before its first start (a start whose
			// outcome is unknown may have run), and started again
			// until one is acknowledged (a second start of a saga
			// answers its state).
			if !slices.Contains(c.started, "checker") {
				c.started = append(c.started, "checker")
			}
			c.plans["checker"] = transferPlan(sagaAccounts[0], sagaAccounts[1], 1)
			cctx, cancel := rt.WithTimeout(ctx, 5*time.Second)
			_, err := cl.Call(cctx, actor.Ref{Type: actor.SagaType, Key: "checker"}, "start", c.plans["checker"])
			cancel()
			if checked = err == nil; checked {
				c.acked["checker"] = true
			}
			continue
		}
		if pending == 0 {
			break
		}
		if rt.Sleep(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
	total, balances := 0, ""
	for _, a := range sagaAccounts {
		out, err := call("account", a, "balance")
		for err != nil && !c.stopped {
			_ = rt.Sleep(ctx, 100*time.Millisecond)
			out, err = call("account", a, "balance")
		}
		n, _ := strconv.Atoi(string(out))
		total += n
		balances += fmt.Sprintf(" %s=%d", a, n)
		if n < 0 && c.commitLog.violation == nil {
			c.commitLog.violation = fmt.Errorf("%w: account %s holds %d", errSagaViolation, a, n)
		}
	}
	if want := sagaInitial * len(sagaAccounts); total != want && c.commitLog.violation == nil {
		c.commitLog.violation = fmt.Errorf("%w: the accounts hold %d after every saga settled, want %d (%s; %s)", errSagaViolation, total, want, balances, c.status)
	}
	c.settled = true
}

func (c *sagaCluster) Targets() []kernel.NodeID { return c.nodes }

func (c *sagaCluster) Healed() {
	c.healed = c.s.now
	c.faultsOver = true
}

func (c *sagaCluster) Stop() { c.stopped = true }

func (c *sagaCluster) Settled() bool { return c.caughtUp() }

// Progressed: every saga settled and the audit ran.
func (c *sagaCluster) Progressed() bool { return c.settled }

func (c *sagaCluster) Status() string {
	return fmt.Sprintf("%d state changes committed; %s; ", c.count(), c.status) + c.serverSet.status(c.served, c.healed)
}

func (c *sagaCluster) Check(string) error {
	switch {
	case c.safetyError != nil:
		return c.safetyError
	case c.done == 0:
		return fmt.Errorf("sagas: no saga completed, so the run checks little (%s)", c.status)
	}
	if err := c.commitLog.check(); err != nil {
		return err
	}
	return c.checkConvergence()
}
