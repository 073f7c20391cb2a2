package consensus

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// summarizer is a keyspace machine that answers every command with "ok"
// and records its hand-overs: it summarizes a range as the node and term
// that hand it over, and keeps what it takes over.
type summarizer struct {
	node     kernel.NodeID
	mu       sync.Mutex
	taken    []TakeOverNote
	absorbed []AbsorbNote
}

func (m *summarizer) Apply(RangeData, []byte, CommandMeta) ([]byte, error) { return []byte("ok"), nil }
func (m *summarizer) Query(RangeData, []byte, CommandMeta) ([]byte, error) { return []byte("ok"), nil }

func (m *summarizer) HandOver(d Descriptor, term uint64) []byte {
	return fmt.Appendf(nil, "n%d-t%d", m.node, term)
}

func (m *summarizer) TakeOver(n TakeOverNote) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.taken = append(m.taken, n)
}

func (m *summarizer) Absorb(n AbsorbNote) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.absorbed = append(m.absorbed, n)
}

func (m *summarizer) takenOver() []TakeOverNote {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]TakeOverNote(nil), m.taken...)
}

// handoverWorld is three simulated nodes holding one range, with a
// summarizing keyspace at [0x40, 0x41).
type handoverWorld struct {
	*leaseWorld
	machines map[kernel.NodeID]*summarizer
}

func newHandoverWorld(t *testing.T) *handoverWorld {
	w := &handoverWorld{leaseWorld: &leaseWorld{stores: map[kernel.NodeID]*Store{}}, machines: map[kernel.NodeID]*summarizer{}}
	w.sim = newThreeNodes(t, 1, func(rt kernel.Runtime, eng *storage.Engine, layout Layout) {
		m := &summarizer{node: rt.NodeID()}
		st, err := Open(rt, eng, layout, Options{Router: NewRouter(rt, layout),
			Keyspaces: []Keyspace{{Name: "summarized", Start: []byte{0x40}, End: []byte{0x41}, Machine: m}}})
		if err != nil {
			kernel.Crash("open consensus: %v", err)
		}
		w.stores[rt.NodeID()], w.machines[rt.NodeID()] = st, m
	})
	return w
}

// newServingHandoverWorld is a handoverWorld whose range has elected a
// leader, returned with it, and served a query there.
func newServingHandoverWorld(t *testing.T) (*handoverWorld, kernel.NodeID) {
	w := newHandoverWorld(t)
	if err := w.sim.RunUntil(func() bool { return w.leader() != 0 }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	leader := w.leader()
	if err := w.query(t, leader); err != nil {
		t.Fatal(err)
	}
	return w, leader
}

// query runs a query of the summarizing keyspace through node n and
// returns its error.
func (w *handoverWorld) query(t *testing.T, n kernel.NodeID) error {
	t.Helper()
	return w.do(t, n, func(ctx context.Context, c *Client) error {
		_, err := c.Do(ctx, Request{Op: OpQuery, Key: []byte{0x40, 'k'}, Value: []byte("q")})
		return err
	})
}

func (w *handoverWorld) term(n kernel.NodeID) uint64 {
	return w.stores[n].replicas[1].rn.BasicStatus().Term
}

// voter is node n's replica ID in r's configuration.
func voter(t *testing.T, r *replica, n kernel.NodeID) uint64 {
	for _, v := range r.log.ConfState().Voters {
		if nodeOf(v) == n {
			return v
		}
	}
	t.Fatalf("n%d holds no voter of range %d", n, r.desc.ID)
	return 0
}

// TestHandOverSummaries: a leader that hands its range over proposes its
// keyspaces' summaries ahead of Raft's transfer, and the replica that
// leads the next term takes them over (and no one else does); a
// hand-over whose transferee never takes over is taken back through the
// log, after which the leader serves again and no later leader takes the
// summary over.
func TestHandOverSummaries(t *testing.T) {
	w, old := newServingHandoverWorld(t)
	oldTerm := w.term(old)
	to := old%3 + 1
	if err := w.do(t, old, func(ctx context.Context, c *Client) error { return c.TransferLeadership(ctx, []byte{0x40}, to) }); err != nil {
		t.Fatal(err)
	}
	if err := w.sim.RunUntil(func() bool { return w.leader() == to }, 5*time.Second); err != nil {
		t.Fatalf("hand-over to n%d: %v", to, err)
	}
	if err := w.query(t, to); err != nil { // the new leader's first entry has applied
		t.Fatal(err)
	}
	want := fmt.Sprintf("n%d-t%d", old, oldTerm)
	for id, m := range w.machines {
		got := m.takenOver()
		switch {
		case id == to && (len(got) != 1 || string(got[0].Summary) != want || got[0].Term != w.term(to)):
			t.Fatalf("n%d, the new leader, took over %+v; want %q in term %d", id, got, want, w.term(to))
		case id != to && len(got) != 0:
			t.Fatalf("n%d, not the new leader, took over %+v", id, got)
		}
	}

	if p, tk := w.stores[old].HandOvers().Proposed.Load(), w.stores[to].HandOvers().TakenOver.Load(); p != 1 || tk != 1 {
		t.Fatalf("counted %d proposed on n%d, %d taken over on n%d; want 1 and 1", p, old, tk, to)
	}

	// A hand-over to a replica cut off after it caught up: it never holds
	// the summaries' entry, the hand-over times out (handoverTimeout), and
	// the leader takes its summary back.
	leader, cut := to, to%3+1
	st := w.stores[leader]
	r := st.replicas[1]
	term := w.term(leader)
	w.sim.Net().Isolate(cut)
	st.handOver(r, voter(t, r, cut))
	if r.summarizedTerm != term {
		t.Fatalf("after a hand-over's start: summarized term %d, want %d", r.summarizedTerm, term)
	}
	if !st.handingOver(r, term, []byte{0x40, 'k'}) || st.handingOver(r, term, []byte("k")) {
		t.Fatal("after a hand-over's start, the leader still serves the summarized keyspace, or no longer serves another")
	}
	if r.handoverTo != voter(t, r, cut) {
		t.Fatalf("the hand-over goes to %x, want n%d", r.handoverTo, cut)
	}
	if err := w.sim.RunUntil(func() bool { return r.summarizedTerm == 0 }, 5*time.Second); err != nil {
		t.Fatalf("the failed hand-over was not taken back: %v", err)
	}
	if w.leader() != leader || w.term(leader) != term {
		t.Fatalf("n%d no longer leads term %d", leader, term)
	}
	if n := st.HandOvers().TakenBack.Load(); n != 1 {
		t.Fatalf("counted %d hand-overs taken back, want 1", n)
	}
	if err := w.query(t, leader); err != nil {
		t.Fatalf("the leader does not serve after taking its hand-over back: %v", err)
	}
	for id, s := range w.stores {
		if id != cut && s.replicas[1].lastHandover != nil {
			t.Fatalf("n%d still holds the summary after it was taken back", id)
		}
	}
	// Whoever leads next (the cut-off replica rejoins) takes nothing over.
	w.sim.Net().Heal()
	r.rn.TransferLeader(voter(t, r, cut))
	if err := w.sim.RunUntil(func() bool { return w.leader() == cut }, 5*time.Second); err != nil {
		t.Fatalf("plain Raft transfer to n%d: %v", cut, err)
	}
	if err := w.query(t, cut); err != nil {
		t.Fatal(err)
	}
	if got := w.machines[cut].takenOver(); len(got) != 0 {
		t.Fatalf("n%d took over %+v, a summary taken back", cut, got)
	}
	if st := w.stores[cut].replicas[1].rn.BasicStatus(); st.RaftState != raft.StateLeader {
		t.Fatalf("n%d: %v", cut, st.RaftState)
	}
}

// leaderOf is the node leading range id (0: none).
func (w *handoverWorld) leaderOf(id storage.RangeID) kernel.NodeID {
	for n, st := range w.stores {
		if r := st.replicas[id]; r != nil && r.rn.BasicStatus().RaftState == raft.StateLeader {
			return n
		}
	}
	return 0
}

// TestMergeCarriesTheRightSummary: the leader that answers a merge's
// freeze adds the right-hand range's summaries to the trigger, and the
// left-hand range's leader, alone, absorbs them as the merge applies.
func TestMergeCarriesTheRightSummary(t *testing.T) {
	w := newHandoverWorld(t)
	if err := w.sim.RunUntil(func() bool { return w.leader() != 0 }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	at := []byte{0x40, 'm'}
	var right storage.RangeID
	if err := w.do(t, 1, func(ctx context.Context, c *Client) (err error) {
		right, err = c.Split(ctx, at)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.sim.RunUntil(func() bool { return w.leaderOf(right) != 0 && w.leaderOf(1) != 0 }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	rightLeader := w.leaderOf(right)
	rightTerm := w.stores[rightLeader].replicas[right].rn.BasicStatus().Term
	if err := w.do(t, 1, func(ctx context.Context, c *Client) error { return c.Merge(ctx, at) }); err != nil {
		t.Fatal(err)
	}
	left := w.leaderOf(1)
	want := fmt.Sprintf("n%d-t%d", rightLeader, rightTerm)
	for id, m := range w.machines {
		m.mu.Lock()
		got := append([]AbsorbNote(nil), m.absorbed...)
		m.mu.Unlock()
		switch {
		case id == left && (len(got) != 1 || string(got[0].Summary) != want || !bytes.Equal(got[0].RightStart, at) || got[0].Merged.End != nil):
			t.Fatalf("n%d, the left-hand leader, absorbed %+v; want %q over [%q, end)", id, got, want, at)
		case id != left && len(got) != 0:
			t.Fatalf("n%d, not the left-hand leader, absorbed %+v", id, got)
		}
		if n, want := w.stores[id].HandOvers().Absorbed.Load(), int64(len(got)); n != want {
			t.Fatalf("n%d counted %d absorbed, and absorbed %d", id, n, want)
		}
	}
}

// TestHandOverOverSlowLinks: a leader whose every link turned slow (150 ms
// each way, so a round trip outlasts Raft's 200 ms transfer window, but
// the silence as the links turn slow does not make it step down) while
// its range was idle and its followers caught up hands the range over at
// the first try. It must not ask Raft for the transfer while its
// summaries' entry is still unpersisted: Raft would then send the entry
// first and wait a round trip for it, past the window, give the transfer
// up, and the hand-over would be taken back (a Jepsen slow-leader fault
// kept a range on the slow node for 3 s so). The health check starts the
// hand-over as it does (handOver, then progressHandovers at once).
func TestHandOverOverSlowLinks(t *testing.T) {
	if msg := handOverOverSlowLinks(t); msg != "" {
		t.Fatal(msg)
	}
}

// handOverOverSlowLinks runs TestHandOverOverSlowLinks and says what went
// wrong ("": nothing).
func handOverOverSlowLinks(t *testing.T) string {
	w, old := newServingHandoverWorld(t)
	if err := w.sim.RunFor(time.Second); err != nil { // idle: the followers caught up
		t.Fatal(err)
	}
	st := w.stores[old]
	r := st.replicas[1]
	to := old%3 + 1
	slowed := w.sim.Elapsed()
	w.sim.Net().Slow(old, 150*time.Millisecond)
	st.handOver(r, voter(t, r, to))
	st.progressHandovers()
	leads := func() bool { return w.stores[to].replicas[1].rn.BasicStatus().RaftState == raft.StateLeader }
	if err := w.sim.RunUntil(leads, 5*time.Second); err != nil {
		return fmt.Sprintf("leadership never reached n%d in 5 s: %v (n%d took %d hand-overs back)", to, err, old, st.HandOvers().TakenBack.Load())
	}
	took := w.sim.Elapsed() - slowed
	if n := st.HandOvers().TakenBack.Load(); n != 0 {
		return fmt.Sprintf("n%d took %d hand-overs back (leadership moved after %v)", old, n, took)
	}
	// The summaries' entry's round trip, then TimeoutNow's way.
	if took > time.Second {
		return fmt.Sprintf("leadership moved from slow n%d only after %v", old, took)
	}
	if err := w.query(t, to); err != nil { // the new leader's first entry has applied
		t.Fatal(err)
	}
	if got := w.machines[to].takenOver(); len(got) != 1 {
		return fmt.Sprintf("n%d took over %+v, want the summary of n%d", to, got, old)
	}
	return ""
}
