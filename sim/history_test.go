package sim

import "testing"

// An operation that starts at the very instant another returns is after it:
// a stale read there must be caught.
func TestBackToBackOperationsAreOrdered(t *testing.T) {
	s := New(1)
	defer s.Close()
	h := s.NewHistory()
	h.Call(0, KVInput{Op: OpPut, Key: "x", Value: "1"}).Return(KVOutput{})
	h.Call(1, KVInput{Op: OpGet, Key: "x"}).Return(KVOutput{Value: ""})
	if err := CheckLinearizable(h, ""); err == nil {
		t.Fatal("a read that missed a write completed before it passed the check")
	}
}

// A write with an unknown outcome may or may not have happened: both reads
// are linearizable.
func TestUnknownWriteMayOrMayNotHappen(t *testing.T) {
	for _, read := range []string{"", "1"} {
		s := New(1)
		h := s.NewHistory()
		h.Call(0, KVInput{Op: OpPut, Key: "x", Value: "1"}).Unknown()
		h.Call(1, KVInput{Op: OpGet, Key: "x"}).Return(KVOutput{Value: read})
		if err := CheckLinearizable(h, ""); err != nil {
			t.Fatalf("read %q after an unknown write: %v", read, err)
		}
		s.Close()
	}
}

// A bounded unknown write may still never have happened; but it cannot take
// effect after its bound.
func TestBoundedUnknownWrite(t *testing.T) {
	check := func(lateRead string) error {
		s := New(1)
		defer s.Close()
		h := s.NewHistory()
		op := h.Call(0, KVInput{Op: OpPut, Key: "x", Value: "1"}).Unknown()
		ret := h.Call(0, KVInput{Op: OpPut, Key: "x", Value: "2"}).Return(KVOutput{})
		h.Bound(op, ret)
		h.Call(1, KVInput{Op: OpGet, Key: "x"}).Return(KVOutput{Value: "2"})
		h.Call(1, KVInput{Op: OpGet, Key: "x"}).Return(KVOutput{Value: lateRead})
		return CheckLinearizable(h, "")
	}
	if err := check("2"); err != nil {
		t.Fatalf("the later write's value after the bound: %v", err)
	}
	// "1" now would need put(x, 1) to take effect after a read that saw
	// "2", past its bound.
	if err := check("1"); err == nil {
		t.Fatal("a bounded unknown write took effect after its bound and the check passed")
	}
}

// Counters: an increment answers the value after it; two increments that
// answer the same value, or a read of a value no increment made, are not
// linearizable; an unknown increment may or may not have counted.
func TestCounterHistories(t *testing.T) {
	type step struct {
		client int
		in     KVInput
		value  string
		unsure bool
	}
	incr, get := KVInput{Op: OpIncr, Key: "n"}, KVInput{Op: OpGet, Key: "n"}
	cases := []struct {
		name  string
		steps []step
		valid bool
	}{
		{"in order", []step{{0, incr, "1", false}, {1, incr, "2", false}, {0, get, "2", false}}, true},
		{"one value twice", []step{{0, incr, "1", false}, {1, incr, "1", false}}, false},
		{"a value skipped", []step{{0, incr, "1", false}, {1, incr, "3", false}}, false},
		{"a read behind", []step{{0, incr, "1", false}, {0, incr, "2", false}, {1, get, "1", false}}, false},
		{"unsure, counted", []step{{0, incr, "", true}, {1, incr, "2", false}}, true},
		{"unsure, not counted", []step{{0, incr, "", true}, {1, incr, "1", false}, {1, get, "1", false}}, true},
	}
	for _, tc := range cases {
		s := New(1)
		h := s.NewHistory()
		for _, st := range tc.steps {
			p := h.Call(st.client, st.in)
			if st.unsure {
				p.Unknown()
			} else {
				p.Return(KVOutput{Value: st.value})
			}
		}
		if err := CheckLinearizable(h, ""); (err == nil) != tc.valid {
			t.Errorf("%s: valid %v, check said %v", tc.name, tc.valid, err)
		}
		s.Close()
	}
}
