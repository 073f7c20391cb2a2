package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/kernel/prod"
	"github.com/orbitkernel/orbit/storage"
)

// testCluster is three nodes, each with the transactional keyspace's
// machine, on a local network; the keyspace is split at "m" so that
// transactions span two ranges.
type testCluster struct {
	t       testing.TB
	rts     []*prod.Runtime
	engines []*storage.Engine
	stores  []*consensus.Store
	routers []*consensus.Router
	clocks  []*hlc.Clock
	opts    Options
}

func newTestCluster(t testing.TB, opts Options) *testCluster {
	return newTestClusterOf(t, 3, false, opts)
}

// newTestClusterOf is a cluster of n nodes (1 to 3), every range on each;
// durable puts their data on disk (a temporary directory, each sync a real
// one), not in memory.
func newTestClusterOf(t testing.TB, n int, durable bool, opts Options) *testCluster {
	nodes := []kernel.NodeID{1, 2, 3}[:n]
	layout, err := consensus.NewLayout([][]byte{KeyspaceStart, spaceKey([]byte("m")), KeyspaceEnd}, nodes, n)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, opts: opts}
	net := prod.NewLocalNetwork()
	for _, id := range nodes {
		rt := prod.New(prod.Options{NodeID: id, Net: net})
		var fs vfs.FS = vfs.NewMem()
		dir := fmt.Sprintf("/n%d", id)
		if durable {
			fs, dir = vfs.Default, filepath.Join(t.TempDir(), dir)
		}
		eng, err := storage.Open(fs, dir, storage.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		clock := hlc.NewClock(rt, hlc.DefaultMaxOffset)
		router := consensus.NewRouter(rt, layout)
		st, err := consensus.Open(rt, eng, layout, consensus.Options{Router: router, Keyspaces: []consensus.Keyspace{NewMachine(clock, opts).Keyspace()}})
		if err != nil {
			t.Fatal(err)
		}
		c.rts, c.engines, c.stores = append(c.rts, rt), append(c.engines, eng), append(c.stores, st)
		c.routers, c.clocks = append(c.routers, router), append(c.clocks, clock)
	}
	t.Cleanup(c.close)
	return c
}

func (c *testCluster) close() {
	for i, rt := range c.rts {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := c.stores[i].Close(ctx); err != nil {
			c.t.Errorf("close store %d: %v", i+1, err)
		}
		cancel()
		rt.Stop()
		if err := c.engines[i].Close(); err != nil {
			c.t.Errorf("close engine %d: %v", i+1, err)
		}
	}
}

// db is a DB on node i (0-based).
func (c *testCluster) db(i int, name string) *DB {
	db, err := NewDB(c.rts[i], c.routers[i], c.clocks[i], name, c.opts)
	if err != nil {
		c.t.Fatal(err)
	}
	return db
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestPutGetDelete: writes outside transactions are read back from every
// node, and a delete is a deletion.
func TestPutGetDelete(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	w := c.db(0, "writer")
	for _, k := range []string{"a", "z", "a\x00b"} {
		if err := w.Put(ctx, []byte(k), []byte("v-"+k)); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
	for i := range 3 {
		r := c.db(i, "reader")
		for _, k := range []string{"a", "z", "a\x00b"} {
			v, found, err := r.Get(ctx, []byte(k))
			if err != nil || !found || string(v) != "v-"+k {
				t.Fatalf("node %d get %q = %q, %t, %v", i+1, k, v, found, err)
			}
		}
	}
	if err := w.Delete(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.db(2, "late").Get(ctx, []byte("a")); err != nil || found {
		t.Fatalf("a after its delete: found %t, %v", found, err)
	}
}

// TestTransactionAcrossRanges: a transaction's writes in two ranges are
// seen together once it commits, never apart, and not before; scans see
// them across the range boundary.
func TestTransactionAcrossRanges(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	db := c.db(0, "txn")
	err := db.Txn(ctx, func(tx *Tx) error {
		for _, k := range []string{"b", "x"} {
			if err := tx.Put(ctx, []byte(k), []byte("1")); err != nil {
				return err
			}
		}
		// Its own writes, seen inside it.
		v, found, err := tx.Get(ctx, []byte("x"))
		if err != nil || !found || string(v) != "1" {
			return fmt.Errorf("own write x = %q %t %v", v, found, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var kvs []storage.KeyValue
	err = c.db(1, "scanner").Txn(ctx, func(tx *Tx) error {
		var err error
		kvs, err = tx.Scan(ctx, nil, nil, 10)
		return err
	})
	if err != nil || fmt.Sprint(kvs) != fmt.Sprint([]storage.KeyValue{{Key: []byte("b"), Value: []byte("1")}, {Key: []byte("x"), Value: []byte("1")}}) {
		t.Fatalf("scan after the commit: %q, %v", kvs, err)
	}
}

// TestBankTotalIsConserved: concurrent transfers between accounts in two
// ranges, from every node, while readers sum every account in one
// transaction: every sum is the starting total.
func TestBankTotalIsConserved(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	const accounts, each = 6, 100
	names := []string{"acct-a", "acct-b", "acct-c", "acct-x", "acct-y", "acct-z"} // both sides of "m"
	setup := c.db(0, "setup")
	for _, n := range names {
		if err := setup.Put(ctx, []byte(n), []byte(strconv.Itoa(each))); err != nil {
			t.Fatal(err)
		}
	}
	readBalance := func(tx *Tx, n string) (int, error) {
		v, found, err := tx.Get(ctx, []byte(n))
		if err != nil {
			return 0, err
		}
		if !found {
			return 0, fmt.Errorf("account %s missing", n)
		}
		return strconv.Atoi(string(v))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := c.db(w%3, fmt.Sprintf("transfer-%d", w))
			for i := range 15 {
				from, to := names[(w+i)%accounts], names[(w+2*i+1)%accounts]
				if from == to {
					continue
				}
				err := db.Txn(ctx, func(tx *Tx) error {
					a, err := readBalance(tx, from)
					if err != nil {
						return err
					}
					b, err := readBalance(tx, to)
					if err != nil {
						return err
					}
					amount := min(a, 7)
					if err := tx.Put(ctx, []byte(from), []byte(strconv.Itoa(a-amount))); err != nil {
						return err
					}
					return tx.Put(ctx, []byte(to), []byte(strconv.Itoa(b+amount)))
				})
				if err != nil {
					errs <- fmt.Errorf("transfer %s → %s: %w", from, to, err)
					return
				}
			}
		}()
	}
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := c.db(r, fmt.Sprintf("auditor-%d", r))
			for range 10 {
				var total int
				err := db.Txn(ctx, func(tx *Tx) error {
					kvs, err := tx.Scan(ctx, []byte("acct-"), []byte("acct."), 100)
					if err != nil {
						return err
					}
					total = 0
					for _, kv := range kvs {
						n, err := strconv.Atoi(string(kv.Value))
						if err != nil || n < 0 {
							return fmt.Errorf("account %s holds %q", kv.Key, kv.Value)
						}
						total += n
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("audit: %w", err)
					return
				}
				if total != accounts*each {
					errs <- fmt.Errorf("an audit saw a total of %d, want %d", total, accounts*each)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestWoundWait: two transactions that each hold a key the other wants
// (the classic deadlock) both finish: the older wounds the younger, which
// runs again.
func TestWoundWait(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	older, younger := c.db(0, "older"), c.db(1, "younger")
	t1 := older.Begin()
	time.Sleep(time.Millisecond)
	t2 := younger.Begin()
	// Writes wait in the coordinator until commit; put them as intents
	// now, so that each holds a key the other wants.
	putNow := func(tx *Tx, k, v string) error {
		if err := tx.Put(ctx, []byte(k), []byte(v)); err != nil {
			return err
		}
		return tx.flush(ctx)
	}
	if err := putNow(t1, "a", "t1"); err != nil {
		t.Fatal(err)
	}
	if err := putNow(t2, "y", "t2"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- putNow(t2, "a", "t2") }() // waits for the older t1
	if err := putNow(t1, "y", "t1"); err != nil { // wounds t2
		t.Fatalf("the older transaction's write: %v", err)
	}
	if err := t1.Commit(ctx); err != nil {
		t.Fatalf("the older transaction's commit: %v", err)
	}
	err := <-done
	if err == nil {
		err = t2.Commit(ctx)
	}
	if !errors.Is(err, ErrRetry) {
		t.Fatalf("the wounded transaction: %v, want ErrRetry", err)
	}
	t2.Rollback(ctx)
	for _, k := range []string{"a", "y"} {
		if v, _, err := c.db(2, "check").Get(ctx, []byte(k)); err != nil || string(v) != "t1" {
			t.Fatalf("%s = %q, %v; want t1's", k, v, err)
		}
	}
}

// TestAbandonedTransactionIsAborted: a transaction whose coordinator
// vanishes (no more heartbeats, no commit) blocks the keys it wrote only
// until its record expires; then the first reader aborts it and reads
// the value before it.
func TestAbandonedTransactionIsAborted(t *testing.T) {
	c := newTestCluster(t, Options{HeartbeatInterval: 100 * time.Millisecond, HeartbeatExpiry: 300 * time.Millisecond})
	ctx := testContext(t)
	db := c.db(0, "coordinator")
	if err := db.Put(ctx, []byte("k"), []byte("before")); err != nil {
		t.Fatal(err)
	}
	tx := db.Begin()
	if err := tx.Put(ctx, []byte("k"), []byte("never")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Put(ctx, []byte("x"), []byte("never")); err != nil {
		t.Fatal(err)
	}
	if err := tx.flush(ctx); err != nil { // its intents are written
		t.Fatal(err)
	}
	tx.end() // the coordinator is gone: no heartbeat, no decision
	start := time.Now()
	reader := c.db(1, "reader")
	for _, k := range []string{"x", "k"} {
		v, found, err := reader.Get(ctx, []byte(k))
		want := map[string]string{"k": "before"}[k]
		if err != nil || found != (want != "") || string(v) != want {
			t.Fatalf("%s after the coordinator vanished = %q %t %v, want %q", k, v, found, err, want)
		}
	}
	t.Logf("read after %v", time.Since(start))
}

// TestSilentCoordinatorIsAborted: a transaction whose coordinator's node
// has fallen silent (Options.NodeSilence: consensus.Store.Silence, no
// health pings from it) is aborted by whoever meets its intents, long
// before its heartbeat would expire; while that node is heard from, a
// reader waits for the transaction, however long it has not beaten.
func TestSilentCoordinatorIsAborted(t *testing.T) {
	var silent atomic.Bool
	c := newTestCluster(t, Options{HeartbeatInterval: 200 * time.Millisecond, HeartbeatExpiry: 10 * time.Minute, CoordinatorSilence: 300 * time.Millisecond,
		NodeSilence: func(node kernel.NodeID) (time.Duration, bool) {
			if node == 1 && silent.Load() {
				return time.Hour, true
			}
			return 0, true
		}})
	ctx := testContext(t)
	db := c.db(0, "coordinator")
	if err := db.Put(ctx, []byte("k"), []byte("before")); err != nil {
		t.Fatal(err)
	}
	tx := db.Begin()
	for _, k := range []string{"k", "x"} {
		if err := tx.Put(ctx, []byte(k), []byte("never")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.flush(ctx); err != nil { // its intents are written
		t.Fatal(err)
	}
	tx.stopBeating() // no more heartbeats, no decision yet: only the node's silence can end it now
	reader := c.db(1, "reader")
	wait, cancel := context.WithTimeout(ctx, time.Second)
	v, found, err := reader.Get(wait, []byte("k"))
	cancel()
	if err == nil {
		t.Fatalf("read %q %t through the intent of a transaction whose node is heard from", v, found)
	}
	silent.Store(true)
	for _, k := range []string{"x", "k"} {
		v, found, err := reader.Get(ctx, []byte(k))
		want := map[string]string{"k": "before"}[k]
		if err != nil || found != (want != "") || string(v) != want {
			t.Fatalf("%s once the coordinator's node fell silent = %q %t %v, want %q", k, v, found, err, want)
		}
	}
	if err := tx.Commit(ctx); !errors.Is(err, ErrRetry) {
		t.Fatalf("the aborted transaction's commit = %v, want ErrRetry", err)
	}
}

// TestConcurrentIncrementsAreNotLost: read-modify-write transactions on
// one key from every node lose no increment (a refresh looks beneath the
// transaction's own intent: a version committed there after its read is
// a conflict).
func TestConcurrentIncrementsAreNotLost(t *testing.T) {
	for _, locking := range []bool{false, true} {
		t.Run(fmt.Sprintf("locking=%t", locking), func(t *testing.T) { testConcurrentIncrements(t, locking) })
	}
}

func testConcurrentIncrements(t *testing.T, locking bool) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := c.db(w%3, fmt.Sprintf("inc-%d", w))
			for range 20 {
				err := db.Txn(ctx, func(tx *Tx) error {
					get := tx.Get
					if locking {
						get = tx.GetForUpdate
					}
					v, _, err := get(ctx, []byte("n"))
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(string(v))
					return tx.Put(ctx, []byte("n"), []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	v, _, err := c.db(0, "check").Get(ctx, []byte("n"))
	if string(v) != "80" {
		t.Fatalf("n = %s, %v; want 80", v, err)
	}
}

// TestLockingReadMakesWritersWait: a key read with GetForUpdate is locked
// until its transaction ends; a younger transaction's GetForUpdate of it
// waits, then reads what the first one committed.
func TestLockingReadMakesWritersWait(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	if err := c.db(0, "setup").Put(ctx, []byte("k"), []byte("v0")); err != nil {
		t.Fatal(err)
	}
	t1 := c.db(0, "first").Begin()
	if v, _, err := t1.GetForUpdate(ctx, []byte("k")); err != nil || string(v) != "v0" {
		t.Fatalf("first lock: %q, %v", v, err)
	}
	time.Sleep(time.Millisecond)
	got := make(chan string, 1)
	second := c.db(1, "second")
	go func() {
		var seen string
		err := second.Txn(ctx, func(tx *Tx) error {
			v, _, err := tx.GetForUpdate(ctx, []byte("k"))
			seen = string(v)
			if err != nil {
				return err
			}
			return tx.Put(ctx, []byte("k"), append(v, '+'))
		})
		if err != nil {
			seen = err.Error()
		}
		got <- seen
	}()
	select {
	case v := <-got:
		t.Fatalf("the second transaction read %q while the first held the lock", v)
	case <-time.After(200 * time.Millisecond):
	}
	if err := t1.Put(ctx, []byte("k"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := t1.Commit(ctx); err != nil {
		t.Fatalf("first commit: %v", err)
	}
	if v := <-got; v != "v1" {
		t.Fatalf("the second transaction read %q, want the first one's v1", v)
	}
	if v, _, err := c.db(2, "check").Get(ctx, []byte("k")); err != nil || string(v) != "v1+" {
		t.Fatalf("k = %q, %v; want v1+", v, err)
	}
}

// TestWaiterGoesOnWhenTheLockIsTakenBack: a writer waiting on a locking
// read's intent goes on as soon as its holder rolls back to a savepoint
// taken before the lock, while the holder's transaction still runs: the
// holder waits for the writer's commit before it ends (before the waiter
// checked whether the intent was still held, it polled the live holder's
// record until the whole transaction ended, and this test deadlocked).
func TestWaiterGoesOnWhenTheLockIsTakenBack(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	holder := c.db(0, "holder").Begin()
	sp := holder.Savepoint()
	if _, _, err := holder.GetForUpdate(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.db(1, "writer").Put(ctx, []byte("k"), []byte("w")) }()
	select {
	case err := <-done:
		t.Fatalf("the writer went through a held lock: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := holder.RollbackTo(ctx, sp); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writer still waits for a transaction that took its lock back")
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _, err := c.db(2, "check").Get(ctx, []byte("k")); err != nil || string(v) != "w" {
		t.Fatalf("k = %q, %v; want w", v, err)
	}
}

// TestLockingReadRefreshesEarlierReads: a locking read lands above the
// transaction's read timestamp when the key changed since; it reads the
// newest value, and the earlier reads must hold at its timestamp
// (ErrRetry when one changed: the write skew a refresh prevents).
func TestLockingReadRefreshesEarlierReads(t *testing.T) {
	for _, earlierChanged := range []bool{false, true} {
		t.Run(fmt.Sprintf("earlier-changed=%t", earlierChanged), func(t *testing.T) {
			c := newTestCluster(t, Options{})
			ctx := testContext(t)
			other := c.db(1, "other")
			tx := c.db(0, "reader").Begin()
			if _, _, err := tx.Get(ctx, []byte("a")); err != nil {
				t.Fatal(err)
			}
			if earlierChanged {
				if err := other.Put(ctx, []byte("a"), []byte("changed")); err != nil {
					t.Fatal(err)
				}
			}
			// Written after "a": the lock lands above both writes.
			if err := other.Put(ctx, []byte("z"), []byte("newer")); err != nil {
				t.Fatal(err)
			}
			v, found, err := tx.GetForUpdate(ctx, []byte("z"))
			if earlierChanged {
				if !errors.Is(err, ErrRetry) {
					t.Fatalf("lock after an earlier read changed: %q %t %v, want ErrRetry", v, found, err)
				}
				tx.Rollback(ctx)
				return
			}
			if err != nil || !found || string(v) != "newer" {
				t.Fatalf("lock = %q %t %v, want the newest value", v, found, err)
			}
			if err := tx.Put(ctx, []byte("a"), []byte("from-tx")); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			if v, _, err := c.db(2, "check").Get(ctx, []byte("z")); err != nil || string(v) != "newer" {
				t.Fatalf("z after a lock that wrote nothing = %q, %v; want it unchanged", v, err)
			}
		})
	}
}

// TestFutureReadsWait: a read at a timestamp beyond the leaseholder's
// clock (a refresh to a pushed commit timestamp, say) is not served until
// the clock passes it, so that no leaseholder serves a read a later one's
// cache would not cover.
func TestFutureReadsWait(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	db := c.db(0, "reader")
	if err := db.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	tx := db.Begin()
	ahead := 300 * time.Millisecond
	tx.c.read = c.clocks[0].Now().Add(ahead)
	start := time.Now()
	if v, _, err := tx.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("future read: %q, %v", v, err)
	}
	if took := time.Since(start); took < ahead-50*time.Millisecond {
		t.Fatalf("a read %v beyond the offset was served after %v", ahead, took)
	}
	tx.Rollback(ctx)
}

// storedKeys are node i's stored keys of the transactional keyspace
// (versions, intents, records).
func (c *testCluster) storedKeys(i int) []string {
	kvs, _, err := c.engines[i].Scan(KeyspaceStart, KeyspaceEnd, 10_000)
	if err != nil {
		c.t.Fatal(err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, fmt.Sprintf("%q", kv.Key))
	}
	return keys
}

// TestGarbageCollection: a pass removes the versions no read at or above
// now − GCTTL can see (the newest stays readable), resolves the intents of
// a transaction that committed but never resolved them (in two ranges) and
// forgets its record, and aborts a transaction whose coordinator vanished
// before its decision, whose intents no one reads (in two ranges): its
// intents go, then its record; a read below the threshold is refused as
// a retry.
func TestGarbageCollection(t *testing.T) {
	const ttl = time.Second
	c := newTestCluster(t, Options{GCTTL: ttl})
	ctx := testContext(t)
	db := c.db(0, "gc")
	for _, v := range []string{"1", "2", "3"} {
		if err := db.Put(ctx, []byte("k"), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	// A transaction that commits and then vanishes before resolving.
	tx := db.Begin()
	for _, k := range []string{"a", "x"} { // both sides of "m"
		if err := tx.Put(ctx, []byte(k), []byte("t")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.flush(ctx); err != nil {
		t.Fatal(err)
	}
	meta := tx.c.meta()
	res, err := db.send(ctx, db.cl, tx.c.anchor, &command{op: opEnd, key: tx.c.anchor, txn: &meta, commit: true, read: tx.c.write, keys: sortedKeys(tx.c.writes)})
	if err != nil || res.status != statusCommitted {
		t.Fatalf("commit: %v %v", res, err)
	}
	tx.end()
	abandoned := db.Begin()
	for _, k := range []string{"b", "y"} {
		if err := abandoned.Put(ctx, []byte(k), []byte("never")); err != nil {
			t.Fatal(err)
		}
	}
	if err := abandoned.flush(ctx); err != nil {
		t.Fatal(err)
	}
	abandoned.end() // no heartbeat, no decision
	old := db.Begin()
	time.Sleep(ttl + 100*time.Millisecond)
	if _, _, err := old.Get(ctx, []byte("k")); !errors.Is(err, ErrRetry) {
		t.Fatalf("a read %v old: %v, want ErrRetry (below the threshold)", ttl, err)
	}
	// As every node does it, each collecting the ranges it leads, every
	// GCInterval: the first pass aborts the abandoned transaction (its
	// intents are older than the threshold) and the next forgets its
	// record. Then one version of each key, no intent, no record, on
	// every node.
	deadline := time.Now().Add(10 * time.Second)
	var passes GCPass
	for i := range c.engines {
		for keys := c.storedKeys(i); len(keys) != 3; keys = c.storedKeys(i) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d keeps %d keys after collection: %v", i+1, len(keys), keys)
			}
			for i := range c.rts {
				pass, err := c.db(i, fmt.Sprintf("gc-%d", i)).CollectGarbage(ctx, true)
				if err != nil {
					t.Fatal(err)
				}
				passes.Records, passes.Abandoned, passes.Alive = passes.Records+pass.Records, passes.Abandoned+pass.Abandoned, passes.Alive+pass.Alive
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The committed transaction's record sits in one range and its x in
	// the other; the abandoned one's b and y, one intent each (its
	// record looks alive to the passes before its heartbeat expires,
	// HeartbeatExpiry after its last one: Alive counts those).
	if passes.Records < 1 || passes.Abandoned != 2 {
		t.Fatalf("the passes report %+v, want the record resolved elsewhere and two abandoned intents", passes)
	}
	for k, want := range map[string]string{"k": "3", "a": "t", "x": "t", "b": "", "y": ""} {
		if v, _, err := db.Get(ctx, []byte(k)); err != nil || string(v) != want {
			t.Fatalf("%s after collection = %q, %v; want %q", k, v, err, want)
		}
	}
}

// TestLargeTransactions: a transaction larger than one proposal commits
// (its intents written and resolved in batches), one that rolls back
// leaves nothing, and with tiny batches and a record that keeps spans
// the same holds, including when garbage collection, not the
// coordinator, resolves a committed transaction's intents.
func TestLargeTransactions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       Options
		keys, size int
	}{
		{"beyond a proposal", Options{}, 12_000, 1000}, // 12 MB against 8 MiB
		{"tiny batches, spans", Options{BatchBytes: 64, RecordKeyBytes: 40, GCTTL: time.Second}, 300, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.keys*tc.size > 1<<20 {
				t.Skip("12 MB through three in-memory nodes: too slow under -short (make race)")
			}
			c := newTestCluster(t, tc.opts)
			ctx := testContext(t)
			db := c.db(0, "large")
			key := func(i int) []byte { return fmt.Appendf(nil, "%c%05d", "ax"[i%2], i) } // both sides of "m"
			value := func(i, round int) []byte {
				v := make([]byte, tc.size)
				copy(v, fmt.Sprintf("%d/%d", round, i))
				return v
			}
			write := func(round int) func(tx *Tx) error {
				return func(tx *Tx) error {
					for i := range tc.keys {
						if err := tx.Put(ctx, key(i), value(i, round)); err != nil {
							return err
						}
					}
					return nil
				}
			}
			check := func(round int) {
				t.Helper()
				var got []storage.KeyValue
				err := c.db(1, "reader").Txn(ctx, func(tx *Tx) error {
					got = got[:0]
					for from := []byte{}; from != nil; {
						kvs, err := tx.Scan(ctx, from, nil, 1000)
						if err != nil {
							return err
						}
						got = append(got, kvs...)
						from = nil
						if len(kvs) == 1000 {
							from = append(kvs[len(kvs)-1].Key, 0)
						}
					}
					return nil
				})
				if err != nil || len(got) != tc.keys {
					t.Fatalf("round %d: read %d keys of %d: %v", round, len(got), tc.keys, err)
				}
				for _, kv := range got {
					var i int
					fmt.Sscanf(string(kv.Key[1:]), "%d", &i)
					if string(kv.Value) != string(value(i, round)) {
						t.Fatalf("round %d: %q = %.20q", round, kv.Key, kv.Value)
					}
				}
			}
			if err := db.Txn(ctx, write(1)); err != nil {
				t.Fatal(err)
			}
			check(1)
			errAbandon := errors.New("abandoned")
			if err := db.Txn(ctx, func(tx *Tx) error {
				if err := write(2)(tx); err != nil {
					return err
				}
				if err := tx.flush(ctx); err != nil { // its intents written, then rolled back
					return err
				}
				return errAbandon
			}); !errors.Is(err, errAbandon) {
				t.Fatal(err)
			}
			check(1)
			if tc.opts.GCTTL == 0 {
				return
			}
			// Committed, left unresolved, its record condensed to spans:
			// garbage collection resolves it.
			tx := db.Begin()
			if err := write(3)(tx); err != nil {
				t.Fatal(err)
			}
			if err := tx.flush(ctx); err != nil {
				t.Fatal(err)
			}
			points, spans := db.place.condense(sortedKeys(tx.c.writes))
			if points != nil || len(spans) != 4 {
				t.Fatalf("condensed to %d keys and %d span bounds, want 2 spans", len(points), len(spans))
			}
			meta := tx.c.meta()
			if res, err := db.send(ctx, db.cl, tx.c.anchor, &command{op: opEnd, key: tx.c.anchor, txn: &meta, commit: true, read: tx.c.write, spans: spans}); err != nil || res.status != statusCommitted {
				t.Fatalf("commit: %v %v", res, err)
			}
			tx.end()
			time.Sleep(tc.opts.GCTTL + 100*time.Millisecond)
			// Twice: the first pass resolves the intents, whose versions
			// then hide round 1's, which the second removes.
			for range 2 {
				for i := range c.rts {
					if _, err := c.db(i, fmt.Sprintf("gc-%d", i)).CollectGarbage(ctx, true); err != nil {
						t.Fatal(err)
					}
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for i := range c.engines {
				for keys := c.storedKeys(i); len(keys) != tc.keys; keys = c.storedKeys(i) {
					if time.Now().After(deadline) {
						t.Fatalf("node %d keeps %d keys after collection, want %d", i+1, len(keys), tc.keys)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			check(3)
		})
	}
}

// TestRollbackToSavepoint: writes made after a savepoint, buffered or
// already intents (a scan flushed them), are undone by RollbackTo; an
// intent that held another value at the savepoint gets it back; the
// transaction then commits what it wrote before, in both ranges.
func TestRollbackToSavepoint(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	db := c.db(0, "savepoints")
	err := db.Txn(ctx, func(tx *Tx) error {
		for _, k := range []string{"a", "x"} {
			if err := tx.Put(ctx, []byte(k), []byte("1")); err != nil {
				return err
			}
		}
		if _, err := tx.Scan(ctx, nil, nil, 10); err != nil { // a and x become intents
			return err
		}
		sp := tx.Savepoint()
		for _, k := range []string{"a", "b", "y"} {
			if err := tx.Put(ctx, []byte(k), []byte("2")); err != nil {
				return err
			}
		}
		if _, err := tx.Scan(ctx, nil, nil, 10); err != nil { // a, b, y become intents
			return err
		}
		if err := tx.Delete(ctx, []byte("x")); err != nil { // buffered only
			return err
		}
		if err := tx.RollbackTo(ctx, sp); err != nil {
			return err
		}
		kvs, err := tx.Scan(ctx, nil, nil, 10)
		if err != nil {
			return err
		}
		if got := fmt.Sprint(kvs); got != fmt.Sprint([]storage.KeyValue{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("x"), Value: []byte("1")}}) {
			return fmt.Errorf("after RollbackTo, the transaction reads %q", kvs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var kvs []storage.KeyValue
	if err := c.db(1, "reader").Txn(ctx, func(tx *Tx) error {
		var err error
		kvs, err = tx.Scan(ctx, nil, nil, 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(kvs); got != fmt.Sprint([]storage.KeyValue{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("x"), Value: []byte("1")}}) {
		t.Fatalf("committed: %q", kvs)
	}
}

// TestHandOverCarriesTheReads: a range handed over on purpose
// (consensus.HandOverer) starts its new leader's timestamp cache at the
// reads the old leader served, not at the new one's clock plus the
// maximum offset: a write below a read the old leader served still lands
// above it, and a fresh write lands near the clock's now (before, every
// first write of the new term was placed the maximum offset ahead and
// commit-waited that long).
func TestHandOverCarriesTheReads(t *testing.T) {
	if msg := readsSurvive(t, handOver); msg != "" {
		t.Fatal(msg)
	}
}

// TestMergeCarriesTheReads: a merge keeps the left-hand leader's cache
// and extends it over the absorbed range at that range's summary
// (consensus.HandOverer.Absorb): a write below a read the right-hand
// leader served still lands above it, and a fresh write to the absorbed
// span lands near the clock's now (before, the merged range started its
// cache afresh, the maximum offset ahead).
func TestMergeCarriesTheReads(t *testing.T) {
	if msg := readsSurvive(t, merge); msg != "" {
		t.Fatal(msg)
	}
}

// aMove is a change of a range's leadership or span that its timestamp
// cache must survive: start readies the ranges (their leaders, their
// caches), then key is read, then move runs, then fresh is written.
type aMove struct {
	what       string
	start      func(ctx context.Context, t *testing.T, admin *consensus.Client, db *DB)
	move       func(ctx context.Context, t *testing.T, admin *consensus.Client)
	key, fresh string
}

var (
	handOver = aMove{what: "a hand-over", key: "k", fresh: "j",
		start: func(ctx context.Context, t *testing.T, admin *consensus.Client, db *DB) {
			if err := admin.TransferLeadership(ctx, spaceKey([]byte("k")), 1); err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.Get(ctx, []byte("k")); err != nil { // the cache starts here
				t.Fatal(err)
			}
		},
		move: func(ctx context.Context, t *testing.T, admin *consensus.Client) {
			if err := admin.TransferLeadership(ctx, spaceKey([]byte("k")), 2); err != nil {
				t.Fatal(err)
			}
		}}
	merge = aMove{what: "a merge", key: "q", fresh: "r",
		start: func(ctx context.Context, t *testing.T, admin *consensus.Client, db *DB) {
			for k, node := range map[string]kernel.NodeID{"c": 1, "q": 2} {
				if err := admin.TransferLeadership(ctx, spaceKey([]byte(k)), node); err != nil {
					t.Fatal(err)
				}
				if _, _, err := db.Get(ctx, []byte(k)); err != nil { // each range's cache starts here
					t.Fatal(err)
				}
			}
		},
		move: func(ctx context.Context, t *testing.T, admin *consensus.Client) {
			if err := admin.Merge(ctx, spaceKey([]byte("m"))); err != nil {
				t.Fatal(err)
			}
		}}
)

// readsSurvive runs m on a fresh cluster between a read and two writes,
// and returns what went wrong ("": nothing): a write placed beneath the
// read, or a fresh write placed the maximum offset ahead.
func readsSurvive(t *testing.T, m aMove) string {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	db := c.db(0, "writer")
	admin := consensus.NewClient(c.routers[0], "admin")
	m.start(ctx, t, admin, db)
	// A new leader's cache starts (at its first command) the maximum
	// offset ahead: a read is noted only once the clock has passed that.
	time.Sleep(hlc.DefaultMaxOffset + 100*time.Millisecond)
	reader := db.Begin()
	if _, _, err := reader.Get(ctx, []byte(m.key)); err != nil {
		t.Fatal(err)
	}
	read := reader.ReadTimestamp()
	reader.Rollback(ctx)

	m.move(ctx, t, admin)
	before := c.clocks[0].Now()
	fresh := db.Begin()
	if err := fresh.Put(ctx, []byte(m.fresh), []byte("fresh")); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if slack := hlc.DefaultMaxOffset - 100*time.Millisecond; !fresh.c.write.Less(before.Add(slack)) {
		return fmt.Sprintf("the first write after %s committed at %v, %v or more ahead of the clock (%v): the cache started afresh",
			m.what, fresh.c.write, slack, before)
	}
	late := db.Begin() // a writer whose timestamp lies below the read
	late.c.read, late.c.write = read.Add(-time.Millisecond), read.Add(-time.Millisecond)
	late.c.uncertainty = late.c.read
	if err := late.Put(ctx, []byte(m.key), []byte("late")); err != nil {
		t.Fatal(err)
	}
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !read.Less(late.c.write) {
		return fmt.Sprintf("a write committed at %v, beneath a read at %v served before %s", late.c.write, read, m.what)
	}
	return ""
}

// intentOn is the intent on key in node i's engine (nil: none).
func (c *testCluster) intentOn(i int, key string) *storage.Intent {
	_, _, in, err := storage.MVCCLatest(c.engines[i], spaceKey([]byte(key)))
	if err != nil {
		c.t.Fatal(err)
	}
	return in
}

// TestCommitsResolveAfterTheyAnswer: a commit across ranges answers
// before its intent in the other range is resolved. The DB's next
// transaction reads that intent as the commit's value without a push (the
// intent is still there after the read) and writes over it; another DB
// settles the newer one through its record; the resolver, once it runs,
// clears what is left, records included.
func TestCommitsResolveAfterTheyAnswer(t *testing.T) {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	db := c.db(0, "owner")
	// The resolver held back: its queue exists, and no task reads it.
	db.resolutions = kernel.NewMailbox[*resolution](db.rt, "held resolutions", db.opts.PendingResolutions)
	write := func(v string) {
		t.Helper()
		err := db.Txn(ctx, func(tx *Tx) error {
			for _, k := range []string{"b", "x"} {
				if err := tx.Put(ctx, []byte(k), []byte(v)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	write("1")
	first := c.intentOn(0, "x")
	if first == nil {
		t.Fatal("x's intent was resolved before the commit answered")
	}
	err := db.Txn(ctx, func(tx *Tx) error {
		v, found, err := tx.Get(ctx, []byte("x"))
		if err != nil || !found || string(v) != "1" {
			return fmt.Errorf("x read after its commit = %q, %t, %v; want 1", v, found, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if in := c.intentOn(0, "x"); in == nil || in.Txn.ID != first.Txn.ID {
		t.Fatalf("the DB's own read settled x's intent (%+v): it pushed instead of reading it as committed", in)
	}
	write("2")
	v, found, err := c.db(1, "other").Get(ctx, []byte("x"))
	if err != nil || !found || string(v) != "2" {
		t.Fatalf("another DB read x = %q, %t, %v; want 2", v, found, err)
	}
	db.rt.Go("txn resolver", db.resolver)
	deadline := time.Now().Add(10 * time.Second)
	for db.pending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := db.pending.Load(); left > 0 {
		t.Fatalf("%d commits still settling after 10 s", left)
	}
	for i := range 3 {
		if in := c.intentOn(i, "x"); in != nil {
			t.Fatalf("node %d: x still holds an intent after the resolver ran: %+v", i+1, in)
		}
	}
	// Two versions of b and of x, and nothing else: no intent, no record.
	if keys := c.storedKeys(0); len(keys) != 4 {
		t.Fatalf("node 1 keeps %d keys after the resolver ran, want 4 versions: %s", len(keys), keys)
	}
}

// TestAnAbortedCommitIsNotTakenForFinal: a transaction whose record was
// aborted (by a pusher) before its commit arrived fails its commit, and
// the DB's next read does not take its intents for committed values: the
// DB carries only outcomes its records answered (finalized-before-decision
// planted: txn's TestFinalizedMutation).
func TestAnAbortedCommitIsNotTakenForFinal(t *testing.T) {
	if msg := abortedCommitTakenForFinal(t); msg != "" {
		t.Fatal(msg)
	}
}

// abortedCommitTakenForFinal says what went wrong, or "".
func abortedCommitTakenForFinal(t *testing.T) string {
	c := newTestCluster(t, Options{})
	ctx := testContext(t)
	db := c.db(0, "owner")
	tx := db.Begin()
	for _, k := range []string{"b", "x"} {
		if err := tx.Put(ctx, []byte(k), []byte("aborted")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Scan(ctx, nil, nil, 10); err != nil { // the writes become intents
		t.Fatal(err)
	}
	meta := tx.c.meta()
	other := c.db(1, "pusher")
	res, err := other.send(ctx, other.cl, tx.c.anchor, &command{op: opEnd, key: tx.c.anchor, txn: &meta, commit: false})
	if err != nil || res.status != statusAborted {
		t.Fatalf("aborting the record from another node: %+v, %v", res, err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, ErrRetry) {
		return fmt.Sprintf("the commit of an aborted record answered %v, want a retry", err)
	}
	for _, k := range []string{"b", "x"} {
		if v, found, err := db.Get(ctx, []byte(k)); err != nil || found {
			return fmt.Sprintf("after the aborted commit, the DB read %s = %q, %t, %v; want nothing", k, v, found, err)
		}
	}
	return ""
}

// flush writes tx's buffered writes as intents now: a transaction's
// intents left behind.
func (tx *Tx) flush(ctx context.Context) error { return tx.drive(ctx, tx.c.flushWrites()) }

// end leaves tx as a coordinator gone would: no more heartbeats, no
// decision.
func (tx *Tx) end() {
	tx.c.end()
	if tx.stopBeating != nil {
		tx.stopBeating()
	}
}
