package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Effects are the writes one command staged in a batch, detached from it
// in Pebble's batch encoding (a 12-byte header, then the records): what a
// range's leader evaluates a command to, carries in the Raft log, and every
// replica applies (consensus: "evaluate at the leader, replicate effects").
// They hold the range's user keys and range-local keys only; ApplyEffects
// checks it.

// Mark is a point in a batch's staged writes.
type Mark struct {
	len   int
	count uint32
}

// ErrBadEffects marks effects that do not decode, or that reach outside
// their range: a replica that meets them in its log stops.
var ErrBadEffects = errors.New("storage: malformed effects")

// Mark returns the current end of the batch's staged writes.
func (b *Batch) Mark() Mark {
	b.open()
	return Mark{len: b.b.Len(), count: b.b.Count()}
}

// EffectsSince returns the writes staged after m, as effects.
func (b *Batch) EffectsSince(m Mark) []byte {
	b.open()
	repr := b.b.Repr()
	if m.len < batchrepr.HeaderLen || m.len > len(repr) || m.count > b.b.Count() {
		panic(fmt.Sprintf("storage: mark %+v is not of this batch (%d bytes, %d ops)", m, len(repr), b.b.Count()))
	}
	out := make([]byte, batchrepr.HeaderLen, batchrepr.HeaderLen+len(repr)-m.len)
	batchrepr.SetCount(out, b.b.Count()-m.count)
	return append(out, repr[m.len:]...)
}

// ApplyEffects stages effects in b, after checking that every record is a
// set, delete or range delete of range id's user keys within [start, end)
// (end nil: to the end of the keyspace) or of its range-local keys.
func (b *Batch) ApplyEffects(id RangeID, start, end []byte, effects []byte) error {
	b.open()
	if err := CheckEffects(id, start, end, effects); err != nil {
		return err
	}
	// SetRepr takes the slice over, and Close hands it back to Pebble's
	// pool for reuse: give it a copy (effects usually live in a Raft entry
	// that others still read).
	src := b.e.db.NewBatch()
	defer src.Close()
	if err := src.SetRepr(slices.Clone(effects)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEffects, err)
	}
	if err := b.b.Apply(src, nil); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEffects, err)
	}
	if !mutation.On(MutLocalCacheMissesEffects) {
		b.noteEffects(effects)
	}
	return nil
}

// noteEffects records the range-local writes of effects (checked) in the
// batch's own-writes cache, as set, del and delRange do for theirs.
func (b *Batch) noteEffects(effects []byte) {
	for r := batchrepr.Read(effects); len(r) > 0; {
		kind, key, value, ok, _ := r.Next()
		if !ok {
			return
		}
		switch kind {
		case pebble.InternalKeyKindSet:
			b.noteWrite(key, value, false)
		case pebble.InternalKeyKindDelete:
			b.noteWrite(key, nil, true)
		case pebble.InternalKeyKindRangeDelete:
			b.noteDeleteRange(key, value)
		}
	}
}

// CheckEffects checks, as ApplyEffects does, that every record of effects
// is a set, delete or range delete of range id's user keys within [start,
// end) or of its range-local keys.
func CheckEffects(id RangeID, start, end []byte, effects []byte) error {
	h, ok := batchrepr.ReadHeader(effects)
	if !ok {
		return fmt.Errorf("%w: %d bytes", ErrBadEffects, len(effects))
	}
	dataLo, dataHi := dataSpace.span(start, end)
	local := localSpace(id)
	in := func(k, lo, hi []byte) bool { return bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 }
	n := uint32(0)
	for r := batchrepr.Read(effects); len(r) > 0; n++ {
		kind, key, value, ok, err := r.Next()
		if !ok {
			if err != nil {
				return fmt.Errorf("%w: %v", ErrBadEffects, err)
			}
			break
		}
		switch kind {
		case pebble.InternalKeyKindSet, pebble.InternalKeyKindDelete:
			if !in(key, dataLo, dataHi) && !in(key, local.prefix, local.end) {
				return fmt.Errorf("%w: %s is outside range %d", ErrBadEffects, FormatKey(key), id)
			}
		case pebble.InternalKeyKindRangeDelete:
			inData := bytes.Compare(key, dataLo) >= 0 && bytes.Compare(value, dataHi) <= 0
			inLocal := bytes.Compare(key, local.prefix) >= 0 && bytes.Compare(value, local.end) <= 0
			if bytes.Compare(key, value) > 0 || (!inData && !inLocal) {
				return fmt.Errorf("%w: [%s, %s) is outside range %d", ErrBadEffects, FormatKey(key), FormatKey(value), id)
			}
		default:
			return fmt.Errorf("%w: a record of kind %v", ErrBadEffects, kind)
		}
	}
	if n != h.Count {
		return fmt.Errorf("%w: %d records, the header says %d", ErrBadEffects, n, h.Count)
	}
	return nil
}

// EffectOp is one record of effects, for tools and tests that show them:
// a set (Value), a delete, or a range delete (End) of a user key, or an
// operation on a range-local key (Local; Key is then the raw key).
type EffectOp struct {
	Kind       string // "set", "delete", "delete-range"
	Key, Value []byte
	End        []byte
	Local      bool
}

// VisitEffects calls fn for each record of effects, in order.
func VisitEffects(effects []byte, fn func(EffectOp)) error {
	if _, ok := batchrepr.ReadHeader(effects); !ok {
		return fmt.Errorf("%w: %d bytes", ErrBadEffects, len(effects))
	}
	user := func(raw []byte) ([]byte, bool) {
		if bytes.HasPrefix(raw, dataSpace.prefix) {
			return dataSpace.strip(raw), false
		}
		return raw, true
	}
	for r := batchrepr.Read(effects); len(r) > 0; {
		kind, key, value, ok, err := r.Next()
		if !ok {
			if err != nil {
				return fmt.Errorf("%w: %v", ErrBadEffects, err)
			}
			return nil
		}
		op := EffectOp{}
		op.Key, op.Local = user(key)
		switch kind {
		case pebble.InternalKeyKindSet:
			op.Kind, op.Value = "set", value
		case pebble.InternalKeyKindDelete:
			op.Kind = "delete"
		case pebble.InternalKeyKindRangeDelete:
			op.Kind = "delete-range"
			op.End, _ = user(value)
		default:
			return fmt.Errorf("%w: a record of kind %v", ErrBadEffects, kind)
		}
		fn(op)
	}
	return nil
}

// Span is a span of user keys [Start, End) (End nil: to the end of the
// keyspace).
type Span struct{ Start, End []byte }

// contains reports whether user key k is in s.
func (s Span) contains(k []byte) bool {
	return bytes.Compare(k, s.Start) >= 0 && (s.End == nil || bytes.Compare(k, s.End) < 0)
}

// ApplyEffectsOutside is ApplyEffects, leaving the user keys in skip
// untouched: sets and deletes there are dropped and range deletions are
// cut around them. (A replica that lags behind a merge applies writes of
// spans a newer replica on its node holds now: consensus/merge.go.)
func (b *Batch) ApplyEffectsOutside(id RangeID, start, end []byte, effects []byte, skip []Span) error {
	if len(skip) == 0 {
		return b.ApplyEffects(id, start, end, effects)
	}
	b.open()
	if err := CheckEffects(id, start, end, effects); err != nil {
		return err
	}
	skipped := func(raw []byte) bool {
		if !bytes.HasPrefix(raw, dataSpace.prefix) {
			return false // range-local
		}
		k := dataSpace.strip(raw)
		for _, s := range skip {
			if s.contains(k) {
				return true
			}
		}
		return false
	}
	for r := batchrepr.Read(effects); len(r) > 0; {
		kind, key, value, ok, err := r.Next()
		if !ok {
			if err != nil {
				return fmt.Errorf("%w: %v", ErrBadEffects, err)
			}
			break
		}
		switch {
		case kind == pebble.InternalKeyKindSet && !skipped(key):
			b.set(slices.Clone(key), slices.Clone(value))
		case kind == pebble.InternalKeyKindDelete && !skipped(key):
			b.del(slices.Clone(key))
		case kind == pebble.InternalKeyKindRangeDelete && !bytes.HasPrefix(key, dataSpace.prefix):
			b.delRange(slices.Clone(key), slices.Clone(value))
		case kind == pebble.InternalKeyKindRangeDelete:
			lo := dataSpace.strip(key)
			var hi []byte
			if !bytes.Equal(value, dataSpace.end) {
				hi = dataSpace.strip(value)
			}
			for _, piece := range SpanMinus(Span{Start: lo, End: hi}, skip) {
				b.DeleteRange(piece.Start, piece.End)
			}
		}
	}
	return nil
}

// SpanMinus returns the parts of s outside every span of cut, in key
// order.
func SpanMinus(s Span, cut []Span) []Span {
	less := func(a, b []byte) bool { // a < b, with nil b the end of the keyspace
		return b == nil || bytes.Compare(a, b) < 0
	}
	out := []Span{s}
	for _, c := range cut {
		var next []Span
		for _, p := range out {
			// The part of p before c: [p.Start, min(p.End, c.Start)).
			end := c.Start
			if p.End != nil && bytes.Compare(p.End, c.Start) < 0 {
				end = p.End
			}
			if bytes.Compare(p.Start, end) < 0 {
				next = append(next, Span{Start: p.Start, End: end})
			}
			// The part after it: [max(p.Start, c.End), p.End).
			if c.End != nil {
				start := p.Start
				if bytes.Compare(c.End, start) > 0 {
					start = c.End
				}
				if less(start, p.End) {
					next = append(next, Span{Start: start, End: p.End})
				}
			}
		}
		out = next
	}
	return out
}
