package consensus

import (
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// TestCommitEstimate: with node 1's links slow (every round trip through
// it 250 ms), node 1 leading commits in ~250 ms and node 2 leading in
// ~1 ms; a dead node is not counted; a node with a slow disk is.
func TestCommitEstimate(t *testing.T) {
	now := 1000 * time.Second
	ms := time.Millisecond
	h := newHealth()
	for range healthSamples {
		h.rtt[2] = add(h.rtt[2], 250*ms, now)
		h.rtt[3] = add(h.rtt[3], 251*ms, now)
		h.sync.add(ms, now)
	}
	h.reports[2] = healthReport{at: now, sync: ms, rtt: map[kernel.NodeID]time.Duration{1: 250 * ms, 3: ms}}
	h.reports[3] = healthReport{at: now, sync: ms, rtt: map[kernel.NodeID]time.Duration{1: 251 * ms, 2: ms}}
	voters := []kernel.NodeID{1, 2, 3}
	here, ok := h.commitEstimate(1, 1, voters, now)
	if !ok || here != 251*ms {
		t.Fatalf("node 1 leading: %v %v, want 251ms (250 ms round trip + 1 ms sync)", here, ok)
	}
	there, ok := h.commitEstimate(1, 2, voters, now)
	if !ok || there != 2*ms {
		t.Fatalf("node 2 leading: %v %v, want 2ms", there, ok)
	}
	if !(here > slowFactor*there+slowMargin) {
		t.Fatalf("a 250 ms leader against a 2 ms one must be worth a hand-over")
	}
	// Node 3 dies: its report and round trips go stale. Node 2 still has
	// a quorum with node 1 (250 ms), and node 1 can count only on node 2.
	later := now + 2*healthStale
	h.reports[2] = healthReport{at: later, sync: ms, rtt: map[kernel.NodeID]time.Duration{1: 250 * ms}}
	h.rtt[2] = add(h.rtt[2], 250*ms, later)
	h.sync.add(ms, later)
	if est, ok := h.commitEstimate(1, 3, voters, later); ok {
		t.Fatalf("an estimate for a node with no fresh news: %v", est)
	}
	if est, ok := h.commitEstimate(1, 2, voters, later); !ok || est != 251*ms {
		t.Fatalf("node 2 leading with node 3 gone: %v %v, want 251ms", est, ok)
	}
	// A slow disk counts: node 2 syncs in 300 ms.
	h.reports[2] = healthReport{at: later, sync: 300 * ms, rtt: map[kernel.NodeID]time.Duration{1: ms}}
	if est, _ := h.commitEstimate(1, 2, voters, later); est != 300*ms {
		t.Fatalf("node 2 with a slow disk: %v, want 300ms", est)
	}
}

func add(s *samples, d time.Duration, now time.Duration) *samples {
	if s == nil {
		s = &samples{}
	}
	s.add(d, now)
	return s
}

// TestHealthWire: a report survives its encoding.
func TestHealthWire(t *testing.T) {
	r := healthReport{sync: 1500 * time.Microsecond, rtt: map[kernel.NodeID]time.Duration{3: 2 * time.Millisecond, 2: 250 * time.Millisecond}}
	kind, at, got, err := decodeHealth(encodeHealth(healthPong, 42, r))
	if err != nil || kind != healthPong || at != 42 || got.sync != r.sync || len(got.rtt) != 2 || got.rtt[2] != r.rtt[2] || got.rtt[3] != r.rtt[3] {
		t.Fatalf("round trip: %v %v %v %+v", err, kind, at, got)
	}
	for _, bad := range [][]byte{nil, {1}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}} {
		if _, _, _, err := decodeHealth(bad); err == nil {
			t.Errorf("decoded %v", bad)
		}
	}
}
