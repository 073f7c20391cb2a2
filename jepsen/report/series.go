package report

import (
	"math"
	"slices"
	"sort"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// quantileWindow is the width of the windows latency quantiles are taken
// over: one second smooths single slow ops while a leader election (a few
// hundred ms) still shows.
const quantileWindow = int64(1e9)

// quantilePoint is one window of one op type's latencies.
type quantilePoint struct {
	At            int64 // the window's start, ns since the run started
	N             int   // ok ops invoked in it
	P50, P95, P99 int64 // ns
}

// quantileSeries takes the latency of ok ops (completion − invocation), by
// op type (F), in windows of width by invocation time, and gives each
// window's p50, p95 and p99. Windows without ok ops are left out, so a
// line drawn through the points breaks there instead of diving to zero.
// Only ok ops count: a failure's latency is how fast the server said no,
// and an info op's is the client's timeout.
func quantileSeries(ops []history.Op, width int64) map[string][]quantilePoint {
	lat := map[string]map[int64][]int64{}
	for _, op := range ops {
		if op.Type != history.TypeOK {
			continue
		}
		if lat[op.F] == nil {
			lat[op.F] = map[int64][]int64{}
		}
		w := op.Invoke / width
		lat[op.F][w] = append(lat[op.F][w], op.Complete-op.Invoke)
	}
	out := map[string][]quantilePoint{}
	for f, windows := range lat {
		var ws []int64
		for w := range windows {
			ws = append(ws, w)
		}
		sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
		for _, w := range ws {
			ls := windows[w]
			sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
			out[f] = append(out[f], quantilePoint{At: w * width, N: len(ls),
				P50: quantile(ls, 0.50), P95: quantile(ls, 0.95), P99: quantile(ls, 0.99)})
		}
	}
	return out
}

// quantile is the nearest-rank q-quantile of sorted: the smallest value
// with at least q of the values at or below it.
func quantile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// nodeRates is ok ops completed per second through each node, in buckets
// of width (the last bucket, cut short by the run's end, is scaled to its
// real width as the overall throughput is).
func nodeRates(ops []history.Op, endNS, width int64) map[int][]float64 {
	n := int(endNS/width) + 1
	out := map[int][]float64{}
	for _, op := range ops {
		if op.Type != history.TypeOK {
			continue
		}
		if out[op.Node] == nil {
			out[op.Node] = make([]float64, n)
		}
		out[op.Node][min(max(op.Complete/width, 0), int64(n-1))]++
	}
	for _, rates := range out {
		for i := range rates {
			w := min(width, endNS-int64(i)*width)
			rates[i] *= 1e9 / float64(max(w, width/10))
		}
	}
	return out
}

// opOrder lists op types in the order the workloads define them, then any
// other in alphabetical order.
func opOrder(fs map[string][]quantilePoint) []string {
	known := []string{"read", "write", "cas", "add", "read-set", "incr", "read-counter", "append", "read-list"}
	var out []string
	for _, f := range known {
		if _, ok := fs[f]; ok {
			out = append(out, f)
		}
	}
	var rest []string
	for f := range fs {
		if !slices.Contains(known, f) {
			rest = append(rest, f)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
