package storage

import (
	"bytes"
	"cmp"
	"errors"
	"testing"

	"pgregory.net/rapid"
)

func drawKey(rt *rapid.T, label string) Key {
	kind := rapid.SampledFrom([]KeyKind{KindMeta, KindLog, KindHardState, KindApplied, KindTruncated, KindSnapshot, KindData, KindLocal}).Draw(rt, label+".kind")
	k := Key{Kind: kind}
	switch kind {
	case KindMeta:
		k.Name = rapid.SampledFrom([]string{metaVersion, metaClusterID, metaNodeID, metaCluster}).Draw(rt, label+".name")
	case KindData:
		k.User = rapid.SliceOfN(rapid.Byte(), 0, 6).Draw(rt, label+".user")
	default:
		// Small values too, so that two keys often share a range.
		small := rapid.OneOf(rapid.Uint64Range(0, 3), rapid.Uint64())
		k.Range = RangeID(small.Draw(rt, label+".range"))
		if kind == KindLog {
			k.Index = small.Draw(rt, label+".index")
		}
		if kind == KindLocal {
			k.User = rapid.SliceOfN(rapid.Byte(), 0, 6).Draw(rt, label+".user")
		}
	}
	return k
}

// TestKeyRoundTrip: DecodeKey inverts Encode for every kind of key.
func TestKeyRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		k := drawKey(rt, "k")
		got, err := DecodeKey(k.Encode())
		if err != nil {
			rt.Fatalf("DecodeKey(%s): %v", k, err)
		}
		if got.Kind != k.Kind || got.Name != k.Name || got.Range != k.Range || got.Index != k.Index || !bytes.Equal(got.User, k.User) {
			rt.Fatalf("DecodeKey(Encode(%s)) = %s", k, got)
		}
	})
}

// order is the order the layout promises: metadata, then ranges by ID
// (within a range, the log by index), then user keys by their bytes.
func order(a, b Key) int {
	space := func(k Key) int {
		switch k.Kind {
		case KindMeta:
			return 0
		case KindData:
			return 2
		}
		return 1
	}
	if c := cmp.Compare(space(a), space(b)); c != 0 {
		return c
	}
	switch space(a) {
	case 0:
		return cmp.Compare(a.Name, b.Name)
	case 2:
		return bytes.Compare(a.User, b.User)
	}
	if c := cmp.Compare(a.Range, b.Range); c != 0 {
		return c
	}
	if a.Kind == KindLog && b.Kind == KindLog {
		return cmp.Compare(a.Index, b.Index)
	}
	if a.Kind == KindLocal && b.Kind == KindLocal {
		return bytes.Compare(a.User, b.User)
	}
	return 2 // different suffixes: any fixed order will do
}

// TestKeyOrder: encoded keys sort as the layout promises, and a range's
// keys, log included, all lie in [rangePrefix, rangeEnd), the log in
// [logKey(0), logEnd).
func TestKeyOrder(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a, b := drawKey(rt, "a"), drawKey(rt, "b")
		want := order(a, b)
		got := bytes.Compare(a.Encode(), b.Encode())
		if want != 2 && got != want {
			rt.Fatalf("compare(%s, %s) = %d, want %d", a, b, got, want)
		}
		if a.Kind != KindMeta && a.Kind != KindData {
			k := a.Encode()
			if bytes.Compare(k, rangePrefix(a.Range)) < 0 || bytes.Compare(k, rangeEnd(a.Range)) >= 0 {
				rt.Fatalf("%s outside its range's span", a)
			}
			inLog := bytes.Compare(k, logKey(a.Range, 0)) >= 0 && bytes.Compare(k, logEnd(a.Range)) < 0
			if inLog != (a.Kind == KindLog) {
				rt.Fatalf("%s: in the log span is %t", a, inLog)
			}
			ks := localSpace(a.Range)
			inLocal := bytes.Compare(k, ks.prefix) >= 0 && bytes.Compare(k, ks.end) < 0
			if inLocal != (a.Kind == KindLocal) {
				rt.Fatalf("%s: in the range-local span is %t", a, inLocal)
			}
		}
		if a.Kind == KindData {
			if k := a.Encode(); bytes.Compare(k, dataSpace.end) >= 0 {
				rt.Fatalf("%s beyond the data keyspace", a)
			}
		}
	})
}

func TestDecodeKeyRejects(t *testing.T) {
	for _, raw := range [][]byte{nil, {0x03}, {prefixRange, 1, 2}, append(rangePrefix(1), 'z'), append(logKey(1, 2), 0)} {
		if k, err := DecodeKey(raw); !errors.Is(err, ErrBadKey) {
			t.Errorf("DecodeKey(%q) = %v, %v; want ErrBadKey", raw, k, err)
		}
	}
	if got := FormatKey(logKey(7, 42)); got != "/range/7/log/42" {
		t.Errorf("FormatKey = %q", got)
	}
	if got := FormatKey(hardStateKey(7)); got != "/range/7/hardstate" {
		t.Errorf("FormatKey = %q", got)
	}
	if got := FormatKey(rangeEnd(^RangeID(0))); got != `?"\x02"` && got != `/data/""` {
		t.Errorf("FormatKey(end of ranges) = %q", got)
	}
}
