package storage

import (
	"encoding/binary"
	"fmt"
)

// ReplicaRecord is what a node remembers about its replica of a range
// outside the range's own state, so that it outlives the replica: a
// replica's destruction deletes the range's span, and a snapshot rewrites
// its range-local data, but neither touches this record.
type ReplicaRecord struct {
	// ReplicaID is the Raft ID of the replica the node holds; 0: none.
	ReplicaID uint64
	// MinReplicaID is the lowest Raft ID this node may still hold for the
	// range: a tombstone. A removed replica's ID is below it, so that a late
	// message to that replica is dropped instead of bringing it back (with
	// no memory of its votes).
	MinReplicaID uint64
}

// replicaKey is \x00 "replica/" <rangeID u64 BE>.
func replicaKey(id RangeID) []byte {
	return binary.BigEndian.AppendUint64(metaKey(metaReplicaPrefix), uint64(id))
}

// ReplicaRecord returns the node's record of range id, or ErrNotFound.
func (e *Engine) ReplicaRecord(id RangeID) (ReplicaRecord, error) {
	e.live()
	defer e.fatal.crashOnPanic("replica record")
	v, err := get(e.db, replicaKey(id))
	if err != nil {
		return ReplicaRecord{}, err
	}
	if len(v) != 16 {
		return ReplicaRecord{}, fmt.Errorf("%w: replica record of range %d holds %d bytes, want 16", ErrCorrupt, id, len(v))
	}
	return ReplicaRecord{ReplicaID: binary.BigEndian.Uint64(v), MinReplicaID: binary.BigEndian.Uint64(v[8:])}, nil
}

// SetReplicaRecord stages the node's record of range id.
//
// Invariant: a replica is never older than the tombstone.
func (b *Batch) SetReplicaRecord(id RangeID, r ReplicaRecord) {
	if r.ReplicaID != 0 && r.ReplicaID < r.MinReplicaID {
		panic(fmt.Sprintf("storage: range %d: replica %d below the tombstone %d", id, r.ReplicaID, r.MinReplicaID))
	}
	v := binary.BigEndian.AppendUint64(nil, r.ReplicaID)
	b.set(replicaKey(id), binary.BigEndian.AppendUint64(v, r.MinReplicaID))
}
