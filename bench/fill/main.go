// Command fill writes many keys into a Redis server quickly: pipelined SETs
// of key:%012d (the keys redis-benchmark -r draws) over several
// connections, for measuring a server that holds millions of keys
// (docs/performance.md, "Millions of keys"):
//
//	go run ./bench/fill -addr 127.0.0.1:6379 -keys 10000000
//
// Every reply is checked; the first error stops the run with exit status 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "host:port of the server")
	keys := flag.Int("keys", 1000000, "keys to write: key:000000000000 up")
	from := flag.Int("from", 0, "the first key to write (to go on after an interrupted run)")
	conns := flag.Int("conns", 8, "connections, each writing its share of the keys")
	pipeline := flag.Int("pipeline", 64, "SETs sent before waiting for their replies")
	valueSize := flag.Int("value-size", 100, "bytes per value")
	flag.Parse()
	if *keys < 1 || *from < 0 || *conns < 1 || *pipeline < 1 || *valueSize < 0 {
		fmt.Fprintln(os.Stderr, "fill: -keys, -conns and -pipeline must be positive, -from and -value-size not negative")
		os.Exit(2)
	}
	value := strings.Repeat("x", *valueSize)
	var (
		next     atomic.Int64 // the next batch's first key
		written  atomic.Int64
		failed   atomic.Pointer[error]
		wg       sync.WaitGroup
		start    = time.Now()
		progress = time.NewTicker(30 * time.Second)
	)
	defer progress.Stop()
	go func() {
		for range progress.C {
			n := written.Load()
			fmt.Printf("%d keys, %.0f/s\n", n, float64(n)/time.Since(start).Seconds())
		}
	}()
	next.Store(int64(*from))
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: *addr, PoolSize: 1, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
			defer c.Close()
			ctx := context.Background()
			for failed.Load() == nil {
				first := next.Add(int64(*pipeline)) - int64(*pipeline)
				if first >= int64(*keys) {
					return
				}
				last := min(first+int64(*pipeline), int64(*keys))
				p := c.Pipeline()
				for k := first; k < last; k++ {
					p.Set(ctx, fmt.Sprintf("key:%012d", k), value, 0)
				}
				if _, err := p.Exec(ctx); err != nil {
					err = fmt.Errorf("keys from %d: %w", first, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
				written.Add(last - first)
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		fmt.Fprintf(os.Stderr, "fill: %v\n", *err)
		os.Exit(1)
	}
	d := time.Since(start)
	fmt.Printf("wrote %d keys in %s (%.0f/s)\n", written.Load(), d.Round(time.Second), float64(written.Load())/d.Seconds())
}
