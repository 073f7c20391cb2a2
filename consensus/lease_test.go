package consensus

import (
	"bytes"
	"context"
	"io"
	"log"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/sim"
	"github.com/orbitkernel/orbit/storage"
)

// leaseWorld is three simulated nodes holding one range, with a reader on
// every node and the leased reads and elections recorded in virtual time.
type leaseWorld struct {
	sim     *sim.Sim
	stores  map[kernel.NodeID]*Store
	leased  map[kernel.NodeID]time.Duration // the latest leased read, per node
	elected map[uint64]time.Duration        // when each term got its leader
	reads   map[kernel.NodeID]int           // reads answered, per node
}

// openNodeEngine opens a simulated node's engine on its disk, closed
// when the node stops.
func openNodeEngine(rt kernel.Runtime) *storage.Engine {
	eng, err := storage.Open(rt.FS(), "/data", storage.Options{Deterministic: true, Logger: rt.Logger(), OnBackgroundFatal: func(error) { select {} }})
	if err != nil {
		kernel.Crash("open storage: %v", err)
	}
	rt.Go("engine", func(ctx context.Context) {
		defer eng.Close()
		kernel.NewFuture[struct{}](rt, "node lifetime").Wait(ctx)
	})
	return eng
}

// newThreeNodes is a simulator of three nodes, 1 ms apart, each booted
// by boot with its engine open, sharing one range over all three.
func newThreeNodes(t *testing.T, seed uint64, boot func(rt kernel.Runtime, eng *storage.Engine, layout Layout)) *sim.Sim {
	s := sim.New(seed)
	t.Cleanup(s.Close)
	s.Net().LatencyMin, s.Net().LatencyMean = time.Millisecond, 0
	nodes := []kernel.NodeID{1, 2, 3}
	layout, err := NewLayout(nil, nodes, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range nodes {
		s.AddNode(id, func(rt kernel.Runtime) { boot(rt, openNodeEngine(rt), layout) })
	}
	return s
}

func newLeaseWorld(t *testing.T, seed uint64) *leaseWorld {
	w := &leaseWorld{stores: map[kernel.NodeID]*Store{}, leased: map[kernel.NodeID]time.Duration{},
		elected: map[uint64]time.Duration{}, reads: map[kernel.NodeID]int{}}
	w.sim = newThreeNodes(t, seed, func(rt kernel.Runtime, eng *storage.Engine, layout Layout) {
		router := NewRouter(rt, layout)
		st, err := Open(rt, eng, layout, Options{
			Router:       router,
			LeasedRead:   func(storage.RangeID, uint64) { w.leased[rt.NodeID()] = w.sim.Elapsed() },
			BecameLeader: func(_ storage.RangeID, term uint64) { w.elected[term] = w.sim.Elapsed() },
		})
		if err != nil {
			kernel.Crash("open consensus: %v", err)
		}
		w.stores[rt.NodeID()] = st
		// A reader on the node: a read every millisecond, through the
		// node's own router (so it reaches a leader here even when the
		// node is cut off).
		c := NewClient(router, "reader")
		rt.Go("reader", func(ctx context.Context) {
			for ctx.Err() == nil {
				rctx, cancel := rt.WithTimeout(ctx, 50*time.Millisecond)
				if _, _, err := c.Get(rctx, []byte("k")); err == nil {
					w.reads[rt.NodeID()]++
				}
				cancel()
				_ = rt.Sleep(ctx, time.Millisecond)
			}
		})
	})
	return w
}

// leader returns the node leading the range, or 0.
func (w *leaseWorld) leader() kernel.NodeID { return leaderOfRangeOne(w.sim, w.stores) }

// leaderOfRangeOne is the up node whose store leads range 1 (0: none).
func leaderOfRangeOne(s *sim.Sim, stores map[kernel.NodeID]*Store) kernel.NodeID {
	for id, st := range stores {
		if s.Node(id).Up() && st.replicas[1] != nil && st.replicas[1].rn.BasicStatus().RaftState == raft.StateLeader {
			return id
		}
	}
	return 0
}

// TestLeaseEndsBeforeARivalLeads cuts a leaseholder off under the worst
// drift the lease allows for (its clock 5% slow, its followers' 5% fast):
// it keeps serving reads alone for a while, and stops before the others
// elect a leader.
func TestLeaseEndsBeforeARivalLeads(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		w := newLeaseWorld(t, seed)
		if err := w.sim.RunUntil(func() bool { return w.leader() != 0 && len(w.leased) > 0 }, 5*time.Second); err != nil {
			t.Fatalf("seed %d: no leaseholder: %v", seed, err)
		}
		old := w.leader()
		oldTerm := w.stores[old].replicas[1].rn.BasicStatus().Term
		for id := range w.stores {
			rate := 1 + DefaultMaxClockDrift
			if id == old {
				rate = 1 - DefaultMaxClockDrift
			}
			w.sim.Node(id).SetClockRate(rate)
		}
		if err := w.sim.RunFor(100 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		cut := w.sim.Elapsed()
		w.sim.Net().Isolate(old)
		if err := w.sim.RunFor(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		var rival time.Duration
		ok := false
		for term, at := range w.elected {
			if term > oldTerm && (!ok || at < rival) {
				rival, ok = at, true
			}
		}
		if !ok {
			t.Fatalf("seed %d: no leader after n%d was cut off (elected %v)", seed, old, w.elected)
		}
		last := w.leased[old]
		if last >= rival {
			t.Fatalf("seed %d: n%d served a leased read at %v, after a rival won at %v", seed, old, last, rival)
		}
		if last-cut < 50*time.Millisecond {
			t.Fatalf("seed %d: n%d served leased reads only %v past the cut: the lease did nothing", seed, old, last-cut)
		}
		t.Logf("seed %d: cut at %v; n%d read alone until %v; rival leader at %v", seed, cut, old, last, rival)
	}
}

// TestRestartedReplicaDropsVotes: a replica that just started may have
// promised a leader its lease before it stopped, so it ignores ordinary
// vote requests for an election timeout; a hand-over's requests pass.
func TestRestartedReplicaDropsVotes(t *testing.T) {
	w := newLeaseWorld(t, 1)
	if err := w.sim.RunUntil(func() bool { return w.leader() != 0 }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	n := w.leader()%3 + 1 // a follower
	w.sim.Node(n).Crash()
	old := w.stores[n]
	w.sim.Node(n).Restart()
	if err := w.sim.RunUntil(func() bool { return w.stores[n] != old && w.stores[n].replicas[1] != nil }, time.Second); err != nil {
		t.Fatal(err)
	}
	st := w.stores[n]
	r := st.replicas[1]
	vote := raftpb.Message{Type: raftpb.MsgVote, Term: 100}
	prevote := raftpb.Message{Type: raftpb.MsgPreVote, Term: 100}
	handover := raftpb.Message{Type: raftpb.MsgVote, Term: 100, Context: campaignTransfer}
	if !r.dropsVote(vote, st.moment()) || !r.dropsVote(prevote, st.moment()) || r.dropsVote(handover, st.moment()) {
		t.Fatalf("just restarted: drops vote %t, pre-vote %t, hand-over %t; want true, true, false",
			r.dropsVote(vote, st.moment()), r.dropsVote(prevote, st.moment()), r.dropsVote(handover, st.moment()))
	}
	if err := w.sim.RunFor(time.Duration(DefaultElectionTicks) * DefaultTickInterval); err != nil {
		t.Fatal(err)
	}
	if r.dropsVote(vote, st.moment()) || r.dropsVote(prevote, st.moment()) {
		t.Fatal("an election timeout after the restart, the replica still drops votes")
	}
}

// TestTransferVoteContext pins down what forcedVote relies on: etcd raft
// marks a hand-over election's vote requests with campaignTransfer.
func TestTransferVoteContext(t *testing.T) {
	peers := []raft.Peer{{ID: 1}, {ID: 2}}
	storage := raft.NewMemoryStorage()
	rn, err := raft.NewRawNode(&raft.Config{ID: 2, ElectionTick: 10, HeartbeatTick: 1, Storage: storage, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Bootstrap(peers); err != nil {
		t.Fatal(err)
	}
	// Settle the bootstrap entries, then have leader 1 hand over to 2.
	for rn.HasReady() {
		rd := rn.Ready()
		if err := storage.Append(rd.Entries); err != nil {
			t.Fatal(err)
		}
		rn.Advance(rd)
	}
	if err := rn.Step(raftpb.Message{Type: raftpb.MsgTimeoutNow, From: 1, To: 2, Term: 1}); err != nil {
		t.Fatal(err)
	}
	rd := rn.Ready()
	for _, m := range rd.Messages {
		if m.Type == raftpb.MsgVote && m.To == 1 {
			if !forcedVote(m) || !bytes.Equal(m.Context, campaignTransfer) {
				t.Fatalf("a hand-over's vote request carries context %q", m.Context)
			}
			return
		}
	}
	t.Fatalf("no vote request after MsgTimeoutNow: %v", rd.Messages)
}

// TestClockRateBeyondBoundFencesLeases: a follower whose clock runs 30%
// fast would vote before the leader's lease ends; the leader measures the
// rate within a few seconds and stops serving reads alone (they still
// succeed, through ReadIndex). Clocks within the bound fence nothing, even
// over links 250 ms slow each way, whose round trips make a 2 s window's
// error bound ±0.25 (it once fenced them); a clock 30% fast over such a
// link is still fenced.
func TestClockRateBeyondBoundFencesLeases(t *testing.T) {
	for _, tc := range []struct {
		follower, leader float64
		slow             time.Duration // added to the follower's links
		fenced           bool
	}{
		{1.3, 1, 0, true},
		{1 + DefaultMaxClockDrift*0.8, 1 - DefaultMaxClockDrift*0.8, 0, false},
		{1, 1, 250 * time.Millisecond, false},
		{1.3, 1, 250 * time.Millisecond, true},
	} {
		w := newLeaseWorld(t, 7)
		if err := w.sim.RunUntil(func() bool { return w.leader() != 0 && len(w.leased) > 0 }, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		l := w.leader()
		f := l%3 + 1
		w.sim.Node(f).SetClockRate(tc.follower)
		w.sim.Node(l).SetClockRate(tc.leader)
		w.sim.Net().Slow(f, tc.slow)
		if err := w.sim.RunFor(3 * rateWindow); err != nil {
			t.Fatal(err)
		}
		if w.leader() != l {
			t.Fatalf("leadership moved from n%d", l)
		}
		if got := w.stores[l].ClockRateFenced(); (got > 0) != tc.fenced {
			t.Fatalf("rates %v/%v, follower's links %v slow: leader fences %d peers, want fenced %t", tc.follower, tc.leader, tc.slow, got, tc.fenced)
		}
		before, reads := w.leased[l], w.reads[l]
		if err := w.sim.RunFor(time.Second); err != nil {
			t.Fatal(err)
		}
		if w.reads[l]-reads < 100 {
			t.Fatalf("only %d reads answered on n%d in a second", w.reads[l]-reads, l)
		}
		if leasing := w.leased[l] != before; leasing == tc.fenced {
			t.Fatalf("rates %v/%v: leased reads went on %t, want %t", tc.follower, tc.leader, leasing, !tc.fenced)
		}
	}
}
