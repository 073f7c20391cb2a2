package session_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/node"
	"github.com/orbitkernel/orbit/kernel/prod"
	"github.com/orbitkernel/orbit/storage"
)

// startNode is a single Redis node as orbit serve builds it, ready.
func startNode(t *testing.T) *session.Server {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	eng, err := storage.Open(vfs.NewMem(), "/n", storage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rt := prod.New(prod.Options{NodeID: 1, Logger: quiet})
	rec := cluster.Record{ClusterID: 1, Ranges: 1, Replicas: 1, Initial: []kernel.NodeID{1},
		Nodes: map[kernel.NodeID]cluster.NodeEntry{1: {Version: 1}}}
	layout, err := node.RecordLayout(rec)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := node.Open(rt, node.Options{Engine: eng, Layout: layout, Record: rec, Logger: quiet,
		Cluster: cluster.Options{Standalone: true}, Redis: &session.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	nd.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = nd.Close(ctx)
		rt.Stop()
		_ = eng.Close()
	})
	for deadline := time.Now().Add(20 * time.Second); !nd.Redis.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node never became ready")
		}
	}
	return nd.Redis
}

// blockedDo runs a command that should block on its own connection and
// returns its reply once it has, after waiting for the server to report a
// blocked client and running then.
func blockedDo(t *testing.T, s *session.Server, args []string, then func()) redis.Reply {
	t.Helper()
	conn := s.NewConn("blocked", nil)
	defer conn.Close()
	done := make(chan redis.Reply, 1)
	go func() { done <- do(t, conn, args...) }()
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Blocked == 0; time.Sleep(time.Millisecond) {
		select {
		case r := <-done:
			t.Fatalf("%q did not block: %s", args, r)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never blocked", args)
		}
	}
	then()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%q still blocked", args)
	}
	return redis.Reply{}
}

// TestXReadBlock: XREAD and XREADGROUP with BLOCK wait through the session
// layer's blocking machinery: "$" means the last ID when the command
// came (a later XADD wakes it, and it gets that entry only), ">" the
// group's, BLOCK times out with a null array, and inside MULTI nothing
// blocks.
func TestXReadBlock(t *testing.T) {
	s := startNode(t)
	c := s.NewConn("writer", nil)
	defer c.Close()
	want := func(r redis.Reply, resp2 string) {
		t.Helper()
		if got := string(redis.AppendRESP2(nil, r)); got != resp2 {
			t.Fatalf("got %q, want %q", got, resp2)
		}
	}
	want(do(t, c, "XADD", "s", "1-1", "f", "v"), "$3\r\n1-1\r\n")
	r := blockedDo(t, s, []string{"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}, func() {
		want(do(t, c, "XADD", "s", "1-2", "f", "w"), "$3\r\n1-2\r\n")
	})
	want(r, "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\nf\r\n$1\r\nw\r\n")
	// A key that does not exist yet, next to one that does.
	r = blockedDo(t, s, []string{"XREAD", "COUNT", "5", "BLOCK", "10000", "STREAMS", "s", "t", "$", "$"}, func() {
		want(do(t, c, "XADD", "t", "7-0", "g", "x"), "$3\r\n7-0\r\n")
	})
	want(r, "*1\r\n*2\r\n$1\r\nt\r\n*1\r\n*2\r\n$3\r\n7-0\r\n*2\r\n$1\r\ng\r\n$1\r\nx\r\n")
	// Served at once when there is something after the ID.
	want(do(t, c, "XREAD", "BLOCK", "0", "STREAMS", "s", "1-1"), "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\nf\r\n$1\r\nw\r\n")
	// BLOCK times out.
	began := time.Now()
	want(do(t, c, "XREAD", "BLOCK", "50", "STREAMS", "s", "$"), "*-1\r\n")
	if waited := time.Since(began); waited < 50*time.Millisecond {
		t.Fatalf("BLOCK 50 returned after %v", waited)
	}
	// Errors come at once.
	want(do(t, c, "XREAD", "BLOCK", "-1", "STREAMS", "s", "$"), "-ERR timeout is negative\r\n")
	want(do(t, c, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"),
		"-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n")
	// XREADGROUP waits for an entry after the group's last ID.
	want(do(t, c, "XGROUP", "CREATE", "s", "g", "$"), "+OK\r\n")
	r = blockedDo(t, s, []string{"XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "s", ">"}, func() {
		want(do(t, c, "XADD", "s", "2-0", "f", "y"), "$3\r\n2-0\r\n")
	})
	want(r, "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nf\r\n$1\r\ny\r\n")
	want(do(t, c, "XPENDING", "s", "g"), "*4\r\n:1\r\n$3\r\n2-0\r\n$3\r\n2-0\r\n*1\r\n*2\r\n$5\r\nalice\r\n$1\r\n1\r\n")
	// Inside MULTI nothing blocks: a null array at once, as in Redis.
	want(do(t, c, "MULTI"), "+OK\r\n")
	want(do(t, c, "XREAD", "BLOCK", "0", "STREAMS", "s", "$"), "+QUEUED\r\n")
	want(do(t, c, "XREADGROUP", "GROUP", "g", "bob", "BLOCK", "0", "STREAMS", "s", ">"), "+QUEUED\r\n")
	want(do(t, c, "EXEC"), "*2\r\n*-1\r\n*-1\r\n")
}
