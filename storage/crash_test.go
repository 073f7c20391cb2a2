package storage

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	crerrors "github.com/cockroachdb/errors"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/orbitkernel/orbit/kernel"
	"go.etcd.io/raft/v3/raftpb"
)

// failing is an errorfs injector that, once armed, fails the writes and
// syncs of files whose name contains substr.
type failing struct {
	substr string
	armed  atomic.Bool
}

func (f *failing) String() string { return "failing(" + f.substr + ")" }

func (f *failing) MaybeError(op errorfs.Op) error {
	if f.armed.Load() && strings.Contains(op.Path, f.substr) &&
		(op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt || op.Kind == errorfs.OpFileSync ||
			op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileFlush) {
		return errorfs.ErrInjected
	}
	return nil
}

// TestWALErrorCrashesNode: a failed WAL write panics with kernel.NodeCrash
// in the committing goroutine (which, in a task, crashes its node), never
// returns as if the write had happened; afterwards the engine refuses all
// work the same way.
func TestWALErrorCrashesNode(t *testing.T) {
	inj := &failing{substr: ".log"}
	fs := errorfs.Wrap(vfs.NewMem(), inj)
	e := openEngine(t, fs, testOptions())
	s := openStore(t, e, 1)
	commit(t, e, func(b *Batch) { s.Append(b, ents(1, 4, 1, 8)) })

	inj.armed.Store(true)
	b := e.NewBatch()
	s.Append(b, ents(4, 6, 1, 8))
	crash, ok := crashOf(func() { _ = b.Commit(true) })
	if !ok {
		t.Fatal("a commit whose WAL write failed returned")
	}
	if !errors.Is(crash.Reason, ErrFatal) || !errors.Is(crash.Reason, errorfs.ErrInjected) {
		t.Fatalf("crash reason %v does not wrap ErrFatal and the injected error", crash.Reason)
	}
	if s.durable.last != 3 {
		t.Fatalf("last index %d after a failed commit, want 3: the store ran ahead of the disk", s.durable.last)
	}

	for name, fn := range map[string]func(){
		"Get":      func() { _, _ = e.Get([]byte("k")) },
		"NewBatch": func() { e.NewBatch() },
		"Entries":  func() { _, _ = s.Entries(1, 2, 100) },
	} {
		if c, ok := crashOf(fn); !ok || !errors.Is(c.Reason, ErrFatal) {
			t.Errorf("%s on a failed engine: crashed %t with %v", name, ok, c.Reason)
		}
	}
	if err := e.Close(); !errors.Is(err, ErrFatal) {
		t.Fatalf("Close of a failed engine = %v, want the fatal error", err)
	}
}

// TestBackgroundFatal: a fatal error on one of Pebble's own goroutines (a
// flush whose MANIFEST update fails) goes to OnBackgroundFatal, and the
// engine is poisoned for its callers.
func TestBackgroundFatal(t *testing.T) {
	inj := &failing{substr: "MANIFEST"}
	got := make(chan error, 1)
	park := make(chan struct{}) // never closed: the hook parks Pebble's goroutine
	opts := testOptions()
	opts.OnBackgroundFatal = func(reason error) {
		got <- reason
		<-park
	}
	e := openEngine(t, errorfs.Wrap(vfs.NewMem(), inj), opts)
	if err := e.Set([]byte("k"), []byte("v"), true); err != nil {
		t.Fatal(err)
	}
	inj.armed.Store(true)
	go func() {
		defer func() { _ = recover() }() // the flush may see the poisoned engine
		_ = e.Flush()                    // waits for the parked flush: leaks, as a crashed node does
	}()
	select {
	case reason := <-got:
		if !errors.Is(reason, ErrFatal) || !errors.Is(reason, errorfs.ErrInjected) {
			t.Fatalf("background reason %v", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnBackgroundFatal not called within 10s of a failed MANIFEST write")
	}
	if c, ok := crashOf(func() { _, _ = e.Get([]byte("k")) }); !ok || !errors.Is(c.Reason, ErrFatal) {
		t.Fatalf("Get after a background fatal: crashed %t with %v", ok, c.Reason)
	}
}

// TestFlushThatKeepsFailingIsFatal: Pebble retries a failed flush forever;
// a deterministic engine's Flush, which waits for it, crashes its caller
// after the third failure in a row instead, and the flushing goroutine stops
// in OnBackgroundFatal.
func TestFlushThatKeepsFailingIsFatal(t *testing.T) {
	inj := &failing{substr: ".sst"}
	parked := make(chan error, 1)
	opts := testOptions()
	opts.OnBackgroundFatal = func(reason error) {
		parked <- reason
		select {} // parked for good, as the simulator parks it
	}
	e := openEngine(t, errorfs.Wrap(vfs.NewMem(), inj), opts)
	if err := e.Set([]byte("k"), []byte("v"), true); err != nil {
		t.Fatal(err)
	}
	inj.armed.Store(true)
	c, ok := crashOf(func() { _ = e.Flush() })
	if !ok || !errors.Is(c.Reason, ErrFatal) || !errors.Is(c.Reason, errorfs.ErrInjected) {
		t.Fatalf("Flush on a disk failing every sstable write: crashed %t with %v", ok, c.Reason)
	}
	select {
	case reason := <-parked:
		if !errors.Is(reason, errorfs.ErrInjected) {
			t.Fatalf("OnBackgroundFatal got %v", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the flushing goroutine did not stop in OnBackgroundFatal")
	}
}

// slowCleanup is an errorfs injector that fails the first sstable sync
// once armed, slows the deletion of that sstable, and notes whether the
// failed flush's retry creates its own sstable while the failed one is
// still there.
type slowCleanup struct {
	mem      *vfs.MemFS
	armed    atomic.Bool
	failed   atomic.Pointer[string]
	leftover atomic.Bool
}

func (c *slowCleanup) String() string { return "slow cleanup" }

func (c *slowCleanup) MaybeError(op errorfs.Op) error {
	if !c.armed.Load() || !strings.HasSuffix(op.Path, ".sst") {
		return nil
	}
	failed := c.failed.Load()
	switch {
	case failed == nil && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData):
		c.failed.Store(&op.Path)
		return errorfs.ErrInjected
	case failed != nil && op.Kind == errorfs.OpRemove && op.Path == *failed:
		time.Sleep(50 * time.Millisecond) // Pebble's cleanup goroutine, late
	case failed != nil && op.Kind == errorfs.OpCreate && op.Path != *failed:
		if _, err := c.mem.Stat(*failed); err == nil {
			c.leftover.Store(true)
		}
	}
	return nil
}

// TestFlushRetryFindsTheFailedTablesDeleted: Pebble retries a failed flush
// at once and deletes the failed attempt's tables on its cleanup goroutine;
// the retry syncs the directory only if a deletion came before it. A
// deterministic engine holds the retry until the deletion is done, so what
// the retry syncs never depends on that goroutine's timing (txnkv seed 153
// ran two ways before).
func TestFlushRetryFindsTheFailedTablesDeleted(t *testing.T) {
	inj := &slowCleanup{mem: vfs.NewMem()}
	e := openEngine(t, errorfs.Wrap(inj.mem, inj), testOptions())
	defer e.Close()
	if err := e.Set([]byte("k"), []byte("v"), true); err != nil {
		t.Fatal(err)
	}
	inj.armed.Store(true)
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if inj.failed.Load() == nil {
		t.Fatal("no sstable sync failed: the test did not test anything")
	}
	if inj.leftover.Load() {
		t.Fatalf("the flush's retry created its sstable while the failed attempt's %s was not deleted yet", *inj.failed.Load())
	}
	if v, err := e.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get(k) after the retried flush = %q, %v", v, err)
	}
}

// TestDeterministicEngineFlushesItself: a deterministic engine flushes on
// the committing caller before its memtable is half full, so that Pebble
// never flushes on its own goroutine's timing; the data lands in sstables.
func TestDeterministicEngineFlushesItself(t *testing.T) {
	opts := testOptions()
	opts.MemTableBytes = minMemTableBytes
	e := openEngine(t, vfs.NewMem(), opts)
	defer e.Close()
	value := make([]byte, 1000)
	for i := range 200 { // about three memtables' worth
		if err := e.Set(fmt.Appendf(nil, "k%03d", i), value, false); err != nil {
			t.Fatal(err)
		}
	}
	m := e.db.Metrics()
	// 200 KB through a 64 KB memtable: Pebble alone flushes a handful of
	// times (at half a memtable), the engine about every 16 KB.
	if m.Flush.Count < 10 {
		t.Fatalf("%d flushes after writing 200 KB through a 64 KB memtable, want at least 10 (one per quarter memtable)", m.Flush.Count)
	}
	if n := m.Levels[0].TablesCount + m.Levels[6].TablesCount; n == 0 {
		t.Fatalf("no sstable in L0 or L6 after the flushes: %s", m)
	}
	for i := range 200 {
		if _, err := e.Get(fmt.Appendf(nil, "k%03d", i)); err != nil {
			t.Fatalf("k%03d: %v", i, err)
		}
	}
}

// TestCrashOnPanic: Pebble's error panics become node crashes; its
// assertion failures and other panics stay bugs.
func TestCrashOnPanic(t *testing.T) {
	run := func(v any) (recovered any) {
		defer func() { recovered = recover() }()
		f := &fatalState{}
		defer f.crashOnPanic("test")
		panic(v)
	}
	io := errors.New("disk on fire")
	if c, ok := run(io).(kernel.NodeCrash); !ok || !errors.Is(c.Reason, io) || !errors.Is(c.Reason, ErrFatal) {
		t.Errorf("an error panic became %v", run(io))
	}
	assertion := crerrors.AssertionFailedf("broken invariant")
	if got := run(assertion); got != assertion {
		t.Errorf("an assertion failure became %v", got)
	}
	if got := run("a string"); got != "a string" {
		t.Errorf("a string panic became %v", got)
	}
	crash := kernel.NodeCrash{Reason: io}
	if got := run(crash); got != crash {
		t.Errorf("a NodeCrash became %v", got)
	}
}

// TestReadErrorCrashesNode: Raft cannot go on without its log, so a read
// error in raft.Storage crashes the node rather than returning an error
// Raft would panic on.
func TestReadErrorCrashesNode(t *testing.T) {
	var armed atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsRead && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	})
	opts := testOptions()
	opts.EntryCacheBytes = -1
	opts.BlockCacheBytes = 1 // nothing stays cached: reads reach the file
	e := openEngine(t, errorfs.Wrap(vfs.NewMem(), inj), opts)
	s := openStore(t, e, 1)
	commit(t, e, func(b *Batch) { s.Append(b, ents(1, 50, 1, 100)) })
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	var got []raftpb.Entry
	c, ok := crashOf(func() { got, _ = s.Entries(1, 50, 1<<20) })
	if !ok {
		t.Fatalf("Entries with failing reads returned %d entries", len(got))
	}
	if !errors.Is(c.Reason, errorfs.ErrInjected) {
		t.Fatalf("crash reason %v", c.Reason)
	}
}
