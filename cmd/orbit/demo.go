package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/sim"
)

// The demo cluster: three server nodes that gossip heartbeats and answer
// "ping" over RPC, and one client node that pings them in turn. The
// simulator runs it under the fault plan the seed draws, heals, requires that
// the client is served by every server again, and prints what happened.

const demoServers = 3
const demoClient kernel.NodeID = 100

type demoWorkload struct {
	s       *sim.Sim
	stopped bool
	healed  time.Duration
	// lastOK is when each server last answered the client.
	lastOK             map[kernel.NodeID]time.Duration
	ok, timeout, wrong int
	heartbeats         map[kernel.NodeID]int
}

func demoServer(w *demoWorkload) func(rt kernel.Runtime) {
	return func(rt kernel.Runtime) {
		kernel.Serve(rt, "ping", func(_ context.Context, from kernel.NodeID, req []byte) ([]byte, error) {
			return append([]byte("pong:"), req...), nil
		})
		in := rt.Net().Listen("heartbeat")
		rt.Go("heartbeat-recv", func(ctx context.Context) {
			for {
				if _, err := in.Recv(ctx); err != nil {
					return
				}
				w.heartbeats[rt.NodeID()]++
			}
		})
		rt.Go("heartbeat-send", func(ctx context.Context) {
			for rt.Sleep(ctx, 100*time.Millisecond) == nil {
				for peer := kernel.NodeID(1); peer <= demoServers; peer++ {
					if peer != rt.NodeID() {
						rt.Net().Send(peer, "heartbeat", nil)
					}
				}
			}
		})
	}
}

func (w *demoWorkload) client(rt kernel.Runtime) {
	rpc := kernel.NewRPC(rt, "demo")
	rt.Go("pinger", func(ctx context.Context) {
		for i := 0; !w.stopped; i++ {
			to := kernel.NodeID(1 + i%demoServers)
			cctx, cancel := rt.WithTimeout(ctx, 100*time.Millisecond)
			req := fmt.Sprintf("%d", i)
			resp, err := rpc.Call(cctx, to, "ping", []byte(req))
			cancel()
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				w.timeout++
			case err != nil || string(resp) != "pong:"+req:
				w.wrong++
			default:
				w.ok++
				w.lastOK[to] = w.s.Elapsed()
			}
			rt.Sleep(ctx, 20*time.Millisecond)
		}
	})
}

func (w *demoWorkload) Targets() []kernel.NodeID { return []kernel.NodeID{1, 2, 3} }
func (w *demoWorkload) Healed()                  { w.healed = w.s.Elapsed() }
func (w *demoWorkload) Stop()                    { w.stopped = true }
func (w *demoWorkload) Progressed() bool {
	for id := kernel.NodeID(1); id <= demoServers; id++ {
		if w.lastOK[id] <= w.healed {
			return false
		}
	}
	return true
}

func (w *demoWorkload) Check(string) error {
	if w.wrong > 0 {
		return fmt.Errorf("%d pings got a wrong answer", w.wrong)
	}
	return nil
}

func runDemo(out io.Writer, seed uint64, verbose bool) int {
	var w *demoWorkload
	sc := sim.Scenario{
		Name: "demo",
		Setup: func(s *sim.Sim) sim.Workload {
			if verbose {
				s.SetLog(out)
			}
			w = &demoWorkload{s: s, lastOK: map[kernel.NodeID]time.Duration{}, heartbeats: map[kernel.NodeID]int{}}
			for id := kernel.NodeID(1); id <= demoServers; id++ {
				s.AddNode(id, demoServer(w))
			}
			s.AddNode(demoClient, w.client)
			return w
		},
		FaultTime:    5 * time.Second,
		ProgressTime: 20 * time.Second,
		QuiesceTime:  time.Second,
	}
	r := sim.Run(sc, seed)
	fmt.Fprintf(out, "Orbit demo: 3 servers and a client in the deterministic simulator, seed %d\n\n", seed)
	fmt.Fprintf(out, "fault plan drawn from the seed:\n  %s\n\n", strings.ReplaceAll(r.Plan.String(), "\n", "\n  "))
	fmt.Fprintf(out, "faults injected (%d):\n  %s\n\n", len(r.Faults), strings.Join(r.Faults, "\n  "))
	fmt.Fprintf(out, "client: %d pings answered, %d timed out, %d wrong\n", w.ok, w.timeout, w.wrong)
	fmt.Fprintf(out, "heartbeats received: n1=%d n2=%d n3=%d\n", w.heartbeats[1], w.heartbeats[2], w.heartbeats[3])
	fmt.Fprintf(out, "%s\n", r.Line())
	if r.Err != nil {
		fmt.Fprintf(out, "\nFAILED in %s: %v\nreplay: go run ./cmd/orbit demo -seed %d -v\n", r.Phase, r.Err, seed)
		return 1
	}
	fmt.Fprintf(out, "\nafter healing, every server answered again. Run it again with the same seed: same trace hash.\n")
	return 0
}
