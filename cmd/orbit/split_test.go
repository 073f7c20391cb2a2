package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	goredis "github.com/redis/go-redis/v9"
)

// TestServeSplitsRanges loads a single node past its split size and
// checks that the keyspace split into several ranges on hash-slot
// boundaries (GET /cluster tiles it), that every keyspace-wide command
// sees each key exactly once across them, that a {tag} keeps multi-key
// commands in one range while keys of two ranges run as one transaction, that
// FLUSHALL empties every range, that the emptied ranges merge back by
// themselves, and that an operator's split stays until POST /merge.
func TestServeSplitsRanges(t *testing.T) {
	if testing.Short() {
		t.Skip("loads megabytes through a real server")
	}
	addr, httpAddr := startServerWith(t, serveConfig{ranges: 1, splitMB: 1, mergeKB: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()

	const keys = 24000
	value := strings.Repeat("v", 200)
	for i := 0; i < keys; i += 500 {
		pipe := rdb.Pipeline()
		for j := i; j < i+500; j++ {
			pipe.Set(ctx, fmt.Sprintf("key:%06d", j), value, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("loading at key %d: %v", i, err)
		}
	}
	var ranges []rangeInfo
	for {
		ranges = clusterRanges(t, httpAddr)
		if len(ranges) >= 4 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d ranges after loading about 5 MiB at --split-mb 1, want at least 4: %+v", len(ranges), ranges)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The ranges tile the keyspace, each split on a slot boundary.
	end := ""
	for i, r := range ranges {
		if r.Start != end {
			t.Fatalf("range %d (%+v) starts at %q, the last ended at %q: %+v", i, r, r.Start, end, ranges)
		}
		if b, _ := hex.DecodeString(r.Start); (i == 0) != (len(b) == 0) || (i > 0 && len(b) != 2) {
			t.Fatalf("range %+v does not start on a slot boundary", r)
		}
		end = r.End
	}
	if end != "" {
		t.Fatalf("the last range ends at %q, not at the end of the keyspace", end)
	}
	for _, r := range ranges {
		if r.LeaderNode != 1 || !r.Leader {
			t.Fatalf("range %+v: a single node leads every range, and /cluster should say so", r)
		}
	}
	if held := metricValue(t, httpAddr, "orbit_ranges"); held < float64(len(ranges)) {
		t.Fatalf("orbit_ranges = %v, /cluster lists %d", held, len(ranges))
	}

	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != keys {
		t.Fatalf("DBSIZE = %d, %v; want %d", n, err, keys)
	}
	all, err := rdb.Keys(ctx, "key:*").Result()
	if err != nil || len(all) != keys || len(distinct(all)) != keys {
		t.Fatalf("KEYS returned %d keys (%d distinct), %v; want %d", len(all), len(distinct(all)), err, keys)
	}
	var scanned []string
	var cursor uint64
	for {
		page, next, err := rdb.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			t.Fatal(err)
		}
		scanned = append(scanned, page...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	if len(scanned) != keys || len(distinct(scanned)) != keys {
		t.Fatalf("SCAN returned %d keys (%d distinct), want %d each", len(scanned), len(distinct(scanned)), keys)
	}
	if k, err := rdb.RandomKey(ctx).Result(); err != nil || !strings.HasPrefix(k, "key:") {
		t.Fatalf("RANDOMKEY = %q, %v", k, err)
	}

	// Keys sharing a tag share a slot, so a range; two keys in different
	// ranges do not run together.
	if err := rdb.MSet(ctx, "{user1}:a", "1", "{user1}:b", "2").Err(); err != nil {
		t.Fatalf("MSET of one tag: %v", err)
	}
	first, last := keyIn(t, ranges[0]), keyIn(t, ranges[len(ranges)-1])
	if err := rdb.MSet(ctx, first, "x", last, "y").Err(); err != nil {
		t.Fatalf("MSET %s %s (two ranges): %v", first, last, err)
	}
	if got, err := rdb.MGet(ctx, first, last).Result(); err != nil || fmt.Sprint(got) != "[x y]" {
		t.Fatalf("MGET %s %s (two ranges) = %v, %v", first, last, got, err)
	}

	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after FLUSHALL = %d, %v", n, err)
	}
	// The node's system keys (the range-ID counter) survived FLUSHALL:
	// another split still gets a fresh range ID.
	if got := clusterRanges(t, httpAddr); len(got) < len(ranges) {
		t.Fatalf("ranges after FLUSHALL: %d, before %d", len(got), len(ranges))
	}

	// Empty and cold: the ranges the size splits made merge back into
	// the first by themselves (--merge-kb).
	deadline := time.Now().Add(time.Minute)
	for len(clusterRanges(t, httpAddr)) > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d ranges a minute after FLUSHALL, want 1 (automatic merges): %+v", len(clusterRanges(t, httpAddr)), clusterRanges(t, httpAddr))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// An operator's split stays (it is sticky) until an operator's merge.
	post := func(path string) (int, string) {
		resp, err := http.Post("http://"+httpAddr+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := post("/split?slot=5000"); code != http.StatusOK {
		t.Fatalf("POST /split?slot=5000: %d %s", code, body)
	}
	split := clusterRanges(t, httpAddr)
	if len(split) != 2 {
		t.Fatalf("after POST /split: %+v", split)
	}
	for _, r := range split {
		if err := rdb.Set(ctx, keyIn(t, r), "kept", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Second) // cold for two merge checks: still two ranges
	if got := clusterRanges(t, httpAddr); len(got) != 2 {
		t.Fatalf("an operator's split merged back by itself: %+v", got)
	}
	if code, body := post("/merge?slot=5000"); code != http.StatusOK {
		t.Fatalf("POST /merge?slot=5000: %d %s", code, body)
	}
	if got := clusterRanges(t, httpAddr); len(got) != 1 {
		t.Fatalf("after POST /merge: %+v", got)
	}
	for _, r := range split {
		if v, err := rdb.Get(ctx, keyIn(t, r)).Result(); err != nil || v != "kept" {
			t.Fatalf("GET %s after the merge = %q, %v", keyIn(t, r), v, err)
		}
	}
	if code, _ := post("/merge?slot=0"); code != http.StatusBadRequest {
		t.Fatalf("POST /merge?slot=0: %d, want 400", code)
	}
	if code, _ := post("/merge?slot=5000"); code != http.StatusServiceUnavailable {
		t.Fatalf("POST /merge?slot=5000 with no range starting there: %d, want 503", code)
	}
}

// clusterRanges reads the ranges from GET /cluster.
func clusterRanges(t *testing.T, httpAddr string) []rangeInfo {
	t.Helper()
	return clusterAt(t, httpAddr).Ranges
}

// metricValue reads one unlabelled gauge from GET /metrics.
func metricValue(t *testing.T, httpAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// keyIn returns a key whose slot is in r.
func keyIn(t *testing.T, r rangeInfo) string {
	t.Helper()
	for i := range 1 << 20 {
		k := fmt.Sprintf("probe:%d", i)
		key := redis.SlotKey(redis.Slot([]byte(k)))
		start, _ := hex.DecodeString(r.Start)
		end, _ := hex.DecodeString(r.End)
		if bytes.Compare(key, start) >= 0 && (r.End == "" || bytes.Compare(key, end) < 0) {
			return k
		}
	}
	t.Fatalf("no key found for range %+v", r)
	return ""
}

func distinct(keys []string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}
