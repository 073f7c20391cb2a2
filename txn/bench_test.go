package txn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkTransfers measures two-key transfers (read both balances,
// write both) per second and their latency, on one node and on three, with
// both accounts in one range and in two, at 1 and 16 clients (each on its
// own accounts: no contention), next to single-key puts outside
// transactions in the same run (issue 14, item 9); and, at 1 to 64
// clients, transfers that all take from one hot account (the contention
// curve), reading the balances optimistically (kind "hot") or with
// GetForUpdate ("hot-locking"). Nodes keep their data on disk (every sync a real
// one) and share one disk and two cores.
func BenchmarkTransfers(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, clients := range []int{1, 16, 64} {
			for _, kind := range []string{"put", "same-range", "cross-range"} {
				b.Run(fmt.Sprintf("nodes=%d/clients=%d/%s", nodes, clients, kind), func(b *testing.B) {
					benchTransfers(b, nodes, clients, kind)
				})
			}
		}
	}
	for _, kind := range []string{"hot", "hot-locking"} {
		for _, clients := range []int{1, 4, 16, 64} {
			b.Run(fmt.Sprintf("nodes=3/clients=%d/%s", clients, kind), func(b *testing.B) { benchTransfers(b, 3, clients, kind) })
		}
	}
}

func benchTransfers(b *testing.B, nodes, clients int, kind string) {
	c := newTestClusterOf(b, nodes, true, Options{})
	warm := c.db(0, "warm")
	for _, k := range []string{"a", "x"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := warm.Put(ctx, []byte(k), []byte("0")); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	latencies := make([][]time.Duration, clients)
	var gaveUp, attempts atomic.Int64
	var wg sync.WaitGroup
	per := b.N/clients + 1
	b.ResetTimer()
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		db := c.db(i%nodes, fmt.Sprintf("bench-%d", i))
		from, to := []byte(fmt.Sprintf("a-%d", i)), []byte(fmt.Sprintf("b-%d", i)) // both below "m"
		switch kind {
		case "cross-range":
			to = []byte(fmt.Sprintf("x-%d", i))
		case "hot", "hot-locking":
			from, to = []byte("hot"), []byte(fmt.Sprintf("x-%d", i)) // every client takes from one account, across ranges
		}
		hot := strings.HasPrefix(kind, "hot")
		c.rts[i%nodes].Go("bench client", func(ctx context.Context) {
			defer wg.Done()
			for range per {
				t0 := time.Now()
				var err error
				if kind == "put" {
					err = db.Put(ctx, from, []byte("1"))
				} else {
					err = db.Txn(ctx, func(tx *Tx) error {
						attempts.Add(1)
						get := tx.Get
						if kind == "hot-locking" {
							get = tx.GetForUpdate
						}
						a, err := benchBalance(get(ctx, from))
						if err != nil {
							return err
						}
						bal, err := benchBalance(get(ctx, to))
						if err != nil {
							return err
						}
						if err := tx.Put(ctx, from, []byte(strconv.Itoa(a-1))); err != nil {
							return err
						}
						return tx.Put(ctx, to, []byte(strconv.Itoa(bal+1)))
					})
				}
				if hot && errors.Is(err, ErrRetry) {
					gaveUp.Add(1) // contention's price: counted, not a failure
					continue
				}
				if err != nil {
					b.Error(err)
					return
				}
				latencies[i] = append(latencies[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	if strings.HasPrefix(kind, "hot") {
		b.ReportMetric(float64(gaveUp.Load()), "gave-up")
		b.ReportMetric(float64(attempts.Load())/float64(b.N), "attempts/op")
	}
}

func benchBalance(v []byte, found bool, err error) (int, error) {
	if err != nil || !found {
		return 0, err
	}
	return strconv.Atoi(string(v))
}
