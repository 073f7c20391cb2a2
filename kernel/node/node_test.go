package node

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/prod"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// TestOpenStartsARedisNode builds a single Redis node as orbit serve does:
// it becomes ready (every range served a write), the caller's hooks run
// before the Redis layer's, its wrapper is what the store runs, it runs
// transactions too, and it closes cleanly.
func TestOpenStartsARedisNode(t *testing.T) {
	rec := cluster.Record{ClusterID: 1, Ranges: 2, Replicas: 1, Initial: []kernel.NodeID{1},
		Nodes: map[kernel.NodeID]cluster.NodeEntry{1: {Version: 1}}}
	layout, err := RecordLayout(rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("orbit serve's layout", func(t *testing.T) { testRedisNode(t, rec, layout) })
	// A range that starts where the transactional keyspace does (0x40), as
	// a split may leave: the walks over the Redis ranges (start-up, KEYS,
	// DBSIZE) must stop before it. They went on into it, and start-up
	// never finished.
	split, err := consensus.NewLayout(append(redis.SlotSplits(2), txn.KeyspaceStart), rec.Initial, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a range at the transactional keyspace", func(t *testing.T) { testRedisNode(t, rec, split) })
}

// openNode opens a standalone node 1 on an in-memory engine with opts
// (engine, layout, record and logger filled in), starts it and waits until
// it is ready; the runtime and engine close when the test ends.
func openNode(t *testing.T, rec cluster.Record, layout consensus.Layout, opts Options) (*Node, *storage.Engine) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	eng, err := storage.Open(vfs.NewMem(), "/n", storage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	rt := prod.New(prod.Options{NodeID: 1, Logger: quiet})
	t.Cleanup(rt.Stop) // before the engine closes
	opts.Engine, opts.Layout, opts.Record, opts.Logger = eng, layout, rec, quiet
	opts.Cluster.Standalone = true
	nd, err := Open(rt, opts)
	if err != nil {
		t.Fatal(err)
	}
	nd.Start()
	for deadline := time.Now().Add(20 * time.Second); !nd.Redis.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node never became ready")
		}
	}
	return nd, eng
}

func testRedisNode(t *testing.T, rec cluster.Record, layout consensus.Layout) {
	won := make(chan storage.RangeID, 8)
	wrapped := false
	nd, _ := openNode(t, rec, layout, Options{
		Consensus: consensus.Options{BecameLeader: func(id storage.RangeID, _ uint64) { won <- id }},
		Redis:     &session.Options{},
		WrapRedis: func(sm *redis.StateMachine) consensus.StateMachine { wrapped = true; return sm },
	})
	if !wrapped {
		t.Fatal("the Redis state machine was not wrapped")
	}
	if len(won) != len(layout.Ranges()) {
		t.Fatalf("the caller's BecameLeader heard %d elections, want one per range (%d)", len(won), len(layout.Ranges()))
	}
	if got := len(nd.Redis.Leading()); got != len(layout.Ranges()) {
		t.Fatalf("the Redis layer leads %d ranges, want %d (its hook chained after the caller's)", got, len(layout.Ranges()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := nd.Redis.NewConn("test", func(redis.Reply) {})
	for _, cmd := range [][]string{{"set", "a", "1"}, {"set", "b", "2"}, {"dbsize"}, {"keys", "*"}} {
		args := make([][]byte, len(cmd))
		for i, a := range cmd {
			args[i] = []byte(a)
		}
		replies, _ := conn.Do(ctx, args)
		if len(replies) != 1 || replies[0].Kind == redis.KindError {
			t.Fatalf("%q: %v", cmd, replies)
		}
		if cmd[0] == "dbsize" && replies[0].Int != 2 {
			t.Fatalf("DBSIZE = %d, want 2", replies[0].Int)
		}
	}
	// The node hosts the transactional keyspace next to Redis's.
	db, err := nd.NewDB("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Txn(ctx, func(tx *txn.Tx) error { return tx.Put(ctx, []byte("k"), []byte("v")) }); err != nil {
		t.Fatalf("a transaction on the node: %v", err)
	}
	if v, found, err := db.Get(ctx, []byte("k")); err != nil || !found || string(v) != "v" {
		t.Fatalf("k after the transaction = %q, %t, %v", v, found, err)
	}
	if err := nd.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nd.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsValidate(t *testing.T) {
	eng := &storage.Engine{}
	layout, err := consensus.NewLayout(nil, []kernel.NodeID{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{
		{Layout: layout},
		{Engine: eng},
		{Engine: eng, Layout: layout, WrapRedis: func(*redis.StateMachine) consensus.StateMachine { return nil }},
	} {
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
}

// TestDeadCoordinatorsAreCleanedUp: a cross-range transaction whose
// coordinator vanished holding a lock on a key nobody touches again has
// that lock settled by the lock sweeper (as aborted: nothing decided),
// and the decision the settling wrote is collected once older than
// DecisionTTL.
func TestDeadCoordinatorsAreCleanedUp(t *testing.T) {
	rec := cluster.Record{ClusterID: 1, Ranges: 2, Replicas: 1, Initial: []kernel.NodeID{1},
		Nodes: map[kernel.NodeID]cluster.NodeEntry{1: {Version: 1}}}
	layout, err := RecordLayout(rec)
	if err != nil {
		t.Fatal(err)
	}
	nd, eng := openNode(t, rec, layout, Options{
		Redis: &session.Options{LockTimeout: 50 * time.Millisecond, LockSweepPeriod: 50 * time.Millisecond,
			CommandTimeout: time.Second, DecisionTTL: 4 * time.Second, DecisionGCInterval: 100 * time.Millisecond},
	})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = nd.Close(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The lock step of a transaction whose coordinator is gone.
	id := redis.TxnID{7, 7, 7}
	rk := redis.RawRouteKey(0, []byte("orphan"))
	cl := consensus.NewClient(nd.Router, "test")
	if _, err := cl.Command(ctx, rk, redis.LockCommand(id, [][]byte{rk})); err != nil {
		t.Fatal(err)
	}
	db, err := nd.NewDB("test")
	if err != nil {
		t.Fatal(err)
	}
	decision := append([]byte("redis/decision/"), id[:]...)
	waitFor := func(what string, done func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !done() {
			if ctx.Err() != nil {
				t.Fatalf("%s: not within 30 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	took := waitFor("the orphaned lock settled", func() bool {
		kvs, _, err := eng.Scan(nil, redis.KeyspaceEnd, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if redis.IsLockKey(kv.Key) {
				return false
			}
		}
		return true
	})
	t.Logf("lock settled after %v", took)
	if _, found, err := db.Get(ctx, decision); err != nil || !found {
		t.Fatalf("the settler's decision: found %t, %v", found, err)
	}
	took = waitFor("the decision collected", func() bool {
		_, found, err := db.Get(ctx, decision)
		return err == nil && !found
	})
	t.Logf("decision collected %v later (DecisionTTL 4 s)", took)
}
