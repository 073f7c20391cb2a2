package actor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// Client calls actors from any node. It serves one task at a time.
//
// A call is numbered (the client's identity and a sequence number) and
// sent again, under the same number, after every failure that leaves its
// outcome open, until it gets a definite answer or its context ends: the
// host runs a numbered call at most once.
type Client struct {
	opts   Options
	rt     kernel.Runtime
	rpc    *kernel.RPC
	db     *txn.DB
	id     uint64
	seq    uint64
	routes *Routes
}

// NewClient returns a client on opts.Runtime; opts.Hosts is required.
func NewClient(opts Options) (*Client, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Hosts == nil {
		return nil, fmt.Errorf("%w: a client with no Hosts", ErrInvalidOptions)
	}
	db, err := opts.NewDB("actor-client")
	if err != nil {
		return nil, err
	}
	c := &Client{opts: opts, rt: opts.Runtime, db: db, routes: opts.Routes}
	if c.routes == nil || mutation.On(MutPrivateRoutes) {
		c.routes = NewRoutes()
	}
	c.rpc = kernel.NewRPC(c.rt, "actor-client")
	// A fresh identity per client: a restarted process's numbers start
	// again from 1 and must not be taken for its predecessor's.
	for c.id == 0 {
		c.id = c.rt.Rand().Uint64()
	}
	return c, nil
}

// Call invokes method on the actor ref with payload and returns its reply.
// A *MethodError, ErrOverloaded, ErrStaleRequest and ErrUnknownType are
// definite (the call changed nothing, or ran before); ctx's error means
// the call may or may not have run.
func (c *Client) Call(ctx context.Context, ref Ref, method string, payload []byte) ([]byte, error) {
	c.seq++
	return c.CallAs(ctx, ref, method, payload, c.id, c.seq)
}

// CallAs is Call numbered by another caller (a remote client of the gRPC
// API, which sends a call again under the same numbers): caller is its
// identity (not 0), seq its number for this call, increasing per caller.
func (c *Client) CallAs(ctx context.Context, ref Ref, method string, payload []byte, caller, seq uint64) ([]byte, error) {
	if caller == 0 || seq == 0 {
		return nil, errors.New("actor: a call numbered 0")
	}
	return c.send(ctx, ref, method, request{Ref: ref, Method: method, Client: caller, Seq: seq, Payload: payload})
}

// fire sends a due reminder's firing to its actor.
func (c *Client) fire(ctx context.Context, d reminderDue) error {
	_, err := c.send(ctx, d.ref, "reminder "+d.name, request{Ref: d.ref, Reminder: d.name, Due: d.due})
	return err
}

// send delivers a request to the actor's host until a definite answer.
// Each attempt tells the host how long it waits (request.Budget).
func (c *Client) send(ctx context.Context, ref Ref, what string, req request) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		node, err := c.route(ctx, ref)
		if err == nil {
			start := c.rt.Monotonic()
			actx, cancel := c.rt.WithTimeout(ctx, c.opts.AttemptTimeout)
			// The attempt's own timeout, not what is left of ctx: a
			// deadline compared with a clock reading is wrong across a
			// clock step, and a host dropping a call too early would
			// refuse it on every attempt.
			req.Budget = c.opts.AttemptTimeout
			var out []byte
			out, err = c.rpc.Call(actx, node, Port, req.encode())
			cancel()
			if err == nil {
				c.routes.found(ref, node)
				return out, nil
			}
			err = fromWire(err)
			if unanswered(err) && c.rt.Monotonic()-start >= c.opts.AttemptTimeout/2 {
				// The host let (most of) an attempt pass without a word:
				// down, paused or partitioned away. New activations go
				// elsewhere for a while.
				c.routes.suspectUntil(node, c.rt.Monotonic()+suspicion*c.opts.AttemptTimeout)
			}
		}
		var nh *NotHereError
		var me *MethodError
		switch {
		case errors.As(err, &nh):
			c.routes.moved(ref, nh.Node)
			continue
		case errors.As(err, &me), errors.Is(err, ErrOverloaded), errors.Is(err, ErrStaleRequest), errors.Is(err, ErrUnknownType):
			return nil, err
		}
		// The host is down, deposed or unsure: find the actor again.
		c.routes.forget(ref, node)
		backoff := time.Duration(1+c.rt.Rand().IntN(1<<min(attempt, 5))) * time.Millisecond
		if serr := c.rt.Sleep(ctx, backoff); serr != nil {
			return nil, fmt.Errorf("actor call %s.%s: %w (last attempt: %v)", ref, what, serr, err)
		}
	}
}

// suspicion is how many attempt timeouts a host that let an attempt run
// out is kept out of placement.
const suspicion = 4

// unanswered reports whether an attempt ended with no answer from the
// host (its time ran out, or the caller's did).
func unanswered(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// route finds the host to send a call for ref to: where it was last
// found (unless that host is suspected), else the directory's holder
// while its lease runs, else a host chosen by the placement strategy
// among those not suspected (which activates it).
func (c *Client) route(ctx context.Context, ref Ref) (kernel.NodeID, error) {
	if n, ok := c.routes.lookup(ref); ok && !c.routes.suspected(n, c.rt.Monotonic()) {
		return n, nil
	}
	hosts := c.opts.Hosts()
	v, found, err := c.db.Get(ctx, dirKey(ref))
	if err != nil {
		return 0, err
	}
	if found {
		e, err := decodeDirEntry(v)
		if err != nil {
			return 0, fmt.Errorf("actor %s: directory: %w", ref, err)
		}
		if e.Expiry > c.opts.Wall().UnixNano() && slices.Contains(hosts, e.Node) {
			return e.Node, nil
		}
	}
	return c.place(ctx, ref, hosts)
}

// place chooses a host for an actor nobody holds, by the placement
// strategy, among the hosts not suspected.
func (c *Client) place(ctx context.Context, ref Ref, hosts []kernel.NodeID) (kernel.NodeID, error) {
	if len(hosts) == 0 {
		return 0, errors.New("actor: no node hosts actors")
	}
	hosts = c.routes.healthy(hosts, c.rt.Monotonic())
	switch c.opts.Placement {
	case PlaceLocal:
		if self := c.rt.NodeID(); slices.Contains(hosts, self) {
			return self, nil
		}
	case PlaceHash:
		sorted := slices.Sorted(slices.Values(hosts))
		f := fnv.New64a()
		f.Write(nameKey(ref))
		return sorted[f.Sum64()%uint64(len(sorted))], nil
	case PlaceLeastLoaded:
		if n, ok := c.leastLoaded(ctx, hosts); ok {
			return n, nil
		}
	}
	return hosts[c.rt.Rand().IntN(len(hosts))], nil
}

// loadMethod is the method of the request (with no actor type) that
// asks a host how many activations it runs.
const loadMethod = "load"

// leastLoaded asks every host its activation count (each within a
// quarter attempt) and returns the one with fewest, the first in host
// order on a tie; false if none answered.
func (c *Client) leastLoaded(ctx context.Context, hosts []kernel.NodeID) (kernel.NodeID, bool) {
	body := request{Method: loadMethod}.encode()
	var best kernel.NodeID
	bestLoad := uint64(0)
	for _, n := range slices.Sorted(slices.Values(hosts)) {
		actx, cancel := c.rt.WithTimeout(ctx, c.opts.AttemptTimeout/4)
		out, err := c.rpc.Call(actx, n, Port, body)
		cancel()
		if err != nil {
			continue // down or slow: not the place for a new activation
		}
		load, w := binary.Uvarint(out)
		if w <= 0 {
			continue
		}
		if best == 0 || load < bestLoad {
			best, bestLoad = n, load
		}
	}
	return best, best != 0
}
