package consensus

import (
	"context"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// putThrough runs a put from a client on node n and waits for it.
func putThrough(t *testing.T, w *leaseWorld, n kernel.NodeID, key, value string) {
	t.Helper()
	if err := w.do(t, n, func(ctx context.Context, c *Client) error { return c.Put(ctx, []byte(key), []byte(value)) }); err != nil {
		t.Fatalf("put %s=%s through n%d: %v", key, value, n, err)
	}
}

// do runs f with a client on node n, in the simulator, and returns its
// error.
func (w *leaseWorld) do(t *testing.T, n kernel.NodeID, f func(ctx context.Context, c *Client) error) error {
	t.Helper()
	rt := w.sim.Node(n).Runtime()
	c := NewClient(NewRouter(rt, w.stores[n].layout), "admin")
	var err error
	done := false
	rt.Go("admin", func(ctx context.Context) {
		actx, cancel := rt.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err, done = f(actx, c), true
	})
	if e := w.sim.RunUntil(func() bool { return done }, 10*time.Second); e != nil {
		t.Fatalf("through n%d: %v", n, e)
	}
	return err
}

// valueOn reads key from node n's applied state.
func valueOn(w *leaseWorld, n kernel.NodeID, key string) string {
	v, err := w.stores[n].eng.Get([]byte(key))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(v)
}

// TestEvaluationAfterALostEntryIsRejected: the leader evaluates a write
// (k=lost) that never reaches the log (lost on the way); a CAS expecting
// k=lost, evaluated on top of it, swaps — and is rejected where it
// applies, on every replica, for it saw a state that never came to be.
// Its client's retry, evaluated afresh, finds k=first and does not swap.
func TestEvaluationAfterALostEntryIsRejected(t *testing.T) {
	w := newLeaseWorld(t, 3)
	if err := w.sim.RunUntil(func() bool { return w.leader() != 0 }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	l := w.leader()
	putThrough(t, w, l, "k", "first")
	st := w.stores[l]
	r := st.replicas[1]
	st.nextID++
	lost := st.nextID
	_, writes, _ := st.evaluate(r, r.desc, lost, Request{Client: 99, Seq: 1, Op: OpPut, Key: []byte("k"), Value: []byte("lost")})
	r.chain(lost, writes) // evaluated and chained, never proposed

	rt := w.sim.Node(l).Runtime()
	c := NewClient(NewRouter(rt, st.layout), "cas")
	var swapped, done bool
	var err error
	rt.Go("cas", func(ctx context.Context) {
		cctx, cancel := rt.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		swapped, err = c.CompareAndSet(cctx, []byte("k"), []byte("lost"), []byte("second"))
		done = true
	})
	if e := w.sim.RunUntil(func() bool { return done }, 10*time.Second); e != nil || err != nil {
		t.Fatalf("CAS: %v, %v", e, err)
	}
	if swapped {
		t.Fatal("the CAS swapped k from a value it never held")
	}
	if err := w.sim.RunFor(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for n := range w.stores {
		if got := valueOn(w, n, "k"); got != "first" {
			t.Fatalf("n%d has k=%q, want first", n, got)
		}
		if last := lastEffect(w.stores[n].eng, 1); last == lost {
			t.Fatalf("n%d applied the lost entry", n)
		}
	}
	if r.overlay != nil || len(r.inflight) != 0 {
		t.Fatalf("after the rejection the leader still holds an overlay (%d in flight)", len(r.inflight))
	}
}

// TestOldFormatEntriesStillApply: a log written before effects (version 1
// entries: the request itself) replays: every replica executes it.
func TestOldFormatEntriesStillApply(t *testing.T) {
	w := newLeaseWorld(t, 4)
	if err := w.sim.RunUntil(func() bool { return w.leader() != 0 && w.stores[w.leader()].replicas[1].appliedTerm != 0 }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	l := w.leader()
	r := w.stores[l].replicas[1]
	if err := r.rn.Propose(encodeRequestProposal(12345, Request{Client: 5, Seq: 1, Op: OpPut, Key: []byte("old"), Value: []byte("v1")})); err != nil {
		t.Fatal(err)
	}
	if err := w.sim.RunFor(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for n := range w.stores {
		if got := valueOn(w, n, "old"); got != "v1" {
			t.Fatalf("n%d has old=%q, want v1", n, got)
		}
	}
	// An effects write after it chains on as usual.
	putThrough(t, w, l, "new", "v2")
	if err := w.sim.RunFor(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for n := range w.stores {
		if got := valueOn(w, n, "new"); got != "v2" {
			t.Fatalf("n%d has new=%q, want v2", n, got)
		}
	}
}
