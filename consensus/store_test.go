package consensus

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestScanPagesThroughRanges scans the whole keyspace page by page: each
// page stays within one range and says where the next one starts.
func TestScanPagesThroughRanges(t *testing.T) {
	c := newBenchCluster(t)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := NewClient(c.rts[0], c.layout, "scan-test")
	var want []string
	for _, k := range []string{"a", "b", "c", "g", "h", "i", "o", "p", "q", "r", "z"} {
		if err := cl.Put(ctx, []byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	if err := cl.Delete(ctx, []byte("c")); err != nil {
		t.Fatal(err)
	}
	want = append(want[:2], want[3:]...)

	var got []string
	pages := 0
	for start := []byte(""); start != nil; pages++ {
		kvs, resume, err := cl.Scan(ctx, start, nil, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) > 2 {
			t.Fatalf("page of %d pairs, limit 2", len(kvs))
		}
		for _, kv := range kvs {
			if string(kv.Value) != "v"+string(kv.Key) {
				t.Fatalf("scan: %q=%q", kv.Key, kv.Value)
			}
			if d := c.layout.Lookup(start); !d.Contains(kv.Key) {
				t.Fatalf("page from %q returned %q outside its range %v", start, kv.Key, d)
			}
			got = append(got, string(kv.Key))
		}
		start = resume
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scan = %v, want %v", got, want)
	}
	// A bounded span within one range.
	kvs, resume, err := cl.Scan(ctx, []byte("a"), []byte("c"), 10)
	if err != nil || len(kvs) != 2 || resume != nil {
		t.Fatalf("scan [a,c) = %v resume %q err %v", kvs, resume, err)
	}
}
