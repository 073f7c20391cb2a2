package consensus

import (
	"fmt"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Log truncation and snapshots.
//
// Every snapshotEvery applied entries a replica records a snapshot at its
// applied index and truncates its log up to snapshotKeep entries before it,
// so the log (and the disk) stays bounded. At that moment the engine holds
// exactly the range's state at that index (only the driver writes), so the
// replica keeps a Pebble view of it: when Raft sends the snapshot to a
// follower that fell behind the truncated log (or lost its disk), the data is
// read from that view. A follower installs a snapshot atomically with its
// Raft state: the range's user span and range-local data are cleared and
// rewritten in the same batch.
//
// Sending is streamed (snapstream.go): the data goes in chunks of at most
// snapshotChunkBytes, each acknowledged, and the Raft message itself last.
const (
	snapshotEvery = 1000
	snapshotKeep  = 100
	scanPage      = 1024
)

// maybeTruncate snapshots and truncates r's log if enough has been applied
// since the last snapshot.
func (s *Store) maybeTruncate(r *replica) {
	every, keep := uint64(snapshotEvery), uint64(snapshotKeep)
	if s.rt.Buggify("consensus.frequent-snapshots") {
		every, keep = 5, 0 // snapshots and truncation all the time
	}
	applied := r.log.Applied()
	snap, err := r.log.Snapshot()
	if err != nil {
		kernel.Crash("range %d: snapshot: %v", r.desc.ID, err)
	}
	if applied < snap.Metadata.Index+every {
		return
	}
	b := s.eng.NewBatch()
	if _, err := r.log.CreateSnapshot(b, applied, r.log.ConfState()); err != nil {
		kernel.Crash("range %d: create snapshot at %d: %v", r.desc.ID, applied, err)
	}
	if first, _ := r.log.FirstIndex(); applied > keep && applied-keep >= first {
		if err := r.log.Compact(b, applied-keep); err != nil {
			kernel.Crash("range %d: compact to %d: %v", r.desc.ID, applied-keep, err)
		}
	}
	// Unsynced: a later synced write makes it durable (Pebble's WAL is
	// sequential), and losing it only brings the longer log back.
	if err := b.Commit(false); err != nil {
		kernel.Crash("range %d: truncate: %v", r.desc.ID, err)
	}
	s.refreshSnapshotView(r)
}

// snapshotNow makes sure r has a view to send: it records a snapshot at the
// applied index (if the latest is older) and takes the view. Raft asks for a
// snapshot again after a failed send, and then gets this one.
func (s *Store) snapshotNow(r *replica) {
	snap, err := r.log.Snapshot()
	if err != nil {
		kernel.Crash("range %d: snapshot: %v", r.desc.ID, err)
	}
	if applied := r.log.Applied(); applied > snap.Metadata.Index {
		b := s.eng.NewBatch()
		if _, err := r.log.CreateSnapshot(b, applied, r.log.ConfState()); err != nil {
			kernel.Crash("range %d: create snapshot at %d: %v", r.desc.ID, applied, err)
		}
		if err := b.Commit(false); err != nil {
			kernel.Crash("range %d: snapshot: %v", r.desc.ID, err)
		}
	}
	s.refreshSnapshotView(r)
}

// refreshSnapshotView takes the view that backs r's latest snapshot: call it
// right after the state reached the snapshot's index.
func (s *Store) refreshSnapshotView(r *replica) {
	snap, _ := r.log.Snapshot()
	if mutation.On(MutStaleSnapshotView) && r.snapView != nil {
		r.snapIndex = snap.Metadata.Index
		return
	}
	if r.snapView != nil {
		r.snapView.release()
	}
	r.snapView = newSharedView(s.eng.NewView())
	r.snapIndex = snap.Metadata.Index
}

// Snapshot data: records of kind(1: 'u' user, 'l' range-local) key value,
// both uvarint-length-prefixed. encodeRangeData hands them to emit in pieces
// of about chunkBytes, in order; the pieces concatenated are the data.
//
// The span is the one the view's own state records (its descriptor as of
// the snapshot's index), not the replica's current one: a split applied
// since must not cut the data short of what the snapshot's log position
// says the range holds.
func encodeRangeData(v *storage.View, d Descriptor, chunkBytes int, emit func([]byte) error) error {
	if sd, ok := storedDescriptor(v, d.ID); ok {
		d = sd
	}
	var out []byte
	// add pages through one keyspace, appending records of the given kind.
	add := func(kind byte, start []byte, scan func(start []byte) ([]storage.KeyValue, []byte, error)) error {
		for {
			kvs, resume, err := scan(start)
			if err != nil {
				return fmt.Errorf("range %d: snapshot scan: %w", d.ID, err)
			}
			for _, kv := range kvs {
				out = append(out, kind)
				out = appendBytes(out, kv.Key)
				out = appendBytes(out, kv.Value)
				if len(out) >= chunkBytes {
					if err := emit(out); err != nil {
						return err
					}
					out = nil
				}
			}
			if resume == nil {
				return nil
			}
			start = resume
		}
	}
	if err := add('u', d.Start, func(start []byte) ([]storage.KeyValue, []byte, error) { return v.Scan(start, d.End, scanPage) }); err != nil {
		return err
	}
	if err := add('l', nil, func(start []byte) ([]storage.KeyValue, []byte, error) {
		return v.ScanRangeLocal(d.ID, start, nil, scanPage)
	}); err != nil {
		return err
	}
	if len(out) > 0 {
		return emit(out)
	}
	return nil
}

// installSnapshot stages a received snapshot's state into b, replacing the
// range's data, and returns the range's descriptor as the snapshot has it.
// old is the replica's descriptor until now (its span is cleared too: a
// lagging replica's range may have split since); fallback is the
// snapshot's descriptor if it carries none (a range bootstrapped before
// descriptors were stored: the layout's).
func installSnapshot(b *storage.Batch, old, fallback Descriptor, data []byte, keep []storage.Span) (Descriptor, error) {
	d, ok, err := snapshotDescriptor(old.ID, data)
	if err != nil {
		return old, err
	}
	if !ok {
		d = fallback
	}
	if !mutation.On(MutSnapshotKeepsOldData) {
		// The old span but what newer replicas here hold (keep: a
		// replica that lagged behind a merge, merge.go), and the new one.
		if !old.Empty() {
			for _, p := range storage.SpanMinus(storage.Span{Start: old.Start, End: old.End}, keep) {
				b.DeleteRange(p.Start, p.End)
			}
		}
		if !d.Empty() {
			b.DeleteRange(d.Start, d.End)
		}
	}
	b.ClearRangeLocal(d.ID)
	err = visitRangeData(data, func(kind byte, key, value []byte) error {
		switch kind {
		case 'u':
			if !d.Contains(key) {
				return fmt.Errorf("%w: snapshot key %q outside %v", errMalformed, key, d)
			}
			b.Set(key, value)
		case 'l':
			b.SetRangeLocal(d.ID, key, value)
		default:
			return fmt.Errorf("%w: snapshot record kind %d", errMalformed, kind)
		}
		return nil
	})
	return d, err
}

// visitRangeData calls fn on every record of snapshot data, in order.
func visitRangeData(data []byte, fn func(kind byte, key, value []byte) error) error {
	for len(data) > 0 {
		kind := data[0]
		key, rest, err := readBytes(data[1:])
		if err != nil {
			return err
		}
		value, rest, err := readBytes(rest)
		if err != nil {
			return err
		}
		if err := fn(kind, key, value); err != nil {
			return err
		}
		data = rest
	}
	return nil
}
