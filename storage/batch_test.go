package storage

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"
)

// TestBatchReadsOwnLocalWrites checks the batch's cache of its own
// range-local writes against Pebble's own answer: after any sequence of
// sets, deletes, range deletions and applied effects in a batch, and of
// commits of other batches under it, every range-local read through the
// batch returns what Pebble's indexed batch returns for the key.
func TestBatchReadsOwnLocalWrites(t *testing.T) {
	rapid.Check(t, checkOwnLocalWrites)
}

func checkOwnLocalWrites(rt *rapid.T) {
	e, err := Open(vfs.NewMem(), "/db", testOptions())
	if err != nil {
		rt.Fatalf("Open: %v", err)
	}
	defer e.Close()
	ids := []RangeID{1, 2}
	keys := [][]byte{[]byte("now"), []byte("last-effect"), []byte("client/1"), []byte("client/2")}
	drawID := func() RangeID { return rapid.SampledFrom(ids).Draw(rt, "id") }
	drawKey := func() []byte { return rapid.SampledFrom(keys).Draw(rt, "key") }
	drawValue := func() []byte { return rapid.SliceOfN(rapid.Byte(), 0, 6).Draw(rt, "value") }
	// stageOne stages one random range-local operation in x.
	stageOne := func(x *Batch) {
		switch rapid.IntRange(0, 9).Draw(rt, "op") {
		case 0, 1, 2, 3:
			x.SetRangeLocal(drawID(), drawKey(), drawValue())
		case 4, 5:
			x.DeleteRangeLocal(drawID(), drawKey())
		case 6:
			x.ClearRangeLocal(drawID())
		case 7:
			x.Set(drawKey(), drawValue()) // a user key of the same name
		default:
			x.SetRangeLocal(drawID(), nil, drawValue()) // the empty key, first of the space
		}
	}

	b := e.NewBatch()
	defer b.Close()
	for step := range rapid.IntRange(1, 40).Draw(rt, "steps") {
		switch rapid.IntRange(0, 5).Draw(rt, "kind") {
		case 0, 1, 2:
			stageOne(b)
		case 3:
			// Effects evaluated in another batch, applied in this one (as a
			// follower applies a leader's, or the overlay is rebuilt).
			src := e.NewBatch()
			id := drawID()
			m := src.Mark()
			for range rapid.IntRange(1, 4).Draw(rt, "effectOps") {
				switch rapid.IntRange(0, 2).Draw(rt, "effectOp") {
				case 0:
					src.SetRangeLocal(id, drawKey(), drawValue())
				case 1:
					src.DeleteRangeLocal(id, drawKey())
				default:
					src.ClearRangeLocal(id)
				}
			}
			effects := src.EffectsSince(m)
			src.Close()
			if err := b.ApplyEffects(id, nil, nil, effects); err != nil {
				rt.Fatalf("ApplyEffects: %v", err)
			}
		case 4:
			// The engine changes under the batch: the keys it did not
			// write must read the new values.
			other := e.NewBatch()
			stageOne(other)
			if err := other.Commit(false); err != nil {
				rt.Fatalf("Commit: %v", err)
			}
		default:
			// A user-key range deletion never touches range-local data.
			b.DeleteRange(nil, nil)
		}
		for _, id := range ids {
			for _, k := range append(keys, nil) {
				got, gotErr := b.GetRangeLocal(id, k)
				want, wantErr := get(b.b, localSpace(id).key(k))
				if errors.Is(gotErr, ErrNotFound) != errors.Is(wantErr, ErrNotFound) || !bytes.Equal(got, want) || (got == nil) != (want == nil) {
					rt.Fatalf("step %d: range %d key %q: cached read %q, %v; Pebble's %q, %v", step, id, k, got, gotErr, want, wantErr)
				}
			}
		}
	}
}

// TestEffectsOverOwnWrite: effects applied over a key the batch wrote
// itself are what the batch reads back.
func TestEffectsOverOwnWrite(t *testing.T) {
	if msg := effectsOverOwnWrite(t); msg != "" {
		t.Fatal(msg)
	}
}

// effectsOverOwnWrite sets a range-local key in a batch, applies effects
// that set it again, and reports what is wrong with the value the batch
// reads back ("" if nothing).
func effectsOverOwnWrite(t *testing.T) string {
	e := openEngine(t, vfs.NewMem(), testOptions())
	defer e.Close()
	b := e.NewBatch()
	defer b.Close()
	b.SetRangeLocal(1, []byte("now"), []byte("old"))
	src := e.NewBatch()
	m := src.Mark()
	src.SetRangeLocal(1, []byte("now"), []byte("new"))
	effects := src.EffectsSince(m)
	src.Close()
	if err := b.ApplyEffects(1, nil, nil, effects); err != nil {
		t.Fatalf("ApplyEffects: %v", err)
	}
	if got, err := b.GetRangeLocal(1, []byte("now")); err != nil || string(got) != "new" {
		return fmt.Sprintf("after effects that set it to %q, the batch reads %q, %v", "new", got, err)
	}
	return ""
}
