package jepsen

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/jepsen/avail"
	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/report"
)

// Verdicts on availability, beside the checkers' verdicts on safety. Each
// can fail: a bound missed, a floor not reached, a refusal seen; and each
// says Unknown rather than valid when it had nothing to judge (a leader
// nemesis asked for but never injected, a run too short to tell).

// availabilityVerdicts are the leader nemeses' verdicts on a run. One with
// nothing to judge fails the run (Unknown) when the run asked for leader
// nemeses only — it was run to be judged — and is a note otherwise: a run
// of every nemesis need not draw each kind.
func availabilityVerdicts(rep avail.Report, cfg Config, workloadEnd int64) (results []check.Result, notes []string) {
	dedicated := len(cfg.Nemeses) > 0 && !slices.ContainsFunc(cfg.Nemeses, func(k string) bool { return !slices.Contains(leaderNemeses, k) })
	add := func(r check.Result, ok bool) {
		switch {
		case !ok:
		case r.Unknown && !dedicated:
			notes = append(notes, fmt.Sprintf("%s not judged: %s", r.Name, r.Summary))
		default:
			results = append(results, r)
		}
	}
	add(leaderRecoveryResult(rep, cfg.Nemeses, cfg.RecoveryBound, workloadEnd))
	add(availabilityResult(rep, cfg.Nemeses, cfg.AvailabilityFloor))
	return results, notes
}

// minJudgedFault is the shortest slow-leader fault whose availability is
// judged: over less, a few ops either way swing the ratio.
const minJudgedFault = int64(time.Second)

// leaderRecoveryResult judges kill-leader and pause-leader faults: every
// node the fault did not stop must have its clients served again, on every
// range they tried, within bound of the fault's start.
func leaderRecoveryResult(rep avail.Report, requested []string, bound time.Duration, workloadEnd int64) (check.Result, bool) {
	kinds := []string{"kill-leader", "pause-leader"}
	if !slices.ContainsFunc(requested, func(k string) bool { return slices.Contains(kinds, k) }) {
		return check.Result{}, false
	}
	res := check.Result{Name: "leader-recovery"}
	var judged, faults int
	var worst int64
	var perFault []string
	for _, f := range rep.Faults {
		if !slices.Contains(kinds, f.Kind) {
			continue
		}
		faults++
		var parts []string
		for _, n := range f.Nodes {
			if n.Down {
				continue
			}
			r := n.FromStart
			tag := fmt.Sprintf("fault %d %s %s at %s: n%d", f.Index+1, f.Kind, f.Detail, history.Seconds(f.Start), n.Node)
			switch {
			case !r.Measured:
				parts = append(parts, fmt.Sprintf("n%d not measured", n.Node))
			case r.Recovered && r.After <= int64(bound):
				judged++
				worst = max(worst, r.After)
				parts = append(parts, fmt.Sprintf("n%d %s", n.Node, report.Duration(r.After)))
			case r.Recovered:
				judged++
				worst = max(worst, r.After)
				parts = append(parts, fmt.Sprintf("n%d %s", n.Node, report.Duration(r.After)))
				res.Problems = append(res.Problems, fmt.Sprintf("%s served again only after %s (slowest: range %d%s), bound %s",
					tag, report.Duration(r.After), r.Range, why(r.Why), report.D(bound)))
			case workloadEnd-f.Start >= int64(bound):
				judged++
				parts = append(parts, fmt.Sprintf("n%d never", n.Node))
				res.Problems = append(res.Problems, fmt.Sprintf("%s was not served again on range %d%s in the %s left of the workload, bound %s",
					tag, r.Range, why(r.Why), report.Duration(r.After), report.D(bound)))
			default:
				parts = append(parts, fmt.Sprintf("n%d not judged (the workload ended first)", n.Node))
			}
		}
		perFault = append(perFault, fmt.Sprintf("fault %d (%s %s): %s", f.Index+1, f.Kind, f.Detail, strings.Join(parts, ", ")))
	}
	switch {
	case len(res.Problems) > 0:
		res.Summary = fmt.Sprintf("%d of %d node recoveries after a lost leader took longer than %s", len(res.Problems), judged, report.D(bound))
	case judged == 0:
		res.Unknown = true
		res.Summary = fmt.Sprintf("nothing to judge: %d kill-leader/pause-leader faults injected, no surviving node's recovery measured", faults)
	default:
		res.Valid = true
		res.Summary = fmt.Sprintf("every surviving node served again within %s of a lost leader (%d recoveries in %d faults, worst %s)",
			report.D(bound), judged, faults, report.Duration(worst))
	}
	// Every node's number, not only the failures: the point is to see
	// how close to the bound the cluster runs.
	if len(perFault) > 0 {
		res.Summary += "; " + strings.Join(perFault, "; ")
	}
	return res, true
}

// nodeRatios is "n1 0.95, n2 0.10, n3 0.93": each node's share of its
// calm throughput during f, to show where the slowness was.
func nodeRatios(f avail.Fault, rep avail.Report) string {
	var parts []string
	for _, n := range f.Nodes {
		parts = append(parts, fmt.Sprintf("n%d %.2f", n.Node, n.During.Ratio(rep.CalmByNode[n.Node])))
	}
	return strings.Join(parts, ", ")
}

// leadersLate is "; late in the fault n2 led ranges 1,3 and n3 led range 2",
// when it was probed: did leadership move off the slow node?
func leadersLate(f avail.Fault) string {
	if f.LeadersLate == nil {
		return ""
	}
	by := map[int][]int{}
	var leaders []int
	for r, n := range f.LeadersLate {
		if by[n] == nil {
			leaders = append(leaders, n)
		}
		by[n] = append(by[n], r)
	}
	if len(leaders) == 0 {
		return "; late in the fault no node led any range"
	}
	slices.Sort(leaders)
	var parts []string
	for _, n := range leaders {
		slices.Sort(by[n])
		parts = append(parts, fmt.Sprintf("n%d led ranges %s", n, intsText(by[n])))
	}
	return "; late in the fault " + strings.Join(parts, ", ")
}

func why(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// availabilityResult judges slow-leader faults: the ok ops/s through the
// nodes other than the slow one during each must be at least floor times
// theirs in the calm periods. The slow node's own clients are left out of
// the verdict (shown, not judged): every request they make crosses the
// slow links whoever leads, so no leadership move can help them; what the
// cluster owes is that one slow node does not slow everyone else.
func healthyRates(f avail.Fault, rep avail.Report) (during, calm float64) {
	for _, nd := range f.Nodes {
		if slices.Contains(f.Slow, nd.Node) {
			continue
		}
		if r := nd.During.PerSec(); !math.IsNaN(r) {
			during += r
		}
		if r := rep.CalmByNode[nd.Node].PerSec(); !math.IsNaN(r) {
			calm += r
		}
	}
	return during, calm
}

// availabilityResult judges slow-leader faults (healthyRates).
func availabilityResult(rep avail.Report, requested []string, floor float64) (check.Result, bool) {
	if !slices.Contains(requested, "slow-leader") {
		return check.Result{}, false
	}
	res := check.Result{Name: "slow-leader-availability"}
	var judged, faults int
	var ratios []string
	for _, f := range rep.Faults {
		if f.Kind != "slow-leader" {
			continue
		}
		faults++
		during, calm := healthyRates(f, rep)
		a := during / calm
		tag := fmt.Sprintf("fault %d %s at %s", f.Index+1, f.Detail, history.Seconds(f.Start))
		if math.IsNaN(a) || calm == 0 || f.End-f.Start < minJudgedFault {
			ratios = append(ratios, tag+": not judged (too short, or no calm period to compare with)")
			continue
		}
		judged++
		line := fmt.Sprintf("%s: %.3g ok ops/s through the other nodes against %.3g calm: %.2f (all nodes, the slow one included: %.2f)",
			tag, during, calm, a, f.Availability(rep.Calm))
		ratios = append(ratios, line)
		if a < floor {
			res.Problems = append(res.Problems, fmt.Sprintf("%s, below the floor %.2f (through each node: %s)%s", line, floor, nodeRatios(f, rep), leadersLate(f)))
		}
	}
	switch {
	case len(res.Problems) > 0:
		res.Summary = fmt.Sprintf("%d of %d slow-leader faults kept less than %.2f of calm throughput", len(res.Problems), judged, floor)
	case judged == 0:
		res.Unknown = true
		res.Summary = fmt.Sprintf("nothing to judge: %d slow-leader faults injected, none long enough with calm to compare", faults)
	default:
		res.Valid = true
		res.Summary = fmt.Sprintf("every slow-leader fault kept at least %.2f of calm throughput (%d faults)", floor, judged)
	}
	if len(ratios) > 0 {
		res.Summary += "; " + strings.Join(ratios, "; ")
	}
	return res, true
}

// messageSizeResult: no node may have refused a message for its size —
// the counter orbit_transport_oversized_messages_total is zero (or absent)
// on every node, and no node's log says it refused one.
func messageSizeResult(fs []sizeFinding) check.Result {
	res := check.Result{Name: "message-size"}
	var scraped, notes []string
	for _, f := range fs {
		if f.scraped {
			scraped = append(scraped, fmt.Sprintf("n%d", f.node))
		} else {
			notes = append(notes, fmt.Sprintf("n%d: /metrics not read (%v); its log was", f.node, f.scrapeErr))
		}
		if f.counter != 0 {
			res.Problems = append(res.Problems, fmt.Sprintf("n%d: orbit_transport_oversized_messages_total = %g (%s)", f.node, f.counter, strings.Join(f.byPeer, ", ")))
		}
		if f.logHits > 0 {
			res.Problems = append(res.Problems, fmt.Sprintf("n%d: %d log lines say %q; the first: %s", f.node, f.logHits, oversizedLogLine, f.firstHit))
		}
		if f.logErr != nil {
			notes = append(notes, fmt.Sprintf("n%d: its log could not be read: %v", f.node, f.logErr))
		}
	}
	if len(res.Problems) > 0 {
		res.Summary = "a node refused a message larger than MaxMessageBytes: a Raft message (a snapshot chunk, a batch of entries) outgrew the transport's limit"
	} else {
		res.Valid = true
		res.Summary = fmt.Sprintf("no message refused for its size: orbit_transport_oversized_messages_total is 0 or absent on %s, and no node's log says %q",
			orNone(strings.Join(scraped, ",")), oversizedLogLine)
	}
	res.Problems = append(res.Problems, notes...)
	return res
}
