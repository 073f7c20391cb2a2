package respwire

import (
	"context"
	"time"
)

// workerIdle is how long a worker waits for another command before it
// ends.
const workerIdle = 10 * time.Second

// workers runs a pipeline's independent commands (doConcurrent) on
// goroutines that live on between commands. A goroutine started per
// command spent a third of the process's CPU growing its stack
// (runtime.newstack and copystack: every command's call chain through
// the session and consensus is deeper than a new goroutine's stack)
// under redis-benchmark -P 16; a worker's stack has grown once. gRPC's
// server keeps stream workers for the same reason.
type workers struct {
	ctx   context.Context // ends every worker
	tasks chan func()     // unbuffered: a send succeeds only to an idle worker
}

func newWorkers(ctx context.Context) *workers {
	return &workers{ctx: ctx, tasks: make(chan func())}
}

// run runs f on an idle worker, or on a new one if none is idle.
func (w *workers) run(f func()) {
	select {
	case w.tasks <- f:
	default:
		go w.loop(f)
	}
}

// loop runs f, then every task handed to it, until it has waited
// workerIdle for one or the listener has shut down.
func (w *workers) loop(f func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-w.tasks:
		case <-idle.C:
			return
		case <-w.ctx.Done():
			return
		}
	}
}
