package grpcnet

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkThroughput sends b.N messages from one Transport to another on
// loopback, as fast as the sender's queue takes them, and a task drains the
// receiving inbox. It reports messages and megabytes per second arriving.
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{100, 1000, 64 << 10} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			nodes := mesh(b, 2)
			src, dst := nodes[0], nodes[1]
			defer src.stop()
			defer dst.stop()
			p := src.tr.peers[2]
			body := make([]byte, size)

			drained := make(chan int)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				n := 0
				for {
					if _, err := dst.in.Recv(ctx); err != nil {
						drained <- n
						return
					}
					n++
				}
			}()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				// Pace the sender below the queue bound: this measures the
				// stream, not the drop counter.
				for {
					p.mu.Lock()
					queued, queuedBytes := len(p.queue)-p.head, p.queuedBytes
					p.mu.Unlock()
					if queued < src.tr.opts.QueueMessages/2 && queuedBytes < src.tr.opts.QueueBytes/2 {
						break
					}
					time.Sleep(20 * time.Microsecond)
				}
				src.send(2, body)
			}
			eventually(b, 30*time.Second, "every message arrives", func() bool {
				return peerStats(dst.tr, 1).Received == uint64(b.N)
			})
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			got := <-drained
			s := peerStats(src.tr, 2)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(s.Sent)/float64(max(s.SentBatches, 1)), "msgs/batch")
			b.ReportMetric(float64(b.N-got), "inbox-drops")
			if s.Dropped != 0 {
				b.Fatalf("the sender dropped %d messages", s.Dropped)
			}
		})
	}
}
