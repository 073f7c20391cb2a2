package storage

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestMemoryAccounts: the memtables hold what was written, the block cache
// what was read back from tables, within its configured size.
func TestMemoryAccounts(t *testing.T) {
	opts := testOptions()
	opts.BlockCacheBytes = 16 << 20 // Pebble shards it: tiny shards keep no block
	e := openEngine(t, vfs.NewMem(), opts)
	defer e.Close()
	if m := e.Memory(); m.BlockCache != 0 {
		t.Fatalf("block cache holds %d bytes before any read", m.BlockCache)
	}
	writeKeys(t, e, 5000)
	if m := e.Memory(); m.MemTables == 0 {
		t.Fatal("memtables hold nothing after a write")
	}
	if err := e.Compact(); err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if _, err := e.Get([]byte(fmt.Sprintf("key-%06d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if m := e.Memory(); m.BlockCache == 0 || m.BlockCache > opts.BlockCacheBytes || m.BlockCacheHits == 0 {
		t.Fatalf("after reading every key: %+v; want the block cache used, within %d bytes", m, opts.BlockCacheBytes)
	}
}

// TestFiltersAnswerMissingKeys: a point read of a key that a table above
// the last level does not hold is answered by the table's Bloom filter,
// without reading its data.
func TestFiltersAnswerMissingKeys(t *testing.T) {
	e := openEngine(t, vfs.NewMem(), testOptions())
	defer e.Close()
	writeKeys(t, e, 5000)
	if err := e.Flush(); err != nil { // one table, in L0
		t.Fatal(err)
	}
	for i := range 5000 {
		if _, err := e.Get([]byte(fmt.Sprintf("key-%06d-absent", i))); err == nil {
			t.Fatal("found an absent key")
		}
	}
	// 1% false positives: the filter lets about 50 reads through.
	if f := e.db.Metrics().Filter; f.Hits < 4800 {
		t.Fatalf("5000 reads of absent keys: the filters answered %d (%+v), want nearly all", f.Hits, f)
	}
}

func writeKeys(t *testing.T, e *Engine, n int) {
	t.Helper()
	b := e.NewBatch()
	for i := range n {
		b.Set([]byte(fmt.Sprintf("key-%06d", i)), make([]byte, 100))
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
}
