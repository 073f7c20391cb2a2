// Package avail measures how available a cluster stayed through each fault
// of a run, from the history alone: how long each node's clients waited
// for their first successful operation after a fault started (and after it
// ended), how many operations succeeded per second during the fault
// compared with calm periods, and, when a range served nothing through a
// node, why (from what the nemesis recorded of the cluster's shape).
//
// It is pure: the same history and faults give the same numbers, so a
// report can be recomputed from a run's directory, and the tests feed it
// synthetic histories.
package avail

import (
	"math"
	"slices"
	"sort"

	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/topo"
)

// Input is what the analysis needs.
type Input struct {
	Ops    []history.Op
	Faults []history.Fault
	Nodes  []int // every node of the cluster
	// Ranges map a key to its range; nil: every op counts as range 0, so
	// recovery is "any op" rather than "every range".
	Ranges []topo.Range
	// End is when the workload stopped (ns since the run started): ops
	// invoked later (the final reads after the heal) are left out, and a
	// fault still open then ends there.
	End int64
	// Settle is how long after a fault ends the cluster is not counted as
	// calm yet, so that the tail of a fault (a restarted node catching up)
	// does not lower the calm baseline. Zero: DefaultSettle.
	Settle int64
}

// DefaultSettle is Input.Settle's default: one second.
const DefaultSettle = int64(1e9)

// Rate is a number of ok operations over a span of time.
type Rate struct {
	OK   int
	Span int64 // ns
}

// PerSec is ok operations per second; NaN for an empty span.
func (r Rate) PerSec() float64 {
	if r.Span <= 0 {
		return math.NaN()
	}
	return float64(r.OK) / (float64(r.Span) / 1e9)
}

// Ratio is r's rate over calm's: 1 means as available as when calm. NaN
// when either is undefined or calm served nothing.
func (r Rate) Ratio(calm Rate) float64 {
	c := calm.PerSec()
	if math.IsNaN(c) || c == 0 {
		return math.NaN()
	}
	return r.PerSec() / c
}

// Report is the analysis of a run.
type Report struct {
	Calm       Rate         // every node together
	CalmByNode map[int]Rate // through each node
	Faults     []Fault      // in order of start
}

// Fault is one fault's effect.
type Fault struct {
	history.Fault // End is filled in for a fault the run ended first
	Index         int
	Open          bool // the run ended before the fault did
	During        Rate // ok ops completed during the fault, every node
	Nodes         []Node
}

// Availability is the fault's ok rate over the calm rate (NaN: unknown).
func (f Fault) Availability(calm Rate) float64 { return f.During.Ratio(calm) }

// Node is one node's clients during one fault.
type Node struct {
	Node int
	Down bool // the fault stopped the node itself
	// During counts ok ops completed through the node during the fault.
	During Rate
	// FromStart: the time from the fault's start to the first ok op
	// invoked through the node after it, on every range the node's
	// clients tried during the fault. FromEnd: the same from the fault's
	// end, on the ranges tried before the next fault.
	FromStart, FromEnd Recovery
	// Offline lists the ranges the node's clients tried during the fault
	// that served none of them, with the cause when it can be told.
	Offline []Offline
}

// Recovery is the time from a point (a fault's start or end) until a
// node's clients had an ok op, invoked at or after the point, on every
// range they tried: the slowest range decides.
type Recovery struct {
	Measured  bool  // some op was tried; false: nothing to say
	Recovered bool  // every range tried had an ok op before the workload ended
	After     int64 // ns to the slowest range's first ok completion; if not recovered, to the workload's end
	Range     int   // the slowest range (the one not recovered)
	// Why names what happened to that range's leader, when the nemesis
	// recorded it (e.g. "its leader n2 was killed"); empty otherwise.
	Why string
}

// Offline is a range that served nothing through a node during a fault.
type Offline struct {
	Range    int
	Attempts int    // ops tried
	Cause    string // a sentence; starts "cannot tell" when it cannot
}

// Analyze computes the report.
func Analyze(in Input) Report {
	if in.Settle == 0 {
		in.Settle = DefaultSettle
	}
	ops := workloadOps(in)
	faults := closed(in.Faults, in.End)
	rep := Report{CalmByNode: map[int]Rate{}}
	calm := calmSpans(faults, in.End, in.Settle)
	rep.Calm = rateIn(ops, calm, -1)
	for _, n := range in.Nodes {
		rep.CalmByNode[n] = rateIn(ops, calm, n)
	}
	for i, f := range faults {
		next := in.End
		if i+1 < len(faults) {
			next = min(next, faults[i+1].Start)
		}
		af := Fault{Fault: f.Fault, Index: f.index, Open: in.Faults[f.index].End == 0 || in.Faults[f.index].End > in.End,
			During: rateIn(ops, []span{{f.Start, f.End}}, -1)}
		for _, n := range in.Nodes {
			nd := Node{Node: n, Down: slices.Contains(f.Down, n), During: rateIn(ops, []span{{f.Start, f.End}}, n)}
			nd.FromStart = recovery(ops, n, f.Start, f.End, in.End)
			if f.End < in.End {
				nd.FromEnd = recovery(ops, n, f.End, max(next, f.End+1), in.End)
			}
			if nd.FromStart.Measured && nd.FromStart.Range > 0 {
				nd.FromStart.Why = leaderFate(f.Fault, nd.FromStart.Range, n)
			}
			if !nd.Down {
				nd.Offline = offline(ops, f.Fault, n)
			}
			af.Nodes = append(af.Nodes, nd)
		}
		rep.Faults = append(rep.Faults, af)
	}
	return rep
}

// op is a history op with its range.
type op struct {
	history.Op
	rng int
}

// workloadOps keeps the ops invoked during the workload, with their
// ranges, sorted by invocation.
func workloadOps(in Input) []op {
	var out []op
	for _, o := range in.Ops {
		if o.Invoke >= in.End {
			continue
		}
		r := 0
		if in.Ranges != nil {
			r = topo.RangeOf(in.Ranges, o.Key)
		}
		out = append(out, op{o, r})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Invoke < out[j].Invoke })
	return out
}

// indexed is a fault with its index in the input and its end filled in.
type indexed struct {
	history.Fault
	index int
}

// closed returns the faults sorted by start, each ending by end.
func closed(fs []history.Fault, end int64) []indexed {
	out := make([]indexed, 0, len(fs))
	for i, f := range fs {
		if f.Start >= end {
			continue // injected after the workload: nothing to measure
		}
		if f.End == 0 || f.End > end {
			f.End = end
		}
		out = append(out, indexed{f, i})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

type span struct{ from, to int64 }

// calmSpans is [0, end) without the faults and the settling time after
// each.
func calmSpans(fs []indexed, end, settle int64) []span {
	var out []span
	at := int64(0)
	for _, f := range fs {
		if f.Start > at {
			out = append(out, span{at, f.Start})
		}
		at = max(at, f.End+settle)
	}
	if at < end {
		out = append(out, span{at, end})
	}
	return out
}

// rateIn counts ok ops completed within spans, through node (-1: any).
func rateIn(ops []op, spans []span, node int) Rate {
	var r Rate
	for _, s := range spans {
		r.Span += s.to - s.from
	}
	for _, o := range ops {
		if o.Type != history.TypeOK || (node >= 0 && o.Node != node) {
			continue
		}
		for _, s := range spans {
			if s.from <= o.Complete && o.Complete < s.to {
				r.OK++
				break
			}
		}
	}
	return r
}

// recovery measures node's recovery from point: the ranges are those its
// clients tried in [point, until); for each, the first ok op invoked at or
// after point (before end) completes some time after point; the slowest
// range decides.
func recovery(ops []op, node int, point, until, end int64) Recovery {
	tried := map[int]bool{}
	for _, o := range ops {
		if o.Node == node && o.Invoke >= point && o.Invoke < until {
			tried[o.rng] = true
		}
	}
	if len(tried) == 0 {
		return Recovery{}
	}
	first := map[int]int64{}
	for _, o := range ops {
		if o.Node != node || o.Type != history.TypeOK || o.Invoke < point || !tried[o.rng] {
			continue
		}
		if c, ok := first[o.rng]; !ok || o.Complete < c {
			first[o.rng] = o.Complete
		}
	}
	rec := Recovery{Measured: true, Recovered: true}
	for _, r := range sortedKeys(tried) {
		c, ok := first[r]
		if !ok {
			return Recovery{Measured: true, After: end - point, Range: r}
		}
		if d := c - point; d > rec.After || rec.Range == 0 && d == rec.After {
			rec.After, rec.Range = d, r
		}
	}
	return rec
}

// offline lists the ranges node's clients tried during f with no ok op
// completed during it, and why.
func offline(ops []op, f history.Fault, node int) []Offline {
	tried, served := map[int]int{}, map[int]bool{}
	for _, o := range ops {
		if o.Node != node {
			continue
		}
		if o.Invoke >= f.Start && o.Invoke < f.End {
			tried[o.rng]++
		}
		if o.Type == history.TypeOK && o.Complete >= f.Start && o.Complete < f.End {
			served[o.rng] = true
		}
	}
	var out []Offline
	for _, r := range sortedKeys(tried) {
		if !served[r] {
			out = append(out, Offline{Range: r, Attempts: tried[r], Cause: Cause(f, r, node)})
		}
	}
	return out
}

func sortedKeys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
