// Package backup takes consistent backups of the transactional keyspace
// (SQL tables and indexes, actor state, the Go API's keys, Redis ACL
// users and functions) and of the Redis keyspace (redis.go), and restores
// them (docs/backup.md).
//
// A backup is every live pair of the keyspace as of one hybrid-logical
// timestamp, read by one read-only transaction at that timestamp
// (txn.DB.BeginAt): MVCC makes that a consistent snapshot across every
// range while the cluster takes writes, and any timestamp inside the
// garbage-collection window (txn.Options.GCTTL, 25 h) can be chosen, which
// is point-in-time restore over that window. A restore writes the pairs
// back through transactions into a cluster whose keyspace is empty.
//
// The package knows nothing of HTTP: orbit serve streams Export's records
// to orbit backup create, which writes them to a directory (DirWriter);
// orbit backup restore verifies a directory (OpenDir) and streams it to a
// node, which runs Import.
package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/txn"
)

// FormatVersion is the version of the manifest and data files this
// package writes; a backup of another version is refused.
const FormatVersion = 1

// KeyspaceTxn names the keyspace a backup holds.
const KeyspaceTxn = "txn"

// DefaultPage is how many pairs one scan of an export asks for.
const DefaultPage = 1000

// ErrNotEmpty: a restore into a cluster whose transactional keyspace
// holds data already.
var ErrNotEmpty = errors.New("backup: the cluster's transactional keyspace is not empty")

// Manifest describes a backup: what it holds and the files that hold it.
// It doubles as a stream's header (Files empty).
type Manifest struct {
	Format    int           `json:"format"`
	Keyspace  string        `json:"keyspace"`
	ClusterID string        `json:"cluster_id"`
	AsOf      hlc.Timestamp `json:"as_of"`
	AsOfTime  string        `json:"as_of_time"` // AsOf's wall time, RFC 3339, for people
	// Since is, for an incremental backup, the AsOf of the backup it
	// follows (it holds what changed in (Since, AsOf], deletions
	// included); zero for a full backup.
	Since   hlc.Timestamp `json:"since"`
	Entries uint64        `json:"entries"` // pairs and deletions
	Bytes   uint64        `json:"bytes"`   // keys and values
	// Redis says the backup holds the Redis keyspace too (redis.go),
	// read after AsOf; RedisEntries counts its records (among Entries).
	Redis        bool   `json:"redis"`
	RedisEntries uint64 `json:"redis_entries"`
	Files        []File `json:"files"`
}

// Incremental says whether m is an incremental backup.
func (m Manifest) Incremental() bool { return !m.Since.IsZero() }

// File is one data file of a backup.
type File struct {
	Name    string `json:"name"`
	Entries uint64 `json:"entries"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// ExportOptions shape an export's reads.
type ExportOptions struct {
	// Page is how many entries one scan asks for (default DefaultPage);
	// the simulator takes small pages, so that an export's scans cross
	// ranges and interleave with transactions.
	Page int
	// Since, if set, makes the export incremental: only the keys whose
	// newest version at or below asOf lies above Since, deletions
	// included. It must lie inside the garbage-collection window.
	Since hlc.Timestamp
}

// Export writes the transactional keyspace as of asOf to enc, in key
// order, and returns how many entries it wrote: every live pair, or with
// opts.Since what changed since. Every page is read by the same
// transaction at asOf, so the export is one snapshot. asOf must not be
// ahead of the node's clock; one below the garbage-collection threshold
// is refused (txn.ErrRetry, saying so).
func Export(ctx context.Context, db *txn.DB, asOf hlc.Timestamp, enc *Encoder, opts ExportOptions) (uint64, error) {
	if opts.Page <= 0 {
		opts.Page = DefaultPage
	}
	if now := db.Now(); now.Less(asOf) {
		return 0, fmt.Errorf("backup: as of %v is in the future (now %v)", asOf, now)
	}
	if !opts.Since.IsZero() && !opts.Since.Less(asOf) {
		return 0, fmt.Errorf("backup: an incremental backup as of %v must follow the one it builds on (as of %v)", asOf, opts.Since)
	}
	tx := db.BeginAt(asOf)
	defer func() { tx.Rollback(ctx) }()
	var entries uint64
	var from []byte
	for {
		page, err := readPage(ctx, tx, from, opts)
		if err != nil {
			return entries, fmt.Errorf("backup: reading as of %v: %w", asOf, err)
		}
		for _, en := range page {
			if err := enc.Add(en); err != nil {
				return entries, err
			}
			entries++
		}
		if len(page) < opts.Page {
			return entries, nil
		}
		from = append(slices.Clone(page[len(page)-1].Key), 0)
		if mutation.On(MutPagesApart) {
			tx.Rollback(ctx)
			tx = db.BeginAt(db.Now())
		}
	}
}

// readPage reads the page of an export that starts at from.
func readPage(ctx context.Context, tx *txn.Tx, from []byte, opts ExportOptions) ([]Entry, error) {
	if opts.Since.IsZero() {
		kvs, err := tx.Scan(ctx, from, nil, opts.Page)
		page := make([]Entry, len(kvs))
		for i, kv := range kvs {
			page[i] = Entry{Key: kv.Key, Value: kv.Value}
		}
		return page, err
	}
	changes, err := tx.Changes(ctx, from, nil, opts.Since, opts.Page)
	page := make([]Entry, len(changes))
	for i, c := range changes {
		page[i] = Entry{Key: c.Key, Value: c.Value, Deleted: c.Deleted}
	}
	return page, err
}

// Empty says whether the transactional keyspace holds no data; if not,
// it names the first key (for the error an operator reads).
func Empty(ctx context.Context, db *txn.DB) (bool, []byte, error) {
	var first []byte
	err := db.Txn(ctx, func(tx *txn.Tx) error {
		tx.SetReadOnly()
		kvs, err := tx.Scan(ctx, nil, nil, 1)
		if err != nil {
			return err
		}
		first = nil
		if len(kvs) > 0 {
			first = kvs[0].Key
		}
		return nil
	})
	return first == nil && err == nil, first, err
}

// ImportOptions bound the transactions a restore writes in.
type ImportOptions struct {
	// BatchBytes and BatchPairs bound one transaction's writes (defaults
	// 512 KiB and 500 entries).
	BatchBytes int
	BatchPairs int
	// Redis writes the Redis keyspace's records (nil: a backup holding
	// any is refused).
	Redis *RedisKeyspace
}

func (o *ImportOptions) ensureDefaults() {
	if o.BatchBytes <= 0 {
		o.BatchBytes = 512 << 10
	}
	if o.BatchPairs <= 0 {
		o.BatchPairs = 500
	}
}

// Import writes the entries dec reads into the keyspace (pairs put,
// deletions deleted), a batch per transaction, until the end record
// (checked against the entries read), and returns how many it wrote.
// Writing an entry twice has the effect of writing it once: a restore
// cut short can be run again. The pairs take new timestamps (the
// restore's): the restored keyspace's history starts at the restore.
func Import(ctx context.Context, db *txn.DB, dec *Decoder, opts ImportOptions) (uint64, error) {
	opts.ensureDefaults()
	var written uint64
	var batch []Entry
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := db.Txn(ctx, func(tx *txn.Tx) error {
			for _, en := range batch {
				var err error
				if en.Deleted {
					err = tx.Delete(ctx, en.Key)
				} else {
					err = tx.Put(ctx, en.Key, en.Value)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("backup: writing %d entries from %q: %w", len(batch), batch[0].Key, err)
		}
		written += uint64(len(batch))
		batch, size = batch[:0], 0
		return nil
	}
	var redisOut *redisWriter
	if opts.Redis != nil {
		redisOut = &redisWriter{rk: *opts.Redis}
	}
	var last []byte
	for {
		en, ok, err := dec.Next()
		if err != nil {
			return written, err
		}
		if !ok {
			if err := flush(); err != nil || redisOut == nil {
				return written, err
			}
			n := uint64(len(redisOut.batch))
			if err := redisOut.flush(ctx); err != nil {
				return written, err
			}
			return written + n, nil
		}
		if en.Redis {
			if redisOut == nil {
				return written, errors.New("backup: the backup holds the Redis keyspace, and this node has none to restore it into")
			}
			n := uint64(len(redisOut.batch)) + 1
			if err := redisOut.add(ctx, redis.KV{Key: en.Key, Value: en.Value}); err != nil {
				return written, err
			}
			if len(redisOut.batch) == 0 {
				written += n
			}
			continue
		}
		if last != nil && bytes.Compare(en.Key, last) <= 0 {
			return written, fmt.Errorf("%w: key %q after %q (out of order)", ErrCorrupt, en.Key, last)
		}
		last = en.Key
		batch = append(batch, en)
		size += len(en.Key) + len(en.Value)
		if size >= opts.BatchBytes || len(batch) >= opts.BatchPairs {
			if err := flush(); err != nil {
				return written, err
			}
		}
	}
}

// ParseAsOf reads a backup's --as-of against the node's now: "" is now;
// a duration ("-90m", "-1h30m") is now moved by it (not ahead); a time in
// RFC 3339 is that wall time; "SECONDS.NANOS,LOGICAL" (hlc.Timestamp's
// String, as a manifest's as_of prints) is that exact timestamp.
func ParseAsOf(s string, now hlc.Timestamp) (hlc.Timestamp, error) {
	if s == "" {
		return now, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d > 0 {
			return hlc.Timestamp{}, fmt.Errorf("backup: as of %s is in the future", s)
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return hlc.Timestamp{WallNanos: t.UnixNano()}, nil
	}
	var sec, nanos int64
	var logical int32
	if n, err := fmt.Sscanf(s, "%d.%d,%d", &sec, &nanos, &logical); err == nil && n == 3 && nanos >= 0 && nanos < 1e9 && logical >= 0 {
		ts := hlc.Timestamp{WallNanos: sec*1e9 + nanos, Logical: logical}
		if ts.String() == s {
			return ts, nil
		}
	}
	return hlc.Timestamp{}, fmt.Errorf("backup: as of %q: want a duration back from now (-1h), an RFC 3339 time, or a timestamp as a manifest prints it (1733396400.000000000,0)", s)
}
