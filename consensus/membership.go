package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Membership changes.
//
// A replica's Raft ID names its node and a generation: gen<<32 | node. The
// replicas a range starts with are generation 0 (Raft ID = node ID). Adding
// a replica gives it the range's next generation, a counter in the range's
// replicated range-local data, so a node that leaves a range and comes back
// does so as a new Raft peer with no history — never as its old self with
// its votes forgotten (CockroachDB's replica IDs, for the same reason).
//
// A node remembers, outside the range's state, which replica it holds and a
// tombstone: the lowest replica ID it may still hold (storage.ReplicaRecord).
// A message to a replica ID at or above the tombstone that the node does not
// hold creates it, empty ("uninitialized": no configuration, so it never
// campaigns; it may vote); the leader then catches it up with a snapshot. A
// message to an older ID is dropped. A replica that applies its own removal
// is destroyed (log, range-local and user data of its span) and leaves a
// tombstone above its ID.
//
// Changes are made one at a time, each from the configuration the caller
// last saw (compare and swap, so that replayed requests do nothing), each one a ConfChangeV2 with a single
// change (Raft's simple transition; one pending change at a time), by the
// range's leader, which picks the step that brings the configuration
// closer to the target:
//   - add node: a learner with the next generation, then, once it has
//     caught up, its promotion to voter (so a slow new replica never
//     counts toward the quorum before it can vote usefully);
//   - remove node: remove its replica (a leader asked to remove itself hands
//     leadership to a caught-up voter first).
//
// Every replica validates a committed change again when it applies it; a
// change that no longer fits (its generation was taken, its target is gone)
// is applied as a no-op, as etcd's server does (NodeID zero).
//
// A replica removed while it was cut off never learns of it and keeps
// calling elections its old peers ignore. The range remembers removed
// replica IDs (range-local "removed/<id>"); a replica that gets a message
// from one of them tells its node to destroy it (port replica-gc).

const (
	gcPort = "replica-gc" // notices that a replica was removed from its range

	rangeLocalNextGen = "next-gen"
	rangeLocalRemoved = "removed/"
)

func replicaID(node kernel.NodeID, gen uint32) uint64 { return uint64(gen)<<32 | uint64(uint32(node)) }
func nodeOf(id uint64) kernel.NodeID                  { return kernel.NodeID(uint32(id)) }
func genOf(id uint64) uint32                          { return uint32(id >> 32) }

// members lists every replica ID of a configuration.
func members(cs raftpb.ConfState) []uint64 {
	var out []uint64
	for _, ids := range [][]uint64{cs.Voters, cs.Learners, cs.VotersOutgoing, cs.LearnersNext} {
		for _, id := range ids {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// memberOn returns the replica of cs on node, if any.
func memberOn(cs raftpb.ConfState, node kernel.NodeID) (uint64, bool) {
	for _, id := range members(cs) {
		if nodeOf(id) == node {
			return id, true
		}
	}
	return 0, false
}

// changeReplicas runs at the leader: it proposes the next step toward the
// target of req (OpAddReplica or OpRemoveReplica of the node in req.Value),
// answering when that step applies, or at once with OK when the target is
// reached.
func (s *Store) changeReplicas(r *replica, id uint64, req Request, reply func(Response, error)) {
	if len(req.Value) < 8 {
		reply(Response{}, fmt.Errorf("%w: replica change without a node", errMalformed))
		return
	}
	node := kernel.NodeID(binary.BigEndian.Uint64(req.Value))
	cs := r.log.ConfState()
	if r.confProposed || len(cs.VotersOutgoing) > 0 || s.unappliedConfChange(r) {
		reply(Response{}, retryf("a configuration change is in progress"))
		return
	}
	// A new leader's log may end with a change an earlier leader proposed
	// that is not committed yet, or miss one that an earlier leader could
	// still commit (if it won again before this leader committed anything).
	// Only once an entry of its own term applied is its applied
	// configuration the range's: until then neither "done" nor a step may
	// rest on it (the simulator found a removal answered "done" while a
	// deposed leader's learner addition later committed).
	if t, err := r.log.Term(r.log.Applied()); err != nil || t != r.rn.BasicStatus().Term {
		reply(Response{}, retryf("the leader has not applied an entry of its term yet"))
		return
	}
	// A step is taken only from the configuration the caller saw (compare
	// and swap): a request delayed or replayed by the network then finds a
	// newer configuration and does nothing. The configuration's version is
	// the ConfState with the range's next replica generation: a ConfState
	// alone can repeat (add a replica, then remove it: the simulator
	// replayed an old "add" that matched), but only an addition undoes a
	// removal or a promotion, and every addition takes a generation.
	curGen := nextGen(s.eng, r.desc.ID)
	version := confVersion(curGen, cs)
	expectGen, expect, err := decodeConfVersion(req.Value[8:])
	if err != nil && len(req.Value) > 8 {
		reply(Response{}, fmt.Errorf("%w: replica change: %v", errMalformed, err))
		return
	}
	describe := len(req.Value) == 8 || expectGen != curGen || cs.Equivalent(expect) != nil
	cur, present := memberOn(cs, node)
	var cc raftpb.ConfChangeV2
	var gen uint32
	switch req.Op {
	case OpAddReplica:
		switch {
		case present && slices.Contains(cs.Voters, cur):
			reply(Response{OK: true, Value: version}, nil)
			return
		case describe:
			reply(Response{Value: version}, nil)
			return
		case present:
			pr := r.rn.Status().Progress[cur]
			if pr.Match < r.log.Applied() {
				reply(Response{}, retryf("learner %x is catching up (%d of %d)", cur, pr.Match, r.log.Applied()))
				return
			}
			cc.Changes = []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddNode, NodeID: cur}}
		default:
			gen = curGen
			cc.Changes = []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode, NodeID: replicaID(node, gen)}}
		}
	case OpRemoveReplica, OpRemoveLiveReplica:
		switch {
		case !present:
			reply(Response{OK: true, Value: version}, nil)
			return
		case describe:
			reply(Response{Value: version}, nil)
			return
		case cur == r.id:
			s.transferLeadership(r, reply)
			return
		case slices.Contains(cs.Voters, cur) && len(cs.Voters) == 1:
			reply(Response{}, errors.New("cannot remove a range's last voter"))
			return
		case req.Op == OpRemoveLiveReplica:
			if err := s.quorumLiveWithout(r, cs, cur); err != nil {
				reply(Response{}, err)
				return
			}
		}
		cc.Changes = []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeRemoveNode, NodeID: cur}}
	}
	cc.Context = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, id), gen)
	if err := r.proposeConfChange(cc); err != nil {
		reply(Response{}, retryf("%v", err))
		return
	}
	// Raft accepts one pending change at a time, and turns any other into an
	// empty entry without a word: confProposed keeps our own proposals one
	// at a time, and apply clears it.
	r.confChangeProposed()
	r.await(id, reply)
}

// confVersion encodes a configuration's version: the range's next
// replica generation, then the ConfState.
func confVersion(gen uint32, cs raftpb.ConfState) []byte {
	b, err := cs.Marshal()
	if err != nil {
		kernel.Crash("marshal conf state: %v", err)
	}
	return append(binary.BigEndian.AppendUint32(nil, gen), b...)
}

func decodeConfVersion(b []byte) (uint32, raftpb.ConfState, error) {
	var cs raftpb.ConfState
	if len(b) < 4 {
		return 0, cs, errors.New("a configuration version of fewer than 4 bytes")
	}
	err := cs.Unmarshal(b[4:])
	return binary.BigEndian.Uint32(b), cs, err
}

// quorumLiveWithout checks, at the leader, that the voters of cs other than
// gone hold a quorum of replicas it heard from within the last election
// timeout: otherwise the range would stop once gone is removed, and wait
// for a node that is down. (Raft's own RecentActive is reset at every
// CheckQuorum round, so it reads "down" for a moment every election
// timeout; the driver's own record of messages does not.)
func (s *Store) quorumLiveWithout(r *replica, cs raftpb.ConfState, gone uint64) error {
	var left, live int
	for _, v := range cs.Voters {
		if v == gone {
			continue
		}
		left++
		if heard, ok := r.heard[v]; v == r.id || (ok && s.ticks-heard <= uint64(s.opts.ElectionTicks)) {
			live++
		}
	}
	if live >= left/2+1 {
		return nil
	}
	if s.ticks-r.ledSince <= uint64(s.opts.ElectionTicks) {
		// A new leader may not have heard from everyone yet.
		return retryf("the leader is new and has not heard from every replica yet")
	}
	return fmt.Errorf("range %d: removing node %d would leave %d voters of which only %d are up; a quorum needs %d (bring the others back first)",
		r.desc.ID, nodeOf(gone), left, live, left/2+1)
}

// unappliedConfChange reports whether r's log holds a membership change it
// has not applied: one a previous leader proposed, say. Until it applies,
// the configuration r has applied may be about to change, so no decision
// ("done") may rest on it.
func (s *Store) unappliedConfChange(r *replica) bool {
	last, _ := r.log.LastIndex()
	applied := r.log.Applied()
	if last <= applied {
		return false
	}
	ents, err := r.log.Entries(applied+1, last+1, math.MaxUint64)
	if err != nil {
		return true // compacted or unavailable: assume the worst, retry later
	}
	for _, e := range ents {
		if e.Type == raftpb.EntryConfChange || e.Type == raftpb.EntryConfChangeV2 {
			return true
		}
	}
	return false
}

// transferLeadership hands r's leadership to a voter that has its whole
// log, so that r can then be removed without an election's gap.
func (s *Store) transferLeadership(r *replica, reply func(Response, error)) {
	st := r.rn.Status()
	last, _ := r.log.LastIndex()
	for _, v := range r.log.ConfState().Voters {
		if v != r.id && st.Progress[v].Match == last {
			s.handOver(r, v)
			reply(Response{}, NotLeaderError{Term: r.rn.BasicStatus().Term})
			return
		}
	}
	reply(Response{}, retryf("no caught-up voter to hand leadership to"))
}

// transferTo runs at r's leader for OpTransferLeader: it hands the
// leadership to the replica on the node in req.Value if that replica is a
// voter with the whole log, and answers OK once it leads (the client's
// next attempt reaches it there).
func (s *Store) transferTo(r *replica, req Request, reply func(Response, error)) {
	if len(req.Value) != 8 {
		reply(Response{}, fmt.Errorf("%w: a leadership transfer without a node", errMalformed))
		return
	}
	node := kernel.NodeID(binary.BigEndian.Uint64(req.Value))
	if nodeOf(r.id) == node {
		reply(Response{OK: true}, nil)
		return
	}
	st := r.rn.Status()
	last, _ := r.log.LastIndex()
	for _, v := range r.log.ConfState().Voters {
		if nodeOf(v) != node {
			continue
		}
		if st.Progress[v].Match != last || r.handoverTo != 0 {
			reply(Response{}, retryf("node %d's replica of range %d is catching up (%d of %d)", node, r.desc.ID, st.Progress[v].Match, last))
			return
		}
		s.handOver(r, v)
		reply(Response{}, retryf("handing range %d's leadership to node %d", r.desc.ID, node))
		return
	}
	reply(Response{}, fmt.Errorf("consensus: node %d holds no voter of range %d", node, r.desc.ID))
}

func nextGen(r rangeLocalReader, id storage.RangeID) uint32 {
	v, ok := rangeLocalFixed(r, id, rangeLocalNextGen, 4)
	if !ok {
		return 1
	}
	return binary.BigEndian.Uint32(v)
}

func removedKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(rangeLocalRemoved), id)
}

// applyConfChange applies a committed membership change to this replica
// of range d: validated against the configuration it meets (cs), a change
// that does not fit applies as a no-op (Raft still counts it), and its
// records (the next replica generation, a removed replica's mark) are
// staged in w. It returns the new configuration and the proposal ID that
// waits for it, and notes the change (confChanged, confChangeApplied).
func (c *replicaCore) applyConfChange(w writeState, d Descriptor, cs raftpb.ConfState, cc raftpb.ConfChangeV2) (raftpb.ConfState, uint64) {
	var id uint64
	var gen uint32
	if len(cc.Context) == 12 {
		id, gen = binary.BigEndian.Uint64(cc.Context), binary.BigEndian.Uint32(cc.Context[8:])
	}
	if !validChange(w, d.ID, cs, cc, gen) {
		for i := range cc.Changes {
			cc.Changes[i].NodeID = 0 // a no-op that Raft still counts as applied
		}
	}
	for _, ch := range cc.Changes {
		switch ch.Type {
		case raftpb.ConfChangeAddLearnerNode:
			if ch.NodeID != 0 {
				w.SetRangeLocal(d.ID, []byte(rangeLocalNextGen), binary.BigEndian.AppendUint32(nil, gen+1))
			}
		case raftpb.ConfChangeRemoveNode:
			if ch.NodeID != 0 {
				w.SetRangeLocal(d.ID, removedKey(ch.NodeID), nil)
			}
		}
	}
	cs = *c.rn.ApplyConfChange(cc)
	c.confChanged()
	c.confChangeApplied()
	return cs, id
}

// validChange reports whether cc, a single change, fits cs.
func validChange(r rangeLocalReader, rangeID storage.RangeID, cs raftpb.ConfState, cc raftpb.ConfChangeV2, gen uint32) bool {
	if len(cc.Changes) != 1 || len(cs.VotersOutgoing) > 0 {
		return len(cc.Changes) == 0 // Raft's own "leave joint" entries only
	}
	ch := cc.Changes[0]
	_, nodePresent := memberOn(cs, nodeOf(ch.NodeID))
	isMember := slices.Contains(members(cs), ch.NodeID)
	switch ch.Type {
	case raftpb.ConfChangeAddLearnerNode:
		return !nodePresent && genOf(ch.NodeID) == gen && gen == nextGen(r, rangeID)
	case raftpb.ConfChangeAddNode:
		return slices.Contains(cs.Learners, ch.NodeID)
	case raftpb.ConfChangeRemoveNode:
		return isMember && !(slices.Contains(cs.Voters, ch.NodeID) && len(cs.Voters) == 1)
	}
	return false
}

// replicaFor returns the replica a message to replica ID to of range id is
// for: the one the node holds, or a new empty one if to is newer than
// anything the node held (the range added a replica here). It returns nil
// for a message to a replica that is gone.
func (s *Store) replicaFor(id storage.RangeID, to uint64) *replica {
	if nodeOf(to) != s.rt.NodeID() {
		return nil // misaddressed
	}
	r := s.replicas[id]
	switch {
	case r != nil && r.id == to:
		return r
	case r != nil && to < r.id:
		return nil // to an older incarnation
	case r != nil:
		// The range removed r and added a newer replica here while r was
		// cut off: r is garbage.
		s.destroy(r)
	}
	d, ok := s.layout.Range(id)
	if !ok {
		d = uninitialized(id) // a range split off since bootstrap
	}
	rec, err := s.eng.ReplicaRecord(id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		kernel.Crash("range %d: replica record: %v", id, err)
	}
	if to < rec.MinReplicaID {
		return nil // a removed replica's mail
	}
	b := s.eng.NewBatch()
	b.SetReplicaRecord(id, storage.ReplicaRecord{ReplicaID: to, MinReplicaID: to})
	// Unsynced: the replica's first synced write (its first vote or entry)
	// makes this durable too, and until then it has nothing to forget.
	if err := b.Commit(false); err != nil {
		kernel.Crash("range %d: replica record: %v", id, err)
	}
	r, err = s.openReplica(d, to)
	if err != nil {
		kernel.Crash("range %d: create replica %x: %v", id, to, err)
	}
	s.addReplica(r)
	return r
}

// destroy deletes replica r and everything it holds, leaving a tombstone
// above its ID. Its waiting clients get no answer (their writes may have
// committed elsewhere: "maybe").
func (s *Store) destroy(r *replica) {
	s.abandon(r)
	b := s.eng.NewBatch()
	r.log.Destroy(b)
	if !r.desc.Empty() {
		// Not what a newer replica here holds (one that lags behind a
		// merge may overlap it: merge.go, newerOverlaps).
		for _, p := range storage.SpanMinus(storage.Span{Start: r.desc.Start, End: r.desc.End}, s.newerOverlaps(r, r.desc)) {
			b.DeleteRange(p.Start, p.End)
		}
	}
	b.SetReplicaRecord(r.desc.ID, storage.ReplicaRecord{MinReplicaID: r.id + 1})
	// Unsynced: if a crash loses it, the replica comes back whole (votes
	// included) and is removed again.
	if err := b.Commit(false); err != nil {
		kernel.Crash("range %d: destroy replica: %v", r.desc.ID, err)
	}
	s.detach(r)
	s.rt.Logger().Info("replica destroyed", "range", r.desc.ID, "replica", fmt.Sprintf("%x", r.id))
}

// noticeRemoved tells the node of replica from, if the range removed it,
// to destroy it: from sent r a message though it is not in r's
// configuration.
func (s *Store) noticeRemoved(r *replica, from uint64) {
	if from == 0 || slices.Contains(members(r.log.ConfState()), from) {
		return
	}
	if _, err := s.eng.GetRangeLocal(r.desc.ID, removedKey(from)); err != nil {
		return // not removed (yet, as far as r has applied), or unreadable
	}
	s.rt.Net().Send(nodeOf(from), gcPort, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(r.desc.ID)), from))
}

// Tombstone records, in a node's fresh store, that it holds no replica of
// range id and takes none below minReplicaID (Client.NextReplicaID): a node
// rebuilt after its store was damaged must never answer as one of its old
// replicas, whose votes and log it no longer has, to a message that was on
// its way (storage.ErrCorrupt tells the whole procedure). Synced.
func Tombstone(eng *storage.Engine, id storage.RangeID, minReplicaID uint64) error {
	b := eng.NewBatch()
	defer b.Close()
	b.SetReplicaRecord(id, storage.ReplicaRecord{MinReplicaID: minReplicaID})
	return b.Commit(true)
}
