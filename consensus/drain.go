package consensus

import (
	"context"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"

	"github.com/orbitkernel/orbit/kernel"
)

// Drain hands the leadership (and so the lease) of every range this node
// leads to another voter, and returns once it leads none, or when ctx ends
// (with ctx's error). A node about to stop calls it first, so that its
// ranges' clients wait for one hand-over, not for an election timeout
// plus whatever is left of its lease. It uses the hand-over of health.go:
// no new writes on a range while its chosen voter catches up, then Raft's
// TimeoutNow. A range with no other voter in touch stays led here (and
// Drain does not wait for it), and so does one whose other voters are
// draining too or fenced: a node's first Drain marks it as about to stop
// for good, it takes no leadership through a hand-over from then on, and
// its health reports say so, so nodes stopped together (a whole cluster
// shut down) neither hand their ranges back and forth for as long as
// their drains are allowed nor wait for that
// (TestNodesDrainedTogetherHandNothingToEachOther).
func (s *Store) Drain(ctx context.Context) error {
	return s.ask(ctx, "store drain", func(f *kernel.Future[struct{}]) event { return event{drain: f} })
}

// drainLeadership runs on the driver when a Drain comes and on every tick
// while one waits or the node's clock is fenced (clockoffset.go): it
// starts a hand-over on each range still led here, and answers the Drains
// once there is none.
func (s *Store) drainLeadership() {
	if len(s.drains) == 0 && !s.offsetFenced.Load() {
		return
	}
	pending := false // a range led here that can still be handed over
	for _, id := range s.ids {
		r := s.replicas[id]
		st := r.rn.Status()
		if st.RaftState != raft.StateLeader {
			continue
		}
		if r.handoverTo != 0 || st.LeadTransferee != raft.None {
			pending = true // under way
			continue
		}
		// The voter in touch that has most of the log.
		var best, bestMatch uint64
		for v, pr := range st.Progress {
			heard, ok := r.heard[v]
			if v == r.id || pr.IsLearner || pr.State != tracker.StateReplicate || !ok || s.ticks-heard > uint64(s.opts.ElectionTicks) {
				continue
			}
			if s.refusesLeadership(nodeOf(v), s.rt.Monotonic()) {
				continue // fenced or draining too: it would hand the range back
			}
			if best == 0 || pr.Match > bestMatch || (pr.Match == bestMatch && v < best) {
				best, bestMatch = v, pr.Match
			}
		}
		if best != 0 {
			s.handOver(r, best)
			pending = true
		}
	}
	if !pending {
		for _, f := range s.drains {
			f.Set(struct{}{}, nil)
		}
		s.drains = nil
		return
	}
	s.progressHandovers()
}
