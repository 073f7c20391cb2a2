package consensus

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestLoadSplitKey: the median sampled key, only when it divides the
// samples and lies inside the range.
func TestLoadSplitKey(t *testing.T) {
	d := Descriptor{ID: 1, Start: []byte("b"), End: []byte("y")}
	keys := func(ks ...string) [][]byte {
		var out [][]byte
		for len(out) < loadSamples {
			for _, k := range ks {
				out = append(out, []byte(k))
			}
		}
		return out[:loadSamples]
	}
	cases := []struct {
		sample [][]byte
		want   string
	}{
		{keys("c", "d", "e", "f"), "e"},
		{keys("k"), ""},                                    // one hot key
		{keys("c", "k", "k", "k"), "k"},                    // the hot key split off from the rest
		{keys("c", "k", "k", "k", "k", "k", "k", "k"), ""}, // an eighth on the left: not worth a range
		{keys("b", "b", "b", "c"), ""},                     // the median is the range's start
		{keys("c", "d")[:loadSamples/4], ""},
	}
	for _, c := range cases {
		got := loadSplitKey(c.sample, d)
		if string(got) != c.want || (got == nil) != (c.want == "") {
			t.Errorf("loadSplitKey(%q) = %q, want %q", c.sample[:4], got, c.want)
		}
	}
}

// TestRangesSplitByLoad: ranges read and written above SplitQPS split
// at keys among those the requests touch, with no size limit in sight;
// every key still reads back.
func TestRangesSplitByLoad(t *testing.T) {
	c := newTestCluster(t, Options{SplitQPS: 200})
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 100
	setup := NewClient(c.routers[0], "setup")
	for i := range n {
		if err := setup.Put(ctx, []byte(fmt.Sprintf("k%03d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := NewClient(c.routers[w%3], fmt.Sprintf("load-%d", w))
			for i := w; ; i += 7 {
				select {
				case <-stop:
					return
				default:
				}
				key := []byte(fmt.Sprintf("k%03d", i%n))
				if _, _, err := cl.Get(ctx, key); err != nil && ctx.Err() == nil {
					t.Errorf("GET %s: %v", key, err)
					return
				}
			}
		}()
	}
	// The leaders publish what they serve (a rebalancer weighs by it).
	for loaded := false; !loaded; {
		for _, st := range c.stores {
			for _, q := range st.LeaderLoad() {
				loaded = loaded || q > 0
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no leader published any load")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ranges []Descriptor
	for {
		var err error
		if ranges, err = setup.Ranges(ctx); err != nil {
			t.Fatal(err)
		}
		inK := 0
		for _, d := range ranges {
			if bytes.HasPrefix(d.Start, []byte("k")) {
				inK++
			}
		}
		if inK >= 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no load-based split within a minute: %v", ranges)
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	for i := range n {
		if v, found, err := setup.Get(ctx, []byte(fmt.Sprintf("k%03d", i))); err != nil || !found || string(v) != "v" {
			t.Fatalf("k%03d = %q, %t, %v after the splits", i, v, found, err)
		}
	}
	t.Logf("ranges after load: %v", ranges)
}
