package session

import (
	"bytes"
	"testing"
)

func TestPubsubMsgRoundTrip(t *testing.T) {
	m := pubsubMsg{origin: 3, epoch: 1 << 60, seq: 300, channel: []byte("news"), msg: []byte("hello\x00world")}
	got, ok := decodePubsub(m.encode())
	if !ok || got.origin != m.origin || got.epoch != m.epoch || got.seq != m.seq ||
		!bytes.Equal(got.channel, m.channel) || !bytes.Equal(got.msg, m.msg) {
		t.Fatalf("round trip: %+v, %v", got, ok)
	}
	b := m.encode()
	for i := range len(b) - len(m.msg) - len(m.channel) {
		if _, ok := decodePubsub(b[:i]); ok {
			t.Fatalf("truncated to %d bytes: decoded", i)
		}
	}
}

func TestDedup(t *testing.T) {
	var d dedup
	for _, c := range []struct {
		seq  uint64
		want bool
	}{
		{1, true}, {1, false}, {3, true}, {2, true}, {2, false}, {3, false},
		{3 + dedupWindow, true},   // 3 slides out of the window
		{4, true},                 // inside the window, never seen
		{3, false},                // too old to tell
		{4 + 5*dedupWindow, true}, // a jump clears everything
		{4 + 5*dedupWindow, false},
		{5 + 4*dedupWindow, true},
	} {
		if got := d.accept(c.seq); got != c.want {
			t.Fatalf("accept(%d) = %v, want %v", c.seq, got, c.want)
		}
	}
}
