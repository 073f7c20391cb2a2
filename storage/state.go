package storage

import (
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
)

// logState is what a LogStore knows of its range's Raft state: everything
// but the entries themselves.
//
// Invariant: truncIndex ≤ snap.Index ≤ applied ≤ last.
// Invariant: hard.Commit ≤ last.
// Invariant: applied ≤ max(hard.Commit, snap.Index): nothing is applied
// before it is committed (a snapshot is committed by definition).
type logState struct {
	hard raftpb.HardState
	// truncIndex and truncTerm name the entry just before the first one
	// kept: the last compacted entry, or the snapshot the log restarted
	// from. The first entry in the log is truncIndex+1.
	truncIndex, truncTerm uint64
	// last and lastTerm name the last entry; last == truncIndex (and
	// lastTerm == truncTerm) when the log holds no entry.
	last, lastTerm uint64
	// snap is the metadata of the latest snapshot (zero if none).
	snap raftpb.SnapshotMetadata
	// applied is the index of the last entry applied to the user data;
	// conf is the ConfState as of that entry.
	applied uint64
	conf    raftpb.ConfState
	// destroyed is set once the range's state has been deleted.
	destroyed bool
}

// violation returns the first broken invariant of st, or "".
func (st *logState) violation() string {
	switch {
	case st.destroyed:
		return ""
	case st.truncIndex > st.snap.Index:
		return fmt.Sprintf("truncated index %d beyond snapshot index %d", st.truncIndex, st.snap.Index)
	case st.snap.Index > st.applied:
		return fmt.Sprintf("snapshot index %d beyond applied index %d", st.snap.Index, st.applied)
	case st.applied > st.last:
		return fmt.Sprintf("applied index %d beyond last index %d", st.applied, st.last)
	case st.hard.Commit > st.last:
		return fmt.Sprintf("commit index %d beyond last index %d", st.hard.Commit, st.last)
	case st.applied > max(st.hard.Commit, st.snap.Index):
		return fmt.Sprintf("applied index %d beyond commit index %d and snapshot index %d", st.applied, st.hard.Commit, st.snap.Index)
	case st.last == st.truncIndex && st.lastTerm != st.truncTerm:
		return fmt.Sprintf("empty log after (%d, %d) with last term %d", st.truncIndex, st.truncTerm, st.lastTerm)
	}
	return ""
}

func cloneConfState(cs raftpb.ConfState) raftpb.ConfState {
	return raftpb.ConfState{
		Voters:         slices.Clone(cs.Voters),
		Learners:       slices.Clone(cs.Learners),
		VotersOutgoing: slices.Clone(cs.VotersOutgoing),
		LearnersNext:   slices.Clone(cs.LearnersNext),
		AutoLeave:      cs.AutoLeave,
	}
}

// marshaler is what gogoproto generates for every raftpb message.
type marshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

func marshal(m marshaler) []byte {
	buf := make([]byte, m.Size())
	if _, err := m.MarshalToSizedBuffer(buf); err != nil {
		panic(fmt.Sprintf("storage: marshalling %T: %v", m, err)) // only on a size mismatch: a bug
	}
	return buf
}

// unmarshal decodes a stored raftpb message, what naming it for the error.
func unmarshal(what string, m interface{ Unmarshal([]byte) error }, v []byte) error {
	if err := m.Unmarshal(v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, err)
	}
	return nil
}

func encodeTruncated(index, term uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), index), term)
}

func decodeTruncated(v []byte) (index, term uint64, err error) {
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("%w: truncated state of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}

func encodeApplied(index uint64, cs raftpb.ConfState) []byte {
	buf := make([]byte, 8+cs.Size())
	binary.BigEndian.PutUint64(buf, index)
	if _, err := cs.MarshalToSizedBuffer(buf[8:]); err != nil {
		panic(fmt.Sprintf("storage: marshalling a ConfState: %v", err))
	}
	return buf
}

func decodeApplied(v []byte) (index uint64, cs raftpb.ConfState, err error) {
	if len(v) < 8 {
		return 0, cs, fmt.Errorf("%w: applied state of %d bytes", ErrCorrupt, len(v))
	}
	if err := cs.Unmarshal(v[8:]); err != nil {
		return 0, cs, fmt.Errorf("%w: applied state: %w", ErrCorrupt, err)
	}
	return binary.BigEndian.Uint64(v), cs, nil
}
