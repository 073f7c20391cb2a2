package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/internal/freeport"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/node"
)

// testNode is one `orbit serve` process of a test cluster.
type testNode struct {
	id                         int
	dir                        string
	redisAddr, httpAddr, peers string
	pgAddr                     string // "" for any free port
	grpcAddr                   string // the actor service's; "" for none
	logPath                    string
	extra                      []string // more flags (--join, --peer-addr)
	cmd                        *exec.Cmd
	exited                     chan struct{}
}

func freePort(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func buildOrbit(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orbit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (n *testNode) start(t testing.TB, bin string) {
	t.Helper()
	log, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	pgAddr := n.pgAddr
	if pgAddr == "" {
		pgAddr = "127.0.0.1:0"
	}
	args := []string{"serve", "--node-id", strconv.Itoa(n.id), "--data-dir", n.dir, "--redis-addr", n.redisAddr, "--http-addr", n.httpAddr, "--pg-addr", pgAddr}
	if n.grpcAddr != "" {
		args = append(args, "--grpc-addr", n.grpcAddr)
	}
	if n.peers != "" {
		args = append(args, "--peers", n.peers)
	}
	n.cmd = exec.Command(bin, append(args, n.extra...)...)
	n.cmd.Stderr = log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		log.Close()
		close(exited)
	}(n.cmd, n.exited)
}

func (n *testNode) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// waitNodeReady polls /readyz until it answers 200 (every range has a
// leader that serves a linearizable read).
func waitNodeReady(t testing.TB, n *testNode, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			t.Fatalf("node %d exited; log:\n%s", n.id, readLog(n))
		default:
		}
		resp, err := http.Get("http://" + n.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node %d: /readyz never said ready in %v; log:\n%s", n.id, d, readLog(n))
}

func readLog(n *testNode) string {
	b, _ := os.ReadFile(n.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

var rangeLineRE = regexp.MustCompile(`range_(\d+):slots=[^,]+,replicas=[^,]+,leader=([^,\r\n]+)(?:,term=\d+)?,applied_stamp_ms=(\d+)`)

// rangeState parses INFO replication: per range, whether this node leads
// it and the latest leader stamp it applied.
func rangeState(ctx context.Context, c *goredis.Client) (leads map[int]bool, stamps map[int]int64, err error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, nil, err
	}
	leads, stamps = map[int]bool{}, map[int]int64{}
	for _, m := range rangeLineRE.FindAllStringSubmatch(info, -1) {
		id, _ := strconv.Atoi(m[1])
		leads[id] = m[2] != "elsewhere_or_unknown"
		stamps[id], _ = strconv.ParseInt(m[3], 10, 64)
	}
	return leads, stamps, nil
}

// startCluster starts a cluster of n `orbit serve` processes, each on
// its own ports and data directory, and waits until every one is ready.
// Cleanup kills them (and logs their tails if the test failed).
func startCluster(t *testing.T, bin string, nodes int) []*testNode {
	t.Helper()
	return startClusterWith(t, bin, nodes)
}

// startClusterWith is startCluster with extra flags for every node.
func startClusterWith(t testing.TB, bin string, nodes int, extra ...string) []*testNode {
	t.Helper()
	var peerList []string
	ns := make([]*testNode, nodes)
	for i := range ns {
		dir := t.TempDir()
		ns[i] = &testNode{id: i + 1, dir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "log"),
			redisAddr: freePort(t), httpAddr: freePort(t), pgAddr: freePort(t), grpcAddr: freePort(t), extra: extra}
		peerList = append(peerList, fmt.Sprintf("%d=%s", i+1, freePort(t)))
	}
	for _, n := range ns {
		n.peers = strings.Join(peerList, ",")
		n.start(t, bin)
	}
	t.Cleanup(func() {
		for _, n := range ns {
			_ = n.cmd.Process.Signal(syscall.SIGKILL)
			<-n.exited
		}
		if t.Failed() {
			for _, n := range ns {
				t.Logf("node %d log (tail):\n%s", n.id, readLog(n))
			}
		}
	})
	for _, n := range ns {
		waitNodeReady(t, n, 30*time.Second)
	}
	return ns
}

// TestClusterPubSub runs a three-node cluster and requires a PUBLISH
// through one node to reach the subscribers of every node, of the channel
// and of a matching pattern, exactly once, with the receiving node's count
// as the reply (as Redis Cluster does).
func TestClusterPubSub(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	ns := startCluster(t, buildOrbit(t), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	clients := make([]*goredis.Client, len(ns))
	for i, n := range ns {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: n.redisAddr})
		defer clients[i].Close()
	}
	// subscribed returns a subscription confirmed by its node.
	subscribed := func(ps *goredis.PubSub) *goredis.PubSub {
		t.Helper()
		if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
			t.Fatalf("subscribing: %v", err)
		}
		t.Cleanup(func() { ps.Close() })
		return ps
	}
	local := subscribed(clients[0].Subscribe(ctx, "news"))   // node 1, where PUBLISH arrives
	remote := subscribed(clients[1].Subscribe(ctx, "news"))  // node 2
	pattern := subscribed(clients[2].PSubscribe(ctx, "ne*")) // node 3
	expect := func(ps *goredis.PubSub, who, pat, channel, payload string) {
		t.Helper()
		began := time.Now()
		got, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: no message in %v: %v", who, time.Since(began).Round(time.Millisecond), err)
		}
		m, ok := got.(*goredis.Message)
		if !ok || m.Pattern != pat || m.Channel != channel || m.Payload != payload {
			t.Fatalf("%s: got %#v, want pattern %q channel %q payload %q", who, got, pat, channel, payload)
		}
		t.Logf("%s received %q after %v", who, payload, time.Since(began).Round(time.Millisecond))
	}

	// Redis Cluster's reply: the clients of the receiving node only.
	if n, err := clients[0].Publish(ctx, "news", "hello").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH through node 1 = %d, %v; want 1 (its own subscriber)", n, err)
	}
	expect(local, "node 1 SUBSCRIBE", "", "news", "hello")
	expect(remote, "node 2 SUBSCRIBE", "", "news", "hello")
	expect(pattern, "node 3 PSUBSCRIBE", "ne*", "news", "hello")

	// The other way round, through node 3: a channel nobody follows
	// reaches nobody, and the next message each subscriber gets is the
	// second on "news" (no duplicate of the first).
	if n, err := clients[2].Publish(ctx, "other", "nobody").Result(); err != nil || n != 0 {
		t.Fatalf("PUBLISH other through node 3 = %d, %v; want 0", n, err)
	}
	if n, err := clients[2].Publish(ctx, "news", "again").Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH through node 3 = %d, %v; want 1 (its pattern subscriber)", n, err)
	}
	expect(local, "node 1 SUBSCRIBE", "", "news", "again")
	expect(remote, "node 2 SUBSCRIBE", "", "news", "again")
	expect(pattern, "node 3 PSUBSCRIBE", "ne*", "news", "again")
}

// TestClusterKillNode runs a three-node cluster of real processes, has
// clients write and read through every node, kills the leader of a range
// with SIGKILL while they work, restarts it, and requires: every
// acknowledged SET readable with its last acknowledged value or a later
// attempted one, reads never older than a write acknowledged before them,
// service on the surviving nodes within a bound after the kill, and the
// restarted node caught up on every range.
func TestClusterKillNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	bin := buildOrbit(t)
	const nodes, ranges = 3, 3
	ns := startCluster(t, bin, nodes)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	clients := make([]*goredis.Client, nodes)
	for i, n := range ns {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: n.redisAddr, MaxRetries: -1, PoolSize: 8,
			DialTimeout: time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 5 * time.Second})
		defer clients[i].Close()
	}

	// The victim: the leader of range 1, as INFO tells.
	victim := -1
	for deadline := time.Now().Add(10 * time.Second); victim < 0 && time.Now().Before(deadline); {
		for i, c := range clients {
			if leads, _, err := rangeState(ctx, c); err == nil && leads[1] {
				victim = i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if victim < 0 {
		t.Fatal("no node says it leads range 1")
	}
	t.Logf("killing node %d, the leader of range 1", ns[victim].id)

	// Writers own their keys and write increasing values to them; a failed
	// SET may or may not have happened, so a key's final value lies between
	// its last acknowledged value and its last attempted one.
	type keyState struct{ acked, attempted int64 }
	var mu sync.Mutex
	keys := map[string]*keyState{}
	var ackedTotal atomic.Int64
	var okAt [nodes]atomic.Int64 // unix nanos of each node's last success
	var okCount [nodes]atomic.Int64
	// slowest is the longest a successful SET took (nanos): how long a
	// client waited for a range to elect a new leader.
	var slowest atomic.Int64
	var violations []string
	fail := func(format string, args ...any) {
		mu.Lock()
		if len(violations) < 10 {
			violations = append(violations, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const writers, readers, keysPerWriter = 6, 3, 16
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := w % nodes
			for v := int64(1); ; v++ {
				select {
				case <-stop:
					return
				default:
				}
				if v%50 == 0 {
					node = (node + 1) % nodes // spread over every node, the restarted one too
				}
				k := fmt.Sprintf("w%d:%d", w, v%keysPerWriter)
				mu.Lock()
				ks := keys[k]
				if ks == nil {
					ks = &keyState{}
					keys[k] = ks
				}
				ks.attempted = v
				mu.Unlock()
				began := time.Now()
				if err := clients[node].Set(ctx, k, v, 0).Err(); err != nil {
					node = (node + 1) % nodes // that node is down or busy: try the next
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu.Lock()
				ks.acked = v
				mu.Unlock()
				ackedTotal.Add(1)
				if d := int64(time.Since(began)); d > slowest.Load() {
					slowest.Store(d) // racy max; good enough for a log line and a bound
				}
				okAt[node].Store(time.Now().UnixNano())
				okCount[node].Add(1)
			}
		}()
	}
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				node := (r + i) % nodes
				k := fmt.Sprintf("w%d:%d", i%writers, i%keysPerWriter)
				mu.Lock()
				var before int64
				if ks := keys[k]; ks != nil {
					before = ks.acked
				}
				mu.Unlock()
				got, err := clients[node].Get(ctx, k).Int64()
				if errors.Is(err, goredis.Nil) {
					got, err = 0, nil
				}
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				okAt[node].Store(time.Now().UnixNano())
				okCount[node].Add(1)
				if got < before {
					fail("GET %s through node %d = %d after %d was acknowledged", k, node+1, got, before)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	waitFor := func(what string, d time.Duration, cond func() bool) time.Duration {
		t.Helper()
		began := time.Now()
		for !cond() {
			if time.Since(began) > d {
				t.Fatalf("%s: not within %v", what, d)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(began)
	}
	waitFor("300 acknowledged writes before the kill", 20*time.Second, func() bool { return ackedTotal.Load() >= 300 })

	ns[victim].kill()
	killedAt := time.Now()
	ackedAtKill := ackedTotal.Load()
	// Every surviving node serves again within a bound, and writes go on.
	const serviceBound = 10 * time.Second
	for i := range ns {
		if i == victim {
			continue
		}
		took := waitFor(fmt.Sprintf("node %d serving after the kill", i+1), serviceBound, func() bool {
			return okAt[i].Load() > killedAt.UnixNano()+int64(100*time.Millisecond)
		})
		t.Logf("node %d served a command %v after the kill", i+1, took.Round(time.Millisecond))
	}
	waitFor("200 more acknowledged writes with a node down", 20*time.Second, func() bool { return ackedTotal.Load() >= ackedAtKill+200 })

	// redis-cli against a surviving node, while one is down.
	survivor := ns[(victim+1)%nodes]
	if _, err := exec.LookPath("redis-cli"); err == nil {
		host, port, _ := net.SplitHostPort(survivor.redisAddr)
		cli := func(args ...string) string {
			out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli %v: %v %s", args, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		if got := cli("SET", "cli-key", "cli-value"); got != "OK" {
			t.Fatalf("redis-cli SET: %q", got)
		}
		if got := cli("GET", "cli-key"); got != "cli-value" {
			t.Fatalf("redis-cli GET: %q", got)
		}
		if got := cli("INCR", "cli-counter"); got != "1" {
			t.Fatalf("redis-cli INCR: %q", got)
		}
	} else {
		t.Log("redis-cli not installed: skipping its part")
	}

	// Restart the victim; clients through it are served again.
	restartAt := time.Now()
	ns[victim].start(t, bin)
	waitNodeReady(t, ns[victim], 30*time.Second)
	t.Logf("node %d ready %v after its restart", ns[victim].id, time.Since(restartAt).Round(time.Millisecond))
	countAtRestart := okCount[victim].Load()
	waitFor("commands served through the restarted node", 20*time.Second, func() bool { return okCount[victim].Load() >= countAtRestart+50 })
	close(stop)
	wg.Wait()
	mu.Lock()
	if len(violations) > 0 {
		t.Fatalf("stale reads:\n%s", strings.Join(violations, "\n"))
	}
	mu.Unlock()

	// One more write to every range, then the restarted node must have
	// applied exactly what the others applied (equal leader stamps).
	layout, err := node.RecordLayout(cluster.Record{Ranges: ranges, Replicas: 3, Initial: []kernel.NodeID{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	marked := map[int]bool{}
	for i := 0; len(marked) < ranges; i++ {
		k := fmt.Sprintf("marker:%d", i)
		id := int(layout.Lookup(redis.RouteKey([]byte(k))).ID)
		if marked[id] {
			continue
		}
		if err := clients[(victim+1)%nodes].Set(ctx, k, "x", 0).Err(); err != nil {
			t.Fatalf("marker write: %v", err)
		}
		marked[id] = true
	}
	waitFor("the restarted node applying what the others applied, on every range", 20*time.Second, func() bool {
		var want map[int]int64
		for i, c := range clients {
			_, stamps, err := rangeState(ctx, c)
			if err != nil || len(stamps) != ranges {
				return false
			}
			if i == 0 {
				want = stamps
				continue
			}
			for id, s := range stamps {
				if s == 0 || s != want[id] {
					return false
				}
			}
		}
		return true
	})

	// Every acknowledged write, read through every node.
	mu.Lock()
	defer mu.Unlock()
	bad := 0
	for k, ks := range keys {
		for i, c := range clients {
			got, err := c.Get(ctx, k).Int64()
			if errors.Is(err, goredis.Nil) {
				got, err = 0, nil
			}
			if err != nil || got < ks.acked || got > ks.attempted {
				bad++
				if bad <= 5 {
					t.Errorf("%s through node %d = %d (%v); acknowledged %d, attempted up to %d", k, i+1, got, err, ks.acked, ks.attempted)
				}
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d reads of acknowledged writes wrong", bad)
	}
	var served [nodes]int64
	for i := range served {
		served[i] = okCount[i].Load()
	}
	if d := time.Duration(slowest.Load()); d > serviceBound {
		t.Errorf("a SET took %v, more than %v", d, serviceBound)
	}
	t.Logf("slowest acknowledged SET: %v", time.Duration(slowest.Load()).Round(time.Millisecond))
	t.Logf("%d acknowledged writes over %d keys (%d before the kill); commands served per node %v", ackedTotal.Load(), len(keys), ackedAtKill, served)
}

// TestClusterGracefulStopHandsOver: a node that stops on SIGTERM first
// hands the leadership of its ranges to the other voters, so their clients
// do not wait out an election timeout; writes to every range carry on.
func TestClusterGracefulStopHandsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	bin := buildOrbit(t)
	ns := startCluster(t, bin, 3)
	// The node leading the most ranges.
	var stopping *testNode
	most := 0
	for _, n := range ns {
		led := 0
		for _, r := range clusterView(t, n).Ranges {
			if r.Leader {
				led++
			}
		}
		if led > most {
			stopping, most = n, led
		}
	}
	if stopping == nil {
		t.Fatal("no node leads a range")
	}
	_ = stopping.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-stopping.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("node %d did not stop within 20s of SIGTERM", stopping.id)
	}
	log := readLog(stopping)
	if !strings.Contains(log, "leadership handed over") || strings.Contains(log, "still led here") {
		t.Fatalf("node %d led %d ranges and stopped without handing them all over; log:\n%s", stopping.id, most, log)
	}
	var other *testNode
	for _, n := range ns {
		if n != stopping {
			other = n
			break
		}
	}
	c := goredis.NewClient(&goredis.Options{Addr: other.redisAddr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 100 { // keys spread over every range
		if err := c.Set(ctx, fmt.Sprintf("after-stop-%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET after node %d stopped: %v", stopping.id, err)
		}
	}
}

// metricLine returns the value of the first line of n's /metrics that
// starts with name followed by a space ("" if none).
func metricLine(t *testing.T, n *testNode, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + n.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestClusterFencesAWrongClock: a node that starts with its clock 5 s
// ahead (no step for its clock to refuse) is fenced once its peers have
// measured it: /readyz says it is not ready, naming the clock; it
// coordinates no transaction (a cross-range MSET through it is answered
// TRYAGAIN, naming the clock; through another node it succeeds) and leads
// no range. When its clock is corrected it takes the correction (its
// peers confirm it), is ready, and serves again.
func TestClusterFencesAWrongClock(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	ns := startClusterWith(t, buildOrbit(t), 3, "--test-faults")
	bad := ns[2]
	bad.kill()
	bad.extra = append(bad.extra, "--test-clock-offset", "5s")
	bad.start(t, buildOrbit(t))
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 15s", what)
			}
		}
	}
	waitFor("node 3 not ready, naming its clock", func() bool {
		resp, err := http.Get("http://" + bad.httpAddr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "clock")
	})
	waitFor("node 3 fenced", func() bool { return metricLine(t, bad, "orbit_clock_offset_fenced") == "1" })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Keys in every range: the MSET is a transaction across ranges.
	var kv []any
	for i := range 16 {
		kv = append(kv, fmt.Sprintf("clock-%d", i), i)
	}
	through := func(n *testNode) error {
		c := goredis.NewClient(&goredis.Options{Addr: n.redisAddr, MaxRetries: -1})
		defer c.Close()
		return c.MSet(ctx, kv...).Err()
	}
	if err := through(bad); err == nil || !strings.HasPrefix(err.Error(), "TRYAGAIN") || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("MSET across ranges through the fenced node: %v, want TRYAGAIN naming the clock", err)
	}
	if err := through(ns[0]); err != nil {
		t.Fatalf("MSET across ranges through node 1: %v", err)
	}
	waitFor("node 3 leading nothing", func() bool {
		for _, r := range clusterView(t, bad).Ranges {
			if r.Leader {
				return false
			}
		}
		return true
	})
	resp, err := http.Post("http://"+bad.httpAddr+"/test/clock?offset=0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor("node 3 unfenced after the correction", func() bool { return metricLine(t, bad, "orbit_clock_offset_fenced") == "0" })
	waitNodeReady(t, bad, 30*time.Second)
	if err := through(bad); err != nil {
		t.Fatalf("MSET across ranges through node 3 once its clock is right: %v", err)
	}
	if !strings.Contains(readLog(bad), "taking the wall clock's step") {
		t.Fatalf("node 3's log does not say it took the correction:\n%s", readLog(bad))
	}
}
