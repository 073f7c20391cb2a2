package check

import (
	"strconv"
	"testing"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// growingHistory is n ops on 4 keys of a grow-only collection, one read
// every 10 ops, each returning everything added so far.
func growingHistory(n int, add, rd string) []history.Op {
	var ops []history.Op
	els := map[string][]string{}
	for i := range n {
		key := "k" + strconv.Itoa(i%4)
		t := int64(i) * 10
		if i%10 == 9 {
			ops = append(ops, readAll(i%7, rd, key, t, t+5, append([]string(nil), els[key]...)...))
			continue
		}
		e := strconv.Itoa(i)
		ops = append(ops, elem(i%7, add, key, e, t, t+5))
		els[key] = append(els[key], e)
	}
	for k, vs := range els {
		ops = append(ops, readAll(0, rd, k, int64(n)*10+100, int64(n)*10+200, vs...))
	}
	return ops
}

func BenchmarkSet(b *testing.B) {
	ops := growingHistory(20000, "add", "read-set")
	b.ReportAllocs()
	for b.Loop() {
		if r := Set(ops); !r.Valid {
			b.Fatal(r.Problems)
		}
	}
	b.ReportMetric(float64(len(ops)), "ops")
}

func BenchmarkListAppend(b *testing.B) {
	ops := growingHistory(20000, "append", "read-list")
	b.ReportAllocs()
	for b.Loop() {
		if r := ListAppend(ops); !r.Valid {
			b.Fatal(r.Problems)
		}
	}
	b.ReportMetric(float64(len(ops)), "ops")
}

func BenchmarkCounter(b *testing.B) {
	var ops []history.Op
	var v int64
	for i := range 100000 {
		t := int64(i) * 10
		if i%10 == 9 {
			ops = append(ops, num(i%7, "read-counter", "c", v, t, t+5))
			continue
		}
		v++
		ops = append(ops, num(i%7, "incr", "c", v, t, t+5))
	}
	ops = append(ops, num(0, "read-counter", "c", v, 1e7, 1e7+5))
	b.ReportAllocs()
	for b.Loop() {
		if r := Counter(ops); !r.Valid {
			b.Fatal(r.Problems)
		}
	}
	b.ReportMetric(float64(len(ops)), "ops")
}
