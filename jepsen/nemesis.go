package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/topo"
)

// Nemeses: the faults, one at a time, each for a few seconds with a calm
// gap between them, chosen and shaped by the seed (which kind, which
// nodes, how long). Real processes and sockets make the run itself
// irreproducible, but the same seed injects the same schedule of faults.
//
//	partition   majority|minority split, isolated leader, bridge, ring (5
//	            nodes), or a one-way partition: links cut in the proxy
//	kill        SIGKILL of one node (often a leader), some, or all at once (a
//	            power cut: unsynced writes are lost), restart after
//	pause       SIGSTOP of a node (often a leader), SIGCONT after
//	restart     SIGTERM of a node (often a leader): it hands its ranges'
//	            leadership and leases over, then stops; started again after
//	clock       shift the clocks of some nodes by up to ±60 s (--test-faults)
//	delay       100–400 ms (±50%) on every link of one node
//	loss        links of one node reset on 5–20% of their chunks
//	membership  remove a node (orbit node remove), later wipe it and join it back
//	ranges      split the range of a random hash slot there (POST /split),
//	            and hand a range's leadership to another of its replicas
//	            (POST /transfer); merge the split range back after (POST
//	            /merge): the range layer's operations mid-run
//
// and the leader nemeses (leader.go), which wait for a ready cluster and
// hurt the node leading the most ranges (or --leader-range's leader), as
// its orbit_raft_leader{range} metrics say:
//
//	kill-leader   SIGKILL it, restart it after; every surviving node must
//	              be served again within --recovery-bound of the start
//	pause-leader  SIGSTOP it, SIGCONT after; the same bound
//	slow-leader   120–280 ms on every link of it, both ways; ok ops/s during
//	              the fault must stay above --availability-floor of calm
//
// Before each fault the nemesis records the ranges' replicas (GET
// /cluster) and leaders (/metrics); late in it, what each node's GET
// /cluster still reaches; and which nodes it stopped and links it cut. The
// report uses these to say why a range served nothing (avail.Cause).
var AllNemeses = []string{"partition", "kill", "pause", "restart", "clock", "delay", "loss", "membership", "ranges",
	"kill-leader", "pause-leader", "slow-leader"}

// nemesis injects faults into a cluster and logs each one.
type nemesis struct {
	c           *cluster
	kinds       []string
	leaderRange int // Config.LeaderRange
	rng         *rand.Rand
	log         *history.FaultLog
	logf        func(string, ...any)
}

// run injects faults until ctx ends, then undoes the last one.
func (nm *nemesis) run(ctx context.Context) {
	if len(nm.kinds) == 0 {
		return
	}
	for {
		calm := time.Duration(2000+nm.rng.IntN(2000)) * time.Millisecond
		if sleep(ctx, calm) != nil {
			return
		}
		kind := nm.kinds[nm.rng.IntN(len(nm.kinds))]
		hold := time.Duration(3000+nm.rng.IntN(5000)) * time.Millisecond
		if slices.Contains(leaderNemeses, kind) {
			if err := nm.awaitReady(ctx); err != nil {
				nm.log.Note("%s: not injected: %v", kind, err)
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		before := nm.c.topology(ctx)
		undo, f, err := nm.inject(ctx, kind, before)
		if err != nil {
			nm.log.Note("%s: not injected: %v", kind, err)
			continue
		}
		f.Kind, f.Before = kind, before
		id := nm.log.BeginFault(f)
		nm.logf("nemesis: %s %s", kind, f.Detail)
		nm.hold(ctx, id, hold, f.Down)
		// Undo even when the run is over: heal starts from a calm cluster.
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := undo(uctx); err != nil {
			nm.log.Note("%s: undoing: %v", kind, err)
		}
		cancel()
		nm.log.End(id)
		if ctx.Err() != nil {
			return
		}
	}
}

// probeLead is how long before a fault's end the nemesis asks every node
// what it still reaches (GET /cluster answers within about a second).
const probeLead = 1500 * time.Millisecond

// hold keeps fault id for d (less if ctx ends), asking the nodes not in
// down, late in the fault, which ranges they still reach and who leads
// each range then.
func (nm *nemesis) hold(ctx context.Context, id int, d time.Duration, down []int) {
	end := time.Now().Add(d)
	if sleep(ctx, max(d-probeLead, d/2)) != nil {
		return
	}
	var seen map[int][]int
	var leaders map[int]int
	done := make(chan struct{})
	go func() { defer close(done); leaders = nm.c.leadersByRange(ctx) }()
	seen = nm.c.unanswered(ctx, down)
	<-done
	nm.log.Annotate(id, func(f *history.Fault) { f.Unanswered, f.LeadersLate = seen, leaders })
	_ = sleep(ctx, time.Until(end))
}

// awaitReady waits until every live member answers /readyz, or readyWait.
func (nm *nemesis) awaitReady(ctx context.Context) error {
	start := time.Now()
	if err := waitReady(ctx, nm.live(), readyWait); err != nil {
		return fmt.Errorf("%w: %v", errNotReady, err)
	}
	if took := time.Since(start); took > time.Second {
		nm.log.Note("waited %v for a ready cluster", took.Round(time.Millisecond))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// live lists the nodes that run and are members.
func (nm *nemesis) live() []*node {
	var out []*node
	for _, n := range nm.c.nodes {
		n.mu.Lock()
		removed := n.removed
		n.mu.Unlock()
		if !removed && n.running() {
			out = append(out, n)
		}
	}
	return out
}

// pick returns k distinct nodes of ns, drawn from the seed.
func (nm *nemesis) pick(ns []*node, k int) []*node {
	ns = slices.Clone(ns)
	nm.rng.Shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
	return ns[:min(k, len(ns))]
}

// victim is a leader half of the time (the interesting node to hurt),
// otherwise any live node.
//
// It draws the same two numbers from the seed whatever the cluster looks
// like, so that which leader is up does not shift the rest of the schedule.
func (nm *nemesis) victim(ctx context.Context) *node {
	wantLeader, pick := nm.rng.IntN(2) == 0, nm.rng.IntN(1<<20)
	live := nm.live()
	if len(live) == 0 {
		return nil
	}
	if wantLeader {
		if ls := nm.c.leaders(ctx); len(ls) > 0 {
			return ls[pick%len(ls)]
		}
	}
	return live[pick%len(live)]
}

func names(ns []*node) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.String())
	}
	return "{" + strings.Join(s, ",") + "}"
}

// inject starts one fault of kind and returns how to undo it, and the
// fault (its detail and what it did to nodes and links; the caller sets
// the kind and the topology before). before is the ranges just before.
func (nm *nemesis) inject(ctx context.Context, kind string, before []topo.Range) (undo func(context.Context) error, f history.Fault, err error) {
	c := nm.c
	noop := func(context.Context) error { return nil }
	switch kind {
	case "kill-leader", "pause-leader", "slow-leader":
		return nm.leaderFault(ctx, kind, before)
	case "partition":
		return nm.partition(ctx)
	case "kill":
		// The nodes run on a disk that loses unsynced writes at SIGKILL
		// (--test-faults), so killing a majority, or every node, at once is
		// a power cut that only what was synced survives.
		var vs []*node
		switch r := nm.rng.IntN(4); {
		case r < 2:
			if v := nm.victim(ctx); v != nil {
				vs = []*node{v}
			}
		case r == 2:
			vs = nm.pick(nm.live(), 1+nm.rng.IntN(len(c.nodes)))
		default:
			vs = nm.live()
		}
		if len(vs) == 0 {
			return noop, f, errNoNode
		}
		for _, v := range vs {
			c.kill(v)
		}
		return func(context.Context) error {
			for _, v := range vs {
				if err := c.start(v); err != nil {
					return err
				}
			}
			return nil
		}, history.Fault{Detail: names(vs), Down: ids(vs)}, nil
	case "restart":
		v := nm.victim(ctx)
		if v == nil {
			return noop, f, errNoNode
		}
		c.terminate(v)
		return func(context.Context) error { return c.start(v) }, history.Fault{Detail: v.String(), Down: []int{v.id}}, nil
	case "pause":
		v := nm.victim(ctx)
		if v == nil {
			return noop, f, errNoNode
		}
		c.pause(v)
		return func(context.Context) error { c.resume(v); return nil }, history.Fault{Detail: v.String(), Down: []int{v.id}}, nil
	case "clock":
		vs := nm.pick(nm.live(), 1+nm.rng.IntN(len(c.nodes)))
		var parts []string
		for _, v := range vs {
			off := time.Duration(nm.rng.IntN(120_001)-60_000) * time.Millisecond
			if err := c.setClock(ctx, v, off); err != nil {
				return noop, f, err
			}
			parts = append(parts, fmt.Sprintf("%s%+.1fs", v, off.Seconds()))
		}
		return func(ctx context.Context) error {
			for _, v := range vs {
				if v.running() {
					if err := c.setClock(ctx, v, 0); err != nil {
						return err
					}
				}
			}
			return nil
		}, history.Fault{Detail: strings.Join(parts, " ")}, nil
	case "delay", "loss":
		v := nm.victim(ctx)
		if v == nil {
			return noop, f, errNoNode
		}
		mean := time.Duration(100+nm.rng.IntN(300)) * time.Millisecond
		prob := 0.05 + 0.15*nm.rng.Float64()
		for _, o := range c.nodes {
			if o == v {
				continue
			}
			for _, l := range [][2]int{{v.id, o.id}, {o.id, v.id}} {
				if kind == "delay" {
					c.proxy.Delay(l[0], l[1], mean, mean/2)
				} else {
					c.proxy.Loss(l[0], l[1], prob)
				}
			}
		}
		heal := func(context.Context) error { c.healLinks(v); return nil }
		if kind == "delay" {
			return heal, history.Fault{Detail: fmt.Sprintf("%s links %v±%v", v, mean, mean/2), Slow: []int{v.id}}, nil
		}
		return heal, history.Fault{Detail: fmt.Sprintf("%s links reset on %.0f%% of chunks", v, 100*prob)}, nil
	case "ranges":
		return nm.rangeOps(ctx, before)
	case "membership":
		live := nm.live()
		if len(live) < 3 {
			return noop, f, errNoNode
		}
		ordered := nm.pick(live, len(live))
		v, via := ordered[0], ordered[1]
		if err := c.remove(ctx, v, via); err != nil {
			return noop, f, err
		}
		return func(ctx context.Context) error {
			if err := c.rejoin(ctx, v, via); err != nil {
				return err
			}
			return waitReady(ctx, []*node{v}, time.Minute)
		}, history.Fault{Detail: fmt.Sprintf("removed %s via %s; wiped and joined back at the end", v, via)}, nil
	}
	return noop, f, fmt.Errorf("unknown nemesis %q", kind)
}

// rangeOps splits the range holding a random hash slot at that slot, and
// hands a random range's leadership to another of its replicas, through a
// random live node's admin endpoints; undoing it merges the range that
// starts at the slot back into its left neighbour (leaders move as they
// will).
func (nm *nemesis) rangeOps(ctx context.Context, before []topo.Range) (func(context.Context) error, history.Fault, error) {
	noop := func(context.Context) error { return nil }
	live := nm.live()
	if len(live) == 0 {
		return noop, history.Fault{}, errNoNode
	}
	via := live[nm.rng.IntN(len(live))]
	slot := 1 + nm.rng.IntN(16383)
	reply, err := httpPost(ctx, via, fmt.Sprintf("/split?slot=%d", slot))
	if err != nil {
		return noop, history.Fault{}, fmt.Errorf("split at slot %d via %s: %w", slot, via, err)
	}
	detail := fmt.Sprintf("split at slot %d via %s (%s); merged back after", slot, via, reply)
	// A merge freezes the range and moves its data into its neighbour's
	// log: it needs both ranges' leaders, so it is retried while another
	// fault (a restart after a kill) settles.
	undo := func(ctx context.Context) error {
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if live := nm.live(); len(live) > 0 {
				via = live[attempt%len(live)]
			}
			if _, err = httpPost(ctx, via, fmt.Sprintf("/merge?slot=%d", slot)); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			return fmt.Errorf("merge back at slot %d via %s: %w", slot, via, err)
		}
		return nil
	}
	var led []topo.Range
	for _, r := range before {
		if r.Leader != 0 && len(r.Replicas) > 1 {
			led = append(led, r)
		}
	}
	if len(led) == 0 {
		return undo, history.Fault{Detail: detail}, nil
	}
	r := led[nm.rng.IntN(len(led))]
	var to []int
	for _, n := range live {
		if n.id != r.Leader && slices.Contains(r.Replicas, n.id) {
			to = append(to, n.id)
		}
	}
	if len(to) == 0 {
		return undo, history.Fault{Detail: detail}, nil
	}
	target := to[nm.rng.IntN(len(to))]
	if _, err := httpPost(ctx, via, fmt.Sprintf("/transfer?slot=%d&node=%d", r.First, target)); err != nil {
		detail += fmt.Sprintf("; range %d's leadership to n%d failed: %v", r.ID, target, err)
	} else {
		detail += fmt.Sprintf("; range %d's leadership n%d -> n%d", r.ID, r.Leader, target)
	}
	return undo, history.Fault{Detail: detail}, nil
}

// ids are the nodes' IDs.
func ids(ns []*node) []int {
	out := make([]int, len(ns))
	for i, n := range ns {
		out[i] = n.id
	}
	return out
}

// partition cuts links so that nodes talk only within their side; some
// shapes are not two clean sides (bridge, ring, one-way).
func (nm *nemesis) partition(ctx context.Context) (func(context.Context) error, history.Fault, error) {
	c := nm.c
	n := len(c.nodes)
	all := nm.pick(c.nodes, n)
	connected := func(a, b *node) bool { return true }
	var detail string
	shapes := []string{"halves", "isolate", "one-way"}
	if n >= 5 {
		shapes = append(shapes, "bridge", "ring")
	}
	switch shape := shapes[nm.rng.IntN(len(shapes))]; shape {
	case "halves":
		minority := all[:(n-1)/2]
		side := map[*node]bool{}
		for _, m := range minority {
			side[m] = true
		}
		connected = func(a, b *node) bool { return side[a] == side[b] }
		detail = fmt.Sprintf("%s | %s", names(minority), names(all[len(minority):]))
	case "isolate":
		v := nm.victim(ctx)
		if v == nil {
			v = all[0]
		}
		connected = func(a, b *node) bool { return a != v && b != v }
		detail = fmt.Sprintf("isolated %s", v)
	case "one-way":
		v := all[0]
		if nm.rng.IntN(2) == 0 {
			connected = func(a, b *node) bool { return a != v } // v cannot send
			detail = fmt.Sprintf("%s cannot send to anyone (it still hears them)", v)
		} else {
			connected = func(a, b *node) bool { return b != v } // v cannot hear
			detail = fmt.Sprintf("%s hears no one (it can still send)", v)
		}
	case "bridge":
		// all[0] is the bridge; each half talks to it and within itself.
		half := map[*node]int{}
		for i, m := range all[1:] {
			half[m] = 1 + i%2
		}
		connected = func(a, b *node) bool { return half[a] == 0 || half[b] == 0 || half[a] == half[b] }
		detail = fmt.Sprintf("bridge %s between %s", all[0], names(all[1:]))
	case "ring":
		pos := map[*node]int{}
		for i, m := range all {
			pos[m] = i
		}
		connected = func(a, b *node) bool {
			d := (pos[a] - pos[b] + n) % n
			return d == 1 || d == n-1
		}
		detail = fmt.Sprintf("ring %s (each talks to its neighbours)", names(all))
	}
	var cut [][2]int
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b && !connected(a, b) {
				c.proxy.Cut(a.id, b.id)
				cut = append(cut, [2]int{a.id, b.id})
			}
		}
	}
	return func(context.Context) error {
		for _, l := range cut {
			c.proxy.Heal(l[0], l[1])
		}
		return nil
	}, history.Fault{Detail: detail, Cut: cut}, nil
}

// healAll ends every fault: links healed, paused nodes resumed, clocks
// reset, dead nodes restarted, removed nodes wiped and joined back.
func (c *cluster) healAll(ctx context.Context) error {
	c.proxy.HealAll()
	var errs []string
	for _, n := range c.nodes {
		n.mu.Lock()
		paused, removed := n.paused, n.removed
		n.mu.Unlock()
		if paused {
			c.resume(n)
		}
		if !n.running() {
			if err := c.start(n); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if removed {
			via := c.nodes[0]
			if via == n {
				via = c.nodes[1]
			}
			if err := c.rejoin(ctx, n, via); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	for _, n := range c.nodes {
		if n.running() {
			_ = c.setClock(ctx, n, 0) // may fail while the node starts; it has no offset then
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("healing: %s", strings.Join(errs, "; "))
	}
	return nil
}
