package grpcnet

import (
	"context"
	"testing"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/kerneltest"
)

// TestConformance runs the runtime contract's checks on production runtimes
// whose network is a pair of Transports on loopback.
func TestConformance(t *testing.T) {
	kerneltest.Run(t, func(t *testing.T, serve func(kernel.Runtime), fn func(context.Context, kernel.Runtime)) {
		nodes := mesh(t, 2)
		a, b := nodes[0], nodes[1]
		defer b.stop()
		defer a.stop()
		if serve != nil {
			serve(b.rt)
		}
		done := make(chan struct{})
		a.rt.Go("test", func(ctx context.Context) {
			defer close(done)
			fn(ctx, a.rt)
		})
		<-done
	})
}
