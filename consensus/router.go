package consensus

import (
	"bytes"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Router is a node's one view of where each range's leader is, shared by
// every Client made from it and fed by everything the node learns: a
// client's successful reply, a refusal's hint, an attempt that timed out,
// and the node's own replicas (Store, Options.Router) the moment they see a
// new leader. One client's timeout or one local election therefore teaches
// every client on the node at once (issue 11: each pooled client used to
// learn a new leader only after its own 300 ms timeout, range by range).
//
// Departure from DESIGN.md rule 7 (tasks share nothing mutable): the
// router is shared by the node's client tasks under a mutex, like
// kernel.RPC's pending table and CockroachDB's range cache. The lock is
// never held across a blocking call, and nothing in it decides an outcome:
// every entry is only a hint that the range's replicas confirm or refuse.
//
// Leaders are ordered by Raft term: a hint from an older term never
// replaces a newer one, so a lagging follower cannot send clients back to
// a deposed leader.
//
// The router is also the node's range cache: which range holds a key. It
// starts from the layout and learns the ranges splits make from the
// refusals of requests routed by an older view (RangeMismatchError). Of
// two descriptors that overlap, the one of the higher generation wins; an
// older one it replaces keeps what it does not cover (still a fine guess:
// the node holding it answers with what it knows), so the cache always
// covers the whole keyspace.
type Router struct {
	rt     kernel.Runtime
	layout Layout

	mu     sync.Mutex
	routes map[storage.RangeID]*route
	// ranges is the range cache: sorted by Start, contiguous, covering
	// every key (Layout's invariant).
	ranges []Descriptor
	// nextAttempt numbers attempts in flight (route.attempts).
	nextAttempt uint64
	// local is this node's store, if it routes with this router: its
	// clients read ranges it holds the lease of themselves (leasedread.go).
	local atomic.Pointer[Store]
}

// route is what the router knows of one range.
type route struct {
	leader kernel.NodeID // 0: unknown
	term   uint64        // the term leader was learned in (0: unknown)
	// suspect timed out as leader in suspectTerm; hints naming it in that
	// term or an older one are ignored until suspectUntil, so that
	// followers that have not noticed its loss yet do not send every
	// client back to it.
	suspect      kernel.NodeID
	suspectTerm  uint64
	suspectUntil time.Duration
	// attempts are the calls in flight to this range, in start order (a
	// slice: the order of cancellations is observable in the simulator).
	attempts []attempt
}

// attempt is one call in flight, cancelled when the range's leader is
// learned to be another node.
type attempt struct {
	id     uint64
	to     kernel.NodeID
	cancel func()
}

// suspectFor is how long a leader that timed out stays suspected: long
// enough for its followers to elect another (two election timeouts). A
// router serves every store of a node and assumes the default timing; a
// cluster tuned far from it should scale this too.
const suspectFor = 2 * DefaultElectionTicks * DefaultTickInterval

// NewRouter returns an empty router for the ranges of layout.
func NewRouter(rt kernel.Runtime, layout Layout) *Router {
	return &Router{rt: rt, layout: layout, routes: map[storage.RangeID]*route{}, ranges: slices.Clone(layout.Ranges())}
}

// Lookup returns the range the router believes holds key.
func (r *Router) Lookup(key []byte) Descriptor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ranges[r.index(key)]
}

// LookupEndingAt returns the range the router believes holds the keys
// just below key (the range a merge of the range starting at key goes to).
func (r *Router) LookupEndingAt(key []byte) Descriptor {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The last range that starts before key.
	i := sort.Search(len(r.ranges), func(i int) bool { return bytes.Compare(r.ranges[i].Start, key) >= 0 }) - 1
	return r.ranges[max(i, 0)]
}

// index is the position in ranges of the range holding key.
func (r *Router) index(key []byte) int {
	// The last range that starts at or before key.
	return sort.Search(len(r.ranges), func(i int) bool { return bytes.Compare(r.ranges[i].Start, key) > 0 }) - 1
}

// Ranges returns the range cache, in key order.
func (r *Router) Ranges() []Descriptor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ranges)
}

// LearnRanges records descriptors a node reported, and reports whether
// the cache changed. A descriptor older than one it overlaps in the cache
// is ignored.
func (r *Router) LearnRanges(ds []Descriptor) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, d := range ds {
		if d.Empty() {
			continue
		}
		if e := r.ranges[r.index(d.Start)]; e.ID == d.ID && e.Generation == d.Generation && sameSpan(e, d) && slices.Equal(e.Replicas, d.Replicas) {
			continue // known already (most replies say so): no need to rebuild
		}
		stale := false
		var kept []Descriptor
		for _, e := range r.ranges {
			if !e.Overlaps(d) {
				kept = append(kept, e)
				continue
			}
			if e.Generation > d.Generation || (e.Generation == d.Generation && e.ID == d.ID && sameSpan(e, d) && slices.Equal(e.Replicas, d.Replicas)) {
				stale = true
				break
			}
			// e gives way to d, but for what d does not cover.
			if bytes.Compare(e.Start, d.Start) < 0 {
				left := e
				left.End = d.Start
				kept = append(kept, left)
			}
			if d.End != nil && (e.End == nil || bytes.Compare(d.End, e.End) < 0) {
				right := e
				right.Start = d.End
				kept = append(kept, right)
			}
		}
		if stale {
			continue
		}
		kept = append(kept, d)
		slices.SortFunc(kept, func(a, b Descriptor) int { return bytes.Compare(a.Start, b.Start) })
		r.ranges = kept
		changed = true
	}
	return changed
}

func sameSpan(a, b Descriptor) bool {
	return bytes.Equal(a.Start, b.Start) && bytes.Equal(a.End, b.End) && (a.End == nil) == (b.End == nil)
}

// Layout returns the ranges the router routes to.
func (r *Router) Layout() Layout { return r.layout }

func (r *Router) route(id storage.RangeID) *route {
	rt := r.routes[id]
	if rt == nil {
		rt = &route{}
		r.routes[id] = rt
	}
	return rt
}

// Leader returns the leader the router knows for range id (0: none).
func (r *Router) Leader(id storage.RangeID) kernel.NodeID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.route(id).leader
}

// Learn records that node leads range id in term (node 0: the term has no
// known leader yet). A hint older than what the router knows is ignored;
// so is one naming a suspected leader in the term it was suspected in,
// until the suspicion expires. A new leader cancels the attempts in flight
// to any other node, which then retry at once.
func (r *Router) Learn(id storage.RangeID, node kernel.NodeID, term uint64) {
	r.mu.Lock()
	rt := r.route(id)
	switch {
	case term < rt.term:
		r.mu.Unlock()
		return
	case node != 0 && node == rt.suspect && term <= rt.suspectTerm && r.rt.Monotonic() < rt.suspectUntil:
		r.mu.Unlock()
		return
	case term == rt.term && node == 0:
		r.mu.Unlock()
		return // "no leader" in the same term tells nothing new
	}
	changed := node != rt.leader
	rt.leader, rt.term = node, term
	var cancels []func()
	if changed && node != 0 {
		kept := rt.attempts[:0]
		for _, a := range rt.attempts {
			if a.to != node {
				cancels = append(cancels, a.cancel)
			} else {
				kept = append(kept, a)
			}
		}
		rt.attempts = kept
	}
	r.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
}

// served records that node answered a request of range id as its leader.
func (r *Router) served(id storage.RangeID, node kernel.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.route(id)
	rt.leader = node
	if rt.suspect == node {
		rt.suspect = 0
	}
}

// timedOut records that an attempt at node, as range id's leader, went
// unanswered: the node is forgotten as leader and suspected for a while.
// Other attempts in flight to it go on (a slow leader still answers).
func (r *Router) timedOut(id storage.RangeID, node kernel.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.route(id)
	if rt.leader == node {
		rt.leader = 0
	}
	rt.suspect, rt.suspectTerm, rt.suspectUntil = node, rt.term, r.rt.Monotonic()+suspectFor
}

// forget records that node could not serve range id's key as it was
// routed (a refusal that taught nothing new): it is no longer taken for
// the leader, so the next attempt tries the candidates in turn.
func (r *Router) forget(id storage.RangeID, node kernel.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.route(id); rt.leader == node {
		rt.leader = 0
	}
}

// track registers an attempt at node for range id, cancelled by cancel if
// another leader is learned meanwhile; the returned func ends the
// tracking.
func (r *Router) track(id storage.RangeID, node kernel.NodeID, cancel func()) (done func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextAttempt++
	n := r.nextAttempt
	rt := r.route(id)
	rt.attempts = append(rt.attempts, attempt{id: n, to: node, cancel: cancel})
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, a := range rt.attempts {
			if a.id == n {
				rt.attempts = append(rt.attempts[:i], rt.attempts[i+1:]...)
				return
			}
		}
	}
}
