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
