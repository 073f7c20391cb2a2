package kernel

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// NodeID names a node (an orbit process) in a cluster. Zero is never a valid
// node.
type NodeID uint64

// Runtime is everything a component may use to touch the world. There is one
// Runtime per node (per incarnation of a node, in the simulator: a restarted
// node gets a fresh Runtime and its old tasks are gone).
//
// A Runtime is safe for use by all tasks of its node.
type Runtime interface {
	// NodeID is the node this runtime belongs to.
	NodeID() NodeID

	// Now is the node's clock. In the simulator it carries the node's offset
	// and drift, so two nodes may disagree, as real clocks do.
	Now() time.Time
	// Monotonic reads the node's monotonic clock: time elapsed since an
	// arbitrary origin (fixed for the runtime's life). It runs at the rate
	// of Now's clock, drift included, but never steps: what measures a
	// duration that safety depends on (a lease) reads this, never Now,
	// whose steps could stretch the duration (CLOCK_MONOTONIC, which NTP
	// slews but never steps).
	Monotonic() time.Duration
	// Sleep blocks the calling task for d on the node's clock, or until ctx
	// ends, in which case it returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
	// AfterFunc calls fn once d has passed on the node's clock. fn must not
	// block: it runs on the scheduler in the simulator. Typically it sends to
	// a Mailbox.
	AfterFunc(d time.Duration, fn func()) Timer
	// WithTimeout and WithCancel derive contexts whose deadlines are kept in
	// the runtime's time. Contexts passed to the runtime's blocking
	// primitives must come from here (or be context.Background()).
	WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc)
	WithCancel(parent context.Context) (context.Context, context.CancelFunc)

	// Go starts a task owned by this node. ctx ends when the node stops. A
	// task that panics crashes its node (in production: the process).
	Go(name string, fn func(ctx context.Context))
	// NewCond returns the blocking building block every primitive is made
	// of. what names the wait in deadlock reports.
	NewCond(l sync.Locker, what string) Cond

	// Rand is the node's random source, seeded by the simulator.
	Rand() *rand.Rand
	// FS is the node's disk.
	FS() vfs.FS
	// Net is the node's network endpoint.
	Net() Network
	// Buggify reports whether the named perturbation point fires now. It is
	// always false in production; in the simulator each site is enabled or
	// not per run (from the seed), and an enabled site fires sometimes.
	Buggify(site string) bool
	// Logger is the node's structured logger.
	Logger() *slog.Logger
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not happened yet and reports whether
	// it did so.
	Stop() bool
}

// Cond is a condition variable whose Wait honours a runtime context. Like
// sync.Cond, the caller holds l, checks its predicate, and calls Wait in a
// loop; Wait releases l while blocked and holds it again on return.
// Spurious wake-ups are allowed.
type Cond interface {
	// Wait blocks until Broadcast or until ctx ends; in the latter case it
	// returns ctx.Err().
	Wait(ctx context.Context) error
	// Broadcast wakes every waiter. The caller holds l.
	Broadcast()
}

// ErrStopped is returned by primitives of a node that is shutting down.
var ErrStopped = errors.New("kernel: node stopped")
