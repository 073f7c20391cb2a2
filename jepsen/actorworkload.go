package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/orbitkernel/orbit/adapters/actorapi"
	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/kernel/actor"
)

// actorCounterWorkload: counters that are actors (issue 16), called over
// the actor service's gRPC API (orbit serve --actors bank): each counter
// is the bank example's account actor, an increment a deposit of 1 (its
// reply, the new balance, is the counter's value), a read its balance.
// The Go client numbers every call and sends an unsure one again under
// the same numbers, so an increment runs at most once; check.Counter
// holds every reply to the increments attempted and the final reads
// (taken through every node) to the ok and unsure ones.
type actorCounterWorkload struct{ keys int }

func (w *actorCounterWorkload) key(i int) string { return fmt.Sprintf("jepsen-actor-%d", i) }

func (w *actorCounterWorkload) op(ctx context.Context, p *client, op *history.Op) error {
	op.Key = w.key(p.rng.IntN(w.keys))
	if p.rng.IntN(5) == 0 {
		op.F = "read-counter"
		return readActorCounter(ctx, p, op)
	}
	op.F = "incr"
	b, err := callAccount(ctx, p, op.Key, "deposit", `{"amount": 1}`)
	op.Int = b
	return err
}

func (w *actorCounterWorkload) finals() []history.Op {
	var out []history.Op
	for i := range w.keys {
		out = append(out, history.Op{F: "read-counter", Key: w.key(i)})
	}
	return out
}

func (w *actorCounterWorkload) check(ops []history.Op, _ string) []check.Result {
	return []check.Result{check.Counter(ops)}
}

// isActorKey says whether a read is of an actor counter.
func isActorKey(key string) bool { return len(key) > 13 && key[:13] == "jepsen-actor-" }

func readActorCounter(ctx context.Context, p *client, op *history.Op) error {
	b, err := callAccount(ctx, p, op.Key, "balance", "")
	op.Int = b
	return err
}

// callAccount calls an account actor through the client's node and
// answers the balance it replies.
func callAccount(ctx context.Context, p *client, key, method, payload string) (int64, error) {
	if p.actors == nil {
		creds := insecure.NewCredentials()
		if tc := p.node.tls.clientConfig(); tc != nil {
			creds = credentials.NewTLS(tc)
		}
		cl, err := actorapi.Dial(p.node.grpcAddr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return 0, err
		}
		cl.AttemptTimeout = p.timeout / 3
		p.actors = cl
	}
	// The operation's bound, as go-redis's read timeout is for the Redis
	// workloads: the client sends an unsure call again until then, and
	// an operation that outlives it is unsure (info).
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	out, err := p.actors.Invoke(ctx, "account", key, method, []byte(payload))
	if err != nil {
		return 0, actorOutcome(err)
	}
	var st struct {
		Balance int64 `json:"balance"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("account %s answered %q: %w", key, out, err)
	}
	return st.Balance, nil
}

// actorOutcome marks the actor errors that say the call did not run.
func actorOutcome(err error) error {
	var me *actor.MethodError
	if errors.As(err, &me) || errors.Is(err, actor.ErrOverloaded) || errors.Is(err, actor.ErrUnknownType) || errors.Is(err, actor.ErrStaleRequest) {
		return notApplied{err}
	}
	return err // a timeout: unknown
}

// notApplied is an error after which the operation certainly did not
// happen.
type notApplied struct{ error }

func (e notApplied) Unwrap() error { return e.error }
