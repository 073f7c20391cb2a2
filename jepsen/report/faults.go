package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/orbitkernel/orbit/jepsen/avail"
	"github.com/orbitkernel/orbit/jepsen/history"
)

// The per-fault section: for each fault, how available the cluster stayed
// (ok ops/s during it against calm periods) and when each node's clients
// were served again, with the reason a range served nothing when the
// analysis can tell it.

// faultRow is one fault of the section, ready for text or HTML.
type faultRow struct {
	Title        string // "fault 1: kill-leader n2 (leads ranges 1,3)"
	When         string // "+10.000s..+15.000s (5s)"
	Availability string // "112 ok ops/s, 0.62 of calm"
	Nodes        []nodeRow
	Offline      []string // "through n1, range 2 served nothing (84 ops): ..."
}

type nodeRow struct {
	Node, Rate, FromStart, FromEnd string
	Down                           bool
}

func faultRows(rep *avail.Report) []faultRow {
	if rep == nil {
		return nil
	}
	var out []faultRow
	for _, f := range rep.Faults {
		when := fmt.Sprintf("%s..%s (%s)", history.Seconds(f.Start), history.Seconds(f.End), Duration(f.End-f.Start))
		if f.Open {
			when += ", ended by the end of the workload"
		}
		row := faultRow{
			Title:        strings.TrimSpace(fmt.Sprintf("fault %d: %s %s", f.Index+1, f.Kind, f.Detail)),
			When:         when,
			Availability: rateText(f.During, rep.Calm),
		}
		for _, n := range f.Nodes {
			nr := nodeRow{Node: fmt.Sprintf("n%d", n.Node), Down: n.Down, Rate: rateText(n.During, rep.CalmByNode[n.Node]),
				FromStart: recoveryText(n.FromStart), FromEnd: recoveryText(n.FromEnd)}
			if n.Down {
				nr.Node += " (stopped by the fault)"
				nr.FromStart = "—"
			}
			if f.Open {
				nr.FromEnd = "— (the workload ended first)"
			}
			row.Nodes = append(row.Nodes, nr)
			for _, o := range n.Offline {
				row.Offline = append(row.Offline, fmt.Sprintf("through n%d, range %d served nothing (%s tried): %s", n.Node, o.Range, plural(o.Attempts, "op"), o.Cause))
			}
		}
		out = append(out, row)
	}
	return out
}

// rateText is "112 ok ops/s, 0.62 of calm (180/s)".
func rateText(r, calm avail.Rate) string {
	per := r.PerSec()
	if math.IsNaN(per) {
		return "no time to measure"
	}
	s := fmt.Sprintf("%.3g ok ops/s", per)
	if ratio := r.Ratio(calm); !math.IsNaN(ratio) {
		s += fmt.Sprintf(", %.2f of calm (%.3g/s)", ratio, calm.PerSec())
	} else {
		s += ", no calm period to compare with"
	}
	return s
}

// recoveryText is "805ms (range 2: its leader n2 was killed)".
func recoveryText(r avail.Recovery) string {
	switch {
	case !r.Measured:
		return "not measured (no op tried)"
	case !r.Recovered:
		return fmt.Sprintf("NOT recovered: range %d had no ok op in the %s to the end of the workload", r.Range, Duration(r.After))
	}
	s := Duration(r.After)
	if r.Range != 0 {
		s += fmt.Sprintf(" (range %d", r.Range)
		if r.Why != "" {
			s += ": " + r.Why
		}
		s += ")"
	}
	return s
}

// faultsText is the section of summary.txt.
func faultsText(rep *avail.Report) string {
	rows := faultRows(rep)
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "availability and recovery per fault (calm: %s; recovery: until a node's clients had an ok op, invoked after the fault's start or end, on every range they tried):\n",
		calmText(rep.Calm))
	for _, r := range rows {
		fmt.Fprintf(&b, "  %s, %s: %s\n", r.Title, r.When, r.Availability)
		for _, n := range r.Nodes {
			if n.Down {
				fmt.Fprintf(&b, "    %s: after the end %s\n", n.Node, n.FromEnd)
				continue
			}
			fmt.Fprintf(&b, "    %s: after the start %s; after the end %s; %s\n", n.Node, n.FromStart, n.FromEnd, n.Rate)
		}
		for _, o := range r.Offline {
			fmt.Fprintf(&b, "    %s\n", o)
		}
	}
	return b.String()
}

func calmText(calm avail.Rate) string {
	if calm.Span <= 0 {
		return "no calm period"
	}
	return fmt.Sprintf("%.3g ok ops/s over %s", calm.PerSec(), Duration(calm.Span))
}

// plural is "1 op", "2 ops".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
