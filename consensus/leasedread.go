package consensus

import (
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/storage"
)

// Leased reads on the caller's task (issue 13).
//
// A read that reaches the driver waits for it twice: the RPC task hands it
// to the driver, the driver serves it between Ready cycles and hands the
// reply back. Under load the driver is the one task every read and write of
// the node queues for. A read of a range this node holds the lease of needs
// none of that: the lease says no other node can have acknowledged a write
// the local state lacks, so the client (on the leaseholder's own node)
// reads the engine itself.
//
// The driver publishes, per range it leads, a leaseView at the end of every
// cycle in which the lease is valid (startRead's conditions) and Raft
// handed out every entry committed when the cycle began: the range's
// descriptor, the term and the monotonic time the lease runs out. Entries
// that committed during the cycle (a single voter's own append, a
// follower's acknowledgement that completed a quorum) may still wait to
// apply: they were acknowledged to no one (only this leader acknowledges
// its writes, as it applies them; canEvaluate says every earlier term's
// entry has applied), and no follower knows they committed until the next
// cycle's messages, which leave after that cycle's withdrawal below. So a
// read under the view that misses them is linearized before them. Asking
// every committed entry to have applied, as the driver's own reads do,
// withdrew the view at the end of nearly every cycle under a steady write
// load, and reads queued for the driver behind the writes (measured in
// docs/performance.md, next step 7). A reader uses a view only before that
// time, only while no peer is fenced for its clock rate (else the driver
// decides, as it checks the range's voters), and only for keys inside the
// descriptor. The driver withdraws a view before the cycle whose messages
// could let another node serve the range before the view runs out: when
// the Ready commits a split, a merge, a freeze or a membership change (the
// right-hand side, or the new configuration, may elect a leader elsewhere
// as soon as its replicas apply it), when the leader hands leadership over
// (the transferee's election ignores leases), or when its role changes;
// and when the replica is detached. A read that loaded a view before it
// was withdrawn is linearized at that load: the engine then held every
// acknowledged write, and it only ever holds committed ones.
//
// Not served here: queries of keyspaces whose queries must see the writes
// in flight (Keyspace.QueriesSeeWrites: the driver makes them wait), and
// every 64th read of a range when load-based splitting is on (the driver's
// path samples their keys; the others count as load all the same).

// leaseView is a range's lease as its leaseholder published it.
type leaseView struct {
	desc   Descriptor // the range, as the driver had it
	served Descriptor // describe(r): returned so that clients learn it
	term   uint64
	start  time.Duration // the lease's start (monotonic)
	expiry time.Duration // the view is valid while the monotonic clock reads less
	epoch  uint64
	// reads counts the reads served under the view's range since the
	// driver last looked (lease renewal, load).
	reads *atomic.Int64
}

// publishLeases refreshes every replica's view at the end of a cycle.
func (s *Store) publishLeases() {
	if s.opts.DisableLeases {
		return
	}
	at := s.moment()
	for _, id := range s.ids {
		r := s.replicas[id]
		s.refreshView(r, at)
	}
}

// refreshView publishes r's view if r may serve leased reads at once
// (startRead's conditions, less writesSeen, which is per read), and
// withdraws it otherwise.
func (s *Store) refreshView(r *replica, at moment) {
	if mutation.On(MutLeaseViewKept) && r.view.Load() != nil {
		return
	}
	st := r.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || r.frozen || r.desc.Empty() ||
		!r.leaseValid(st, at, func() bool { return s.votersRateOK(r) }) || r.pagedOut() {
		r.view.Store(nil)
		return
	}
	expiry := r.lease.start + r.cfg.leaseDuration
	if mutation.On(MutLeaseNeverExpires) {
		expiry = 1<<63 - 1
	}
	if v := r.view.Load(); v != nil && v.term == st.Term && v.start == r.lease.start && v.epoch == r.lease.epoch &&
		v.desc.Generation == r.desc.Generation && v.expiry == expiry {
		return
	}
	r.view.Store(&leaseView{desc: r.desc, served: s.describe(r), term: st.Term, start: r.lease.start, expiry: expiry,
		epoch: r.lease.epoch, reads: &r.fastReads})
}

// withdrawViews withdraws, before a cycle's messages leave, the view of
// every replica whose Ready could let another node serve its range. A
// Ready that hands out only part of what is committed (Raft pages
// committed entries, MaxCommittedSizePerReady) withdraws it too: the
// messages carry the whole commit index, and an entry past the page may
// be a split or a membership change the followers apply at once, electing
// a leader of the right-hand range, or of the new configuration,
// elsewhere (found by a review, 2026-12-06: docs/performance.md, next
// step 7).
func (s *Store) withdrawViews(r *replica, rd raft.Ready) {
	st := r.rn.BasicStatus()
	r.unhanded = st.Commit > handedOut(r, rd)
	if r.view.Load() == nil || mutation.On(MutLeaseViewKept) {
		return
	}
	if rd.SoftState != nil || st.LeadTransferee != raft.None || structural(rd.CommittedEntries) || r.pagedOut() {
		r.view.Store(nil)
	}
}

// pagedOut reports whether r's last Ready left committed entries
// unhanded, so that no view may stand (planted: paged-view-kept).
func (r *replica) pagedOut() bool { return r.unhanded && !mutation.On(MutPagedViewKept) }

// handedOut is the last index r will have applied once rd's committed
// entries are.
func handedOut(r *replica, rd raft.Ready) uint64 {
	if n := len(rd.CommittedEntries); n > 0 {
		return rd.CommittedEntries[n-1].Index
	}
	return r.log.Applied()
}

// structural reports whether ents hold a split, merge, freeze or
// membership change.
func structural(ents []raftpb.Entry) bool {
	for _, e := range ents {
		if e.Type != raftpb.EntryNormal {
			return true
		}
		if len(e.Data) > 0 && changesRange(e.Data[0]) {
			return true
		}
	}
	return false
}

// noteFastReads folds the reads served off the driver into each range's
// load and its lease renewal (a range read lately keeps its lease fresh).
func (s *Store) noteFastReads() {
	for _, id := range s.ids {
		r := s.replicas[id]
		if n := r.fastReads.Swap(0); n > 0 {
			r.lastRead = s.ticks + 1
			r.load.count += int(n)
			if s.opts.SplitQPS > 0 {
				r.warm = true
			}
		}
	}
}

// leasedRead serves req on the caller's task if this node holds a
// published lease of the range holding req's key; ok is false when the
// driver must serve it.
//
// d is the range the client's cache routes the key to.
func (s *Store) leasedRead(req Request, d Descriptor) (resp Response, ok bool) {
	if req.Op != OpGet && req.Op != OpQuery && req.Op != OpScan {
		return Response{}, false
	}
	views := s.views.Load()
	if views == nil {
		return Response{}, false
	}
	p := (*views)[d.ID]
	if p == nil {
		return Response{}, false
	}
	v := p.Load()
	if v == nil || !v.desc.Contains(req.Key) || s.rt.Monotonic() >= v.expiry || s.fencedPeers.Load() != 0 || s.offsetFenced.Load() {
		return Response{}, false
	}
	if req.Op == OpQuery {
		ks, ok := s.keyspaceOf(req.Key)
		if !ok || ks.QueriesSeeWrites {
			return Response{}, false
		}
	}
	if n := v.reads.Add(1); s.opts.SplitQPS > 0 && n%64 == 0 {
		return Response{}, false // sampled by the driver's path
	}
	if s.opts.LeasedRead != nil {
		s.opts.LeasedRead(v.desc.ID, v.term)
	}
	var meta CommandMeta
	var rd stateReader = s.eng
	if req.Op == OpQuery {
		meta = CommandMeta{NowMillis: s.wall().UnixMilli(), Rand: s.rt.Rand().Uint64(), Term: v.term}
		// A query may read several records: one point in time for all,
		// as the driver's reads have (nothing applies while they run).
		view := s.eng.NewView()
		defer view.Close()
		rd = view
	}
	s.readFrom(rd, v.desc, req, meta, func(r Response, err error) {
		// A query that would wait for a write is the driver's to park
		// (park.go): it serves it again.
		resp, ok = r, err == nil && r.park == nil
	})
	resp.Range = v.served
	if ok {
		s.offDriverReads.Add(1)
	}
	return resp, ok
}

// publishViews makes the replicas' views findable by range, when the set
// of replicas changed.
func (s *Store) publishViews() {
	m := make(map[storage.RangeID]*atomic.Pointer[leaseView], len(s.ids))
	for _, id := range s.ids {
		m[id] = &s.replicas[id].view
	}
	s.views.Store(&m)
}
