package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestEffectsRoundTrip: writes staged after a mark, detached as effects
// and applied to another batch, leave the same data; effects that reach
// outside their range are refused.
func TestEffectsRoundTrip(t *testing.T) {
	e := openEngine(t, vfs.NewMem(), testOptions())
	seed := e.NewBatch()
	seed.Set([]byte("b1"), []byte("old"))
	seed.Set([]byte("b9"), []byte("gone"))
	if err := seed.Commit(false); err != nil {
		t.Fatal(err)
	}

	eval := e.NewBatch()
	defer eval.Close()
	eval.Set([]byte("b0"), []byte("before the mark"))
	m := eval.Mark()
	eval.Set([]byte("b1"), []byte("new"))
	eval.Delete([]byte("b2"))
	eval.DeleteRange([]byte("b5"), []byte("c"))
	eval.SetRangeLocal(7, []byte("now"), []byte{1})
	effects := eval.EffectsSince(m)

	apply := e.NewBatch()
	if err := apply.ApplyEffects(7, []byte("b"), []byte("c"), effects); err != nil {
		t.Fatal(err)
	}
	if v, err := apply.Get([]byte("b1")); err != nil || string(v) != "new" {
		t.Fatalf("b1 through the batch: %q %v", v, err)
	}
	if err := apply.Commit(false); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"b0": "", "b1": "new", "b9": ""} {
		v, err := e.Get([]byte(k))
		if want == "" && !errors.Is(err, ErrNotFound) || want != "" && string(v) != want {
			t.Errorf("%s = %q, %v; want %q", k, v, err, want)
		}
	}
	if v, err := e.GetRangeLocal(7, []byte("now")); err != nil || len(v) != 1 {
		t.Errorf("range-local now = %v, %v", v, err)
	}

	// The same effects, for a range that does not hold b1..c, or for
	// another range's local keys: refused, nothing staged.
	for _, tc := range []struct {
		id         RangeID
		start, end string
	}{{7, "c", "d"}, {7, "b", "b3"}, {8, "b", "c"}} {
		b := e.NewBatch()
		if err := b.ApplyEffects(tc.id, []byte(tc.start), []byte(tc.end), effects); !errors.Is(err, ErrBadEffects) {
			t.Errorf("range %d [%s, %s): %v, want ErrBadEffects", tc.id, tc.start, tc.end, err)
		}
		if !b.Empty() {
			t.Errorf("range %d [%s, %s): refused effects were staged", tc.id, tc.start, tc.end)
		}
		b.Close()
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, append(append([]byte{}, effects[:12]...), 0xff, 0xff)} {
		b := e.NewBatch()
		if err := b.ApplyEffects(7, []byte("b"), []byte("c"), bad); !errors.Is(err, ErrBadEffects) {
			t.Errorf("%x: %v, want ErrBadEffects", bad, err)
		}
		b.Close()
	}
}

// TestApplyEffectsOutside: effects applied around a skipped span leave it
// as it was, range deletions cut around it included.
func TestApplyEffectsOutside(t *testing.T) {
	e := openEngine(t, vfs.NewMem(), testOptions())
	commit(t, e, func(b *Batch) {
		for _, k := range []string{"b1", "b4", "b6", "b8"} {
			b.Set([]byte(k), []byte("old"))
		}
	})
	eval := e.NewBatch()
	defer eval.Close()
	m := eval.Mark()
	eval.Set([]byte("b1"), []byte("new"))
	eval.Set([]byte("b4"), []byte("new"))
	eval.DeleteRange([]byte("b5"), nil)
	eval.SetRangeLocal(7, []byte("now"), []byte{1})
	effects := eval.EffectsSince(m)
	b := e.NewBatch()
	if err := b.ApplyEffectsOutside(7, []byte("b"), nil, effects, []Span{{Start: []byte("b3"), End: []byte("b7")}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"b1": "new", "b4": "old", "b6": "old", "b8": ""} {
		v, err := e.Get([]byte(k))
		if want == "" && !errors.Is(err, ErrNotFound) || want != "" && string(v) != want {
			t.Errorf("%s = %q, %v; want %q", k, v, err, want)
		}
	}
	if v, err := e.GetRangeLocal(7, []byte("now")); err != nil || len(v) != 1 {
		t.Errorf("range-local now = %v, %v", v, err)
	}
}

func TestSpanMinus(t *testing.T) {
	sp := func(a, b string) Span {
		s := Span{Start: []byte(a)}
		if b != "" {
			s.End = []byte(b)
		}
		return s
	}
	for _, tc := range []struct {
		s    Span
		cut  []Span
		want string
	}{
		{sp("a", "z"), []Span{sp("c", "e")}, "[a,c) [e,z)"},
		{sp("a", ""), []Span{sp("c", "e"), sp("x", "")}, "[a,c) [e,x)"},
		{sp("c", "d"), []Span{sp("a", "z")}, ""},
		{sp("c", "d"), []Span{sp("e", "f")}, "[c,d)"},
		{sp("c", ""), []Span{sp("a", "d")}, "[d,∞)"},
	} {
		var got []string
		for _, p := range SpanMinus(tc.s, tc.cut) {
			end := string(p.End)
			if p.End == nil {
				end = "∞"
			}
			got = append(got, "["+string(p.Start)+","+end+")")
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%v minus %v = %q, want %q", tc.s, tc.cut, g, tc.want)
		}
	}
}
