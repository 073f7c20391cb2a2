package txn

import (
	"github.com/orbitkernel/orbit/internal/codec"
	"github.com/orbitkernel/orbit/kernel/hlc"
)

// errMalformed marks a command or reply that does not decode.
var errMalformed = codec.ErrMalformed

// encoder and decoder are the shared field encoding (internal/codec) with
// hybrid-logical timestamps.
type encoder struct{ codec.Encoder }

func (e *encoder) ts(t hlc.Timestamp) { e.B = t.AppendEncoded(e.B) }

type decoder struct{ codec.Decoder }

func newDecoder(b []byte) decoder { return decoder{codec.Decoder{B: b}} }

func (d *decoder) ts() hlc.Timestamp {
	b := d.Next(hlc.EncodedLen)
	if d.Err != nil {
		return hlc.Timestamp{}
	}
	t, err := hlc.Decode(b)
	if err != nil {
		d.Fail()
		return hlc.Timestamp{}
	}
	return t
}
