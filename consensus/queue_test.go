package consensus

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// stall is a StateMachine whose command "stall" holds the driver (it
// evaluates on the driver's task) for stallFor; "count" counts its
// evaluations.
type stall struct{ counted *atomic.Int64 }

const stallFor = AttemptTimeout + 200*time.Millisecond

func (m stall) Apply(d RangeData, cmd []byte, meta CommandMeta) ([]byte, error) {
	switch string(cmd) {
	case "stall":
		time.Sleep(stallFor)
	case "count":
		m.counted.Add(1)
	}
	return []byte("ok"), nil
}

func (stall) Query(d RangeData, cmd []byte, meta CommandMeta) ([]byte, error) { return nil, nil }

// TestRequestsExpireInTheQueue: a request that waited in the driver's queue
// longer than the attempt that sent it (AttemptTimeout) is refused unrun,
// with a retryable error: its client has sent it again or given up, and a
// driver that falls behind must not do the work twice. One that waited
// less is served.
func TestRequestsExpireInTheQueue(t *testing.T) {
	var counted atomic.Int64
	c := newClusterOf(t, 1, func(kernel.NodeID) Options {
		return Options{Keyspaces: []Keyspace{{Name: "stall", Start: []byte{}, End: []byte{0xf0}, Machine: stall{&counted}}}}
	}, nil)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "queue-test")
	if _, err := cl.Command(ctx, []byte("a"), []byte("count")); err != nil { // a leader, routes known
		t.Fatal(err)
	}
	d := c.routers[0].Lookup([]byte("b"))
	send := func(seq uint64) error {
		req := Request{Client: 77, Seq: seq, Op: OpCommand, Key: []byte("b"), Value: []byte("count"), Range: d.ID, Generation: d.Generation}
		_, err := kernel.NewRPC(c.rts[0], "queue-test").Call(ctx, 1, kvPort, req.encode())
		return err
	}
	stalled := make(chan error, 1)
	go func() {
		_, err := NewClient(c.routers[0], "staller").Command(ctx, []byte("a"), []byte("stall"))
		stalled <- err
	}()
	time.Sleep(100 * time.Millisecond) // the driver is in the stall now
	before := counted.Load()
	err := send(1)
	if err == nil || !strings.Contains(err.Error(), "past the attempt's timeout") || remoteCode(err) != codeRetry {
		t.Fatalf("a request queued behind a %v stall: err %v, want a retryable refusal for waiting past the attempt's timeout", stallFor, err)
	}
	if n := counted.Load() - before; n != 0 {
		t.Fatalf("the expired request was evaluated %d times", n)
	}
	if err := <-stalled; err != nil {
		// Its attempt timed out during the stall and was sent again; the
		// copy found its reply in the client table.
		t.Fatalf("the stalling command: %v", err)
	}
	if err := send(2); err != nil {
		t.Fatalf("a request sent to an idle driver: %v", err)
	}
	if n := counted.Load() - before; n != 1 {
		t.Fatalf("a request to an idle driver was evaluated %d times, want once", n)
	}
}
