package history

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/jepsen/topo"
)

// Fault is one injected fault as an interval of the run, so that a report
// can lay faults over the ops they disturbed.
type Fault struct {
	Start int64 `json:"start_ns"` // ns since the run started
	// End is 0 while the fault lasts; a fault never ended (the run stopped
	// first) keeps 0, and a report extends it to the end of the run.
	End    int64  `json:"end_ns"`
	Kind   string `json:"kind"`   // "partition", "kill", "kill-leader", "pause", "slow-leader", ...
	Detail string `json:"detail"` // e.g. "{1,2} | {3}", "node 2"

	// What the nemesis knew about the fault, for the report's analysis of
	// why a range stopped serving. faults.log's text keeps only Kind and
	// Detail; faults.json keeps all of it.

	// Down are the nodes the fault stopped: killed or paused.
	Down []int `json:"down,omitempty"`
	// Cut are the directed links (from, to) the fault cut.
	Cut [][2]int `json:"cut,omitempty"`
	// Slow are the nodes whose every link the fault delayed.
	Slow []int `json:"slow,omitempty"`
	// Before is the ranges as the cluster showed them just before the
	// fault (replicas from GET /cluster, leaders from /metrics); nil when
	// no node answered.
	Before []topo.Range `json:"before,omitempty"`
	// Unanswered is, for each node probed late in the fault, the ranges
	// its GET /cluster could not reach (an empty list: every range
	// answered). A node absent from the map was not probed.
	Unanswered map[int][]int `json:"unanswered,omitempty"`
	// LeadersLate is, late in the fault, each range's leader as the
	// nodes' /metrics (orbit_raft_leader) said; a range nobody claimed
	// is absent. Nil: not probed.
	LeadersLate map[int]int `json:"leaders_late,omitempty"`
}

// Net is the fault's effect on the cluster's nodes and links.
func (f Fault) Net() topo.Net { return topo.Net{Down: f.Down, Cut: f.Cut} }

// FaultLog writes one line per fault start and end
//
//	+12.345s start partition {1,2} | {3}
//	+20.001s end partition {1,2} | {3}
//
// to w and keeps the intervals; safe for concurrent use.
//
// The log is text rather than JSON because people read it beside node logs
// while chasing a failure; ReadFaultLog parses it back.
type FaultLog struct {
	start time.Time

	mu     sync.Mutex
	w      io.Writer
	faults []Fault
	err    error
}

// NewFaultLog returns a FaultLog writing to w (nil: keep only in memory),
// measuring time from start (the same start as the Recorder's, so faults
// and ops share one time line).
func NewFaultLog(w io.Writer, start time.Time) *FaultLog {
	return &FaultLog{start: start, w: w}
}

// Begin records that a fault started now and returns its id for End.
func (l *FaultLog) Begin(kind, detail string) (id int) {
	return l.BeginFault(Fault{Kind: kind, Detail: detail})
}

// BeginFault records that f started now (f.Start and f.End are set here)
// and returns its id for End.
func (l *FaultLog) BeginFault(f Fault) (id int) {
	now := int64(time.Since(l.start))
	l.mu.Lock()
	defer l.mu.Unlock()
	f.Start, f.End = now, 0
	l.faults = append(l.faults, f)
	l.printf(now, "start %s %s", f.Kind, f.Detail)
	return len(l.faults) - 1
}

// Annotate lets edit change fault id's analysis fields while it lasts
// (e.g. add what a probe saw late in the fault). Its times, kind and
// detail are kept whatever edit does. An unknown id is ignored.
func (l *FaultLog) Annotate(id int, edit func(*Fault)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id < 0 || id >= len(l.faults) {
		return
	}
	f := &l.faults[id]
	start, end, kind, detail := f.Start, f.End, f.Kind, f.Detail
	edit(f)
	f.Start, f.End, f.Kind, f.Detail = start, end, kind, detail
}

// End records that fault id ended now. Ending an unknown or already ended
// fault is ignored: a nemesis healing "everything" may end a fault twice.
func (l *FaultLog) End(id int) {
	now := int64(time.Since(l.start))
	l.mu.Lock()
	defer l.mu.Unlock()
	if id < 0 || id >= len(l.faults) || l.faults[id].End != 0 {
		return
	}
	f := &l.faults[id]
	// Invariant: End > 0 once ended, even for a fault ended at its start.
	f.End = max(now, f.Start, 1)
	l.printf(f.End, "end %s %s", f.Kind, f.Detail)
}

// Note writes a timestamped line that is not a fault (e.g. "healed
// everything", "cluster recovered in 1.2s"), so the log tells the whole
// story of the run in order. A note should not begin with "start " or
// "end ", which ReadFaultLog would take for a fault.
func (l *FaultLog) Note(format string, args ...any) {
	now := int64(time.Since(l.start))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.printf(now, format, args...)
}

// Faults returns a copy of the faults, in order of Begin.
func (l *FaultLog) Faults() []Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Fault, len(l.faults))
	copy(out, l.faults)
	return out
}

// Err is the first error met writing the log, if any.
func (l *FaultLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// printf writes one line. l.mu must be held.
func (l *FaultLog) printf(ns int64, format string, args ...any) {
	if l.w == nil || l.err != nil {
		return
	}
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	if _, err := fmt.Fprintf(l.w, "%s %s\n", Seconds(ns), strings.TrimRight(msg, " ")); err != nil {
		l.err = fmt.Errorf("history: writing fault log: %w", err)
	}
}

// ReadFaultLog parses a log written by FaultLog back into faults, for
// re-drawing a report from a run's directory. An end line closes the
// earliest open fault of the same kind and detail; notes are skipped.
func ReadFaultLog(path string) ([]Fault, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseFaultLog(f)
}

// ParseFaultLog is ReadFaultLog on a reader.
func ParseFaultLog(r io.Reader) ([]Fault, error) {
	var faults []Fault
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		ts, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(ts, "+") || !strings.HasSuffix(ts, "s") {
			continue
		}
		sec, err := strconv.ParseFloat(ts[1:len(ts)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("history: fault log line %d: bad time %q", n, ts)
		}
		ns := int64(sec*1e9 + 0.5)
		verb, rest, _ := strings.Cut(rest, " ")
		kind, detail, _ := strings.Cut(rest, " ")
		switch verb {
		case "start":
			faults = append(faults, Fault{Start: ns, Kind: kind, Detail: detail})
		case "end":
			for i := range faults {
				if faults[i].End == 0 && faults[i].Kind == kind && faults[i].Detail == detail {
					faults[i].End = max(ns, faults[i].Start, 1)
					break
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return faults, nil
}
