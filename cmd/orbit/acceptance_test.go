package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The range layer's acceptance tests (issue 12): two million keys through
// `orbit serve` split the keyspace by themselves, and the ranges spread
// over a node that joins and leave a node that is removed. Minutes each,
// so they run only when ORBIT_ACCEPTANCE is set: `make acceptance`.

const (
	acceptanceKeys  = 2_000_000
	acceptanceValue = 100 // bytes
)

func acceptanceOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("ORBIT_ACCEPTANCE") == "" {
		t.Skip("minutes long: run with ORBIT_ACCEPTANCE=1 (make acceptance)")
	}
}

// loadKeys writes acceptanceKeys keys through addr, pipelined, from
// several connections, and returns how long it took.
func loadKeys(t *testing.T, ctx context.Context, addr string) time.Duration {
	t.Helper()
	start := time.Now()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 16, ReadTimeout: 30 * time.Second, MaxRetries: -1})
	defer rdb.Close()
	value := strings.Repeat("v", acceptanceValue)
	const workers, batch = 16, 1000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * batch; i < acceptanceKeys; i += workers * batch {
				pipe := rdb.Pipeline()
				for j := i; j < min(i+batch, acceptanceKeys); j++ {
					pipe.Set(ctx, fmt.Sprintf("key:%07d", j), value, 0)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					errs <- fmt.Errorf("loading at key %d: %w", i, err)
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
	return time.Since(start)
}

// waitRanges waits until the node at httpAddr shows at least n ranges.
func waitRanges(t *testing.T, httpAddr string, n int, within time.Duration) []rangeInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rs := clusterRanges(t, httpAddr)
		if len(rs) >= n {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ranges after loading %d keys, want at least %d", len(rs), acceptanceKeys, n)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// minAcceptanceRanges: 2M keys of about 130 bytes (key, value, record
// header) are about 260 MB, which --split-mb 16 cuts into 16 to 32 ranges.
const minAcceptanceRanges = 12

func TestAcceptanceSingleNodeSplits(t *testing.T) {
	acceptanceOnly(t)
	addr, httpAddr := startServerWith(t, serveConfig{splitMB: defaultSplitMB})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	took := loadKeys(t, ctx, addr)
	rs := waitRanges(t, httpAddr, minAcceptanceRanges, time.Minute)
	t.Logf("single node: %d keys in %v (%.0f/s), %d ranges", acceptanceKeys, took.Round(time.Second), acceptanceKeys/took.Seconds(), len(rs))
	// DBSIZE counts every range's keys (a scan each: O(keys), not Redis's
	// O(1)), so it gets a long timeout.
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, ReadTimeout: time.Minute})
	defer rdb.Close()
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != acceptanceKeys {
		t.Fatalf("DBSIZE = %d, %v; want %d", n, err, acceptanceKeys)
	}
}

// TestAcceptanceClusterSplitsAndSpreads: three nodes split the keyspace
// as it loads; a fourth node that joins gets replicas and leaderships
// within a minute; once removed, it holds none, and no key is lost.
func TestAcceptanceClusterSplitsAndSpreads(t *testing.T) {
	acceptanceOnly(t)
	bin := buildOrbit(t)
	ns := startCluster(t, bin, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	took := loadKeys(t, ctx, ns[0].redisAddr)
	rs := waitRanges(t, ns[0].httpAddr, minAcceptanceRanges, time.Minute)
	t.Logf("three nodes: %d keys in %v (%.0f/s), %d ranges", acceptanceKeys, took.Round(time.Second), acceptanceKeys/took.Seconds(), len(rs))

	dir := t.TempDir()
	n4 := &testNode{id: 4, dir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "log"),
		redisAddr: freePort(t), httpAddr: freePort(t)}
	n4.extra = []string{"--join", ns[0].httpAddr, "--peer-addr", freePort(t)}
	joined := time.Now()
	n4.start(t, bin)
	t.Cleanup(func() { n4.kill() })
	waitNodeReady(t, n4, time.Minute)
	var replicas, leads int
	for {
		replicas, leads = 0, 0
		for _, r := range clusterView(t, n4).Ranges {
			if slices.Contains(r.Replicas, 4) {
				replicas++
			}
			if r.Leader {
				leads++
			}
		}
		// An even share: three replicas of every range over four nodes.
		if replicas >= 3*len(rs)/4-1 && leads >= len(rs)/4-1 {
			break
		}
		if time.Since(joined) > time.Minute {
			t.Fatalf("a minute after joining node 4 holds %d replicas and leads %d ranges of %d; log:\n%s", replicas, leads, len(rs), readLog(n4))
		}
		time.Sleep(time.Second)
	}
	t.Logf("node 4 joined: %d replicas, %d leaderships of %d ranges in %v", replicas, leads, len(rs), time.Since(joined).Round(time.Second))

	removed := time.Now()
	if out, err := exec.Command(bin, "node", "remove", "--addr", ns[0].httpAddr, "--timeout", "5m", "4").CombinedOutput(); err != nil {
		t.Fatalf("orbit node remove 4: %v\n%s", err, out)
	}
	waitReplicas(t, ns[0], "node 4's replicas move away", func(r []uint64) bool { return len(r) == 3 && !slices.Contains(r, 4) })
	t.Logf("node 4 removed in %v", time.Since(removed).Round(time.Second))
	rdb := goredis.NewClient(&goredis.Options{Addr: ns[1].redisAddr, ReadTimeout: time.Minute})
	defer rdb.Close()
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != acceptanceKeys {
		t.Fatalf("DBSIZE = %d, %v; want %d", n, err, acceptanceKeys)
	}
}
