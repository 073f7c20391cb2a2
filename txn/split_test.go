package txn

import (
	"bytes"
	"testing"

	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// TestSplitKeepsRows: with Options.RowPrefix, a split falls before the
// row the halving key belongs to, or just after it when the range starts
// inside (or at) that row, and nowhere when the range is one row; without
// it, before the halving key's own run.
func TestSplitKeepsRows(t *testing.T) {
	// Rows are "row<n>/": "row1/a", "row1/b" and "row1/c" are one row.
	row := func(key []byte) []byte {
		if i := bytes.IndexByte(key, '/'); bytes.HasPrefix(key, []byte("row")) && i >= 0 {
			return key[:i+1]
		}
		return nil
	}
	stored := func(k string) []byte { return storage.MVCCRouteKey(spaceKey([]byte(k))) }
	bound := func(k string) []byte { return storage.MVCCSplitKeyOf(spaceKey([]byte(k))) }
	clock := hlc.NewClock(&movingClock{}, hlc.DefaultMaxOffset)
	rows := NewMachine(clock, Options{RowPrefix: row})
	plain := NewMachine(clock, Options{})
	for _, c := range []struct {
		m                 *Machine
		start, end, halve string
		want              string // "": nowhere
	}{
		{rows, "a", "z", "row1/b", "row1/"},
		{rows, "a", "z", "other", "other"},       // not in a row: its own run
		{rows, "row1/", "z", "row1/b", "row10"},  // the range starts at the row: after it
		{rows, "row1/a", "z", "row1/c", "row10"}, // ... or inside it
		{rows, "row1/", "row1/z", "row1/b", ""},  // one row: nowhere
		{rows, "a", "row1/b", "row1/a", "row1/"}, // the range ends inside the row: before it
		{rows, "row1/a", "row1/c", "row1/b", ""}, // inside one row on both sides
		{plain, "a", "z", "row1/b", "row1/b"},    // no rows: any run
		{plain, "row1/b", "z", "row1/b", ""},     // never at the range's start
	} {
		got := c.m.SplitKey(bound(c.start), bound(c.end), stored(c.halve))
		var want []byte
		if c.want != "" {
			want = bound(c.want)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("split of [%s, %s) near %s = %q, want %q (rows: %t)", c.start, c.end, c.halve, got, want, c.m == rows)
		}
	}
}
