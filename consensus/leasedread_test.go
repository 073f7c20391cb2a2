package consensus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// TestLeasedReadsOnTheCallersTask: a client on the leaseholder's node reads
// the engine itself (no driver round), sees every write acknowledged
// before, and stops as soon as the lease moves: after a transfer, a write
// acknowledged by the new leaseholder is what the old one's client reads.
func TestLeasedReadsOnTheCallersTask(t *testing.T) {
	c := newTestCluster(t, Options{})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := []byte("k") // the range ["h", "p")
	cl1 := NewClient(c.routers[0], "reader-1")
	cl2 := NewClient(c.routers[1], "writer-2")
	if err := cl1.TransferLeadership(ctx, key, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		want := fmt.Sprintf("v%d", i)
		if err := cl1.Put(ctx, key, []byte(want)); err != nil {
			t.Fatal(err)
		}
		v, found, err := cl1.Get(ctx, key)
		if err != nil || !found || string(v) != want {
			t.Fatalf("read %d: %q %v %v, want %q", i, v, found, err, want)
		}
	}
	local := c.stores[0].offDriverReads.Load()
	if local == 0 {
		t.Fatalf("no read of the leaseholder's own client was served off the driver")
	}
	t.Logf("%d of 50 reads served on the caller's task", local)

	// The lease moves to node 2, which takes a write: node 1's client reads
	// it (through node 2), never its own stale copy.
	if err := cl2.TransferLeadership(ctx, key, 2); err != nil {
		t.Fatal(err)
	}
	if err := cl2.Put(ctx, key, []byte("after")); err != nil {
		t.Fatal(err)
	}
	v, _, err := cl1.Get(ctx, key)
	if err != nil || string(v) != "after" {
		t.Fatalf("node 1 read %q (%v) after node 2 acknowledged \"after\"", v, err)
	}
	if c.routers[0].Leader(c.layout.Lookup(key).ID) != 2 {
		t.Fatalf("node 1's router did not learn node 2 leads")
	}
}

// TestNoLeasedReadsWithoutLeases: with leases off, every read takes the
// driver's ReadIndex round.
func TestNoLeasedReadsWithoutLeases(t *testing.T) {
	c := newClusterOf(t, 1, func(kernel.NodeID) Options { return Options{DisableLeases: true} }, nil)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "c")
	if err := cl.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if v, _, err := cl.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
			t.Fatalf("read %q %v", v, err)
		}
	}
	if n := c.stores[0].offDriverReads.Load(); n != 0 {
		t.Fatalf("%d reads served off the driver with leases off", n)
	}
}
