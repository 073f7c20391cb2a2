// Package codec is the field-by-field binary encoding that replicated
// records and messages share (txn's commands and records, kernel/actor's
// records and calls): unsigned and signed varints, bytes, length-prefixed
// fields and lists. An Encoder appends fields in order; a Decoder reads
// them back in the same order and remembers its first failure, so a
// decode is a straight run of reads and one check at the end (Done).
//
// The encoding carries no field tags or versions: each user leads its
// encodings with a version of its own and refuses one it does not know.
package codec

import (
	"encoding/binary"
	"errors"
)

// ErrMalformed: the bytes do not decode as what the reader expects.
var ErrMalformed = errors.New("malformed encoding")

// Encoder appends fields to B.
type Encoder struct{ B []byte }

func (e *Encoder) U64(v uint64)   { e.B = binary.AppendUvarint(e.B, v) }
func (e *Encoder) I64(v int64)    { e.B = binary.AppendVarint(e.B, v) }
func (e *Encoder) Byte(v byte)    { e.B = append(e.B, v) }
func (e *Encoder) Raw(v []byte)   { e.B = append(e.B, v...) }
func (e *Encoder) Bytes(v []byte) { e.U64(uint64(len(v))); e.B = append(e.B, v...) }
func (e *Encoder) Str(v string)   { e.U64(uint64(len(v))); e.B = append(e.B, v...) }

// List writes a count, then each item as Bytes.
func (e *Encoder) List(vs [][]byte) {
	e.U64(uint64(len(vs)))
	for _, v := range vs {
		e.Bytes(v)
	}
}

func (e *Encoder) Bool(v bool) {
	if v {
		e.Byte(1)
	} else {
		e.Byte(0)
	}
}

// Decoder reads fields from B; Err is its first failure.
type Decoder struct {
	B   []byte
	Err error
}

// Fail marks the decode malformed and stops it.
func (d *Decoder) Fail() {
	if d.Err == nil {
		d.Err = ErrMalformed
	}
	d.B = nil
}

func (d *Decoder) U64() uint64 {
	v, w := binary.Uvarint(d.B)
	if w <= 0 {
		d.Fail()
		return 0
	}
	d.B = d.B[w:]
	return v
}

func (d *Decoder) I64() int64 {
	v, w := binary.Varint(d.B)
	if w <= 0 {
		d.Fail()
		return 0
	}
	d.B = d.B[w:]
	return v
}

func (d *Decoder) Byte() byte {
	if len(d.B) < 1 {
		d.Fail()
		return 0
	}
	v := d.B[0]
	d.B = d.B[1:]
	return v
}

func (d *Decoder) Bool() bool { return d.Byte() == 1 }

// Bytes reads a length-prefixed field (a copy); nil stays distinct from
// empty only where the caller encodes it so (optional fields carry a flag).
func (d *Decoder) Bytes() []byte {
	n := d.U64()
	if d.Err != nil || uint64(len(d.B)) < n {
		d.Fail()
		return nil
	}
	v := append([]byte{}, d.B[:n]...)
	d.B = d.B[n:]
	return v
}

func (d *Decoder) Str() string { return string(d.Bytes()) }

// List reads what Encoder.List wrote, refusing more than max items.
func (d *Decoder) List(max uint64) [][]byte {
	n := d.U64()
	if n > max {
		d.Fail()
	}
	var vs [][]byte
	for i := uint64(0); i < n && d.Err == nil; i++ {
		vs = append(vs, d.Bytes())
	}
	return vs
}

// Next returns the next n bytes (not a copy), or fails.
func (d *Decoder) Next(n int) []byte {
	if len(d.B) < n {
		d.Fail()
		return nil
	}
	v := d.B[:n]
	d.B = d.B[n:]
	return v
}

// Rest reads every byte left (a copy, empty rather than nil).
func (d *Decoder) Rest() []byte {
	v := append([]byte{}, d.B...)
	d.B = nil
	return v
}

// Done reports the first failure, or trailing bytes as one.
func (d *Decoder) Done() error {
	if d.Err == nil && len(d.B) != 0 {
		d.Err = ErrMalformed
	}
	return d.Err
}
