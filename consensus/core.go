package consensus

import (
	"bytes"
	"encoding/binary"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// replicaCore is the part of a replica that decides and does no I/O: its
// Raft state machine (RawNode), when it last heard from whom, the lease it
// holds as leader (lease.go), the linearizable reads waiting for a read
// index, and the plan each Ready asks of the driver. Time comes in as a
// moment (the driver's tick count and the monotonic clock), messages and
// Readies as values, and what the core decides goes out as return values:
// what to persist and whether to sync, which messages may leave before the
// write is durable, which snapshots to stream, which reads are due, and
// how the replica's role changed. The driver (Store, store.go) owns the
// engine, the network and the runtime and carries the plans out: one
// batch, one sync and coalesced sends for every replica of a cycle.
//
// The core reads its log through raft.Storage only: the driver backs it
// with the range's storage.LogStore, and the core transcripts
// (core_test.go, testdata/core) with raft.MemoryStorage, so the decisions
// are tested without an engine, a network or a simulator. The rest of a
// replica (its descriptor, the evaluation chain, splits, merges and
// membership steps) is still the driver's: docs/consensus.md, "The replica
// core", says what moves next.
//
// Only the driver's task touches a core. The driver reads Raft's status
// through rn; it changes the core's state only through these methods.
type replicaCore struct {
	id  uint64 // Raft ID: generation and node (membership.go)
	rn  *raft.RawNode
	cfg coreConfig

	// heard is when (moment.tick) a message last came from each peer
	// replica: who is up, for a checked removal (membership.go), and
	// whether a follower still hears its leader (lease.go).
	heard map[uint64]uint64
	// leaderHeard is when (moment.tick) the replica last heard from a
	// leader (or led): a replica of a range merged away hears nothing
	// (merge.go).
	leaderHeard uint64
	// leading is set while the replica leads; ledSince is when
	// (moment.tick) it last became leader.
	leading  bool
	ledSince uint64
	// handedOver is set when a leader handed this replica its leadership
	// (MsgTimeoutNow), until the replica's next change of role.
	handedOver bool
	// votedTerm is the term of the last vote this replica persisted, so
	// that the consensus.elections perturbation crashes it after a vote it
	// just granted, not after every later change of its hard state.
	votedTerm uint64
	// standing is the term in which the standAgainst perturbation made
	// this replica a candidate, with leases on (its requests are sent as
	// an ordinary election's).
	standing uint64

	// Leader leases (lease.go). lease is the latest one confirmed; rounds
	// are the ReadIndex rounds asked as leader and not yet answered;
	// confEpoch counts the configuration changes applied; gaveUp is a term
	// in which this replica started a hand-over; appliedTerm is the term
	// of the last entry applied; lastRead is when (moment.tick+1) a read
	// last came to this leader; quietUntil (moment.mono) ends the window
	// after a start in which the replica neither votes nor campaigns.
	lease       lease
	rounds      map[uint64]leaseRound
	confEpoch   uint64
	gaveUp      uint64
	appliedTerm uint64
	lastRead    uint64
	quietUntil  time.Duration

	// quorumRTT is this node's round trip to the nearest quorum of the
	// range's other voters, as the driver last measured it (0: unknown);
	// electionCredit is what the paced election timer has saved toward
	// its next Raft tick (tick).
	quorumRTT      time.Duration
	electionCredit time.Duration

	// reads wait for their ReadIndex (readAt == 0 until Raft answers), then
	// for the applied index to reach it. The reads that came in since the
	// last cycle share one ReadIndex (batch 0 until it is asked), as
	// etcd's server batches them: one round of heartbeats confirms the
	// leadership for all, and each read's index is still taken after it
	// arrived.
	reads []*read
	// unbatched counts the reads with batch 0.
	unbatched int

	// What a leader has in flight that holds requests back (admission,
	// below). handoverTo is the voter this leader hands its leadership to
	// (0: none), until handoverUntil; meanwhile it takes no new writes
	// (health.go). splitKey is where its split in flight cuts the range
	// (nil: none): writes at or after it wait (split.go). freezing is set
	// while its freeze is in flight, and frozen once the range applied one
	// (merge.go): it takes nothing more; frozenSeen is the tick at which
	// the driver first saw it frozen. confProposed is set while a
	// membership change it proposed has not applied (membership.go).
	handoverTo    uint64
	handoverUntil time.Duration
	// unpersisted is set while an entry proposed here is not in a Ready
	// yet: Raft's last index is then past the log's, and a transfer asked
	// for now would wait for a round trip (mayTransfer).
	unpersisted  bool
	splitKey     []byte
	freezing     bool
	frozen       bool
	frozenSeen   uint64
	confProposed bool

	// summarizedTerm is the term in which this leader proposed its
	// hand-over summaries (0: none, or taken back): it serves the
	// keyspaces that gave them nothing more in that term;
	// takeBackProposed, that the entry taking it back is in flight.
	// lastHandover is the hand-over entry the replica applied last, while
	// only entries of its term follow (handover.go).
	summarizedTerm   uint64
	takeBackProposed bool
	lastHandover     *appliedHandover

	// waiting maps a proposal ID to the reply of the client who waits for
	// it on this node, until its entry applies (or leadership is lost).
	waiting map[uint64]func(Response, error)

	// The evaluation chain (evaluate.go), while leading: the proposals in
	// flight, in order, with their effects, and the tip (the ID the next
	// entry is evaluated after); overlay holds their writes over the
	// applied state (nil: none yet), opened by openOverlay.
	inflight    []inflight
	tip         uint64
	overlay     overlay
	openOverlay func() overlay
}

// coreConfig is what a core needs of the store's Options.
type coreConfig struct {
	electionTicks int
	tickInterval  time.Duration
	leaseDuration time.Duration
	disableLeases bool
}

func (o *Options) coreConfig() coreConfig {
	return coreConfig{electionTicks: o.ElectionTicks, tickInterval: o.TickInterval, leaseDuration: o.leaseDuration(), disableLeases: o.DisableLeases}
}

// raftConfig is every replica's Raft configuration: replica id over st,
// which has applied through applied. committedPerReady bounds the
// committed entries one Ready hands out (0: Raft's default).
func (o *Options) raftConfig(id uint64, st raft.Storage, applied, committedPerReady uint64, logger raft.Logger) *raft.Config {
	return &raft.Config{
		ID:                       id,
		ElectionTick:             o.ElectionTicks,
		HeartbeatTick:            o.HeartbeatTicks,
		Storage:                  st,
		Applied:                  applied,
		MaxSizePerMsg:            maxSizePerMsg,
		MaxInflightMsgs:          maxInflightMsgs,
		MaxInflightBytes:         maxInflightBytes,
		MaxCommittedSizePerReady: committedPerReady,
		CheckQuorum:              true,
		PreVote:                  true,
		ReadOnlyOption:           raft.ReadOnlySafe,
		Logger:                   logger,
		// A removed leader stops leading at once (it is destroyed next).
		StepDownOnRemoval: true,
	}
}

// moment is the time as the driver hands it to a core: tick counts the
// driver's ticks (heard, lastRead), mono is the monotonic clock (leases).
type moment struct {
	tick uint64
	mono time.Duration
}

// newReplicaCore starts a core on rn, a replica that has just started
// (opened on its stored state, or created): it opens its quiet window.
func newReplicaCore(id uint64, rn *raft.RawNode, cfg coreConfig, at moment, openOverlay func() overlay) *replicaCore {
	c := &replicaCore{id: id, rn: rn, cfg: cfg, openOverlay: openOverlay, waiting: map[uint64]func(Response, error){}}
	if hs := rn.BasicStatus().HardState; hs.Vote != 0 { // as the log recovered it
		c.votedTerm = hs.Term
	}
	c.startQuiet(at)
	return c
}

// admits is the first look at a message for this replica: a hand-over's
// TimeoutNow marks the election it starts, and a vote request of an
// ordinary election is dropped inside the quiet window (false: as if
// lost). The driver may still drop the message for reasons of its own
// (a snapshot that does not fit) before it steps it.
func (c *replicaCore) admits(m raftpb.Message, at moment) bool {
	if m.Type == raftpb.MsgTimeoutNow {
		c.handedOver = true // the election it starts is a hand-over
	}
	return !c.dropsVote(m, at)
}

// tick advances Raft's clock by one driver tick, or, for a replica that
// does not lead and whose round trip to a quorum of voters is long, by
// less (paced elections).
//
// Why: a candidate must hear its votes back before its election times
// out. A node whose links are slower than that (a round trip of 370 ms
// against a 200–400 ms randomized timeout) never wins, yet each of its
// elections costs the others: pre-vote grants that arrive a round after
// they were cast count toward its next round, its vote requests raise
// every voter's term and restart their election timers, and its
// rejections carry the raised term to a leader just elected. A range
// stayed leaderless for 1.8 s so (TestAvailability seed 11). A paced
// replica's election timer runs at base/(base + 2×quorumRTT), base the
// election timeout: its shortest timeout covers both rounds of a
// campaign with a base to spare, and it campaigns rarely enough that a
// healthy pair elects one of its own first. Its timer as a follower runs
// as slowly, so it also refuses votes for longer after hearing its
// leader: slower Raft ticks only lengthen the promise leases rest on
// (lease.go), never shorten it. Round trips up to a quarter of the base
// leave the timer alone: both rounds fit in half the shortest timeout.
func (c *replicaCore) tick() {
	base := time.Duration(c.cfg.electionTicks) * c.cfg.tickInterval
	if c.leading || c.quorumRTT <= base/4 || mutation.On(MutUnpacedElections) {
		c.electionCredit = 0
		c.rn.Tick()
		return
	}
	c.electionCredit += base
	if cost := base + 2*c.quorumRTT; c.electionCredit >= cost {
		c.electionCredit -= cost
		c.rn.Tick()
	}
}

// step hands an admitted message to Raft, noting whom it came from.
func (c *replicaCore) step(m raftpb.Message, at moment) {
	if c.heard == nil {
		c.heard = map[uint64]uint64{}
	}
	if m.Type == raftpb.MsgApp || m.Type == raftpb.MsgHeartbeat || m.Type == raftpb.MsgSnap {
		c.leaderHeard = at.tick // only leaders send these
	}
	c.heard[m.From] = at.tick
	if m.Type == raftpb.MsgProp {
		c.unpersisted = true // a follower's, forwarded: appended here if leading
	}
	_ = c.rn.Step(m) // Raft drops what does not apply
}

// startRead takes a linearizable read as leader. Under a valid lease it is
// served now when the commit index has applied (now), or waits for the
// commit index to apply; otherwise it waits for the next ReadIndex batch.
// ratesOK reports whether every voter's clock rate is within bounds (it
// is asked only when the rest of the lease holds).
func (c *replicaCore) startRead(rd *read, st raft.BasicStatus, applied uint64, at moment, ratesOK func() bool) (leased, now bool) {
	c.lastRead = at.tick + 1
	if c.leaseValid(st, at, ratesOK) {
		// Every write acknowledged so far is at or below the commit index
		// (lease.go): read there, now if it has applied.
		if st.Commit <= applied && c.writesSeen(rd) {
			return true, true
		}
		rd.readAt = st.Commit
		c.reads = append(c.reads, rd)
		return true, false
	}
	c.reads = append(c.reads, rd)
	c.unbatched++
	return false, false
}

// hasUnbatchedReads reports whether reads came in since the last
// ReadIndex batch was asked.
func (c *replicaCore) hasUnbatchedReads() bool { return c.unbatched > 0 }

// batchReads asks one ReadIndex round, with context batch, for every read
// that came in since the last one.
func (c *replicaCore) batchReads(batch uint64, at moment) {
	for _, rd := range c.reads {
		if rd.batch == 0 && rd.readAt == 0 {
			rd.batch = batch
		}
	}
	c.unbatched = 0
	c.askRound(batch, at)
}

// readIndexesAnswered gives each read of an answered batch its read index,
// and lets the round confirm the lease.
func (c *replicaCore) readIndexesAnswered(states []raft.ReadState) {
	for _, rs := range states {
		batch := binary.BigEndian.Uint64(rs.RequestCtx)
		for _, rd := range c.reads {
			if rd.batch == batch {
				rd.readAt = rs.Index
			}
		}
		c.roundAnswered(batch)
	}
}

// readsDue takes out the reads whose read index has applied, in the order
// they came.
func (c *replicaCore) readsDue(applied uint64) []*read {
	var due []*read
	kept := c.reads[:0]
	for _, rd := range c.reads {
		if rd.readAt == 0 || rd.readAt > applied || !c.writesSeen(rd) {
			kept = append(kept, rd)
			continue
		}
		due = append(due, rd)
	}
	c.reads = kept
	return due
}

// await keeps the reply of the client whose proposal id was proposed
// here, until its entry applies.
func (c *replicaCore) await(id uint64, reply func(Response, error)) { c.waiting[id] = reply }

// answer takes the reply waiting for entry id (nil: none waits here).
func (c *replicaCore) answer(id uint64) func(Response, error) {
	reply := c.waiting[id]
	delete(c.waiting, id)
	return reply
}

// abandon forgets what a replica that stopped leading promised: the
// clients waiting for their proposals (their writes may still commit
// under the new leader, so the answer is silence, and the client's
// timeout reports "may have happened"), the reads and lease rounds (their
// answers would no longer prove anything; the clients retry), and its
// steps in flight and its evaluation chain and overlay.
func (c *replicaCore) abandon() {
	clear(c.waiting)
	c.dropOverlay()
	clear(c.rounds)
	c.reads, c.unbatched = nil, 0
	c.confProposed = false
	c.splitKey = nil
	c.freezing = false
}

// refusal is why a leader's core turns a request away before evaluating
// it; the driver answers each with its error.
type refusal int

const (
	accepted         refusal = iota
	refuseFrozen             // frozen for a merge (or, a write, its freeze in flight): ask the range that holds the key now
	refuseNotLeader          // not the leader (the client tries the one it knows)
	refuseHandover           // handing leadership over: no new writes until it is done
	refuseCatchingUp         // a new leader that has not applied an entry of its term evaluates nothing yet
	refuseSplitting          // a write at or after the split in flight: retry once it applied
)

// admitsRequest is a request's first check, before anything else is done with
// it: a frozen range takes nothing but its freeze (asked again), only the
// leader takes requests, and a range whose freeze is in flight takes no
// more writes.
func (c *replicaCore) admitsRequest(op Op, st raft.BasicStatus) refusal {
	switch {
	case c.frozen && op != OpFreeze:
		return refuseFrozen
	case st.RaftState != raft.StateLeader:
		return refuseNotLeader
	case c.freezing && !op.isRead():
		return refuseFrozen
	}
	return accepted
}

// evaluates is a write's check at the leader before it is evaluated: not
// while handing leadership over, and not before the leader's state holds
// every earlier leader's writes (evaluate.go).
func (c *replicaCore) evaluates(st raft.BasicStatus) refusal {
	switch {
	case c.handoverTo != 0:
		return refuseHandover
	case !c.canEvaluate(st):
		return refuseCatchingUp
	}
	return accepted
}

// splitting reports whether a write to key must wait for the split in
// flight (at or after its split key).
func (c *replicaCore) splitting(key []byte) bool {
	return c.splitKey != nil && bytes.Compare(key, c.splitKey) >= 0 && !mutation.On(MutSplitDropsWrites)
}

// handOver starts handing leadership to voter to, until until: no new
// writes meanwhile.
func (c *replicaCore) handOver(to uint64, until time.Duration) {
	c.handoverTo, c.handoverUntil = to, until
}

// handoverEnded ends a hand-over (done, given up, or timed out).
func (c *replicaCore) handoverEnded() { c.handoverTo = 0 }

// propose and proposeConfChange hand Raft an entry, noting that it is not
// persisted yet (unpersisted). Every entry this replica proposes goes
// through them.
func (c *replicaCore) propose(data []byte) error {
	err := c.rn.Propose(data)
	c.unpersisted = c.unpersisted || err == nil
	return err
}

func (c *replicaCore) proposeConfChange(cc raftpb.ConfChangeI) error {
	err := c.rn.ProposeConfChange(cc)
	c.unpersisted = c.unpersisted || err == nil
	return err
}

// mayTransfer reports whether a hand-over to a voter whose log matches
// through match may ask Raft for the transfer now, last being the last
// index in the log: the voter holds the whole log, and nothing proposed
// since is waiting for a Ready. Raft sends TimeoutNow at once only to a
// voter that holds its whole log, its unpersisted entries included;
// otherwise it sends them first and gives the transfer up if no answer
// comes within an election timeout, less than one round trip over the slow
// links that make a leader hand its range over. The health check proposes
// the summaries' entry just before it first asks (handOver), to a voter
// that an idle range had caught up already: a Jepsen slow-leader fault
// kept a range on its slow leader for 3 s so (TestHandOverOverSlowLinks).
func (c *replicaCore) mayTransfer(match, last uint64) bool {
	return match == last && (!c.unpersisted || mutation.On(MutTransferUnpersisted))
}

// splitProposed notes the split in flight at key; splitApplied, that it
// applied (or was dropped).
func (c *replicaCore) splitProposed(key []byte) { c.splitKey = slices.Clone(key) }
func (c *replicaCore) splitApplied()            { c.splitKey = nil }

// freezeProposed notes the freeze in flight; freezeApplied, that a freeze
// applied (a no-op one too); setFrozen, whether the range is frozen now.
func (c *replicaCore) freezeProposed()       { c.freezing = true }
func (c *replicaCore) freezeApplied()        { c.freezing = false }
func (c *replicaCore) setFrozen(frozen bool) { c.frozen = frozen }

// chainFrom starts a chain after the last effects entry the range applied
// (the driver reads it from the engine as it opens an overlay).
func (c *replicaCore) chainFrom(lastApplied uint64) { c.tip = lastApplied }

// chain records a proposed entry as the tip of the chain.
func (c *replicaCore) chain(id uint64, writes []byte) {
	c.tip = id
	c.inflight = append(c.inflight, inflight{id: id, writes: writes})
}

// chainLost records a proposal that was evaluated but never proposed:
// the entries evaluated after it are chained after it (and rejected as
// they apply), and reads waiting for writes need not wait for it.
func (c *replicaCore) chainLost(id uint64, writes []byte) {
	c.tip = id
	c.inflight = append(c.inflight, inflight{id: id, writes: writes, lost: true})
}

// inChain reports whether entry id is one of this leader's proposals in
// flight.
func (c *replicaCore) inChain(id uint64) bool {
	return slices.ContainsFunc(c.inflight, func(f inflight) bool { return f.id == id })
}

// overlayStep is what the driver does with its overlay after an entry of
// the chain applied.
type overlayStep int

const (
	overlayKeep    overlayStep = iota
	overlayDrop                // everything applied: the engine has it all
	overlayRebuild             // grown past overlayRebuildBytes: rebuild it from the entries in flight
)

// lastInflight is the last write of the chain still in flight (0: none).
func (c *replicaCore) lastInflight() uint64 {
	if len(c.inflight) == 0 {
		return 0
	}
	return c.inflight[len(c.inflight)-1].id
}

// writesSeen reports whether rd may see the state now: every write up to
// the one it waits for (rd.after) applied, or was lost or dropped and
// never will.
func (c *replicaCore) writesSeen(rd *read) bool {
	if rd.after == 0 {
		return true
	}
	for _, f := range c.inflight {
		if !f.lost {
			return false
		}
		if f.id == rd.after {
			break
		}
	}
	return true
}

// chainApplied notes that entry id of range d applied: once the chain
// is all applied the overlay goes (the engine has it all), and one grown
// past overlayRebuildBytes is rebuilt from the entries in flight. It
// returns what it did with the overlay.
func (c *replicaCore) chainApplied(d Descriptor, id uint64) overlayStep {
	if len(c.inflight) == 0 || c.inflight[0].id != id {
		return overlayKeep
	}
	c.inflight = c.inflight[1:]
	switch {
	case len(c.inflight) == 0:
		c.dropOverlay()
		return overlayDrop
	case c.overlay != nil && c.overlay.bytes() > overlayRebuildBytes:
		c.rebuildOverlay(d)
		return overlayRebuild
	}
	return overlayKeep
}

// resetChain ends the chain as the overlay goes, and returns the
// effects to put back in a fresh one: with keep, the entries still in
// flight (their chain goes on); otherwise none (they will be rejected as
// they apply).
func (c *replicaCore) resetChain(keep bool) []inflight {
	if !keep || len(c.inflight) == 0 {
		c.inflight, c.tip = nil, 0
		return nil
	}
	c.tip = c.inflight[len(c.inflight)-1].id
	return c.inflight
}

// confChangeProposed notes a membership change in flight; confChangeApplied,
// that it applied.
func (c *replicaCore) confChangeProposed() { c.confProposed = true }
func (c *replicaCore) confChangeApplied()  { c.confProposed = false }

// readyPlan is one replica's Ready and what the core decided the driver
// must do with it.
type readyPlan struct {
	rd raft.Ready
	// mustSync: the Ready's snapshot, entries, term or vote must be
	// durable before anything that depends on them (a commit index alone
	// can be relearned after a crash: raft.MustSync).
	mustSync bool
	// hardState is the hard state to persist (empty: unchanged).
	hardState raftpb.HardState
	// early: the Ready's messages may leave before its write is durable.
	early bool
	// snapshots are the MsgSnap messages of rd.Messages (left there with
	// To zeroed): they go to a sender task that streams them.
	snapshots []raftpb.Message
	// granted: the Ready persists a vote for another replica in a term
	// the replica had not voted in.
	granted bool
}

// ready takes the replica's next Ready and plans it. The driver persists
// the plan, sends, applies the committed entries, notes the read states
// and the role, answers the reads due, and advances the RawNode.
//
// The sync is Raft's own judgement (Ready.MustSync: new entries, term or
// vote, against the last hard state it handed out) or a snapshot.
// Until 2026-12-03 the driver compared the Ready's hard state with the
// stored one instead; a Ready leaves its hard state empty when nothing in
// it changed, so every heartbeat and read round cost an fsync (found by
// the core transcripts: testdata/core).
func (c *replicaCore) ready() readyPlan {
	rd := c.rn.Ready()
	c.unpersisted = false // every entry proposed so far is in rd
	p := readyPlan{rd: rd, hardState: rd.HardState}
	p.mustSync = !raft.IsEmptySnap(rd.Snapshot) || rd.MustSync
	if mutation.On(MutForgetVote) && !raft.IsEmptyHardState(p.hardState) {
		p.hardState.Vote = 0
	}
	for i := range p.rd.Messages {
		m := &p.rd.Messages[i]
		if m.Type == raftpb.MsgVote && c.standing == m.Term {
			m.Context = nil // standAgainst: an ordinary election's request
		}
		if m.Type == raftpb.MsgSnap {
			p.snapshots = append(p.snapshots, *m)
			m.To = 0 // not sent with the others
		}
	}
	// A leader's own messages (appends, heartbeats) may leave before its
	// write is durable, as etcd's server does (Raft thesis §10.2.1): the
	// leader counts its own entries only in a later cycle, after this
	// write. Everything else (votes, acknowledgements) must wait.
	p.early = c.rn.BasicStatus().RaftState == raft.StateLeader || mutation.On(MutSendBeforePersist)
	hs := rd.HardState
	p.granted = hs.Vote != 0 && hs.Vote != c.id && hs.Term != c.votedTerm
	if hs.Vote != 0 {
		c.votedTerm = hs.Term
	}
	return p
}

// roleChange is how a Ready's soft state changed the replica's role.
type roleChange struct {
	// lost: it stopped leading; won: it became leader, handedOver through
	// a hand-over; follower: it is neither leader nor candidate.
	lost, won, handedOver, follower bool
}

// changeRole notes the soft state of a Ready the driver has carried out
// (after the committed entries applied and the read states were noted).
// A replica that does not lead abandons its reads and rounds.
func (c *replicaCore) changeRole(ss raft.SoftState, at moment) roleChange {
	var rc roleChange
	if ss.RaftState != raft.StateLeader {
		c.abandon()
		rc.lost = c.leading
		c.leading = false
	}
	if ss.RaftState != raft.StateLeader && ss.RaftState != raft.StateCandidate {
		c.handedOver = false
		rc.follower = true
	}
	if ss.RaftState == raft.StateLeader {
		c.leading, c.ledSince, rc.won = true, at.tick, true
		// Won through a hand-over: the driver allows no hand-over back at
		// once.
		rc.handedOver, c.handedOver = c.handedOver, false
	}
	return rc
}

// confChanged notes a configuration change the driver applied: a lease
// confirmed before it holds no more (lease.go).
func (c *replicaCore) confChanged() { c.confEpoch++ }

// appliedThrough notes the term of the last entry the driver applied.
func (c *replicaCore) appliedThrough(e raftpb.Entry) { c.appliedTerm = e.Term }
