package redis

import (
	"bytes"
	"slices"
)

// MemStore is an ordered in-memory Store for tests and fuzzing: a sorted
// slice, so every write is O(n). It copies what it is given and hands out
// slices whose capacity equals their length, so a caller's append can never
// write into it.
type MemStore struct {
	kvs []KV // sorted by Key, keys unique
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{} }

var _ Store = (*MemStore)(nil)

func (m *MemStore) find(key []byte) (int, bool) {
	return slices.BinarySearchFunc(m.kvs, key, func(kv KV, k []byte) int { return bytes.Compare(kv.Key, k) })
}

func (m *MemStore) Get(key []byte) ([]byte, bool, error) {
	i, ok := m.find(key)
	if !ok {
		return nil, false, nil
	}
	v := m.kvs[i].Value
	return v[:len(v):len(v)], true, nil
}

func (m *MemStore) Scan(start, end []byte, limit int) ([]KV, error) {
	i, _ := m.find(start)
	var out []KV
	for ; i < len(m.kvs) && len(out) < limit; i++ {
		kv := m.kvs[i]
		if end != nil && bytes.Compare(kv.Key, end) >= 0 {
			break
		}
		out = append(out, KV{kv.Key[:len(kv.Key):len(kv.Key)], kv.Value[:len(kv.Value):len(kv.Value)]})
	}
	return out, nil
}

func (m *MemStore) Set(key, value []byte) error {
	kv := KV{bytes.Clone(key), bytes.Clone(value)}
	if kv.Value == nil {
		kv.Value = []byte{}
	}
	if kv.Key == nil {
		kv.Key = []byte{}
	}
	i, ok := m.find(key)
	if ok {
		m.kvs[i] = kv
		return nil
	}
	m.kvs = slices.Insert(m.kvs, i, kv)
	return nil
}

func (m *MemStore) Delete(key []byte) error {
	if i, ok := m.find(key); ok {
		m.kvs = slices.Delete(m.kvs, i, i+1)
	}
	return nil
}

// DeleteRange deletes start <= key < end; a nil end has no upper bound.
func (m *MemStore) DeleteRange(start, end []byte) error {
	i, _ := m.find(start)
	j := len(m.kvs)
	if end != nil {
		j, _ = m.find(end)
	}
	if j > i {
		m.kvs = slices.Delete(m.kvs, i, j)
	}
	return nil
}

// Len is the number of internal records, for tests.
func (m *MemStore) Len() int { return len(m.kvs) }

// Dump returns a copy of every record in key order, for tests.
func (m *MemStore) Dump() []KV { return slices.Clone(m.kvs) }
