// Package backup takes consistent backups of the transactional keyspace
// (SQL tables and indexes, actor state, the Go API's keys, Redis ACL
// users and functions) and restores them (docs/backup.md).
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
	Pairs     uint64        `json:"pairs"`
	Bytes     uint64        `json:"bytes"` // keys and values
	Files     []File        `json:"files"`
}

// File is one data file of a backup.
type File struct {
	Name   string `json:"name"`
	Pairs  uint64 `json:"pairs"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ExportOptions shape an export's reads.
type ExportOptions struct {
	// Page is how many pairs one scan asks for (default DefaultPage);
	// the simulator takes small pages, so that an export's scans cross
	// ranges and interleave with transactions.
	Page int
}

// Export writes every live pair of the transactional keyspace as of asOf
// to enc, in key order, and returns how many it wrote. Every page is
// read by the same transaction at asOf, so the export is one snapshot.
// asOf must not be ahead of the node's clock; one below the
// garbage-collection threshold is refused (txn.ErrRetry, saying so).
func Export(ctx context.Context, db *txn.DB, asOf hlc.Timestamp, enc *Encoder, opts ExportOptions) (uint64, error) {
	if opts.Page <= 0 {
		opts.Page = DefaultPage
	}
	if now := db.Now(); now.Less(asOf) {
		return 0, fmt.Errorf("backup: as of %v is in the future (now %v)", asOf, now)
	}
	tx := db.BeginAt(asOf)
	defer func() { tx.Rollback(ctx) }()
	var pairs uint64
	var from []byte
	for {
		kvs, err := tx.Scan(ctx, from, nil, opts.Page)
		if err != nil {
			return pairs, fmt.Errorf("backup: reading as of %v: %w", asOf, err)
		}
		for _, kv := range kvs {
			if err := enc.Pair(kv.Key, kv.Value); err != nil {
				return pairs, err
			}
			pairs++
		}
		if len(kvs) < opts.Page {
			return pairs, nil
		}
		from = append(slices.Clone(kvs[len(kvs)-1].Key), 0)
		if mutation.On(MutPagesApart) {
			tx.Rollback(ctx)
			tx = db.BeginAt(db.Now())
		}
	}
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
	// 512 KiB and 500).
	BatchBytes int
	BatchPairs int
}

func (o *ImportOptions) ensureDefaults() {
	if o.BatchBytes <= 0 {
		o.BatchBytes = 512 << 10
	}
	if o.BatchPairs <= 0 {
		o.BatchPairs = 500
	}
}

// Import writes the pairs dec reads into the keyspace, a batch per
// transaction, until the end record (checked against the pairs read), and
// returns how many it wrote. Writing a pair twice writes the same value:
// a restore cut short can be run again. The pairs take new timestamps
// (the restore's): the restored keyspace's history starts at the restore.
func Import(ctx context.Context, db *txn.DB, dec *Decoder, opts ImportOptions) (uint64, error) {
	opts.ensureDefaults()
	var written uint64
	var batch [][2][]byte
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := db.Txn(ctx, func(tx *txn.Tx) error {
			for _, kv := range batch {
				if err := tx.Put(ctx, kv[0], kv[1]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("backup: writing %d pairs from %q: %w", len(batch), batch[0][0], err)
		}
		written += uint64(len(batch))
		batch, size = batch[:0], 0
		return nil
	}
	var last []byte
	for {
		k, v, ok, err := dec.Next()
		if err != nil {
			return written, err
		}
		if !ok {
			return written, flush()
		}
		if last != nil && bytes.Compare(k, last) <= 0 {
			return written, fmt.Errorf("%w: key %q after %q (out of order)", ErrCorrupt, k, last)
		}
		last = k
		batch = append(batch, [2][]byte{k, v})
		size += len(k) + len(v)
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
