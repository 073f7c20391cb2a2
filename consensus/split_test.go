package consensus

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// TestRangesSplitBySize writes a few hundred keys into a three-node
// cluster whose ranges split past 4 KiB: the ranges split by themselves,
// every node ends up with the same ranges tiling the keyspace, and a
// client whose range cache knows only the layout reads and scans every key.
func TestRangesSplitBySize(t *testing.T) {
	c := newTestCluster(t, Options{SplitBytes: 4 << 10})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	writer := NewClient(c.routers[0], "writer")
	value := bytes.Repeat([]byte("v"), 100)
	const n = 400
	for i := range n {
		if err := writer.Put(ctx, []byte(fmt.Sprintf("k%04d", i)), value); err != nil {
			t.Fatal(err)
		}
	}
	// A scan over the user keys (the system keyspace, where range IDs
	// come from, sorts last) reaches every range.
	fresh := NewClient(NewRouter(c.rts[2], c.layout), "reader")
	var got int
	var pages int
	for start := []byte(""); start != nil; pages++ {
		kvs, resume, err := fresh.Scan(ctx, start, SystemKeyPrefix, MaxScanLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if want := fmt.Sprintf("k%04d", got); string(kv.Key) != want {
				t.Fatalf("scan: key %q, want %q", kv.Key, want)
			}
			got++
		}
		start = resume
	}
	if got != n {
		t.Fatalf("scanned %d keys, want %d", got, n)
	}
	ranges := fresh.router.Ranges()
	if len(ranges) < 6 {
		t.Fatalf("%d ranges after %d KiB in ranges of at most 4 KiB: %v", len(ranges), n*105/1024, ranges)
	}
	if pages < len(ranges) {
		t.Fatalf("a scan over %d ranges took %d pages", len(ranges), pages)
	}
	for _, k := range []string{"k0000", "k0199", "k0399"} {
		v, found, err := fresh.Get(ctx, []byte(k))
		if err != nil || !found || !bytes.Equal(v, value) {
			t.Fatalf("get %s = %q, %t, %v", k, v, found, err)
		}
	}
	t.Logf("%d ranges: %v", len(ranges), ranges)
}
