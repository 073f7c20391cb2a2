package consensus

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// hinter is a StateMachine over a range's hint word: "or <n>" sets bits n
// and replies the word; a query replies the word.
type hinter struct{}

func (hinter) Apply(d RangeData, cmd []byte, meta CommandMeta) ([]byte, error) {
	n, err := strconv.ParseUint(string(cmd[len("or "):]), 10, 64)
	if err != nil {
		return nil, err
	}
	if err := d.SetHints(d.Hints() | n); err != nil {
		return nil, err
	}
	return []byte(strconv.FormatUint(d.Hints(), 10)), nil
}

func (hinter) Query(d RangeData, cmd []byte, meta CommandMeta) ([]byte, error) {
	if d.SetHints(1) == nil {
		return nil, fmt.Errorf("a query set the hints")
	}
	return []byte(strconv.FormatUint(d.Hints(), 10)), nil
}

// TestHintsFollowTheRange: a range's hint word is kept by every later
// command, read by queries (served under the lease or not), survives a
// leader change and a split into both halves, and starts at zero after
// a merge (RangeData.Hints).
func TestHintsFollowTheRange(t *testing.T) {
	c := newTestCluster(t, Options{Keyspaces: []Keyspace{{Name: "hints", Start: []byte{}, End: []byte{0xf0}, Machine: hinter{}}}})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "hints-test")
	hints := func(key string) string {
		t.Helper()
		v, err := cl.Query(ctx, []byte(key), []byte("?"))
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	or := func(key string, n int) string {
		t.Helper()
		v, err := cl.Command(ctx, []byte(key), []byte("or "+strconv.Itoa(n)))
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if h := hints("j"); h != "0" {
		t.Fatalf("a new range's hints = %s; want 0", h)
	}
	if h := or("j", 1); h != "1" {
		t.Fatalf("hints after or 1 = %s", h)
	}
	if h := or("k", 4); h != "5" {
		t.Fatalf("hints after or 4 = %s; want 5 (kept from the earlier command)", h)
	}
	if h := hints("a"); h != "0" {
		t.Fatalf("another range's hints = %s; want 0", h)
	}
	// Another node leads the range: it holds the word too.
	d := c.layout.Lookup([]byte("j"))
	if err := cl.TransferLeadership(ctx, []byte("j"), d.Replicas[1]); err != nil {
		t.Fatal(err)
	}
	if h := hints("j"); h != "5" {
		t.Fatalf("hints under a new leader = %s; want 5", h)
	}
	if _, err := cl.Split(ctx, []byte("l")); err != nil {
		t.Fatal(err)
	}
	if hl, hr := hints("j"), hints("m"); hl != "5" || hr != "5" {
		t.Fatalf("hints after a split = %s and %s; want 5 on both sides", hl, hr)
	}
	if err := cl.Merge(ctx, []byte("l")); err != nil {
		t.Fatal(err)
	}
	if h := hints("j"); h != "0" {
		t.Fatalf("hints after a merge = %s; want 0", h)
	}
}
