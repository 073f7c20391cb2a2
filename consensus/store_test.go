package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// TestScanPagesThroughRanges scans the whole keyspace page by page: each
// page stays within one range and says where the next one starts.
func TestScanPagesThroughRanges(t *testing.T) {
	c := newBenchCluster(t)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "scan-test")
	var want []string
	for _, k := range []string{"a", "b", "c", "g", "h", "i", "o", "p", "q", "r", "z"} {
		if err := cl.Put(ctx, []byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	if err := cl.Delete(ctx, []byte("c")); err != nil {
		t.Fatal(err)
	}
	want = append(want[:2], want[3:]...)

	var got []string
	pages := 0
	for start := []byte(""); start != nil; pages++ {
		kvs, resume, err := cl.Scan(ctx, start, nil, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) > 2 {
			t.Fatalf("page of %d pairs, limit 2", len(kvs))
		}
		for _, kv := range kvs {
			if string(kv.Value) != "v"+string(kv.Key) {
				t.Fatalf("scan: %q=%q", kv.Key, kv.Value)
			}
			if d := c.layout.Lookup(start); !d.Contains(kv.Key) {
				t.Fatalf("page from %q returned %q outside its range %v", start, kv.Key, d)
			}
			got = append(got, string(kv.Key))
		}
		start = resume
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scan = %v, want %v", got, want)
	}
	// A bounded span within one range.
	kvs, resume, err := cl.Scan(ctx, []byte("a"), []byte("c"), 10)
	if err != nil || len(kvs) != 2 || resume != nil {
		t.Fatalf("scan [a,c) = %v resume %q err %v", kvs, resume, err)
	}
}

// TestRemoveAndAddBackUnderLoad takes a replica out of a range while a
// client writes, checks the node dropped the range's data and kept a
// tombstone, then adds the node back (as a new replica, caught up by a
// snapshot) and checks it holds every write.
func TestRemoveAndAddBackUnderLoad(t *testing.T) {
	c := newBenchCluster(t)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := NewClient(c.routers[0], "admin")
	writer := NewClient(c.routers[1], "writer")
	d := c.layout.Lookup([]byte("a"))
	victim := d.Replicas[2]

	done := make(chan int)
	stop := make(chan struct{})
	c.rts[1].Go("writer", func(ctx context.Context) {
		n := 0
		defer func() { done <- n }()
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := writer.Put(ctx, []byte(fmt.Sprintf("a%05d", n)), []byte("v")); err != nil {
				t.Errorf("put: %v", err)
				return
			}
		}
	})
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if err := admin.RemoveReplica(ctx, d.Start, victim); err != nil {
		t.Fatal(err)
	}
	eng := c.engines[victim-1]
	waitFor("the removed replica's destruction", func() bool {
		rec, err := eng.ReplicaRecord(d.ID)
		return err == nil && rec.ReplicaID == 0 && rec.MinReplicaID == replicaID(victim, 0)+1
	})
	if kvs, _, _ := eng.Scan(d.Start, d.End, 10); len(kvs) != 0 {
		t.Fatalf("removed replica still holds %d keys", len(kvs))
	}
	time.Sleep(100 * time.Millisecond) // writes on two replicas
	if err := admin.AddReplica(ctx, d.Start, victim); err != nil {
		t.Fatal(err)
	}
	rec, err := eng.ReplicaRecord(d.ID)
	if err != nil || rec.ReplicaID != replicaID(victim, 1) {
		t.Fatalf("re-added replica record %+v %v, want generation 1", rec, err)
	}
	close(stop)
	n := <-done
	if n == 0 {
		t.Fatal("no writes")
	}
	// Every acknowledged write reaches the new replica.
	last := []byte(fmt.Sprintf("a%05d", n-1))
	waitFor("the new replica to catch up", func() bool {
		_, err := eng.Get(last)
		return err == nil
	})
	kvs, _, err := eng.Scan([]byte("a"), []byte("b"), n+10)
	if err != nil || len(kvs) != n {
		t.Fatalf("new replica holds %d keys (%v), want %d", len(kvs), err, n)
	}
	// Removing the leader works too (it hands leadership over first).
	for _, node := range d.Replicas {
		if err := admin.RemoveReplica(ctx, d.Start, node); err != nil {
			t.Fatal(err)
		}
		if err := admin.AddReplica(ctx, d.Start, node); err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.Put(ctx, []byte("a-final"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes during the changes", n)
}

// counterKeyspace gives the counter every key below 0xf0; the built-in
// operations keep the rest.
var counterKeyspace = []Keyspace{{Name: "counter", Start: []byte{}, End: []byte{0xf0}, Machine: counter{}}}

// counter is a StateMachine: "incr <key>" adds one to a decimal counter and
// replies the new value; a query replies the value and the command's time.
type counter struct{}

func (counter) Apply(d RangeData, cmd []byte, meta CommandMeta) ([]byte, error) {
	key := cmd[len("incr "):]
	v, _, err := d.Get(key)
	if err != nil {
		return nil, err
	}
	n, _ := strconv.Atoi(string(v))
	n++
	if err := d.Set(key, []byte(strconv.Itoa(n))); err != nil {
		return nil, err
	}
	if d.Set([]byte("~outside"), nil) == nil && !bytes.HasPrefix(key, []byte("~")) {
		return nil, fmt.Errorf("a write outside the range was allowed")
	}
	return []byte(strconv.Itoa(n)), nil
}

func (counter) Query(d RangeData, cmd []byte, meta CommandMeta) ([]byte, error) {
	if d.Set(cmd, nil) == nil {
		return nil, fmt.Errorf("a query could write")
	}
	v, _, err := d.Get(cmd)
	return v, err
}

// TestCommandsRunOnceThroughTheLog runs a counter state machine from
// several clients: every increment's reply is distinct, and the final value
// counts them all.
func TestCommandsRunOnceThroughTheLog(t *testing.T) {
	c := newTestCluster(t, Options{Keyspaces: counterKeyspace})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const clients, each = 4, 25
	replies := make(chan string, clients*each)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		rt := c.rts[i%len(c.rts)]
		cl := NewClient(c.routers[i%len(c.rts)], fmt.Sprintf("incr-%d", i))
		rt.Go("incr", func(ctx context.Context) {
			defer wg.Done()
			for range each {
				r, err := cl.Command(ctx, []byte("k"), []byte("incr k"))
				if err != nil {
					t.Error(err)
					return
				}
				replies <- string(r)
			}
		})
	}
	wg.Wait()
	close(replies)
	seen := map[string]bool{}
	for r := range replies {
		if seen[r] {
			t.Fatalf("reply %s twice", r)
		}
		seen[r] = true
	}
	cl := NewClient(c.routers[0], "reader")
	v, err := cl.Query(ctx, []byte("k"), []byte("k"))
	if err != nil || string(v) != strconv.Itoa(clients*each) || len(seen) != clients*each {
		t.Fatalf("counter = %q (%v), %d distinct replies; want %d", v, err, len(seen), clients*each)
	}
}

// TestJoinAndMoveReplica starts a fourth node that joins (no bootstrap),
// moves range 1's replica from node 1 to it under writes, and checks it
// holds every write while node 1 holds none.
func TestJoinAndMoveReplica(t *testing.T) {
	c := newBenchCluster(t)
	defer c.close()
	c.start(4, Options{Join: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := NewClient(c.routers[1], "mover")
	d := c.layout.Lookup([]byte("a"))
	for i := range 50 {
		if err := cl.Put(ctx, []byte(fmt.Sprintf("a%03d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if rec, err := c.engines[3].ReplicaRecord(d.ID); err == nil {
		t.Fatalf("a joining node bootstrapped a replica: %+v", rec)
	}
	if err := cl.AddReplica(ctx, d.Start, 4); err != nil {
		t.Fatal(err)
	}
	if got, err := cl.Members(ctx, d.Start); err != nil || !slices.Equal(got, []kernel.NodeID{1, 2, 3, 4}) {
		t.Fatalf("Members after adding node 4 = %v, %v", got, err)
	}
	if err := cl.RemoveReplica(ctx, d.Start, 1); err != nil {
		t.Fatal(err)
	}
	if got, err := cl.Members(ctx, d.Start); err != nil || !slices.Equal(got, []kernel.NodeID{2, 3, 4}) {
		t.Fatalf("Members after removing node 1 = %v, %v", got, err)
	}
	if err := cl.Put(ctx, []byte("a-last"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	for {
		kvs, _, err := c.engines[3].Scan([]byte("a"), []byte("b"), 100)
		if err == nil && len(kvs) == 51 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("node 4 holds %d keys of 51", len(kvs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for {
		kvs, _, _ := c.engines[0].Scan([]byte("a"), []byte("b"), 100)
		if len(kvs) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("node 1 still holds %d keys of the range it left", len(kvs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCommandOutsideItsRangeIsRefused: a command routed by a key of one
// range that reaches a key of another is refused before anything is
// proposed, not a crash of the leader, and at once (retrying cannot
// help): ErrCrossRange. The other key is untouched.
func TestCommandOutsideItsRangeIsRefused(t *testing.T) {
	c := newTestCluster(t, Options{Keyspaces: counterKeyspace})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "stale")
	_, err := cl.Command(ctx, []byte("a"), []byte("incr ~z")) // "~z" is range 3's
	if !errors.Is(err, ErrNotApplied) || !errors.Is(err, ErrCrossRange) || ctx.Err() != nil {
		t.Fatalf("a command reaching outside its range: %v, want ErrNotApplied and ErrCrossRange at once", err)
	}
	_, err = cl.Query(ctx, []byte("a"), []byte("~z"))
	if !errors.Is(err, ErrCrossRange) || ctx.Err() != nil {
		t.Fatalf("a query reaching outside its range: %v, want ErrCrossRange at once", err)
	}
	if r, err := cl.Command(ctx, []byte("~z"), []byte("incr ~z")); err != nil || string(r) != "1" {
		t.Fatalf("incr ~z on its own range = %q, %v; want 1 (the refused command wrote nothing)", r, err)
	}
}

// TestTransferLeadership hands a range's leadership to each node in turn:
// the transfer returns once that node leads, and writes go on throughout.
func TestTransferLeadership(t *testing.T) {
	c := newTestCluster(t, Options{})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "mover")
	key := []byte("a")
	d := c.layout.Lookup(key)
	for i, node := range []kernel.NodeID{2, 3, 1, 3} {
		if err := cl.TransferLeadership(ctx, key, node); err != nil {
			t.Fatalf("transfer to node %d: %v", node, err)
		}
		if got := c.routers[0].Leader(d.ID); got != node {
			t.Fatalf("after the transfer to node %d the client routes to node %d", node, got)
		}
		if err := cl.Put(ctx, key, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.TransferLeadership(ctx, key, 9); !errors.Is(err, ErrNotApplied) || ctx.Err() != nil {
		t.Fatalf("transfer to a node without a replica: %v", err)
	}
}

// TestKeyspaces: a command goes to the state machine whose keyspace holds
// its routing key and touches nothing outside that keyspace, even in the
// same range; a command for a key in no keyspace, and a built-in write of
// a keyspace's key, are refused at once; the built-in operations keep the
// keys no keyspace holds.
func TestKeyspaces(t *testing.T) {
	keyspaces := []Keyspace{
		{Name: "one", Start: []byte("a"), End: []byte("c"), Machine: counter{}},
		{Name: "two", Start: []byte("c"), End: []byte("f"), Machine: counter{}},
	}
	c := newTestCluster(t, Options{Keyspaces: keyspaces})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "keyspaces")
	if r, err := cl.Command(ctx, []byte("b"), []byte("incr b")); err != nil || string(r) != "1" {
		t.Fatalf("incr b in its keyspace = %q, %v", r, err)
	}
	// "d" shares range 1 with "b", but not its keyspace.
	if _, err := cl.Command(ctx, []byte("b"), []byte("incr d")); !errors.Is(err, ErrNotApplied) || ctx.Err() != nil {
		t.Fatalf("a command reaching into another keyspace: %v, want a definite refusal", err)
	}
	if _, err := cl.Command(ctx, []byte("x"), []byte("incr x")); !errors.Is(err, ErrMalformed) || ctx.Err() != nil {
		t.Fatalf("a command for a key no keyspace holds: %v, want ErrMalformed at once", err)
	}
	if _, err := cl.Query(ctx, []byte("x"), []byte("x")); !errors.Is(err, ErrMalformed) || ctx.Err() != nil {
		t.Fatalf("a query for a key no keyspace holds: %v, want ErrMalformed at once", err)
	}
	if err := cl.Put(ctx, []byte("d"), []byte("v")); !errors.Is(err, ErrMalformed) || ctx.Err() != nil {
		t.Fatalf("a built-in put into keyspace two: %v, want ErrMalformed at once", err)
	}
	if err := cl.Put(ctx, []byte("x"), []byte("v")); err != nil {
		t.Fatalf("a built-in put outside every keyspace: %v", err)
	}
	if r, err := cl.Query(ctx, []byte("d"), []byte("d")); err != nil || r != nil {
		t.Fatalf("keyspace two's d = %q, %v; want nothing written", r, err)
	}

	for _, bad := range [][]Keyspace{
		{{Name: "x", Start: []byte("b"), End: []byte("a"), Machine: counter{}}},
		{keyspaces[1], keyspaces[0]},
		{{Name: "x", Start: []byte("a"), End: []byte("d"), Machine: counter{}}, keyspaces[1]},
		{{Name: "sys", Start: []byte("a"), End: []byte{0xff, 0xff, 1}, Machine: counter{}}},
		{{Name: "", Start: []byte("a"), End: []byte("b"), Machine: counter{}}},
	} {
		o := Options{Keyspaces: bad}
		if err := o.EnsureDefaults().Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("keyspaces %v validate: %v", bad, err)
		}
	}
}

// TestScanPinnedIsOnePointInTime reads a range of several pages while a
// client overwrites it between pages: a pinned scan sees the range as it
// was at its first page, every page of it.
func TestScanPinnedIsOnePointInTime(t *testing.T) {
	c := newBenchCluster(t)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "pinned-test")
	writer := NewClient(c.routers[1], "writer")
	const n = 2500 // three pages of MaxScanLimit
	key := func(i int) []byte { return []byte(fmt.Sprintf("b%05d", i)) }
	d := c.layout.Lookup(key(0))
	if !d.Contains(key(n)) {
		t.Fatalf("the test's keys span more than range %v", d)
	}
	for i := 0; i < n; i += 100 {
		var ops []BatchOp
		for j := i; j < i+100; j++ {
			ops = append(ops, BatchOp{Op: OpPut, Key: key(j), Value: []byte("old")})
		}
		if _, err := cl.Batch(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
	pages, seen := 0, 0
	got, next, err := cl.ScanPinned(ctx, key(0), key(n), 0, func(kvs []storage.KeyValue) error {
		pages++
		for _, kv := range kvs {
			if want := key(seen); !bytes.Equal(kv.Key, want) || string(kv.Value) != "old" {
				return fmt.Errorf("page %d: %q=%q, want %q=old", pages, kv.Key, kv.Value, want)
			}
			seen++
		}
		// Between pages: overwrite every key, add one, delete one.
		for i := 0; i < n; i += 500 {
			if err := writer.Put(ctx, key(i), []byte("new")); err != nil {
				return err
			}
		}
		if err := writer.Delete(ctx, key(n-1)); err != nil {
			return err
		}
		return writer.Put(ctx, key(n / 2)[:4], []byte("new"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != n || pages < 3 || got.ID != d.ID || next != nil {
		t.Fatalf("pinned scan: %d pairs in %d pages of range %d, next %q; want %d pairs in 3 pages of range %d, no next", seen, pages, got.ID, next, n, d.ID)
	}
	// A new scan sees the writes.
	kvs, _, err := cl.Scan(ctx, key(0), key(1), 10)
	if err != nil || len(kvs) != 1 || string(kvs[0].Value) != "new" {
		t.Fatalf("after: %v %v", kvs, err)
	}
	// A page of a view that does not exist is refused, not served.
	_, err = cl.rpc.Call(ctx, 1, pinPort, Request{Op: OpScan, Key: key(0), View: 12345}.encode())
	if remoteCode(err) != codePinGone {
		t.Fatalf("a page of an unknown view: %v, want ErrPinGone", err)
	}
}
