package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/orbitkernel/orbit/adapters/actorapi"
	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/topo"
)

// Workloads: what the clients do, through go-redis over RESP, one
// connection pool per client process, each process bound to one node (as
// Jepsen binds its clients). Every operation is recorded with its outcome:
// ok, fail (it certainly did not happen: the connection was refused, or the
// server said TRYAGAIN or another error that means "not applied"), or info
// (it may have happened: a timeout, a lost connection, "write outcome
// unknown").
var AllWorkloads = []string{"register", "set", "counter", "list", "bank", "txn-list", "sql-bank", "actor-counter"}

// workload is one of AllWorkloads.
type workload interface {
	// op performs one operation for client p and fills in op (F, Key,
	// Value, Expect and the outcome; the caller sets times and Type).
	op(ctx context.Context, p *client, op *history.Op) error
	// finals are the reads taken through every node after the heal.
	finals() []history.Op
	check(ops []history.Op, vizPath string) []check.Result
}

// client is one client process of the workload.
type client struct {
	id   int
	node *node
	rdb  *goredis.Client
	rng  *rand.Rand
	seq  int
	// last value this client saw of each register key (cas expectations).
	seen map[string]string
	// sql is the client's PostgreSQL connection (the SQL workloads),
	// made when first needed and again after it breaks.
	sql *pgx.Conn
	// actors is the client's actor service client (actor workloads),
	// made when first needed.
	actors  *actorapi.Client
	timeout time.Duration
}

// close ends the client's connections.
func (p *client) close() {
	p.rdb.Close()
	if p.actors != nil {
		_ = p.actors.Close()
	}
}

func init() {
	// go-redis logs every failed dial; the history records them instead.
	goredis.SetLogger(quietLogger{})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func newClient(id int, n *node, seed int64, timeout time.Duration) *client {
	return &client{id: id, node: n, rng: rand.New(rand.NewPCG(uint64(seed), uint64(id))), seen: map[string]string{}, timeout: timeout,
		rdb: goredis.NewClient(&goredis.Options{Addr: n.redisAddr, MaxRetries: -1, PoolSize: 2, TLSConfig: n.tls.clientConfig(),
			Username: clientUser, Password: clientPassword, // createClientUsers made them
			DialTimeout: time.Second, ReadTimeout: timeout, WriteTimeout: timeout})}
}

// unique is a value never written before by anyone.
func (p *client) unique() string {
	p.seq++
	return fmt.Sprintf("%d-%d", p.id, p.seq)
}

// outcome classifies err: "ok", "fail" (certainly not applied) or "info".
func outcome(err error) string {
	if err == nil || errors.Is(err, goredis.Nil) {
		return history.TypeOK
	}
	var serr sqlError
	if errors.As(err, &serr) {
		return history.TypeFail // the SQL transaction certainly did not commit
	}
	var na notApplied
	if errors.As(err, &na) {
		return history.TypeFail
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) {
		if strings.Contains(rerr.Error(), "outcome unknown") {
			return history.TypeInfo
		}
		return history.TypeFail // an error reply: the server did not apply it
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return history.TypeFail // never sent
	}
	return history.TypeInfo
}

// newWorkload makes workload name for a cluster with ranges.
func newWorkload(name string, ranges []topo.Range) (workload, error) {
	switch name {
	case "register":
		return &registerWorkload{keys: max(3, len(ranges)), ranges: ranges, start: time.Now()}, nil
	case "set":
		return &setWorkload{}, nil
	case "counter":
		return &counterWorkload{}, nil
	case "list":
		return &listWorkload{keys: 3}, nil
	case "bank":
		return newBankWorkload(ranges), nil
	case "txn-list":
		return newTxnListWorkload(ranges), nil
	case "sql-bank":
		return newSQLBankWorkload(ranges), nil
	case "actor-counter":
		return &actorCounterWorkload{keys: 3}, nil
	}
	return nil, fmt.Errorf("unknown workload %q (have %s)", name, strings.Join(AllWorkloads, ", "))
}

// registerWorkload: GET, SET and compare-and-set (WATCH k; GET k; MULTI;
// SET k v; EXEC) on a few keys at a time. The keys change every
// keyPeriod, so each key's history stays small enough for Porcupine. Key
// k lies in range k mod len(ranges), so every range always has keys and
// every node's clients try every range: a range that stops serving shows,
// and its recovery can be measured through every node.
type registerWorkload struct {
	keys   int
	ranges []topo.Range // nil: keys are not placed
	start  time.Time
}

const keyPeriod = 5 * time.Second

func (w *registerWorkload) key(p *client) string {
	gen := int(time.Since(w.start) / keyPeriod)
	k := p.rng.IntN(w.keys)
	name := fmt.Sprintf("reg-%d-%d", gen, k)
	if len(w.ranges) == 0 {
		return name
	}
	return topo.KeyIn(name, w.ranges[k%len(w.ranges)])
}

func (w *registerWorkload) op(ctx context.Context, p *client, op *history.Op) error {
	op.Key = w.key(p)
	expect, haveSeen := p.seen[op.Key]
	switch r := p.rng.IntN(20); {
	case r < 9 || (r >= 16 && !haveSeen):
		op.F = "read"
		v, err := p.rdb.Get(ctx, op.Key).Result()
		if err == nil {
			op.Found, op.Read = true, v
			p.seen[op.Key] = v
		}
		return err
	case r < 16:
		op.F, op.Value = "write", p.unique()
		err := p.rdb.Set(ctx, op.Key, op.Value, 0).Err()
		if err == nil {
			p.seen[op.Key] = op.Value
		}
		return err
	default:
		op.F, op.Value, op.Expect = "cas", p.unique(), expect
		err := p.rdb.Watch(ctx, func(tx *goredis.Tx) error {
			v, err := tx.Get(ctx, op.Key).Result()
			if errors.Is(err, goredis.Nil) || (err == nil && v != op.Expect) {
				return errNotExpected
			}
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
				pipe.Set(ctx, op.Key, op.Value, 0)
				return nil
			})
			return err
		}, op.Key)
		switch {
		case err == nil:
			op.Swapped = true
			p.seen[op.Key] = op.Value
		case errors.Is(err, errNotExpected), errors.Is(err, goredis.TxFailedErr):
			return nil // ok, not swapped
		}
		return err
	}
}

var errNotExpected = errors.New("the value is not the expected one")

func (w *registerWorkload) finals() []history.Op { return nil }

func (w *registerWorkload) check(ops []history.Op, vizPath string) []check.Result {
	return []check.Result{check.Register(ops, vizPath, 2*time.Minute)}
}

// setWorkload: SADD of unique elements to one set, SMEMBERS now and then,
// and a final SMEMBERS through every node.
type setWorkload struct{}

const setKey = "jepsen-set"

func (w *setWorkload) op(ctx context.Context, p *client, op *history.Op) error {
	op.Key = setKey
	if p.rng.IntN(10) == 0 {
		op.F = "read-set"
		return read(ctx, p, op)
	}
	op.F, op.Value = "add", p.unique()
	return p.rdb.SAdd(ctx, setKey, op.Value).Err()
}

func (w *setWorkload) finals() []history.Op { return []history.Op{{F: "read-set", Key: setKey}} }

func (w *setWorkload) check(ops []history.Op, _ string) []check.Result {
	return []check.Result{check.Set(ops)}
}

// counterWorkload: INCR of one key, GET now and then.
type counterWorkload struct{}

const counterKey = "jepsen-counter"

func (w *counterWorkload) op(ctx context.Context, p *client, op *history.Op) error {
	op.Key = counterKey
	if p.rng.IntN(5) == 0 {
		op.F = "read-counter"
		return read(ctx, p, op)
	}
	op.F = "incr"
	v, err := p.rdb.Incr(ctx, counterKey).Result()
	op.Int = v
	return err
}

func (w *counterWorkload) finals() []history.Op {
	return []history.Op{{F: "read-counter", Key: counterKey}}
}

func (w *counterWorkload) check(ops []history.Op, _ string) []check.Result {
	return []check.Result{check.Counter(ops)}
}

// listWorkload: RPUSH of unique elements to a few lists, LRANGE 0 -1 now
// and then, and final reads of every list through every node.
type listWorkload struct{ keys int }

func (w *listWorkload) op(ctx context.Context, p *client, op *history.Op) error {
	op.Key = fmt.Sprintf("jepsen-list-%d", p.rng.IntN(w.keys))
	if p.rng.IntN(5) == 0 {
		op.F = "read-list"
		return read(ctx, p, op)
	}
	op.F, op.Value = "append", p.unique()
	return p.rdb.RPush(ctx, op.Key, op.Value).Err()
}

func (w *listWorkload) finals() []history.Op {
	var out []history.Op
	for k := range w.keys {
		out = append(out, history.Op{F: "read-list", Key: fmt.Sprintf("jepsen-list-%d", k)})
	}
	return out
}

func (w *listWorkload) check(ops []history.Op, _ string) []check.Result {
	return []check.Result{check.ListAppend(ops)}
}

// read performs a whole-value read of a set, counter or list (op.F) for
// client p, during the run or as a final read.
func read(ctx context.Context, p *client, op *history.Op) error {
	switch op.F {
	case "read-set":
		vs, err := p.rdb.SMembers(ctx, op.Key).Result()
		op.Values = vs
		return err
	case "read-list":
		vs, err := p.rdb.LRange(ctx, op.Key, 0, -1).Result()
		op.Values = vs
		return err
	case "read-bank":
		vs, err := p.rdb.MGet(ctx, strings.Fields(op.Key)...).Result()
		op.Values = nil
		for _, v := range vs {
			s, _ := v.(string) // nil: a missing account
			op.Values = append(op.Values, s)
		}
		return err
	case "read-sql-bank":
		return readSQLBank(ctx, p, op)
	case "read-counter":
		if isActorKey(op.Key) {
			return readActorCounter(ctx, p, op)
		}
		v, err := p.rdb.Get(ctx, op.Key).Result()
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		op.Int, err = strconv.ParseInt(v, 10, 64)
		return err
	}
	return fmt.Errorf("no final read %q", op.F)
}
