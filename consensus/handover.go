package consensus

import (
	"bytes"
	"sync/atomic"

	"go.etcd.io/raft/v3"

	"github.com/orbitkernel/orbit/storage"
)

// Hand-over summaries (docs/consensus.md, "Hand-over summaries"). A
// keyspace's machine may keep memory that only a range's leader has and
// that a new leader must otherwise assume the worst of: the transactional
// keyspace's timestamp cache starts a new leader at its clock plus the
// maximum offset, and every write of its first term then waits out up to
// that offset before it answers (commit-wait). A leader that hands its
// leadership over on purpose (a rebalance, a drain, a slow leader's
// hand-over) knows better, as CockroachDB's lease transfers carry the
// old leaseholder's read summary:
//
//  1. Before Raft's transfer starts, the leader asks each HandOverer
//     keyspace for a summary of the range in its term, proposes the
//     summaries as one entry (kind 7, wire.go), and from then on serves
//     those keyspaces nothing more in that term (summarizedTerm): every read
//     it served lies under the summary. Raft sends the transferee that
//     entry before its TimeoutNow (the transferee must hold the whole log).
//  2. A replica that applies the entry keeps it while only entries of the
//     same term follow. The first entry of a later term ends it; if that
//     entry is of the term this replica leads, no other leader came in
//     between (a leader serves nothing before an entry of its own term
//     has applied), and the machines take the summary over.
//  3. A hand-over that fails (the transferee never takes over; Raft gives
//     up) is taken back through the log: an empty kind-7 entry. Once it
//     has applied (it committed in this term, so every later leader holds
//     it, and it ends the summary there) the leader serves again.
//
// A restart, a snapshot, a split or a merge forgets an applied summary:
// the next leader assumes the worst, as before.

// HandOverer is implemented by a machine that keeps leader-only memory
// per range that a new leader can take over from a summary (the
// transactional keyspace's timestamp cache).
type HandOverer interface {
	// HandOver returns a summary of range id's memory on this node, led
	// in term, for the range's next leader, or nil for none. The store
	// serves the machine nothing more of that range in that term unless
	// the hand-over is taken back.
	HandOver(d Descriptor, term uint64) []byte
	// TakeOver gives the leader of n.Range in n.Term the summary the
	// previous term's leader handed over. It comes before any command of
	// that term, and may come after a query of it (noted on arrival).
	TakeOver(n TakeOverNote)
	// Absorb gives the leader of a merge's left-hand range, as the merge
	// applies there, the summary of the right-hand range that HandOver
	// returned on the right-hand leader that answered its freeze (frozen,
	// it served nothing after).
	Absorb(n AbsorbNote)
}

// AbsorbNote is what Absorb is told: the left-hand range, led here in
// Term, was at LeftGeneration before the merge and is Merged now; it
// absorbed [RightStart, RightEnd), which Summary summarizes.
type AbsorbNote struct {
	Range                storage.RangeID
	Term, LeftGeneration uint64
	Merged               Descriptor
	RightStart, RightEnd []byte
	Summary              []byte
}

// TakeOverNote is what TakeOver is told: the range as its new leader
// takes it over, and the summary HandOver returned.
type TakeOverNote struct {
	Range      storage.RangeID
	Term       uint64
	Start, End []byte // the range's span (End nil: the end of the keyspace)
	Summary    []byte
}

// HandOverCounts counts this node's hand-over summaries since it started:
// entries proposed ahead of a transfer, summaries its new leaders took
// over, hand-overs it took back, and right-hand summaries its left-hand
// leaders absorbed in merges.
type HandOverCounts struct {
	Proposed, TakenOver, TakenBack, Absorbed atomic.Int64
}

// HandOvers is the node's hand-over counts (metrics).
func (s *Store) HandOvers() *HandOverCounts { return &s.handovers }

// handover is a kind-7 entry: summaries by keyspace name; none: the
// hand-over taken back.
type handover struct {
	summaries []keyspaceSummary
}

type keyspaceSummary struct {
	keyspace string
	summary  []byte
}

// appliedHandover is a hand-over entry a replica applied, kept while only
// entries of its term follow.
type appliedHandover struct {
	term      uint64
	summaries []keyspaceSummary
}

func encodeHandover(h handover) []byte {
	b := make([]byte, 9, 64)
	b[0] = entryHandover // proposal ID 0: nobody waits for it
	return appendSummaries(b, h.summaries)
}

func decodeHandover(b []byte) (*handover, error) {
	sums, err := readSummaries(b)
	return &handover{summaries: sums}, err
}

// appendSummaries appends sums as (keyspace name, summary) pairs, each
// length-prefixed: a kind-7 entry's body, and a kind-8 trigger's tail.
func appendSummaries(b []byte, sums []keyspaceSummary) []byte {
	for _, s := range sums {
		b = appendBytes(b, []byte(s.keyspace))
		b = appendBytes(b, s.summary)
	}
	return b
}

// readSummaries reads what appendSummaries wrote, to the end of b.
func readSummaries(b []byte) ([]keyspaceSummary, error) {
	var sums []keyspaceSummary
	for len(b) > 0 {
		name, rest, err := readBytes(b)
		if err != nil {
			return nil, err
		}
		sum, rest, err := readBytes(rest)
		if err != nil {
			return nil, err
		}
		sums = append(sums, keyspaceSummary{keyspace: string(name), summary: bytes.Clone(sum)})
		b = rest
	}
	return sums, nil
}

// handingOver reports whether r, leading in term, handed the keyspace
// that holds key over in that term: it serves the keyspace nothing.
func (s *Store) handingOver(r *replica, term uint64, key []byte) bool {
	if r.summarizedTerm != term {
		return false
	}
	ks, ok := s.keyspaceOf(key)
	if !ok {
		return false
	}
	_, ok = ks.Machine.(HandOverer)
	return ok
}

// handOver starts handing r's leadership to the voter to: the hand-over
// summaries first (unless this term's are out already), then the wait
// until to holds the whole log, the summaries included, and only then
// Raft's transfer (progressHandovers). Raft's own transfer would wait
// for the summaries' entry itself, but gives up after an election
// timeout, less than a round trip over the slow links that cause a
// slow leader's hand-over (the jepsen slow-leader check found a leader
// that proposed its summaries and transferred at once never handing
// over).
func (s *Store) handOver(r *replica, to uint64) {
	st := r.rn.BasicStatus()
	if st.RaftState == raft.StateLeader && r.summarizedTerm != st.Term {
		h := handover{summaries: s.summaries(r, st.Term)}
		if len(h.summaries) > 0 && r.propose(encodeHandover(h)) == nil {
			r.summarizedTerm, r.takeBackProposed = st.Term, false
			s.handovers.Proposed.Add(1)
		}
	}
	r.handOver(to, s.rt.Monotonic()+handoverTimeout)
}

// summaries are the hand-over summaries of r, led here in term, from the
// keyspaces that overlap it.
func (s *Store) summaries(r *replica, term uint64) []keyspaceSummary {
	var sums []keyspaceSummary
	for _, k := range s.opts.Keyspaces {
		m, ok := k.Machine.(HandOverer)
		if !ok || !r.desc.Overlaps(Descriptor{Start: k.Start, End: k.End}) {
			continue
		}
		if sum := m.HandOver(r.desc, term); sum != nil {
			sums = append(sums, keyspaceSummary{keyspace: k.Name, summary: sum})
		}
	}
	return sums
}

// handOverer is the HandOverer of the keyspace named name (false: none).
func (s *Store) handOverer(name string) (HandOverer, bool) {
	for _, k := range s.opts.Keyspaces {
		if m, ok := k.Machine.(HandOverer); ok && k.Name == name {
			return m, true
		}
	}
	return nil, false
}

// absorbSummaries gives the machines of r, the left-hand range of a merge
// just applied here, the right-hand range's summaries, if r leads: they
// extend its memory of the range as it was (generation left) over right.
func (s *Store) absorbSummaries(r *replica, left uint64, right Descriptor, sums []keyspaceSummary) {
	st := r.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return
	}
	for _, sum := range sums {
		if m, ok := s.handOverer(sum.keyspace); ok {
			m.Absorb(AbsorbNote{Range: r.desc.ID, Term: st.Term, LeftGeneration: left, Merged: r.desc,
				RightStart: right.Start, RightEnd: right.End, Summary: sum.summary})
			s.handovers.Absorbed.Add(1)
		}
	}
}

// takeBackHandovers runs on every tick: a leader whose hand-over failed
// (Raft gave up its transfer, and it still leads the term) proposes the
// entry that takes it back.
func (s *Store) takeBackHandovers() {
	for _, id := range s.ids {
		r := s.replicas[id]
		if r.summarizedTerm == 0 || r.takeBackProposed || r.handoverTo != 0 {
			continue
		}
		st := r.rn.BasicStatus()
		if st.RaftState != raft.StateLeader || st.Term != r.summarizedTerm {
			r.summarizedTerm = 0 // the term is over: the refusal with it
			continue
		}
		if st.LeadTransferee == raft.None && r.propose(encodeHandover(handover{})) == nil {
			r.takeBackProposed = true
		}
	}
}

// applyHandover applies a kind-7 entry of term to r.
func (s *Store) applyHandover(r *replica, term uint64, h *handover) {
	if len(h.summaries) == 0 {
		r.lastHandover = nil
		if r.summarizedTerm == term {
			r.summarizedTerm = 0 // committed in its term: every later leader holds it
			s.handovers.TakenBack.Add(1)
		}
		return
	}
	r.lastHandover = &appliedHandover{term: term, summaries: h.summaries}
}

// passHandover runs before r applies an entry of term: the first entry of
// a later term ends an applied hand-over, which the machines take over if
// that term is r's own as leader.
func (s *Store) passHandover(r *replica, term uint64) {
	h := r.lastHandover
	if h == nil || term == h.term {
		return
	}
	r.lastHandover = nil
	st := r.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.Term != term {
		return
	}
	for _, sum := range h.summaries {
		if m, ok := s.handOverer(sum.keyspace); ok {
			m.TakeOver(TakeOverNote{Range: r.desc.ID, Term: term, Start: r.desc.Start, End: r.desc.End, Summary: sum.summary})
			s.handovers.TakenOver.Add(1)
		}
	}
}
