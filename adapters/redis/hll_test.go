package redis

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// hllHeader is a HyperLogLog header: the encoding and the 8 cache bytes.
func hllHeader(enc byte, card uint64) string {
	h := []byte("HYLL\x00\x00\x00\x00")
	h[4] = enc
	return string(binary.LittleEndian.AppendUint64(h, card))
}

const hllStale = 1 << 63

// hllValues are the raw strings hllCases SET by name ("$name"): foreign,
// hand-made and corrupt HyperLogLogs.
var hllValues = map[string]string{
	"short":      "HYLL\x01",
	"badmagic":   "hyll" + hllHeader(1, 0)[4:] + "\x7f\xff",
	"badenc":     hllHeader(2, hllStale) + "\x7f\xff",
	"shortdense": hllHeader(0, hllStale) + strings.Repeat("\x00", 100),
	"longdense":  hllHeader(0, hllStale) + strings.Repeat("\x00", 12289),
	// A dense value whose registers read 63, past anything a hash gives.
	"fulldense": hllHeader(0, hllStale) + strings.Repeat("\xff", 12288),
	// A dense value of 1 in every register.
	"onesdense": hllHeader(0, hllStale) + strings.Repeat("\x41\x10\x04", 4096),
	// Sparse values: no opcodes, with a valid and a stale cache.
	"noops":      hllHeader(1, 7),
	"noopsstale": hllHeader(1, hllStale),
	// Half the registers, with a stale cache and with a cached count.
	"half":      hllHeader(1, hllStale) + "\x5f\xff",
	"halfvalid": hllHeader(1, 42) + "\x5f\xff",
	// Three times too many registers.
	"toomany": hllHeader(1, hllStale) + "\x7f\xff\x7f\xff\x7f\xff",
	// A VAL run past the last register.
	"valover": hllHeader(1, hllStale) + "\x7f\xff\x80",
	// An XZERO cut after its first byte (the C code reads the terminating
	// zero as its second). Only one PFADD is compared on it: Redis's next
	// ones read bytes its first wrote past the string's end (doc.go).
	"cutxzero": hllHeader(1, hllStale) + "\x7f",
	// Every register as VAL opcodes (value 1, runs of 4), then ZEROs of 1
	// and 64, and XZEROs of 1: unusual but valid.
	"vals":     hllHeader(1, hllStale) + strings.Repeat("\x83", 4096),
	"oddzeros": hllHeader(1, hllStale) + "\x00\x3f\x40\x00" + "\x7f\xbd",
	// The maximum cached count a valid cache can hold.
	"bigcache": hllHeader(1, 1<<63-1) + "\x7f\xff",
	// Redis's own empty HyperLogLog with its unused bytes set.
	"unused": "HYLL\x01\x01\x02\x03" + "\x00\x00\x00\x00\x00\x00\x00\x80" + "\x7f\xff",
}

// hllElems returns PFADD's arguments e<from> .. e<to-1>, space-separated.
func hllElems(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, " e%d", i)
	}
	return b.String()
}

// hllCases are command sequences (each from an empty database) that
// TestHLLMatchRedis runs on both sides, with GET after the writes: the raw
// bytes must be Redis's.
var hllCases = [][]string{
	// A new key, the cache, elements already counted.
	{"pfadd a", "get a", "pfadd a", "pfcount a", "get a", "pfadd a x y z", "get a", "pfadd a x", "get a",
		"pfcount a", "get a", "pfcount a", "pfadd a w", "get a", "pfcount a", "get a", "pfcount nokey", "exists nokey",
		"pfadd b ''", "get b", "pfcount b", "type a", "strlen a"},
	// Sparse to dense past 3000 bytes, GET at each step.
	{"pfadd a" + hllElems(0, 300), "get a", "pfcount a", "get a",
		"pfadd a" + hllElems(300, 900), "get a", "strlen a", "pfcount a",
		"pfadd a" + hllElems(900, 1500), "get a", "strlen a", "pfcount a", "get a",
		"pfadd a" + hllElems(1500, 2500), "get a", "strlen a", "pfcount a",
		"pfadd a" + hllElems(2500, 6000), "get a", "pfcount a", "get a", "pfadd a e1", "pfadd a zzz", "get a"},
	// One element at a time across the promotion.
	func() []string {
		var seq []string
		seq = append(seq, "pfadd a"+hllElems(0, 1600))
		for i := 1600; i < 1720; i++ {
			seq = append(seq, "pfadd a"+hllElems(i, i+1), "strlen a")
		}
		return append(seq, "get a", "pfcount a")
	}(),
	// PFMERGE: sparse with sparse, sparse with dense, into an existing and
	// a missing key, with a TTL kept.
	{"pfadd a" + hllElems(0, 100), "pfadd b" + hllElems(50, 200), "pfmerge c a b", "get c", "pfcount c",
		"pfcount a b", "pfcount a b nokey", "pfcount c", "get c",
		"pfadd d" + hllElems(0, 5000), "pfmerge a d", "get a", "pfcount a", "pfmerge e b d", "get e",
		"pfmerge f", "get f", "pfmerge f nokey", "get f", "pfmerge g nokey nokey2", "get g",
		"pfmerge b b", "get b", "expire b 3600", "pfmerge b a", "ttl b", "get b", "pfcount a b c d e f g",
		"pfcount b", "pfmerge d", "get d", "pfcount d", "get d"},
	// PFMERGE sparse into sparse where the result passes 3000 bytes.
	{"pfadd a" + hllElems(0, 800), "pfadd b" + hllElems(800, 1600), "pfmerge a b", "get a", "strlen a",
		"pfadd c" + hllElems(0, 500), "pfadd d" + hllElems(400, 900), "pfmerge c d", "get c", "pfcount c"},
	// Wrong types, and strings that are not HyperLogLogs.
	{"lpush l x", "pfadd l x", "pfcount l", "pfcount l a", "pfmerge l", "pfmerge d l", "pfmerge l a",
		"set s hello", "pfadd s x", "pfadd s", "pfcount s", "pfmerge s", "pfmerge d s", "pfcount a s l",
		"pfcount a l s", "exists d", "set i 12345", "pfadd i x", "pfcount i", "set e ''", "pfadd e x",
		"set a $short", "pfadd a x", "set a $badmagic", "pfcount a", "set a $badenc", "pfcount a",
		"set a $shortdense", "pfcount a", "pfadd a x", "set a $longdense", "pfcount a", "pfmerge a",
		"pfadd", "pfcount", "pfmerge", "append l x"},
	// Corrupt sparse values: the errors, and what stays changed.
	{"set a $noops", "pfcount a", "pfadd a", "pfadd a x", "get a", "pfcount a b", "pfmerge c a", "exists c",
		"set a $noopsstale", "pfcount a", "get a",
		"set a $half", "pfcount a", "pfcount a a", "pfmerge b a", "exists b", "get a",
		"pfadd a" + hllElems(0, 40), "get a", "pfcount a",
		"set a $halfvalid", "pfcount a", "pfcount a nokey", "pfadd a e1", "get a",
		"set a $toomany", "pfcount a", "pfadd a x y", "get a", "pfmerge a", "pfcount a nokey",
		"set a $valover", "pfcount a", "pfmerge b a", "pfadd a x", "get a", "pfcount a",
		"set a $cutxzero", "pfcount a", "pfmerge b a", "pfadd a x", "get a", "del a"},
	// Foreign values that are valid.
	{"set a $fulldense", "pfcount a", "get a", "pfadd a x", "pfmerge b a", "get b", "pfcount b", "pfcount a b",
		"set c $onesdense", "pfcount c", "pfadd c" + hllElems(0, 30), "pfcount c", "pfmerge d c nokey", "pfcount d",
		"set e $vals", "pfcount e", "get e", "pfadd e" + hllElems(0, 30), "get e", "pfmerge f e", "get f",
		"set g $oddzeros", "pfcount g", "pfadd g" + hllElems(0, 30), "get g", "pfcount g",
		"set h $bigcache", "pfcount h", "pfcount h h", "pfadd h x", "pfcount h", "get h",
		"set u $unused", "pfadd u x", "get u", "pfmerge u a", "get u"},
	// Expired keys are absent.
	{"pfadd a x", "pexpire a 1", "sleep", "pfcount a", "pfadd a y", "get a", "ttl a",
		"pfadd b x", "pexpire b 1", "sleep", "pfmerge b", "get b", "ttl b",
		"pfadd c x", "pexpire c 1", "sleep", "pfcount c b", "pfmerge d c", "get d"},
	// The string commands on a HyperLogLog.
	{"pfadd a x y", "append a zz", "pfcount a", "get a", "pfadd a z", "setrange a 16 \x80", "pfcount a",
		"pfadd a x", "setrange a 0 h", "pfcount a", "pfadd b x", "setrange b 15 \x00", "pfcount b", "get b",
		"pfadd b" + hllElems(0, 3000), "setrange b 12304 x", "pfcount b", "pfmerge b", "setrange b 12303 \xff",
		"pfcount b", "pfmerge c b", "get c"},
}

// TestHLLMatchRedis runs hllCases on a real redis-server and on Exec, in
// RESP2 and RESP3, then compares the keys (matchRedis).
func TestHLLMatchRedis(t *testing.T) { matchRedis(t, hllCases, matchOptions{values: hllValues}) }

// TestHLLFromRedisBytes: a HyperLogLog Redis built, sparse and dense, SET
// here as bytes, counts as in Redis, before and after its cache is filled.
func TestHLLFromRedisBytes(t *testing.T) {
	s := startRealServer(t)
	c := s.dial(t)
	for _, n := range []int{10, 1000, 20000} {
		if _, err := c.doStrings("FLUSHALL"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i += 1000 {
			if _, err := c.do(toArgs(strings.Fields("pfadd a" + hllElems(i, min(i+1000, n))))...); err != nil {
				t.Fatal(err)
			}
		}
		stale := getRaw(t, c, "a")
		want, _ := c.doStrings("PFCOUNT", "a")
		cached := getRaw(t, c, "a")
		if bytes.Equal(stale, cached) {
			t.Fatalf("n=%d: PFCOUNT did not fill the cache", n)
		}
		for _, v := range [][]byte{stale, cached} {
			st := NewMemStore()
			if r := Exec(st, 0, 0, [][]byte{[]byte("set"), []byte("k"), v}); r.Kind != KindSimple {
				t.Fatalf("SET: %v", r)
			}
			if got := AppendRESP2(nil, Exec(st, 0, 0, toArgs([]string{"pfcount", "k"}))); !bytes.Equal(got, want) {
				t.Fatalf("n=%d: PFCOUNT %q, Redis %q", n, got, want)
			}
			if got := Exec(st, 0, 0, toArgs([]string{"get", "k"})); !bytes.Equal(got.Str, cached) {
				t.Fatalf("n=%d: GET after PFCOUNT differs from Redis's", n)
			}
		}
	}
}

func getRaw(t *testing.T, c *respClient, key string) []byte {
	t.Helper()
	raw, err := c.doStrings("GET", key)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := ParseReply(raw)
	if err != nil || r.Kind != KindBulk {
		t.Fatalf("GET %s: %q %v", key, raw, err)
	}
	return r.Str
}

// TestHLLRunsAsWrite: PFCOUNT writes the cache, so it is not run as a read,
// though COMMAND INFO flags it "readonly" as Redis does.
func TestHLLRunsAsWrite(t *testing.T) {
	spec, _ := Lookup("pfcount")
	if spec.ReadOnly() || !spec.HasFlag("readonly") {
		t.Fatalf("pfcount: ReadOnly %v, flags %v", spec.ReadOnly(), spec.Flags)
	}
	st := NewMemStore()
	Exec(st, 0, 0, splitCmd("PFADD k a b c"))
	if r := Exec(ReadOnly(st), 0, 0, splitCmd("PFCOUNT k")); r.Err == nil {
		t.Fatalf("PFCOUNT with a stale cache on a read-only store: %v", r)
	}
	if r := Exec(st, 0, 0, splitCmd("PFCOUNT k")); r.Kind != KindInt || r.Int != 3 {
		t.Fatalf("PFCOUNT: %v", r)
	}
	// With the cache filled, and for several keys, it writes nothing.
	for _, cmd := range []string{"PFCOUNT k", "PFCOUNT k k nokey"} {
		if r := Exec(ReadOnly(st), 0, 0, splitCmd(cmd)); r.Kind != KindInt || r.Int != 3 {
			t.Fatalf("%s: %v", cmd, r)
		}
	}
}
