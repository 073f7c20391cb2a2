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

// startQuiet opens c's quiet window as it starts: it may have confirmed a
// lease just before it stopped, and forgot when. The window is a whole
// election timeout on its own clock, longer than any lease it confirmed.
func (c *replicaCore) startQuiet(at moment) {
	c.quietUntil = at.mono + time.Duration(c.cfg.electionTicks)*c.cfg.tickInterval
}

// promisedNothing closes c's quiet window: c was just made by a split,
// and has promised no leader a lease.
func (c *replicaCore) promisedNothing() { c.quietUntil = 0 }

// starting reports whether c is inside its quiet window after a start.
func (c *replicaCore) starting(at moment) bool {
	return at.mono < c.quietUntil
}

// hearsLeader reports whether c, a follower, heard from its leader less
// than ElectionTicks ticks ago: Raft's own test for ignoring votes
// (CheckQuorum), counted the same way (ticks handled since the message
// was), so c still promises that leader its lease.
func (c *replicaCore) hearsLeader(st raft.BasicStatus, at moment) bool {
	if st.Lead == raft.None || st.Lead == c.id {
		return false
	}
	heard, ok := c.heard[st.Lead]
	return !ok || at.tick-heard < uint64(c.cfg.electionTicks)
}

// dropsVote reports whether c, just started, ignores m: a vote or pre-vote
// request of an ordinary election. (A hand-over's requests pass: the
// leader that started it gave up its lease.)
func (c *replicaCore) dropsVote(m raftpb.Message, at moment) bool {
	if c.cfg.disableLeases || (m.Type != raftpb.MsgVote && m.Type != raftpb.MsgPreVote) || forcedVote(m) {
		return false
	}
	return c.starting(at)
}

// mayCampaign reports whether a perturbation may make c campaign now: not
// while it promises a leader its lease (just started, or hearing from
// it). A follower that campaigns then is a clock running far beyond
// MaxClockDrift, which leases rule out.
func (c *replicaCore) mayCampaign(at moment) bool {
	return c.cfg.disableLeases || (!c.starting(at) && !c.hearsLeader(c.rn.BasicStatus(), at))
}

// campaignsEagerly reports whether c, a follower, has just stopped
// promising its leader a lease and may campaign: the campaignEagerly
// perturbation (store.go) makes it campaign then, rather than at its
// randomized timeout, up to twice as late. A lease that outlives a voter's
// promise then meets a rival leader at once.
func (c *replicaCore) campaignsEagerly(at moment) bool {
	st := c.rn.BasicStatus()
	return st.RaftState == raft.StateFollower && st.Lead != raft.None && !c.hearsLeader(st, at) && c.mayCampaign(at)
}

// askRound asks Raft for a ReadIndex round with context id, remembered
// as a lease round when c leads.
func (c *replicaCore) askRound(id uint64, at moment) {
	if st := c.rn.BasicStatus(); st.RaftState == raft.StateLeader && !c.cfg.disableLeases {
		if c.rounds == nil {
			c.rounds = map[uint64]leaseRound{}
		}
		c.rounds[id] = leaseRound{at: at.mono, term: st.Term, epoch: c.confEpoch}
	}
	c.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, id))
}

// roundAnswered extends c's lease when the round id was one of its lease
// rounds, asked in the term and configuration c still has. Older rounds
// still unanswered can no longer extend it and are forgotten.
func (c *replicaCore) roundAnswered(id uint64) {
	round, ok := c.rounds[id]
	if !ok {
		return
	}
	st := c.rn.BasicStatus()
	// A round replaces a lease of another term or configuration, or an
	// older one. (The configuration matters: a round asked at the very
	// instant of the lease it follows, but after a configuration change,
	// used to be refused, and reads took rounds until a later one; found
	// by testdata/core/05_conf_change.txt.)
	if st.RaftState == raft.StateLeader && round.term == st.Term && round.epoch == c.confEpoch && c.gaveUp != st.Term &&
		(c.lease.term != st.Term || c.lease.epoch != round.epoch || round.at > c.lease.start) {
		c.lease = lease{term: st.Term, start: round.at, epoch: round.epoch}
	}
	for k, v := range c.rounds {
		if v.at <= round.at {
			delete(c.rounds, k)
		}
	}
}

// leaseValid reports whether c may serve a read from its own state now:
// it leads under a lease confirmed in its term and configuration, recently
// enough, and it has applied an entry of its own term (so its commit index
// covers every write any earlier leader acknowledged). ratesOK reports
// whether every voter's clock runs within the bound (clockrate.go); it is
// asked last.
func (c *replicaCore) leaseValid(st raft.BasicStatus, at moment, ratesOK func() bool) bool {
	if c.cfg.disableLeases || st.RaftState != raft.StateLeader {
		return false
	}
	c.noteTransfer(st)
	if c.gaveUp == st.Term || c.lease.term != st.Term || c.lease.epoch != c.confEpoch || !c.canEvaluate(st) {
		return false
	}
	if !ratesOK() {
		return false // a voter's clock runs too fast for the lease (clockrate.go)
	}
	if mutation.On(MutLeaseNeverExpires) {
		return true
	}
	return at.mono-c.lease.start < c.cfg.leaseDuration
}

// noteTransfer gives up c's lease for its term once it hands leadership
// over: the transferee's election ignores every voter's lease.
func (c *replicaCore) noteTransfer(st raft.BasicStatus) {
	if st.RaftState == raft.StateLeader && st.LeadTransferee != raft.None {
		c.gaveUp = st.Term
	}
}

// transferLeader hands c's leadership to the voter to, giving up c's
// lease first.
func (c *replicaCore) transferLeader(to uint64) {
	c.gaveUp = c.rn.BasicStatus().Term
	c.rn.TransferLeader(to)
}

// renewal is what leaseRenewal advises.
type renewal int

const (
	renewNot   renewal = iota // not leading, or no reads lately, or a round is out
	renewFresh                // the lease is still fresh: only a perturbation renews it
	renewDue                  // ask a round now
)

// leaseRenewal runs on every tick: a leader whose lease served reads
// lately asks a fresh round before the lease runs out, so that a steady
// reader never waits for a ReadIndex round; an idle range sends nothing
// extra. It also forgets rounds too old to extend anything.
func (c *replicaCore) leaseRenewal(at moment) renewal {
	st := c.rn.BasicStatus()
	c.noteTransfer(st)
	if st.RaftState != raft.StateLeader || c.gaveUp == st.Term {
		return renewNot
	}
	d := c.cfg.leaseDuration
	for k, v := range c.rounds {
		if at.mono-v.at >= d || v.term != st.Term {
			delete(c.rounds, k) // too old to extend anything
		}
	}
	recentlyUsed := c.lastRead != 0 && at.tick+1-c.lastRead <= uint64(c.cfg.electionTicks)
	if !recentlyUsed || len(c.rounds) > 0 {
		return renewNot
	}
	if c.lease.term == st.Term && at.mono-c.lease.start < d/2 {
		return renewFresh
	}
	return renewDue
}

// renewLeases asks a round for every leader whose lease leaseRenewal finds
// due. Perturbation: a round every tick, so that a lease often starts
// right at a voter's last word from its leader, where a lease that
// outlives the voter's promise shows.
func (s *Store) renewLeases() {
	if s.opts.DisableLeases {
		return
	}
	at := s.moment()
	for _, id := range s.ids {
		r := s.replicas[id]
		switch r.leaseRenewal(at) {
		case renewNot:
			continue
		case renewFresh:
			if !s.rt.Buggify("consensus.eager-lease-rounds") {
				continue
			}
		}
		s.nextID++
		r.askRound(s.nextID, at)
	}
}
