package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// RangeID names a range: one Raft group and the span of user keys it
// replicates. Zero is never a valid range.
type RangeID uint64

// The three top-level keyspaces. Their order is the order on disk: node
// metadata, then per-range Raft state, then user data.
const (
	prefixMeta  byte = 0x00
	prefixRange byte = 0x01
	prefixData  byte = 0x02
)

// Suffix bytes of the per-range keys. They are ASCII letters so that a raw
// dump of the keyspace is readable; their relative order does not matter,
// except that each range's log sits under one suffix and so is contiguous.
const (
	suffixApplied   byte = 'a' // applied state: applied index and ConfState
	suffixHardState byte = 'h' // raftpb.HardState
	suffixLog       byte = 'l' // log entries, followed by the index
	suffixLocal     byte = 'r' // range-local replicated data, followed by the caller's key
	suffixSnapshot  byte = 's' // raftpb.SnapshotMetadata of the latest snapshot
	suffixTruncated byte = 't' // truncated state: index and term of the last compacted entry
)

// Node metadata names, after the metadata prefix.
const (
	metaVersion   = "version"
	metaClusterID = "cluster-id"
	metaNodeID    = "node-id"
	// metaCluster is what the server knows of its cluster (its nodes and
	// their addresses): opaque bytes the server owns (ClusterRecord).
	metaCluster = "cluster"
	// metaIncarnation counts the node's starts (Incarnation).
	metaIncarnation = "incarnation"
	// metaReplicaPrefix is followed by a range ID: the node's record of its
	// replica of that range (replica.go).
	metaReplicaPrefix = "replica/"
)

const (
	rangePrefixLen = 1 + 8     // prefixRange, rangeID
	rangeKeyLen    = 1 + 8 + 1 // ... and a suffix
	logKeyLen      = rangeKeyLen + 8
)

// ErrBadKey is returned by DecodeKey for a key outside the layout: a bug or
// corruption, never a user error.
var ErrBadKey = errors.New("storage: key outside the layout")

func metaKey(name string) []byte {
	k := make([]byte, 0, 1+len(name))
	return append(append(k, prefixMeta), name...)
}

// rangePrefix is the first key of everything range id owns; rangeEnd is the
// first key after it.
func rangePrefix(id RangeID) []byte {
	k := make([]byte, rangePrefixLen, rangeKeyLen)
	k[0] = prefixRange
	binary.BigEndian.PutUint64(k[1:], uint64(id))
	return k
}

func rangeEnd(id RangeID) []byte {
	if id == ^RangeID(0) {
		return []byte{prefixRange + 1}
	}
	return rangePrefix(id + 1)
}

// rangeKey is a per-range key with no further payload (hard state, applied
// state, truncated state, snapshot metadata).
func rangeKey(id RangeID, suffix byte) []byte {
	return append(rangePrefix(id), suffix)
}

func hardStateKey(id RangeID) []byte { return rangeKey(id, suffixHardState) }
func appliedKey(id RangeID) []byte   { return rangeKey(id, suffixApplied) }
func truncatedKey(id RangeID) []byte { return rangeKey(id, suffixTruncated) }
func snapshotKey(id RangeID) []byte  { return rangeKey(id, suffixSnapshot) }

// logKey is the key of the entry at index in range id's log.
func logKey(id RangeID, index uint64) []byte {
	k := make([]byte, logKeyLen)
	k[0] = prefixRange
	binary.BigEndian.PutUint64(k[1:], uint64(id))
	k[rangePrefixLen] = suffixLog
	binary.BigEndian.PutUint64(k[rangeKeyLen:], index)
	return k
}

// logEnd is the first key after range id's whole log.
func logEnd(id RangeID) []byte { return rangeKey(id, suffixLog+1) }

// logIndex decodes the index of a log key of range id, reporting false if k
// is not one.
func logIndex(id RangeID, k []byte) (uint64, bool) {
	if len(k) != logKeyLen || k[0] != prefixRange || k[rangePrefixLen] != suffixLog ||
		binary.BigEndian.Uint64(k[1:]) != uint64(id) {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[rangeKeyLen:]), true
}

// keyspace is a part of the layout that holds callers' keys under a fixed
// prefix: the user data, or one range's range-local data.
type keyspace struct {
	prefix []byte
	// end is the first key after the keyspace.
	end []byte
}

// dataSpace holds the user data.
var dataSpace = keyspace{prefix: []byte{prefixData}, end: []byte{prefixData + 1}}

// localSpace holds range id's range-local replicated data.
func localSpace(id RangeID) keyspace {
	return keyspace{prefix: rangeKey(id, suffixLocal), end: rangeKey(id, suffixLocal+1)}
}

// key encodes a caller's key. The empty key is valid.
func (ks keyspace) key(k []byte) []byte {
	out := make([]byte, 0, len(ks.prefix)+len(k))
	return append(append(out, ks.prefix...), k...)
}

// span encodes a caller's span [start, end); a nil end means the end of
// the keyspace.
func (ks keyspace) span(start, end []byte) (lo, hi []byte) {
	if end == nil {
		return ks.key(start), ks.end
	}
	return ks.key(start), ks.key(end)
}

// strip returns the caller's part of a raw key of the keyspace.
func (ks keyspace) strip(raw []byte) []byte {
	if !bytes.HasPrefix(raw, ks.prefix) {
		panic(fmt.Sprintf("storage: %s is not in keyspace %s", FormatKey(raw), FormatKey(ks.prefix)))
	}
	return raw[len(ks.prefix):]
}

// dataKey encodes a user key.
func dataKey(user []byte) []byte { return dataSpace.key(user) }

// KeyKind says which part of the layout a key belongs to.
type KeyKind int

// The kinds of key, as DecodeKey reports them.
const (
	KindMeta      KeyKind = iota + 1 // node metadata; Key.Name is set
	KindLog                          // a Raft log entry; Key.Range and Key.Index are set
	KindHardState                    // Key.Range is set
	KindApplied                      // Key.Range is set
	KindTruncated                    // Key.Range is set
	KindSnapshot                     // Key.Range is set
	KindData                         // user data; Key.User is set
	KindLocal                        // range-local data; Key.Range and Key.User are set
)

var kindNames = map[KeyKind]string{
	KindMeta: "meta", KindLog: "log", KindHardState: "hardstate", KindApplied: "applied",
	KindTruncated: "truncated", KindSnapshot: "snapshot", KindData: "data", KindLocal: "local",
}

func (k KeyKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "KeyKind(" + strconv.Itoa(int(k)) + ")"
}

// Key is a decoded storage key, for debugging tools and tests.
type Key struct {
	Kind  KeyKind
	Name  string  // KindMeta
	Range RangeID // per-range kinds
	Index uint64  // KindLog
	User  []byte  // KindData, KindLocal
}

// DecodeKey parses a raw Pebble key of the layout.
func DecodeKey(k []byte) (Key, error) {
	if len(k) == 0 {
		return Key{}, fmt.Errorf("%w: empty key", ErrBadKey)
	}
	switch k[0] {
	case prefixMeta:
		return Key{Kind: KindMeta, Name: string(k[1:])}, nil
	case prefixData:
		return Key{Kind: KindData, User: k[1:]}, nil
	case prefixRange:
		if len(k) < rangeKeyLen {
			return Key{}, fmt.Errorf("%w: short range key %q", ErrBadKey, k)
		}
		id := RangeID(binary.BigEndian.Uint64(k[1:]))
		suffix := k[rangePrefixLen]
		if suffix == suffixLocal {
			return Key{Kind: KindLocal, Range: id, User: k[rangeKeyLen:]}, nil
		}
		if suffix == suffixLog {
			if len(k) != logKeyLen {
				return Key{}, fmt.Errorf("%w: log key of length %d", ErrBadKey, len(k))
			}
			return Key{Kind: KindLog, Range: id, Index: binary.BigEndian.Uint64(k[rangeKeyLen:])}, nil
		}
		if len(k) != rangeKeyLen {
			return Key{}, fmt.Errorf("%w: range key of length %d", ErrBadKey, len(k))
		}
		var kind KeyKind
		switch suffix {
		case suffixApplied:
			kind = KindApplied
		case suffixHardState:
			kind = KindHardState
		case suffixTruncated:
			kind = KindTruncated
		case suffixSnapshot:
			kind = KindSnapshot
		default:
			return Key{}, fmt.Errorf("%w: range key suffix %q", ErrBadKey, suffix)
		}
		return Key{Kind: kind, Range: id}, nil
	}
	return Key{}, fmt.Errorf("%w: prefix %#x", ErrBadKey, k[0])
}

// Encode is the inverse of DecodeKey.
func (k Key) Encode() []byte {
	switch k.Kind {
	case KindMeta:
		return metaKey(k.Name)
	case KindLog:
		return logKey(k.Range, k.Index)
	case KindHardState:
		return hardStateKey(k.Range)
	case KindApplied:
		return appliedKey(k.Range)
	case KindTruncated:
		return truncatedKey(k.Range)
	case KindSnapshot:
		return snapshotKey(k.Range)
	case KindData:
		return dataKey(k.User)
	case KindLocal:
		return localSpace(k.Range).key(k.User)
	}
	panic(fmt.Sprintf("storage: encoding a key of kind %v", k.Kind))
}

// String renders a key as a path, e.g. /range/7/log/42 or /data/"k".
func (k Key) String() string {
	switch k.Kind {
	case KindMeta:
		return "/meta/" + k.Name
	case KindLog:
		return fmt.Sprintf("/range/%d/log/%d", k.Range, k.Index)
	case KindData:
		return fmt.Sprintf("/data/%q", k.User)
	case KindLocal:
		return fmt.Sprintf("/range/%d/local/%q", k.Range, k.User)
	}
	return fmt.Sprintf("/range/%d/%v", k.Range, k.Kind)
}

// FormatKey renders a raw key for logs and assertion messages; keys outside
// the layout are quoted as they are.
func FormatKey(raw []byte) string {
	k, err := DecodeKey(raw)
	if err != nil {
		return fmt.Sprintf("?%q", raw)
	}
	return k.String()
}
