package grpcnet

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	msgs := []outMsg{
		{port: "raft", body: []byte("hello")},
		{port: "", body: nil},
		{port: "p", body: bytes.Repeat([]byte{7}, 300)}, // two-byte length varint
	}
	size := 0
	for _, m := range msgs {
		size += encodedSize(m)
	}
	b := encodeBatch(msgs, size)
	if want := 3 + size; len(b) != want {
		t.Fatalf("batch of %d bytes, want %d", len(b), want)
	}
	got, err := decodeBatch(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("decoded %d messages, want %d", len(got), len(msgs))
	}
	for i, m := range got {
		if string(m.port) != msgs[i].port || !bytes.Equal(m.body, msgs[i].body) {
			t.Errorf("message %d: %q %q, want %q %q", i, m.port, m.body, msgs[i].port, msgs[i].body)
		}
		if cap(m.body) != len(m.body) {
			t.Errorf("message %d: body capacity %d reaches past its length %d", i, cap(m.body), len(m.body))
		}
	}
}

func TestHelloRoundTrip(t *testing.T) {
	h := hello{cluster: 0xdeadbeef, from: 3, to: 9}
	got, err := decodeHello(encodeHello(h))
	if err != nil || got != h {
		t.Fatalf("hello: %+v, %v; want %+v", got, err, h)
	}
	if err := decodeWelcome(encodeWelcome()); err != nil {
		t.Fatal(err)
	}
	future := encodeHello(h)
	future[0] = frameVersion + 1
	if _, err := decodeHello(future); !errors.Is(err, errVersion) {
		t.Errorf("hello of version %d: %v, want errVersion", future[0], err)
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	good := encodeBatch([]outMsg{{port: "a", body: []byte("bc")}}, 5)
	cases := map[string][]byte{
		"empty":           {},
		"header only":     {frameVersion, kindBatch},
		"wrong kind":      {frameVersion, kindHello, 0},
		"count too big":   {frameVersion, kindBatch, 5, 0, 0},
		"truncated":       good[:len(good)-1],
		"trailing bytes":  append(append([]byte{}, good...), 0),
		"length past end": {frameVersion, kindBatch, 1, 0, 9, 'x'},
	}
	for name, b := range cases {
		if out, err := decodeBatch(b, nil); !errors.Is(err, errMalformed) && !errors.Is(err, errVersion) || len(out) != 0 {
			t.Errorf("%s: %d messages, %v; want a malformed-frame error and nothing", name, len(out), err)
		}
	}
}

// FuzzDecodeBatch checks that no input panics the decoder, and that what it
// accepts re-encodes to the same bytes.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([]outMsg{{port: "raft", body: []byte("x")}}, 7))
	f.Add([]byte{frameVersion, kindBatch, 0})
	f.Add([]byte{frameVersion, kindBatch, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := decodeBatch(b, nil)
		if err != nil {
			return
		}
		out := make([]outMsg, len(msgs))
		size := 0
		for i, m := range msgs {
			out[i] = outMsg{port: string(m.port), body: m.body}
			size += encodedSize(out[i])
		}
		// Varints have more than one encoding; only the canonical one
		// round-trips, so compare the decoded messages instead of bytes.
		again, err := decodeBatch(encodeBatch(out, size), nil)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(msgs) {
			t.Fatalf("re-encoding %x: %v", b, err)
		}
	})
}
