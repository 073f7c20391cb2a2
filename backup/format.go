package backup

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The record framing shared by data files and the streams between a node
// and orbit backup: one tag byte, then length-prefixed fields (uvarint
// lengths).
//
//	'H' header:   one field, JSON (streams only)
//	'P' pair:     key, value
//	'D' deletion: key (incremental backups only)
//	'R' Redis:    key, value (a record of the Redis keyspace, redis.go)
//	'E' end:      one field, the uvarint count of entries (pairs and
//	              deletions) before it
//	'X' failed:   one field, why (streams only: the sender gave up)
//
// A stream or file without its 'E', or whose count differs, is
// truncated, and refused.
const (
	tagHeader = 'H'
	tagPair   = 'P'
	tagDelete = 'D'
	tagRedis  = 'R'
	tagEnd    = 'E'
	tagFailed = 'X'
)

// Entry is a key's value, or its deletion (an incremental backup's), in
// the transactional keyspace; or, with Redis, a record of the Redis
// keyspace (its raw key and value).
type Entry struct {
	Key, Value []byte
	Deleted    bool
	Redis      bool
}

// maxField bounds a field a reader accepts: a corrupt length must not
// make it allocate gigabytes. The transactional keyspace's values are far
// smaller (a transaction's whole write set is bounded well below this).
const maxField = 64 << 20

// ErrCorrupt: a backup file or stream that does not read back as written
// (truncated, a checksum that does not match, bytes that do not decode).
var ErrCorrupt = errors.New("backup: corrupt or incomplete")

// Encoder writes records.
type Encoder struct {
	w       *bufio.Writer
	entries uint64
	buf     []byte
}

// NewEncoder writes records to w; Flush (or End) pushes them out.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: bufio.NewWriterSize(w, 64<<10)} }

func (e *Encoder) record(tag byte, fields ...[]byte) error {
	e.buf = append(e.buf[:0], tag)
	for _, f := range fields {
		e.buf = binary.AppendUvarint(e.buf, uint64(len(f)))
		e.buf = append(e.buf, f...)
	}
	_, err := e.w.Write(e.buf)
	return err
}

// Header writes a header record.
func (e *Encoder) Header(json []byte) error { return e.record(tagHeader, json) }

// Pair writes one key and its value.
func (e *Encoder) Pair(key, value []byte) error {
	e.entries++
	return e.record(tagPair, key, value)
}

// Add writes an entry: a pair, or a deletion.
func (e *Encoder) Add(en Entry) error {
	switch {
	case en.Deleted && en.Redis:
		return errors.New("backup: a deletion in the Redis keyspace (it keeps no history)")
	case en.Deleted:
		e.entries++
		return e.record(tagDelete, en.Key)
	case en.Redis:
		e.entries++
		return e.record(tagRedis, en.Key, en.Value)
	}
	return e.Pair(en.Key, en.Value)
}

// End writes the end record (the entries' count) and flushes.
func (e *Encoder) End() error {
	if err := e.record(tagEnd, binary.AppendUvarint(nil, e.entries)); err != nil {
		return err
	}
	return e.w.Flush()
}

// Fail writes why the sender gave up, and flushes.
func (e *Encoder) Fail(why string) error {
	if err := e.record(tagFailed, []byte(why)); err != nil {
		return err
	}
	return e.w.Flush()
}

// Flush pushes out what is buffered.
func (e *Encoder) Flush() error { return e.w.Flush() }

// Entries is the number of entries written so far.
func (e *Encoder) Entries() uint64 { return e.entries }

// Decoder reads records.
type Decoder struct {
	r       *bufio.Reader
	entries uint64
	ended   bool
}

// NewDecoder reads records from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: bufio.NewReaderSize(r, 64<<10)} }

// FailedError is a stream whose sender gave up (an 'X' record).
type FailedError struct{ Why string }

func (e *FailedError) Error() string { return "backup: the sender failed: " + e.Why }

func (d *Decoder) field() ([]byte, error) {
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		return nil, truncated(err)
	}
	if n > maxField {
		return nil, fmt.Errorf("%w: a field of %d bytes", ErrCorrupt, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		return nil, truncated(err)
	}
	return b, nil
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: cut short", ErrCorrupt)
	}
	return err
}

// Header reads the header record a stream starts with.
func (d *Decoder) Header() ([]byte, error) {
	tag, err := d.r.ReadByte()
	if err != nil {
		return nil, truncated(err)
	}
	if tag == tagFailed {
		why, err := d.field()
		if err != nil {
			return nil, err
		}
		return nil, &FailedError{Why: string(why)}
	}
	if tag != tagHeader {
		return nil, fmt.Errorf("%w: no header (tag %q)", ErrCorrupt, tag)
	}
	return d.field()
}

// Next reads the next entry; ok is false at the end record, once the
// count it carries has been checked against the entries read.
func (d *Decoder) Next() (en Entry, ok bool, err error) {
	if d.ended {
		return en, false, nil
	}
	tag, err := d.r.ReadByte()
	if err != nil {
		return en, false, truncated(err)
	}
	switch tag {
	case tagPair, tagRedis:
		en.Redis = tag == tagRedis
		if en.Key, err = d.field(); err != nil {
			return en, false, err
		}
		if en.Value, err = d.field(); err != nil {
			return en, false, err
		}
		d.entries++
		return en, true, nil
	case tagDelete:
		if en.Key, err = d.field(); err != nil {
			return en, false, err
		}
		en.Deleted = true
		d.entries++
		return en, true, nil
	case tagEnd:
		b, err := d.field()
		if err != nil {
			return en, false, err
		}
		n, used := binary.Uvarint(b)
		if used <= 0 || used != len(b) || n != d.entries {
			return en, false, fmt.Errorf("%w: the end says %d entries, %d were read", ErrCorrupt, n, d.entries)
		}
		d.ended = true
		return en, false, nil
	case tagFailed:
		why, err := d.field()
		if err != nil {
			return en, false, err
		}
		return en, false, &FailedError{Why: string(why)}
	}
	return en, false, fmt.Errorf("%w: unknown record tag %q", ErrCorrupt, tag)
}

// Entries is the number of entries read so far.
func (d *Decoder) Entries() uint64 { return d.entries }
