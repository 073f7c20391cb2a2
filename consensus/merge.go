package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Merges (docs/consensus.md, "Merges").
//
// A merge folds a range (the right-hand range, R) into the range that ends
// where it starts (the left-hand range, L), in two log entries of two
// ranges:
//
//  1. A freeze, in R's log: from the entry on, R takes nothing more, on
//     any replica (writes, reads, splits and membership changes are
//     refused; effects entries that were in flight are not applied), so
//     its state is final. Every replica checks at apply that the range
//     fits in one log entry (MaxMergeBytes); one that does not stays
//     unfrozen, on every replica alike. The freeze is never undone: from
//     here on the merge must finish.
//  2. A merge trigger, in L's log, carrying R's final state: its user
//     data, its client table (a write retried across the merge still
//     applies once) and its clock. Every replica of L applies it in log
//     order: it writes R's data over R's span, takes R's client entries
//     that are newer than its own, extends its span to R's end with a
//     generation above both, and destroys its node's replica of R, if any,
//     leaving a tombstone that drops R's mail.
//
// Carrying the data, not asking each node's replica of R for it (as
// CockroachDB does, after waiting for every replica of R to apply the
// freeze), makes the trigger deterministic whatever the node's replica of
// R looks like (lagging, missing, rebuilt): the price is the bound on the
// right-hand range's size.
//
// Who finishes: the caller (Client.Merge) proposes the trigger as soon as
// the freeze applies. If it dies first, every node holding a frozen
// replica proposes the trigger again from its own copy of the final state
// (the merger task, every mergeRetryInterval) until a range covers R's
// start: then its frozen replica, if still here (a node that does not hold
// L), is garbage and is destroyed. A trigger is accepted only by the range
// ending at R's start, once: L records the ranges it absorbed
// (rangeLocalMerged, copied by splits), so a trigger that comes again
// after L split at the same key is refused.
//
// A snapshot of a range whose span contains an initialized replica here
// of another range with a lower generation is newer than it: that range
// was merged away (it is destroyed before the snapshot installs).

const (
	// MaxMergeBytes bounds the user data and client table a right-hand
	// range may hold to be merged: they travel in one log entry.
	MaxMergeBytes = 1 << 20
	// mergeRetryInterval is how often a node with frozen replicas tries
	// to finish their merges.
	mergeRetryInterval = 2 * time.Second
	rangeLocalFrozen   = "frozen"
	rangeLocalMerged   = "merged/"
	clientPrefix       = "client/"
)

// mergeTrigger is R's final state, as its freeze left it.
type mergeTrigger struct {
	right   Descriptor
	now     int64
	data    []storage.KeyValue
	clients []storage.KeyValue // range-local client-table entries
}

func (m *mergeTrigger) encode() []byte {
	b := m.right.appendTo(nil)
	b = binary.BigEndian.AppendUint64(b, uint64(m.now))
	for _, kvs := range [][]storage.KeyValue{m.data, m.clients} {
		b = binary.AppendUvarint(b, uint64(len(kvs)))
		for _, kv := range kvs {
			b = appendBytes(appendBytes(b, kv.Key), kv.Value)
		}
	}
	return b
}

func decodeMergeTrigger(b []byte) (*mergeTrigger, error) {
	d, b, err := readDescriptor(b)
	if err != nil || len(b) < 8 || len(d.Start) == 0 {
		return nil, fmt.Errorf("%w: merge trigger", errMalformed)
	}
	m := &mergeTrigger{right: d, now: int64(binary.BigEndian.Uint64(b))}
	b = b[8:]
	for _, kvs := range []*[]storage.KeyValue{&m.data, &m.clients} {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)) {
			return nil, fmt.Errorf("%w: merge trigger", errMalformed)
		}
		b = b[w:]
		for range n {
			var kv storage.KeyValue
			if kv.Key, b, err = readBytes(b); err != nil {
				return nil, err
			}
			if kv.Value, b, err = readBytes(b); err != nil {
				return nil, err
			}
			*kvs = append(*kvs, storage.KeyValue{Key: slices.Clone(kv.Key), Value: slices.Clone(kv.Value)})
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: merge trigger", errMalformed)
	}
	return m, nil
}

// mergeSource reads a range's final state: the apply batch, or the engine
// (the merger task, for a frozen replica).
type mergeSource interface {
	Scan(start, end []byte, limit int) ([]storage.KeyValue, []byte, error)
	ScanRangeLocal(id storage.RangeID, start, end []byte, limit int) ([]storage.KeyValue, []byte, error)
	GetRangeLocal(storage.RangeID, []byte) ([]byte, error)
}

// readMergeTrigger reads d's state from src as a merge trigger, or false
// if it holds more than MaxMergeBytes.
func readMergeTrigger(src mergeSource, d Descriptor) (*mergeTrigger, bool) {
	m := &mergeTrigger{right: d, now: rangeNow(src, d.ID)}
	m.right.Replicas = nil
	size := 0
	read := func(scan func(start []byte) ([]storage.KeyValue, []byte, error), into *[]storage.KeyValue) bool {
		var start []byte
		for first := true; first || start != nil; first = false {
			kvs, resume, err := scan(start)
			if err != nil {
				kernel.Crash("range %d: read for a merge: %v", d.ID, err)
			}
			for _, kv := range kvs {
				if size += len(kv.Key) + len(kv.Value); size > MaxMergeBytes {
					return false
				}
				*into = append(*into, kv)
			}
			start = resume
		}
		return true
	}
	userData := func(start []byte) ([]storage.KeyValue, []byte, error) {
		if start == nil {
			start = d.Start
		}
		return src.Scan(start, d.End, scanPage)
	}
	clients := func(start []byte) ([]storage.KeyValue, []byte, error) {
		if start == nil {
			start = []byte(clientPrefix)
		}
		return src.ScanRangeLocal(d.ID, start, prefixEnd([]byte(clientPrefix)), scanPage)
	}
	if !read(userData, &m.data) || !read(clients, &m.clients) {
		return nil, false
	}
	return m, true
}

// prefixEnd is the first key after every key with prefix p (p is not all
// 0xff).
func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i]++; end[i] != 0 {
			return end[:i+1]
		}
	}
	panic("consensus: prefixEnd of an all-0xff prefix")
}

func mergedKey(id storage.RangeID) []byte {
	return binary.BigEndian.AppendUint64([]byte(rangeLocalMerged), uint64(id))
}

// absorbed reports whether range id, or the range it split from, merged
// range right.
func absorbed(r rangeLocalReader, id, right storage.RangeID) bool {
	_, ok := rangeLocalFixed(r, id, string(mergedKey(right)), 0)
	return ok
}

// isFrozen reads whether range id's stored state is frozen for a merge.
func isFrozen(r rangeLocalReader, id storage.RangeID) bool {
	_, ok := rangeLocalFixed(r, id, rangeLocalFrozen, 0)
	return ok
}

// frozenError refuses a request to a frozen range: the client learns
// nothing new from it, and asks elsewhere until a node that applied the
// merge teaches it the merged range.
func (s *Store) frozenError(r *replica, key []byte) error {
	return RangeMismatchError{Key: key, Ranges: []Descriptor{s.describe(r)}}
}

// proposeFreeze runs at r's leader for OpFreeze: the first step of merging
// r into the range on its left.
func (s *Store) proposeFreeze(r *replica, id uint64, req Request, reply func(Response, error)) {
	cs := r.log.ConfState()
	switch {
	case len(r.desc.Start) == 0:
		reply(Response{}, errors.New("consensus: the first range has no range on its left to merge into"))
		return
	case !bytes.Equal(req.Key, r.desc.Start):
		reply(Response{}, fmt.Errorf("consensus: no range starts at %q (range %d holds it)", req.Key, r.desc.ID))
		return
	case r.freezing:
		reply(Response{}, retryf("range %d is freezing", r.desc.ID))
		return
	case r.splitKey != nil:
		reply(Response{}, retryf("range %d is splitting at %q", r.desc.ID, r.splitKey))
		return
	case r.confProposed || len(cs.VotersOutgoing) > 0 || len(cs.Learners) > 0 || s.unappliedConfChange(r):
		reply(Response{}, retryf("range %d has a configuration change in progress", r.desc.ID))
		return
	}
	if err := r.rn.Propose(encodeFreeze(id, r.desc.Generation)); err != nil {
		reply(Response{}, retryf("%v", err))
		return
	}
	r.freezing = true
	s.proposed++
	r.waiting[id] = reply
}

// applyFreeze applies a freeze proposed against generation gen to r in b:
// it returns R's final state (nil: the freeze is a no-op, on every
// replica alike: the range changed since, or is too large to merge).
func (s *Store) applyFreeze(b *storage.Batch, r *replica, gen uint64) *mergeTrigger {
	r.freezing = false
	if gen != r.desc.Generation || r.desc.Empty() {
		return nil
	}
	m, ok := readMergeTrigger(b, r.desc)
	if !ok {
		return nil
	}
	if !r.frozen {
		b.SetRangeLocal(r.desc.ID, []byte(rangeLocalFrozen), nil)
		r.frozen = true
		s.rangesChanged = true
		s.rt.Logger().Info("range frozen for a merge", "range", r.desc)
	}
	return m
}

// routeMerge finds the replica a merge trigger is for: the range routed
// to, if this node holds it and it ends at the right-hand range's start
// (or has absorbed it already).
func (s *Store) routeMerge(req Request) (*replica, error) {
	r := s.replicas[req.Range]
	if r != nil && !r.desc.Empty() && (bytes.Equal(r.desc.End, req.Key) || (bytes.Compare(r.desc.Start, req.Key) < 0 && r.desc.Contains(req.Key))) {
		return r, nil
	}
	var known []Descriptor
	for _, id := range s.ids {
		if o := s.replicas[id]; !o.desc.Empty() && (bytes.Equal(o.desc.End, req.Key) || o.desc.Contains(req.Key)) {
			known = append(known, s.describe(o))
		}
	}
	if len(known) == 0 {
		return nil, NotLeaderError{}
	}
	return nil, RangeMismatchError{Key: req.Key, Ranges: known}
}

// proposeMerge runs at r's leader for OpMerge: it proposes the trigger in
// req.Value, or answers OK at once if r already covers the right-hand
// range's start.
func (s *Store) proposeMerge(r *replica, id uint64, req Request, reply func(Response, error)) {
	m, err := decodeMergeTrigger(req.Value)
	if err != nil {
		reply(Response{}, err)
		return
	}
	switch {
	case absorbed(s.eng, r.desc.ID, m.right.ID) || (bytes.Compare(r.desc.Start, m.right.Start) < 0 && r.desc.Contains(m.right.Start)):
		reply(Response{OK: true}, nil) // merged already
		return
	case r.frozen || r.freezing:
		reply(Response{}, retryf("range %d is itself being merged", r.desc.ID))
		return
	case r.splitKey != nil:
		reply(Response{}, retryf("range %d is splitting at %q", r.desc.ID, r.splitKey))
		return
	}
	if err := r.rn.Propose(encodeMerge(id, req.Value)); err != nil {
		reply(Response{}, retryf("%v", err))
		return
	}
	s.proposed++
	r.waiting[id] = reply
}

// mergeDone is what is left of an applied merge once its batch commits:
// stop running the node's replica of the right-hand range.
type mergeDone struct{ right *replica }

// applyMerge applies merge trigger m to r, the left-hand range, in b. It
// reports whether the right-hand range is merged: by this trigger, or
// already (a trigger that comes again is a no-op). A trigger that meets a
// range not ending at the right-hand range's start is a no-op too.
func (s *Store) applyMerge(b *storage.Batch, r *replica, m *mergeTrigger) (*mergeDone, bool) {
	d, right := r.desc, m.right
	if absorbed(b, d.ID, right.ID) {
		return nil, true
	}
	if r.frozen || !bytes.Equal(d.End, right.Start) || d.Empty() {
		return nil, false
	}
	b.DeleteRange(right.Start, right.End)
	for _, kv := range m.data {
		b.Set(kv.Key, kv.Value)
	}
	for _, kv := range m.clients {
		if mutation.On(MutMergeForgetsClients) {
			break
		}
		client := binary.BigEndian.Uint64(kv.Key[len(clientPrefix):])
		if mine, ok := lastApplied(b, d.ID, client); !ok || mine.seq < binary.BigEndian.Uint64(kv.Value) {
			b.SetRangeLocal(d.ID, kv.Key, kv.Value)
		}
	}
	if m.now > rangeNow(b, d.ID) {
		b.SetRangeLocal(d.ID, []byte(rangeLocalNow), binary.BigEndian.AppendUint64(nil, uint64(m.now)))
	}
	b.SetRangeLocal(d.ID, mergedKey(right.ID), nil)
	merged := Descriptor{ID: d.ID, Generation: max(d.Generation, right.Generation) + 1, Start: d.Start, End: right.End}
	setDescriptor(b, merged)
	r.desc = merged
	r.needSnapshot = true // a snapshot of the old span would not fit here any more
	s.rt.Logger().Info("range merged", "left", merged, "right", right)
	// R's replica here, whatever its state, is done: its data is L's now.
	// The tombstone drops its mail for good.
	var done *mergeDone
	if o := s.replicas[right.ID]; o != nil {
		o.log.Destroy(b)
		done = &mergeDone{right: o}
	}
	b.SetReplicaRecord(right.ID, storage.ReplicaRecord{MinReplicaID: math.MaxUint64})
	return done, true
}

// finishMerge stops running the right-hand replica of an applied merge,
// after its batch committed.
func (s *Store) finishMerge(done *mergeDone) {
	s.abandon(done.right)
	s.detach(done.right)
	s.rt.Logger().Info("replica merged away", "range", done.right.desc.ID)
}

// dropSubsumed destroys this node's replicas whose span d, a snapshot's
// descriptor of another range, covers with a higher generation: they were
// merged away (the node missed the merge; the snapshot carries its data).
func (s *Store) dropSubsumed(r *replica, d Descriptor) {
	for _, id := range slices.Clone(s.ids) {
		o := s.replicas[id]
		if o == r || o.desc.Empty() || o.desc.Generation >= d.Generation {
			continue
		}
		if bytes.Compare(o.desc.Start, d.Start) >= 0 && (d.End == nil || (o.desc.End != nil && bytes.Compare(o.desc.End, d.End) <= 0)) {
			s.destroy(o)
		}
	}
}

// Frozen returns the descriptors of this node's frozen replicas, as of
// the driver's last cycle (the merger task finishes their merges).
func (s *Store) frozenRanges() []Descriptor {
	if p := s.frozen.Load(); p != nil {
		return *p
	}
	return nil
}

// merge runs on the merger task: it finishes the merges of the frozen
// replicas here, whoever froze them.
func (s *Store) merge(ctx context.Context) {
	cl := NewClient(s.opts.Router, "merger")
	for s.rt.Sleep(ctx, mergeRetryInterval) == nil {
		for _, d := range s.frozenRanges() {
			m, ok := readMergeTrigger(s.eng, d)
			if !ok {
				continue // cannot be: its freeze checked the size
			}
			actx, cancel := s.rt.WithTimeout(ctx, 5*time.Second)
			err := cl.finishMerge(actx, m)
			cancel()
			if err != nil {
				s.rt.Logger().Info("finishing a merge failed", "right", d, "err", err)
				continue
			}
			s.events.Send(event{mergedAway: d.ID})
		}
	}
}

// Merge merges the range that starts at key into the range on its left,
// and returns once the merged range serves both spans.
func (c *Client) Merge(ctx context.Context, key []byte) error {
	if len(key) == 0 {
		return errors.New("consensus: the first range has no range on its left to merge into")
	}
	resp, err := c.Do(ctx, Request{Op: OpFreeze, Key: key})
	if err != nil {
		return err
	}
	if !resp.OK {
		return fmt.Errorf("consensus: the range at %q changed or holds more than %d bytes: not merged", key, MaxMergeBytes)
	}
	m, err := decodeMergeTrigger(resp.Value)
	if err != nil {
		return err
	}
	return c.finishMerge(ctx, m)
}

// finishMerge proposes m to the range ending at its right-hand range's
// start until a range covers that start.
func (c *Client) finishMerge(ctx context.Context, m *mergeTrigger) error {
	resp, err := c.Do(ctx, Request{Op: OpMerge, Key: m.right.Start, Value: m.encode()})
	if err != nil {
		return err
	}
	if !resp.OK {
		return fmt.Errorf("consensus: merge of %v refused", m.right)
	}
	return nil
}
