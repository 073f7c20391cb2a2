package consensus

import (
	"bytes"
	"errors"
	"testing"
)

// TestProposalEnvelope: a proposal reads back as written, and an entry of
// another envelope version is refused with ErrEntryVersion (the replica
// stops on it), never decoded as if it were this version's.
func TestProposalEnvelope(t *testing.T) {
	req := Request{Client: 7, Seq: 9, Op: OpCAS, Key: []byte("k"), Value: []byte("v"), Expect: []byte("old"), NowMillis: 1234, Rand: 42}
	data := encodeProposal(99, req)
	if data[0] != entryVersion {
		t.Fatalf("envelope starts with %d, want version %d", data[0], entryVersion)
	}
	id, got, err := decodeProposal(data)
	if err != nil || id != 99 || got.Client != 7 || got.Seq != 9 || got.Op != OpCAS ||
		!bytes.Equal(got.Key, req.Key) || !bytes.Equal(got.Value, req.Value) || !bytes.Equal(got.Expect, req.Expect) ||
		got.NowMillis != 1234 || got.Rand != 42 {
		t.Fatalf("decodeProposal = %d, %+v, %v", id, got, err)
	}

	newer := append([]byte{}, data...)
	newer[0] = entryVersion + 1
	if _, _, err := decodeProposal(newer); !errors.Is(err, ErrEntryVersion) {
		t.Fatalf("an entry of version %d: %v, want ErrEntryVersion", newer[0], err)
	}
	for _, short := range [][]byte{nil, {entryVersion}, data[:8]} {
		if _, _, err := decodeProposal(short); !errors.Is(err, errMalformed) {
			t.Fatalf("decodeProposal(%x) = %v, want errMalformed", short, err)
		}
	}
}
