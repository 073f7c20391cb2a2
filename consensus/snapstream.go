package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Snapshot streaming.
//
// When Raft wants to send a snapshot (MsgSnap), the driver does not put the
// range's data in the message. It starts a sender task that reads the
// snapshot's Pebble view in chunks of at most snapshotChunkBytes and sends
// them one by one as RPCs to the follower's node (port snap), each
// acknowledged before the next (so a slow follower slows the sender, never
// the driver, and no message is larger than a chunk). The last RPC carries
// the MsgSnap itself, without data: the receiver joins the chunks, puts them
// in the message, and hands it to its driver like any Raft message. The
// sender then reports the outcome to Raft (ReportSnapshot): finished, or
// failed after an RPC failed, and Raft tries again later.
//
// The receiver holds one transfer per (range, sender replica) in memory:
// chunks arrive in order (the sender waits for each acknowledgement), a
// duplicate is acknowledged again, a gap or a new snapshot restarts the
// transfer. The assembled range lives in memory until the driver installs
// it; ranges are meant to stay far below memory size.

const (
	snapPort             = "snap"
	snapshotChunkBytes   = 256 << 10
	snapshotChunkTimeout = 2 * time.Second
	snapshotChunkTries   = 3
	// maxSnapshotBytes bounds one assembled snapshot on the receiver.
	maxSnapshotBytes = 1 << 30
)

// sharedView is a Pebble view read by the driver and by snapshot senders;
// it closes when the last of them releases it.
type sharedView struct {
	v    *storage.View
	refs atomic.Int32
}

func newSharedView(v *storage.View) *sharedView {
	sv := &sharedView{v: v}
	sv.refs.Store(1)
	return sv
}

func (sv *sharedView) acquire() *sharedView { sv.refs.Add(1); return sv }

func (sv *sharedView) release() {
	if sv.refs.Add(-1) == 0 {
		sv.v.Close()
	}
}

// snapDone is a sender's outcome, back on the driver.
type snapDone struct {
	rangeID storage.RangeID
	from    uint64 // the sending replica
	to      uint64
	ok      bool
}

// startSnapshot hands an outgoing MsgSnap to a sender task. It reports
// false if r holds no view matching the message's snapshot (after a
// restart, say): r then takes a fresh snapshot after this cycle, and Raft,
// told of the failure, asks again.
func (s *Store) startSnapshot(r *replica, m raftpb.Message) bool {
	if r.snapView == nil || m.Snapshot == nil || m.Snapshot.Metadata.Index != r.snapIndex {
		r.needSnapshot = true
		return false
	}
	if r.sending[m.To] {
		return true // already on its way; Raft hears when it is done
	}
	r.sending[m.To] = true
	view := r.snapView.acquire()
	d := r.desc
	chunk := snapshotChunkBytes
	if s.rt.Buggify("consensus.tiny-snapshot-chunks") {
		chunk = 64 // many chunks, so that losses and duplicates meet a transfer
	}
	s.rt.Go("snapshot sender", func(ctx context.Context) {
		defer view.release()
		err := s.sendSnapshot(ctx, view.v, d, m, chunk)
		if err != nil {
			s.rt.Logger().Info("snapshot send failed", "range", d.ID, "to", fmt.Sprintf("%x", m.To), "err", err)
		}
		s.events.Send(event{snap: &snapDone{rangeID: d.ID, from: m.From, to: m.To, ok: err == nil}})
	})
	return true
}

// snapDoneEvent reports a finished transfer to Raft.
func (s *Store) snapDoneEvent(sd *snapDone) {
	r := s.replicas[sd.rangeID]
	if r == nil || r.id != sd.from {
		return // the sending replica is gone
	}
	delete(r.sending, sd.to)
	status := raft.SnapshotFinish
	if !sd.ok {
		status = raft.SnapshotFailure
	}
	r.rn.ReportSnapshot(sd.to, status)
}

// Chunk wire format: range(8) from(8) to(8) index(8) seq(4) final(1), the
// data piece, then (final only) the Raft message without data.
type snapChunk struct {
	rangeID       storage.RangeID
	from, to      uint64
	index         uint64
	seq           uint32
	final         bool
	data, message []byte
}

func (c snapChunk) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(c.rangeID))
	b = binary.BigEndian.AppendUint64(b, c.from)
	b = binary.BigEndian.AppendUint64(b, c.to)
	b = binary.BigEndian.AppendUint64(b, c.index)
	b = binary.BigEndian.AppendUint32(b, c.seq)
	if c.final {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendBytes(b, c.data)
	return appendBytes(b, c.message)
}

func decodeSnapChunk(b []byte) (snapChunk, error) {
	if len(b) < 37 {
		return snapChunk{}, errMalformed
	}
	c := snapChunk{rangeID: storage.RangeID(binary.BigEndian.Uint64(b)), from: binary.BigEndian.Uint64(b[8:]),
		to: binary.BigEndian.Uint64(b[16:]), index: binary.BigEndian.Uint64(b[24:]), seq: binary.BigEndian.Uint32(b[32:]), final: b[36] == 1}
	var err error
	if c.data, b, err = readBytes(b[37:]); err != nil {
		return snapChunk{}, err
	}
	if c.message, _, err = readBytes(b); err != nil {
		return snapChunk{}, err
	}
	return c, nil
}

// sendSnapshot streams one snapshot to its follower.
func (s *Store) sendSnapshot(ctx context.Context, v *storage.View, d Descriptor, m raftpb.Message, chunkBytes int) error {
	rpc := s.snapRPC
	seq := uint32(0)
	send := func(c snapChunk) error {
		c.rangeID, c.from, c.to, c.index, c.seq = d.ID, m.From, m.To, m.Snapshot.Metadata.Index, seq
		body := c.encode()
		var err error
		for range snapshotChunkTries {
			actx, cancel := s.rt.WithTimeout(ctx, snapshotChunkTimeout)
			_, err = rpc.Call(actx, nodeOf(m.To), snapPort, body)
			cancel()
			if err == nil {
				seq++
				return nil
			}
			var remote *kernel.RemoteError
			if errors.As(err, &remote) || ctx.Err() != nil {
				return err
			}
		}
		return err
	}
	if err := encodeRangeData(v, d, chunkBytes, func(piece []byte) error { return send(snapChunk{data: piece}) }); err != nil {
		return err
	}
	msg, err := m.Marshal()
	if err != nil {
		return err
	}
	return send(snapChunk{final: true, message: msg})
}

// snapTransfer is a snapshot being received.
type snapTransfer struct {
	index uint64
	next  uint32 // the next chunk expected
	data  []byte
}

// snapReceiver assembles incoming snapshots; kernel.Serve runs it one
// request at a time.
type snapReceiver struct {
	s         *Store
	transfers map[[2]uint64]*snapTransfer // by (range, sending replica)
}

func (sr *snapReceiver) handle(_ context.Context, _ kernel.NodeID, body []byte) ([]byte, error) {
	c, err := decodeSnapChunk(body)
	if err != nil {
		return nil, err
	}
	key := [2]uint64{uint64(c.rangeID), c.from}
	t := sr.transfers[key]
	if t == nil || t.index != c.index || c.seq == 0 && t.next != 0 {
		if c.seq != 0 {
			return nil, fmt.Errorf("snapshot chunk %d of a transfer not begun here; restart", c.seq)
		}
		t = &snapTransfer{index: c.index}
		sr.transfers[key] = t
	}
	switch {
	case c.seq < t.next:
		return nil, nil // a duplicate: already have it
	case c.seq > t.next:
		return nil, fmt.Errorf("snapshot chunk %d, expected %d; restart", c.seq, t.next)
	}
	t.next++
	if len(t.data)+len(c.data) > maxSnapshotBytes {
		delete(sr.transfers, key)
		return nil, fmt.Errorf("snapshot of range %d exceeds %d bytes", c.rangeID, maxSnapshotBytes)
	}
	t.data = append(t.data, c.data...)
	if !c.final {
		return nil, nil
	}
	delete(sr.transfers, key)
	var m raftpb.Message
	if err := m.Unmarshal(c.message); err != nil || m.Type != raftpb.MsgSnap || m.Snapshot == nil {
		return nil, errMalformed
	}
	m.Snapshot.Data = t.data
	if !sr.s.events.Send(event{raft: encodeRaftBatch([]outMsg{{c.rangeID, m}})}) {
		return nil, errors.New("overloaded; retry")
	}
	return nil, nil
}
