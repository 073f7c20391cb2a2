package storage

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Options configure an Engine. The zero value is usable: Open fills every
// zero field with its default (EnsureDefaults).
//
// String and Parse round-trip the scalar fields, so that a failing simulator
// run can print the exact configuration it used. Logger and
// OnBackgroundFatal are not part of that text.
type Options struct {
	// Logger receives Pebble's informational and error messages, and the
	// engine's own.
	//
	// The default is slog.Default().
	Logger *slog.Logger

	// Deterministic leaves Pebble no background work of its own timing:
	// what the engine does to the disk is fixed by the calls made to it.
	// The simulator sets it, because Pebble's goroutines run outside
	// virtual time and their timing must never change a result.
	//
	// With it, automatic compactions and table statistics are off, and
	// Pebble never flushes a memtable on its own: a Batch.Commit that
	// brings the data written since the last flush to a quarter of the
	// smallest memtable Pebble makes (256 KB, or MemTableBytes if smaller;
	// Pebble's memtables start there and grow) flushes before it returns,
	// and every eighth such flush compacts the keyspace, so that level 0
	// stays small. Flush and Compact wait for the work they start, and a
	// fatal error on Pebble's goroutine meanwhile crashes the caller.
	// Callers may Flush and Compact at moments of their choosing too.
	//
	// The default is false (Pebble schedules its own flushes and
	// compactions, as a server wants).
	Deterministic bool

	// MemTableBytes is the size of a memtable; a full one is flushed to an
	// sstable in the background.
	//
	// The default is 4 MiB. It must be at least 64 KiB and less than 4 GiB.
	MemTableBytes uint64

	// BlockCacheBytes is the capacity of Pebble's block cache.
	//
	// The default is 8 MiB. It must not be negative.
	BlockCacheBytes int64

	// EntryCacheBytes bounds, per LogStore, the Raft entries kept in memory
	// (measured as raftpb.Entry.Size()). Recent entries are what Raft reads
	// most: to send them to followers and to apply them.
	//
	// The default is 1 MiB. A negative value turns the cache off.
	EntryCacheBytes int64

	// OnBackgroundFatal, if set, is called when Pebble reports a fatal
	// error (Logger.Fatalf) on one of its own goroutines (a flush or
	// compaction whose MANIFEST write failed, say) rather than inside a call
	// made through this package. Nobody can recover a panic on such a
	// goroutine, so the default is to panic with kernel.NodeCrash there,
	// which ends the process: the production behaviour. A simulator may
	// instead crash the node and park the goroutine forever; if
	// OnBackgroundFatal returns, the panic happens anyway. Either way the
	// engine is poisoned: every later call panics with kernel.NodeCrash.
	//
	// The default is nil.
	OnBackgroundFatal func(reason error)
}

// Defaults, as EnsureDefaults applies them.
const (
	DefaultMemTableBytes   = 4 << 20
	DefaultBlockCacheBytes = 8 << 20
	DefaultEntryCacheBytes = 1 << 20

	minMemTableBytes = 64 << 10
	maxMemTableBytes = 4 << 30
)

// ErrInvalidOptions wraps every problem Validate or Parse reports.
var ErrInvalidOptions = errors.New("storage: invalid options")

// EnsureDefaults fills every zero field with its default and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = DefaultMemTableBytes
	}
	if o.BlockCacheBytes == 0 {
		o.BlockCacheBytes = DefaultBlockCacheBytes
	}
	if o.EntryCacheBytes == 0 {
		o.EntryCacheBytes = DefaultEntryCacheBytes
	}
	return o
}

// Validate reports every problem with o at once, each wrapping
// ErrInvalidOptions. Call it after EnsureDefaults.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.Logger == nil {
		bad("Logger is nil")
	}
	if o.MemTableBytes < minMemTableBytes || o.MemTableBytes >= maxMemTableBytes {
		bad("MemTableBytes %d must be in [%d, %d)", o.MemTableBytes, minMemTableBytes, maxMemTableBytes)
	}
	if o.BlockCacheBytes < 0 {
		bad("BlockCacheBytes %d is negative", o.BlockCacheBytes)
	}
	return errors.Join(errs...)
}

// String renders the scalar fields, one "name=value" per line under an
// [Options] header, in the order Parse reads them.
func (o *Options) String() string {
	var b strings.Builder
	b.WriteString("[Options]\n")
	fmt.Fprintf(&b, "  deterministic=%t\n", o.Deterministic)
	fmt.Fprintf(&b, "  mem_table_bytes=%d\n", o.MemTableBytes)
	fmt.Fprintf(&b, "  block_cache_bytes=%d\n", o.BlockCacheBytes)
	fmt.Fprintf(&b, "  entry_cache_bytes=%d\n", o.EntryCacheBytes)
	return b.String()
}

// Parse sets the fields named in s, which has the form String produces.
// Unknown names and malformed values are errors wrapping ErrInvalidOptions;
// fields s does not name keep their value.
func (o *Options) Parse(s string) error {
	sc := bufio.NewScanner(strings.NewReader(s))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text == "[Options]" || strings.HasPrefix(text, "#") {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		if !ok {
			return fmt.Errorf("%w: line %d: %q is not name=value", ErrInvalidOptions, line, text)
		}
		var err error
		switch name {
		case "deterministic":
			o.Deterministic, err = strconv.ParseBool(value)
		case "mem_table_bytes":
			o.MemTableBytes, err = strconv.ParseUint(value, 10, 64)
		case "block_cache_bytes":
			o.BlockCacheBytes, err = strconv.ParseInt(value, 10, 64)
		case "entry_cache_bytes":
			o.EntryCacheBytes, err = strconv.ParseInt(value, 10, 64)
		default:
			return fmt.Errorf("%w: line %d: unknown option %q", ErrInvalidOptions, line, name)
		}
		if err != nil {
			return fmt.Errorf("%w: line %d: %s: %v", ErrInvalidOptions, line, name, err)
		}
	}
	return sc.Err()
}
