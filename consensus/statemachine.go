package consensus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

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

// Keyspaces (docs/consensus.md, "Keyspaces"): the keyspace is cut into
// spans, each owned by one state machine (Redis's, the transactional
// one), several per node. A command goes to the state machine whose span
// holds its routing key, and sees only the part of its range inside that
// span: a range may cover several keyspaces (a fresh node starts with a
// few ranges), but no command reads or writes another keyspace's keys.
// The system keyspace (SystemKeyPrefix) belongs to the kernel and to no
// state machine; keys in no keyspace are the built-in key-value
// operations' (OpGet, OpPut, …).

// Keyspace is a span of keys that one state machine owns.
type Keyspace struct {
	// Name says which it is in errors and logs ("redis", "txn").
	Name string
	// Start and End bound the span, [Start, End); End is never nil (the
	// system keyspace is last).
	Start, End []byte
	// Machine executes the span's commands.
	Machine StateMachine
	// QueriesSeeWrites makes each query wait until every write the
	// leader evaluated before it came has applied (or was dropped): a
	// leader evaluates writes against the state its proposals in flight
	// will leave, but answers queries from the applied state, and a
	// machine that fixes something at evaluation that later reads must
	// respect (an MVCC write's timestamp, checked against the reads it
	// must not slip under) needs those reads to see the write. This is
	// CockroachDB's latching, coarsened to the range; Redis's queries
	// need only linearizability, and do not wait.
	QueriesSeeWrites bool
}

// QueryNoter is implemented by a machine of a keyspace whose queries see
// writes: the leader tells it of each query as it arrives, before it
// waits for the writes in flight, so that a write evaluated after the
// query arrived but applied after it ran knows of it (the transactional
// keyspace records the read in its timestamp cache, and the write moves
// above it). data refuses writes and reads nothing the query may rely
// on: the query runs later, on the state then.
type QueryNoter interface {
	NoteQuery(data RangeData, cmd []byte, meta CommandMeta)
}

// SplitNoter is implemented by a machine that keeps leaseholder-only
// memory per range (the transactional keyspace's timestamp cache) and can
// hand it to a split's right-hand range (CockroachDB hands the right-hand
// range the left's read summary the same way). The store calls NoteSplit
// on the node whose replica of the left-hand range led when the split
// applied there; that node then campaigns for the right-hand range.
type SplitNoter interface {
	NoteSplit(SplitNote)
}

// SplitNote is what NoteSplit is told. If the node wins FirstTerm of
// Right, the first term anyone can lead a split's right-hand range in,
// nobody led Right before it, and every read of Right's span so far was
// served by Left's leaders: what this node's memory of Left, kept since
// LeftTerm began and describing Left at LeftGeneration, holds. A machine
// must not assume that it wins, nor that Right's first command comes in
// FirstTerm.
type SplitNote struct {
	Left, Right    storage.RangeID
	LeftTerm       uint64 // Left's Raft term when the split applied here
	LeftGeneration uint64 // Left's descriptor generation before the split
	FirstTerm      uint64
}

func (k Keyspace) contains(key []byte) bool {
	return bytes.Compare(key, k.Start) >= 0 && bytes.Compare(key, k.End) < 0
}

// validateKeyspaces reports what is wrong with ks: unnamed, empty, out of
// order, overlapping, or reaching into the system keyspace.
func validateKeyspaces(ks []Keyspace) []string {
	var probs []string
	for i, k := range ks {
		switch {
		case k.Name == "" || k.Machine == nil:
			probs = append(probs, fmt.Sprintf("keyspace %d needs a Name and a Machine", i))
		case k.End == nil || bytes.Compare(k.Start, k.End) >= 0:
			probs = append(probs, fmt.Sprintf("keyspace %s: [%q, %q) is empty or unbounded", k.Name, k.Start, k.End))
		case bytes.Compare(k.End, SystemKeyPrefix) > 0:
			probs = append(probs, fmt.Sprintf("keyspace %s reaches into the system keyspace (%q)", k.Name, SystemKeyPrefix))
		case i > 0 && bytes.Compare(ks[i-1].End, k.Start) > 0:
			probs = append(probs, fmt.Sprintf("keyspace %s overlaps or precedes %s (keyspaces go in key order)", k.Name, ks[i-1].Name))
		}
	}
	return probs
}

// keyspaceOf is the keyspace holding key (false: none).
func (s *Store) keyspaceOf(key []byte) (Keyspace, bool) {
	i := sort.Search(len(s.opts.Keyspaces), func(i int) bool { return bytes.Compare(s.opts.Keyspaces[i].End, key) > 0 })
	if i < len(s.opts.Keyspaces) && s.opts.Keyspaces[i].contains(key) {
		return s.opts.Keyspaces[i], true
	}
	return Keyspace{}, false
}

// machineFor is the state machine of a command routed by key, or a
// definite refusal when no keyspace holds key.
func (s *Store) machineFor(key []byte) (Keyspace, error) {
	ks, ok := s.keyspaceOf(key)
	if !ok {
		return Keyspace{}, malformed(fmt.Errorf("%w: no keyspace's state machine holds key %q", errMalformed, key))
	}
	return ks, nil
}

// checkPlainKey refuses a built-in write (put, delete, CAS, a batch's
// operation) of a key that a keyspace's state machine owns: only the
// machine writes its keys, in its own encoding.
func (s *Store) checkPlainKey(key []byte) error {
	if ks, ok := s.keyspaceOf(key); ok {
		return malformed(fmt.Errorf("%w: key %q belongs to keyspace %s; only its state machine writes it", errMalformed, key, ks.Name))
	}
	return nil
}

// clip is d's span within k: what a command of k on d may touch.
func clip(d Descriptor, k Keyspace) Descriptor {
	if bytes.Compare(k.Start, d.Start) > 0 {
		d.Start = k.Start
	}
	if d.End == nil || bytes.Compare(k.End, d.End) < 0 {
		d.End = k.End
	}
	return d
}

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
	// Term and Generation are the leader's Raft term and the range
	// descriptor's generation when it evaluated the command: a state
	// machine that keeps leaseholder-only memory per range (the
	// transactional keyspace's timestamp cache) starts it afresh when
	// either changes (a new leader, a split or a merge).
	Term, Generation uint64
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
	// Hints is the range's hint word: bits a state machine keeps beside
	// the range's clock, replicated with the command's writes and read
	// for free with the clock by every command and query. Everything
	// that does not know a bit's meaning resets the word to zero (a
	// merge, a snapshot or a record from before hints existed; a split
	// gives both halves the word the range had), so a bit must certify
	// something whose absence is always safe to assume, never promise
	// something. Bits in use: Redis's bit 0, "no lock records"
	// (adapters/redis/locks.go).
	Hints() uint64
	// SetHints replaces the hint word as part of the command's writes
	// (ErrReadOnly in a query).
	SetHints(uint64) error
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
	d     Descriptor
	r     reader
	b     writeState // nil for a query
	hints uint64
}

func (rd *rangeData) check(start, end []byte) error {
	if !rd.d.Contains(start) || (end != nil && rd.d.End != nil && bytes.Compare(end, rd.d.End) > 0) {
		return fmt.Errorf("%w: %q", errOutsideRange, start)
	}
	return nil
}

func (rd *rangeData) Bounds() (start, end []byte) { return rd.d.Start, rd.d.End }
func (rd *rangeData) Range() storage.RangeID      { return rd.d.ID }
func (rd *rangeData) Hints() uint64               { return rd.hints }

func (rd *rangeData) SetHints(h uint64) error {
	if rd.b == nil {
		return ErrReadOnly
	}
	rd.hints = h
	return nil
}

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
func (s *Store) stamp(r *replica) CommandMeta {
	return CommandMeta{NowMillis: s.wall().UnixMilli(), Rand: s.rt.Rand().Uint64(), Term: r.rn.BasicStatus().Term}
}

// wall is the time commands are stamped with (Options.Clock).
func (s *Store) wall() time.Time {
	if s.opts.Clock != nil {
		return s.opts.Clock.Physical()
	}
	return s.rt.Now()
}

// rangeNow returns the range's latest applied time.
func rangeNow(r rangeLocalReader, id storage.RangeID) int64 {
	now, _ := rangeClock(r, id)
	return now
}

// rangeClock reads the range's clock record: its latest applied time and
// its hint word (RangeData.Hints), 8 bytes, or 16 with hints. Absent, it
// is zero and no hints.
func rangeClock(r rangeLocalReader, id storage.RangeID) (nowMillis int64, hints uint64) {
	v, err := r.GetRangeLocal(id, []byte(rangeLocalNow))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, 0
	}
	if err != nil || (len(v) != 8 && len(v) != 16) {
		kernel.Crash("range %d: range-local %q: %d bytes, %v", id, rangeLocalNow, len(v), err)
	}
	if len(v) == 16 {
		hints = binary.BigEndian.Uint64(v[8:])
	}
	return int64(binary.BigEndian.Uint64(v)), hints
}

// setRangeClock writes the range's clock record (rangeClock).
func setRangeClock(b writeState, id storage.RangeID, nowMillis int64, hints uint64) {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(nowMillis))
	if hints != 0 {
		v = binary.BigEndian.AppendUint64(v, hints)
	}
	b.SetRangeLocal(id, []byte(rangeLocalNow), v)
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
func (s *Store) applyCommand(b writeState, d Descriptor, req Request) ([]byte, error) {
	ks, ok := s.keyspaceOf(req.Key)
	if !ok {
		// Admission refuses these (machineFor); a re-evaluating
		// follower's node may run other keyspaces (a planted bug's path).
		return nil, fmt.Errorf("%w: no keyspace holds %q", errOutsideRange, req.Key)
	}
	now, hints := rangeClock(b, d.ID)
	meta := CommandMeta{NowMillis: max(req.NowMillis, now), Rand: req.Rand, Term: req.term, Generation: d.Generation}
	rd := &rangeData{d: clip(d, ks), r: b, b: b, hints: hints}
	reply, err := ks.Machine.Apply(rd, req.Value, meta)
	if errors.Is(err, errOutsideRange) {
		return nil, err
	}
	if err != nil {
		kernel.Crash("range %d: apply command: %v", d.ID, err)
	}
	setRangeClock(b, d.ID, meta.NowMillis, rd.hints)
	return reply, nil
}

// query executes a read-only command on the applied state.
// query runs a read-only command on the state of d that rd shows, with
// meta stamped by the driver (its clock and randomness are the driver's).
func (s *Store) query(rd stateReader, d Descriptor, req Request, meta CommandMeta) ([]byte, error) {
	ks, err := s.machineFor(req.Key)
	if err != nil {
		return nil, err
	}
	now, hints := rangeClock(rd, d.ID)
	meta.NowMillis = max(meta.NowMillis, now)
	meta.Generation = d.Generation
	return ks.Machine.Query(&rangeData{d: clip(d, ks), r: rd, hints: hints}, req.Value, meta)
}

// stateReader is what reads run on: the engine (a storage.View would do).
type stateReader interface {
	reader
	GetRangeLocal(id storage.RangeID, key []byte) ([]byte, error)
}
