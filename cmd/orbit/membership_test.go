package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// clusterView reads GET /cluster from n.
func clusterView(t *testing.T, n *testNode) clusterInfo {
	t.Helper()
	return clusterAt(t, n.httpAddr)
}

// clusterAt reads GET /cluster from the node at httpAddr.
func clusterAt(t *testing.T, httpAddr string) clusterInfo {
	t.Helper()
	info, err := fetchCluster(context.Background(), httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// waitReplicas waits until every range, as n sees it, has exactly the
// replicas want says (a function of the range's current replicas).
func waitReplicas(t *testing.T, n *testNode, what string, ok func(replicas []uint64) bool) clusterInfo {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		info := clusterView(t, n)
		good := len(info.Ranges) > 0
		for _, r := range info.Ranges {
			good = good && r.Replicas != nil && ok(r.Replicas)
		}
		if good {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened; /cluster says %+v\nlog of node %d:\n%s", what, info.Ranges, n.id, readLog(n))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitRemoved waits until n's /cluster marks node id removed.
func waitRemoved(t *testing.T, n *testNode, id int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info := clusterView(t, n)
		if info.Nodes[fmt.Sprint(id)].Removed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d's /cluster never marks node %d removed: %+v", n.id, id, info.Nodes)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterRemoveAndJoin removes a node from a three-node cluster with
// `orbit node remove`, wipes it and brings it back with --join (the
// Jepsen membership nemesis), then adds a fourth node, and moves every
// replica off node 1 onto it; keys written at each step stay readable
// from every node.
func TestClusterRemoveAndJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs four processes")
	}
	bin := buildOrbit(t)
	ns := startCluster(t, bin, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := func(n *testNode) *goredis.Client {
		c := goredis.NewClient(&goredis.Options{Addr: n.redisAddr, MaxRetries: -1, ReadTimeout: 15 * time.Second})
		t.Cleanup(func() { c.Close() })
		return c
	}
	written := 0
	write := func(via *testNode) {
		t.Helper()
		c := client(via)
		for range 30 {
			if err := c.Set(ctx, fmt.Sprintf("key-%d", written), written, 0).Err(); err != nil {
				t.Fatalf("SET through node %d: %v", via.id, err)
			}
			written++
		}
	}
	checkAll := func(via *testNode) {
		t.Helper()
		c := client(via)
		for i := range written {
			got, err := c.Get(ctx, fmt.Sprintf("key-%d", i)).Int()
			if err != nil || got != i {
				t.Fatalf("GET key-%d through node %d = %d, %v", i, via.id, got, err)
			}
		}
	}
	nodeRemove := func(id int, via *testNode) []byte {
		t.Helper()
		out, err := exec.Command(bin, "node", "remove", "--addr", via.httpAddr, fmt.Sprint(id)).CombinedOutput()
		if err != nil {
			t.Fatalf("orbit node remove %d: %v\n%s", id, err, out)
		}
		return out
	}
	write(ns[0])

	// With node 2 down, removing node 3 would leave each range two voters,
	// one of them down: refused, and nothing changes.
	ns[1].kill()
	time.Sleep(500 * time.Millisecond) // longer than an election timeout: the leaders notice
	out, err := exec.Command(bin, "node", "remove", "--addr", ns[0].httpAddr, "--timeout", "30s", "3").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "only 1 are up") {
		t.Fatalf("orbit node remove 3 with node 2 down: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("refused: %s", out)
	}
	ns[1].start(t, bin)
	waitNodeReady(t, ns[1], 30*time.Second)
	waitReplicas(t, ns[0], "every range keeps its three replicas", func(r []uint64) bool { return slices.Equal(r, []uint64{1, 2, 3}) })

	// Remove node 3: with no spare node, its ranges go down to 2 replicas.
	out = nodeRemove(3, ns[0])
	if !strings.Contains(string(out), "node 3 removed") {
		t.Fatalf("orbit node remove said:\n%s", out)
	}
	waitReplicas(t, ns[1], "node 3 leaves every range", func(r []uint64) bool { return slices.Equal(r, []uint64{1, 2}) })
	// The directory entry is marked after the last range lets node 3 go,
	// and reaches node 2 a moment later: wait for it, but not for long.
	waitRemoved(t, ns[1], 3)
	write(ns[1])
	checkAll(ns[0])

	// Wipe node 3 and bring it back with --join: it is added back to every range.
	ns[2].kill()
	if err := os.RemoveAll(ns[2].dir); err != nil {
		t.Fatal(err)
	}
	peerAddr := strings.Split(strings.Split(ns[2].peers, ",")[2], "=")[1]
	ns[2].extra = []string{"--join", ns[0].httpAddr, "--peer-addr", peerAddr}
	ns[2].start(t, bin)
	waitReplicas(t, ns[0], "node 3 rejoins every range", func(r []uint64) bool { return slices.Equal(r, []uint64{1, 2, 3}) })
	waitNodeReady(t, ns[2], 30*time.Second)
	checkAll(ns[2])
	write(ns[2])

	// A new node 4, told only --join: the ranges have their replicas, so
	// the ranges' leaders (their rebalancers) move replicas onto it; it
	// serves every command, and learns the others from gossip.
	dir := t.TempDir()
	n4 := &testNode{id: 4, dir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "log"),
		redisAddr: freePort(t), httpAddr: freePort(t)}
	n4.extra = []string{"--join", ns[1].httpAddr, "--peer-addr", freePort(t)}
	n4.start(t, bin)
	t.Cleanup(func() { n4.kill() })
	waitNodeReady(t, n4, 30*time.Second)
	checkAll(n4)
	write(n4)
	v := clusterView(t, ns[0])
	if v.Nodes["4"].Addr == "" || !v.Nodes["4"].Alive || v.Nodes["4"].Dead {
		t.Fatalf("node 1 never heard of node 4, or not lately: %+v", v.Nodes)
	}
	// Three ranges of three replicas over four nodes: the rebalancers
	// move one onto node 4 (3,3,3,0 is uneven by two or more; 3,2,2,2 is
	// not), within a few of their rounds.
	deadline := time.Now().Add(60 * time.Second)
	for held := 0; held == 0; {
		for _, r := range clusterView(t, ns[0]).Ranges {
			if slices.Contains(r.Replicas, 4) {
				held++
			}
		}
		if held == 0 && time.Now().After(deadline) {
			t.Fatalf("no rebalancer moved a replica onto node 4 within a minute: %+v\nlog of node 1:\n%s", clusterView(t, ns[0]).Ranges, readLog(ns[0]))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Remove node 1 through node 1 itself: node 4 takes its replicas.
	nodeRemove(1, ns[0])
	waitReplicas(t, n4, "node 4 replaces node 1", func(r []uint64) bool { return slices.Equal(r, []uint64{2, 3, 4}) })
	checkAll(n4)
	checkAll(ns[1])
}

// TestClusterReplacesADeadNode: four nodes, three replicas a range; a node
// killed for good has its replicas replaced on the other three by the
// ranges' leaders once it has been silent for --dead-after, /cluster calls
// it dead, and every acknowledged write reads back.
func TestClusterReplacesADeadNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs four processes")
	}
	ns := startClusterWith(t, buildOrbit(t), 4, "--dead-after", "6s", "--rebalance-interval", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := goredis.NewClient(&goredis.Options{Addr: ns[0].redisAddr, MaxRetries: -1, ReadTimeout: 15 * time.Second})
	defer c.Close()
	const keys = 60
	for i := range keys {
		if err := c.Set(ctx, fmt.Sprintf("key-%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	held := 0
	for _, r := range clusterView(t, ns[0]).Ranges {
		if slices.Contains(r.Replicas, 2) {
			held++
		}
	}
	if held == 0 {
		t.Fatalf("node 2 holds no replica to replace: %+v", clusterView(t, ns[0]).Ranges)
	}
	killed := time.Now()
	ns[1].kill()
	waitReplicas(t, ns[0], "node 2's replicas replaced", func(r []uint64) bool { return len(r) == 3 && !slices.Contains(r, 2) })
	t.Logf("node 2's %d replicas replaced %v after it was killed (--dead-after 6s)", held, time.Since(killed).Round(100*time.Millisecond))
	if n := clusterView(t, ns[0]).Nodes["2"]; !n.Dead || n.Alive {
		t.Fatalf("node 1 sees node 2 as %+v, want dead", n)
	}
	// orbit node list says the same, node 2 holding nothing.
	out, err := exec.Command(buildOrbit(t), "node", "list", "--addr", ns[0].httpAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("orbit node list: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^2\s+\S+\s+dead\s+0\s+0\s`).Match(out) || !regexp.MustCompile(`(?m)^1\s+\S+\s+alive\s+[1-9]`).Match(out) {
		t.Fatalf("orbit node list, node 2 dead and empty, node 1 alive with replicas:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("orbit node list:\n%s", out)
	}
	c3 := goredis.NewClient(&goredis.Options{Addr: ns[2].redisAddr, MaxRetries: -1, ReadTimeout: 15 * time.Second})
	defer c3.Close()
	for i := range keys {
		if got, err := c3.Get(ctx, fmt.Sprintf("key-%d", i)).Int(); err != nil || got != i {
			t.Fatalf("GET key-%d through node 3 = %d, %v", i, got, err)
		}
	}
}

// TestJoinRecordKeepsTheLayout: a node joining a cluster whose ranges
// have split since it started records the layout's range count, not the
// ranges there are now, so that it restarts with the cluster's --ranges.
func TestJoinRecordKeepsTheLayout(t *testing.T) {
	info := clusterInfo{ClusterID: "2a", Replicas: 3, Initial: []uint64{1, 2, 3}, LayoutRanges: 3,
		Ranges: make([]rangeInfo, 7), Nodes: map[string]nodeInfo{"1": {}, "2": {}, "3": {}}}
	rec, err := joinRecord("n1", info, 4, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Ranges != 3 || !rec.Joined {
		t.Fatalf("the joined node's record: %d ranges, joined %v; want the layout's 3, joined", rec.Ranges, rec.Joined)
	}
	info.LayoutRanges = 0
	if _, err := joinRecord("n1", info, 4, "127.0.0.1:1"); err == nil {
		t.Fatal("a cluster description without its layout was taken")
	}
}
