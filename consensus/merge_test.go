package consensus

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/storage"
)

// TestMerge merges ranges of a three-node cluster back into one while a
// writer keeps writing across them: every write is there afterwards, every
// node holds the same single range for the span, a client with a stale
// cache finds it, and the merged-away range answers nothing any more.
func TestMerge(t *testing.T) {
	c := newTestCluster(t, Options{})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "merger-test")
	for i := range 40 {
		if err := cl.Put(ctx, []byte(fmt.Sprintf("h%03d", i)), []byte("a")); err != nil {
			t.Fatal(err)
		}
	}
	right, err := cl.Split(ctx, []byte("h020"))
	if err != nil {
		t.Fatal(err)
	}
	stale := NewClient(NewRouter(c.rts[1], c.layout), "stale")
	if _, _, err := stale.Get(ctx, []byte("h030")); err != nil { // learns the split
		t.Fatal(err)
	}

	// Merge while another client writes to both halves.
	writeErr := make(chan error, 1)
	go func() {
		w := NewClient(c.routers[2], "writer")
		for i := range 40 {
			if err := w.Put(ctx, []byte(fmt.Sprintf("h%03d", i)), []byte("b")); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	if err := cl.Merge(ctx, []byte("h020")); err != nil {
		t.Fatal(err)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if err := cl.Merge(ctx, []byte("h020")); err == nil {
		t.Fatal("merging a range that no longer starts at h020 succeeded")
	}

	for i := range 40 {
		v, found, err := stale.Get(ctx, []byte(fmt.Sprintf("h%03d", i)))
		if err != nil || !found || !bytes.Equal(v, []byte("b")) {
			t.Fatalf("h%03d = %q, %t, %v after the merge", i, v, found, err)
		}
	}
	// Every node ends with one range over [h, p) and none with the
	// merged-away one.
	deadline := time.Now().Add(20 * time.Second)
	for {
		bad := ""
		for i, st := range c.stores {
			for _, d := range st.Ranges() {
				if d.ID == right {
					bad = fmt.Sprintf("node %d still holds range %d", i+1, right)
				}
				if d.Contains([]byte("h030")) && (!bytes.Equal(d.Start, []byte("h")) || !bytes.Equal(d.End, []byte("p"))) {
					bad = fmt.Sprintf("node %d: %v holds h030", i+1, d)
				}
			}
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(bad)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The merged range splits again at the same key, and the old trigger
	// (kept by a merger that came late) is refused.
	if _, err := cl.Split(ctx, []byte("h020")); err != nil {
		t.Fatal(err)
	}
	old := &mergeTrigger{right: Descriptor{ID: right, Generation: 1, Start: []byte("h020"), End: []byte("p")},
		data: []storage.KeyValue{{Key: []byte("h030"), Value: []byte("old")}}}
	for attempt := 0; ; attempt++ {
		err := cl.finishMerge(ctx, old)
		if err == nil || attempt > 3 {
			break
		}
	}
	if v, _, err := cl.Get(ctx, []byte("h030")); err != nil || string(v) != "b" {
		t.Fatalf("h030 = %q, %v after an old merge trigger came again", v, err)
	}
}

func TestMergeTriggerEncoding(t *testing.T) {
	m := &mergeTrigger{right: Descriptor{ID: 7, Generation: 3, Start: []byte("m"), End: nil}, now: 42,
		data:  []storage.KeyValue{{Key: []byte("m1"), Value: []byte("v")}, {Key: []byte("m2"), Value: []byte{}}},
		local: []storage.KeyValue{{Key: clientKey(9), Value: []byte{0, 0, 0, 0, 0, 0, 0, 5, 1}}}}
	got, err := decodeMergeTrigger(m.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.right.ID != 7 || got.right.Generation != 3 || got.now != 42 || len(got.data) != 2 || len(got.local) != 1 ||
		!bytes.Equal(got.data[0].Key, []byte("m1")) || got.right.End != nil {
		t.Fatalf("decoded %+v", got)
	}
	if _, err := decodeMergeTrigger(m.encode()[:10]); err == nil {
		t.Fatal("a truncated trigger decoded")
	}
	p, err := decodeProposal(encodeMerge(5, m))
	if err != nil || p.merge == nil || p.id != 5 || len(p.merge.summaries) != 0 {
		t.Fatalf("proposal %+v, %v", p, err)
	}
	// With the right-hand range's summaries: kind 8, and they come back.
	m.summaries = []keyspaceSummary{{keyspace: "txn", summary: []byte("s1")}, {keyspace: "other", summary: []byte{}}}
	enc := encodeMerge(5, m)
	if enc[0] != entryMergeSummaries {
		t.Fatalf("a trigger with summaries written as kind %d", enc[0])
	}
	p, err = decodeProposal(enc)
	if err != nil || len(p.merge.summaries) != 2 || p.merge.summaries[0].keyspace != "txn" || string(p.merge.summaries[0].summary) != "s1" {
		t.Fatalf("proposal %+v, %v", p, err)
	}
	enc[0] = entryMerge
	if _, err := decodeProposal(enc); err == nil {
		t.Fatal("a kind-5 trigger with summaries decoded")
	}
	p, err = decodeProposal(encodeFreeze(6, 9))
	if err != nil || p.freeze == nil || *p.freeze != 9 {
		t.Fatalf("proposal %+v, %v", p, err)
	}
}

// TestRangesMergeWhenSmallAndCold fills a cluster whose ranges split past
// 4 KiB, then deletes most keys: the ranges the automatic splits made
// merge back by themselves, the layout's boundaries and an operator's
// split stay, and every key left is still there.
func TestRangesMergeWhenSmallAndCold(t *testing.T) {
	c := newTestCluster(t, Options{SplitBytes: 4 << 10, MergeBytes: 1 << 10})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "writer")
	if _, err := cl.Split(ctx, []byte("k0300")); err != nil { // an operator's split
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 100)
	const n = 400
	for i := range n {
		if err := cl.Put(ctx, []byte(fmt.Sprintf("k%04d", i)), value); err != nil {
			t.Fatal(err)
		}
	}
	full, err := cl.Ranges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if i%50 != 0 {
			if err := cl.Delete(ctx, []byte(fmt.Sprintf("k%04d", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ranges []Descriptor
	for {
		if ranges, err = cl.Ranges(ctx); err != nil {
			t.Fatal(err)
		}
		starts := map[string]bool{}
		for _, d := range ranges {
			starts[string(d.Start)] = true
		}
		if !starts["h"] || !starts["p"] || !starts["k0300"] {
			t.Fatalf("a sticky boundary merged away: %v", ranges)
		}
		if len(ranges) <= len(full)/2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d ranges after deleting most keys (%d when full): %v", len(ranges), len(full), ranges)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := 0; i < n; i += 50 {
		if v, found, err := cl.Get(ctx, []byte(fmt.Sprintf("k%04d", i))); err != nil || !found || !bytes.Equal(v, value) {
			t.Fatalf("k%04d = %q, %t, %v after the merges", i, v, found, err)
		}
	}
	t.Logf("%d ranges full, %d after deleting: %v", len(full), len(ranges), ranges)
}

// TestMergeTooLarge: a range holding more than MaxMergeBytes is not
// merged, and is not left frozen either.
func TestMergeTooLarge(t *testing.T) {
	c := newTestCluster(t, Options{})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := NewClient(c.routers[0], "big")
	if _, err := cl.Split(ctx, []byte("m")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 200<<10)
	for i := range 6 {
		if err := cl.Put(ctx, []byte(fmt.Sprintf("m%d", i)), big); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Merge(ctx, []byte("m")); err == nil || !strings.Contains(err.Error(), "too large to merge") {
		t.Fatalf("merging 1.2 MiB: %v, want too large to merge", err)
	}
	if err := cl.Put(ctx, []byte("m9"), []byte("after")); err != nil {
		t.Fatalf("a write after the refused merge: %v", err)
	}
}
