package jepsen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/topo"
)

// Transaction workloads: their keys lie in different ranges (one per
// range, round robin), so every multi-key command and MULTI/EXEC block is
// a cross-range transaction (docs/txn.md, step 7).

// placed names n keys with prefix, key i in range i mod len(ranges).
func placed(prefix string, n int, ranges []topo.Range) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%d", prefix, i)
		if len(ranges) > 0 {
			keys[i] = topo.KeyIn(keys[i], ranges[i%len(ranges)])
		}
	}
	return keys
}

// bankWorkload: transfers between accounts (WATCH both; MGET both; MULTI;
// SET both; EXEC) and reads of every balance with one MGET; final reads
// through every node. check.Bank requires the total conserved on every
// read and no balance below zero.
type bankWorkload struct{ accounts []string }

const bankStart = 100

func newBankWorkload(ranges []topo.Range) *bankWorkload {
	return &bankWorkload{accounts: placed("acct", max(5, len(ranges)), ranges)}
}

func (w *bankWorkload) op(ctx context.Context, p *client, op *history.Op) error {
	if p.rng.IntN(3) == 0 {
		op.F, op.Key = "read-bank", strings.Join(w.accounts, " ")
		return read(ctx, p, op)
	}
	from := p.rng.IntN(len(w.accounts))
	to := (from + 1 + p.rng.IntN(len(w.accounts)-1)) % len(w.accounts)
	a, b := w.accounts[from], w.accounts[to]
	amount := int64(1 + p.rng.IntN(10))
	op.F, op.Key = "transfer", a+" "+b
	err := p.rdb.Watch(ctx, func(tx *goredis.Tx) error {
		vs, err := tx.MGet(ctx, a, b).Result()
		if err != nil {
			return err
		}
		var bal [2]int64
		for i, v := range vs {
			bal[i] = bankStart
			if s, ok := v.(string); ok {
				n, _, _ := strings.Cut(s, "/")
				if bal[i], err = strconv.ParseInt(n, 10, 64); err != nil {
					return fmt.Errorf("account %s holds %q", []string{a, b}[i], s)
				}
			}
		}
		amount = min(amount, bal[0])
		op.Value = strconv.FormatInt(amount, 10)
		w := p.unique() // no value is written twice: WATCH compares values
		_, err = tx.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
			pipe.Set(ctx, a, fmt.Sprintf("%d/%s", bal[0]-amount, w), 0)
			pipe.Set(ctx, b, fmt.Sprintf("%d/%s", bal[1]+amount, w), 0)
			return nil
		})
		return err
	}, a, b)
	if errors.Is(err, goredis.TxFailedErr) {
		return nil // ok: a watched account changed, nothing was written
	}
	if err == nil {
		op.Swapped = true
	}
	return err
}

func (w *bankWorkload) finals() []history.Op {
	return []history.Op{{F: "read-bank", Key: strings.Join(w.accounts, " ")}}
}

func (w *bankWorkload) check(ops []history.Op, _ string) []check.Result {
	return []check.Result{check.Bank(ops, len(w.accounts), bankStart)}
}

// txnListWorkload: MULTI blocks of one to four steps, each an RPUSH of a
// unique element or an LRANGE 0 -1, over lists in different ranges;
// check.ElleOps infers the dependency graph from the lists read and names
// any cycle (G0, G1c, G-single, G2, and their real-time forms).
type txnListWorkload struct{ keys []string }

func newTxnListWorkload(ranges []topo.Range) *txnListWorkload {
	return &txnListWorkload{keys: placed("txn-list", max(4, len(ranges)), ranges)}
}

func (w *txnListWorkload) op(ctx context.Context, p *client, op *history.Op) error {
	op.F = "txn"
	for range 1 + p.rng.IntN(4) {
		m := history.MicroOp{Key: w.keys[p.rng.IntN(len(w.keys))], Append: p.rng.IntN(2) == 0}
		if m.Append {
			m.Value = p.unique()
		}
		op.Txn = append(op.Txn, m)
	}
	var cmds []*goredis.StringSliceCmd
	_, err := p.rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		for _, m := range op.Txn {
			if m.Append {
				pipe.RPush(ctx, m.Key, m.Value)
			} else {
				cmds = append(cmds, pipe.LRange(ctx, m.Key, 0, -1))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range op.Txn {
		if op.Txn[i].Append {
			continue
		}
		op.Txn[i].Values, cmds = cmds[0].Val(), cmds[1:]
		if op.Txn[i].Values == nil {
			op.Txn[i].Values = []string{}
		}
	}
	return nil
}

func (w *txnListWorkload) finals() []history.Op { return nil }

func (w *txnListWorkload) check(ops []history.Op, _ string) []check.Result {
	return []check.Result{check.ElleOps(ops)}
}
