package consensus

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/storage"
)

// memState is a range's applied state in the core transcripts: its data
// and its range-local records in maps, in place of the driver's engine.
// Its overlays (memOverlay) stage writes over it the way the driver's
// Pebble batch does, and capture them as effects in an encoding of their
// own, which memState.apply takes.
type memState struct {
	data  map[string]string
	local map[string]string // by localKey
}

func newMemState() *memState {
	return &memState{data: map[string]string{}, local: map[string]string{}}
}

func localKey(id storage.RangeID, key []byte) string { return fmt.Sprintf("%d/%s", id, key) }

func (m *memState) Get(key []byte) ([]byte, error) {
	v, ok := m.data[string(key)]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return []byte(v), nil
}

func (m *memState) GetRangeLocal(id storage.RangeID, key []byte) ([]byte, error) {
	v, ok := m.local[localKey(id, key)]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return []byte(v), nil
}

func (m *memState) Scan(start, end []byte, limit int) ([]storage.KeyValue, []byte, error) {
	return scanMap(m.data, start, end, limit)
}

// scanMap is Scan over data: up to limit pairs in [start, end), and the
// key to resume at (nil: done).
func scanMap(data map[string]string, start, end []byte, limit int) ([]storage.KeyValue, []byte, error) {
	var kvs []storage.KeyValue
	for _, k := range slices.Sorted(maps.Keys(data)) {
		if k < string(start) || (end != nil && k >= string(end)) {
			continue
		}
		if len(kvs) == limit {
			return kvs, []byte(k), nil
		}
		kvs = append(kvs, storage.KeyValue{Key: []byte(k), Value: []byte(data[k])})
	}
	return kvs, nil, nil
}

// in lists the data of range d's span in key order.
func (m *memState) in(d Descriptor) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m.data)) {
		if d.Contains([]byte(k)) {
			parts = append(parts, k+"="+m.data[k])
		}
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return strings.Join(parts, " ")
}

// ScanRangeLocal is Scan over range id's range-local records.
func (m *memState) ScanRangeLocal(id storage.RangeID, start, end []byte, limit int) ([]storage.KeyValue, []byte, error) {
	prefix := localKey(id, nil)
	own := map[string]string{}
	for k, v := range m.local {
		if key, ok := strings.CutPrefix(k, prefix); ok {
			own[key] = v
		}
	}
	return scanMap(own, start, end, limit)
}

// A memory effect: one staged write. Effects are a sequence of them, each
// a kind byte and uvarint-prefixed fields: 's' key value (a set), 'd' key
// (a delete), 'r' start end (a range delete), 'l' range key value (a
// range-local set).
func appendEffect(b []byte, kind byte, fields ...[]byte) []byte {
	b = append(b, kind)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// visitEffects calls fn on each write of effects, in order.
func visitEffects(effects []byte, fn func(kind byte, fields []string)) error {
	for len(effects) > 0 {
		kind := effects[0]
		effects = effects[1:]
		n := map[byte]int{'s': 2, 'd': 1, 'r': 2, 'l': 3}[kind]
		if n == 0 {
			return fmt.Errorf("memory effects: kind %q", kind)
		}
		fields := make([]string, n)
		for i := range fields {
			l, k := binary.Uvarint(effects)
			if k <= 0 || uint64(len(effects)-k) < l {
				return fmt.Errorf("memory effects: truncated")
			}
			fields[i], effects = string(effects[k:k+int(l)]), effects[k+int(l):]
		}
		fn(kind, fields)
	}
	return nil
}

// apply applies effects an overlay captured.
func (m *memState) apply(effects []byte) error { return replayEffects(effects, m) }

// replayEffects stages effects in w, write by write.
func replayEffects(effects []byte, w writeState) error {
	return visitEffects(effects, func(kind byte, f []string) {
		switch kind {
		case 's':
			w.Set([]byte(f[0]), []byte(f[1]))
		case 'd':
			w.Delete([]byte(f[0]))
		case 'r':
			w.DeleteRange([]byte(f[0]), []byte(f[1]))
		case 'l':
			id, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				panic(fmt.Sprintf("memory effects: range %q", f[0]))
			}
			w.SetRangeLocal(storage.RangeID(id), []byte(f[1]), []byte(f[2]))
		}
	})
}

// The applied state's own writes: what the driver's apply batch stages
// outside effects (descriptors, configuration records).
func (m *memState) Set(key, value []byte) { m.data[string(key)] = string(value) }
func (m *memState) Delete(key []byte)     { delete(m.data, string(key)) }
func (m *memState) DeleteRange(start, end []byte) {
	for k := range m.data {
		if k >= string(start) && (end == nil || k < string(end)) {
			delete(m.data, k)
		}
	}
}
func (m *memState) SetRangeLocal(id storage.RangeID, key, value []byte) {
	m.local[localKey(id, key)] = string(value)
}

// overlay opens an overlay over m, as the driver's openOverlay does over
// the engine.
func (m *memState) overlay() overlay { return &memOverlay{base: m, staged: newMemState()} }

// memOverlay stages writes over a memState: staged holds what they leave
// (a deleted key maps to memDeleted), log their effects since the
// overlay opened.
type memOverlay struct {
	base   *memState
	staged *memState
	log    []byte
}

// memDeleted marks a key an overlay deleted.
const memDeleted = "\x00deleted"

func (o *memOverlay) Get(key []byte) ([]byte, error) {
	if v, ok := o.staged.data[string(key)]; ok {
		if v == memDeleted {
			return nil, storage.ErrNotFound
		}
		return []byte(v), nil
	}
	return o.base.Get(key)
}

func (o *memOverlay) GetRangeLocal(id storage.RangeID, key []byte) ([]byte, error) {
	if v, ok := o.staged.local[localKey(id, key)]; ok {
		return []byte(v), nil
	}
	return o.base.GetRangeLocal(id, key)
}

func (o *memOverlay) Scan(start, end []byte, limit int) ([]storage.KeyValue, []byte, error) {
	merged := maps.Clone(o.base.data)
	for k, v := range o.staged.data {
		if v == memDeleted {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	return scanMap(merged, start, end, limit)
}

func (o *memOverlay) Set(key, value []byte) {
	o.staged.data[string(key)] = string(value)
	o.log = appendEffect(o.log, 's', key, value)
}

func (o *memOverlay) Delete(key []byte) {
	o.staged.data[string(key)] = memDeleted
	o.log = appendEffect(o.log, 'd', key)
}

func (o *memOverlay) DeleteRange(start, end []byte) {
	kvs, _, _ := o.Scan(start, end, -1)
	for _, kv := range kvs {
		o.staged.data[string(kv.Key)] = memDeleted
	}
	o.log = appendEffect(o.log, 'r', start, end)
}

func (o *memOverlay) SetRangeLocal(id storage.RangeID, key, value []byte) {
	o.staged.local[localKey(id, key)] = string(value)
	o.log = appendEffect(o.log, 'l', []byte(fmt.Sprint(id)), key, value)
}

func (o *memOverlay) capture(fn func() error) ([]byte, error) {
	mark := len(o.log)
	if err := fn(); err != nil {
		return nil, err
	}
	return slices.Clone(o.log[mark:]), nil
}

func (o *memOverlay) stage(_ Descriptor, effects []byte) error { return replayEffects(effects, o) }

func (o *memOverlay) bytes() int { return len(o.log) }
func (o *memOverlay) Close()     {}

// TestMemOverlayMatchesTheEngine: the core transcripts' memory state and
// its overlays read and stage as the driver's engine and Pebble batch do,
// so that what the transcripts show of evaluation, splits and merges holds
// of the driver. Random writes go to an overlay of each; their reads must
// agree all along, and so must the states once both apply the effects
// they captured.
func TestMemOverlayMatchesTheEngine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		eng, err := storage.Open(vfs.NewMem(), "/e", storage.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		mem := newMemState()
		d := Descriptor{ID: 1}
		key := rapid.SampledFrom([]string{"a", "b", "c", "d", "e"})
		value := rapid.SampledFrom([]string{"1", "2", "3"})
		compare := func(what string, e, m writeState) {
			for _, k := range []string{"a", "b", "c", "d", "e"} {
				ev, eerr := e.Get([]byte(k))
				mv, merr := m.Get([]byte(k))
				if string(ev) != string(mv) || (eerr == nil) != (merr == nil) {
					t.Fatalf("%s: %s is %q (%v) in the engine, %q (%v) in memory", what, k, ev, eerr, mv, merr)
				}
				ev, eerr = e.GetRangeLocal(d.ID, []byte(k))
				mv, merr = m.GetRangeLocal(d.ID, []byte(k))
				if string(ev) != string(mv) || (eerr == nil) != (merr == nil) {
					t.Fatalf("%s: range-local %s is %q (%v) in the engine, %q (%v) in memory", what, k, ev, eerr, mv, merr)
				}
			}
			ekvs, _, err1 := e.Scan([]byte("b"), []byte("e"), 10)
			mkvs, _, err2 := m.Scan([]byte("b"), []byte("e"), 10)
			if err1 != nil || err2 != nil || fmt.Sprint(ekvs) != fmt.Sprint(mkvs) {
				t.Fatalf("%s: scan [b, e) is %v in the engine, %v in memory (%v, %v)", what, ekvs, mkvs, err1, err2)
			}
		}
		for round := range rapid.IntRange(1, 3).Draw(t, "rounds") {
			eo, mo := batchOverlay{eng.NewBatch()}, mem.overlay()
			var captured [][2][]byte // each write's effects: engine's, memory's
			for i := range rapid.IntRange(1, 6).Draw(t, "writes") {
				op := rapid.IntRange(0, 3).Draw(t, "op")
				k, v := []byte(key.Draw(t, "key")), []byte(value.Draw(t, "value"))
				end := []byte(key.Draw(t, "end"))
				if string(end) < string(k) {
					k, end = end, k
				}
				write := func(w writeState) error {
					switch op {
					case 0:
						w.Set(k, v)
					case 1:
						w.Delete(k)
					case 2:
						w.DeleteRange(k, end)
					case 3:
						w.SetRangeLocal(d.ID, k, v)
					}
					return nil
				}
				ee, _ := eo.capture(func() error { return write(eo) })
				me, _ := mo.capture(func() error { return write(mo) })
				captured = append(captured, [2][]byte{ee, me})
				compare(fmt.Sprintf("round %d, write %d", round, i), eo, mo)
			}
			// A rebuilt overlay (rebuildOverlay) holds what the writes did.
			eo.Close()
			mo.Close()
			eo, mo = batchOverlay{eng.NewBatch()}, mem.overlay()
			for _, c := range captured {
				if err := eo.stage(d, c[0]); err != nil {
					t.Fatal(err)
				}
				if err := mo.stage(d, c[1]); err != nil {
					t.Fatal(err)
				}
			}
			compare(fmt.Sprintf("round %d, rebuilt", round), eo, mo)
			eo.Close()
			// Applied: the engine's state and memory's agree.
			b := eng.NewBatch()
			for _, c := range captured {
				if err := b.ApplyEffects(d.ID, d.Start, d.End, c[0]); err != nil {
					t.Fatal(err)
				}
				if err := mem.apply(c[1]); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
			view := batchOverlay{eng.NewBatch()}
			compare(fmt.Sprintf("round %d, applied", round), view, mem)
			view.Close()
		}
	})
}
