// Package prod is the production runtime: goroutines, the wall clock, the
// real filesystem. It is the one place outside the simulator allowed to
// touch them (see the allow-list in internal/lint).
package prod

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/kernel"
)

// Options configure a production Runtime.
type Options struct {
	// NodeID is required.
	NodeID kernel.NodeID
	// FS is the node's disk. Default: vfs.Default, the real filesystem.
	FS vfs.FS
	// Net attaches the node to a network: a *LocalNetwork between runtimes
	// of one process, or a *grpcnet.Transport between processes. Default: a
	// LocalNetwork of its own (the node can only talk to itself).
	Net Network
	// Logger defaults to slog.Default() tagged with the node ID.
	Logger *slog.Logger
}

// Network is what a Runtime attaches to. Attach joins rt's node (rt.NodeID())
// and returns the node's endpoint and detach, which Runtime.Stop calls once:
// detach stops delivery to the node and closes its inboxes (waking their
// receivers). The network itself outlives the runtime; whoever made it
// closes it, if it needs closing.
//
// Attach takes a kernel.Runtime, not a *Runtime, so that a network in
// another package (kernel/grpcnet) implements Network without importing
// this one.
type Network interface {
	Attach(rt kernel.Runtime) (ep kernel.Network, detach func())
}

// Runtime is kernel.Runtime on real goroutines and the wall clock.
type Runtime struct {
	opts   Options
	ctx    context.Context
	stop   context.CancelFunc
	tasks  sync.WaitGroup
	rng    *rand.Rand
	net    kernel.Network
	detach func()
	logger *slog.Logger
	// clockOffset shifts Now (nanoseconds): a test-only fault.
	clockOffset atomic.Int64
	// started is Monotonic's origin; time.Since reads Go's monotonic
	// clock from it.
	started time.Time
}

var _ kernel.Runtime = (*Runtime)(nil)

// New returns a running Runtime.
func New(opts Options) *Runtime {
	if opts.NodeID == 0 {
		panic("prod: NodeID is required")
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Net == nil {
		opts.Net = NewLocalNetwork()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var seed [16]byte
	_, _ = cryptorand.Read(seed[:]) // never fails since Go 1.24
	r := &Runtime{
		opts:    opts,
		rng:     rand.New(&lockedSource{src: rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))}),
		logger:  opts.Logger.With("node", uint64(opts.NodeID)),
		started: time.Now(),
	}
	r.ctx, r.stop = context.WithCancel(context.Background())
	r.net, r.detach = opts.Net.Attach(r)
	return r
}

// Stop ends the node: task contexts are cancelled, inboxes closed, and Stop
// waits for every task to return.
func (r *Runtime) Stop() {
	r.stop()
	r.detach()
	r.tasks.Wait()
}

func (r *Runtime) NodeID() kernel.NodeID { return r.opts.NodeID }
func (r *Runtime) Now() time.Time        { return time.Now().Add(time.Duration(r.clockOffset.Load())) }

// Monotonic is unaffected by SetClockOffset, as CLOCK_MONOTONIC is by an
// operator's clock step.
func (r *Runtime) Monotonic() time.Duration { return time.Since(r.started) }

// SetClockOffset shifts the node's clock (Now) by d from the wall clock,
// at once: a clock fault for tests against real processes (the Jepsen
// harness's clock nemesis, through orbit serve --test-faults). Timers and
// timeouts keep measuring real durations, as they do when an operator
// steps a machine's clock; only readings of the time jump.
func (r *Runtime) SetClockOffset(d time.Duration) { r.clockOffset.Store(int64(d)) }

func (r *Runtime) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runtime) AfterFunc(d time.Duration, fn func()) kernel.Timer {
	return time.AfterFunc(d, fn)
}

func (r *Runtime) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, d)
}

func (r *Runtime) WithCancel(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(parent)
}

// Go runs fn on a goroutine. A panic in a task ends the process, as the
// runtime contract says: a node with a broken invariant must not go on.
func (r *Runtime) Go(name string, fn func(ctx context.Context)) {
	r.tasks.Add(1)
	go func() {
		defer r.tasks.Done()
		defer func() {
			if p := recover(); p != nil {
				r.logger.Error("task panicked; the node stops", "task", name, "panic", fmt.Sprint(p))
				os.Exit(70) // EX_SOFTWARE
			}
		}()
		fn(r.ctx)
	}()
}

func (r *Runtime) NewCond(l sync.Locker, what string) kernel.Cond { return &cond{l: l} }
func (r *Runtime) Rand() *rand.Rand                               { return r.rng }
func (r *Runtime) FS() vfs.FS                                     { return r.opts.FS }
func (r *Runtime) Net() kernel.Network                            { return r.net }
func (r *Runtime) Buggify(string) bool                            { return false }
func (r *Runtime) Logger() *slog.Logger                           { return r.logger }

// cond is kernel.Cond on a channel that Broadcast closes and replaces.
type cond struct {
	l  sync.Locker
	ch chan struct{} // nil until someone waits; guarded by l
}

func (c *cond) Wait(ctx context.Context) error {
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	ch := c.ch
	c.l.Unlock()
	defer c.l.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *cond) Broadcast() {
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// lockedSource makes a rand.Source safe for all of a node's goroutines.
type lockedSource struct {
	mu  sync.Mutex
	src rand.Source
}

func (s *lockedSource) Uint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src.Uint64()
}
