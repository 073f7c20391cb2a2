package consensus

import (
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/storage"
)

// TestPlanSendsBoundsBatches replays what a leader produced after a
// follower came back with a backlog of heartbeat replies (issue 11): one
// append of the same log tail per reply, plus heartbeats. Before the
// bounds, all of it went to the follower in one network message (50 MB in
// the field) that the transport refused whole, heartbeats included.
func TestPlanSendsBoundsBatches(t *testing.T) {
	tail := make([]raftpb.Entry, 500)
	for i := range tail {
		tail[i] = raftpb.Entry{Term: 3, Index: uint64(100 + i), Data: make([]byte, 200)}
	}
	var msgs []raftpb.Message
	for range 300 {
		msgs = append(msgs, raftpb.Message{Type: raftpb.MsgApp, To: replicaID(2, 0), Index: 99, LogTerm: 3, Entries: tail})
	}
	msgs = append(msgs, raftpb.Message{Type: raftpb.MsgHeartbeat, To: replicaID(2, 0)})
	// Appends that do not repeat one another (a follower in StateReplicate
	// gets consecutive ones) all leave, in order.
	for i := range 30 {
		msgs = append(msgs, raftpb.Message{Type: raftpb.MsgApp, To: replicaID(3, 0), Index: uint64(1000 + 10*i), Entries: make([]raftpb.Entry, 10)})
		for j := range msgs[len(msgs)-1].Entries {
			msgs[len(msgs)-1].Entries[j] = raftpb.Entry{Index: uint64(1001 + 10*i + j), Data: make([]byte, 8<<10)}
		}
	}
	readies := []ready{{r: &replica{desc: Descriptor{ID: storage.RangeID(1)}}, readyPlan: readyPlan{rd: raft.Ready{Messages: msgs}, early: true}}}
	plan := planSends(readies, true)

	var toTwo, toThree []netMsg
	for _, nm := range plan {
		size := 0
		for _, m := range nm.msgs {
			size += m.m.Size()
		}
		if len(nm.msgs) > 1 && size > MaxBatchBytes {
			t.Errorf("a network message to node %d carries %d bytes in %d Raft messages; the bound is %d", nm.to, size, len(nm.msgs), MaxBatchBytes)
		}
		switch nm.to {
		case 2:
			toTwo = append(toTwo, nm)
		case 3:
			toThree = append(toThree, nm)
		}
	}
	if len(toTwo) != 2 || len(toTwo[0].msgs) != 1 || toTwo[0].msgs[0].m.Type != raftpb.MsgHeartbeat {
		t.Fatalf("node 2 should get its heartbeat first, alone, then one append: %d network messages", len(toTwo))
	}
	if n := len(toTwo[1].msgs); n != 1 {
		t.Errorf("node 2 gets %d copies of the same tail; want 1", n)
	}
	var idx []uint64
	for _, nm := range toThree {
		for _, m := range nm.msgs {
			idx = append(idx, m.m.Index)
		}
	}
	if len(idx) != 30 {
		t.Fatalf("node 3 gets %d appends, want all 30", len(idx))
	}
	for i := 1; i < len(idx); i++ {
		if idx[i] <= idx[i-1] {
			t.Fatalf("node 3's appends out of order: %v", idx)
		}
	}
	if len(toThree) < 2 {
		t.Errorf("30 appends of 80 KiB to node 3 fit in %d network message(s); the bound is %d bytes", len(toThree), MaxBatchBytes)
	}
}
