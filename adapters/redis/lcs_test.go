package redis

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// lcsCases are LCS's corners: Redis's documented example, the options and
// the order of their checks, empty, missing, expired and wrongly typed
// keys, NUL bytes, and strings long enough for many ranges.
var lcsCases = [][]string{
	{"mset key1 ohmytext key2 mynewtext", "lcs key1 key2", "lcs key1 key2 len", "lcs key1 key2 idx",
		"lcs key1 key2 idx minmatchlen 4", "lcs key1 key2 idx minmatchlen 4 withmatchlen", "lcs key1 key2 IDX WITHMATCHLEN",
		"lcs key1 key2 withmatchlen", "lcs key1 key2 minmatchlen 4", "lcs key1 key2 len withmatchlen minmatchlen 2",
		"lcs key1 key2 idx len", "lcs key1 key2 len idx", "lcs key1 key2 len len", "lcs key1 key2 idx idx minmatchlen 1 minmatchlen 9",
		"lcs key1 key2 idx minmatchlen -5", "lcs key1 key2 idx minmatchlen x", "lcs key1 key2 idx minmatchlen",
		"lcs key1 key2 minmatchlen x len idx", "lcs key1 key2 len idx minmatchlen x", "lcs key1 key2 bogus",
		"lcs key1 key2 idx bogus", "lcs key1 key2 idx\x00x", "lcs key1 key2 idx minmatchlen 9223372036854775807",
		"lcs key1 key2 idx minmatchlen ''", "lcs key2 key1 idx withmatchlen", "lcs key1 key1 idx withmatchlen",
		"lcs key1", "lcs"},
	{"lcs a b", "lcs a b len", "lcs a b idx withmatchlen", "set a ''", "lcs a b idx", "lcs b a", "set b abc",
		"lcs a b", "lcs b a idx", "lcs b b", "lcs b nokey len"},
	{"set a abc", "set b xyz", "lcs a b", "lcs a b idx", "lcs a b len", "set b \x00a\x00b\x00c\x00", "lcs a b idx withmatchlen",
		"lcs b b", "set a \x00\x00\x00", "lcs a b idx withmatchlen"},
	{"lpush l x", "hset h f v", "set a abc", "lcs a l", "lcs l a", "lcs l h", "lcs l nokey", "lcs a l bogus",
		"lcs a l len idx", "lcs a l minmatchlen x", "lcs a h idx"},
	{"set a abc px 1", "set b abc", "sleep", "lcs a b", "lcs b a idx", "exists a"},
	{"set a " + strings.Repeat("GATTACA", 200), "set b " + strings.Repeat("TAGACCAT", 180), "lcs a b len",
		"lcs a b idx minmatchlen 5 withmatchlen", "strlen a"},
}

func TestLCSMatchesRedis(t *testing.T) {
	// A long pair with many short ranges: the whole IDX reply.
	var a, b strings.Builder
	for i := range 600 {
		a.WriteString(strconv.Itoa(i * 7 % 13))
		b.WriteString(strconv.Itoa(i * 5 % 11))
	}
	cases := append(lcsCases, []string{"set a " + a.String(), "set b " + b.String(), "lcs a b", "lcs a b idx withmatchlen",
		"lcs a b idx minmatchlen 3"})
	matchRedis(t, cases, matchOptions{})
}

// TestLCSBound: LCS refuses strings whose table, (len(a)+1)*(len(b)+1),
// exceeds lcsMaxCells, at once and with nothing allocated; at the bound,
// and against an empty or missing string of any length, it answers.
func TestLCSBound(t *testing.T) {
	side := 8191 // (side+1)^2 == lcsMaxCells
	if (side+1)*(side+1) != lcsMaxCells {
		t.Fatalf("lcsMaxCells %d is not %d squared", lcsMaxCells, side+1)
	}
	st := NewMemStore()
	run := func(cmd ...string) Reply {
		t.Helper()
		r := Exec(st, 1000, 0, toArgs(cmd))
		if r.Err != nil {
			t.Fatalf("%.80q: %v", cmd, r.Err)
		}
		return r
	}
	big := strings.Repeat("ab", MaxBulkLen/2)
	run("set", "big", big)
	run("set", "a", strings.Repeat("a", side))
	run("set", "b", strings.Repeat("ab", side/2)+"b")
	run("set", "c", strings.Repeat("a", side+1))
	run("set", "e", "")
	began := time.Now()
	if r := run("lcs", "a", "b", "len"); r.Kind != KindInt || r.Int != int64(side/2) {
		t.Fatalf("LCS at the bound: %q", AppendRESP2(nil, r))
	}
	if r := run("lcs", "a", "b", "idx"); r.Kind != KindMap || len(r.Elems[1].Elems) != side/2 {
		t.Fatalf("LCS IDX at the bound: %.200q", AppendRESP2(nil, r))
	}
	t.Logf("two LCS of %d cells in %v", lcsMaxCells, time.Since(began))
	for _, cmd := range [][]string{{"lcs", "a", "c"}, {"lcs", "c", "a", "len"}, {"lcs", "big", "a", "idx"}, {"lcs", "big", "big"}} {
		if r := run(cmd...); string(AppendRESP2(nil, r)) != "-"+string(errLCSTooLong)+"\r\n" {
			t.Fatalf("%q: %q", cmd, AppendRESP2(nil, r))
		}
	}
	for _, cmd := range [][]string{{"lcs", "big", "nokey"}, {"lcs", "e", "big"}} {
		if r := run(cmd...); string(AppendRESP2(nil, r)) != "$0\r\n\r\n" {
			t.Fatalf("%q: %q", cmd, AppendRESP2(nil, r))
		}
	}
	if r := run("lcs", "nokey", "big", "idx", "withmatchlen"); string(AppendRESP2(nil, r)) != "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n" {
		t.Fatalf("IDX against a missing key: %q", AppendRESP2(nil, r))
	}
}
