package consensus

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/kernel"
)

// TestProposalEnvelope: an effects entry and an old-format request entry
// read back as written, and an entry of another envelope version is
// refused with ErrEntryVersion (the replica stops on it), never decoded as
// if it were this version's.
func TestProposalEnvelope(t *testing.T) {
	ev := evaluated{prev: 5, nowMillis: 1234, client: 77, writes: []byte("effects")}
	data := encodeEffects(99, ev)
	if data[0] != entryVersion {
		t.Fatalf("envelope starts with %d, want version %d", data[0], entryVersion)
	}
	p, err := decodeProposal(data)
	if err != nil || p.id != 99 || p.effects == nil || p.effects.prev != 5 || p.effects.nowMillis != 1234 ||
		p.effects.client != 77 || string(p.effects.writes) != "effects" || p.effects.req != nil {
		t.Fatalf("decodeProposal = %+v, %v", p, err)
	}
	req := Request{Client: 7, Seq: 9, Op: OpCAS, Key: []byte("k"), Value: []byte("v"), Expect: []byte("old"), NowMillis: 1234, Rand: 42}
	ev.req = &req
	if p, err := decodeProposal(encodeEffects(99, ev)); err != nil || p.effects.req == nil || p.effects.req.Seq != 9 {
		t.Fatalf("with the request: %+v, %v", p, err)
	}

	old := encodeRequestProposal(98, req)
	p, err = decodeProposal(old)
	if err != nil || p.id != 98 || p.effects != nil || p.req.Client != 7 || p.req.Seq != 9 || p.req.Op != OpCAS ||
		!bytes.Equal(p.req.Key, req.Key) || !bytes.Equal(p.req.Value, req.Value) || !bytes.Equal(p.req.Expect, req.Expect) ||
		p.req.NowMillis != 1234 || p.req.Rand != 42 {
		t.Fatalf("decodeProposal(version 1) = %+v, %v", p, err)
	}

	newer := append([]byte{}, data...)
	newer[0] = entryMergeSummaries + 1
	if _, err := decodeProposal(newer); !errors.Is(err, ErrEntryVersion) {
		t.Fatalf("an entry of version %d: %v, want ErrEntryVersion", newer[0], err)
	}
	split := encodeSplit(97, splitTrigger{generation: 3, newID: 12, key: []byte("m")})
	if p, err := decodeProposal(split); err != nil || p.id != 97 || p.split == nil || p.split.generation != 3 || p.split.newID != 12 || string(p.split.key) != "m" {
		t.Fatalf("decodeProposal(split) = %+v, %v", p, err)
	}
	for _, short := range [][]byte{nil, {entryVersion}, data[:8], data[:30], append(append([]byte{}, data...), 0), split[:20], append(append([]byte{}, split...), 0)} {
		if _, err := decodeProposal(short); !errors.Is(err, errMalformed) {
			t.Fatalf("decodeProposal(%x) = %v, want errMalformed", short, err)
		}
	}
}

// TestResponseCarriesItsRange: a reply names the range that served it,
// and a reply of a server that does not (no range) still decodes.
func TestResponseCarriesItsRange(t *testing.T) {
	d := Descriptor{ID: 7, Generation: 3, Start: []byte("b"), End: []byte("m"), Replicas: []kernel.NodeID{1, 2}}
	r := Response{Value: []byte("v"), Found: true, Resume: []byte("c"), Range: d}
	got, err := decodeResponse(r.encode())
	if err != nil || !bytes.Equal(got.Value, r.Value) || !bytes.Equal(got.Resume, r.Resume) || got.Range.ID != 7 ||
		got.Range.Generation != 3 || !sameSpan(got.Range, d) || !slices.Equal(got.Range.Replicas, d.Replicas) {
		t.Fatalf("decodeResponse = %+v, %v", got, err)
	}
	got, err = decodeResponse(Response{Value: []byte("v"), Found: true}.encode())
	if err != nil || got.Range.ID != 0 || string(got.Value) != "v" {
		t.Fatalf("without a range: %+v, %v", got, err)
	}
}

// TestPinnedScanFieldsRoundTrip: a pinned scan's view travels in both
// directions, and goes only with a scan.
func TestPinnedScanFieldsRoundTrip(t *testing.T) {
	req := Request{Op: OpScan, Key: []byte("a"), Range: 4, Generation: 2, View: 9}
	got, err := decodeRequest(req.encode())
	if err != nil || got.View != 9 || got.Range != 4 || got.Generation != 2 {
		t.Fatalf("decodeRequest = %+v, %v", got, err)
	}
	if _, err := decodeRequest(Request{Op: OpGet, Key: []byte("a"), View: 9}.encode()); err == nil {
		t.Fatal("a get with a view decoded")
	}
	r := Response{Resume: []byte("c"), View: 5, Range: Descriptor{ID: 7, Start: []byte("b")}}
	gotR, err := decodeResponse(r.encode())
	if err != nil || gotR.View != 5 || gotR.Range.ID != 7 || string(gotR.Resume) != "c" {
		t.Fatalf("decodeResponse = %+v, %v", gotR, err)
	}
}

// TestRangeChangingKinds: every entry that decodes to a split, a freeze or
// a merge is one the lease view is withdrawn ahead of (changesRange), and
// no other is.
func TestRangeChangingKinds(t *testing.T) {
	m := &mergeTrigger{right: Descriptor{ID: 2, Generation: 1, Start: []byte("m")}}
	withSummaries := *m
	withSummaries.summaries = []keyspaceSummary{{keyspace: "txn", summary: []byte("s")}}
	for _, enc := range [][]byte{
		encodeSplit(1, splitTrigger{generation: 1, newID: 2, key: []byte("m")}),
		encodeSplit(1, splitTrigger{generation: 1, newID: 2, key: []byte("m"), sticky: true}),
		encodeFreeze(1, 1),
		encodeMerge(1, m),
		encodeMerge(1, &withSummaries),
		encodeHandover(handover{summaries: withSummaries.summaries}),
		encodeHandover(handover{}),
		encodeEffects(1, evaluated{writes: []byte{}}),
	} {
		p, err := decodeProposal(enc)
		if err != nil {
			t.Fatalf("kind %d: %v", enc[0], err)
		}
		if changes := p.split != nil || p.freeze != nil || p.merge != nil; changes != changesRange(enc[0]) {
			t.Errorf("kind %d changes its range: %v; changesRange says %v", enc[0], changes, changesRange(enc[0]))
		}
	}
}

// TestRequestEncodedLen: encodedLen, which Client.Do checks against
// MaxProposalBytes and encode sizes its buffer by, is the encoding's
// length.
func TestRequestEncodedLen(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		bytesOf := func(label string) []byte {
			n := rapid.SampledFrom([]int{0, 1, 127, 128, 300, 16384, 20000}).Draw(rt, label)
			return make([]byte, n)
		}
		r := Request{Client: rapid.Uint64().Draw(rt, "client"), Seq: rapid.Uint64().Draw(rt, "seq"), Op: OpPut,
			Key: bytesOf("key"), Value: bytesOf("value"), Expect: bytesOf("expect"),
			Limit: rapid.IntRange(-1, MaxScanLimit).Draw(rt, "limit"), View: rapid.Uint64Range(0, 3).Draw(rt, "view")}
		if rapid.Bool().Draw(rt, "hasEnd") {
			r.End = bytesOf("end")
		}
		if got, want := r.encodedLen(), len(r.encode()); got != want {
			rt.Fatalf("encodedLen %d, encoding %d bytes", got, want)
		}
	})
}
