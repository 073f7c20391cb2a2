package consensus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestBatches: a batch applies in order and atomically, reporting each
// compare-and-set's outcome; one whose keys span ranges is refused whole.
func TestBatches(t *testing.T) {
	c := newBenchCluster(t)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(c.routers[1], "batcher")
	if err := cl.Put(ctx, []byte("d"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	got, err := cl.Batch(ctx, []BatchOp{
		{Op: OpPut, Key: []byte("a"), Value: []byte("1")},
		{Op: OpCAS, Key: []byte("a"), Expect: []byte("1"), Value: []byte("2")}, // sees the put before it
		{Op: OpCAS, Key: []byte("b"), Expect: []byte("x"), Value: []byte("3")}, // does not match
		{Op: OpDelete, Key: []byte("d")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[true true false true]" {
		t.Fatalf("outcomes %v, want [true true false true]", got)
	}
	for key, want := range map[string]string{"a": "2", "b": "", "d": ""} {
		v, found, err := cl.Get(ctx, []byte(key))
		if err != nil || string(v) != want || found != (want != "") {
			t.Fatalf("get %s = %q, %t, %v; want %q", key, v, found, err, want)
		}
	}

	// "a" and "z" are in different ranges (the layout splits at h and p).
	_, err = cl.Batch(ctx, []BatchOp{{Op: OpPut, Key: []byte("c"), Value: []byte("1")}, {Op: OpPut, Key: []byte("z"), Value: []byte("1")}})
	if !errors.Is(err, ErrCrossRange) || !errors.Is(err, ErrNotApplied) {
		t.Fatalf("a batch across ranges: %v, want ErrCrossRange and ErrNotApplied", err)
	}
	if _, found, _ := cl.Get(ctx, []byte("c")); found {
		t.Fatal("a refused batch wrote part of itself")
	}
	if _, err := cl.Batch(ctx, []BatchOp{{Op: OpGet, Key: []byte("a")}}); !errors.Is(err, ErrNotApplied) {
		t.Fatalf("a batch holding a read: %v, want ErrNotApplied", err)
	}
	if _, err := cl.Batch(ctx, nil); !errors.Is(err, ErrNotApplied) {
		t.Fatalf("an empty batch: %v, want ErrNotApplied", err)
	}
}

// TestMalformedRequestIsRefusedAtOnce: a request the leader cannot make
// sense of is a definite refusal, answered at once, not retried until the
// caller's deadline (as it was until 2026-12-03).
func TestMalformedRequestIsRefusedAtOnce(t *testing.T) {
	c := newBenchCluster(t)
	defer c.close()
	cl := NewClient(c.routers[1], "malformed")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Put(ctx, []byte("a"), []byte("1")); err != nil { // a leader is known
		t.Fatal(err)
	}
	for name, req := range map[string]Request{
		"a batch that does not decode": {Op: OpBatch, Key: []byte("a"), Value: []byte{0xff, 0xff}},
		"a meta update that does not":  {Op: OpMetaUpdate, Key: MetaStart, Value: []byte{1}},
	} {
		start := time.Now()
		_, err := cl.Do(ctx, req)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrNotApplied) {
			t.Fatalf("%s: %v, want ErrMalformed and ErrNotApplied", name, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: answered only at the deadline (%v)", name, time.Since(start))
		}
	}
}
