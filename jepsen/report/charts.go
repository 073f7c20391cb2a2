package report

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// Drawing helpers shared by the timeline and the charts below it, so that
// every chart has the same time axis and the same fault shading, and a
// person can read them one above the other.

// x is the horizontal position of a time.
func (t *timeline) x(ns int64) float64 {
	return marginLeft + float64(plotWidth)*float64(ns)/float64(t.endNS)
}

// shade draws every fault as a translucent band over a plot.
func (t *timeline) shade(b *strings.Builder, top, height int) {
	for i, f := range t.faults {
		x0 := t.x(f.Start)
		w := max(t.x(f.End)-x0, 1.5)
		fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.12"><title>%s</title></rect>`+"\n",
			x0, top, w, height, t.colours[f.Kind], esc(faultTitle(f, t.open[i])))
	}
}

// axis draws the time axis with round second marks at y.
func (t *timeline) axis(b *strings.Builder, y int) {
	fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`+"\n", marginLeft, marginLeft+plotWidth, y, y)
	for _, s := range xTicks(t.endNS) {
		px := t.x(int64(s * 1e9))
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#333"/><text x="%.1f" y="%d" text-anchor="middle" fill="#333">%gs</text>`+"\n",
			px, px, y, y+5, px, y+18, s)
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end" fill="#555">time since the run started</text>`+"\n", marginLeft+plotWidth, y+31)
}

// stackLanes gives each fault a row: a kind's rows are together, in order
// of the kinds' first appearance, and a fault goes on the first row of its
// kind whose faults all ended before it started.
func (t *timeline) stackLanes() {
	order := make([]int, len(t.faults))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return t.faults[order[a]].Start < t.faults[order[b]].Start })
	rowEnds := map[string][]int64{} // per kind, each row's latest end
	rowOf := make([]int, len(t.faults))
	for _, i := range order {
		f := t.faults[i]
		ends := rowEnds[f.Kind]
		r := 0
		for r < len(ends) && ends[r] > f.Start {
			r++
		}
		if r == len(ends) {
			ends = append(ends, 0)
		}
		ends[r] = f.End
		rowEnds[f.Kind] = ends
		rowOf[i] = r
	}
	first := map[string]int{}
	t.lanes = nil
	for _, k := range t.kinds {
		first[k] = len(t.lanes)
		for range rowEnds[k] {
			t.lanes = append(t.lanes, k)
		}
	}
	t.laneOf = make([]int, len(t.faults))
	for i, f := range t.faults {
		t.laneOf[i] = first[f.Kind] + rowOf[i]
	}
}

// charWidth is a generous estimate of the width of a character of the
// 11-unit sans-serif font; labels are clipped as well, so a wide glyph
// cannot spill out of its band.
const charWidth = 6.6

// fitLabel truncates s (with an ellipsis) to fit width units; ok is false
// when not even a few characters fit.
func fitLabel(s string, width float64) (string, bool) {
	maxChars := int(width / charWidth)
	r := []rune(strings.TrimSpace(s))
	if maxChars < 4 || len(r) == 0 {
		return "", false
	}
	if len(r) > maxChars {
		return string(r[:maxChars-1]) + "…", true
	}
	return string(r), true
}

// quantileColours: p50, p95, p99.
var quantileColours = [3]string{"#2b7bb9", "#ff9f1c", "#d62728"}

const (
	quantilePanelH = 110
	nodeChartH     = 150
)

// quantileSVG draws, for each op type, p50/p95/p99 latency lines over
// time (ok ops, quantileWindow windows), one panel per type on a shared
// log scale so the panels compare.
func (t *timeline) quantileSVG(ops []history.Op) string {
	series := quantileSeries(ops, quantileWindow)
	fs := opOrder(series)
	if len(fs) == 0 {
		return ""
	}
	lo, hi := int64(math.MaxInt64), int64(minLatencyNS)
	for _, f := range fs {
		for _, p := range series[f] {
			lo, hi = min(lo, p.P50), max(hi, p.P99)
		}
	}
	lo, hi = pow10Floor(max(lo, minLatencyNS)), pow10Ceil(hi)
	if hi <= lo {
		hi = lo * 10
	}
	logLo, logHi := math.Log10(float64(lo)), math.Log10(float64(hi))
	const top0 = 24
	panel := quantilePanelH + gap
	height := top0 + len(fs)*panel + axisH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", svgWidth, height, svgWidth, height)
	legendX := marginLeft + plotWidth - 200
	for i, name := range []string{"p50", "p95", "p99"} {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="10" y2="10" stroke="%s" stroke-width="2"/><text x="%d" y="14" fill="#333">%s</text>`+"\n",
			legendX+i*64, legendX+i*64+18, quantileColours[i], legendX+i*64+22, name)
	}
	for n, f := range fs {
		top := top0 + n*panel + titleOffset
		y := func(ns int64) float64 {
			v := (math.Log10(float64(max(ns, lo))) - logLo) / (logHi - logLo)
			return float64(top) + quantilePanelH*(1-v)
		}
		count := 0
		for _, p := range series[f] {
			count += p.N
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="section">%s (%d ok ops)</text>`+"\n", marginLeft, top-5, esc(f), count)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", marginLeft, top, plotWidth, quantilePanelH)
		t.shade(&b, top, quantilePanelH)
		for p := lo; p <= hi && p > 0; p *= 10 {
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n",
				marginLeft, marginLeft+plotWidth, y(p), y(p), marginLeft-6, y(p)+4, esc(Duration(p)))
			if p > math.MaxInt64/10 {
				break
			}
		}
		for qi, pick := range []func(quantilePoint) int64{
			func(p quantilePoint) int64 { return p.P50 },
			func(p quantilePoint) int64 { return p.P95 },
			func(p quantilePoint) int64 { return p.P99 },
		} {
			var d strings.Builder
			prev := int64(-1)
			for _, p := range series[f] {
				// A window without ok ops breaks the line.
				cmd := "L"
				if prev < 0 || p.At != prev+quantileWindow {
					cmd = "M"
				}
				fmt.Fprintf(&d, "%s%.1f %.1f", cmd, t.x(min(p.At+quantileWindow/2, t.endNS)), y(pick(p)))
				if cmd == "M" {
					d.WriteString("h0.1") // a lone window still shows as a dot
				}
				prev = p.At
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round"/>`+"\n", d.String(), quantileColours[qi])
		}
	}
	t.axis(&b, top0+len(fs)*panel)
	b.WriteString("</svg>")
	return b.String()
}

// nodePalette colours the nodes' lines.
var nodePalette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// nodeSVG draws each node's ok throughput over time.
func (t *timeline) nodeSVG(ops []history.Op) string {
	rates := nodeRates(ops, t.endNS, t.bucketNS)
	if len(rates) == 0 {
		return ""
	}
	var nodes []int
	top := 1.0
	for n, rs := range rates {
		nodes = append(nodes, n)
		for _, r := range rs {
			top = max(top, r)
		}
	}
	sort.Ints(nodes)
	top = niceCeil(top)
	const plotTop = 24
	height := plotTop + nodeChartH + axisH
	yRate := func(r float64) float64 { return plotTop + nodeChartH*(1-r/top) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", svgWidth, height, svgWidth, height)
	for i, n := range nodes {
		c := nodePalette[i%len(nodePalette)]
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="10" y2="10" stroke="%s" stroke-width="2"/><text x="%d" y="14" fill="#333">n%d</text>`+"\n",
			marginLeft+i*56, marginLeft+i*56+18, c, marginLeft+i*56+22, n)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", marginLeft, plotTop, plotWidth, nodeChartH)
	t.shade(&b, plotTop, nodeChartH)
	for _, r := range []float64{0, top / 2, top} {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end" fill="#555">%g/s</text>`+"\n",
			marginLeft, marginLeft+plotWidth, yRate(r), yRate(r), marginLeft-6, yRate(r)+4, r)
	}
	for i, n := range nodes {
		var pts strings.Builder
		for j, r := range rates[n] {
			mid := int64(j)*t.bucketNS + t.bucketNS/2
			fmt.Fprintf(&pts, "%.1f,%.1f ", t.x(min(mid, t.endNS)), yRate(r))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.4"><title>n%d</title></polyline>`+"\n",
			strings.TrimSpace(pts.String()), nodePalette[i%len(nodePalette)], n)
	}
	t.axis(&b, plotTop+nodeChartH)
	b.WriteString("</svg>")
	return b.String()
}
