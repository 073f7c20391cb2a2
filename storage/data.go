package storage

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// KeyValue is one key and its value, as Scan and ScanRangeLocal return
// them.
type KeyValue struct {
	Key, Value []byte
}

// get returns a copy of the value at raw key in r.
func get(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: reading %s: %w", FormatKey(key), err)
	}
	out := slices.Clone(v)
	if out == nil {
		out = []byte{} // found, but empty: distinct from not found
	}
	return out, closer.Close()
}

// scan reads up to limit keys of keyspace ks in r, in [start, end).
func scan(r pebble.Reader, ks keyspace, start, end []byte, limit int) (kvs []KeyValue, resume []byte, err error) {
	if limit <= 0 {
		panic(fmt.Sprintf("storage: scan with limit %d: every scan needs a positive bound", limit))
	}
	lo, hi := ks.span(start, end)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, nil, fmt.Errorf("storage: scan: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		if len(kvs) == limit {
			resume = slices.Clone(ks.strip(it.Key()))
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("storage: scan: %w", err), it.Close())
		}
		kvs = append(kvs, KeyValue{Key: slices.Clone(ks.strip(it.Key())), Value: slices.Clone(v)})
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, nil, fmt.Errorf("storage: scan: %w", err)
	}
	return kvs, resume, nil
}
