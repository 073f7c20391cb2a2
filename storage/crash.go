package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"

	crerrors "github.com/cockroachdb/errors"
	"github.com/orbitkernel/orbit/kernel"
)

// ErrFatal is wrapped by the Reason of every kernel.NodeCrash this package
// panics with: Pebble reported an error it cannot continue from (a failed
// WAL write or sync, a failed MANIFEST update, corruption), or the engine
// was used after such an error.
var ErrFatal = errors.New("storage: fatal disk error")

// fatalState remembers the first fatal error of an engine. Pebble's own
// goroutines may record it, hence the atomic.
type fatalState struct {
	reason atomic.Pointer[error]
	// failed, if not nil, is closed when the first reason is recorded: a
	// caller waiting for Pebble's goroutine (Engine.Flush) stops waiting.
	failed chan struct{}
	// failures counts flush and compaction failures since the last
	// success (see backgroundFailed).
	failures atomic.Int32
	// waitForCleaning, once the engine is open (a deterministic one only),
	// waits until Pebble has deleted the files it found obsolete so far
	// (see backgroundFailed).
	waitForCleaning atomic.Pointer[func()]
}

// maxBackgroundFailures is how many flushes and compactions in a row a
// deterministic engine lets fail before it declares the disk fatal.
const maxBackgroundFailures = 3

// backgroundFailed notes a flush or compaction that failed on Pebble's
// goroutine. Pebble retries a failed flush at once and forever; a caller of
// a deterministic engine waits for that flush (Engine.Flush), and would
// wait forever on a disk that keeps failing. So, in that mode only, the
// third failure in a row is fatal, as a Fatalf is: the goroutine stops
// here (OnBackgroundFatal, then a panic), before it writes anything more
// that a crash image could catch or miss depending on the wall clock, and
// the waiting caller crashes its node.
func (f *fatalState) backgroundFailed(opts Options, err error) {
	opts.Logger.Warn("storage: background flush or compaction failed", "err", err)
	if !opts.Deterministic {
		return
	}
	if f.failures.Add(1) < maxBackgroundFailures {
		// The failed attempt's tables are deleted on Pebble's cleanup
		// goroutine, and the retry Pebble starts next syncs the directory
		// only if a deletion came before its own: wait for it here, on the
		// failed flush's goroutine, so that the retry always finds it done
		// (txnkv seed 153: a flush whose first table's sync failed synced
		// the directory in one run's next flush and not in the other's).
		if wait := f.waitForCleaning.Load(); wait != nil {
			(*wait)()
		}
		return
	}
	reason := fmt.Errorf("%w: %d flushes or compactions failed in a row, the last with: %w", ErrFatal, maxBackgroundFailures, err)
	f.record(reason)
	if opts.OnBackgroundFatal != nil {
		opts.OnBackgroundFatal(reason)
	}
	panic(kernel.NodeCrash{Reason: reason})
}

func newFatalState() *fatalState { return &fatalState{failed: make(chan struct{})} }

func (f *fatalState) record(reason error) {
	if f.reason.CompareAndSwap(nil, &reason) && f.failed != nil {
		close(f.failed)
	}
}

func (f *fatalState) load() error {
	if p := f.reason.Load(); p != nil {
		return *p
	}
	return nil
}

// check panics with kernel.NodeCrash if a fatal error has been recorded: an
// engine that lost a write must not accept the next one.
func (f *fatalState) check() {
	if err := f.load(); err != nil {
		panic(kernel.NodeCrash{Reason: fmt.Errorf("%w: engine used after: %w", ErrFatal, err)})
	}
}

// crashOnPanic, deferred around calls into Pebble, turns a panic that
// carries an I/O or corruption error into kernel.NodeCrash. Pebble panics
// with a plain error where it cannot go on (rotating the WAL after its
// close failed, for one); that is a disk fault, not a bug in the caller.
// Assertion failures and non-error panics are bugs and propagate as they
// are.
func (f *fatalState) crashOnPanic(what string) {
	r := recover()
	if r == nil {
		return
	}
	if c, ok := r.(kernel.NodeCrash); ok {
		panic(c)
	}
	if err, ok := r.(error); ok && !crerrors.HasAssertionFailure(err) {
		reason := fmt.Errorf("%w: %s: %w", ErrFatal, what, err)
		f.record(reason)
		panic(kernel.NodeCrash{Reason: reason})
	}
	panic(r)
}

// fatalError is the reason of a Fatalf: Pebble's message, wrapping ErrFatal
// and the errors among the message's arguments, so that errors.Is finds
// the original I/O error.
type fatalError struct {
	msg    string
	causes []error
}

func (e *fatalError) Error() string   { return e.msg }
func (e *fatalError) Unwrap() []error { return e.causes }

// pebbleLogger is the pebble.Logger of an engine: messages go to slog, and
// Fatalf crashes the node instead of exiting the process.
type pebbleLogger struct {
	log          *slog.Logger
	fatal        *fatalState
	onBackground func(reason error)
}

func (l *pebbleLogger) Infof(format string, args ...any) {
	l.log.Info(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l *pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf records the error, so that the engine refuses all later work, and
// panics with kernel.NodeCrash. On a goroutine that called in through this
// package the panic reaches the caller's task, which crashes its node; on
// one of Pebble's own goroutines OnBackgroundFatal gets to act first. Fatalf
// never returns: Pebble's code after a Fatalf call assumes it does not.
func (l *pebbleLogger) Fatalf(format string, args ...any) {
	reason := &fatalError{msg: fmt.Sprintf(format, args...), causes: []error{ErrFatal}}
	for _, a := range args {
		if err, ok := a.(error); ok {
			reason.causes = append(reason.causes, err)
		}
	}
	l.fatal.record(reason)
	l.log.Error("fatal disk error, crashing the node", "component", "pebble", "err", reason)
	if l.onBackground != nil && !calledThroughPackage() {
		l.onBackground(reason)
	}
	panic(kernel.NodeCrash{Reason: reason})
}

// pkgPrefix is how this package's functions start in a stack trace.
var pkgPrefix = reflect.TypeFor[pebbleLogger]().PkgPath() + "."

// calledThroughPackage reports whether the calling goroutine entered Pebble
// through this package's API (a task's goroutine) rather than being one of
// Pebble's background goroutines. Only the fatal path calls it.
func calledThroughPackage() bool {
	var pcs [256]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		fr, more := frames.Next()
		if strings.HasPrefix(fr.Function, pkgPrefix) &&
			!strings.HasPrefix(fr.Function, pkgPrefix+"(*pebbleLogger)") {
			return true
		}
		if !more {
			return false
		}
	}
}
