package sim

import (
	"context"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// BenchmarkPingPong measures scheduled events per wall second: two tasks on
// one node bounce a message through mailboxes, so every event is a task
// switch.
func BenchmarkPingPong(b *testing.B) {
	s := New(1)
	defer s.Close()
	s.AddNode(1, func(rt kernel.Runtime) {
		ping := kernel.NewMailbox[int](rt, "ping", 1)
		pong := kernel.NewMailbox[int](rt, "pong", 1)
		rt.Go("ping", func(ctx context.Context) {
			for i := 0; ; i++ {
				ping.Send(i)
				if _, err := pong.Recv(ctx); err != nil {
					return
				}
			}
		})
		rt.Go("pong", func(ctx context.Context) {
			for {
				v, err := ping.Recv(ctx)
				if err != nil {
					return
				}
				pong.Send(v)
			}
		})
	})
	b.ReportAllocs()
	b.ResetTimer()
	start := s.Events()
	for i := 0; i < b.N; i++ {
		s.step()
	}
	b.StopTimer()
	events := s.Events() - start
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIdleCluster measures virtual seconds per wall second for five
// nodes that only exchange heartbeats every 100 ms.
func BenchmarkIdleCluster(b *testing.B) {
	s := New(1)
	defer s.Close()
	const nodes = 5
	for id := kernel.NodeID(1); id <= nodes; id++ {
		s.AddNode(id, func(rt kernel.Runtime) {
			in := rt.Net().Listen("hb")
			rt.Go("recv", func(ctx context.Context) {
				for {
					if _, err := in.Recv(ctx); err != nil {
						return
					}
				}
			})
			rt.Go("heartbeat", func(ctx context.Context) {
				for rt.Sleep(ctx, 100*time.Millisecond) == nil {
					for peer := kernel.NodeID(1); peer <= nodes; peer++ {
						if peer != rt.NodeID() {
							rt.Net().Send(peer, "hb", []byte("hb"))
						}
					}
				}
			})
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	virtual := time.Duration(0)
	for i := 0; i < b.N; i++ {
		s.RunFor(10 * time.Second)
		virtual += 10 * time.Second
	}
	b.StopTimer()
	b.ReportMetric(virtual.Seconds()/b.Elapsed().Seconds(), "virtual-s/wall-s")
	b.ReportMetric(float64(s.Events())/b.Elapsed().Seconds(), "events/s")
}
