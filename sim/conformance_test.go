package sim

import (
	"context"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/kerneltest"
)

func TestConformance(t *testing.T) {
	kerneltest.Run(t, func(t *testing.T, serve func(kernel.Runtime), fn func(context.Context, kernel.Runtime)) {
		s := New(1)
		defer s.Close()
		if serve != nil {
			s.AddNode(2, serve)
		}
		done := false
		s.AddNode(1, func(rt kernel.Runtime) {
			rt.Go("test", func(ctx context.Context) {
				fn(ctx, rt)
				done = true
			})
		})
		if err := s.RunUntil(func() bool { return done }, time.Hour); err != nil {
			t.Fatal(err)
		}
	})
}
