package jepsen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/topo"
)

// The leader nemeses hurt the node that leads the most ranges (or, with
// Config.LeaderRange, one range's leader) as read from the nodes'
// orbit_raft_leader{range} metrics just before the fault. They measure
// what issue 11 promises: after a leader is lost its ranges serve again
// within about two election timeouts through every node, and a slow node
// loses leadership. Each starts from a ready cluster (every member answers
// /readyz), so what it measures is the loss of a leader, not the tail of
// the previous fault.

// leaderNemeses are the nemeses above; the recovery and availability
// verdicts judge their faults.
var leaderNemeses = []string{"kill-leader", "pause-leader", "slow-leader"}

// The delay slow-leader adds to every link of the leader, both ways:
// uniform in [slowMean−slowJitter, slowMean+slowJitter] = [120ms, 280ms],
// far above the 200 ms election timeout's heartbeats yet not a partition.
const (
	slowMean   = 200 * time.Millisecond
	slowJitter = 80 * time.Millisecond
)

// readyWait bounds how long a leader nemesis waits for a ready cluster.
const readyWait = 15 * time.Second

// errNoLeader: no node reported leading the ranges a leader nemesis looks
// for, so there was nobody to hurt.
var errNoLeader = errors.New("no node reports leading a range (orbit_raft_leader)")

// errNotReady: the cluster was not ready when a leader nemesis wanted to
// start, so it did not (its measurement would be the previous fault's).
var errNotReady = errors.New("the cluster was not ready")

// leaderTarget picks the node a leader nemesis hurts from the ranges'
// leaders before the fault: the leader of range want, or (want == 0) the
// node leading the most ranges, ties drawn with pick. It returns the
// node's ID and the ranges it leads.
func leaderTarget(before []topo.Range, want, pick int) (int, []int, error) {
	led := map[int][]int{}
	for _, r := range before {
		if r.Leader != 0 {
			led[r.Leader] = append(led[r.Leader], r.ID)
		}
	}
	if want != 0 {
		for _, r := range before {
			if r.ID == want && r.Leader != 0 {
				return r.Leader, led[r.Leader], nil
			}
		}
		return 0, nil, fmt.Errorf("range %d: %w", want, errNoLeader)
	}
	most := 0
	for _, rs := range led {
		most = max(most, len(rs))
	}
	var candidates []int
	for n, rs := range led {
		if len(rs) == most {
			candidates = append(candidates, n)
		}
	}
	if len(candidates) == 0 {
		return 0, nil, errNoLeader
	}
	sort.Ints(candidates)
	n := candidates[pick%len(candidates)]
	return n, led[n], nil
}

// leaderFault injects one of leaderNemeses on the leader as before shows
// it and returns how to undo it.
func (nm *nemesis) leaderFault(ctx context.Context, kind string, before []topo.Range) (func(context.Context) error, history.Fault, error) {
	c := nm.c
	noop := func(context.Context) error { return nil }
	pick := nm.rng.IntN(1 << 20) // drawn whatever happens, to keep the schedule
	id, leads, err := leaderTarget(before, nm.leaderRange, pick)
	if err != nil {
		return noop, history.Fault{}, err
	}
	v := c.node(id)
	if v == nil || !slices.Contains(nm.live(), v) {
		return noop, history.Fault{}, fmt.Errorf("leader n%d is not a live member", id)
	}
	f := history.Fault{Detail: fmt.Sprintf("%s (leads ranges %s)", v, intsText(leads))}
	switch kind {
	case "kill-leader":
		c.kill(v)
		f.Down = []int{v.id}
		return func(context.Context) error { return c.start(v) }, f, nil
	case "pause-leader":
		c.pause(v)
		f.Down = []int{v.id}
		return func(context.Context) error { c.resume(v); return nil }, f, nil
	case "slow-leader":
		for _, o := range c.nodes {
			if o != v {
				c.proxy.Delay(v.id, o.id, slowMean, slowJitter)
				c.proxy.Delay(o.id, v.id, slowMean, slowJitter)
			}
		}
		f.Slow = []int{v.id}
		f.Detail += fmt.Sprintf(": every link %v±%v", slowMean, slowJitter)
		return func(context.Context) error { c.healLinks(v); return nil }, f, nil
	}
	return noop, history.Fault{}, fmt.Errorf("not a leader nemesis: %q", kind)
}

// healLinks heals every link to and from v.
func (c *cluster) healLinks(v *node) {
	for _, o := range c.nodes {
		if o != v {
			c.proxy.Heal(v.id, o.id)
			c.proxy.Heal(o.id, v.id)
		}
	}
}

// node is the node with id, or nil.
func (c *cluster) node(id int) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func intsText(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
