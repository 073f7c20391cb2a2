package storage

// Memory is what the engine holds in memory outside the Go heap, as Pebble
// accounts it: the figures that, with the Go runtime's, explain a node's
// resident memory (docs/performance.md, "Memory").
type Memory struct {
	// BlockCache is the bytes the block cache holds (at most
	// Options.BlockCacheBytes).
	BlockCache int64
	// MemTables is the bytes of the live memtables: the mutable one and
	// those queued for a flush (together at most MemTableBytes times
	// Pebble's stop-writes threshold).
	MemTables uint64
	// ZombieMemTables is the bytes of flushed memtables still pinned by an
	// open iterator or snapshot: unbounded while a long read holds one.
	ZombieMemTables uint64
	// BlockCacheHits and BlockCacheMisses count block lookups since the
	// engine opened: a miss reads (and decompresses) a block from a file.
	BlockCacheHits, BlockCacheMisses int64
	// ReadAmp is the number of sorted runs a point read may have to look
	// in: the memtables, each L0 sublevel and each non-empty lower level.
	ReadAmp int
	// TableIters counts open sstable iterators; OpenTables counts the
	// sstables whose readers the file cache keeps open, and TableReaders
	// the bytes those readers hold (their index and filter blocks live in
	// the block cache, not here).
	TableIters   int64
	OpenTables   int64
	TableReaders int64
}

// Held is the C memory those figures add up to: the block cache, the
// memtables (live and zombie) and the table readers.
func (m Memory) Held() uint64 {
	return uint64(max(m.BlockCache, 0)) + m.MemTables + m.ZombieMemTables + uint64(max(m.TableReaders, 0))
}

// Memory reports the engine's memory now.
func (e *Engine) Memory() Memory {
	e.live()
	m := e.db.Metrics()
	return Memory{
		BlockCache:       m.BlockCache.Size,
		MemTables:        m.MemTable.Size,
		ZombieMemTables:  m.MemTable.ZombieSize,
		BlockCacheHits:   m.BlockCache.Hits,
		BlockCacheMisses: m.BlockCache.Misses,
		ReadAmp:          m.ReadAmp(),
		TableIters:       m.TableIters,
		OpenTables:       m.FileCache.TableCount,
		TableReaders:     m.FileCache.Size,
	}
}
