// Package cmem tunes the C allocator that holds Pebble's block cache and
// memtables, so that a node's resident memory follows what they hold.
//
// Pebble allocates its block cache and memtables with C's malloc (outside
// the Go heap, so the collector never scans or doubles them). glibc's
// malloc keeps what is freed for reuse: a block cache that evicts and
// fills all day frees blocks everywhere in its heaps, and glibc gives
// pages back to the system only from the top of a heap. Measured on one
// node loading millions of keys (docs/performance.md, "Millions of keys"): the
// cache held 96 MB and the memtables 48 MB while the C heaps held about
// 300 MB resident, spread over one arena per thread that ever allocated
// (glibc makes up to eight per core). Two calls bound that:
//
//   - LimitArenas caps the arenas: fewer heaps, each reused more.
//   - Release returns every whole free page in every arena to the system
//     (malloc_trim(0), which since glibc 2.8 releases pages inside the
//     heaps, not only at their top); the server calls it periodically.
//
// Without glibc (another libc, or a build without cgo, where Pebble
// allocates on the Go heap) both do nothing.
package cmem
