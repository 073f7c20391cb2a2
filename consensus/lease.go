package consensus

import (
	"bytes"
	"encoding/binary"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Leader leases: a leader that a quorum confirmed recently serves reads
// from its own state, without a ReadIndex round (docs/consensus.md,
// "Leader leases").
//
// The promise a lease rests on is Raft's CheckQuorum rule: a follower that
// heard from its leader less than ElectionTicks ticks ago ignores vote and
// pre-vote requests. So when the leader asks a round of heartbeats at
// monotonic time t0 (a ReadIndex round: Raft matches the acknowledgements
// to the round) and a quorum answers, every member of that quorum refuses
// to vote until at least (ElectionTicks-1) of its own tick intervals after
// t0 (its first tick may come at once); any future leader needs one of
// their votes; so until then nobody else leads, and everything acknowledged
// as written went through this leader. The leader measures that window on
// its own monotonic clock, shrunk by the worst ratio of two clock rates
// that MaxClockDrift allows: Options.leaseDuration.
//
// Three things may make a replica vote or campaign inside that window,
// and each is closed here:
//   - a restart forgets when the replica last heard from its leader: a
//     replica drops vote requests and does not campaign for a window after
//     it starts (quietUntil);
//   - a hand-over (MsgTimeoutNow) makes voters ignore their leader on
//     purpose: a leader that starts one gives up its lease for the rest of
//     its term (gaveUp), before the message can leave;
//   - a configuration change may make quorums that miss the confirming
//     one: a lease holds only while the configuration it was confirmed in
//     does (confEpoch).
//
// What the clock may do: drift within MaxClockDrift, and step by any
// amount (leases read Runtime.Monotonic, never Now). A clock whose rate is
// off by more than MaxClockDrift breaks the promise; such a node must not
// be run with leases (DisableLeases).

// campaignTransfer is the context of the vote requests of a hand-over
// election (etcd raft's unexported campaignTransfer): voters grant them
// even while they hear from their leader. TestTransferVoteContext checks
// that Raft still marks them so.
var campaignTransfer = []byte("CampaignTransfer")

// forcedVote reports whether m asks for a vote in a hand-over election.
func forcedVote(m raftpb.Message) bool {
	return (m.Type == raftpb.MsgVote || m.Type == raftpb.MsgPreVote) && bytes.Equal(m.Context, campaignTransfer)
}

// lease is a leader's lease: it holds in term while the monotonic clock
// reads less than start plus the lease duration, and the configuration has
// not changed since (epoch).
type lease struct {
	term  uint64
	start time.Duration
	epoch uint64
}

// leaseRound is a ReadIndex round a leader asked: when, in which term and
// configuration. Its answer confirms a lease from that moment.
type leaseRound struct {
	at    time.Duration
	term  uint64
	epoch uint64
}

// leaseDuration is how long after the start of a confirmed round a leader
// may serve reads alone, on its own monotonic clock: a voter's window of
// (ElectionTicks-1) tick intervals on its clock, scaled by the slowest the
// leader's clock may run against the fastest the voter's may.
func (o *Options) leaseDuration() time.Duration {
	window := time.Duration(o.ElectionTicks-1) * o.TickInterval
	return time.Duration(float64(window) * (1 - o.MaxClockDrift) / (1 + o.MaxClockDrift))
}

// startQuiet opens r's quiet window as it starts: it may have confirmed a
// lease just before it stopped, and forgot when. The window is a whole
// election timeout on its own clock, longer than any lease it confirmed.
func (s *Store) startQuiet(r *replica) {
	r.quietUntil = s.rt.Monotonic() + time.Duration(s.opts.ElectionTicks)*s.opts.TickInterval
}

// starting reports whether r is inside its quiet window after a start.
func (s *Store) starting(r *replica) bool {
	return s.rt.Monotonic() < r.quietUntil
}

// hearsLeader reports whether r, a follower, heard from its leader less
// than ElectionTicks ticks ago: Raft's own test for ignoring votes
// (CheckQuorum), counted the same way (ticks handled since the message
// was), so r still promises that leader its lease.
func (s *Store) hearsLeader(r *replica, st raft.BasicStatus) bool {
	if st.Lead == raft.None || st.Lead == r.id {
		return false
	}
	at, ok := r.heard[st.Lead]
	return !ok || s.ticks-at < uint64(s.opts.ElectionTicks)
}

// dropsVote reports whether r, just started, ignores m: a vote or pre-vote
// request of an ordinary election. (A hand-over's requests pass: the
// leader that started it gave up its lease.)
func (s *Store) dropsVote(r *replica, m raftpb.Message) bool {
	if s.opts.DisableLeases || (m.Type != raftpb.MsgVote && m.Type != raftpb.MsgPreVote) || forcedVote(m) {
		return false
	}
	return s.starting(r)
}

// mayCampaign reports whether a perturbation may make r campaign now: not
// while it promises a leader its lease (just started, or hearing from
// it). A follower that campaigns then is a clock running far beyond
// MaxClockDrift, which leases rule out.
func (s *Store) mayCampaign(r *replica) bool {
	return s.opts.DisableLeases || (!s.starting(r) && !s.hearsLeader(r, r.rn.BasicStatus()))
}

// campaignEagerly is a perturbation: a follower campaigns the moment it
// stops promising its leader a lease (ElectionTicks ticks after it last
// heard from it), rather than at its randomized timeout, up to twice as
// late. A lease that outlives a voter's promise then meets a rival leader
// at once.
func (s *Store) campaignEagerly() {
	for _, id := range s.ids {
		r := s.replicas[id]
		st := r.rn.BasicStatus()
		if st.RaftState == raft.StateFollower && st.Lead != raft.None && !s.hearsLeader(r, st) && s.mayCampaign(r) {
			_ = r.rn.Campaign()
		}
	}
}

// askRound asks Raft for a ReadIndex round with context id, remembered
// as a lease round when r leads.
func (s *Store) askRound(r *replica, id uint64) {
	if st := r.rn.BasicStatus(); st.RaftState == raft.StateLeader && !s.opts.DisableLeases {
		if r.rounds == nil {
			r.rounds = map[uint64]leaseRound{}
		}
		r.rounds[id] = leaseRound{at: s.rt.Monotonic(), term: st.Term, epoch: r.confEpoch}
	}
	r.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, id))
}

// roundAnswered extends r's lease when the round id was one of its lease
// rounds, asked in the term and configuration r still has. Older rounds
// still unanswered can no longer extend it and are forgotten.
func (s *Store) roundAnswered(r *replica, id uint64) {
	round, ok := r.rounds[id]
	if !ok {
		return
	}
	st := r.rn.BasicStatus()
	if st.RaftState == raft.StateLeader && round.term == st.Term && round.epoch == r.confEpoch && r.gaveUp != st.Term &&
		(r.lease.term != st.Term || round.at > r.lease.start) {
		r.lease = lease{term: st.Term, start: round.at, epoch: round.epoch}
	}
	for k, v := range r.rounds {
		if v.at <= round.at {
			delete(r.rounds, k)
		}
	}
}

// leaseValid reports whether r may serve a read from its own state now:
// it leads under a lease confirmed in its term and configuration, recently
// enough, and it has applied an entry of its own term (so its commit index
// covers every write any earlier leader acknowledged).
func (s *Store) leaseValid(r *replica, st raft.BasicStatus) bool {
	if s.opts.DisableLeases || st.RaftState != raft.StateLeader {
		return false
	}
	s.noteTransfer(r, st)
	if r.gaveUp == st.Term || r.lease.term != st.Term || r.lease.epoch != r.confEpoch || !canEvaluate(r, st) {
		return false
	}
	if !s.votersRateOK(r) {
		return false // a voter's clock runs too fast for the lease (clockrate.go)
	}
	if mutation.On(MutLeaseNeverExpires) {
		return true
	}
	return s.rt.Monotonic()-r.lease.start < s.opts.leaseDuration()
}

// noteTransfer gives up r's lease for its term once it hands leadership
// over: the transferee's election ignores every voter's lease.
func (s *Store) noteTransfer(r *replica, st raft.BasicStatus) {
	if st.RaftState == raft.StateLeader && st.LeadTransferee != raft.None {
		r.gaveUp = st.Term
	}
}

// transferLeader hands r's leadership to the voter to, giving up r's
// lease first.
func (s *Store) transferLeader(r *replica, to uint64) {
	r.gaveUp = r.rn.BasicStatus().Term
	r.rn.TransferLeader(to)
}

// renewLeases runs on every tick: a leader whose lease served reads lately
// asks a fresh round before the lease runs out, so that a steady reader
// never waits for a ReadIndex round; an idle range sends nothing extra.
func (s *Store) renewLeases() {
	if s.opts.DisableLeases {
		return
	}
	now := s.rt.Monotonic()
	d := s.opts.leaseDuration()
	for _, id := range s.ids {
		r := s.replicas[id]
		st := r.rn.BasicStatus()
		s.noteTransfer(r, st)
		if st.RaftState != raft.StateLeader || r.gaveUp == st.Term {
			continue
		}
		for k, v := range r.rounds {
			if now-v.at >= d || v.term != st.Term {
				delete(r.rounds, k) // too old to extend anything
			}
		}
		recentlyUsed := r.lastRead != 0 && s.ticks+1-r.lastRead <= uint64(s.opts.ElectionTicks)
		if !recentlyUsed || len(r.rounds) > 0 {
			continue
		}
		// Perturbation: a round every tick, so that a lease often starts
		// right at a voter's last word from its leader, where a lease
		// that outlives the voter's promise shows.
		if r.lease.term == st.Term && now-r.lease.start < d/2 && !s.rt.Buggify("consensus.eager-lease-rounds") {
			continue // still fresh
		}
		s.nextID++
		s.askRound(r, s.nextID)
	}
}
