package consensus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Commands: the layers above (the Redis command layer) run their own
// operations on a range as opaque commands. A write (OpCommand) is
// executed by StateMachine.Apply once, on the range's leader, against the
// range's state as the writes before it leave it (evaluate.go); what it
// writes goes through the Raft log as effects, with the range's other
// bookkeeping (client table, clock), and every replica applies those. A
// read (OpQuery) is executed by StateMachine.Query on the leader, under its
// lease or once a ReadIndex says its state is current. Either way the
// command sees exactly one range's data, so a command over several keys of
// one range is atomic.
//
// Time and randomness come from the leader: it stamps each command when it
// evaluates it. Stamps are made monotonic per range: the range remembers
// the latest it applied (range-local "now"), and a command never sees an
// earlier time, across leader changes and clock steps alike.

// StateMachine executes a range's commands. Apply runs only where a write
// is evaluated, so it need not be deterministic; what must happen on every
// replica as writes apply belongs in Options.Applied.
type StateMachine interface {
	// Apply executes a write command and returns its reply. An error means
	// the node cannot trust its data (a corrupt record): the node crashes
	// rather than diverge from its peers.
	Apply(data RangeData, cmd []byte, meta CommandMeta) ([]byte, error)
	// Query executes a read-only command; data refuses writes.
	Query(data RangeData, cmd []byte, meta CommandMeta) ([]byte, error)
}

// CommandMeta is what the leader assigned to a command.
type CommandMeta struct {
	NowMillis int64  // unix milliseconds, monotonic per range
	Rand      uint64 // a seed for the command's random choices
}

// RangeData is one range's user data as a command sees it: reads see the
// command's own writes; keys outside the range are refused.
type RangeData interface {
	Get(key []byte) (value []byte, found bool, err error)
	// Scan returns up to limit pairs with start <= key < end (end nil: to
	// the end of the range), in key order.
	Scan(start, end []byte, limit int) ([]storage.KeyValue, error)
	Set(key, value []byte) error
	Delete(key []byte) error
	DeleteRange(start, end []byte) error
	// Bounds are the range's span: [start, end), end nil for the end of
	// the keyspace.
	Bounds() (start, end []byte)
	// Range is the range's ID.
	Range() storage.RangeID
}

// ErrReadOnly is returned by a query's RangeData on writes.
var ErrReadOnly = errors.New("consensus: a query cannot write")

// errOutsideRange is returned for keys outside the command's range.
var errOutsideRange = errors.New("consensus: key outside the command's range")

const rangeLocalNow = "now"

// reader is what rangeData reads from: a batch (apply) or the engine
// (query).
type reader interface {
	Get(key []byte) ([]byte, error)
	Scan(start, end []byte, limit int) ([]storage.KeyValue, []byte, error)
}

type rangeData struct {
	d Descriptor
	r reader
	b *storage.Batch // nil for a query
}

func (rd *rangeData) check(start, end []byte) error {
	if !rd.d.Contains(start) || (end != nil && rd.d.End != nil && bytes.Compare(end, rd.d.End) > 0) {
		return fmt.Errorf("%w: %q", errOutsideRange, start)
	}
	return nil
}

func (rd *rangeData) Bounds() (start, end []byte) { return rd.d.Start, rd.d.End }
func (rd *rangeData) Range() storage.RangeID      { return rd.d.ID }

func (rd *rangeData) Get(key []byte) ([]byte, bool, error) {
	if err := rd.check(key, nil); err != nil {
		return nil, false, err
	}
	v, err := rd.r.Get(key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	mustRead(rd.d, err)
	return v, true, nil
}

// mustRead stops the node on a failed read of its state (a disk that
// fails reads), as a failed key-value read does (readFrom): a state
// machine would otherwise answer the client with an internal error, or
// act on a partial view (simulator redis seed 197 answered GET with one).
func mustRead(d Descriptor, err error) {
	if err != nil {
		kernel.Crash("range %d: read: %v", d.ID, err)
	}
}

func (rd *rangeData) Scan(start, end []byte, limit int) ([]storage.KeyValue, error) {
	if end == nil {
		end = rd.d.End
	}
	if err := rd.check(start, end); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	kvs, _, err := rd.r.Scan(start, end, limit)
	mustRead(rd.d, err)
	return kvs, nil
}

func (rd *rangeData) Set(key, value []byte) error {
	if rd.b == nil {
		return ErrReadOnly
	}
	if err := rd.check(key, nil); err != nil {
		return err
	}
	rd.b.Set(key, value)
	return nil
}

func (rd *rangeData) Delete(key []byte) error {
	if rd.b == nil {
		return ErrReadOnly
	}
	if err := rd.check(key, nil); err != nil {
		return err
	}
	rd.b.Delete(key)
	return nil
}

func (rd *rangeData) DeleteRange(start, end []byte) error {
	if rd.b == nil {
		return ErrReadOnly
	}
	if end == nil {
		end = rd.d.End
	}
	if err := rd.check(start, end); err != nil {
		return err
	}
	rd.b.DeleteRange(start, end)
	return nil
}

// stamp is the leader's time for a new command on r: its clock, never
// behind what the range applied.
func (s *Store) stamp() CommandMeta {
	return CommandMeta{NowMillis: s.rt.Now().UnixMilli(), Rand: s.rt.Rand().Uint64()}
}

// rangeNow returns the range's latest applied time.
func rangeNow(r rangeLocalReader, id storage.RangeID) int64 {
	v, ok := rangeLocalFixed(r, id, rangeLocalNow, 8)
	if !ok {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// rangeLocalReader reads a range's range-local keys: the engine or a
// batch.
type rangeLocalReader interface {
	GetRangeLocal(storage.RangeID, []byte) ([]byte, error)
}

// rangeLocalFixed reads range-local key of range id, a value of size
// bytes; false when it is absent. Anything else is a corrupt range: the
// node crashes.
func rangeLocalFixed(r rangeLocalReader, id storage.RangeID, key string, size int) ([]byte, bool) {
	v, err := r.GetRangeLocal(id, []byte(key))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false
	}
	if err != nil || len(v) != size {
		kernel.Crash("range %d: range-local %q: %d bytes, %v", id, key, len(v), err)
	}
	return v, true
}

// applyCommand executes a write command in b. A command that reaches
// outside its range (its keys were routed by a range that has split since)
// returns an error wrapping errOutsideRange, and b holds a part of it: the
// caller throws b's writes away. Any other error crashes the node (its
// data cannot be trusted).
func (s *Store) applyCommand(b *storage.Batch, d Descriptor, req Request) ([]byte, error) {
	if s.sm == nil {
		return nil, nil // no state machine: a misrouted command; nothing to do
	}
	meta := CommandMeta{NowMillis: max(req.NowMillis, rangeNow(b, d.ID)), Rand: req.Rand}
	b.SetRangeLocal(d.ID, []byte(rangeLocalNow), binary.BigEndian.AppendUint64(nil, uint64(meta.NowMillis)))
	reply, err := s.sm.Apply(&rangeData{d: d, r: b, b: b}, req.Value, meta)
	if errors.Is(err, errOutsideRange) {
		return nil, err
	}
	if err != nil {
		kernel.Crash("range %d: apply command: %v", d.ID, err)
	}
	return reply, nil
}

// query executes a read-only command on the applied state.
// query runs a read-only command on the state of d that rd shows, with
// meta stamped by the driver (its clock and randomness are the driver's).
func (s *Store) query(rd stateReader, d Descriptor, req Request, meta CommandMeta) ([]byte, error) {
	if s.sm == nil {
		return nil, errors.New("consensus: this node runs no state machine")
	}
	meta.NowMillis = max(meta.NowMillis, rangeNow(rd, d.ID))
	return s.sm.Query(&rangeData{d: d, r: rd}, req.Value, meta)
}

// stateReader is what reads run on: the engine (a storage.View would do).
type stateReader interface {
	reader
	GetRangeLocal(id storage.RangeID, key []byte) ([]byte, error)
}
