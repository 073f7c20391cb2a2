package redis

import "testing"

var memoryCases = [][]string{
	{"memory help", "MEMORY HELP x", "memory", "memory bogus", "memory purge", "memory doctor", "memory malloc-stats", "memory doctor x"},
	{"memory usage k", "set k v", "memory usage k", "memory usage k samples 0", "memory usage k SAMPLES 5 samples 1",
		"memory usage k samples -1", "memory usage k samples x", "memory usage k samples", "memory usage k bogus", "memory usage k bogus 1",
		"memory usage nosuch samples x"},
	{"rpush l a b c", "hset h f v", "zadd z 1 m", "sadd s 1 2", "xadd x 1-1 f v",
		"memory usage l", "memory usage h", "memory usage z", "memory usage s", "memory usage x"},
}

func TestMemoryMatchesRedis(t *testing.T) { matchRedis(t, memoryCases, matchOptions{}) }

// TestMemoryUsageCountsRecords: MEMORY USAGE grows with what the key
// holds, and counts every record whatever SAMPLES says.
func TestMemoryUsageCountsRecords(t *testing.T) {
	st := NewMemStore()
	usage := func(args ...string) int64 {
		r := Exec(ReadOnly(st), 1, 1, toArgs(append([]string{"memory", "usage", "h"}, args...)))
		if r.Kind != KindInt {
			t.Fatalf("MEMORY USAGE: %v", r)
		}
		return r.Int
	}
	Exec(st, 1, 1, toArgs([]string{"hset", "h", "f1", "v"}))
	one := usage()
	for i := range 100 {
		Exec(st, 1, 1, toArgs([]string{"hset", "h", "field" + string(rune('a'+i%26)) + string(rune('a'+i/26)), "0123456789"}))
	}
	if many := usage(); many <= one+100*10 {
		t.Fatalf("MEMORY USAGE of 101 fields %d, of one %d", many, one)
	}
	if usage("samples", "1") != usage("samples", "0") {
		t.Fatal("SAMPLES changed the count")
	}
}
