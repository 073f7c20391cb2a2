// Package good uses the neighbours of every banned name in allowed ways; the
// lint must report nothing here.
package good

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"time"
)

// Runtime stands in for kernel.Runtime: its methods share names with the
// banned package functions, which must not confuse the lint.
type Runtime interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
	WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc)
	Go(name string, fn func(ctx context.Context))
	Rand() *rand.Rand
}

type state struct {
	timeout  time.Duration
	deadline time.Time
	inbox    chan int
	outbox   chan<- string
	events   <-chan struct{}
	src      rand.Source
}

var (
	errMissing = os.ErrNotExist
	tick       = 10 * time.Millisecond
)

func allowed(ctx context.Context, rt Runtime, err error) {
	_ = rt.Now()
	_ = rt.Sleep(ctx, time.Second)
	ctx, cancel := rt.WithTimeout(ctx, time.Second)
	defer cancel()
	ctx, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	rt.Go("worker", func(context.Context) {})

	r := rand.New(rand.NewPCG(1, 2))
	_ = r.IntN(10)
	// A local named like the package is not the package.
	rand := rt.Rand()
	_ = rand.IntN(10)

	_ = errors.Is(err, errMissing) || os.IsNotExist(err)
	var mode os.FileMode = 0o644
	_ = mode
	_ = make(chan int, 1)
	_ = time.Unix(0, 0).Add(tick)
}
