package consensus

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/sim"
	"github.com/orbitkernel/orbit/storage"
)

// awaiter is the counter machine's queries and two that wait. "await
// <key>" answers key's value, or, while key is missing, waits for it to
// be written (awaitFor at most) and answers "none" if it is not. "queue
// <rank> <key>" answers "free" unless key is "held"; then it waits in
// key's queue with that rank (awaitFor at most) and answers "timeout" if
// it is not woken. Its command "put <key> <value>" sets key.
type awaiter struct{ counter }

const awaitFor = 80 * time.Millisecond

func (awaiter) Apply(d RangeData, cmd []byte, _ CommandMeta) ([]byte, error) {
	f := bytes.Fields(cmd)
	return nil, d.Set(f[1], f[2])
}

func (a awaiter) Query(d RangeData, cmd []byte, meta CommandMeta) ([]byte, error) {
	f := bytes.Fields(cmd)
	switch string(f[0]) {
	case "await":
		v, found, err := d.Get(f[1])
		if err != nil || found {
			return v, err
		}
		return nil, &WaitForWrite{Key: f[1], For: awaitFor, Reply: []byte("none")}
	case "queue":
		rank, _ := strconv.ParseUint(string(f[1]), 10, 64)
		if v, _, err := d.Get(f[2]); err != nil || string(v) != "held" {
			return []byte("free"), err
		}
		return nil, &WaitForWrite{Key: f[2], For: awaitFor, Reply: []byte("timeout"), Queue: true, Rank: rank}
	}
	return a.counter.Query(d, cmd, meta)
}

// parkWorld is three simulated nodes holding one range of an awaiter's.
type parkWorld struct {
	sim    *sim.Sim
	stores map[kernel.NodeID]*Store
}

func newParkWorld(t *testing.T, seed uint64) *parkWorld {
	w := &parkWorld{stores: map[kernel.NodeID]*Store{}}
	w.sim = newThreeNodes(t, seed, func(rt kernel.Runtime, eng *storage.Engine, layout Layout) {
		st, err := Open(rt, eng, layout, Options{Router: NewRouter(rt, layout),
			Keyspaces: []Keyspace{{Name: "await", Start: []byte{}, End: []byte{0xf0}, Machine: awaiter{}}}})
		if err != nil {
			kernel.Crash("open consensus: %v", err)
		}
		w.stores[rt.NodeID()] = st
	})
	if err := w.sim.RunUntil(func() bool { return w.leader() != 0 }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *parkWorld) leader() kernel.NodeID { return leaderOfRangeOne(w.sim, w.stores) }

// answer is a call's outcome and when (Sim.Elapsed) it came.
type answer struct {
	value []byte
	err   error
	at    time.Duration
	done  bool
}

// start runs f with a client on node n and returns its answer, filled in
// when it returns.
func (w *parkWorld) start(n kernel.NodeID, f func(ctx context.Context, c *Client) ([]byte, error)) *answer {
	rt := w.sim.Node(n).Runtime()
	c := NewClient(NewRouter(rt, w.stores[n].layout), "parker")
	a := &answer{}
	rt.Go("parker", func(ctx context.Context) {
		a.value, a.err = f(ctx, c)
		a.at, a.done = w.sim.Elapsed(), true
	})
	return a
}

func (w *parkWorld) wait(t *testing.T, a *answer) {
	t.Helper()
	if err := w.sim.RunUntil(func() bool { return a.done }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestParkedQueriesWakeOnTheirWrite: a query that waits for a key is
// answered as soon as a write of the key applies, with what it wrote;
// one whose key is not written is answered when its time is up, with
// its machine's fallback; one whose leader steps down is answered then.
func TestParkedQueriesWakeOnTheirWrite(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		w := newParkWorld(t, seed)
		await := func(key string) func(ctx context.Context, c *Client) ([]byte, error) {
			return func(ctx context.Context, c *Client) ([]byte, error) {
				return c.Query(ctx, []byte(key), []byte("await "+key))
			}
		}

		// Woken by the write.
		sent := w.sim.Elapsed()
		q := w.start(1, await("a"))
		w.sim.RunFor(30 * time.Millisecond)
		if q.done {
			t.Fatalf("seed %d: the query did not wait: %q, %v", seed, q.value, q.err)
		}
		wr := w.start(2, func(ctx context.Context, c *Client) ([]byte, error) {
			return c.Command(ctx, []byte("a"), []byte("put a 1"))
		})
		w.wait(t, wr)
		w.wait(t, q)
		if q.err != nil || string(q.value) != "1" {
			t.Fatalf("seed %d: the woken query answered %q, %v; want 1", seed, q.value, q.err)
		}
		if late := q.at - wr.at; q.at-sent >= awaitFor || late > 5*time.Millisecond {
			t.Fatalf("seed %d: the query answered %v after it was sent and %v after the write: not woken by it", seed, q.at-sent, late)
		}

		// Not woken: answered when its time is up.
		sent = w.sim.Elapsed()
		q = w.start(1, await("b"))
		w.wait(t, q)
		if took := q.at - sent; q.err != nil || string(q.value) != "none" || took < awaitFor || took > awaitFor+20*time.Millisecond {
			t.Fatalf("seed %d: a query no write wakes answered %q, %v after %v; want none after %v", seed, q.value, q.err, took, awaitFor)
		}

		// Its leader steps down: answered then, with its fallback.
		l := w.leader()
		q = w.start(l, await("c"))
		w.sim.RunFor(10 * time.Millisecond)
		sent = w.sim.Elapsed()
		to := kernel.NodeID(l%3 + 1)
		tr := w.start(to, func(ctx context.Context, c *Client) ([]byte, error) {
			return nil, c.TransferLeadership(ctx, []byte("c"), to)
		})
		w.wait(t, q)
		w.wait(t, tr)
		if q.err != nil || string(q.value) != "none" || q.at > tr.at+5*time.Millisecond {
			t.Fatalf("seed %d: a query whose leader stepped down answered %q, %v at %v, the transfer done at %v", seed, q.value, q.err, q.at-sent, tr.at-sent)
		}
	}
}

// TestQueuedQueriesGoOneByOne: queries in a key's queue are woken one per
// write, lowest rank first; one woken by a write that leaves the key held
// parks again in its place.
func TestQueuedQueriesGoOneByOne(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		w := newParkWorld(t, seed)
		put := func(value string) {
			a := w.start(2, func(ctx context.Context, c *Client) ([]byte, error) {
				return c.Command(ctx, []byte("k"), []byte("put k "+value))
			})
			w.wait(t, a)
			if a.err != nil {
				t.Fatalf("seed %d: put k %s: %v", seed, value, a.err)
			}
			w.sim.RunFor(5 * time.Millisecond)
		}
		put("held")
		queued := map[int]*answer{}
		for _, rank := range []int{3, 1, 2} { // parked in this order
			queued[rank] = w.start(1, func(ctx context.Context, c *Client) ([]byte, error) {
				return c.Query(ctx, []byte("k"), []byte(fmt.Sprintf("queue %d k", rank)))
			})
			w.sim.RunFor(time.Millisecond)
		}
		w.sim.RunFor(10 * time.Millisecond)
		done := func() (ranks []int) {
			for _, rank := range []int{1, 2, 3} {
				if a := queued[rank]; a.done {
					if a.err != nil || string(a.value) != "free" {
						t.Fatalf("seed %d: rank %d answered %q, %v; want free", seed, rank, a.value, a.err)
					}
					ranks = append(ranks, rank)
				}
			}
			return ranks
		}
		if got := done(); len(got) != 0 {
			t.Fatalf("seed %d: ranks %v answered while the key was held", seed, got)
		}
		put("free")
		if got := done(); !slices.Equal(got, []int{1}) {
			t.Fatalf("seed %d: after one release, ranks %v answered; want [1]", seed, got)
		}
		put("held") // wakes rank 2, which finds it held and keeps its place
		if got := done(); !slices.Equal(got, []int{1}) {
			t.Fatalf("seed %d: after the key was taken again, ranks %v answered; want [1]", seed, got)
		}
		put("free")
		if got := done(); !slices.Equal(got, []int{1, 2}) {
			t.Fatalf("seed %d: after the second release, ranks %v answered; want [1 2]", seed, got)
		}
		// Rank 3 is woken by no write: its time runs out, and it is
		// served again (the key is free now).
		w.wait(t, queued[3])
		if got := done(); !slices.Equal(got, []int{1, 2, 3}) {
			t.Fatalf("seed %d: at the end, ranks %v answered", seed, got)
		}
	}
}
