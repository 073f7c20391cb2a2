package consensus

import (
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Health-aware leadership (issue 11: a leader whose links were 120–280 ms
// slow kept its quorum, so leadership never moved and the whole cluster
// crawled). Every node measures, and tells its peers:
//
//   - its round-trip time to each peer node: the driver pings every peer
//     every probeTicks; the peer's driver answers at once, echoing the
//     sender's monotonic clock reading, so no two clocks are compared for
//     it (the pong also carries the peer's own reading: clockrate.go
//     compares the clocks' rates with it);
//   - its own sync latency: how long its synced Raft writes take.
//
// Each ping and pong carries the sender's measurements, so every node knows
// everyone's. A leader then estimates, for itself and for each caught-up
// voter, how long a write would take to commit with that node leading:
// the quorum's slowest needed member, counting the leader's own sync and,
// for each other voter, the round trip to it plus its sync
// (commitEstimate). When the leader's estimate exceeds slowFactor times
// the best voter's plus slowMargin, it hands leadership to that voter
// (Raft's TimeoutNow transfer), as CockroachDB and TiKV move leases off
// slow stores. The hysteresis (twice, plus a margin) is what keeps two
// nodes from bouncing a range: both cannot be that much slower than the
// other. On top of it a node leaves a range it handed away or won through
// a hand-over alone for transferCooldown, so that even views of each
// other that disagree cannot move a range more than once a second. The
// cooldown is short on purpose: a node can win a range from the
// rebalancer (a hand-over too) and become slow a moment later, and for as
// long as the cooldown lasts the whole range crawls with it (a Jepsen
// slow-leader fault that began 3 s after such a win kept 0.40 of calm
// throughput under the 5 s cooldown this once was).
//
// Measurements are medians of the last few samples (a clock step or one
// slow fsync moves nothing) and expire after healthStale: a node that stops
// answering is not counted as close, and a leader does not hand its range
// to a node it has no fresh news of.
const (
	probeTicks       = 5 // 100 ms between pings
	healthCheckTicks = 5 // a leader weighs its ranges every 100 ms
	healthSamples    = 3
	healthStale      = time.Second
	transferCooldown = time.Second
	slowFactor       = 2
	slowMargin       = 20 * time.Millisecond
)

// healthPort carries pings and pongs between drivers.
const healthPort = "health"

// health is a node's view of latencies. Only the driver touches it.
type health struct {
	// rtt holds this node's recent round trips to each peer.
	rtt map[kernel.NodeID]*samples
	// sync holds this node's recent synced-write latencies.
	sync samples
	// reports are the peers' own measurements, as they last sent them.
	reports map[kernel.NodeID]healthReport
	// moved is when (monotonic clock) each range was last handed away from
	// here, or won here through a hand-over: no new hand-over within
	// transferCooldown of it.
	moved map[storage.RangeID]time.Duration
	// rates compares each peer's clock rate with this node's
	// (clockrate.go).
	rates map[kernel.NodeID]*rateTrack
	// offsets estimates each peer's clock offset from this node's
	// (clockoffset.go).
	offsets map[kernel.NodeID]offsetSample
}

// samples keeps the last healthSamples durations and when the last came.
type samples struct {
	d    []time.Duration
	last time.Duration
}

func (s *samples) add(d time.Duration, now time.Duration) {
	if len(s.d) == healthSamples {
		copy(s.d, s.d[1:])
		s.d = s.d[:healthSamples-1]
	}
	s.d = append(s.d, d)
	s.last = now
}

// median is the samples' median, and false if there are none fresh.
func (s *samples) median(now time.Duration) (time.Duration, bool) {
	if s == nil || len(s.d) == 0 || (now-s.last) > healthStale {
		return 0, false
	}
	sorted := slices.Clone(s.d)
	slices.Sort(sorted)
	return sorted[len(sorted)/2], true
}

// healthReport is what a node says of itself in a ping or pong.
type healthReport struct {
	at   time.Duration // when this node received it (its monotonic clock)
	sync time.Duration
	rtt  map[kernel.NodeID]time.Duration // fresh round trips only
	// mono is the sender's monotonic clock as it sent the message (0: an
	// older binary's message, without it).
	mono time.Duration
	// clock and wall are the sender's hybrid clock's physical part and
	// its wall clock as it sent the message, in nanoseconds since the
	// epoch (0: none; clockoffset.go). fenced says its clock is fenced,
	// draining that it is about to stop (drain.go): no leadership is
	// handed to it either way.
	clock, wall      int64
	fenced, draining bool
}

func newHealth() *health {
	return &health{rtt: map[kernel.NodeID]*samples{}, reports: map[kernel.NodeID]healthReport{}, moved: map[storage.RangeID]time.Duration{},
		rates: map[kernel.NodeID]*rateTrack{}, offsets: map[kernel.NodeID]offsetSample{}}
}

// report is this node's own measurements, as of now.
func (h *health) report(now time.Duration) healthReport {
	r := healthReport{at: now, rtt: map[kernel.NodeID]time.Duration{}}
	r.sync, _ = h.sync.median(now)
	for id, s := range h.rtt {
		if d, ok := s.median(now); ok {
			r.rtt[id] = d
		}
	}
	return r
}

// Wire format: kind(1) sentAt(8, the pinger's monotonic clock in ns)
// sync(uvarint µs) count(uvarint) then count × (node uvarint, rtt uvarint
// µs), nodes in increasing order, then the sender's monotonic clock
// (uvarint ns; absent from an older binary's messages, which this one
// reads as 0, as an older one ignores it).
const (
	healthPing byte = 1
	healthPong byte = 2
)

func encodeHealth(kind byte, sentAt int64, r healthReport) []byte {
	b := []byte{kind}
	b = binary.BigEndian.AppendUint64(b, uint64(sentAt))
	b = binary.AppendUvarint(b, uint64(r.sync.Microseconds()))
	ids := make([]kernel.NodeID, 0, len(r.rtt))
	for id := range r.rtt {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(id))
		b = binary.AppendUvarint(b, uint64(r.rtt[id].Microseconds()))
	}
	b = binary.AppendUvarint(b, uint64(max(r.mono, 0)))
	b = binary.AppendUvarint(b, uint64(max(r.clock, 0)))
	b = binary.AppendUvarint(b, uint64(max(r.wall, 0)))
	// One word of flags: bit 0 fenced, bit 1 draining. A binary from
	// before draining was reported reads the word as fenced only when it
	// is 1, so a draining node looks unfenced to it, as it is.
	flags := uint64(0)
	if r.fenced {
		flags |= healthFenced
	}
	if r.draining {
		flags |= healthDraining
	}
	return binary.AppendUvarint(b, flags)
}

// The flags of a health report.
const (
	healthFenced   = 1 << 0
	healthDraining = 1 << 1
)

// clockReadings is what a ping or pong says of this node's clocks: its
// hybrid clock's physical part and its wall clock, in nanoseconds since
// the epoch (0, 0: no clock to check).
func (s *Store) clockReadings() (clock, wall int64) {
	if s.opts.Clock == nil {
		return 0, 0
	}
	return s.opts.Clock.Physical().UnixNano(), s.rt.Now().UnixNano()
}

func decodeHealth(b []byte) (kind byte, sentAt int64, r healthReport, err error) {
	if len(b) < 9 {
		return 0, 0, r, errMalformed
	}
	kind, sentAt = b[0], int64(binary.BigEndian.Uint64(b[1:9]))
	b = b[9:]
	next := func() uint64 {
		v, w := binary.Uvarint(b)
		if w <= 0 {
			err = errMalformed
			return 0
		}
		b = b[w:]
		return v
	}
	r.sync = time.Duration(next()) * time.Microsecond
	n := next()
	if err != nil || n > uint64(len(b)) {
		return 0, 0, r, errMalformed
	}
	r.rtt = make(map[kernel.NodeID]time.Duration, n)
	for range n {
		id, d := next(), next()
		if err != nil {
			return 0, 0, r, err
		}
		r.rtt[kernel.NodeID(id)] = time.Duration(d) * time.Microsecond
	}
	if len(b) > 0 {
		if r.mono = time.Duration(next()); err != nil {
			return 0, 0, r, err
		}
	}
	if len(b) > 0 {
		if r.clock, r.wall = int64(next()), int64(next()); err != nil {
			return 0, 0, r, err
		}
	}
	if len(b) > 0 {
		flags := next()
		if err != nil {
			return 0, 0, r, err
		}
		r.fenced, r.draining = flags&healthFenced != 0, flags&healthDraining != 0
	}
	return kind, sentAt, r, nil
}

// peerNodes are the nodes holding a replica of any range here, this one
// excepted, in order: the nodes worth measuring. A node that holds no
// replica shared with another node (one that joined and has none yet, or
// had all moved away) measures the nodes its router places the ranges
// on instead: it still coordinates transactions and hands out their
// timestamps, so its clock must be checked as much as a replica's
// (before, it had no peer and so was never fenced, whatever its clock).
func (s *Store) peerNodes() []kernel.NodeID {
	var out []kernel.NodeID
	add := func(n kernel.NodeID) {
		if n != s.rt.NodeID() && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, id := range s.ids {
		for _, m := range members(s.replicas[id].log.ConfState()) {
			add(nodeOf(m))
		}
	}
	if len(out) == 0 && s.opts.Router != nil {
		for _, d := range s.opts.Router.Ranges() {
			for _, n := range d.Replicas {
				add(n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// probe pings every peer node (on the driver, every probeTicks).
func (s *Store) probe() {
	now := s.rt.Monotonic()
	r := s.health.report(now)
	r.mono, r.fenced, r.draining = now, s.offsetFenced.Load(), s.draining
	r.clock, r.wall = s.clockReadings()
	msg := encodeHealth(healthPing, int64(r.mono), r)
	s.publishFenced() // measurements go stale too
	s.checkOffset()
	peers := s.peerNodes()
	s.heard.pinging(peers, now)
	for _, n := range peers {
		s.rt.Net().Send(n, healthPort, msg)
	}
}

// onHealth takes a ping (answered at once) or a pong from node from.
func (s *Store) onHealth(from kernel.NodeID, b []byte) {
	kind, sentAt, r, err := decodeHealth(b)
	if err != nil {
		return
	}
	now := s.rt.Monotonic()
	r.at = now
	s.health.reports[from] = r
	s.heard.note(from, now)
	switch kind {
	case healthPing:
		own := s.health.report(now)
		own.mono, own.fenced, own.draining = now, s.offsetFenced.Load(), s.draining
		own.clock, own.wall = s.clockReadings()
		s.rt.Net().Send(from, healthPort, encodeHealth(healthPong, sentAt, own))
	case healthPong:
		mono := now
		rtt := mono - time.Duration(sentAt)
		if rtt < 0 || rtt > healthStale {
			return // an older binary's wall-clock reading, or a pong too late to mean anything
		}
		if r.mono != 0 {
			s.noteRate(from, time.Duration(sentAt), r.mono, mono)
		}
		if r.clock != 0 && s.opts.Clock != nil {
			s.noteOffset(from, r, rtt)
		}
		sm := s.health.rtt[from]
		if sm == nil {
			sm = &samples{}
			s.health.rtt[from] = sm
		}
		sm.add(rtt, now)
	}
}

// heardFrom is what Silence answers from: when (this node's monotonic
// clock) each peer node was last heard from on the health port, and
// since when this node has been pinging it. Tasks off the driver read
// it: txn's machine asks while it evaluates a push, and a leaseholder
// serves that query beside the driver.
type heardFrom struct {
	mu sync.Mutex
	at map[kernel.NodeID]time.Duration
	// probed holds the nodes the last probe pinged, each with when it
	// joined them (a live one answers every ping).
	probed map[kernel.NodeID]time.Duration
}

func (h *heardFrom) note(node kernel.NodeID, now time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.at == nil {
		h.at = map[kernel.NodeID]time.Duration{}
	}
	h.at[node] = now
}

// pinging notes that the probe at now pinged nodes.
func (h *heardFrom) pinging(nodes []kernel.NodeID, now time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := make(map[kernel.NodeID]time.Duration, len(nodes))
	for _, n := range nodes {
		since, ok := h.probed[n]
		if !ok {
			since = now
		}
		next[n] = since
	}
	h.probed = next
}

// Silence is how long this node has heard nothing from node on the
// health port, and false if it cannot tell: it pings node only while
// they share a range (every probeTicks, 100 ms; a live node answers
// each ping), so it claims nothing of a node it does not ping (a client
// node, a node whose ranges all moved away) or itself, and counts a
// node's silence only from when it began pinging it. A paused, crashed
// or cut-off node falls silent; a slow one does not (its answers come
// late, but they come). txn aborts a silent node's pending transactions
// without waiting for their heartbeats to expire
// (txn.Options.CoordinatorSilence).
func (s *Store) Silence(node kernel.NodeID) (time.Duration, bool) {
	s.heard.mu.Lock()
	defer s.heard.mu.Unlock()
	since, ok := s.heard.probed[node]
	if !ok {
		return 0, false
	}
	return s.rt.Monotonic() - max(since, s.heard.at[node]), true
}

// noteQuorumRTTs gives each replica here its round trip to the nearest
// quorum of its range's voters, which paces its election timer
// (replicaCore.tick): the quorum-th shortest fresh round trip from this
// node to the other voters (this node counts itself), or 0 when too few
// are fresh to tell. Runs every healthCheckTicks.
func (s *Store) noteQuorumRTTs() {
	self := s.rt.NodeID()
	rtts := s.health.report(s.rt.Monotonic()).rtt
	for _, id := range s.ids {
		r := s.replicas[id]
		voters := r.log.ConfState().Voters
		var others []time.Duration
		for _, v := range voters {
			if rtt, ok := rtts[nodeOf(v)]; ok && nodeOf(v) != self {
				others = append(others, rtt)
			}
		}
		need := len(voters) / 2 // a quorum, less this node
		r.quorumRTT = 0
		if need > 0 && len(others) >= need {
			slices.Sort(others)
			r.quorumRTT = others[need-1]
		}
	}
}

// synced records how long a synced Raft write took.
func (s *Store) synced(d time.Duration) {
	s.health.sync.add(d, s.rt.Monotonic())
}

// commitEstimate is how long a write to a range with these voters would
// take to commit with leader leading, from what this node knows: the
// leader's own sync, and the quorum-th fastest of (round trip to a voter +
// its sync) over the other voters; false when it cannot tell (no fresh
// news of the leader, or too few voters reachable).
func (h *health) commitEstimate(self kernel.NodeID, leader kernel.NodeID, voters []kernel.NodeID, now time.Duration) (time.Duration, bool) {
	view, ok := h.reportOf(self, leader, now)
	if !ok {
		return 0, false
	}
	var others []time.Duration
	for _, v := range voters {
		if v == leader {
			continue
		}
		rtt, ok := view.rtt[v]
		if !ok {
			continue // unreachable: not part of any quorum we can count on
		}
		var peerSync time.Duration
		if r, ok := h.reportOf(self, v, now); ok {
			peerSync = r.sync
		}
		others = append(others, rtt+peerSync)
	}
	need := len(voters)/2 + 1 - 1 // the leader counts itself
	if need == 0 {
		return view.sync, true
	}
	if len(others) < need {
		return 0, false
	}
	slices.Sort(others)
	return max(view.sync, others[need-1]), true
}

// reportOf is node's measurements: this node's own, or the last report
// from it if fresh.
func (h *health) reportOf(self, node kernel.NodeID, now time.Duration) (healthReport, bool) {
	if node == self {
		return h.report(now), true
	}
	r, ok := h.reports[node]
	if !ok || (now-r.at) > healthStale {
		return healthReport{}, false
	}
	return r, true
}

// checkHealth runs on the driver every healthCheckTicks: each range led
// here hands its leadership to a caught-up voter whose estimated commit
// latency is much lower than this node's.
func (s *Store) checkHealth() {
	now := s.rt.Monotonic()
	self := s.rt.NodeID()
	slow := map[storage.RangeID][]kernel.NodeID{}
	defer func() { s.slowLeaders.Store(&slow) }()
	for _, id := range s.ids {
		r := s.replicas[id]
		if !r.leading || mutation.On(MutNoHealthTransfer) {
			continue
		}
		s.noteSlowVoters(r, slow, now)
		if at, ok := s.health.moved[id]; ok && (now-at) < transferCooldown {
			continue
		}
		st := r.rn.Status()
		if st.LeadTransferee != raft.None || r.handoverTo != 0 {
			continue // a hand-over under way (progressHandovers)
		}
		cs := r.log.ConfState()
		voters := make([]kernel.NodeID, 0, len(cs.Voters))
		for _, v := range cs.Voters {
			voters = append(voters, nodeOf(v))
		}
		mine, ok := s.health.commitEstimate(self, self, voters, now)
		if !ok {
			continue
		}
		// A voter that is replicating normally may take over: Raft's
		// transfer brings it up to date first. (Requiring its whole log
		// would rule out every voter behind a slow leader, whose
		// followers always lag by the appends in flight.)
		var best uint64
		var bestEst time.Duration
		for _, v := range cs.Voters {
			// Heard from within an election timeout (Raft's RecentActive
			// would not do: CheckQuorum clears it every election timeout,
			// on a tick that can coincide with this check's).
			heard, ok := r.heard[v]
			if pr, inTracker := st.Progress[v]; v == r.id || !inTracker || pr.State != tracker.StateReplicate || !ok || s.ticks-heard > uint64(s.opts.ElectionTicks) {
				continue
			}
			if s.refusesLeadership(nodeOf(v), now) {
				continue
			}
			est, ok := s.health.commitEstimate(self, nodeOf(v), voters, now)
			if ok && (best == 0 || est < bestEst) {
				best, bestEst = v, est
			}
		}
		if best == 0 || mine <= slowFactor*bestEst+slowMargin {
			continue
		}
		s.rt.Logger().Warn("consensus: handing leadership to a faster replica",
			"range", uint64(id), "to", uint64(nodeOf(best)), "estimate_here", mine, "estimate_there", bestEst)
		s.health.moved[id] = now
		s.handOver(r, best)
	}
	s.progressHandovers()
}

// noteSlowVoters records in slow, for range r led here, the voters that
// would lead it so much slower than the best of them (slowFactor,
// slowMargin) that the health check would hand the range away from them,
// and those whose clocks are fenced (which hand every range away): a
// rebalancer must not hand it to them (SlowLeader), or the two would
// bounce it.
func (s *Store) noteSlowVoters(r *replica, slow map[storage.RangeID][]kernel.NodeID, now time.Duration) {
	self := s.rt.NodeID()
	cs := r.log.ConfState()
	voters := make([]kernel.NodeID, 0, len(cs.Voters))
	for _, v := range cs.Voters {
		voters = append(voters, nodeOf(v))
	}
	est := map[kernel.NodeID]time.Duration{}
	var best time.Duration
	for _, n := range voters {
		if e, ok := s.health.commitEstimate(self, n, voters, now); ok {
			est[n] = e
			if best == 0 || e < best {
				best = e
			}
		}
	}
	for _, n := range voters {
		if e, ok := est[n]; (ok && e > slowFactor*best+slowMargin) || s.refusesLeadership(n, now) {
			slow[r.desc.ID] = append(slow[r.desc.ID], n)
		}
	}
}

// refusesLeadership reports whether no leadership may be handed to node,
// as this node knows (its own state, or the last fresh report from it):
// its clock is fenced (clockoffset.go), or it is draining, about to stop
// (drain.go). Either would hand the range straight back: two nodes of a
// cluster stopped at once handed their ranges to each other some 70
// times each in the 3 s their drains were allowed (a Jepsen run's end).
func (s *Store) refusesLeadership(node kernel.NodeID, now time.Duration) bool {
	if node == s.rt.NodeID() {
		return s.offsetFenced.Load() || s.draining
	}
	r, ok := s.health.reportOf(s.rt.NodeID(), node, now)
	return ok && (r.fenced || r.draining)
}

// SlowLeader reports whether node, as leader of range id (led here),
// would commit so much slower than the range's best voter that the health
// check would hand the range away from it: a rebalancer hands it
// elsewhere. False when this node does not lead the range or knows too
// little.
func (s *Store) SlowLeader(id storage.RangeID, node kernel.NodeID) bool {
	p := s.slowLeaders.Load()
	return p != nil && slices.Contains((*p)[id], node)
}

// handoverTimeout bounds how long a leader refuses writes while it waits
// for the replica it hands leadership to to catch up.
const handoverTimeout = 2 * time.Second

// progressHandovers runs on every tick. A leader handing its range over
// refuses new writes (serve) until the chosen voter has its whole log,
// then lets Raft's transfer send it TimeoutNow at once. Raft's own transfer
// cannot wait that long: it gives up after an election timeout (200 ms),
// less than one round trip over the slow links that caused the hand-over.
func (s *Store) progressHandovers() {
	now := s.rt.Monotonic()
	for _, id := range s.ids {
		r := s.replicas[id]
		if r.handoverTo == 0 {
			continue
		}
		last, _ := r.log.LastIndex()
		pr, ok := r.rn.Status().Progress[r.handoverTo]
		// Each end is logged with what it waited for: a slow leader that
		// kept its range through a Jepsen fault left only the hand-over's
		// start in its log ("Next steps" 0 in docs/consensus.md).
		began := r.handoverUntil - handoverTimeout
		switch {
		case !r.leading:
			s.rt.Logger().Info("consensus: hand-over of leadership ended: no longer leading",
				"range", uint64(id), "to", uint64(nodeOf(r.handoverTo)), "after", now-began)
			r.handoverEnded()
		case now > r.handoverUntil:
			s.rt.Logger().Warn("consensus: hand-over of leadership timed out: the replica did not catch up",
				"range", uint64(id), "to", uint64(nodeOf(r.handoverTo)), "after", now-began, "match", pr.Match, "last", last)
			r.handoverEnded()
		case ok && r.mayTransfer(pr.Match, last):
			s.rt.Logger().Info("consensus: hand-over of leadership: the replica caught up, TimeoutNow sent",
				"range", uint64(id), "to", uint64(nodeOf(r.handoverTo)), "after", now-began)
			r.transferLeader(r.handoverTo) // its summaries went first (handOver)
			r.handoverEnded()
		}
	}
}
