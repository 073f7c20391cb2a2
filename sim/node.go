package sim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/kernel"
)

// Node is a simulated orbit process: its tasks, clock, disk and network
// endpoint. It survives crashes (as a machine does); each start is a new
// incarnation with a fresh Runtime, running boot again on what the disk kept.
type Node struct {
	s    *Sim
	id   kernel.NodeID
	boot func(rt kernel.Runtime)

	inc    uint32 // incarnation, counted from 1
	up     bool
	paused bool
	held   []event // events that came due while paused
	tasks  map[uint64]*task
	ctx    *vctx // ends when the incarnation ends
	rt     *nodeRuntime
	inbox  *kernel.Inboxes
	clock  clock
	disk   *Disk
	// jumps is the sum of the steps JumpClock made and has not undone:
	// the fault plan keeps its bounded steps and runaways clear of them.
	// stepsUntilCrash is the part of them the node's next crash undoes
	// (StepClockUntilCrash).
	jumps, stepsUntilCrash time.Duration

	// Crashes and Restarts count incarnations ended and begun after the
	// first.
	Crashes, Restarts int
	// onDown, when set, hears of every crash (the fault plan restarts nodes).
	onDown func(n *Node)
	// crashesInWindow counts the crashes since crashWindowStart (virtual
	// time): crash loops (crash).
	crashWindowStart int64
	crashesInWindow  int
}

// AddNode adds a node and starts it: boot runs as the node's first task,
// and again on every restart.
func (s *Sim) AddNode(id kernel.NodeID, boot func(rt kernel.Runtime)) *Node {
	if id == 0 || s.nodes[id] != nil {
		panic(fmt.Sprintf("sim: bad or duplicate node ID %d", id))
	}
	n := &Node{s: s, id: id, boot: boot, tasks: map[uint64]*task{}, clock: clock{rate: 1}}
	n.disk = newDisk(n)
	s.nodes[id] = n
	n.start()
	return n
}

// ID is the node's ID.
func (n *Node) ID() kernel.NodeID { return n.id }

// Up reports whether the node is running (possibly paused).
func (n *Node) Up() bool { return n.up }

// Paused reports whether the node is paused.
func (n *Node) Paused() bool { return n.paused }

// Disk is the node's simulated disk.
func (n *Node) Disk() *Disk { return n.disk }

// Runtime is the current incarnation's runtime (nil while down).
func (n *Node) Runtime() kernel.Runtime {
	if !n.up {
		return nil
	}
	return n.rt
}

func (n *Node) start() {
	n.inc++
	n.up = true
	n.rt = &nodeRuntime{n: n, inc: n.inc,
		rng: rand.New(rand.NewPCG(n.s.seed, uint64(n.id)<<32|uint64(n.inc)))}
	n.rt.logger = slog.New(newLogHandler(n.s, n.id))
	n.inbox = kernel.NewInboxes(n.rt)
	n.ctx = n.s.newCtx(context.Background(), n)
	n.disk.mount()
	n.rt.fs = n.disk.view.fs
	n.s.spawn(n, "boot", func(context.Context) { n.boot(n.rt) })
}

// Crash kills the node now: its tasks end, timers and queued wake-ups die,
// and its disk keeps what was synced (plus a torn part of the rest, as the
// disk's TornPercent says).
//
// Called from a running task, the crash happens when that task gives the
// processor back (at once if it is one of the node's own tasks).
func (n *Node) Crash() {
	if t := n.s.running; t != nil {
		n.s.crashing, n.s.crashReason = n, "crashed by a task"
		if t.node == n {
			panic(errKilled{})
		}
		return
	}
	n.crash("crashed by the fault plan")
}

func (n *Node) crash(reason string) {
	if !n.up {
		return
	}
	n.up, n.paused, n.held = false, false, nil
	n.Crashes++
	if d := n.stepsUntilCrash; d != 0 {
		n.stepsUntilCrash = 0
		n.JumpClock(-d)
	}
	n.s.logf(n.id, "CRASH: %s", reason)
	// A node that crashes again and again with no time passing (a crash
	// as it starts, restarted at once: an entry whose apply fails on every
	// replica) would loop forever in one instant. A bug, whatever the
	// scenario: report it.
	if n.s.now-n.crashWindowStart > int64(crashLoopWindow) {
		n.crashWindowStart, n.crashesInWindow = n.s.now, 0
	}
	if n.crashesInWindow++; n.crashesInWindow == crashLoopCrashes {
		n.s.fail(fmt.Errorf("sim: crash loop: node %d crashed %d times within %v of virtual time (at %v); the last: %s",
			n.id, crashLoopCrashes, crashLoopWindow, time.Duration(n.s.now), reason))
	}
	// The disk image is taken first: what the dying tasks' deferred code
	// writes (a library's Close syncing its log) must not become durable.
	n.disk.crash()
	n.ctx.cancel(context.Canceled)
	ids := make([]uint64, 0, len(n.tasks))
	for id := range n.tasks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if t := n.tasks[id]; t != nil && t.state != taskRunning {
			n.s.kill(t)
		}
	}
	if n.onDown != nil {
		n.onDown(n)
	}
}

// A node that crashes crashLoopCrashes times within crashLoopWindow of
// virtual time fails the run (crash).
const (
	crashLoopCrashes = 20
	crashLoopWindow  = time.Millisecond
)

// Restart starts a new incarnation of a crashed node.
func (n *Node) Restart() {
	if n.up {
		return
	}
	n.Restarts++
	n.s.logf(n.id, "RESTART (incarnation %d)", n.inc+1)
	n.start()
}

// Pause stops scheduling the node: its wake-ups, timers and arriving
// messages wait until Resume (a stop-the-world GC, a SIGSTOP).
func (n *Node) Pause() {
	if n.up {
		n.paused = true
	}
}

// Resume lets a paused node run again; everything that came due while it
// was paused happens now, late.
func (n *Node) Resume() {
	if !n.paused {
		return
	}
	n.paused = false
	held := n.held
	n.held = nil
	// Everything due while paused happens now, in the order it came due:
	// one shared tie and increasing sequence numbers keep FIFO links FIFO.
	tie := n.s.rng.Uint64()
	for _, e := range held {
		e.at, e.tie = n.s.now, tie
		n.s.seq++
		e.seq = n.s.seq
		n.s.agenda.push(e)
	}
}

// SetClockRate sets how fast the node's clock runs against true time
// (1 is exact; 1.0001 gains 100 µs per second).
func (n *Node) SetClockRate(rate float64) { n.clock.setRate(n.s.now, rate) }

// ClockOffset is how far the node's clock is ahead of true (virtual) time.
func (n *Node) ClockOffset() time.Duration {
	return time.Duration(n.clock.local(n.s.now) - n.s.now)
}

// ShiftClock steps the node's clock by d (may be negative), as an NTP step
// does.
func (n *Node) ShiftClock(d time.Duration) { n.clock.shift(n.s.now, int64(d)) }

// JumpClock steps the node's clock by d as ShiftClock does, for a fault
// of a workload's own beyond the plan's clock bound, undone by a later
// JumpClock(-d): the plan's bounded steps measure the node's offset
// without it (as they do without their own jumps), so they neither undo
// the jump nor carry it past the heal.
func (n *Node) JumpClock(d time.Duration) {
	n.jumps += d
	n.ShiftClock(d)
}

// StepClockUntilCrash is JumpClock for a step that lasts while the node
// runs: its next crash undoes what is left of it, as a machine whose NTP
// daemon steps its clock from good sources as it boots. A later
// StepClockUntilCrash(-d) undoes it while it runs.
func (n *Node) StepClockUntilCrash(d time.Duration) {
	n.stepsUntilCrash += d
	n.JumpClock(d)
}

// plannedOffset is the node's clock offset without the jumps a workload
// made (JumpClock).
func (n *Node) plannedOffset() time.Duration { return n.ClockOffset() - n.jumps }

func (n *Node) now() time.Time { return Epoch.Add(time.Duration(n.clock.local(n.s.now))) }

// monotonic is the node's clock without its steps.
func (n *Node) monotonic() time.Duration {
	return time.Duration(n.clock.local(n.s.now) - n.clock.stepped)
}

// clock maps virtual time to a node's local time: piecewise linear, so rate
// changes and steps keep the past intact.
type clock struct {
	baseV, baseL int64 // local(baseV) == baseL
	rate         float64
	stepped      int64 // the sum of the steps: local minus monotonic
}

func (c *clock) local(v int64) int64 {
	// Only the drift goes through floating point, rounded, so an exact
	// clock stays exact and 10s at 1.001 reads 10.01s, not 10.009999999s.
	dv := v - c.baseV
	return c.baseL + dv + int64(math.Round(float64(dv)*(c.rate-1)))
}

func (c *clock) setRate(v int64, rate float64) {
	if !(rate > 0) {
		panic("sim: clock rate must be positive")
	}
	c.baseL, c.baseV, c.rate = c.local(v), v, rate
}

func (c *clock) shift(v, d int64) {
	c.baseL, c.baseV = c.local(v)+d, v
	c.stepped += d
}

// virtual converts a duration on this clock into virtual nanoseconds.
func (c *clock) virtual(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(float64(d) / c.rate))
}

// nodeRuntime is kernel.Runtime for one incarnation of a node.
type nodeRuntime struct {
	n      *Node
	inc    uint32
	rng    *rand.Rand
	logger *slog.Logger
	fs     vfs.FS // this incarnation's view of the disk
}

var _ kernel.Runtime = (*nodeRuntime)(nil)

// alive reports whether this incarnation still runs; a task of a dead
// incarnation unwinds.
func (r *nodeRuntime) alive() bool {
	if r.inc == r.n.inc && r.n.up {
		return true
	}
	if t := r.n.s.running; t != nil && t.node == r.n {
		panic(errKilled{})
	}
	return false
}

func (r *nodeRuntime) NodeID() kernel.NodeID    { return r.n.id }
func (r *nodeRuntime) Now() time.Time           { return r.n.now() }
func (r *nodeRuntime) Monotonic() time.Duration { return r.n.monotonic() }

func (r *nodeRuntime) Sleep(ctx context.Context, d time.Duration) error {
	r.alive()
	s := r.n.s
	return s.block(ctx, "sleep", s.now+r.n.clock.virtual(d), nil, nil, nil)
}

func (r *nodeRuntime) AfterFunc(d time.Duration, fn func()) kernel.Timer {
	if !r.alive() {
		return &simTimer{stopped: true}
	}
	return r.n.s.afterOn(r.n, r.n.clock.virtual(d), "timer", fn)
}

func (r *nodeRuntime) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	c := r.n.s.withTimeout(parent, r.n, d)
	return c, func() { c.cancel(context.Canceled) }
}

func (r *nodeRuntime) WithCancel(parent context.Context) (context.Context, context.CancelFunc) {
	c := r.n.s.newCtx(parent, r.n)
	return c, func() { c.cancel(context.Canceled) }
}

func (r *nodeRuntime) Go(name string, fn func(ctx context.Context)) {
	if r.alive() {
		r.n.s.spawn(r.n, name, fn)
	}
}

func (r *nodeRuntime) NewCond(l sync.Locker, what string) kernel.Cond {
	return &simCond{s: r.n.s, l: l, what: what}
}

func (r *nodeRuntime) Rand() *rand.Rand         { return r.rng }
func (r *nodeRuntime) FS() vfs.FS               { return r.fs }
func (r *nodeRuntime) Net() kernel.Network      { return endpoint{r} }
func (r *nodeRuntime) Buggify(site string) bool { return r.n.s.buggify.fire(site) }
func (r *nodeRuntime) Logger() *slog.Logger     { return r.logger }

// simCond is kernel.Cond in the simulator.
type simCond struct {
	s       *Sim
	l       sync.Locker
	what    string
	waiters []waiter
}

func (c *simCond) Wait(ctx context.Context) error {
	var me *task
	return c.s.block(ctx, c.what, -1,
		func(w waiter) { me = w.t; c.waiters = append(c.waiters, w) },
		c.l.Unlock,
		func() {
			c.l.Lock()
			// Woken by the context, not by Broadcast: leave no stale entry.
			for i := len(c.waiters) - 1; i >= 0; i-- {
				if c.waiters[i].t == me {
					c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
					break
				}
			}
		})
}

func (c *simCond) Broadcast() {
	for _, w := range c.waiters {
		c.s.wake(w)
	}
	c.waiters = c.waiters[:0]
}

// endpoint is a node's kernel.Network.
type endpoint struct{ r *nodeRuntime }

func (e endpoint) Send(to kernel.NodeID, port string, body []byte) {
	if e.r.alive() {
		e.r.n.s.net.send(e.r.n, to, port, body)
	}
}

func (e endpoint) Listen(port string) *kernel.Mailbox[kernel.Envelope] {
	e.r.alive()
	return e.r.n.inbox.Listen(port)
}

func (e endpoint) ListenNew(port string) (string, *kernel.Mailbox[kernel.Envelope]) {
	e.r.alive()
	return e.r.n.inbox.ListenNew(port)
}

// logHandler writes a node's log lines stamped with virtual time, so that
// logs replay byte for byte with the run.
type logHandler struct {
	slog.Handler
}

func newLogHandler(s *Sim, id kernel.NodeID) slog.Handler {
	var w io.Writer = io.Discard
	if s.logw != nil {
		w = s.logw
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.String("t", s.Elapsed().String())
			}
			return a
		},
	})
	return logHandler{h.WithAttrs([]slog.Attr{slog.Uint64("node", uint64(id))})}
}
