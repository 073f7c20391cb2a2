package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/orbitkernel/orbit/kernel"
)

// formatVersion is the version of the key layout (see the package doc),
// stored under \x00"version". Bump it on any incompatible change.
const formatVersion = 1

// ErrFormat is returned by Open for a store written in another layout
// version, or one whose metadata is missing while it holds data.
var ErrFormat = errors.New("storage: unsupported store format")

// ErrNotFound is returned by reads of a key, or of node metadata, that is
// not there.
var ErrNotFound = errors.New("storage: not found")

// ErrCorrupt is returned when stored data fails its checks: a value that
// does not decode, or a Pebble file (write-ahead log, MANIFEST, sstable
// block) whose checksum does not match. Open returns it for a store that
// is damaged; such a store never opens again, and its node must be rebuilt
// from its peers (docs/consensus.md, "Rebuilding a damaged node").
var ErrCorrupt = errors.New("storage: corrupt data")

// l0StopWrites is Pebble's L0 write-stall threshold: its default, or out of
// reach when the engine is deterministic (no automatic compaction would
// ever end the stall; the engine compacts itself, see Options).
func l0StopWrites(deterministic bool) int {
	if deterministic {
		return 1 << 20
	}
	return 0 // Pebble's default
}

// compactEvery is how many of its own flushes a deterministic engine makes
// between two compactions of the whole keyspace.
const compactEvery = 8

// damagedMarker names the file that records, in the store's directory,
// that its data failed a checksum: a damaged sstable is only found when a
// read reaches it, and the node that crashes on it must not come back on
// the same data.
const damagedMarker = "DAMAGED"

// Engine is a node's store: one Pebble instance on the runtime's vfs.FS.
//
// Reads and batch commits are safe from any goroutine, as Pebble's are; a
// LogStore, however, belongs to one task.
type Engine struct {
	db    *pebble.DB
	opts  Options
	fatal *fatalState
	// Invariant: once closed is set, every method but Close panics.
	closed atomic.Bool

	mu sync.Mutex
	// open holds the ranges with an open LogStore. Guarded by mu.
	open map[RangeID]bool
	// unflushed estimates the memtable bytes written since the last flush,
	// and flushes counts flushes since the last compaction; both are used
	// only by a deterministic engine (see Options.Deterministic). Guarded
	// by mu.
	unflushed int64
	flushes   int
}

// Open opens (creating it if need be) the store in dir on fs.
//
// A fatal disk error while opening panics with kernel.NodeCrash, as it does
// later; any other problem (bad options, a store in another format) is
// returned.
func Open(fs vfs.FS, dir string, opts Options) (*Engine, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if reason, ok := damaged(fs, dir); ok {
		return nil, fmt.Errorf("%w: %s: the store was found damaged earlier (%s); rebuild the node from its peers", ErrCorrupt, dir, reason)
	}
	fatal := newFatalState()
	defer fatal.crashOnPanic("open")
	cache := pebble.NewCache(opts.BlockCacheBytes)
	defer cache.Unref() // Pebble holds its own reference while open.
	popts := &pebble.Options{
		FS:                          fs,
		Cache:                       cache,
		Logger:                      &pebbleLogger{log: opts.Logger, fatal: fatal, onBackground: opts.OnBackgroundFatal},
		MemTableSize:                opts.MemTableBytes,
		DisableAutomaticCompactions: opts.Deterministic,
		// Table statistics only steer automatic compactions, and their
		// loader is one more goroutine outside virtual time (one that can
		// outlive a Close racing with it): off with them.
		DisableTableStats: opts.Deterministic,
		// A write stall on L0's file count waits for an automatic
		// compaction: without them it would wait forever.
		L0StopWritesThreshold: l0StopWrites(opts.Deterministic),
		// A fixed format, so that the same binary writes the same files.
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			// Called on the reading goroutine before the read fails: the
			// marker outlives the crash that follows.
			DataCorruption:  func(info pebble.DataCorruptionInfo) { markDamaged(fs, dir, info.String()) },
			BackgroundError: func(err error) { fatal.backgroundFailed(opts, err) },
		},
	}
	if !opts.Deterministic {
		// Every write waits while Pebble stalls them (too many memtables
		// queued for a flush, too many L0 files): an operator reading a
		// latency spike needs to see why. (A deterministic engine flushes
		// and compacts before Pebble would stall, and logs nothing from
		// Pebble's goroutines.)
		popts.EventListener.WriteStallBegin = func(info pebble.WriteStallBeginInfo) {
			opts.Logger.Warn("storage: writes stalled", "reason", info.Reason)
		}
		popts.EventListener.WriteStallEnd = func() { opts.Logger.Warn("storage: writes resumed") }
	}
	// A Bloom filter on the tables of every level but the last (ten bits
	// a key, about 1% false positives; CockroachDB's choice), so that a
	// point read of a key a table does not hold skips it without reading a
	// block. Many point reads are of missing keys: every Redis write reads
	// the key's old value first, and with millions of keys a new key's
	// read went to every level's data blocks (block reads and
	// decompression were a third of the CPU of SETs at five million keys;
	// docs/performance.md, "Millions of keys"). Not the last level:
	// Pebble's point reads never consult its filters (IterOptions.
	// UseL6Filters is off for them), and that level holds most keys, so
	// its filters would only cost disk. Tables written before keep no
	// filter until compacted: the change needs no migration.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	popts.Levels[len(popts.Levels)-1].FilterPolicy = pebble.NoFilterPolicy
	// Open waits for the flush of the write-ahead log it replays, which
	// parks or retries forever on a fatal error: fatal.run can stop waiting.
	var (
		db  *pebble.DB
		err error
	)
	fatal.run(func() { db, err = pebble.Open(dir, popts) })
	if errors.Is(err, pebble.ErrCorruption) {
		markDamaged(fs, dir, err.Error())
		return nil, fmt.Errorf("%w: opening %q: %w", ErrCorrupt, dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: opening %q: %w", dir, err)
	}
	e := &Engine{db: db, opts: opts, fatal: fatal, open: map[RangeID]bool{}}
	if opts.Deterministic {
		wait := db.TestOnlyWaitForCleaning
		fatal.waitForCleaning.Store(&wait)
	}
	e.waitForCleaning()
	if err := e.checkFormat(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return e, nil
}

// checkFormat writes the format version into a new store and checks it in
// an existing one.
func (e *Engine) checkFormat() error {
	v, err := e.getUint64(metaKey(metaVersion))
	switch {
	case err == nil && v == formatVersion:
		return nil
	case err == nil:
		return fmt.Errorf("%w: layout version %d, this binary reads %d", ErrFormat, v, formatVersion)
	case !errors.Is(err, ErrNotFound):
		return err
	}
	it, err := e.db.NewIter(nil)
	if err != nil {
		return err
	}
	nonEmpty := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	if nonEmpty {
		return fmt.Errorf("%w: the store holds data but no layout version", ErrFormat)
	}
	b := e.NewBatch()
	defer b.Close()
	b.setUint64(metaKey(metaVersion), formatVersion)
	return b.Commit(true)
}

// claimRange records an open LogStore of range id, panicking if there is
// one already.
func (e *Engine) claimRange(id RangeID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.open[id] {
		panic(fmt.Sprintf("storage: range %d already has an open LogStore", id))
	}
	e.open[id] = true
}

func (e *Engine) releaseRange(id RangeID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.open, id)
}

// Options returns the options the engine was opened with, defaults filled.
func (e *Engine) Options() Options { return e.opts }

// live panics if the engine may not be used: it is closed (a bug in the
// caller) or has seen a fatal error (the node must die).
func (e *Engine) live() {
	if e.closed.Load() {
		panic("storage: engine used after Close")
	}
	e.fatal.check()
}

// NewBatch starts an atomic write. Its reads (Get, Scan) see its own writes
// on top of the engine's committed state.
func (e *Engine) NewBatch() *Batch {
	e.live()
	return &Batch{e: e, b: e.db.NewIndexedBatch()}
}

// Get returns a copy of the value of user key, or ErrNotFound.
func (e *Engine) Get(key []byte) ([]byte, error) {
	e.live()
	defer e.fatal.crashOnPanic("get")
	return get(e.db, dataKey(key))
}

// Scan returns up to limit user keys in [start, end) in order, with their
// values; a nil end means no upper bound. If more keys remain, resume is
// the key to start the next page at; otherwise it is nil. limit must be
// positive: every scan is bounded.
func (e *Engine) Scan(start, end []byte, limit int) (kvs []KeyValue, resume []byte, err error) {
	e.live()
	defer e.fatal.crashOnPanic("scan")
	return scan(e.db, dataSpace, start, end, limit)
}

// GetRangeLocal returns a copy of the value of key in range id's
// range-local data (see Batch.GetRangeLocal), or ErrNotFound.
func (e *Engine) GetRangeLocal(id RangeID, key []byte) ([]byte, error) {
	e.live()
	defer e.fatal.crashOnPanic("get")
	return get(e.db, localSpace(id).key(key))
}

// ScanRangeLocal is Scan over range id's range-local data.
func (e *Engine) ScanRangeLocal(id RangeID, start, end []byte, limit int) (kvs []KeyValue, resume []byte, err error) {
	e.live()
	defer e.fatal.crashOnPanic("scan")
	return scan(e.db, localSpace(id), start, end, limit)
}

// Set writes one user key in a batch of its own. With sync, it is durable
// when Set returns.
func (e *Engine) Set(key, value []byte, sync bool) error {
	b := e.NewBatch()
	defer b.Close()
	b.Set(key, value)
	return b.Commit(sync)
}

// Delete removes one user key in a batch of its own.
func (e *Engine) Delete(key []byte, sync bool) error {
	b := e.NewBatch()
	defer b.Close()
	b.Delete(key)
	return b.Commit(sync)
}

// Ident is who owns the store: written once, when the node first joins a
// cluster, and checked at every start so that a disk never serves another
// node or cluster.
type Ident struct {
	ClusterID uint64
	NodeID    kernel.NodeID
}

// Ident returns the store's identity, or ErrNotFound if it has none yet.
func (e *Engine) Ident() (Ident, error) {
	e.live()
	defer e.fatal.crashOnPanic("ident")
	cluster, err := e.getUint64(metaKey(metaClusterID))
	if err != nil {
		return Ident{}, err
	}
	node, err := e.getUint64(metaKey(metaNodeID))
	if err != nil {
		return Ident{}, err
	}
	return Ident{ClusterID: cluster, NodeID: kernel.NodeID(node)}, nil
}

// ClusterRecord returns what SetClusterRecord stored, or ErrNotFound.
func (e *Engine) ClusterRecord() ([]byte, error) {
	e.live()
	defer e.fatal.crashOnPanic("cluster record")
	return get(e.db, metaKey(metaCluster))
}

// Incarnation is the node's incarnation as last recorded (SetIncarnation;
// 0: never): the cluster layer counts the node's starts with it, so that
// peers can order its incarnations.
func (e *Engine) Incarnation() (uint64, error) {
	e.live()
	defer e.fatal.crashOnPanic("incarnation")
	n, err := e.getUint64(metaKey(metaIncarnation))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return n, err
}

// RangeIDs lists, in order, every range with state in the store: the
// replicas a restarting node must bring back.
func (e *Engine) RangeIDs() ([]RangeID, error) {
	e.live()
	defer e.fatal.crashOnPanic("range ids")
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRange}, UpperBound: []byte{prefixRange + 1}})
	if err != nil {
		return nil, err
	}
	var ids []RangeID
	for valid := it.First(); valid; {
		k := it.Key()
		if len(k) < rangePrefixLen {
			return nil, errors.Join(fmt.Errorf("%w: %s", ErrBadKey, FormatKey(k)), it.Close())
		}
		id := RangeID(binary.BigEndian.Uint64(k[1:]))
		ids = append(ids, id)
		if id == ^RangeID(0) {
			break
		}
		valid = it.SeekGE(rangePrefix(id + 1))
	}
	return ids, errors.Join(it.Error(), it.Close())
}

// Flush writes the memtable to an sstable and waits for it. A fatal error
// on the flushing goroutine (a failed MANIFEST write) panics with
// kernel.NodeCrash; a failed sstable write is retried by Pebble until it
// succeeds.
func (e *Engine) Flush() error {
	e.live()
	defer e.fatal.crashOnPanic("flush")
	e.waitForCleaning()
	flushed, err := e.db.AsyncFlush()
	if err != nil {
		return err
	}
	e.fatal.wait(flushed)
	e.waitForCleaning()
	e.fatal.failures.Store(0)
	e.mu.Lock()
	e.unflushed = 0
	e.mu.Unlock()
	return nil
}

// Compact compacts the whole keyspace (flushing the memtable first) and
// waits for it. A fatal error meanwhile panics with kernel.NodeCrash, as
// Flush does; a failed compaction returns its error and leaves the data as
// it was.
func (e *Engine) Compact() error {
	e.live()
	defer e.fatal.crashOnPanic("compact")
	var err error
	e.waitForCleaning()
	// Pebble's Compact waits for its compaction without a way out.
	e.fatal.run(func() {
		err = e.db.Compact(context.Background(), []byte{prefixMeta}, []byte{prefixData + 1}, false)
	})
	e.waitForCleaning()
	if err == nil {
		e.fatal.failures.Store(0)
	}
	e.mu.Lock()
	e.unflushed, e.flushes = 0, 0
	e.mu.Unlock()
	return err
}

// waitForCleaning waits, in a deterministic engine, until Pebble has
// deleted every file it has found obsolete so far. Pebble deletes them on a
// goroutine of its own, and the next flush or compaction syncs the
// directory only if a deletion happened since the last sync: left to that
// goroutine's timing, what a crash keeps, and which syncs a task waits
// for, would differ from run to run. So a flush or compaction waits both
// after itself (for the files it made obsolete) and before (for files made
// obsolete since: a version's files go only when its last reader, an
// iterator or snapshot a task closed at any moment, lets go of it; txnkv
// seed 153 synced the directory in one run's flush and not the next's).
// Pebble exports the wait for tests; the simulator is one.
func (e *Engine) waitForCleaning() {
	if !e.opts.Deterministic {
		return
	}
	e.fatal.run(e.db.TestOnlyWaitForCleaning)
}

// pebbleInitialMemTableBytes is the size of Pebble's first memtable (its
// initialMemTableSize): memtables start there and double, up to
// MemTableBytes, at each rotation, unless a manual flush finds the
// memtable less than half full, which keeps the next one the same size.
const pebbleInitialMemTableBytes = 256 << 10

// deterministicFlushBytes is how much a deterministic engine lets its
// memtable take before it flushes: a quarter of the smallest memtable
// Pebble can have. Flushing there, below half, keeps every memtable at
// that smallest size, so Pebble never finds one full and rotates it
// itself on a commit (its flush would then run on its own goroutine, at a
// moment the simulator does not choose: a seed that ran differently once
// in three was traced to that).
func deterministicFlushBytes(memTableBytes uint64) int64 {
	return int64(min(memTableBytes, pebbleInitialMemTableBytes) / 4)
}

// committed is called after every batch commit with the batch's encoded
// size and operation count. A deterministic engine flushes (and now and
// then compacts) here, on the committing caller, before Pebble would flush
// on its own goroutine (see Options.Deterministic).
func (e *Engine) committed(bytes int, ops uint32) {
	if !e.opts.Deterministic {
		return
	}
	// A memtable spends more than the batch's encoding on each operation
	// (its skiplist node); 64 bytes more is a generous estimate.
	e.mu.Lock()
	e.unflushed += int64(bytes) + 64*int64(ops)
	flush := e.unflushed >= deterministicFlushBytes(e.opts.MemTableBytes)
	if flush {
		e.flushes++
	}
	compact := flush && e.flushes >= compactEvery
	e.mu.Unlock()
	switch {
	case compact:
		if err := e.Compact(); err != nil {
			// A failed compaction (an injected write error) changes
			// nothing; the next one tries again.
			e.opts.Logger.Warn("storage: compaction failed", "err", err)
		}
	case flush:
		if err := e.Flush(); err != nil {
			panic(fmt.Sprintf("storage: flush of an open engine failed: %v", err))
		}
	}
}

// NewView returns a consistent, point-in-time read-only view of the user
// and range-local data (a Pebble snapshot; not to be confused with a Raft snapshot, though
// it is what one streams a Raft snapshot's data from). Close it.
func (e *Engine) NewView() *View {
	e.live()
	return &View{e: e, s: e.db.NewSnapshot()}
}

// Close closes the engine. After a fatal error it only reports that error:
// Pebble's commit pipeline may be stuck, and the node is dying anyway.
func (e *Engine) Close() error {
	if e.closed.Load() {
		return nil
	}
	e.closed.Store(true)
	if err := e.fatal.load(); err != nil {
		return err
	}
	return e.db.Close()
}

func (e *Engine) getUint64(key []byte) (uint64, error) {
	v, err := get(e.db, key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %s holds %d bytes, want 8", ErrCorrupt, FormatKey(key), len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// View is a point-in-time read of the user data. It must be closed.
type View struct {
	e *Engine
	s *pebble.Snapshot
}

// Get is Engine.Get as of the view's creation.
func (v *View) Get(key []byte) ([]byte, error) {
	v.e.live()
	defer v.e.fatal.crashOnPanic("view get")
	return get(v.s, dataKey(key))
}

// Scan is Engine.Scan as of the view's creation.
func (v *View) Scan(start, end []byte, limit int) (kvs []KeyValue, resume []byte, err error) {
	v.e.live()
	defer v.e.fatal.crashOnPanic("view scan")
	return scan(v.s, dataSpace, start, end, limit)
}

// GetRangeLocal is Engine.GetRangeLocal as of the view's creation.
func (v *View) GetRangeLocal(id RangeID, key []byte) ([]byte, error) {
	v.e.live()
	defer v.e.fatal.crashOnPanic("view get")
	return get(v.s, localSpace(id).key(key))
}

// ScanRangeLocal is Engine.ScanRangeLocal as of the view's creation: with
// View.Scan over the range's span, what a Raft snapshot of the range
// streams.
func (v *View) ScanRangeLocal(id RangeID, start, end []byte, limit int) (kvs []KeyValue, resume []byte, err error) {
	v.e.live()
	defer v.e.fatal.crashOnPanic("view scan")
	return scan(v.s, localSpace(id), start, end, limit)
}

// Close releases the view. After a fatal error it releases nothing and
// returns that error: the Pebble goroutine that failed may be parked
// holding Pebble's lock, which closing a snapshot takes (a dying node's
// snapshot sender, unwinding, waited on it forever in a five-node sweep of
// seeds 2000-2299).
func (v *View) Close() error {
	if err := v.e.fatal.load(); err != nil {
		return err
	}
	return v.s.Close()
}
