package kernel

import (
	"context"
	"sync"
)

// Future is a value that one task sets once and others wait for.
type Future[T any] struct {
	mu   sync.Mutex
	cond Cond
	done bool
	val  T
	err  error
}

// NewFuture returns an unset future; what appears in deadlock reports.
func NewFuture[T any](rt Runtime, what string) *Future[T] {
	f := &Future[T]{}
	f.cond = rt.NewCond(&f.mu, "wait "+what)
	return f
}

// Set resolves the future and reports whether this call did so; only the
// first Set counts.
func (f *Future[T]) Set(v T, err error) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return false
	}
	f.done, f.val, f.err = true, v, err
	f.cond.Broadcast()
	return true
}

// Wait blocks until the future is set or ctx ends.
func (f *Future[T]) Wait(ctx context.Context) (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.done {
		if err := f.cond.Wait(ctx); err != nil {
			var zero T
			return zero, err
		}
	}
	return f.val, f.err
}

// Done reports whether the future is set.
func (f *Future[T]) Done() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}
