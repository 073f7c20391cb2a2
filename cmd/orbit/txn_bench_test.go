package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// BenchmarkRedisAcrossRanges measures what a Redis client pays for keys in
// different ranges (docs/txn.md, step 7) on one orbit serve node with four
// ranges, against redis-server with appendfsync always (both sync before
// replying) in the same run: SET of one key; MSET of two keys in one
// range (a {tag}) and in two; a transfer (MULTI, INCRBY -1, INCRBY +1,
// EXEC) in two ranges; and MGET of two keys in two ranges. At 1 and 16
// clients; each reports ops/s and p50/p99 in ms. Run with
//
//	go test ./cmd/orbit -run '^$' -bench RedisAcrossRanges -benchtime 2000x
func BenchmarkRedisAcrossRanges(b *testing.B) {
	servers := []struct{ name, addr string }{
		{"orbit", startServer(b, 4)},
		{"redis-fsync", startRedisServer(b, "--appendonly", "yes", "--appendfsync", "always")},
	}
	// Two keys in different ranges of four (slots 0-4095, 4096-...), and
	// two sharing one.
	a, c := keyInSlots(0, 4095), keyInSlots(8192, 12287)
	ops := []struct {
		name string
		do   func(ctx context.Context, rdb *goredis.Client, i int) error
	}{
		{"set", func(ctx context.Context, rdb *goredis.Client, i int) error {
			return rdb.Set(ctx, fmt.Sprintf("%s:%d", a, i%64), "v", 0).Err()
		}},
		{"mset-one-range", func(ctx context.Context, rdb *goredis.Client, i int) error {
			return rdb.MSet(ctx, fmt.Sprintf("{t%d}a", i%64), "v", fmt.Sprintf("{t%d}b", i%64), "v").Err()
		}},
		{"mset-two-ranges", func(ctx context.Context, rdb *goredis.Client, i int) error {
			return rdb.MSet(ctx, fmt.Sprintf("%s:%d", a, i%64), "v", fmt.Sprintf("%s:%d", c, i%64), "v").Err()
		}},
		{"mget-two-ranges", func(ctx context.Context, rdb *goredis.Client, i int) error {
			return rdb.MGet(ctx, fmt.Sprintf("%s:%d", a, i%64), fmt.Sprintf("%s:%d", c, i%64)).Err()
		}},
		{"transfer-two-ranges", func(ctx context.Context, rdb *goredis.Client, i int) error {
			_, err := rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.IncrBy(ctx, fmt.Sprintf("%s:n%d", a, i%64), -1) // counters: not the strings above
				p.IncrBy(ctx, fmt.Sprintf("%s:n%d", c, i%64), 1)
				return nil
			})
			return err
		}},
	}
	for _, op := range ops {
		for _, clients := range []int{1, 16} {
			for _, srv := range servers {
				b.Run(fmt.Sprintf("%s/clients=%d/%s", op.name, clients, srv.name), func(b *testing.B) {
					rdb := goredis.NewClient(&goredis.Options{Addr: srv.addr, PoolSize: clients})
					defer rdb.Close()
					closedLoop(b, clients, func(i int) error { return op.do(context.Background(), rdb, i) })
				})
			}
		}
	}
}

// closedLoop runs b.N operations from clients workers (worker w does
// operations w, w+clients, ...), each waiting for its last, and reports
// ops/s and the p50 and p99 latencies in ms.
func closedLoop(b *testing.B, clients int, do func(i int) error) {
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += clients {
				t := time.Now()
				if err := do(i); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}

// keyInSlots is a key whose hash slot is in [first, last].
func keyInSlots(first, last uint16) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("k%d", i)
		if s := redis.Slot([]byte(k)); s >= first && s <= last {
			return "{" + k + "}"
		}
	}
}
