package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestClusterTransactionsAcrossRanges runs a bank over a three-node
// cluster of six ranges: clients on every node move money between
// accounts in different ranges with MULTI/EXEC while others read every
// balance with one MGET, which must always see the same total; at the
// end every node reads the same balances, and RENAME and BLMOVE work
// across ranges.
func TestClusterTransactionsAcrossRanges(t *testing.T) {
	bin := buildOrbit(t)
	nodes := startClusterWith(t, bin, 3, "--ranges", "6")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clients := make([]*goredis.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: n.redisAddr, MaxRetries: -1})
		defer clients[i].Close()
	}

	const accounts, initial = 8, 100
	var keys []string
	var pairs []any
	for i := range accounts {
		keys = append(keys, fmt.Sprintf("acct:%d", i))
		pairs = append(pairs, keys[i], initial)
	}
	if err := clients[0].MSet(ctx, pairs...).Err(); err != nil {
		t.Fatalf("MSET of every account: %v", err)
	}
	total := func(c *goredis.Client) (int, []any, error) {
		vals, err := c.MGet(ctx, keys...).Result()
		if err != nil {
			return 0, nil, err
		}
		sum := 0
		for _, v := range vals {
			n, err := strconv.Atoi(fmt.Sprint(v))
			if err != nil {
				return 0, vals, fmt.Errorf("balance %v: %w", v, err)
			}
			sum += n
		}
		return sum, vals, nil
	}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%len(clients)]
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 40 {
				from, to := keys[r.IntN(accounts)], keys[r.IntN(accounts)]
				amount := 1 + r.IntN(10)
				_, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
					p.DecrBy(ctx, from, int64(amount))
					p.IncrBy(ctx, to, int64(amount))
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("transfer %s -> %s: %w", from, to, err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for w := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for reads := 0; ; reads++ {
				select {
				case <-stop:
					return
				default:
				}
				sum, vals, err := total(clients[(w+1)%len(clients)])
				if err != nil || sum != accounts*initial {
					errs <- fmt.Errorf("read %d: balances %v (total %d, want %d): %v", reads, vals, sum, accounts*initial, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var first []any
	for i, c := range clients {
		sum, vals, err := total(c)
		if err != nil || sum != accounts*initial {
			t.Fatalf("node %d: balances %v (total %d): %v", i+1, vals, sum, err)
		}
		if i == 0 {
			first = vals
		} else if fmt.Sprint(vals) != fmt.Sprint(first) {
			t.Fatalf("node %d reads %v, node 1 %v", i+1, vals, first)
		}
	}

	// RENAME and BLMOVE between ranges.
	c := clients[1]
	if err := c.Rename(ctx, keys[0], "renamed").Err(); err != nil {
		t.Fatalf("RENAME: %v", err)
	}
	if v, err := c.Get(ctx, "renamed").Result(); err != nil || v != fmt.Sprint(first[0]) {
		t.Fatalf("GET renamed = %q, %v; want %v", v, err, first[0])
	}
	if n, err := c.Exists(ctx, keys[0]).Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS %s after RENAME = %d, %v", keys[0], n, err)
	}
	moved := make(chan string, 1)
	go func() {
		v, err := clients[2].BLMove(ctx, "queue:a", "queue:b", "LEFT", "RIGHT", 10*time.Second).Result()
		if err != nil {
			v = err.Error()
		}
		moved <- v
	}()
	time.Sleep(100 * time.Millisecond)
	if err := c.RPush(ctx, "queue:a", "job").Err(); err != nil {
		t.Fatal(err)
	}
	if v := <-moved; v != "job" {
		t.Fatalf("BLMOVE = %q; want job", v)
	}
	if v, err := c.LRange(ctx, "queue:b", 0, -1).Result(); err != nil || fmt.Sprint(v) != "[job]" {
		t.Fatalf("LRANGE queue:b = %v, %v", v, err)
	}
}
