package actor

import (
	"slices"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// Routes is what a node's clients have learned about where actors run:
// the host each actor was last found on, and the hosts that lately let an
// attempt run out without answering. One Routes is shared by every client
// of a node (Options.Routes), as a node's consensus clients share its
// router: a host that stops answering is then learned once per node, not
// once per pooled client. (Jepsen's actor-counter workload under
// pause-leader found the cost of learning it per client: orbit serve's 64
// pooled clients each spent a whole attempt on the paused host before
// going elsewhere, and the actors it held stayed out of reach for the
// whole pause.)
//
// A suspected host is avoided by placement, and a route to it is checked
// in the directory before it is used; but a call still goes to the
// holder of a live lease (only it may run the actor). Suspicion is a
// hint: a host is suspected also when an attempt ran out for another
// reason (its range was electing a leader), so a call never waits out a
// live holder's lease because of it (the simulator's actoravail scenario
// showed calls waiting a whole lease for a holder that was alive). A
// suspicion ends after a while, or as soon as the host answers.
type Routes struct {
	mu      sync.Mutex
	where   map[Ref]kernel.NodeID
	suspect map[kernel.NodeID]time.Duration // until when, on the runtime's monotonic clock
}

// maxRoutes bounds the hosts remembered: past it the memory starts afresh
// (every actor is found again through the directory).
const maxRoutes = 1 << 16

// NewRoutes returns an empty Routes.
func NewRoutes() *Routes {
	return &Routes{where: map[Ref]kernel.NodeID{}, suspect: map[kernel.NodeID]time.Duration{}}
}

// lookup returns the host ref was last found on.
func (r *Routes) lookup(ref Ref) (kernel.NodeID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.where[ref]
	return n, ok
}

// found notes that ref runs on node, which answered.
func (r *Routes) found(ref Ref, node kernel.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remember(ref, node)
	delete(r.suspect, node) // it answered
}

// moved notes that ref runs on node, as another host said (it has not
// answered yet itself).
func (r *Routes) moved(ref Ref, node kernel.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remember(ref, node)
}

// remember records ref's host, within maxRoutes (r.mu held).
func (r *Routes) remember(ref Ref, node kernel.NodeID) {
	if len(r.where) >= maxRoutes {
		clear(r.where)
	}
	r.where[ref] = node
}

// forget drops what is known of ref's host, if it is still node: the
// next call finds the actor again.
func (r *Routes) forget(ref Ref, node kernel.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.where[ref] == node {
		delete(r.where, ref)
	}
}

// suspectUntil notes that node let an attempt run out: placement avoids
// it until the monotonic time until.
func (r *Routes) suspectUntil(node kernel.NodeID, until time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if until > r.suspect[node] {
		r.suspect[node] = until
	}
}

// suspected reports whether node is suspected at the monotonic time now.
func (r *Routes) suspected(node kernel.NodeID, now time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.suspect[node] > now
}

// healthy returns the hosts not suspected at the monotonic time now, in
// the order given; all of them when every one is suspected (placing on a
// suspect beats not placing at all).
func (r *Routes) healthy(hosts []kernel.NodeID, now time.Duration) []kernel.NodeID {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := slices.DeleteFunc(slices.Clone(hosts), func(n kernel.NodeID) bool { return r.suspect[n] > now })
	if len(ok) == 0 {
		return hosts
	}
	return ok
}
