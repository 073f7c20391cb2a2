package consensus

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// holder is the counter machine with one long query: "long <key>" says it
// has started (entered), waits for hold to close or send, then reads key.
type holder struct {
	counter
	entered chan struct{}
	hold    chan struct{}
}

func (h holder) LongQuery(cmd []byte) bool { return bytes.HasPrefix(cmd, []byte("long ")) }

func (h holder) Query(d RangeData, cmd []byte, meta CommandMeta) ([]byte, error) {
	key, long := bytes.CutPrefix(cmd, []byte("long "))
	if !long {
		return h.counter.Query(d, cmd, meta)
	}
	h.entered <- struct{}{}
	<-h.hold
	v, _, err := d.Get(key)
	return v, err
}

// holderCluster is one node whose keyspace is a holder's, leases off (every
// read goes through the driver: a lease view would serve it on its
// caller's task).
func holderCluster(t *testing.T) (*benchCluster, holder) {
	h := holder{entered: make(chan struct{}, 1), hold: make(chan struct{})}
	c := newClusterOf(t, 1, func(kernel.NodeID) Options {
		return Options{DisableLeases: true, Keyspaces: []Keyspace{{Name: "holder", Start: []byte{}, End: []byte{0xf0}, Machine: h}}}
	}, nil)
	return c, h
}

// TestLongQueriesRunOffTheDriver: a query its machine calls long runs on a
// task of its own, from a view taken when the driver served it: writes to
// its range go on while it runs, and it does not see them.
func TestLongQueriesRunOffTheDriver(t *testing.T) {
	c, h := holderCluster(t)
	defer c.close()
	var release sync.Once
	defer release.Do(func() { close(h.hold) }) // a failure must not leave the query (or the driver) waiting
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "long-test")
	if _, err := cl.Command(ctx, []byte("a"), []byte("incr a")); err != nil {
		t.Fatal(err)
	}
	answer := make(chan []byte, 1)
	go func() {
		v, err := cl.Query(ctx, []byte("a"), []byte("long a"))
		if err != nil {
			t.Errorf("the long query: %v", err)
		}
		answer <- v
	}()
	<-h.entered
	// The long query holds its task, not the driver: a write to its own
	// range commits while it waits.
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	v, err := cl.Command(wctx, []byte("a"), []byte("incr a"))
	wcancel()
	if err != nil || string(v) != "2" {
		t.Fatalf("a write while a long query runs: %q, %v (want 2: the driver is free)", v, err)
	}
	if v, err := cl.Query(ctx, []byte("a"), []byte("a")); err != nil || string(v) != "2" {
		t.Fatalf("a short read while a long query runs: %q, %v", v, err)
	}
	release.Do(func() { close(h.hold) })
	// It reads the range as it stood when the driver served it.
	if v := <-answer; string(v) != "1" {
		t.Fatalf("the long query read %q, want 1 (the state when it was served)", v)
	}
}

// TestLongQueriesEndWithTheStore: a store that closes while a long query
// runs aborts it (a retryable refusal: another node can answer it) and
// closes its view before the engine closes.
func TestLongQueriesEndWithTheStore(t *testing.T) {
	c, h := holderCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "long-test")
	if _, err := cl.Command(ctx, []byte("a"), []byte("incr a")); err != nil {
		t.Fatal(err)
	}
	d := c.routers[0].Lookup([]byte("a"))
	answer := make(chan error, 1)
	go func() {
		req := Request{Op: OpQuery, Key: []byte("a"), Value: []byte("long a"), Range: d.ID, Generation: d.Generation}
		_, err := kernel.NewRPC(c.rts[0], "long-test").Call(ctx, 1, kvPort, req.encode())
		answer <- err
	}()
	<-h.entered
	closed := make(chan error, 1)
	go func() { closed <- c.stores[0].Close(ctx) }()
	time.Sleep(50 * time.Millisecond) // the driver is closing, waiting for the query's read
	close(h.hold)
	if err := <-answer; err == nil || remoteCode(err) != codeRetry {
		t.Fatalf("a long query whose store closed: %v, want a retryable refusal", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("closing the store: %v", err)
	}
	c.rts[0].Stop()
	if err := c.engines[0].Close(); err != nil {
		t.Fatalf("closing the engine after the store (no view left open): %v", err)
	}
}
