package sim

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// Network is the simulated packet network between nodes. By default it is
// perfect apart from latency and keeps each link in order; every fault is a
// knob the fault plan (or a test) turns.
type Network struct {
	s *Sim

	// LatencyMin is the least one-way delay; LatencyMean the mean of the
	// exponential tail added to it, capped at LatencyMin+10*LatencyMean.
	LatencyMin, LatencyMean time.Duration
	// Loss and Dup are per-message probabilities of dropping and of
	// delivering a second copy.
	Loss, Dup float64
	// Reorder lets messages on one link overtake each other; off, each link
	// is FIFO.
	Reorder bool
	// Replay is the per-message probability of a stale copy arriving much
	// later (after ReplayDelay on average), out of order: a retransmission
	// across a reconnect, a packet stuck in a queue. It finds protocols
	// that trust a message to be fresh.
	Replay      float64
	ReplayDelay time.Duration

	blocked map[link]bool  // partitions: messages on these links vanish
	clogged map[link]int64 // links holding their messages until a time
	held    map[link][]kernel.Envelope
	lastAt  map[link]int64 // last delivery time per link, for FIFO
	// slow adds a one-way delay to every message from or to a node: a
	// gray failure (an overloaded host, a bad NIC) that loses nothing.
	slow map[kernel.NodeID]time.Duration
	// MaxBytes is the largest message per port seen, for bound checks.
	MaxBytes map[string]int

	// Sent, Delivered and Dropped count messages (copies included).
	Sent, Delivered, Dropped uint64
}

type link struct{ from, to kernel.NodeID }

func newNetwork(s *Sim) *Network {
	return &Network{
		s:          s,
		LatencyMin: 500 * time.Microsecond, LatencyMean: 500 * time.Microsecond,
		blocked: map[link]bool{}, clogged: map[link]int64{}, held: map[link][]kernel.Envelope{}, lastAt: map[link]int64{},
		slow: map[kernel.NodeID]time.Duration{}, MaxBytes: map[string]int{},
	}
}

// Partition cuts every link between the two groups, both ways.
func (n *Network) Partition(a, b []kernel.NodeID) {
	n.PartitionOneWay(a, b)
	n.PartitionOneWay(b, a)
}

// PartitionOneWay cuts the links from every node in from to every node in
// to; replies still flow the other way.
func (n *Network) PartitionOneWay(from, to []kernel.NodeID) {
	for _, f := range from {
		for _, t := range to {
			if f != t {
				n.blocked[link{f, t}] = true
			}
		}
	}
	n.s.logf(0, "network: cut %v -> %v", from, to)
}

// Isolate cuts a node off from every other node, both ways.
func (n *Network) Isolate(id kernel.NodeID) {
	var others []kernel.NodeID
	for _, o := range n.s.Nodes() {
		if o.id != id {
			others = append(others, o.id)
		}
	}
	n.Partition([]kernel.NodeID{id}, others)
}

// Clog holds every message sent from one node to another for d, then lets
// them through in order (FoundationDB's "swizzle" of a single link).
func (n *Network) Clog(from, to kernel.NodeID, d time.Duration) {
	l := link{from, to}
	until := n.s.now + int64(d)
	n.clogged[l] = until
	n.s.After(d, "unclog", func() {
		if n.clogged[l] == until { // not replaced by a later clog, nor healed
			n.unclog(l)
		}
	})
	n.s.logf(0, "network: clog %d -> %d for %v", from, to, d)
}

// unclog ends a clog: what the link held leaves now, in order.
func (n *Network) unclog(l link) {
	delete(n.clogged, l)
	held := n.held[l]
	delete(n.held, l)
	for _, env := range held {
		n.schedule(l, env)
	}
}

// Blocked reports whether messages from one node to another are cut now.
func (n *Network) Blocked(from, to kernel.NodeID) bool { return n.blocked[link{from, to}] }

// Slow adds d of one-way delay to every message from or to node id (0
// undoes it); Heal undoes it too.
func (n *Network) Slow(id kernel.NodeID, d time.Duration) {
	if d == 0 {
		delete(n.slow, id)
		return
	}
	n.slow[id] = d
}

// Heal removes every partition, clog and slow node; loss, duplication and
// reordering stay as set.
func (n *Network) Heal() {
	clear(n.blocked)
	clear(n.slow)
	links := slices.SortedFunc(maps.Keys(n.clogged), func(a, b link) int {
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to))
	})
	for _, l := range links {
		n.unclog(l)
	}
	n.s.logf(0, "network: healed")
}

func (n *Network) send(src *Node, to kernel.NodeID, port string, body []byte) {
	l := link{src.id, to}
	// The trace hash covers what messages say, not only when they go:
	// a run whose messages differ in content diverges here, at once,
	// rather than when the difference first changes what runs (sqlbank
	// seed 38 once differed in a command's bytes 440 ms before its
	// events did).
	n.s.fold(uint64(to), strHash(port), strHash(body))
	n.Sent++
	n.MaxBytes[port] = max(n.MaxBytes[port], len(body))
	if n.blocked[l] || (n.Loss > 0 && n.s.rng.Float64() < n.Loss) {
		n.Dropped++
		return
	}
	env := kernel.Envelope{From: src.id, Port: port, Body: slices.Clone(body)}
	n.schedule(l, env)
	if n.Dup > 0 && n.s.rng.Float64() < n.Dup {
		n.Sent++
		n.schedule(l, env)
	}
	if n.Replay > 0 && n.s.rng.Float64() < n.Replay {
		n.Sent++
		at := n.s.now + n.latency() + int64(n.s.rng.ExpFloat64()*float64(n.ReplayDelay))
		n.s.push(event{at: at, kind: evCall, node: n.s.nodes[l.to], label: "deliver (replayed)", fn: func() { n.deliver(l, env) }})
	}
}

func (n *Network) schedule(l link, env kernel.Envelope) {
	s := n.s
	if _, ok := n.clogged[l]; ok {
		n.held[l] = append(n.held[l], env) // until unclog
		return
	}
	at := s.now + n.latency() + int64(n.slow[l.from]+n.slow[l.to])
	if !n.Reorder {
		// Strictly after the previous message: equal times would let the
		// seeded tie-break reorder them.
		at = max(at, n.lastAt[l]+1)
		n.lastAt[l] = at
	}
	dst := s.nodes[l.to]
	s.push(event{at: at, kind: evCall, node: dst, label: "deliver", fn: func() { n.deliver(l, env) }})
}

func (n *Network) latency() int64 {
	d := int64(n.LatencyMin)
	if n.LatencyMean > 0 {
		d += min(int64(n.s.rng.ExpFloat64()*float64(n.LatencyMean)), 10*int64(n.LatencyMean))
	}
	return d
}

// deliver hands a message to its port, unless a partition cut the link
// while it was in flight or its destination is down.
func (n *Network) deliver(l link, env kernel.Envelope) {
	dst := n.s.nodes[l.to]
	if n.blocked[l] || dst == nil || !dst.up || !dst.inbox.Deliver(env) {
		n.Dropped++
		return
	}
	n.Delivered++
}
