package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Placement: where replicas and leaderships go.
//
// One set of rules serves a join (over every range, at once) and the
// rebalancer (over the ranges this node leads, every RebalanceInterval),
// in this order, as CockroachDB's replicate queue orders its work:
//
//  1. Repair. A member on a node that is dead (silent for DeadAfter) or
//     removed is replaced: a replica is added on the live active node
//     outside the range that holds fewest replicas, then the gone one is
//     removed. Without such a node, a removed node's replica is removed
//     anyway when the range keeps others, and a dead node's stays (it may
//     come back; removing it would not make the range safer). A range
//     short of the replica count gets one; a range above it (a move cut
//     short) loses a learner if it has one, else the replica on its
//     fullest node, never its leader's.
//  2. Replicas. A range whose fullest member holds at least two replicas
//     more than the emptiest live node outside it, the one above the
//     nodes' mean and the other below it, moves a replica there (added
//     first, then removed: the range never has fewer).
//  3. Leaderships, weighed by load: a node weighs one per range it leads
//     plus its requests a second as leader in loadUnits (250), which the
//     gossip spreads; a range led here weighs one plus its own load. A
//     range whose leader's node outweighs another live voter's by twice
//     the range's weight, the one above the mean and the other below it,
//     hands its leadership (and lease) over (so a hot node sheds its
//     other leaderships first), unless the consensus health check rates that voter a slow
//     leader for the range (Options.SlowLeader): it would hand the range
//     straight back.
//
// Only a range's leader acts on it by itself, so two nodes never work on
// one range at once; and every step is a compare-and-swap on the range's
// configuration, so a step raced by another (a join's pass, an operator's
// request, a leader that changed meanwhile) is refused, not doubled. A
// rebalancer takes every repair it finds in a round, but one spreading
// step: several leaders may still move replicas of different ranges onto
// one node in the same round, and the mean (evens) keeps what overshot
// from swinging back and forth.

// view is the cluster as one walk over the ranges saw it.
type view struct {
	ranges []consensus.Descriptor
	// leader is the node that answered for each range in the walk.
	leader map[storage.RangeID]kernel.NodeID
	// replicas and leaders count, per node, the replicas it holds and the
	// ranges it leads; steps keep them up to date.
	replicas, leaders map[kernel.NodeID]int
	active            []kernel.NodeID
	removed           map[kernel.NodeID]bool // removed or leaving
	// dead: silent for DeadAfter; alive: heard from lately. A node just
	// restarted knows neither of a node it has not heard from yet: it
	// replaces nothing on it and places nothing on it.
	dead, alive func(kernel.NodeID) bool
	slowLeader  func(storage.RangeID, kernel.NodeID) bool
	want        int
	// extraBefore is, per range, the descriptor the previous look saw
	// with more than want replicas (Manager.extra).
	extraBefore map[storage.RangeID]string
	// weight is, per node, its leaderships weighed by load: one per range
	// it leads plus its leader load in loadUnits (rule 3). rangeLoad is
	// the load of each range led here (others' are not known here).
	weight    map[kernel.NodeID]float64
	rangeLoad map[storage.RangeID]float64
}

// transferTimeout bounds one leadership hand-over step.
const transferTimeout = 2 * time.Second

// loadUnit is how many requests a second weigh as much as leading one
// more range: a node whose ranges serve 2,500 requests a second weighs
// as ten idle leaderships more.
const loadUnit = 250

// look walks the ranges and counts.
func (m *Manager) look(ctx context.Context, cl *consensus.Client) (*view, error) {
	ranges, err := cl.Ranges(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the ranges: %w", err)
	}
	rec := m.dir.record()
	v := &view{ranges: ranges, leader: map[storage.RangeID]kernel.NodeID{},
		replicas: map[kernel.NodeID]int{}, leaders: map[kernel.NodeID]int{},
		active: m.dir.active(), removed: map[kernel.NodeID]bool{}, dead: m.dir.dead, alive: m.dir.alive, slowLeader: m.opts.SlowLeader, want: rec.Replicas}
	if v.slowLeader == nil {
		v.slowLeader = func(storage.RangeID, kernel.NodeID) bool { return false }
	}
	m.mu.Lock()
	v.extraBefore = m.extra
	m.extra = map[storage.RangeID]string{}
	live := map[storage.RangeID]bool{}
	for _, d := range ranges {
		live[d.ID] = true
		if len(d.Replicas) > v.want {
			m.extra[d.ID] = d.String()
		}
	}
	for id := range m.learners {
		if !live[id] {
			delete(m.learners, id) // merged away: its ID never comes back
		}
	}
	m.mu.Unlock()
	for n, e := range rec.Nodes {
		if e.Removed || e.Leaving {
			v.removed[n] = true
		}
	}
	for _, d := range ranges {
		for _, n := range d.Replicas {
			v.replicas[n]++
		}
		// Ranges read each range at its leader: the router learnt it.
		lead := m.opts.Router.Leader(d.ID)
		v.leader[d.ID] = lead
		v.leaders[lead]++
	}
	v.rangeLoad = map[storage.RangeID]float64{}
	if m.opts.LeaderLoad != nil {
		v.rangeLoad = m.opts.LeaderLoad()
	}
	v.weight = map[kernel.NodeID]float64{}
	for _, n := range v.active {
		v.weight[n] = float64(v.leaders[n]) + m.dir.loadOf(n)/loadUnit
	}
	return v, nil
}

// rangeWeight is what leading d weighs (rule 3): one, plus its load in
// loadUnits if it is led here.
func (v *view) rangeWeight(d consensus.Descriptor) float64 {
	return 1 + v.rangeLoad[d.ID]/loadUnit
}

// spares are the alive active nodes outside d (and other than except),
// leaving ones excepted.
func (v *view) spares(d consensus.Descriptor, except kernel.NodeID) []kernel.NodeID {
	var out []kernel.NodeID
	for _, n := range v.active {
		if n != except && !slices.Contains(d.Replicas, n) && (v.alive(n) || mutation.On(MutPlacesOnSilent)) && !v.removed[n] {
			out = append(out, n)
		}
	}
	return out
}

// fewest is the candidate with the lowest count (ties: the lowest ID).
func (v *view) fewest(candidates []kernel.NodeID, count map[kernel.NodeID]int) kernel.NodeID {
	return slices.MinFunc(candidates, func(x, y kernel.NodeID) int { return cmp.Or(count[x]-count[y], cmp.Compare(x, y)) })
}

// most is the candidate with the highest count (ties: the highest ID).
func (v *view) most(candidates []kernel.NodeID, count map[kernel.NodeID]int) kernel.NodeID {
	return slices.MaxFunc(candidates, func(x, y kernel.NodeID) int { return cmp.Or(count[x]-count[y], cmp.Compare(x, y)) })
}

// gone reports whether n's replicas must go: n is removed, leaving or
// dead.
func (v *view) gone(n kernel.NodeID) bool { return v.removed[n] || v.dead(n) }

// step is one change to a range: add a replica, remove one (an add and a
// remove together move one: add first), or hand the leadership over.
type step struct {
	d           consensus.Descriptor
	add, remove kernel.NodeID
	transfer    kernel.NodeID
	// extra: remove is one replica too many (any would do: a learner
	// left by an addition cut short goes first).
	extra bool
}

// repair is the step d needs to hold want replicas on live active nodes
// (rule 1), if any.
func (v *view) repair(d consensus.Descriptor) (step, bool) {
	spare := v.spares(d, 0)
	var staying []kernel.NodeID
	for _, n := range d.Replicas {
		if !v.gone(n) {
			staying = append(staying, n)
		}
	}
	for _, n := range d.Replicas {
		if !v.gone(n) {
			continue
		}
		switch {
		case len(staying) >= v.want:
			return step{d: d, remove: n}, true // enough without it
		case len(spare) > 0:
			return step{d: d, add: v.fewest(spare, v.replicas), remove: n}, true
		case v.removed[n] && len(d.Replicas) > 1:
			return step{d: d, remove: n}, true
		}
	}
	if len(d.Replicas) < v.want && len(spare) > 0 {
		return step{d: d, add: v.fewest(spare, v.replicas)}, true
	}
	if len(d.Replicas) > v.want && v.extraBefore[d.ID] == d.String() {
		// An extra replica seen twice, the range unchanged in between: a
		// move cut short, not one in progress (whose learner makes the
		// range look one too many until its removal comes).
		var others []kernel.NodeID
		for _, n := range d.Replicas {
			if n != v.leader[d.ID] {
				others = append(others, n)
			}
		}
		if len(others) > 0 {
			return step{d: d, remove: v.most(others, v.replicas), extra: true}, true
		}
	}
	return step{}, false
}

// spreadReplicas is the step that moves one of d's replicas toward an
// even spread (rule 2), if any.
func (v *view) spreadReplicas(d consensus.Descriptor) (step, bool) {
	spare := v.spares(d, 0)
	if len(spare) == 0 || len(d.Replicas) == 0 {
		return step{}, false
	}
	from, to := v.most(d.Replicas, v.replicas), v.fewest(spare, v.replicas)
	if !v.evens(func(n kernel.NodeID) float64 { return float64(v.replicas[n]) }, from, to, 1) {
		return step{}, false
	}
	return step{d: d, add: to, remove: from}, true
}

// evens reports whether moving w of weight (a replica: one; a
// leadership: rangeWeight) from node from to node to evens the spread:
// from outweighs to by at least 2w (so from stays at least as heavy as to
// becomes), from is above the mean of the nodes that may take it and to
// below it. The mean keeps several leaders moving at once from
// oscillating: a node that the last round overfilled is above the mean, so
// nothing more comes to it, and it gives back only to a node as far below
// (the simulator's cluster seed 44 saw two nodes swap a replica back and
// forth each round on the difference alone).
func (v *view) evens(weight func(kernel.NodeID) float64, from, to kernel.NodeID, w float64) bool {
	var total float64
	n := 0
	for _, node := range v.active {
		if v.alive(node) && !v.removed[node] {
			total += weight(node)
			n++
		}
	}
	if n == 0 || weight(from)-weight(to) < 2*w {
		return false
	}
	mean := total / float64(n)
	return weight(from) > mean && weight(to) < mean
}

// spreadLeaders is the step that hands d's leadership toward an even
// spread (rule 3), if any.
func (v *view) spreadLeaders(d consensus.Descriptor) (step, bool) {
	lead := v.leader[d.ID]
	if lead == 0 || !slices.Contains(d.Replicas, lead) {
		return step{}, false
	}
	var candidates []kernel.NodeID
	for _, n := range d.Replicas {
		if (v.alive(n) || mutation.On(MutPlacesOnSilent)) && !v.removed[n] && (n == lead || !v.slowLeader(d.ID, n)) {
			candidates = append(candidates, n)
		}
	}
	if len(candidates) == 0 {
		return step{}, false
	}
	to := slices.MinFunc(candidates, func(x, y kernel.NodeID) int {
		return cmp.Or(cmp.Compare(v.weight[x], v.weight[y]), cmp.Compare(x, y))
	})
	if !v.evens(func(n kernel.NodeID) float64 { return v.weight[n] }, lead, to, v.rangeWeight(d)) {
		return step{}, false
	}
	return step{d: d, transfer: to}, true
}

// chosenMove is the one replica move rule (spreadReplicas) asks for
// across every range: the one between the two nodes furthest apart, of
// the lowest range ID. Rebalancers whose views agree choose the same.
func (v *view) chosenMove(rule func(consensus.Descriptor) (step, bool)) (step, bool) {
	var best step
	found := false
	gap := func(s step) int { return v.replicas[s.remove] - v.replicas[s.add] }
	for _, d := range v.ranges {
		s, ok := rule(d)
		if ok && (!found || gap(s) > gap(best)) {
			best, found = s, true
		}
	}
	return best, found
}

// errChangeInProgress: a step waits for another party's change to the
// range to finish.
var errChangeInProgress = errors.New("a replica is being added to the range; later")

// learnerStuck reports whether range id has had the same configuration,
// learners included, for a RebalanceInterval: an addition nobody is
// finishing (its caller gone), not one in progress.
func (m *Manager) learnerStuck(id storage.RangeID, conf consensus.Configuration) bool {
	key := fmt.Sprint(conf.Voters, conf.Learners)
	now := m.rt.Monotonic()
	m.mu.Lock()
	defer m.mu.Unlock()
	seen, ok := m.learners[id]
	if !ok || seen.conf != key {
		m.learners[id] = learnerSeen{conf: key, since: now}
		return false
	}
	return now-seen.since >= max(m.opts.RebalanceInterval, 0)
}

// learnerSeen is when a range's configuration with learners was first
// seen (learnerStuck).
type learnerSeen struct {
	conf  string
	since time.Duration
}

// take carries out s through cl and counts it in v.
func (m *Manager) take(ctx context.Context, cl *consensus.Client, v *view, s step, out *Changes) error {
	note := func(format string, args ...any) {
		line := fmt.Sprintf("range %d: ", s.d.ID) + fmt.Sprintf(format, args...)
		*out = append(*out, line)
		m.steps.Add(1)
		m.opts.Logger.Info("cluster: "+line, "range", s.d.ID, "desc", s.d.String())
	}
	if s.add != 0 {
		if err := cl.AddReplica(ctx, s.d.Start, s.add); err != nil {
			return fmt.Errorf("range %d: adding a replica on node %d: %w", s.d.ID, s.add, err)
		}
		v.replicas[s.add]++
		note("added a replica on node %d", s.add)
	}
	if s.remove != 0 && s.add == 0 {
		// A removal alone must not leave the range leaning on a learner
		// that is still catching up (another party's move in progress):
		// its voters would be one short of what the rules counted, and a
		// node dying then would cost the range its quorum.
		conf, err := cl.Configuration(ctx, s.d.Start)
		if err != nil {
			return fmt.Errorf("range %d: reading its configuration: %w", s.d.ID, err)
		}
		members := slices.Sorted(slices.Values(append(slices.Clone(conf.Voters), conf.Learners...)))
		switch {
		case !slices.Equal(members, slices.Sorted(slices.Values(s.d.Replicas))):
			// The range changed since the look (another leader's move,
			// or this one's, finished meanwhile): the step was decided on
			// replicas it no longer has. Two leaders each removing "the
			// extra replica" of one range, one from the view before the
			// other's removal, left it two replicas, one of them on a
			// node about to die (the simulator's cluster seed 955).
			return fmt.Errorf("range %d: %w (replicas %v, the look saw %v)", s.d.ID, errChangeInProgress, members, s.d.Replicas)
		case len(conf.Learners) == 0 || slices.Contains(conf.Learners, s.remove):
		case s.extra || m.learnerStuck(s.d.ID, conf):
			// An addition cut short (its caller gone): its learner is
			// the replica to remove first.
			s.remove = conf.Learners[0]
		default:
			return fmt.Errorf("range %d: %w (learners %v)", s.d.ID, errChangeInProgress, conf.Learners)
		}
	}
	if s.remove != 0 {
		if err := cl.RemoveLiveReplica(ctx, s.d.Start, s.remove); err != nil {
			return fmt.Errorf("range %d: removing node %d's replica: %w", s.d.ID, s.remove, err)
		}
		v.replicas[s.remove]--
		note("removed node %d's replica", s.remove)
	}
	if s.transfer != 0 {
		from := v.leader[s.d.ID]
		// Bounded on its own: a hand-over takes milliseconds when the
		// target is up, and one to a node that died since the walk must
		// not hold the round (and every repair after it) for the pass's
		// whole bound (simulator cluster seed 910: six seconds).
		tctx, cancel := m.rt.WithTimeout(ctx, transferTimeout)
		err := cl.TransferLeadership(tctx, s.d.Start, s.transfer)
		cancel()
		if err != nil {
			return fmt.Errorf("range %d: handing its leadership to node %d: %w", s.d.ID, s.transfer, err)
		}
		v.leaders[s.transfer]++
		v.leaders[from]--
		w := v.rangeWeight(s.d)
		v.weight[s.transfer] += w
		v.weight[from] -= w
		v.leader[s.d.ID] = s.transfer
		note("leadership moved from node %d to node %d", from, s.transfer)
	}
	return nil
}

// allRules and repairOnly are how many of the rules a pass applies.
const (
	allRules   = 3
	repairOnly = 1
)

// rules are the placement rules in their order.
func (v *view) rules() []func(consensus.Descriptor) (step, bool) {
	return []func(consensus.Descriptor) (step, bool){v.repair, v.spreadReplicas, v.spreadLeaders}
}

// pass walks the ranges once and takes the steps the first rules (all
// three, or only repair) ask for, for every range (only nil) or those only
// accepts: every repair, else every replica move, else every leadership
// move (the latter over the replicas as they are after the moves, on the
// next pass). A step that fails does not stop the others. It returns how
// many steps it took, and the first failure.
func (m *Manager) pass(ctx context.Context, cl *consensus.Client, rules int, only func(*view, consensus.Descriptor) bool, out *Changes) (int, error) {
	v, err := m.look(ctx, cl)
	if err != nil {
		return 0, err
	}
	var first error
	m.spreading.Store(false)
	for i, rule := range v.rules()[:rules] {
		taken := 0
		if i == 1 && only != nil {
			// Replicas move one at a time across the cluster: the move
			// every rebalancer's view picks alike (chosenMove), taken by
			// its range's leader. Leaders each moving a replica toward the
			// same emptier node in one round overshoot, and undo it the
			// next (the simulator's cluster seeds 209 and 948: three
			// leaders swapping replicas between two nodes for seconds).
			s, ok := v.chosenMove(rule)
			if !ok {
				continue
			}
			m.spreading.Store(true) // whoever takes it: look again soon
			if !only(v, s.d) {
				return 0, nil
			}
			if err := m.take(ctx, cl, v, s, out); err != nil && !errors.Is(err, errChangeInProgress) {
				return 0, err
			}
			return 1, nil
		}
		for _, d := range v.ranges {
			if only != nil && !only(v, d) {
				continue
			}
			s, ok := rule(d)
			if !ok {
				continue
			}
			if err := m.take(ctx, cl, v, s, out); err != nil {
				if ctx.Err() != nil {
					return taken, err
				}
				if !errors.Is(err, errChangeInProgress) {
					first = cmp.Or(first, err)
				}
				continue
			}
			taken++
			if i > 0 && only != nil {
				// A rebalancer evens out one step a round: with every
				// leader moving at once, more would overshoot.
				return taken, first
			}
		}
		if taken > 0 || first != nil {
			return taken, first
		}
	}
	return 0, nil
}

// rebalanceLoop is the rebalancer: every RebalanceInterval (give or take
// a fifth, at random), a pass over the ranges this node leads; after a
// pass that changed something, the next comes sooner, until one changes
// nothing.
func (m *Manager) rebalanceLoop(ctx context.Context, cl *consensus.Client) {
	self := m.rt.NodeID()
	ledHere := func(v *view, d consensus.Descriptor) bool { return v.leader[d.ID] == self }
	busy := false
	for {
		wait := m.opts.RebalanceInterval
		if busy {
			wait /= 10
		}
		wait += time.Duration(m.rt.Rand().Int64N(int64(wait)/5+1)) - wait/10
		if m.rt.Sleep(ctx, wait) != nil {
			return
		}
		var out Changes
		// Bounded: an added replica whose node died before it caught up
		// must not hold the rebalancer for longer than it takes to count
		// that node dead (the next pass removes it then).
		pctx, cancel := m.rt.WithTimeout(ctx, m.opts.DeadAfter)
		n, err := m.pass(pctx, cl, allRules, ledHere, &out)
		cancel()
		if err != nil && ctx.Err() == nil {
			m.opts.Logger.Warn("cluster: rebalancing", "err", err)
		}
		busy = n > 0 || m.spreading.Load()
	}
}
