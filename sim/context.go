package sim

import (
	"context"
	"time"
)

// vctx is a context whose cancellation and deadline live in virtual time and
// are visible to the scheduler: a task blocked on it is woken by an event,
// never by a goroutine the scheduler cannot see.
//
// Deadline() reports the node's clock reading at creation plus the timeout;
// the context ends after that much virtual time, so a clock step in between
// makes the two disagree (production compares monotonic readings and never
// sees steps). Decide timeouts by the context, not by comparing Now with
// Deadline.
type vctx struct {
	s        *Sim
	parent   context.Context
	up       *vctx // the runtime context above, if any
	node     *Node // whose clock the deadline is read on
	deadline time.Time
	hasDL    bool
	done     chan struct{}
	err      error
	waiters  []waiter // tasks parked on this context
	children []*vctx  // a slice, not a map: cancellation order is observable
	timer    *simTimer
}

func (c *vctx) Deadline() (time.Time, bool) {
	if c.hasDL {
		return c.deadline, true
	}
	return c.parent.Deadline()
}
func (c *vctx) Done() <-chan struct{} { return c.done }
func (c *vctx) Err() error            { return c.err }
func (c *vctx) Value(k any) any       { return c.parent.Value(k) }

// newCtx derives a cancellable runtime context from parent.
func (s *Sim) newCtx(parent context.Context, n *Node) *vctx {
	c := &vctx{s: s, parent: parent, node: n, done: make(chan struct{})}
	s.ctxs[c.done] = c
	if up := s.ctxOf(parent); up != nil {
		c.up = up
		up.children = append(up.children, c)
	} else if err := parent.Err(); err != nil {
		c.cancel(err)
	}
	return c
}

// withTimeout derives a context that ends after d on n's clock.
func (s *Sim) withTimeout(parent context.Context, n *Node, d time.Duration) *vctx {
	c := s.newCtx(parent, n)
	if c.err != nil {
		return c
	}
	c.hasDL = true
	c.deadline = n.now().Add(d)
	if d <= 0 {
		// As in production: a deadline already past ends the context now,
		// so a loop polling ctx.Err() cannot spin forever.
		c.cancel(context.DeadlineExceeded)
		return c
	}
	if pd, ok := parent.Deadline(); ok && pd.Before(c.deadline) {
		c.deadline = pd // the parent ends first and will cancel us
	}
	c.timer = s.afterOn(n, n.clock.virtual(d), "ctx deadline", func() {
		c.cancel(context.DeadlineExceeded)
	})
	return c
}

// cancel ends c and everything derived from it, waking their waiters.
func (c *vctx) cancel(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	delete(c.s.ctxs, c.done)
	if c.timer != nil {
		c.timer.Stop()
	}
	for _, w := range c.waiters {
		c.s.wake(w)
	}
	c.waiters = nil
	for _, ch := range c.children {
		ch.cancel(err)
	}
	c.children = nil
	if c.up != nil {
		c.up.removeChild(c)
	}
}

func (c *vctx) removeChild(ch *vctx) {
	for i, x := range c.children {
		if x == ch {
			c.children = append(c.children[:i], c.children[i+1:]...)
			return
		}
	}
}

func (c *vctx) removeWaiter(t *task) {
	for i := len(c.waiters) - 1; i >= 0; i-- {
		if c.waiters[i].t == t {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			return
		}
	}
}

// simTimer is a pending AfterFunc.
type simTimer struct {
	stopped, fired bool
}

func (t *simTimer) Stop() bool {
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	return true
}

// afterOn runs fn on the scheduler after vd of virtual time, unless stopped
// first. The call belongs to n's current incarnation: it waits out a pause
// and dies with a crash.
func (s *Sim) afterOn(n *Node, vd int64, label string, fn func()) *simTimer {
	tm := &simTimer{}
	s.push(event{at: s.now + vd, kind: evCall, node: n, inc: n.inc, label: label, timer: tm, fn: func() {
		tm.fired = true
		fn()
	}})
	return tm
}
