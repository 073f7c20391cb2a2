package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
)

// This file holds the key-value client workload that the register scenarios
// share: a few clients on their own nodes, a small hot key set, every
// operation recorded in a History and judged by Porcupine.

// errNotApplied marks a caller's failure as definite: the operation did not
// happen (a service's client library wraps it).
var errNotApplied = consensus.ErrNotApplied

// firstClient is the node ID of client 0; clients are never fault targets.
const firstClient kernel.NodeID = 101

// kvCaller performs one operation for one client against some service.
type kvCaller func(ctx context.Context, in KVInput) (KVOutput, error)

type kvWorkload struct {
	s         *Sim
	opTimeout time.Duration
	hist      *History
	servers   []kernel.NodeID
	keys      []string
	// counters are keys the clients only increment and read (OpIncr,
	// OpGet); none unless a scenario names some.
	counters []string
	// hot, if set, is a counter that half of every client's operations
	// increment, and hotServed when one was last answered.
	hot string
	// Since the heal: the first and last answers on hot, and how many.
	hotFirst, hotLast int64
	hotAnswered       int
	stopped           bool
	healed            int64   // virtual time of the heal; -1 before
	served            []int64 // per client: virtual time of its last definite answer
	// inflight is, per client, the operation it is waiting on: a client
	// node that crashes leaves it with an unknown outcome.
	inflight []*Pending
	// boundByChangesOnly: the service refuses a client's write numbered
	// below the last one that changed the key, not below the last one it
	// ran (actors record a caller's request only with a state change), so
	// a compare-and-set that did not swap bounds nothing.
	boundByChangesOnly bool
	// Counters for reports and sanity checks.
	ok, unknown, refused int
}

// newKVWorkload starts clients; newCaller builds each client's way to reach
// the service (it runs on the client's node, at the client's start).
func newKVWorkload(s *Sim, servers []kernel.NodeID, clients int, newCaller func(rt kernel.Runtime, client int) kvCaller) *kvWorkload {
	w := &kvWorkload{s: s, hist: s.NewHistory(), servers: servers, opTimeout: 200 * time.Millisecond,
		keys: []string{"x", "y", "z"}, healed: -1, served: make([]int64, clients), inflight: make([]*Pending, clients)}
	for i := range clients {
		s.AddNode(firstClient+kernel.NodeID(i), func(rt kernel.Runtime) {
			rt.Go("client", func(ctx context.Context) { w.client(ctx, rt, i, newCaller(rt, i)) })
		})
	}
	return w
}

func (w *kvWorkload) client(ctx context.Context, rt kernel.Runtime, i int, call kvCaller) {
	rng := rt.Rand()
	open := map[string][]int{} // this client's writes with unknown outcomes, by key
	for n := 0; !w.stopped; n++ {
		in := w.nextOp(rng, i, n)
		p := w.hist.Call(i, in)
		w.inflight[i] = p
		cctx, cancel := rt.WithTimeout(ctx, w.opTimeout)
		out, err := call(cctx, in)
		cancel()
		w.inflight[i] = nil
		var remote *kernel.RemoteError
		switch {
		case err == nil:
			ret := p.Return(out)
			if in.Op != OpGet && (!w.boundByChangesOnly || in.Op != OpCAS || out.OK) {
				// Both services refuse a client's write numbered below the
				// last one they applied for that client — per range in the
				// replicated store, so only writes to the same key (same
				// range) settle the open ones.
				for _, op := range open[in.Key] {
					w.hist.Bound(op, ret)
				}
				delete(open, in.Key)
			}
			w.ok++
			w.served[i] = w.s.now
			w.noteHot(in.Key)
		case errors.As(err, &remote) || errors.Is(err, errNotApplied):
			// The service definitely did not perform it: nothing to record.
			w.refused++
			w.served[i] = w.s.now
		default:
			if op := p.Unknown(); op >= 0 {
				open[in.Key] = append(open[in.Key], op)
			}
			w.unknown++
		}
		rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(10*time.Millisecond)))
	}
}

// crashClients crashes a random client node now and then until the heal,
// and restarts it after a short downtime: the client comes back as a new
// incarnation that knows nothing of its past (a new identity, sequence
// numbers from 1), while its last operation, and any retry of it still in
// the network, may yet take effect. Its open writes stay open: the next
// incarnation's writes bound nothing of the old one's.
func (w *kvWorkload) crashClients(mean time.Duration) {
	crashClientsUntil(w.s, len(w.served), mean, func() bool { return w.healed >= 0 || w.stopped }, func(i int) {
		if p := w.inflight[i]; p != nil {
			w.inflight[i] = nil
			if op := p.Unknown(); op >= 0 {
				w.unknown++
			}
		}
	})
}

// crashClientsUntil crashes one of the clients client nodes (firstClient
// on) about every mean, until over says so, and restarts it after a
// short downtime; crashed hears of each crash first (the client's
// operation in flight has an unknown outcome from then on).
func crashClientsUntil(s *Sim, clients int, mean time.Duration, over func() bool, crashed func(i int)) {
	exp := func(d time.Duration) time.Duration { return time.Duration(s.rng.ExpFloat64() * float64(d)) }
	var next func()
	next = func() {
		if over() {
			return
		}
		i := s.rng.IntN(clients)
		n := s.Node(firstClient + kernel.NodeID(i))
		if n.Up() {
			crashed(i)
			n.Crash()
			s.After(exp(20*time.Millisecond), "client restart", n.Restart)
		}
		s.After(exp(mean), "client crash", next)
	}
	s.After(exp(mean), "client crash", next)
}

// noteHot notes an answer on key after the heal (kvWorkload.hot).
func (w *kvWorkload) noteHot(key string) {
	if w.hot == "" || w.healed < 0 || key != w.hot {
		return
	}
	if w.hotAnswered == 0 {
		w.hotFirst = w.s.now
	}
	w.hotAnswered++
	w.hotLast = w.s.now
}

func (w *kvWorkload) nextOp(rng *rand.Rand, client, n int) KVInput {
	if w.hot != "" && rng.IntN(2) == 0 {
		return KVInput{Op: OpIncr, Key: w.hot}
	}
	i := rng.IntN(len(w.keys) + len(w.counters))
	if i >= len(w.keys) {
		key := w.counters[i-len(w.keys)]
		if rng.IntN(10) < 3 {
			return KVInput{Op: OpGet, Key: key}
		}
		return KVInput{Op: OpIncr, Key: key}
	}
	key := w.keys[i]
	val := fmt.Sprintf("c%d.%d", client, n)
	switch r := rng.IntN(10); {
	case r < 5:
		return KVInput{Op: OpGet, Key: key}
	case r < 7:
		return KVInput{Op: OpPut, Key: key, Value: val}
	case r < 8:
		// A delete: the registers store "" (their missing value), the
		// replicated store removes the key (its deletion path, Pebble
		// tombstones, snapshots that must carry them).
		return KVInput{Op: OpDelete, Key: key}
	default:
		// Expect a value a client recently wrote, or "" for a fresh key.
		expect := ""
		if n > 0 {
			expect = fmt.Sprintf("c%d.%d", rng.IntN(len(w.served)), rng.IntN(n))
		}
		return KVInput{Op: OpCAS, Key: key, Value: val, Expect: expect}
	}
}

func (w *kvWorkload) Targets() []kernel.NodeID { return w.servers }
func (w *kvWorkload) Healed() {
	w.healed = w.s.now
	for i := range w.served {
		w.s.Node(firstClient + kernel.NodeID(i)).Restart() // a no-op for a running one
	}
}
func (w *kvWorkload) Stop() { w.stopped = true }

func (w *kvWorkload) Progressed() bool {
	for _, t := range w.served {
		if t <= w.healed {
			return false
		}
	}
	return true
}

func (w *kvWorkload) Check(vizPath string) error {
	// Progress was required, so a run without answers is a broken harness,
	// not a pass.
	if w.ok == 0 {
		return errors.New("no operation completed: the history is empty")
	}
	return CheckLinearizable(w.hist, vizPath)
}

// Request encoding shared by the register services:
// op(1) session(8) seq(8) key value expect (each uvarint-length-prefixed).
type kvRequest struct {
	in       KVInput
	session  uint64
	sequence uint64
}

func encodeKV(r kvRequest) []byte {
	b := []byte{byte(r.in.Op)}
	b = binary.BigEndian.AppendUint64(b, r.session)
	b = binary.BigEndian.AppendUint64(b, r.sequence)
	for _, s := range []string{r.in.Key, r.in.Value, r.in.Expect} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

var errBadRequest = errors.New("malformed request")

func decodeKV(b []byte) (kvRequest, error) {
	if len(b) < 17 {
		return kvRequest{}, errBadRequest
	}
	r := kvRequest{in: KVInput{Op: KVOp(b[0])}, session: binary.BigEndian.Uint64(b[1:]), sequence: binary.BigEndian.Uint64(b[9:])}
	b = b[17:]
	fields := []*string{&r.in.Key, &r.in.Value, &r.in.Expect}
	for _, f := range fields {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return kvRequest{}, errBadRequest
		}
		*f = string(b[w : w+int(n)])
		b = b[w+int(n):]
	}
	return r, nil
}

// Reply encoding: ok(1) value.
func encodeReply(out KVOutput) []byte {
	b := []byte{0}
	if out.OK {
		b[0] = 1
	}
	return append(b, out.Value...)
}

func decodeReply(b []byte) (KVOutput, error) {
	if len(b) < 1 {
		return KVOutput{}, errBadRequest
	}
	return KVOutput{OK: b[0] == 1, Value: string(b[1:])}, nil
}

// rpcCaller sends each operation to the node target() names, with a fresh
// sequence number under a random session.
func rpcCaller(rt kernel.Runtime, target func(in KVInput) kernel.NodeID, onTimeout func(in KVInput)) kvCaller {
	rpc := kernel.NewRPC(rt, "kv")
	session := rt.Rand().Uint64()
	var seq uint64
	return func(ctx context.Context, in KVInput) (KVOutput, error) {
		seq++
		resp, err := rpc.Call(ctx, target(in), "reg", encodeKV(kvRequest{in: in, session: session, sequence: seq}))
		if err != nil {
			if ctx.Err() != nil && onTimeout != nil {
				onTimeout(in)
			}
			return KVOutput{}, err
		}
		return decodeReply(resp)
	}
}
