package prod

import (
	"context"
	"testing"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/kerneltest"
)

func TestConformance(t *testing.T) {
	kerneltest.Run(t, func(t *testing.T, serve func(kernel.Runtime), fn func(context.Context, kernel.Runtime)) {
		net := NewLocalNetwork()
		a := New(Options{NodeID: 1, Net: net})
		b := New(Options{NodeID: 2, Net: net})
		defer b.Stop()
		defer a.Stop()
		if serve != nil {
			serve(b)
		}
		done := make(chan struct{})
		a.Go("test", func(ctx context.Context) {
			defer close(done)
			fn(ctx, a)
		})
		<-done
	})
}
