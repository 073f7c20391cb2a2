package topo

import (
	"slices"
	"testing"
)

// Known answers of redis-server's CLUSTER KEYSLOT.
func TestSlot(t *testing.T) {
	for key, want := range map[string]int{
		"foo": 12182, "bar": 5061, "hello": 866, "": 0,
		"{user1000}.following": 3443, "{user1000}.followers": 3443, "user1000": 3443,
		"foo{}{bar}": Slot("foo{}{bar}"), "{}foo": Slot("{}foo"),
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	// An empty tag hashes the whole key; only the first tag counts.
	if Slot("foo{}{bar}") == Slot("bar") || Slot("{a}{b}") != Slot("a") {
		t.Error("hash tag rules")
	}
}

func TestRangesAndKeys(t *testing.T) {
	rs := EvenRanges(3)
	if rs[0].First != 0 || rs[2].Last != SlotCount-1 || rs[1].First != rs[0].Last+1 {
		t.Fatalf("EvenRanges(3) = %+v", rs)
	}
	for _, r := range rs {
		k := KeyIn("reg-7-1", r)
		if RangeOf(rs, k) != r.ID {
			t.Errorf("KeyIn(%d) = %q in range %d", r.ID, k, RangeOf(rs, k))
		}
	}
	if f, l, err := ParseSlots("5461-10922"); err != nil || f != 5461 || l != 10922 {
		t.Errorf("ParseSlots: %d %d %v", f, l, err)
	}
	for _, bad := range []string{"", "3", "5-2", "0-16384", "a-b"} {
		if _, _, err := ParseSlots(bad); err == nil {
			t.Errorf("ParseSlots(%q) accepted", bad)
		}
	}
}

func TestJudge(t *testing.T) {
	r := Range{ID: 1, Replicas: []int{1, 2, 3}}
	cases := []struct {
		name string
		net  Net
		from int
		want Quorum
		maj  []int
	}{
		{"calm", Net{}, 1, QuorumOK, []int{1, 2}},
		{"one down", Net{Down: []int{2}}, 1, QuorumOK, []int{1, 3}},
		{"two down", Net{Down: []int{2, 3}}, 1, QuorumDown, nil},
		{"minority side", Net{Cut: cutBetween([]int{1}, []int{2, 3})}, 1, QuorumUnreachable, []int{2, 3}},
		{"majority side", Net{Cut: cutBetween([]int{1}, []int{2, 3})}, 2, QuorumOK, []int{2, 3}},
		{"one-way cut is a cut", Net{Cut: [][2]int{{1, 2}, {1, 3}}}, 1, QuorumUnreachable, []int{2, 3}},
		{"ring of three with one down", Net{Down: []int{3}, Cut: [][2]int{{1, 2}}}, 1, QuorumSplit, nil},
		{"unknown replicas", Net{}, 1, QuorumUnknown, nil},
	}
	for _, c := range cases {
		rr := r
		if c.want == QuorumUnknown {
			rr.Replicas = nil
		}
		q, maj := Judge(rr, c.net, c.from)
		if q != c.want || !slices.Equal(maj, c.maj) {
			t.Errorf("%s: Judge = %v %v, want %v %v", c.name, q, maj, c.want, c.maj)
		}
	}
}

func cutBetween(a, b []int) (cut [][2]int) {
	for _, x := range a {
		for _, y := range b {
			cut = append(cut, [2]int{x, y}, [2]int{y, x})
		}
	}
	return cut
}
