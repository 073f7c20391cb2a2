package storage

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/orbitkernel/orbit/kernel"
)

func TestOptions(t *testing.T) {
	var o Options
	o.EnsureDefaults()
	if o.Logger == nil || o.MemTableBytes != DefaultMemTableBytes || o.BlockCacheBytes != DefaultBlockCacheBytes || o.EntryCacheBytes != DefaultEntryCacheBytes {
		t.Fatalf("defaults: %s", o.String())
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}

	in := Options{Deterministic: true, MemTableBytes: 1 << 20, BlockCacheBytes: 1 << 10, EntryCacheBytes: -1}
	var out Options
	if err := out.Parse(in.String()); err != nil {
		t.Fatalf("Parse(%q): %v", in.String(), err)
	}
	if out.String() != in.String() {
		t.Fatalf("round trip:\n%s\nbecame\n%s", in.String(), out.String())
	}
	if err := out.Parse("[Options]\n  no_such_option=1\n"); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Parse of an unknown option: %v", err)
	}

	bad := Options{MemTableBytes: 1, BlockCacheBytes: -1}
	err := bad.Validate()
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Validate = %v", err)
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 3 { // logger, memtable, cache
		t.Fatalf("Validate reported %d problems, want all 3: %v", n, err)
	}
	if _, err := Open(vfs.NewMem(), "/db", Options{MemTableBytes: 1}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Open with bad options: %v", err)
	}
}

func TestDataReadWrite(t *testing.T) {
	e := openEngine(t, vfs.NewMem(), testOptions())
	defer e.Close()

	if _, err := e.Get([]byte("a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	for i := range 10 {
		if err := e.Set(fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Set([]byte("empty"), nil, true); err != nil {
		t.Fatal(err)
	}
	if v, err := e.Get([]byte("empty")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %q, %v; want empty and found", v, err)
	}
	if err := e.Delete([]byte("empty"), false); err != nil {
		t.Fatal(err)
	}

	// Pages of 4 over [k2, k9): k2..k5, then k6..k8.
	kvs, resume, err := e.Scan([]byte("k2"), []byte("k9"), 4)
	if err != nil || len(kvs) != 4 || string(kvs[0].Key) != "k2" || string(kvs[3].Value) != "v5" || string(resume) != "k6" {
		t.Fatalf("Scan page 1 = %q, resume %q, %v", kvs, resume, err)
	}
	kvs, resume, err = e.Scan(resume, []byte("k9"), 4)
	if err != nil || len(kvs) != 3 || string(kvs[2].Key) != "k8" || resume != nil {
		t.Fatalf("Scan page 2 = %q, resume %q, %v", kvs, resume, err)
	}
	if msg := panicOf(func() { _, _, _ = e.Scan(nil, nil, 0) }); msg == "" {
		t.Fatal("an unbounded scan did not panic")
	}

	// A batch reads its own writes; nothing shows outside until Commit.
	b := e.NewBatch()
	b.Set([]byte("k1"), []byte("new"))
	b.DeleteRange([]byte("k3"), []byte("k6"))
	b.Delete([]byte("k9"))
	if v, err := b.Get([]byte("k1")); err != nil || string(v) != "new" {
		t.Fatalf("batch Get = %q, %v", v, err)
	}
	if v, _ := e.Get([]byte("k1")); string(v) != "v1" {
		t.Fatalf("uncommitted write visible: %q", v)
	}
	kvs, _, _ = b.Scan(nil, nil, 100)
	if got := keys(kvs); !slices.Equal(got, []string{"k0", "k1", "k2", "k6", "k7", "k8"}) {
		t.Fatalf("batch Scan = %v", got)
	}
	view := e.NewView()
	defer view.Close()
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	kvs, _, _ = e.Scan(nil, nil, 100)
	if got := keys(kvs); !slices.Equal(got, []string{"k0", "k1", "k2", "k6", "k7", "k8"}) {
		t.Fatalf("Scan after commit = %v", got)
	}
	// The view still shows the data as it was.
	kvs, _, _ = view.Scan(nil, nil, 100)
	if len(kvs) != 10 {
		t.Fatalf("view sees %d keys, want the 10 from before the batch", len(kvs))
	}
	if v, _ := view.Get([]byte("k1")); string(v) != "v1" {
		t.Fatalf("view Get = %q", v)
	}
	if msg := panicOf(func() { b.Set([]byte("x"), nil) }); msg == "" {
		t.Fatal("a committed batch accepted a write")
	}
}

func keys(kvs []KeyValue) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// TestBatchHooks: OnCommit hooks run in order after a commit, and never for
// an abandoned batch.
func TestBatchHooks(t *testing.T) {
	e := openEngine(t, vfs.NewMem(), testOptions())
	defer e.Close()

	var got []string
	b := e.NewBatch()
	b.Set([]byte("a"), []byte("1"))
	b.OnCommit(func() {
		// The write is visible by the time the hook runs.
		v, err := e.Get([]byte("a"))
		got = append(got, fmt.Sprintf("first %s %v", v, err))
	})
	b.OnCommit(func() { got = append(got, "second") })
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close() // a no-op after Commit
	if want := []string{"first 1 <nil>", "second"}; !slices.Equal(got, want) {
		t.Fatalf("hooks ran as %q, want %q", got, want)
	}

	b = e.NewBatch()
	b.Set([]byte("a"), []byte("2"))
	b.OnCommit(func() { t.Error("hook of an abandoned batch ran") })
	b.Close()
	if v, _ := e.Get([]byte("a")); string(v) != "1" {
		t.Fatalf("abandoned write visible: %q", v)
	}
}

func TestIdentAndRangeIDs(t *testing.T) {
	fs := vfs.NewMem()
	e := openEngine(t, fs, testOptions())
	if _, err := e.Ident(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Ident of a new store: %v", err)
	}
	if _, err := e.ClusterRecord(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ClusterRecord of a new store: %v", err)
	}
	if ids, err := e.RangeIDs(); err != nil || len(ids) != 0 {
		t.Fatalf("RangeIDs of a new store = %v, %v", ids, err)
	}
	want := Ident{ClusterID: 0xc1, NodeID: kernel.NodeID(3)}
	for _, id := range []RangeID{9, 2, ^RangeID(0), 5} {
		s := openStore(t, e, id)
		commit(t, e, func(b *Batch) { s.Append(b, ents(1, 3, 1, 8)) })
		s.Close()
	}
	commit(t, e, func(b *Batch) { b.SetIdent(want); b.SetClusterRecord([]byte(`{"nodes":3}`)) })
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openEngine(t, fs, testOptions())
	defer e.Close()
	if got, err := e.Ident(); err != nil || got != want {
		t.Fatalf("Ident = %+v, %v; want %+v", got, err, want)
	}
	if got, err := e.ClusterRecord(); err != nil || string(got) != `{"nodes":3}` {
		t.Fatalf("ClusterRecord = %q, %v", got, err)
	}
	if ids, err := e.RangeIDs(); err != nil || !slices.Equal(ids, []RangeID{2, 5, 9, ^RangeID(0)}) {
		t.Fatalf("RangeIDs = %v, %v", ids, err)
	}
}

// TestFormatVersion: a store of another layout version is refused.
func TestFormatVersion(t *testing.T) {
	fs := vfs.NewMem()
	e := openEngine(t, fs, testOptions())
	commit(t, e, func(b *Batch) { b.setUint64(metaKey(metaVersion), formatVersion+1) })
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fs, "/db", testOptions()); !errors.Is(err, ErrFormat) {
		t.Fatalf("Open of a version %d store: %v", formatVersion+1, err)
	}
}

// TestSyncedBatchSurvivesCrash: a batch committed with sync is on disk when
// Commit returns; a crash keeps it, and whatever was committed before it.
func TestSyncedBatchSurvivesCrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	e := openEngine(t, fs, testOptions())
	if err := e.Set([]byte("early"), []byte("unsynced, then synced by the next commit"), false); err != nil {
		t.Fatal(err)
	}
	if err := e.Set([]byte("k"), []byte("v"), true); err != nil {
		t.Fatal(err)
	}
	// An empty synced batch still syncs what came before it.
	if err := e.Set([]byte("late"), []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	commit(t, e, func(*Batch) {})
	if err := e.Set([]byte("lost"), []byte("never synced"), false); err != nil {
		t.Fatal(err)
	}

	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, crashed, testOptions())
	defer e.Close()
	for _, k := range []string{"early", "k", "late"} {
		if _, err := e.Get([]byte(k)); err != nil {
			t.Errorf("synced key %q after a crash: %v", k, err)
		}
	}
	if _, err := e.Get([]byte("lost")); !errors.Is(err, ErrNotFound) {
		t.Errorf("unsynced key after a crash: %v (want it lost: a crash keeps only synced data)", err)
	}
}

// TestRangeLocal: range-local data is per range, invisible to user scans,
// readable through batches and views, and goes with Destroy.
func TestRangeLocal(t *testing.T) {
	e := openEngine(t, vfs.NewMem(), testOptions())
	defer e.Close()
	s := openStore(t, e, 1)
	commit(t, e, func(b *Batch) {
		b.Set([]byte("user"), []byte("u"))
		for i := range 5 {
			b.SetRangeLocal(1, fmt.Appendf(nil, "client/%d", i), []byte{byte(i)})
		}
		b.SetRangeLocal(2, []byte("client/0"), []byte("other range"))
		if v, err := b.GetRangeLocal(1, []byte("client/3")); err != nil || v[0] != 3 {
			t.Fatalf("batch GetRangeLocal = %v, %v", v, err)
		}
	})
	if kvs, _, _ := e.Scan(nil, nil, 100); len(kvs) != 1 {
		t.Fatalf("a user scan sees %d keys, want only the user key", len(kvs))
	}
	kvs, resume, err := e.ScanRangeLocal(1, []byte("client/"), nil, 3)
	if err != nil || len(kvs) != 3 || string(kvs[0].Key) != "client/0" || string(resume) != "client/3" {
		t.Fatalf("ScanRangeLocal = %q, resume %q, %v", kvs, resume, err)
	}
	view := e.NewView()
	defer view.Close()
	commit(t, e, func(b *Batch) {
		b.DeleteRangeLocal(1, []byte("client/0"))
		b.ClearRangeLocal(1)
		if _, err := b.GetRangeLocal(1, []byte("client/4")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetRangeLocal after ClearRangeLocal: %v", err)
		}
	})
	if kvs, _, _ := e.ScanRangeLocal(1, nil, nil, 100); len(kvs) != 0 {
		t.Fatalf("range 1 keeps %d range-local keys after ClearRangeLocal", len(kvs))
	}
	if v, err := view.GetRangeLocal(1, []byte("client/4")); err != nil || v[0] != 4 {
		t.Fatalf("the view lost range-local data: %v, %v", v, err)
	}
	if kvs, _, _ := view.ScanRangeLocal(1, nil, nil, 100); len(kvs) != 5 {
		t.Fatalf("the view sees %d range-local keys, want 5", len(kvs))
	}
	commit(t, e, func(b *Batch) {
		b.SetRangeLocal(1, []byte("again"), []byte("x"))
		s.Destroy(b)
	})
	if _, err := e.GetRangeLocal(1, []byte("again")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("range-local data survived Destroy: %v", err)
	}
	if v, err := e.GetRangeLocal(2, []byte("client/0")); err != nil || string(v) != "other range" {
		t.Fatalf("Destroy of range 1 touched range 2: %q, %v", v, err)
	}
}
