package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/kernel/hlc"
)

// A backup: data files (data-000001.obk, ...), each the magic line then
// 'P' records and an 'E' record, and MANIFEST.json, written last: a
// location without a manifest holds a backup that did not finish, and is
// refused.
const (
	ManifestName = "MANIFEST.json"
	fileMagic    = "ORBIT-BACKUP 1\n"
	// fileLimit is roughly where a data file ends and the next begins.
	fileLimit = 32 << 20
)

// Writer writes a backup to a location.
type Writer struct {
	ctx  context.Context
	loc  Location
	m    Manifest
	f    io.WriteCloser
	h    hash.Hash
	size int64
	enc  *Encoder
}

// countingHash writes to the file, the hash and the size together.
type countingHash struct{ w *Writer }

func (c countingHash) Write(p []byte) (int, error) {
	n, err := c.w.f.Write(p)
	c.w.h.Write(p[:n])
	c.w.size += int64(n)
	return n, err
}

// NewWriter starts a backup at loc, which must hold nothing yet.
func NewWriter(ctx context.Context, loc Location) (*Writer, error) {
	names, err := loc.Names(ctx)
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		return nil, fmt.Errorf("backup: %s is not empty (a backup goes into a location of its own)", loc)
	}
	return &Writer{ctx: ctx, loc: loc}, nil
}

// Describe sets what the backup holds (cluster, timestamp), once known.
func (w *Writer) Describe(m Manifest) {
	m.Files, m.Entries, m.Bytes, m.RedisEntries = w.m.Files, w.m.Entries, w.m.Bytes, w.m.RedisEntries
	w.m = m
}

func (w *Writer) open() error {
	name := fmt.Sprintf("data-%06d.obk", len(w.m.Files)+1)
	f, err := w.loc.Create(w.ctx, name)
	if err != nil {
		return err
	}
	w.f, w.h, w.size = f, sha256.New(), 0
	w.m.Files = append(w.m.Files, File{Name: name})
	w.enc = NewEncoder(countingHash{w})
	_, err = io.WriteString(w.enc.w, fileMagic)
	return err
}

// closeFile ends the open data file.
func (w *Writer) closeFile() error {
	if w.f == nil {
		return nil
	}
	err := w.enc.End()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		return err
	}
	last := &w.m.Files[len(w.m.Files)-1]
	last.Entries, last.Size, last.SHA256 = w.enc.Entries(), w.size, hex.EncodeToString(w.h.Sum(nil))
	return nil
}

// Add adds one entry.
func (w *Writer) Add(en Entry) error {
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	if err := w.enc.Add(en); err != nil {
		return err
	}
	w.m.Entries++
	w.m.Bytes += uint64(len(en.Key) + len(en.Value))
	if en.Redis {
		w.m.RedisEntries++
	}
	if w.size+int64(w.enc.w.Buffered()) >= fileLimit {
		return w.closeFile()
	}
	return nil
}

// Close ends the last data file and writes the manifest; the backup is
// whole once it returns nil.
func (w *Writer) Close() (Manifest, error) {
	if err := w.closeFile(); err != nil {
		return w.m, err
	}
	if w.m.Files == nil {
		w.m.Files = []File{} // an empty keyspace: a manifest and no files
	}
	b, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return w.m, err
	}
	f, err := w.loc.Create(w.ctx, ManifestName)
	if err != nil {
		return w.m, err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return w.m, err
	}
	return w.m, f.Close()
}

// Abort removes the data files written so far, so the location can take
// the next attempt; one it could not clean has no manifest, so Verify
// refuses it.
func (w *Writer) Abort() {
	if w.f != nil {
		// Both kinds of file can be given up without appearing.
		_ = w.f.(interface{ CloseWithError(error) error }).CloseWithError(errors.New("backup: aborted"))
		w.f = nil
	}
	for _, f := range w.m.Files {
		_ = w.loc.Remove(context.WithoutCancel(w.ctx), f.Name)
	}
	w.m.Files = nil
}

// Verify reads loc's manifest and checks every data file against it
// (size, SHA-256, its records and their count) before anything is
// restored: a partial or corrupt backup is refused whole, with the file
// at fault named.
func Verify(ctx context.Context, loc Location) (Manifest, error) {
	var m Manifest
	r, err := loc.Open(ctx, ManifestName)
	if notFound(err) {
		return m, fmt.Errorf("%w: %s has no %s (the backup did not finish, or this is not a backup)", ErrCorrupt, loc, ManifestName)
	}
	if err != nil {
		return m, err
	}
	b, err := io.ReadAll(io.LimitReader(r, 16<<20))
	r.Close()
	if err != nil {
		return m, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrCorrupt, ManifestName, err)
	}
	if m.Format != FormatVersion {
		return m, fmt.Errorf("backup: %s is format %d; this orbit reads format %d", loc, m.Format, FormatVersion)
	}
	if m.Keyspace != KeyspaceTxn {
		return m, fmt.Errorf("backup: %s holds keyspace %q; this orbit restores %q", loc, m.Keyspace, KeyspaceTxn)
	}
	if m.Incremental() && !m.Since.Less(m.AsOf) {
		return m, fmt.Errorf("%w: an incremental backup as of %v since %v", ErrCorrupt, m.AsOf, m.Since)
	}
	var entries, redisEntries uint64
	for _, f := range m.Files {
		err := ReadFile(ctx, loc, f, func(en Entry) error {
			if en.Redis {
				redisEntries++
			}
			return nil
		})
		if err != nil {
			return m, err
		}
		entries += f.Entries
	}
	if entries != m.Entries || redisEntries != m.RedisEntries || (redisEntries > 0 && !m.Redis) {
		return m, fmt.Errorf("%w: the manifest says %d entries (%d of the Redis keyspace, which it holds: %v), its files hold %d (%d)",
			ErrCorrupt, m.Entries, m.RedisEntries, m.Redis, entries, redisEntries)
	}
	return m, nil
}

// ReadFile reads one data file, calling fn for each entry, and checks it
// against f: size, SHA-256, magic and entry count. fn may have been
// called before a corruption is found: Verify checks every file first.
func ReadFile(ctx context.Context, loc Location, f File, fn func(Entry) error) error {
	if !strings.HasPrefix(f.Name, "data-") || !strings.HasSuffix(f.Name, ".obk") || strings.ContainsAny(f.Name, `/\`) {
		return fmt.Errorf("%w: the manifest names file %q", ErrCorrupt, f.Name)
	}
	file, err := loc.Open(ctx, f.Name)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, f.Name, err)
	}
	defer file.Close()
	h := sha256.New()
	r := &hashingReader{r: file, h: h}
	magic := make([]byte, len(fileMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != fileMagic {
		return fmt.Errorf("%w: %s does not start as a backup file", ErrCorrupt, f.Name)
	}
	dec := NewDecoder(r)
	for {
		en, ok, err := dec.Next()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if !ok {
			break
		}
		if err := fn(en); err != nil {
			return err
		}
	}
	// The decoder reads ahead; what follows the end record must be nothing.
	if rest, _ := io.Copy(io.Discard, dec.r); rest > 0 {
		return fmt.Errorf("%w: %s has %d bytes after its end", ErrCorrupt, f.Name, rest)
	}
	switch {
	case dec.Entries() != f.Entries:
		return fmt.Errorf("%w: %s holds %d entries, the manifest says %d", ErrCorrupt, f.Name, dec.Entries(), f.Entries)
	case r.n != f.Size:
		return fmt.Errorf("%w: %s is %d bytes, the manifest says %d", ErrCorrupt, f.Name, r.n, f.Size)
	case hex.EncodeToString(h.Sum(nil)) != f.SHA256:
		return fmt.Errorf("%w: %s does not match its SHA-256 in the manifest", ErrCorrupt, f.Name)
	}
	return nil
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	return n, err
}

// WallTime is a timestamp's wall time in RFC 3339, as a manifest shows it.
func WallTime(ts hlc.Timestamp) string {
	return time.Unix(0, ts.WallNanos).UTC().Format(time.RFC3339Nano)
}
