// Command load is a closed-loop put/get load generator for bench/peers.sh
// (`make bench-peers`): N clients, each on its own connection, each sending
// one request, waiting for the answer, then sending the next, for a fixed
// time, against a Redis-protocol server (orbit serve, redis-server) or etcd
// (v3 gRPC API). It reports throughput and exact latency percentiles.
//
//	go run ./bench/load -target redis -addrs 127.0.0.1:6379 -op put -clients 16 -duration 10s
//	go run ./bench/load -target etcd -addrs 127.0.0.1:2379,127.0.0.1:2381 -op get -preload -json
//
// Clients are spread round-robin over -addrs (client i talks to address i mod
// len(addrs) only). Keys are chosen uniformly at random among -keys; values
// are -value-size bytes. put is Redis SET / etcd Put; get is Redis GET / etcd
// linearizable Get (etcd's default: a serializable read would skip consensus).
// Every latency is recorded and sorted at the end, so p50, p99 and max are
// exact. Any error is counted, the first one printed, and the exit status is
// 1; a get of a key that was never written is a miss, not an error (-preload
// writes every key once before a get run).
//
// -probe DURATION instead checks readiness: it retries a put and a get of one
// key on every address until all succeed (exit 0) or DURATION passes (exit 1).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// opTimeout bounds one request. It is generous: a slow answer is a latency,
// not an error, but a request that never comes back must fail the run.
const opTimeout = 30 * time.Second

// kv is one client's connection to one address.
type kv interface {
	put(ctx context.Context, key string, value []byte) error
	// get reports whether the key was found.
	get(ctx context.Context, key string) (bool, error)
	close() error
}

// redisKV is a go-redis client with a pool of one connection: one client,
// one connection, like a redis-benchmark client.
type redisKV struct{ c *redis.Client }

func newRedis(addr string) *redisKV {
	return &redisKV{redis.NewClient(&redis.Options{
		Addr:         addr,
		PoolSize:     1,
		MaxRetries:   -1, // no silent retries: every failure counts
		DialTimeout:  5 * time.Second,
		ReadTimeout:  opTimeout,
		WriteTimeout: opTimeout,
		PoolTimeout:  opTimeout,
	})}
}

func (r *redisKV) put(ctx context.Context, key string, value []byte) error {
	return r.c.Set(ctx, key, value, 0).Err()
}

func (r *redisKV) get(ctx context.Context, key string) (bool, error) {
	err := r.c.Get(ctx, key).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

func (r *redisKV) close() error { return r.c.Close() }

// etcdKV is one clientv3.Client per load client (not one shared client): each
// has its own gRPC connection to its one endpoint, as each Redis client has
// its own TCP connection, so neither side multiplexes many clients over one
// connection. Gets are linearizable (clientv3's default; no WithSerializable).
// clientv3 itself retries a Get that failed as unavailable; such retries are
// inside the recorded latency.
type etcdKV struct{ c *clientv3.Client }

func newEtcd(addr string) (*etcdKV, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{addr},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	return &etcdKV{c}, nil
}

func (e *etcdKV) put(ctx context.Context, key string, value []byte) error {
	_, err := e.c.Put(ctx, key, string(value))
	return err
}

func (e *etcdKV) get(ctx context.Context, key string) (bool, error) {
	resp, err := e.c.Get(ctx, key)
	if err != nil {
		return false, err
	}
	return len(resp.Kvs) > 0, nil
}

func (e *etcdKV) close() error { return e.c.Close() }

func dial(target, addr string) (kv, error) {
	switch target {
	case "redis":
		return newRedis(addr), nil
	case "etcd":
		return newEtcd(addr)
	}
	return nil, fmt.Errorf("unknown -target %q (redis or etcd)", target)
}

// result is what a run reports (one JSON line with -json).
type result struct {
	Target    string  `json:"target"`
	Addrs     string  `json:"addrs"`
	Op        string  `json:"op"`
	Clients   int     `json:"clients"`
	Keys      int     `json:"keys"`
	ValueSize int     `json:"value_size"`
	Seconds   float64 `json:"seconds"`
	Ops       int     `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	Errors    int64   `json:"errors"`
	Misses    int64   `json:"misses"`
	FirstErr  string  `json:"first_error,omitempty"`
}

// errs counts errors and keeps the first.
type errs struct {
	n     atomic.Int64
	once  sync.Once
	first string
}

func (e *errs) add(err error) {
	e.n.Add(1)
	e.once.Do(func() {
		e.first = err.Error()
		fmt.Fprintf(os.Stderr, "load: first error: %v\n", err)
	})
}

func main() {
	target := flag.String("target", "redis", "redis (RESP: orbit serve, redis-server) or etcd (v3 gRPC API)")
	addrsFlag := flag.String("addrs", "127.0.0.1:6379", "host:port[,host:port...]; clients are spread round-robin over them")
	op := flag.String("op", "put", "put (SET / Put) or get (GET / linearizable Get)")
	clients := flag.Int("clients", 1, "concurrent clients, one connection each")
	duration := flag.Duration("duration", 10*time.Second, "how long to send requests")
	keys := flag.Int("keys", 10000, "keys are chosen at random among this many")
	valueSize := flag.Int("value-size", 100, "bytes per value")
	preload := flag.Bool("preload", false, "first write every key once (for -op get)")
	asJSON := flag.Bool("json", false, "print one JSON line of results")
	probe := flag.Duration("probe", 0, "instead of a run: retry a put and a get on every address until all succeed or this long passes")
	flag.Parse()

	addrs := strings.Split(*addrsFlag, ",")
	if *probe > 0 {
		if err := probeAll(*target, addrs, *probe); err != nil {
			fmt.Fprintf(os.Stderr, "load: probe: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if *op != "put" && *op != "get" {
		fatalf("unknown -op %q (put or get)", *op)
	}
	if *clients < 1 || *keys < 1 || *valueSize < 0 {
		fatalf("-clients and -keys must be positive, -value-size not negative")
	}

	conns := make([]kv, *clients)
	for i := range conns {
		c, err := dial(*target, addrs[i%len(addrs)])
		if err != nil {
			fatalf("client %d: %v", i, err)
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			_ = c.close()
		}
	}()

	value := make([]byte, *valueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	key := func(i int) string { return fmt.Sprintf("load:%08d", i) }

	var errCount errs
	if *preload {
		start := time.Now()
		var wg sync.WaitGroup
		for ci, c := range conns {
			wg.Go(func() {
				for k := ci; k < *keys; k += len(conns) {
					ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
					err := c.put(ctx, key(k), value)
					cancel()
					if err != nil {
						errCount.add(fmt.Errorf("preload %s: %w", key(k), err))
						return
					}
				}
			})
		}
		wg.Wait()
		if errCount.n.Load() > 0 {
			fatalf("preload failed: %s", errCount.first)
		}
		fmt.Fprintf(os.Stderr, "load: preloaded %d keys in %v\n", *keys, time.Since(start).Round(time.Millisecond))
	}

	lats := make([][]time.Duration, len(conns))
	var misses atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for ci, c := range conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(ci)))
			l := make([]time.Duration, 0, 4096)
			for !stop.Load() {
				k := key(rng.IntN(*keys))
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				t0 := time.Now()
				var err error
				if *op == "put" {
					err = c.put(ctx, k, value)
				} else {
					var found bool
					found, err = c.get(ctx, k)
					if err == nil && !found {
						misses.Add(1)
					}
				}
				d := time.Since(t0)
				cancel()
				if err != nil {
					errCount.add(fmt.Errorf("%s %s: %w", *op, k, err))
					continue
				}
				l = append(l, d)
			}
			lats[ci] = l
		})
	}
	time.Sleep(*duration)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	res := result{
		Target: *target, Addrs: *addrsFlag, Op: *op, Clients: *clients, Keys: *keys, ValueSize: *valueSize,
		Seconds: elapsed.Seconds(), Ops: len(all), OpsPerSec: float64(len(all)) / elapsed.Seconds(),
		P50Ms: ms(quantile(all, 0.50)), P99Ms: ms(quantile(all, 0.99)), MaxMs: ms(quantile(all, 1)),
		Errors: errCount.n.Load(), Misses: misses.Load(), FirstErr: errCount.first,
	}
	if *asJSON {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	} else {
		fmt.Printf("%s %s, %d clients on %s, %.1fs: %d ops, %.0f ops/s, p50 %.3f ms, p99 %.3f ms, max %.3f ms, %d errors, %d misses\n",
			res.Target, res.Op, res.Clients, res.Addrs, res.Seconds, res.Ops, res.OpsPerSec, res.P50Ms, res.P99Ms, res.MaxMs, res.Errors, res.Misses)
	}
	if res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "load: FAILED: %d errors (first: %s)\n", res.Errors, res.FirstErr)
		os.Exit(1)
	}
	if res.Ops == 0 {
		fmt.Fprintln(os.Stderr, "load: FAILED: no request completed")
		os.Exit(1)
	}
}

// quantile is the q-th quantile of sorted (nearest rank), 0 when empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// probeAll retries a put and a get on each address until both succeed, for
// at most d in all.
func probeAll(target string, addrs []string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, addr := range addrs {
		var last error
		for {
			last = probeOnce(target, addr)
			if last == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s %s not ready after %v: %w", target, addr, d, last)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func probeOnce(target, addr string) error {
	c, err := dial(target, addr)
	if err != nil {
		return err
	}
	defer func() { _ = c.close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.put(ctx, "load:probe", []byte("1")); err != nil {
		return err
	}
	found, err := c.get(ctx, "load:probe")
	if err != nil {
		return err
	}
	if !found {
		return errors.New("probe key not found after put")
	}
	return nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", args...)
	os.Exit(1)
}
