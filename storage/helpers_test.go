package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/orbitkernel/orbit/kernel"
	"go.etcd.io/raft/v3/raftpb"
)

// quiet keeps Pebble's informational messages out of test output.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testOptions are the simulator's settings: compactions on request only.
func testOptions() Options {
	return Options{Logger: quiet, Deterministic: true}
}

func openEngine(t testing.TB, fs vfs.FS, opts Options) *Engine {
	t.Helper()
	e, err := Open(fs, "/db", opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return e
}

func openStore(t testing.TB, e *Engine, id RangeID) *LogStore {
	t.Helper()
	s, err := OpenLogStore(e, id)
	if err != nil {
		t.Fatalf("OpenLogStore(%d): %v", id, err)
	}
	return s
}

// commit runs stage in a fresh batch and commits it with sync.
func commit(t testing.TB, e *Engine, stage func(b *Batch)) {
	t.Helper()
	b := e.NewBatch()
	defer b.Close()
	stage(b)
	if err := b.Commit(true); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// crashOf runs fn and returns the kernel.NodeCrash it panicked with; any
// other panic propagates, and returning normally is reported as ok=false.
func crashOf(fn func()) (crash kernel.NodeCrash, ok bool) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if c, isCrash := r.(kernel.NodeCrash); isCrash {
			crash, ok = c, true
			return
		}
		panic(r)
	}()
	fn()
	return crash, false
}

// panicOf runs fn and returns what it panicked with, as a string.
func panicOf(fn func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	fn()
	return ""
}

// ents builds entries [lo, hi) of term, with payloads of size bytes.
func ents(lo, hi, term uint64, size int) []raftpb.Entry {
	var out []raftpb.Entry
	for i := lo; i < hi; i++ {
		out = append(out, raftpb.Entry{Index: i, Term: term, Data: bytes.Repeat([]byte{byte(i)}, size)})
	}
	return out
}

// diffEntries describes how got differs from want ("" if it does not).
// Nil and empty Data are the same payload.
func diffEntries(got, want []raftpb.Entry) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Index != w.Index || g.Term != w.Term || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) {
			return fmt.Sprintf("entry %d is (index %d, term %d, %d bytes), want (index %d, term %d, %d bytes)",
				i, g.Index, g.Term, len(g.Data), w.Index, w.Term, len(w.Data))
		}
	}
	return ""
}

func sameError(a, b error) bool {
	return errors.Is(a, b) && errors.Is(b, a) || a == nil && b == nil
}
