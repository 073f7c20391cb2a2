package session

import (
	"slices"
	"testing"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/storage"
)

// TestExpirySweepsOneRangeAtATime: active expiry takes the led Redis
// ranges in key order, one a period, wrapping around; a range that had
// expired keys is taken again; the system keyspace never.
func TestExpirySweepsOneRangeAtATime(t *testing.T) {
	rng := func(id storage.RangeID, start []byte) consensus.Descriptor {
		return consensus.Descriptor{ID: id, Start: start}
	}
	a, b, c := rng(3, nil), rng(1, redis.SlotKey(100)), rng(2, redis.SlotKey(9000))
	system := rng(4, redis.KeyspaceEnd)
	led := []consensus.Descriptor{c, system, a, b} // any order
	sweep := func(turn *sweepTurn, led []consensus.Descriptor) storage.RangeID {
		d, ok := turn.next(led)
		if !ok {
			t.Fatal("no range to sweep")
		}
		return d.ID
	}
	var turn sweepTurn
	var order []storage.RangeID
	for range 7 {
		order = append(order, sweep(&turn, led))
	}
	if want := []storage.RangeID{3, 1, 2, 3, 1, 2, 3}; !slices.Equal(order, want) {
		t.Fatalf("swept %v, want %v", order, want)
	}
	turn.again = true // range 3 (the first, starting at nil) had expired keys
	if got := sweep(&turn, led); got != a.ID {
		t.Fatalf("after expired keys in range %d, swept %d next, want it again", a.ID, got)
	}
	if got := sweep(&turn, led); got != b.ID {
		t.Fatalf("then swept %d, want %d", got, b.ID)
	}
	// The range swept last merged away: the next one after its start.
	turn.again = true
	if got := sweep(&turn, []consensus.Descriptor{a, c}); got != c.ID {
		t.Fatalf("after a range merged away, swept %d, want %d", got, c.ID)
	}
	if _, ok := (&sweepTurn{}).next([]consensus.Descriptor{system}); ok {
		t.Fatal("swept the system keyspace")
	}
}
