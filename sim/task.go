package sim

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/orbitkernel/orbit/kernel"
)

type taskState uint8

const (
	taskNew taskState = iota // spawned, never run
	taskRunning
	taskParked
	taskDone
)

// task is a simulated thread of control: a goroutine that runs only when the
// scheduler hands it the processor.
type task struct {
	id    uint64
	name  string
	node  *Node
	inc   uint32 // the node incarnation that owns it
	state taskState
	// gen counts parks; a wake-up carries the generation it is for, so stale
	// wake-ups (a timer after a message already woke the task) are ignored.
	gen    uint64
	what   string        // what a parked task waits for
	resume chan struct{} // the scheduler hands the processor over here
	killed bool          // its node died: unwind at the next runtime call
	goid   uint64        // its goroutine, to tell its disk I/O from Pebble's
	// owed is virtual time the task spent in simulated disk I/O, paid at its
	// next park (never inside the I/O call, which may hold library locks).
	owed int64
}

// errKilled unwinds a task whose node died.
type errKilled struct{}

// spawn creates a task on node n and makes it runnable now.
func (s *Sim) spawn(n *Node, name string, fn func(ctx context.Context)) {
	s.nextTask++
	t := &task{id: s.nextTask, name: name, node: n, inc: n.inc, resume: make(chan struct{})}
	s.live[t.id] = t
	n.tasks[t.id] = t
	ctx := n.ctx
	go s.taskMain(t, ctx, fn)
	t.state = taskParked
	t.what = "start"
	s.push(event{at: s.now, kind: evResume, task: t, gen: t.gen, node: n, inc: t.inc})
}

func (s *Sim) taskMain(t *task, ctx context.Context, fn func(ctx context.Context)) {
	t.goid = goid()
	taskOfGoid.Store(t.goid, t)
	<-t.resume
	s.runningGoid.Store(t.goid)
	defer func() {
		p := recover()
		var crash kernel.NodeCrash
		switch {
		case p == nil:
		case isKilled(p) || t.killed:
			// Unwinding a dead node's task: whatever its deferred code
			// panics with on the way out (a library refusing to close on a
			// dead disk) is part of dying, not a bug.
		case asCrash(p, &crash):
			// The component asked its node to die (a disk fault, a failed
			// sync). Its other tasks end after this one gives the processor
			// back.
			// back: the scheduler crashes the node as soon as it has the
			// processor again.
			s.crashing, s.crashReason = t.node, crash.Error()
		default:
			s.fail(&TaskPanic{Node: t.node.id, Task: t.name, Value: p, Stack: string(debug.Stack())})
		}
		t.state = taskDone
		taskOfGoid.Delete(t.goid)
		delete(s.live, t.id)
		delete(t.node.tasks, t.id)
		s.yield <- struct{}{}
	}()
	if t.killed {
		return
	}
	fn(ctx)
}

func isKilled(p any) bool { _, ok := p.(errKilled); return ok }

func asCrash(p any, c *kernel.NodeCrash) bool {
	if err, ok := p.(error); ok {
		return errors.As(err, c)
	}
	return false
}

// switchTo hands the processor to t and waits until t parks or returns.
func (s *Sim) switchTo(t *task) {
	if s.running != nil {
		panic("sim: switch while a task is running")
	}
	s.running = t
	s.runningTask.Store(t)
	t.state = taskRunning
	t.resume <- struct{}{}
	<-s.yield
	s.runningTask.Store(nil)
	s.running = nil
	if n := s.crashing; n != nil {
		s.crashing = nil
		n.crash(s.crashReason)
	}
}

// current returns the running task; it panics when called from outside one,
// since only tasks may block.
func (s *Sim) current(op string) *task {
	t := s.running
	if t == nil {
		panic(fmt.Sprintf("sim: %s called outside a task (on the scheduler or a foreign goroutine)", op))
	}
	if t.killed {
		panic(errKilled{})
	}
	return t
}

// park gives the processor back until a wake-up for t's current generation
// runs. The caller has bumped t.gen and registered its wake-ups.
func (s *Sim) park(t *task, what string) {
	t.state = taskParked
	t.what = what
	s.yield <- struct{}{}
	<-t.resume
	s.runningGoid.Store(t.goid)
	if t.killed {
		panic(errKilled{})
	}
}

// payOwed sleeps t for the virtual time its disk I/O took.
func (s *Sim) payOwed(t *task) {
	d := t.owed
	t.owed = 0
	t.gen++
	s.wakeAt(waiter{t, t.gen}, s.now+d)
	s.park(t, "disk I/O")
}

// waiter is a task parked at a given generation.
type waiter struct {
	t   *task
	gen uint64
}

// wakeAt schedules w to resume at virtual time at.
func (s *Sim) wakeAt(w waiter, at int64) {
	s.push(event{at: at, kind: evResume, task: w.t, gen: w.gen, node: w.t.node, inc: w.t.inc})
}

// wake schedules w to resume now, if it still waits at that generation.
func (s *Sim) wake(w waiter) {
	if w.t.state == taskParked && w.t.gen == w.gen {
		s.wakeAt(w, s.now)
	}
}

// block parks the running task until a wake-up registered by register, a
// timer at wakeAt (if >= 0), or the end of ctx. It returns ctx.Err() if ctx
// ended. before runs after registration and before parking (Cond.Wait
// releases its lock there); after runs once the task holds the processor
// again.
func (s *Sim) block(ctx context.Context, what string, wakeAt int64, register func(waiter), before, after func()) error {
	t := s.current(what)
	if t.owed > 0 {
		// Pay before registering (paying parks at a generation of its own),
		// and never while holding the caller's lock: with a lock, release
		// it, pay, take it back and report a spurious wake-up, so the caller
		// re-checks its condition.
		if before == nil {
			s.payOwed(t)
		} else {
			before()
			func() {
				defer after()
				s.payOwed(t)
			}()
			return ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	vc := s.ctxOf(ctx)
	t.gen++
	w := waiter{t, t.gen}
	if vc != nil {
		vc.waiters = append(vc.waiters, w)
	}
	if register != nil {
		register(w)
	}
	if wakeAt >= 0 {
		s.wakeAt(w, wakeAt)
	}
	if before != nil {
		before()
	}
	if after != nil {
		// Deferred so that a task killed while parked still re-acquires
		// what its callers' defers will release.
		defer after()
	}
	s.park(t, what)
	if vc != nil {
		vc.removeWaiter(t)
	}
	return ctx.Err()
}

// kill ends t: a parked task is resumed with killed set and unwinds.
func (s *Sim) kill(t *task) {
	t.killed = true
	if t.state == taskParked {
		s.switchTo(t)
	}
}

// goid returns the calling goroutine's ID, parsed from its stack header
// ("goroutine 123 [running]:"). Used only to attribute disk I/O.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = len("goroutine ")
	if len(b) <= prefix {
		return 0
	}
	b = b[prefix:]
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	id, _ := strconv.ParseUint(string(b[:i]), 10, 64)
	return id
}
