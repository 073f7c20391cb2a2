// Package sim is Orbit's deterministic simulator: a whole cluster in one
// process, one task at a time, in virtual time, with every tie broken by a
// seed, so any run replays exactly from its seed.
//
// The scheduler keeps an agenda of events ordered by (virtual time, a tie
// drawn from the seed, push order). Tasks are goroutines, but only one runs at
// a time: the scheduler hands the processor to a task and waits until the task
// parks in a runtime primitive (a mailbox, a future, a sleep) or returns.
// Virtual time jumps to the next event, so idle time costs nothing.
//
// Every executed event is folded into a trace hash. Two runs of one seed must
// produce the same hash; the tests check it on a sample of seeds every time.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// Epoch is virtual time zero on every node's clock (before offsets).
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Sim is one simulated world: scheduler, nodes, network and faults.
// It is not safe for concurrent use; drive it from one goroutine.
type Sim struct {
	seed uint64
	rng  *rand.Rand // the scheduler's own draws: ties, faults, buggify

	// options are the components' options as the run used them (NoteOptions),
	// each text once, in the order first noted: a failing seed prints them.
	options []string

	now    int64 // virtual nanoseconds since the start
	agenda queue
	seq    uint64
	trace  uint64 // FNV-1a over every executed event
	events uint64
	// stalled counts the events run since virtual time last advanced.
	stalled int

	running *task // the task holding the processor, if any
	// runningGoid is the running task's goroutine, readable from any
	// goroutine (the disk asks whether its caller is the running task).
	runningGoid atomic.Uint64
	// runningTask is the running task, for the disk to bill sync latency to
	// from Pebble's log writer goroutine while the task waits on it.
	runningTask atomic.Pointer[task]
	yield       chan struct{} // a running task gives the processor back here
	nextTask    uint64
	live        map[uint64]*task

	nodes   map[kernel.NodeID]*Node
	ctxs    map[<-chan struct{}]*vctx // runtime contexts by their Done channel
	net     *Network
	buggify *buggify
	tail    traceTail

	// crashing is a node whose task asked it to crash (kernel.NodeCrash).
	crashing    *Node
	crashReason string

	logw   io.Writer // where node logs and fault notes go (nil: nowhere)
	tracew io.Writer // where every event goes (nil: nowhere)
	// traced holds the traced lines until FlushTrace (trace.go); Pebble's
	// goroutines add disk operations, hence the lock.
	traceMu sync.Mutex
	traced  []traceRecord

	// failure is the first bug the run found (a task panic); the run stops.
	failure error
}

// NoteOptions records a component's options, as its String renders them,
// for the report of a failing run. The same text noted again (every node
// opens its storage with the same options) is kept once.
func (s *Sim) NoteOptions(text string) {
	if !slices.Contains(s.options, text) {
		s.options = append(s.options, text)
	}
}

// New returns an empty world for seed.
func New(seed uint64) *Sim {
	s := &Sim{
		seed:  seed,
		rng:   rand.New(rand.NewPCG(seed, 0x6f72626974)), // "orbit"
		trace: 14695981039346656037,
		yield: make(chan struct{}),
		live:  map[uint64]*task{},
		nodes: map[kernel.NodeID]*Node{},
		ctxs:  map[<-chan struct{}]*vctx{},
	}
	installCryptoReader()
	s.net = newNetwork(s)
	s.buggify = newBuggify(s)
	return s
}

// Seed is the run's seed.
func (s *Sim) Seed() uint64 { return s.seed }

// Rand is the scheduler's random source, for fault plans and workloads
// driven from the scheduler. Tasks use their node's Runtime.Rand.
func (s *Sim) Rand() *rand.Rand { return s.rng }

// Elapsed is the virtual time since the start of the run.
func (s *Sim) Elapsed() time.Duration { return time.Duration(s.now) }

// Trace is the hash of every event executed so far.
func (s *Sim) Trace() uint64 { return s.trace }

// Events is the number of events executed so far.
func (s *Sim) Events() uint64 { return s.events }

// Net is the simulated network.
func (s *Sim) Net() *Network { return s.net }

// Node returns a node added with AddNode, or nil.
func (s *Sim) Node(id kernel.NodeID) *Node { return s.nodes[id] }

// Nodes returns every node, by ID.
func (s *Sim) Nodes() []*Node {
	out := make([]*Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// After schedules fn on the scheduler after d of virtual time. fn must not
// block; it may start tasks, send messages and inject faults.
func (s *Sim) After(d time.Duration, label string, fn func()) {
	s.push(event{at: s.now + int64(d), kind: evCall, fn: fn, label: label})
}

func (s *Sim) push(e event) {
	if e.at < s.now {
		e.at = s.now
	}
	s.seq++
	e.seq = s.seq
	e.tie = s.rng.Uint64()
	s.agenda.push(e)
}

// step executes the next event; false when the agenda is empty.
func (s *Sim) step() bool {
	if len(s.agenda) == 0 {
		return false
	}
	e := s.agenda.pop()
	if n := e.node; n != nil {
		if e.inc != 0 && (e.inc != n.inc || !n.up) {
			return true // its process is gone
		}
		if n.paused {
			n.held = append(n.held, e)
			return true
		}
	}
	if e.at > s.now {
		s.now = e.at
		s.stalled = 0
	} else if s.stalled++; s.stalled == livelockEvents {
		// Time stands still while tasks keep running: a busy loop that
		// never waits (on a real machine, a spinning CPU and a run that
		// never ends). A bug, reported with what was running.
		s.fail(&LivelockError{At: time.Duration(s.now), Last: s.LastEvents()})
	}
	if e.kind == evResume && (e.task.state != taskParked || e.task.gen != e.gen) {
		return true // a stale wake-up: the task was woken another way
	}
	if e.timer != nil && e.timer.stopped {
		return true // a stopped timer
	}
	s.events++
	// The hash covers what ran, not only when: the task, or the node and
	// label of a call. Two runs that wake tasks in different orders differ.
	who := uint64(0)
	if e.kind == evResume {
		who = e.task.id
	} else {
		if e.node != nil {
			who = uint64(e.node.id)
		}
		who = who<<32 ^ strHash(e.label)
	}
	s.fold(uint64(e.at), e.seq, uint64(e.kind), who)
	s.tail.add(s, &e)
	if s.tracew != nil {
		s.writeTrace(&e)
	}
	switch {
	case e.kind == evResume:
		s.switchTo(e.task)
	case e.node != nil:
		s.callOn(e.node, e.fn)
	default:
		e.fn()
	}
	return true
}

// fold mixes words into the trace hash (FNV-1a, a word at a time).
func (s *Sim) fold(words ...uint64) {
	h := s.trace
	for _, w := range words {
		h ^= w
		h *= 1099511628211
	}
	s.trace = h
}

// RunFor runs the world for d of virtual time. It returns the first bug
// found (a task panic) or nil. An empty agenda is not an error here: the
// world simply idles until d has passed.
func (s *Sim) RunFor(d time.Duration) error {
	end := s.now + int64(d)
	for s.failure == nil && len(s.agenda) > 0 && s.agenda[0].at <= end {
		s.step()
	}
	if s.failure == nil && s.now < end {
		s.now = end
	}
	return s.failure
}

// RunUntil runs until done() holds (checked after every event), at most for
// max of virtual time. It fails with a *DeadlockError if the agenda empties
// first (nothing could ever make done() true) and with ErrTimeout if max
// passes.
func (s *Sim) RunUntil(done func() bool, max time.Duration) error {
	end := s.now + int64(max)
	for s.failure == nil && !done() {
		if len(s.agenda) == 0 {
			return s.deadlock()
		}
		if s.agenda[0].at > end {
			s.now = end
			return ErrTimeout
		}
		s.step()
	}
	return s.failure
}

// livelockEvents is how many events may run at one instant of virtual
// time before the run is declared a livelock (a busy world runs some
// thousands; a million is a loop).
const livelockEvents = 1_000_000

// LivelockError reports that virtual time stopped advancing while tasks
// kept running.
type LivelockError struct {
	At   time.Duration
	Last []string // the last events, as LastEvents gives them
}

func (e *LivelockError) Error() string {
	return fmt.Sprintf("sim: livelock at %v: %d events ran without time advancing; the last ones:\n  %s",
		e.At, livelockEvents, strings.Join(e.Last, "\n  "))
}

// ErrTimeout: RunUntil's condition did not hold within its virtual time.
var ErrTimeout = errors.New("sim: condition not reached in time")

// DeadlockError reports that every task is blocked and no event is pending.
type DeadlockError struct {
	At      time.Duration
	Blocked []string // "node 2 task \"rpc-serve reg\" (#7): recv port reg"
}

func (e *DeadlockError) Error() string {
	return fmt.Sprintf("sim: deadlock at %v: every task is blocked and no event is pending:\n  %s",
		e.At, strings.Join(e.Blocked, "\n  "))
}

func (s *Sim) deadlock() error {
	err := &DeadlockError{At: s.Elapsed()}
	for _, t := range s.liveTasks() {
		err.Blocked = append(err.Blocked, fmt.Sprintf("node %d task %q (#%d): %s", t.node.id, t.name, t.id, t.what))
	}
	for _, n := range s.Nodes() {
		if n.paused && len(n.held) > 0 {
			err.Blocked = append(err.Blocked, fmt.Sprintf("node %d is paused, holding %d events (nothing will resume it)", n.id, len(n.held)))
		}
	}
	return err
}

func (s *Sim) liveTasks() []*task {
	out := make([]*task, 0, len(s.live))
	for _, t := range s.live {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Close ends every task so that no goroutine outlives the world.
func (s *Sim) Close() {
	// Nodes go down first, so that a dying task's deferred code can start
	// nothing new; then kill until no task is left.
	for _, n := range s.Nodes() {
		n.up = false
	}
	for len(s.live) > 0 {
		for _, t := range s.liveTasks() {
			s.kill(t)
		}
	}
}

// callOn runs a node's scheduler-side code (a timer callback, a delivery)
// with the same panic rules as its tasks: kernel.NodeCrash crashes the node,
// any other panic is a bug the run reports.
func (s *Sim) callOn(n *Node, fn func()) {
	defer func() {
		p := recover()
		var crash kernel.NodeCrash
		switch {
		case p == nil:
		case asCrash(p, &crash):
			n.crash(crash.Error())
		default:
			s.fail(&TaskPanic{Node: n.id, Task: "(callback)", Value: p, Stack: string(debug.Stack())})
		}
	}()
	fn()
}

// fail records the first bug; the run stops after the current event.
func (s *Sim) fail(err error) {
	if s.failure == nil {
		s.failure = err
	}
}

// TaskPanic is a bug: a task panicked with something other than
// kernel.NodeCrash.
type TaskPanic struct {
	Node  kernel.NodeID
	Task  string
	Value any
	Stack string
}

func (p *TaskPanic) Error() string {
	return fmt.Sprintf("task %q on node %d panicked: %v\n%s", p.Task, p.Node, p.Value, p.Stack)
}

// ctxOf returns the runtime context behind ctx's Done channel, nil for a
// context that never ends, and panics for a context the runtime did not make
// (its cancellation would be invisible to the scheduler).
func (s *Sim) ctxOf(ctx context.Context) *vctx {
	done := ctx.Done()
	if done == nil {
		return nil
	}
	if vc := s.ctxs[done]; vc != nil {
		return vc
	}
	select {
	case <-done:
		return nil // already over; callers check ctx.Err() first
	default:
	}
	panic("sim: a context that the runtime did not create reached a blocking primitive; derive it with Runtime.WithCancel or WithTimeout")
}
