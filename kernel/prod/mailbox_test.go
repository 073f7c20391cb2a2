package prod

import (
	"testing"

	"github.com/orbitkernel/orbit/kernel"
)

// TestMailboxNewestFirst: TryRecvNewest takes from the tail while Recv
// and TryRecv keep taking from the head, and the two meet in the middle.
func TestMailboxNewestFirst(t *testing.T) {
	m := kernel.NewMailbox[int](New(Options{NodeID: 1}), "test", 8)
	for i := 1; i <= 4; i++ {
		if !m.Send(i) {
			t.Fatalf("send %d refused", i)
		}
	}
	if v, ok := m.TryRecvNewest(); !ok || v != 4 {
		t.Fatalf("newest = %d, %v; want 4", v, ok)
	}
	if v, ok := m.TryRecv(); !ok || v != 1 {
		t.Fatalf("oldest = %d, %v; want 1", v, ok)
	}
	if v, ok := m.TryRecvNewest(); !ok || v != 3 {
		t.Fatalf("newest = %d, %v; want 3", v, ok)
	}
	if !m.Send(5) {
		t.Fatal("send 5 refused")
	}
	for _, want := range []int{2, 5} {
		if v, ok := m.TryRecv(); !ok || v != want {
			t.Fatalf("oldest = %d, %v; want %d", v, ok, want)
		}
	}
	if _, ok := m.TryRecvNewest(); ok || m.Len() != 0 {
		t.Fatalf("an empty mailbox gave a message (len %d)", m.Len())
	}
}
