package redis

import "errors"

// Store is one range's data during one atomic command: a write's evaluation
// at the leader, or a read. Keys and values are raw bytes in the
// range's user keyspace.
type Store interface {
	Get(key []byte) (value []byte, found bool, err error)
	// Scan returns up to limit pairs with start <= key < end in key order (end nil: no upper bound).
	Scan(start, end []byte, limit int) ([]KV, error)
	Set(key, value []byte) error // a read-only Store returns ErrReadOnly
	Delete(key []byte) error
	DeleteRange(start, end []byte) error
}

// KV is one key-value pair returned by Store.Scan.
type KV struct{ Key, Value []byte }

// ErrReadOnly is returned by a read-only Store's Set, Delete and DeleteRange.
// Exec never writes for a command flagged readonly, so meeting it means a
// write command was routed to the read path: a bug in the caller or the table.
var ErrReadOnly = errors.New("redis: write to a read-only store")

// Values returned by a Store may alias its memory: this package never
// modifies them and never keeps them past the command.

// ReadOnly wraps st so that every write fails with ErrReadOnly: what the
// caller hands Exec for a read at a ReadIndex.
func ReadOnly(st Store) Store { return readOnly{st} }

type readOnly struct{ st Store }

func (r readOnly) Get(key []byte) ([]byte, bool, error) { return r.st.Get(key) }
func (r readOnly) Scan(start, end []byte, limit int) ([]KV, error) {
	return r.st.Scan(start, end, limit)
}
func (readOnly) Set(key, value []byte) error         { return ErrReadOnly }
func (readOnly) Delete(key []byte) error             { return ErrReadOnly }
func (readOnly) DeleteRange(start, end []byte) error { return ErrReadOnly }
