package report

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// maxPoints bounds the ops drawn in the latency plot, so that a report of
// a long run (100k ops and more) stays small enough for a browser to open
// quickly; ops beyond it are sampled evenly.
const maxPoints = 20000

// maxTitled bounds the fail and info ops drawn with a tooltip: each costs
// an element of its own, where the rest share one path per outcome.
const maxTitled = 2000

// Geometry of the timeline, in SVG user units (pixels at 100% zoom).
const (
	svgWidth     = 1100
	marginLeft   = 96 // room for lane labels such as "membership"
	marginRight  = 24
	plotWidth    = svgWidth - marginLeft - marginRight
	laneHeight   = 20
	latencyH     = 320
	throughputH  = 140
	gap          = 26
	axisH        = 34
	titleOffset  = 14 // a section's title sits this far above it
	pointRadius  = 1.6
	minLatencyNS = 1_000 // 1µs: the floor of the log scale
)

// outcome colours, shared with the legend in the page's CSS.
var typeColour = map[string]string{
	history.TypeOK:   "#2b7bb9",
	history.TypeFail: "#d62728",
	history.TypeInfo: "#ff9f1c",
}

// kindColour gives the usual fault kinds fixed colours, so reports of
// different runs read alike; other kinds take the palette in order.
var kindColour = map[string]string{
	"partition":  "#9467bd",
	"kill":       "#d62728",
	"pause":      "#8c564b",
	"clock":      "#17becf",
	"delay":      "#bcbd22",
	"loss":       "#7f7f7f",
	"membership": "#2ca02c",
}

var palette = []string{"#e377c2", "#1f77b4", "#ff7f0e", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"}

// timeline is the data of the plot, computed apart from drawing it.
type timeline struct {
	endNS   int64    // the run's end: the last op or fault time
	kinds   []string // fault kinds in order of first appearance
	colours map[string]string
	faults  []history.Fault // with End filled in for unfinished faults
	open    []bool          // faults[i] was unfinished
	// lanes are the rows of the fault band, a kind's faults on its own
	// rows; faults of one kind that overlap in time are stacked on extra
	// rows so that no band covers another. laneOf[i] is faults[i]'s row.
	lanes  []string // each row's kind
	laneOf []int

	points  []history.Op // the ops drawn, a sample of at most maxPoints
	sampled string       // how points were chosen, for the caption

	latMinNS, latMaxNS int64 // the log scale's range, powers of ten

	bucketNS int64     // throughput bucket width
	okRate   []float64 // ok ops completed per second, by bucket
	failRate []float64 // fail and info ops completed per second
	rateMax  float64   // the throughput scale's top
}

// runEnd is the end of the run as the history shows it: the last op or
// fault time (1s for an empty run, so scales stay finite).
func runEnd(ops []history.Op, faults []history.Fault) int64 {
	var end int64
	for _, op := range ops {
		end = max(end, op.Invoke, op.Complete)
	}
	for _, f := range faults {
		end = max(end, f.Start, f.End)
	}
	if end <= 0 {
		end = 1e9
	}
	return end
}

func newTimeline(ops []history.Op, faults []history.Fault) *timeline {
	t := &timeline{colours: map[string]string{}, endNS: runEnd(ops, faults)}
	for _, f := range faults {
		if _, ok := t.colours[f.Kind]; !ok {
			c, fixed := kindColour[f.Kind]
			if !fixed {
				c = palette[(len(t.kinds))%len(palette)]
			}
			t.colours[f.Kind] = c
			t.kinds = append(t.kinds, f.Kind)
		}
		open := f.End == 0
		if open {
			f.End = t.endNS
		}
		t.faults = append(t.faults, f)
		t.open = append(t.open, open)
	}
	t.stackLanes()

	t.points, t.sampled = sample(ops)
	t.latMinNS, t.latMaxNS = minLatencyNS, minLatencyNS*10
	first := true
	for _, op := range t.points {
		l := latency(op)
		if first || l < t.latMinNS {
			t.latMinNS = l
		}
		if first || l > t.latMaxNS {
			t.latMaxNS = l
		}
		first = false
	}
	t.latMinNS = pow10Floor(t.latMinNS)
	t.latMaxNS = pow10Ceil(t.latMaxNS)
	if t.latMaxNS <= t.latMinNS {
		t.latMaxNS = t.latMinNS * 10
	}

	t.bucketNS = bucketWidth(t.endNS)
	n := int(t.endNS/t.bucketNS) + 1
	t.okRate = make([]float64, n)
	t.failRate = make([]float64, n)
	for _, op := range ops {
		b := min(max(op.Complete/t.bucketNS, 0), int64(n-1))
		if op.Type == history.TypeOK {
			t.okRate[b]++
		} else {
			t.failRate[b]++
		}
	}
	for i := range n {
		// The last bucket is cut short by the end of the run; dividing
		// by its full width would draw a drop that did not happen.
		width := min(t.bucketNS, t.endNS-int64(i)*t.bucketNS)
		perSec := 1e9 / float64(max(width, t.bucketNS/10))
		t.okRate[i] *= perSec
		t.failRate[i] *= perSec
		t.rateMax = max(t.rateMax, t.okRate[i], t.failRate[i])
	}
	t.rateMax = niceCeil(max(t.rateMax, 1))
	return t
}

// latency is an op's latency for the log scale, never below its floor.
func latency(op history.Op) int64 {
	return max(op.Complete-op.Invoke, minLatencyNS)
}

// sample picks at most maxPoints ops to draw. Fail and info ops are rarer
// and say more, so they are kept first (up to half the budget); ok ops
// fill the rest, chosen evenly across the history.
func sample(ops []history.Op) ([]history.Op, string) {
	if len(ops) <= maxPoints {
		return ops, fmt.Sprintf("all %d ops", len(ops))
	}
	var okOps, other []history.Op
	for _, op := range ops {
		if op.Type == history.TypeOK {
			okOps = append(okOps, op)
		} else {
			other = append(other, op)
		}
	}
	other = evenly(other, maxPoints/2)
	okOps = evenly(okOps, maxPoints-len(other))
	out := append(okOps, other...)
	return out, fmt.Sprintf("%d of %d ops, sampled evenly (%d ok ops, %d fail/info ops) to keep the page light", len(out), len(ops), len(okOps), len(other))
}

// evenly returns n of ops spread evenly over it (all if there are fewer).
func evenly(ops []history.Op, n int) []history.Op {
	if len(ops) <= n {
		return ops
	}
	out := make([]history.Op, n)
	for i := range n {
		out[i] = ops[int(int64(i)*int64(len(ops))/int64(n))]
	}
	return out
}

func pow10Floor(ns int64) int64 {
	p := int64(1)
	for p*10 <= ns {
		p *= 10
	}
	return p
}

func pow10Ceil(ns int64) int64 {
	p := int64(1)
	for p < ns && p < math.MaxInt64/10 {
		p *= 10
	}
	return p
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for an axis top.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// bucketWidth is the throughput bucket: the smallest of a few round widths
// giving at most 300 buckets, so short runs still show a shape.
func bucketWidth(endNS int64) int64 {
	for _, ms := range []int64{100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000} {
		if endNS/(ms*1e6) <= 300 {
			return ms * 1e6
		}
	}
	return 300_000 * 1e6
}

// xTicks are round second marks across the run, about ten of them.
func xTicks(endNS int64) []float64 {
	end := float64(endNS) / 1e9
	step := niceCeil(end / 10)
	var out []float64
	for s := 0.0; s <= end+1e-9; s += step {
		out = append(out, s)
	}
	return out
}

// svg draws the timeline: fault lanes, the latency scatter and the
// throughput line over one time axis, with faults shaded across both
// plots. The output is well-formed XML.
func (t *timeline) svg() string {
	var b strings.Builder
	lanesTop := titleOffset + 4
	lanesH := max(len(t.lanes), 1) * laneHeight
	latTop := lanesTop + lanesH + gap + titleOffset
	thrTop := latTop + latencyH + gap + titleOffset
	axisTop := thrTop + throughputH
	height := axisTop + axisH

	x := t.x
	logMin, logMax := math.Log10(float64(t.latMinNS)), math.Log10(float64(t.latMaxNS))
	yLat := func(ns int64) float64 {
		v := (math.Log10(float64(ns)) - logMin) / (logMax - logMin)
		return float64(latTop) + float64(latencyH)*(1-v)
	}
	yRate := func(r float64) float64 {
		return float64(thrTop) + float64(throughputH)*(1-r/t.rateMax)
	}

	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", svgWidth, height, svgWidth, height)

	// Fault lanes, labelled by kind (on a kind's first row).
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="section">faults</text>`+"\n", marginLeft, lanesTop-5)
	if len(t.kinds) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#888">no faults injected</text>`+"\n", marginLeft+4, lanesTop+14)
	}
	for i, k := range t.lanes {
		y := lanesTop + i*laneHeight
		if i == 0 || t.lanes[i-1] != k {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="%s" font-weight="bold">%s</text>`+"\n", marginLeft-6, y+14, t.colours[k], esc(k))
		}
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#eee"/>`+"\n", marginLeft, marginLeft+plotWidth, y+laneHeight, y+laneHeight)
	}
	t.shade(&b, latTop, axisTop-latTop)
	for i, f := range t.faults {
		c := t.colours[f.Kind]
		x0, x1 := t.x(f.Start), t.x(f.End)
		w := max(x1-x0, 1.5)
		y := lanesTop + t.laneOf[i]*laneHeight
		fmt.Fprintf(&b, `<g><title>%s</title><rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.75" rx="2"/>`,
			esc(faultTitle(f, t.open[i])), x0, y+2, w, laneHeight-4, c)
		// The label says the detail (the lane already says the kind),
		// truncated to the band's width and clipped to it as well: the
		// width of a character is only estimated.
		if label, ok := fitLabel(f.Detail, w-6); ok {
			fmt.Fprintf(&b, `<clipPath id="band%d"><rect x="%.1f" y="%d" width="%.1f" height="%d"/></clipPath>`, i, x0, y+2, w, laneHeight-4)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#fff" clip-path="url(#band%d)">%s</text>`, x0+3, y+14, i, esc(label))
		}
		b.WriteString("</g>\n")
	}

	// Latency scatter.
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="section">latency of every op (log scale; x = invocation): %s</text>`+"\n", marginLeft, latTop-5, esc(t.sampled))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", marginLeft, latTop, plotWidth, latencyH)
	for p := t.latMinNS; p <= t.latMaxNS && p > 0; p *= 10 {
		y := yLat(p)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n",
			marginLeft, marginLeft+plotWidth, y, y, marginLeft-6, y+4, esc(Duration(p)))
		if p > math.MaxInt64/10 {
			break
		}
	}
	titled := 0
	for _, typ := range []string{history.TypeOK, history.TypeFail, history.TypeInfo} {
		var path strings.Builder
		for _, op := range t.points {
			if drawnAs(op) != typ {
				continue
			}
			px, py := x(op.Invoke), yLat(latency(op))
			if typ != history.TypeOK && titled < maxTitled {
				titled++
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"><title>%s</title></circle>`+"\n", px, py, pointRadius+0.6, typeColour[typ], esc(op.String()))
				continue
			}
			fmt.Fprintf(&path, "M%.1f %.1fh0", px, py)
		}
		if path.Len() > 0 {
			fmt.Fprintf(&b, `<path class="pts-%s" d="%s" stroke="%s" stroke-width="%.1f" stroke-linecap="round" fill="none" stroke-opacity="0.7"/>`+"\n",
				typ, path.String(), typeColour[typ], 2*pointRadius)
		}
	}

	// Throughput.
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="section">throughput (ops completed per second, %s buckets): ok, and fail+info</text>`+"\n", marginLeft, thrTop-5, esc(Duration(t.bucketNS)))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", marginLeft, thrTop, plotWidth, throughputH)
	for _, r := range []float64{0, t.rateMax / 2, t.rateMax} {
		y := yRate(r)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end" fill="#555">%g/s</text>`+"\n",
			marginLeft, marginLeft+plotWidth, y, y, marginLeft-6, y+4, r)
	}
	for _, line := range []struct {
		rates  []float64
		colour string
		width  float64
	}{{t.okRate, typeColour[history.TypeOK], 1.6}, {t.failRate, typeColour[history.TypeInfo], 1.2}} {
		var pts strings.Builder
		for i, r := range line.rates {
			mid := int64(i)*t.bucketNS + t.bucketNS/2
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(min(mid, t.endNS)), yRate(r))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="%.1f"/>`+"\n", strings.TrimSpace(pts.String()), line.colour, line.width)
	}

	t.axis(&b, axisTop)
	b.WriteString("</svg>")
	return b.String()
}

// drawnAs is the outcome an op is drawn as: an op of unknown type is
// drawn as info, since nobody knows what it did either.
func drawnAs(op history.Op) string {
	if op.Type == history.TypeOK || op.Type == history.TypeFail {
		return op.Type
	}
	return history.TypeInfo
}

// faultTitle describes a fault for tooltips and the fault table.
func faultTitle(f history.Fault, open bool) string {
	end := history.Seconds(f.End)
	if open {
		end = "the end (never healed)"
	}
	return fmt.Sprintf("%s %s: %s to %s (%s)", f.Kind, f.Detail, history.Seconds(f.Start), end, Duration(f.End-f.Start))
}

// esc escapes text for SVG, which is XML: html.EscapeString's entities are
// all valid XML.
func esc(s string) string { return html.EscapeString(s) }

// sortedFaults returns faults by start, for the fault table.
func sortedFaults(t *timeline) []int {
	idx := make([]int, len(t.faults))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return t.faults[idx[a]].Start < t.faults[idx[b]].Start })
	return idx
}
