package sim

import (
	"context"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
)

// Aimed faults: what a planted bug needs and the swarm reaches only at a
// rare seed, run on purpose in half a scenario's seeds. The admin node
// hands the leadership (and lease) of the ranges holding some keys from
// member to member while the faults run, as a rebalancer evening out
// leaderships does (it prefers the node with the fewest, which is the one
// that just restarted), and restarts servers with their clocks a jump
// ahead: a node restarted so starts fenced, and the lease mover makes it
// leader of ranges before its first clock check (planted
// fenced-leader-stamps, which survived 300 seeds of the redistxn scenario
// without them). The actor scenario's aimed half has a hot, slow counter
// instead (actors_test.go; planted expired-calls-run).

// aimedSeed reports whether seed is in the half of a scenario's seeds that
// run what is aimed at name: a hash of the seed, so that the other half's
// traces do not move, and never one of the scenario's regression seeds,
// which must run as they did when they found their bugs (several catch
// planted bugs there and nowhere else).
func aimedSeed(seed uint64, name string, regressions map[uint64]string) bool {
	_, regression := regressions[seed]
	return !regression && unit(mix(seed, strHash(name), 0xa1ed)) < 0.5
}

// restartAhead, during the faults, restarts a server now and then with
// its clock a jump ahead (2–30 s), kept for 1–3 s past the restart, as a
// node that crashes while NTP has its clock wrong: it starts fenced (its
// clock not checked yet, then too far from its peers'), and must evaluate
// nothing while the lease mover hands it leaderships (planted
// fenced-leader-stamps: a Redis range's clock stamped a jump ahead).
func (c *serverSet) restartAhead(ctx context.Context, rt kernel.Runtime) {
	rng := rt.Rand()
	for !c.faultsOver {
		if rt.Sleep(ctx, time.Duration(500+rng.IntN(1500))*time.Millisecond) != nil || c.faultsOver {
			return
		}
		n := c.sim.Node(c.nodes[rng.IntN(len(c.nodes))])
		if !n.Up() {
			continue
		}
		jump := time.Duration(2+rng.IntN(28)) * time.Second
		c.sim.logf(0, "restart ahead: n%d crashes, its clock %v ahead", n.id, jump)
		n.JumpClock(jump)
		n.Crash()
		_ = rt.Sleep(ctx, time.Duration(50+rng.IntN(250))*time.Millisecond)
		n.Restart()
		_ = rt.Sleep(ctx, time.Duration(1000+rng.IntN(2000))*time.Millisecond)
		c.sim.logf(0, "restart ahead: n%d's clock back by %v", n.id, jump)
		n.JumpClock(-jump)
	}
}

// stepTogether, during the faults, now and then steps the wall clocks of
// a quorum of the servers the same way at once (2–60 s either way, the
// Jepsen clock nemesis's size, each within 100 ms of the others), as an
// NTP server they share would, and steps them back 1–3 s later; a node
// that crashes meanwhile comes back with its clock right
// (StepClockUntilCrash). Their hybrid clocks agree with every peer's all
// along, so none may take the step for a correction (planted
// step-taken-on-any-word: the cluster's timestamps run the step ahead of
// real time, and the clients, whose clocks did not step, refuse them
// until real time catches up: longer than the scenario's 30 s progress
// window for the longer steps). A quorum that restarts under such a
// step is not made here: its nodes start from the stepped wall clocks,
// agree with each other, and set the cluster's time there, which the
// clients' own clocks (unchecked, outside the cluster) then refuse
// (docs/consensus.md, "Clock offsets").
func (c *serverSet) stepTogether(ctx context.Context, rt kernel.Runtime) {
	rng := rt.Rand()
	for !c.faultsOver {
		if rt.Sleep(ctx, time.Duration(500+rng.IntN(1500))*time.Millisecond) != nil || c.faultsOver {
			return
		}
		jump := time.Duration(2+rng.IntN(59)) * time.Second
		if rng.IntN(2) == 0 {
			jump = -jump
		}
		quorum := len(c.nodes)/2 + 1
		type stepped struct {
			n    *Node
			inc  uint32
			step time.Duration
		}
		var steps []stepped
		for _, i := range rng.Perm(len(c.nodes)) {
			if len(steps) == quorum {
				break
			}
			n := c.sim.Node(c.nodes[i])
			if !n.up {
				continue // it would restart under the step
			}
			step := jump + time.Duration(rng.IntN(201)-100)*time.Millisecond
			c.sim.logf(0, "steps together: n%d's clock steps %v", n.id, step)
			n.StepClockUntilCrash(step)
			steps = append(steps, stepped{n, n.inc, step})
		}
		_ = rt.Sleep(ctx, time.Duration(1000+rng.IntN(2000))*time.Millisecond)
		for _, st := range steps {
			if st.n.inc == st.inc && st.n.up { // else its crash undid it
				c.sim.logf(0, "steps together: n%d's clock back by %v", st.n.id, st.step)
				st.n.StepClockUntilCrash(-st.step)
			}
		}
	}
}

// moveLeases is the admin node's lease mover: a move every 150 ms on
// average, to a member drawn at random, until the heal.
func (c *serverSet) moveLeases(ctx context.Context, rt kernel.Runtime) {
	cl := consensus.NewClient(consensus.NewRouter(rt, c.layout), "lease mover")
	rng := rt.Rand()
	for !c.faultsOver {
		if transferLease(ctx, rt, cl, c.leaseKeys[rng.IntN(len(c.leaseKeys))]) == nil {
			c.leaseMoves++
		}
		if rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(150*time.Millisecond))) != nil {
			return
		}
	}
}
