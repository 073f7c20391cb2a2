package txn

import (
	"encoding/binary"
	"errors"

	"github.com/orbitkernel/orbit/kernel/hlc"
)

// errMalformed marks a command or reply that does not decode.
var errMalformed = errors.New("txn: malformed message")

// encoder appends fields in order; decoder reads them back in the same
// order, remembering the first error (so a decode is a straight run of
// reads and one check at the end).
type encoder struct{ b []byte }

func (e *encoder) u64(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) byte(v byte)    { e.b = append(e.b, v) }
func (e *encoder) bytes(v []byte) { e.u64(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) ts(t hlc.Timestamp) {
	e.b = t.AppendEncoded(e.b)
}
func (e *encoder) list(vs [][]byte) {
	e.u64(uint64(len(vs)))
	for _, v := range vs {
		e.bytes(v)
	}
}
func (e *encoder) bool(v bool) {
	if v {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errMalformed
	}
	d.b = nil
}

func (d *decoder) u64() uint64 {
	v, w := binary.Uvarint(d.b)
	if w <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[w:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bool() bool { return d.byte() == 1 }

// bytes reads a length-prefixed field; nil stays distinct from empty only
// where the caller encodes it so (optional fields carry a flag).
func (d *decoder) bytes() []byte {
	n := d.u64()
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	v := append([]byte{}, d.b[:n]...)
	d.b = d.b[n:]
	return v
}

// list reads what encoder.list wrote, refusing more than max items.
func (d *decoder) list(max uint64) [][]byte {
	n := d.u64()
	if n > max {
		d.fail()
	}
	var vs [][]byte
	for i := uint64(0); i < n && d.err == nil; i++ {
		vs = append(vs, d.bytes())
	}
	return vs
}

func (d *decoder) ts() hlc.Timestamp {
	if len(d.b) < hlc.EncodedLen {
		d.fail()
		return hlc.Timestamp{}
	}
	t, err := hlc.Decode(d.b[:hlc.EncodedLen])
	if err != nil {
		d.fail()
		return hlc.Timestamp{}
	}
	d.b = d.b[hlc.EncodedLen:]
	return t
}

// done reports the first error, or trailing bytes as one.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errMalformed
	}
	return d.err
}
