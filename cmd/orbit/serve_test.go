package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// startServer runs `orbit serve` in-process on free ports with a fresh data
// directory, waits for /readyz, and stops it (and checks the graceful
// shutdown returned no error) when the test ends.
func startServer(t testing.TB, ranges int) (redisAddr string) {
	t.Helper()
	redisAddr, _ = startServerHTTP(t, ranges)
	return redisAddr
}

// startServerHTTP is startServer that also returns the HTTP address.
func startServerHTTP(t testing.TB, ranges int) (redisAddr, httpAddr string) {
	t.Helper()
	return startServerWith(t, serveConfig{ranges: ranges})
}

// startServerWith is startServerHTTP with cfg's settings (node ID, data
// directory and addresses are filled in).
// launchServer runs orbit serve in-process with cfg until the test ends,
// and returns its RESP, HTTP and PostgreSQL addresses once it listens
// (the last "" unless cfg.pgAddr is set), and a channel closed when it
// exits.
func launchServer(t testing.TB, cfg serveConfig) (addrs [3]string, exited <-chan struct{}) {
	t.Helper()
	b, exited := launchServerAddrs(t, cfg)
	return [3]string{b.redis, b.http, b.pg}, exited
}

// launchServerAddrs is launchServer with every bound address.
func launchServerAddrs(t testing.TB, cfg serveConfig) (addrs boundAddrs, exited <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan boundAddrs, 1)
	done := make(chan error, 1)
	gone := make(chan struct{})
	go func() {
		done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), func(b boundAddrs) { listening <- b })
		close(gone)
	}()
	select {
	case addrs = <-listening:
	case err := <-done:
		cancel()
		t.Fatalf("orbit serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return addrs, gone
}

func startServerWith(t testing.TB, cfg serveConfig) (redisAddr, httpAddr string) {
	t.Helper()
	cfg.nodeID, cfg.dataDir, cfg.redisAddr, cfg.httpAddr = 1, filepath.Join(t.TempDir(), "data"), "127.0.0.1:0", "127.0.0.1:0"
	a, _ := launchServer(t, cfg)
	waitReady(t, a[1])
	return a[0], a[1]
}

// TestMetricsShowLeasedReads: GETs on a single node are served under the
// leader's lease, and /metrics counts them; no peer clock is fenced.
func TestMetricsShowLeasedReads(t *testing.T) {
	addr, httpAddr := startServerHTTP(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Fatalf("GET k = %q, %v", v, err)
		}
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var leased float64
	fenced := -1.0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "orbit_raft_leased_reads_total ") {
			fmt.Sscan(strings.TrimPrefix(line, "orbit_raft_leased_reads_total "), &leased)
		}
		if strings.HasPrefix(line, "orbit_clock_rate_fenced_peers ") {
			fmt.Sscan(strings.TrimPrefix(line, "orbit_clock_rate_fenced_peers "), &fenced)
		}
	}
	// A single node: itself alive in its directory, nothing rebalanced.
	for _, want := range []string{`orbit_cluster_nodes{state="alive"} 1`, `orbit_cluster_nodes{state="dead"} 0`, "orbit_cluster_changes_total 0", `orbit_consensus_handover_summaries_total{event="proposed"} 0`} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The SET was synced to the log: the disk's latency is there.
	if !strings.Contains(string(body), "orbit_raft_sync_duration_seconds_count ") || strings.Contains(string(body), "orbit_raft_sync_duration_seconds_count 0\n") {
		t.Errorf("/metrics has no synced write in orbit_raft_sync_duration_seconds")
	}
	// The first GET takes a ReadIndex round that confirms the lease.
	if leased < 90 || fenced != 0 {
		t.Fatalf("leased reads %v (want at least 90 of 100 GETs), fenced peers %v (want 0)", leased, fenced)
	}
}

func waitReady(t testing.TB, httpAddr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("/readyz never said ready")
}

// TestServeWithGoRedis drives the server with go-redis (RESP3 by default)
// across the data types, expiry, transactions, SCAN, pub/sub and blocking
// pops, over several ranges.
func TestServeWithGoRedis(t *testing.T) {
	addr := startServer(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	eq := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}

	// Strings and counters.
	must(rdb.Set(ctx, "s", "hello", 0).Err())
	v, err := rdb.Get(ctx, "s").Result()
	must(err)
	eq("GET s", v, "hello")
	n, err := rdb.Incr(ctx, "counter").Result()
	must(err)
	eq("INCR", n, 1)
	_, err = rdb.Get(ctx, "missing").Result()
	if !errors.Is(err, goredis.Nil) {
		t.Fatalf("GET missing: %v", err)
	}
	if err := rdb.LPush(ctx, "s", "x").Err(); err == nil || err.Error() != "WRONGTYPE Operation against a key holding the wrong kind of value" {
		t.Fatalf("LPUSH on a string: %v", err)
	}
	// Keys sharing a tag share a range; others may not.
	must(rdb.MSet(ctx, "{u}a", "1", "{u}b", "2").Err())
	vals, err := rdb.MGet(ctx, "{u}a", "{u}b").Result()
	must(err)
	eq("MGET", vals, []any{"1", "2"})
	// Keys in different ranges run together too, as one transaction.
	for i := range 8 {
		b := fmt.Sprintf("b%d", i)
		must(rdb.MSet(ctx, "a", fmt.Sprint(i), b, fmt.Sprint(i)).Err())
		vals, err := rdb.MGet(ctx, "a", b).Result()
		must(err)
		eq("MGET across ranges", vals, []any{fmt.Sprint(i), fmt.Sprint(i)})
	}
	must(rdb.Rename(ctx, "a", "b0").Err())
	vals, err = rdb.MGet(ctx, "a", "b0").Result()
	must(err)
	eq("MGET after RENAME", vals, []any{nil, "7"})

	// CONFIG: fixed parameters; setting one to its value is a no-op.
	cfg, err := rdb.ConfigGet(ctx, "appendfsync").Result()
	must(err)
	eq("CONFIG GET appendfsync", cfg["appendfsync"], "always")
	must(rdb.ConfigSet(ctx, "save", "").Err())
	must(rdb.Do(ctx, "CONFIG", "SET", "appendonly", "yes", "appendfsync", "always").Err())
	if err := rdb.ConfigSet(ctx, "appendonly", "no").Err(); err == nil || err.Error() != "ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config" {
		t.Fatalf("CONFIG SET appendonly no: %v", err)
	}
	if err := rdb.ConfigSet(ctx, "no-such-thing", "1").Err(); err == nil || err.Error() != "ERR Unknown option or number of arguments for CONFIG SET - 'no-such-thing'" {
		t.Fatalf("CONFIG SET of an unknown parameter: %v", err)
	}

	// Hashes, lists, sets, sorted sets.
	must(rdb.HSet(ctx, "h", "f1", "v1", "f2", "v2").Err())
	hv, err := rdb.HGetAll(ctx, "h").Result()
	must(err)
	eq("HGETALL", hv, map[string]string{"f1": "v1", "f2": "v2"})
	must(rdb.RPush(ctx, "l", "a", "b", "c").Err())
	lv, err := rdb.LRange(ctx, "l", 0, -1).Result()
	must(err)
	eq("LRANGE", lv, []string{"a", "b", "c"})
	must(rdb.SAdd(ctx, "set", "x", "y").Err())
	sv, err := rdb.SMembers(ctx, "set").Result()
	must(err)
	eq("SMEMBERS", sv, []string{"x", "y"})
	must(rdb.ZAdd(ctx, "z", goredis.Z{Score: 2, Member: "b"}, goredis.Z{Score: 1, Member: "a"}).Err())
	zv, err := rdb.ZRangeWithScores(ctx, "z", 0, -1).Result()
	must(err)
	eq("ZRANGE WITHSCORES", zv, []goredis.Z{{Score: 1, Member: "a"}, {Score: 2, Member: "b"}})

	// Expiry: lazily invisible, then actively swept.
	must(rdb.Set(ctx, "gone", "v", 50*time.Millisecond).Err())
	ttl, err := rdb.PTTL(ctx, "gone").Result()
	must(err)
	if ttl <= 0 || ttl > 50*time.Millisecond {
		t.Fatalf("PTTL = %v", ttl)
	}
	time.Sleep(300 * time.Millisecond)
	if n, _ := rdb.Exists(ctx, "gone").Result(); n != 0 {
		t.Fatal("expired key still exists")
	}

	// MULTI/EXEC, and WATCH aborting on a change.
	cmds, err := rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Incr(ctx, "{t}n")
		p.Incr(ctx, "{t}n")
		p.Get(ctx, "{t}n")
		return nil
	})
	must(err)
	eq("EXEC GET", cmds[2].(*goredis.StringCmd).Val(), "2")
	other := goredis.NewClient(&goredis.Options{Addr: addr})
	defer other.Close()
	err = rdb.Watch(ctx, func(tx *goredis.Tx) error {
		must(other.Set(ctx, "{t}n", "changed", 0).Err())
		_, err := tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, "{t}n", "mine", 0)
			return nil
		})
		return err
	}, "{t}n")
	if !errors.Is(err, goredis.TxFailedErr) {
		t.Fatalf("WATCH after a change: %v", err)
	}

	// SCAN across every range returns every key once.
	want := map[string]bool{}
	for i := range 40 {
		k := fmt.Sprintf("scan:%d", i)
		want[k] = true
		must(rdb.Set(ctx, k, "v", 0).Err())
	}
	got := map[string]bool{}
	iter := rdb.Scan(ctx, 0, "scan:*", 7).Iterator()
	for iter.Next(ctx) {
		got[iter.Val()] = true
	}
	must(iter.Err())
	eq("SCAN keys", len(got), len(want))
	size, err := rdb.DBSize(ctx).Result()
	must(err)
	if size < 40 {
		t.Fatalf("DBSIZE = %d", size)
	}

	// Pub/sub.
	sub := other.Subscribe(ctx, "news")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	receivers, err := rdb.Publish(ctx, "news", "hi").Result()
	must(err)
	eq("PUBLISH receivers", receivers, 1)
	msg, err := sub.ReceiveMessage(ctx)
	must(err)
	eq("message", msg.Payload, "hi")

	// Blocking pop: a timeout, then a push from another client wakes it.
	_, err = rdb.BLPop(ctx, 100*time.Millisecond, "queue").Result()
	if !errors.Is(err, goredis.Nil) {
		t.Fatalf("BLPOP timeout: %v", err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = other.RPush(ctx, "queue", "job").Err()
	}()
	start := time.Now()
	popped, err := rdb.BLPop(ctx, 5*time.Second, "queue").Result()
	must(err)
	eq("BLPOP", popped, []string{"queue", "job"})
	if time.Since(start) > 2*time.Second {
		t.Fatalf("BLPOP took %v", time.Since(start))
	}

	// Connection commands.
	eq("PING", rdb.Ping(ctx).Val(), "PONG")
	must(rdb.Do(ctx, "CLIENT", "SETNAME", "tester").Err())
	name, err := rdb.Do(ctx, "CLIENT", "GETNAME").Text()
	must(err)
	eq("CLIENT GETNAME", name, "tester")
	info, err := rdb.Info(ctx, "replication").Result()
	must(err)
	if !regexp.MustCompile(`range_4:slots=12288-16383`).MatchString(info) {
		t.Fatalf("INFO replication:\n%s", info)
	}
	must(rdb.FlushDB(ctx).Err())
	size, err = rdb.DBSize(ctx).Result()
	must(err)
	eq("DBSIZE after FLUSHDB", size, 0)
}

// TestServeErrorsAreOneLine checks the single-line errors of bad flags, a
// busy port and a data directory of another node.
func TestServeErrorsAreOneLine(t *testing.T) {
	var out syncBuffer
	if code := serve([]string{"--bogus"}, &out); code != 2 || out.String() != "orbit serve: flag provided but not defined: -bogus\n" {
		t.Fatalf("bad flag: %d %q", code, out.String())
	}
	for _, bad := range []struct{ args, want string }{
		{"--dead-after=2s", "orbit serve: --rebalance-interval must not be negative (0: never) and --dead-after at least 6s\n"},
		{"--rebalance-interval=-1s", "orbit serve: --rebalance-interval must not be negative (0: never) and --dead-after at least 6s\n"},
		{"--split-qps=-2", "orbit serve: --split-qps must be -1 (the default), 0 (never) or a rate\n"},
	} {
		out = syncBuffer{}
		if code := serve([]string{bad.args}, &out); code != 2 || out.String() != bad.want {
			t.Fatalf("%s: %d %q", bad.args, code, out.String())
		}
	}
	addr := startServer(t, 1)
	cfg := serveConfig{nodeID: 1, dataDir: t.TempDir(), redisAddr: addr, httpAddr: "127.0.0.1:0", ranges: 1}
	err := runServer(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil || err.Error() != "listen "+addr+": address already in use" {
		t.Fatalf("busy port: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "d")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start, claim the directory, stop at once
	cfg = serveConfig{nodeID: 1, dataDir: dir, redisAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", ranges: 1}
	if err := runServer(ctx, cfg, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatal(err)
	}
	cfg.nodeID = 2
	err = runServer(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil || !regexp.MustCompile(`^data directory .* belongs to node 1 of cluster [0-9a-f]+, not node 2$`).MatchString(err.Error()) {
		t.Fatalf("foreign data directory: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// TestKill9LosesNothingAcknowledged builds the binary, writes from several
// clients, kills the server with SIGKILL mid-writes, restarts it on the same
// data directory and requires every acknowledged write.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "orbit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(bin, "serve", "--data-dir", data, "--redis-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0", "--ranges", "2")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		listening := regexp.MustCompile(`redis=(\S+) http=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				go func() { _, _ = io.Copy(io.Discard, stderr) }()
				waitReady(t, m[2])
				return cmd, m[1]
			}
		}
		t.Fatalf("orbit serve never said it listens")
		return nil, ""
	}
	cmd, addr := start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, PoolSize: 8})
	var mu sync.Mutex
	acked := map[string]string{}
	var counterAcked int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				k, v := fmt.Sprintf("w%d:%d", w, i), strconv.Itoa(i)
				if err := rdb.Set(ctx, k, v, 0).Err(); err != nil {
					return // the server died
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
				if w == 0 {
					n, err := rdb.Incr(ctx, "counter").Result()
					if err != nil {
						return
					}
					mu.Lock()
					counterAcked = n
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	wg.Wait()
	rdb.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged before the kill", len(acked))
	}

	_, addr = start()
	rdb = goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	missing := 0
	for k, v := range acked {
		got, err := rdb.Get(ctx, k).Result()
		if err != nil || got != v {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged %s=%s, after restart: %q %v", k, v, got, err)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", missing, len(acked))
	}
	n, err := rdb.Get(ctx, "counter").Int64()
	if err != nil || n < counterAcked {
		t.Fatalf("counter = %d (%v), acknowledged %d", n, err, counterAcked)
	}
	t.Logf("%d acknowledged writes survived kill -9", len(acked))
}

// TestBadInputClosesOnlyThatConnection sends malformed and oversized
// requests: each gets Redis's protocol error and its connection closes,
// while commands before the bad request ran and another client carries on.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	addr := startServer(t, 1)
	good := dialRESP(t, addr)
	for input, want := range map[string]string{
		"*1\r\n$4\r\nPING\r\n*1\r\n$999999999999\r\n": "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n",
		"*99999999999\r\n":                            "-ERR Protocol error: invalid multibulk length\r\n",
		"*1\r\n+PING\r\n":                             "-ERR Protocol error: expected '$', got '+'\r\n",
		"PING \"a\r\n":                                "-ERR Protocol error: unbalanced quotes in request\r\n",
		strings.Repeat("x", 70<<10):                   "-ERR Protocol error: too big inline request\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(input)); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c) // until the server closes the connection
		c.Close()
		if err != nil || string(got) != want {
			t.Errorf("%.40q: got %q (%v), want %q", input, got, err, want)
		}
		if r, err := good.do("PING"); err != nil || string(r) != "+PONG\r\n" {
			t.Fatalf("the other connection: %q %v", r, err)
		}
	}
}

// TestPipelineOrder sends pipelines mixing independent commands (which run
// concurrently) with commands on common keys and connection commands, and
// requires every reply in order, as if run one by one.
func TestPipelineOrder(t *testing.T) {
	addr := startServer(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	for round := range 3 {
		p := rdb.Pipeline()
		var sets, gets, incrs []goredis.Cmder
		for i := range 100 {
			sets = append(sets, p.Set(ctx, fmt.Sprintf("p%d", i), fmt.Sprint(i+round), 0))
			incrs = append(incrs, p.Incr(ctx, "pc"))
		}
		p.Ping(ctx)
		for i := range 100 {
			gets = append(gets, p.Get(ctx, fmt.Sprintf("p%d", i)))
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			if err := sets[i].Err(); err != nil {
				t.Fatal(err)
			}
			if got := gets[i].(*goredis.StringCmd).Val(); got != fmt.Sprint(i+round) {
				t.Fatalf("round %d: GET p%d = %q, want %d", round, i, got, i+round)
			}
			if got, want := incrs[i].(*goredis.IntCmd).Val(), int64(round*100+i+1); got != want {
				t.Fatalf("round %d: INCR #%d = %d, want %d", round, i, got, want)
			}
		}
	}
}

// TestServeScripts: go-redis's scripting helpers against orbit serve on
// four ranges: Script.Run (EVALSHA, then EVAL after NOSCRIPT), SCRIPT LOAD
// and EXISTS, EVALSHA after a load, SCRIPT FLUSH; and a script whose keys
// lie in two ranges, which runs atomically as a cross-range transaction.
func TestServeScripts(t *testing.T) {
	addr := startServer(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	incrBy := goredis.NewScript(`return redis.call('incrby', KEYS[1], ARGV[1])`)
	for i, want := range []int64{5, 10} {
		n, err := incrBy.Run(ctx, rdb, []string{"counter"}, 5).Int64()
		if err != nil || n != want {
			t.Fatalf("run %d: %d, %v; want %d", i, n, err, want)
		}
	}
	exists, err := rdb.ScriptExists(ctx, incrBy.Hash(), "0000000000000000000000000000000000000000").Result()
	if err != nil || fmt.Sprint(exists) != "[true false]" {
		t.Fatalf("SCRIPT EXISTS: %v, %v", exists, err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.EvalSha(ctx, incrBy.Hash(), []string{"counter"}, 1).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		t.Fatalf("EVALSHA after SCRIPT FLUSH: %v", err)
	}
	sha, err := rdb.ScriptLoad(ctx, `return redis.call('get', KEYS[1])`).Result()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.EvalSha(ctx, sha, []string{"counter"}).Result(); err != nil || v != "10" {
		t.Fatalf("EVALSHA after SCRIPT LOAD: %v, %v", v, err)
	}
	if err := rdb.ScriptLoad(ctx, `return (`).Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR Error compiling script") {
		t.Fatalf("SCRIPT LOAD of a broken script: %v", err)
	}
	// A transfer between keys in different ranges (four ranges: some of
	// these pairs must be apart), many at once: the total stays.
	transfer := goredis.NewScript(`
		local from = tonumber(redis.call('get', KEYS[1]) or '100')
		local to = tonumber(redis.call('get', KEYS[2]) or '100')
		redis.call('set', KEYS[1], from - ARGV[1])
		redis.call('set', KEYS[2], to + ARGV[1])
		return from - ARGV[1]`)
	accounts := []string{"acct-a", "acct-b", "acct-c", "acct-d", "acct-e", "acct-f"}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				from, to := accounts[(w+i)%len(accounts)], accounts[(w+2*i+1)%len(accounts)]
				if from == to {
					continue
				}
				if err := transfer.Run(ctx, rdb, []string{from, to}, 1+i%5).Err(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	vals, err := rdb.MGet(ctx, accounts...).Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, v := range vals {
		n := 100
		if v != nil {
			n, _ = strconv.Atoi(v.(string))
		}
		total += n
		t.Logf("%s = %d", accounts[i], n)
	}
	if total != 100*len(accounts) {
		t.Fatalf("total %d after the transfers, want %d", total, 100*len(accounts))
	}
}
