package txn

import "slices"

// The transactional keyspace (docs/consensus.md, "Keyspaces"): every key
// a DB is given is stored under KeyspaceStart, in MVCC runs
// (storage/mvcc.go). The layers above keep their own prefixes inside it
// (SQL tables and indexes, actor state).
var (
	KeyspaceStart = []byte{0x40}
	KeyspaceEnd   = []byte{0x41}
)

// spaceKey is the stored user key of a caller's key.
func spaceKey(key []byte) []byte { return append(slices.Clone(KeyspaceStart), key...) }

// spaceEnd is the stored end of a caller's span end (nil: the keyspace's).
func spaceEnd(end []byte) []byte {
	if end == nil {
		return slices.Clone(KeyspaceEnd)
	}
	return spaceKey(end)
}

// callerKey strips the keyspace's prefix from a stored user key.
func callerKey(key []byte) []byte { return slices.Clone(key[len(KeyspaceStart):]) }
