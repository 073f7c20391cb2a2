package report

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/jepsen/avail"
	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/topo"
)

func TestDuration(t *testing.T) {
	for ns, want := range map[int64]string{
		1_234_567_891: "1.23s", 315_000_000: "315ms", 315_400_000: "315ms", 999_600_000: "1s",
		12_345_000_000: "12.3s", 2_000_000_000: "2s", 1_500_000_000: "1.5s", 45_678: "45.7µs",
		800: "800ns", 0: "0ns", 100_000_000: "100ms", 99_950_000: "100ms", 1_005_000: "1.01ms" /* half away from zero */, -2_500_000: "-2.5ms",
		1_234_000_000_000: "1230s",
	} {
		if got := Duration(ns); got != want {
			t.Errorf("Duration(%d) = %q, want %q", ns, got, want)
		}
	}
}

// latencies makes ok ops of type f invoked in second sec with the given
// latencies in ms.
func latencies(f string, sec int64, ms ...int64) []history.Op {
	var ops []history.Op
	for i, l := range ms {
		inv := sec*1e9 + int64(i)*1e6
		ops = append(ops, history.Op{F: f, Type: history.TypeOK, Invoke: inv, Complete: inv + l*1e6})
	}
	return ops
}

func TestQuantileSeries(t *testing.T) {
	var ms []int64
	for i := int64(100); i >= 1; i-- { // 1..100 ms, out of order
		ms = append(ms, i)
	}
	ops := latencies("write", 0, ms...)
	ops = append(ops, latencies("write", 2, 7)...)         // second 1 has no ok op
	ops = append(ops, latencies("read", 0, 3, 1, 2, 4)...) // p50 of four = the 2nd
	failed := latencies("write", 0, 5000)[0]
	failed.Type = history.TypeInfo // not counted: a timeout
	ops = append(ops, failed)

	s := quantileSeries(ops, 1e9)
	w := s["write"]
	if len(w) != 2 || w[0].At != 0 || w[1].At != 2e9 {
		t.Fatalf("write windows: %+v", w)
	}
	if w[0].N != 100 || w[0].P50 != 50e6 || w[0].P95 != 95e6 || w[0].P99 != 99e6 {
		t.Errorf("write second 0: %+v, want p50 50ms p95 95ms p99 99ms", w[0])
	}
	if w[1].P50 != 7e6 || w[1].P99 != 7e6 {
		t.Errorf("write second 2: %+v", w[1])
	}
	if r := s["read"][0]; r.P50 != 2e6 || r.P95 != 4e6 || r.P99 != 4e6 {
		t.Errorf("read: %+v", r)
	}
	if got := opOrder(map[string][]quantilePoint{"zz": nil, "cas": nil, "read": nil, "aa": nil}); strings.Join(got, ",") != "read,cas,aa,zz" {
		t.Errorf("opOrder = %v", got)
	}

	// The chart breaks the line over the empty second.
	tl := newTimeline(ops, nil)
	svg := tl.quantileSVG(ops)
	if !strings.Contains(svg, "write (101 ok ops)") || strings.Count(svg, `stroke="#2b7bb9" stroke-width="1.5"`) != 2 {
		t.Errorf("quantile chart:\n%s", svg)
	}
	// Panels are read then write; each has its p50 line first.
	if m := regexp.MustCompile(`<path d="(M[^"]*)" fill="none" stroke="#2b7bb9"`).FindAllStringSubmatch(svg, -1); len(m) != 2 || strings.Count(m[1][1], "M") != 2 {
		t.Errorf("write's p50 line should have two pieces: %v", m)
	}
}

func TestNodeRates(t *testing.T) {
	var ops []history.Op
	for i := range 20 { // n1: 20 ok ops in the first second, n2: 5, plus fails
		ops = append(ops, history.Op{Node: 1, Type: history.TypeOK, Complete: int64(i) * 50e6})
		if i%4 == 0 {
			ops = append(ops, history.Op{Node: 2, Type: history.TypeOK, Complete: int64(i) * 50e6})
		}
		ops = append(ops, history.Op{Node: 2, Type: history.TypeFail, Complete: int64(i) * 50e6})
	}
	r := nodeRates(ops, 2e9, 1e9)
	if len(r[1]) != 3 || r[1][0] != 20 || r[2][0] != 5 || r[1][1] != 0 {
		t.Errorf("rates = %v", r)
	}
}

func TestLabelsFitTheirBands(t *testing.T) {
	if l, ok := fitLabel("isolated n3 (leads ranges 1,2,3)", 100); !ok || float64(len([]rune(l)))*charWidth > 100 || !strings.HasSuffix(l, "…") {
		t.Errorf("fitLabel = %q %v", l, ok)
	}
	if _, ok := fitLabel("n2", 10); ok {
		t.Errorf("a label in a 10-unit band")
	}
	// Two faults of one kind that overlap stack on two rows; a third,
	// after both, goes back to the first.
	faults := []history.Fault{
		{Kind: "kill", Detail: "n1", Start: 1e9, End: 5e9},
		{Kind: "kill", Detail: "n2", Start: 2e9, End: 3e9},
		{Kind: "pause", Detail: "n3", Start: 2e9, End: 3e9},
		{Kind: "kill", Detail: "n3", Start: 6e9, End: 7e9},
	}
	tl := newTimeline(nil, faults)
	if strings.Join(tl.lanes, ",") != "kill,kill,pause" || tl.laneOf[0] != 0 || tl.laneOf[1] != 1 || tl.laneOf[2] != 2 || tl.laneOf[3] != 0 {
		t.Errorf("lanes %v, laneOf %v", tl.lanes, tl.laneOf)
	}
	// Every label is clipped to its band and its estimated width fits.
	svg := tl.svg()
	texts := regexp.MustCompile(`<clipPath id="band(\d+)"><rect x="[\d.]+" y="\d+" width="([\d.]+)"[^>]*/></clipPath><text [^>]*clip-path="url\(#band(\d+)\)">([^<]*)</text>`).FindAllStringSubmatch(svg, -1)
	if len(texts) == 0 {
		t.Fatalf("no clipped labels:\n%s", svg)
	}
	for _, m := range texts {
		w, _ := strconv.ParseFloat(m[2], 64)
		if m[1] != m[3] || float64(len([]rune(m[4])))*charWidth > w {
			t.Errorf("label %q (clip %s) does not fit %v units", m[4], m[3], w)
		}
	}
}

// TestFaultSection: the report shows each fault's availability and each
// node's recovery, rounded, and why a range served nothing.
func TestFaultSection(t *testing.T) {
	rs := topo.EvenRanges(3)
	// Fault 1: n2, range 2's leader, is killed from 5 s to 8 s; range 2
	// serves again through n1 and n3 at 6.234567891 s. Fault 2: n3, range
	// 3's leader, is killed from 10 s to 13 s and range 3 serves nothing
	// until it is back.
	var ops []history.Op
	for at := int64(0); at < 20e9; at += 50e6 {
		for node := 1; node <= 3; node++ {
			for _, r := range rs {
				op := history.Op{Node: node, F: "write", Key: topo.KeyIn("k", r), Invoke: at, Complete: at + 5e6, Type: history.TypeOK}
				fault1 := at >= 5e9 && at < 8e9 && (node == 2 || r.ID == 2 && at < 6_234_567_891)
				fault2 := at >= 10e9 && at < 13e9 && (node == 3 || r.ID == 3)
				if fault1 || fault2 {
					op.Type = history.TypeFail
				}
				ops = append(ops, op)
			}
		}
	}
	before := []topo.Range{{ID: 1, First: rs[0].First, Last: rs[0].Last, Replicas: []int{1, 2, 3}, Leader: 1},
		{ID: 2, First: rs[1].First, Last: rs[1].Last, Replicas: []int{1, 2, 3}, Leader: 2},
		{ID: 3, First: rs[2].First, Last: rs[2].Last, Replicas: []int{1, 2, 3}, Leader: 3}}
	faults := []history.Fault{
		{Kind: "kill-leader", Detail: "n2", Start: 5e9, End: 8e9, Down: []int{2}, Before: before},
		{Kind: "kill-leader", Detail: "n3", Start: 10e9, End: 13e9, Down: []int{3}, Before: before},
	}
	rep := avail.Analyze(avail.Input{Ops: ops, Faults: faults, Nodes: []int{1, 2, 3}, Ranges: rs, End: 20e9})
	in := Input{Title: "t", Ops: ops, Faults: faults, Availability: &rep, Results: []check.Result{{Name: "x", Valid: true}}}
	s := Summary(in)
	for _, want := range []string{
		"fault 1: kill-leader n2, +5.000s..+8.000s (3s)",
		"n1: after the start 1.26s (range 2: its leader n2 was killed); after the end 5ms",
		"n2 (stopped by the fault): after the end 5ms",
		"of calm (180/s)",
		"through n1, range 3 served nothing (60 ops tried): range 3's leader n3 was killed and a majority n1,n2 remained: it should have elected a new leader",
		"n2: after the start 3.01s (range 3: its leader n3 was killed)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	page, err := HTML(t.TempDir(), in)
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, page)
	for _, want := range []string{"Availability and recovery per fault", "Latency by operation", "Throughput by node", "1.26s (range 2: its leader n2 was killed)"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
}
