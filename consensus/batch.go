package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Write batches: several puts, deletes and compare-and-sets on keys of one
// range, applied atomically as one write (one log entry, one client-table
// record: a retried batch applies once). They apply in order, each seeing
// the ones before it; a compare-and-set that does not match writes
// nothing and the batch goes on (its outcome is reported). A batch whose
// keys are not all in one range is refused (ErrCrossRange, not applied):
// transactions (issue 14) are what spans ranges.

// ErrCrossRange: a batch's keys are not all in one range.
var ErrCrossRange = errors.New("consensus: the request's keys are in more than one range")

const codeCrossRange = "consensus.cross-range"

// MaxBatchOps bounds the operations of one batch.
const MaxBatchOps = 1000

// BatchOp is one write of a batch: OpPut, OpDelete or OpCAS.
type BatchOp struct {
	Op                 Op
	Key, Value, Expect []byte
}

// Batch applies ops atomically, in order, on the range holding their keys,
// and reports each one's outcome (a CAS: whether it swapped; a put or a
// delete: true). A failure wraps ErrNotApplied (with ErrCrossRange when
// the keys span ranges) or ErrIndeterminate.
func (c *Client) Batch(ctx context.Context, ops []BatchOp) ([]bool, error) {
	value, err := encodeBatch(ops)
	if err != nil {
		return nil, errors.Join(ErrNotApplied, err)
	}
	r, err := c.Do(ctx, Request{Op: OpBatch, Key: ops[0].Key, Value: value})
	if err != nil {
		return nil, err
	}
	if len(r.Value) != len(ops) {
		return nil, fmt.Errorf("consensus: a batch of %d answered with %d outcomes", len(ops), len(r.Value))
	}
	out := make([]bool, len(ops))
	for i, b := range r.Value {
		out[i] = b == 1
	}
	return out, nil
}

// Encoding: count (uvarint), then per op: op(1) key value expect.
func encodeBatch(ops []BatchOp) ([]byte, error) {
	if len(ops) == 0 || len(ops) > MaxBatchOps {
		return nil, fmt.Errorf("consensus: a batch of %d operations (1 to %d)", len(ops), MaxBatchOps)
	}
	b := binary.AppendUvarint(nil, uint64(len(ops)))
	for _, op := range ops {
		if op.Op != OpPut && op.Op != OpDelete && op.Op != OpCAS {
			return nil, fmt.Errorf("consensus: a batch may hold puts, deletes and compare-and-sets, not op %d", op.Op)
		}
		b = append(b, byte(op.Op))
		b = appendBytes(appendBytes(appendBytes(b, op.Key), op.Value), op.Expect)
	}
	return b, nil
}

func decodeBatch(b []byte) ([]BatchOp, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n == 0 || n > MaxBatchOps {
		return nil, fmt.Errorf("%w: a batch of %d operations", errMalformed, n)
	}
	b = b[w:]
	ops := make([]BatchOp, n)
	for i := range ops {
		if len(b) < 1 {
			return nil, errMalformed
		}
		op := &ops[i]
		op.Op = Op(b[0])
		if op.Op != OpPut && op.Op != OpDelete && op.Op != OpCAS {
			return nil, fmt.Errorf("%w: op %d in a batch", errMalformed, op.Op)
		}
		var err error
		b = b[1:]
		for _, f := range []*[]byte{&op.Key, &op.Value, &op.Expect} {
			if *f, b, err = readBytes(b); err != nil {
				return nil, err
			}
		}
	}
	if len(b) != 0 {
		return nil, errMalformed
	}
	return ops, nil
}

// checkBatch runs at the leader before a batch is evaluated: it decodes,
// every key must be r's range's, and none at or after a split in flight
// (the leader takes no such write until the split applies).
func (s *Store) checkBatch(r *replica, req Request) error {
	ops, err := decodeBatch(req.Value)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if !holds(r, op.Key) {
			return crossRange(r.desc, fmt.Sprintf("key %q of a batch", op.Key))
		}
		if err := s.checkPlainKey(op.Key); err != nil {
			return err
		}
	}
	for _, op := range ops {
		if r.splitting(op.Key) {
			return retryf("range %d is splitting at %q", r.desc.ID, r.splitKey)
		}
	}
	return nil
}

// applyBatch stages a batch's writes in b (checked by checkBatch, and the
// effects' range check again as they apply) and returns the outcomes, one
// byte each.
func applyBatch(b writeState, d Descriptor, value []byte) []byte {
	ops, err := decodeBatch(value)
	if err != nil {
		kernel.Crash("range %d: a batch that was checked does not decode: %v", d.ID, err)
	}
	out := make([]byte, len(ops))
	for i, op := range ops {
		if applyWrite(b, d, op.Op, op.Key, op.Value, op.Expect) {
			out[i] = 1
		}
	}
	return out
}

// applyWrite stages one put, delete or compare-and-set, and reports whether
// it wrote (a CAS that does not match does not).
func applyWrite(b writeState, d Descriptor, op Op, key, value, expect []byte) bool {
	switch op {
	case OpPut:
		b.Set(key, value)
	case OpDelete:
		b.Delete(key)
	case OpCAS:
		cur, err := b.Get(key)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			kernel.Crash("range %d: cas read: %v", d.ID, err)
		}
		if string(cur) != string(expect) {
			return false
		}
		b.Set(key, value)
	}
	return true
}
