package prod

import (
	"context"
	"testing"
	"time"

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

// TestClockOffset: SetClockOffset shifts Now by the offset, both ways, at
// once.
func TestClockOffset(t *testing.T) {
	r := New(Options{NodeID: 1})
	defer r.Stop()
	for _, d := range []time.Duration{time.Hour, -90 * time.Second, 0} {
		r.SetClockOffset(d)
		before := time.Now()
		got := r.Now()
		after := time.Now()
		if got.Before(before.Add(d)) || got.After(after.Add(d)) {
			t.Fatalf("offset %v: Now = %v, want within [%v, %v]", d, got, before.Add(d), after.Add(d))
		}
	}
}
