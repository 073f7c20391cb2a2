package sim

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Shrinking: a failing seed's fault plan is usually far bigger than its bug
// needs (every fault kind the swarm drew, five seconds of them, every
// network knob on). Shrink searches for a smaller plan that fails the same
// way on the same seed, so that the replay a person reads is short.
//
// The search is a plain delta-debugging loop. A plan is simplified by
// reductions, each of which makes one component smaller and none larger:
// drop a fault kind, turn a knob off (loss, duplication, replays,
// reordering, torn writes, sync latency, buggify, clock drift and steps,
// disk error rates), calm the latency; then halve the time under faults,
// double the interval between faults, halve how long a fault lasts, halve
// the rates of loss, duplication, replays and disk errors, halve the
// clients (for a scenario that takes a count). The set reductions are
// tried all at once, then in halves, quarters, and so on down to one at a
// time (ddmin); the numeric ones by halving, then by a quarter. A candidate
// is kept only if it fails with the same failure class (FailureClass) as
// the original, so the search cannot wander off to a different bug. Rounds
// repeat until a round keeps nothing or a bound (runs, wall time) is hit.
//
// Every candidate runs from its text form (ParsePlan(p.Text())), so the
// printed -plan replays exactly the run that was judged. Any plan change
// changes the random draws that follow, so a smaller plan fails by a
// different path to the same check; the search is deterministic given the
// seed and the plan, except where the wall-time bound cuts it short.

// ShrinkOptions bound a search.
type ShrinkOptions struct {
	// MaxRuns bounds the runs a search makes, the replay of the original
	// plan included. Default 60.
	MaxRuns int
	// MaxWall bounds its wall time. Default 10 minutes.
	MaxWall time.Duration
	// Logf, if set, receives one line per run.
	Logf func(format string, args ...any)
}

// Shrunk is the outcome of a search.
type Shrunk struct {
	Scenario string
	Seed     uint64
	// Class is the failure class every accepted plan fails with.
	Class string
	// Original is the failing run's plan and Smallest the smallest plan
	// found that fails the same way; both set FaultTime (and Clients,
	// where the scenario takes a count) explicitly. First and Last are
	// their runs.
	Original, Smallest Plan
	First, Last        *Result
	// Runs is how many runs the search made; Accepted how many of them
	// failed the same way and became the plan to shrink further.
	Runs, Accepted int
	Wall           time.Duration
	// Bounded says the search stopped at a bound rather than at a plan no
	// single reduction could shrink.
	Bounded bool
}

// Shrink searches for a smaller plan on which scenario sc fails the way the
// run failed did (see the comment at the top of this file). It first
// replays the original plan from its text form and returns an error if
// that does not give the same trace.
func Shrink(sc Scenario, failed *Result, opts ShrinkOptions) (*Shrunk, error) {
	if failed.Err == nil {
		return nil, fmt.Errorf("seed %d passed: nothing to shrink", failed.Seed)
	}
	if opts.MaxRuns <= 0 {
		opts.MaxRuns = 60
	}
	if opts.MaxWall <= 0 {
		opts.MaxWall = 10 * time.Minute
	}
	sh := &shrinker{sc: sc, opts: opts, start: time.Now(), seen: map[string]bool{},
		out: &Shrunk{Scenario: sc.Name, Seed: failed.Seed, Class: FailureClass(failed)}}
	orig := failed.Plan
	if orig.FaultTime == 0 {
		orig.FaultTime = sc.FaultTime
	}
	if orig.Clients == 0 && sc.SetupClients != nil {
		orig.Clients = sc.Clients
	}
	sh.out.Original, sh.out.Smallest = orig, orig
	if !sh.try("original plan, from its text", orig) {
		return sh.out, fmt.Errorf("the original plan replayed from its text does not fail the same way (%s, trace %016x; the run had %s, trace %016x): its text form or the scenario's Adjust loses something",
			describeFailure(sh.out.First), sh.out.First.Trace, sh.out.Class, failed.Trace)
	}
	if sh.out.First.Trace != failed.Trace {
		return sh.out, fmt.Errorf("the original plan replayed from its text gave trace %016x, the run %016x: its text form or the scenario's Adjust loses something",
			sh.out.First.Trace, failed.Trace)
	}
	for !sh.bounded() {
		kept := sh.reduceSet()
		kept = sh.reduceNumbers() || kept
		if !kept {
			break
		}
	}
	sh.out.Bounded = sh.bounded()
	sh.out.Wall = time.Since(sh.start)
	if !noLarger(sh.out.Smallest, sh.out.Original) {
		panic(fmt.Sprintf("shrink: %q grew from %q", sh.out.Smallest.Text(), sh.out.Original.Text()))
	}
	return sh.out, nil
}

// FailureClass names the way a run failed, without the numbers that vary
// from run to run: the panicking task and its message, or a deadlock, in
// whatever phase (a shorter run may hit the same panic just after the
// heal); otherwise the phase and the failed check's name (its error up to
// the first colon: "check: linearizability", "progress: no progress").
// It is "" for a run that passed.
func FailureClass(r *Result) string {
	if r.Err == nil {
		return ""
	}
	var (
		panicked *TaskPanic
		deadlock *DeadlockError
		kind     string
	)
	switch {
	case errors.As(r.Err, &panicked):
		kind = fmt.Sprintf("panic in task %q: %s", panicked.Task, firstLineOf(fmt.Sprint(panicked.Value)))
	case errors.As(r.Err, &deadlock):
		kind = "deadlock"
	default:
		kind, _, _ = strings.Cut(firstLineOf(r.Err.Error()), ":")
		kind = r.Phase + ": " + kind
	}
	return numbers.ReplaceAllString(kind, "N")
}

var numbers = regexp.MustCompile(`0x[0-9a-fA-F]+|[0-9]+`)

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func describeFailure(r *Result) string {
	if r.Err == nil {
		return "passes"
	}
	return FailureClass(r)
}

type shrinker struct {
	sc    Scenario
	opts  ShrinkOptions
	start time.Time
	seen  map[string]bool // plan texts already run
	out   *Shrunk
}

func (sh *shrinker) bounded() bool {
	return sh.out.Runs >= sh.opts.MaxRuns || time.Since(sh.start) >= sh.opts.MaxWall
}

func (sh *shrinker) logf(format string, args ...any) {
	if sh.opts.Logf != nil {
		sh.opts.Logf(format, args...)
	}
}

// try runs cand (from its text form) and keeps it if it fails the same
// way. It runs nothing when a bound is hit or cand was run before.
func (sh *shrinker) try(why string, cand Plan) bool {
	text := cand.Text()
	if sh.bounded() || sh.seen[text] {
		return false
	}
	sh.seen[text] = true
	p, err := ParsePlan(text)
	if err != nil {
		panic(fmt.Sprintf("shrink: a candidate plan does not read back: %v", err))
	}
	r := RunPlan(sh.sc, sh.out.Seed, p)
	sh.out.Runs++
	same := r.Err != nil && FailureClass(r) == sh.out.Class
	verdict := "passes"
	switch {
	case same:
		verdict = "FAILS THE SAME WAY: kept"
	case r.Err != nil:
		verdict = "fails otherwise (" + FailureClass(r) + ")"
	}
	sh.logf("shrink run %2d  %-36s %-44s %5.1fs  %s", sh.out.Runs, why, planSize(p, r), r.Wall.Seconds(), verdict)
	if sh.out.First == nil {
		sh.out.First = r
	}
	if same {
		sh.out.Smallest, sh.out.Last = p, r
		sh.out.Accepted++
	}
	return same
}

// planSize is a short account of a plan's size, for the log.
func planSize(p Plan, r *Result) string {
	s := fmt.Sprintf("%d fault kinds, %v, %d nemesis events", len(p.Faults), p.FaultTime, len(r.Faults))
	if p.Clients > 0 {
		s += fmt.Sprintf(", %d clients", p.Clients)
	}
	return s
}

// reduction is one way to make a plan smaller in one component.
type reduction struct {
	name  string
	apply func(p *Plan)
}

// calmLatency is the latency a "calm latency" reduction brings the network
// down to (Calm's).
const calmLatency = 500 * time.Microsecond

// reductions lists the set reductions that would change p.
func reductions(p Plan) []reduction {
	var rs []reduction
	for _, f := range p.Faults {
		rs = append(rs, reduction{"-" + string(f), func(p *Plan) {
			p.Faults = slices.DeleteFunc(slices.Clone(p.Faults), func(g Fault) bool { return g == f })
		}})
	}
	knob := func(on bool, name string, off func(p *Plan)) {
		if on {
			rs = append(rs, reduction{name, off})
		}
	}
	knob(p.Buggify, "-buggify", func(p *Plan) { p.Buggify = false })
	knob(p.Loss > 0, "-loss", func(p *Plan) { p.Loss = 0 })
	knob(p.Dup > 0, "-dup", func(p *Plan) { p.Dup = 0 })
	knob(p.Replay > 0, "-replay", func(p *Plan) { p.Replay, p.ReplayDelay = 0, 0 })
	knob(p.Reorder, "-reorder", func(p *Plan) { p.Reorder = false })
	knob(p.TornPercent > 0, "-torn", func(p *Plan) { p.TornPercent = 0 })
	knob(p.DiskSyncLatency > 0, "-sync-latency", func(p *Plan) { p.DiskSyncLatency = 0 })
	knob(p.Has(FaultClock) && p.ClockRatePPM > 0, "-clock-drift", func(p *Plan) { p.ClockRatePPM = 0 })
	knob(p.Has(FaultClock) && p.ClockStep > 0, "-clock-step", func(p *Plan) { p.ClockStep = 0 })
	knob(p.Has(FaultDisk) && p.DiskWriteErrorRate > 0, "-disk-write-errors", func(p *Plan) { p.DiskWriteErrorRate = 0 })
	knob(p.Has(FaultDisk) && p.DiskReadErrorRate > 0, "-disk-read-errors", func(p *Plan) { p.DiskReadErrorRate = 0 })
	knob(p.LatencyMin > calmLatency || p.LatencyMean > calmLatency, "calm-latency", func(p *Plan) {
		p.LatencyMin, p.LatencyMean = min(p.LatencyMin, calmLatency), min(p.LatencyMean, calmLatency)
	})
	return rs
}

// normalize zeroes what the plan cannot use (knobs of fault kinds it does
// not have), so that plans that run alike read alike.
func normalize(p Plan) Plan {
	if len(p.Faults) == 0 {
		p.Interval, p.Duration = 0, 0
	}
	if !p.Has(FaultClock) {
		p.ClockRatePPM, p.ClockStep = 0, 0
	}
	if !p.Has(FaultDisk) {
		p.DiskWriteErrorRate, p.DiskReadErrorRate = 0, 0
	}
	if p.Replay == 0 {
		p.ReplayDelay = 0
	}
	return p
}

// reduceSet applies set reductions in ddmin fashion: all at once, then in
// ever smaller chunks down to one at a time, keeping every chunk whose
// plan fails the same way. It reports whether it kept any.
func (sh *shrinker) reduceSet() bool {
	rs := reductions(sh.out.Smallest)
	kept := false
	// After keeping a chunk, the next pass starts at the chunk that
	// followed it, rather than retrying the ones that just failed first.
	from := 0
	for n := 1; len(rs) > 0 && !sh.bounded(); {
		n = min(n, len(rs))
		keptChunk := false
		for k := range n {
			i := (from + k) % n
			chunk := rs[i*len(rs)/n : (i+1)*len(rs)/n]
			cand := sh.out.Smallest
			names := make([]string, len(chunk))
			for j, r := range chunk {
				r.apply(&cand)
				names[j] = r.name
			}
			if sh.try(strings.Join(names, " "), normalize(cand)) {
				rs = slices.Concat(rs[:i*len(rs)/n], rs[(i+1)*len(rs)/n:])
				keptChunk, kept, from = true, true, i
				break
			}
		}
		switch {
		case keptChunk:
			n = max(n-1, 1)
		case n == len(rs):
			return kept
		default:
			n, from = n*2, 0
		}
	}
	return kept
}

// reduceNumbers shrinks the numeric components, one at a time: halving
// while that fails the same way, then taking a quarter off while that
// does. It reports whether it kept any.
func (sh *shrinker) reduceNumbers() bool {
	const (
		faultTimeMin = 100 * time.Millisecond
		durationMin  = 10 * time.Millisecond
		rateMin      = 1e-4
	)
	// Each step returns the plan one notch smaller (by half, or by a
	// quarter if gentle), what it changed, and false if it cannot shrink.
	type step func(p Plan, gentle bool) (Plan, string, bool)
	factor := func(gentle bool) (num, den int64) {
		if gentle {
			return 3, 4
		}
		return 1, 2
	}
	shorter := func(d time.Duration, gentle bool) time.Duration {
		num, den := factor(gentle)
		return (d * time.Duration(num) / time.Duration(den)).Round(time.Millisecond)
	}
	steps := []step{
		func(p Plan, gentle bool) (Plan, string, bool) {
			d := shorter(p.FaultTime, gentle)
			p.FaultTime = d
			return p, "fault-time " + d.String(), d >= faultTimeMin
		},
		func(p Plan, gentle bool) (Plan, string, bool) {
			num, den := factor(gentle)
			d := (p.Interval * time.Duration(den) / time.Duration(num)).Round(time.Millisecond)
			p.Interval = d
			// Beyond twice the time under faults, hardly a fault is left
			// to space out.
			return p, "interval " + d.String(), len(p.Faults) > 0 && d <= 2*p.FaultTime
		},
		func(p Plan, gentle bool) (Plan, string, bool) {
			d := shorter(p.Duration, gentle)
			p.Duration = d
			return p, "duration " + d.String(), len(p.Faults) > 0 && d >= durationMin
		},
		func(p Plan, gentle bool) (Plan, string, bool) {
			num, den := factor(gentle)
			some := false
			for _, r := range []*float64{&p.Loss, &p.Dup, &p.Replay, &p.DiskWriteErrorRate, &p.DiskReadErrorRate} {
				if *r >= rateMin {
					*r, some = floorDigits(*r*float64(num)/float64(den), 2), true
				}
			}
			return p, fmt.Sprintf("rates x%d/%d", num, den), some
		},
		func(p Plan, gentle bool) (Plan, string, bool) {
			n := p.Clients / 2
			if gentle {
				n = p.Clients - 1
			}
			ok := sh.sc.SetupClients != nil && n >= 1
			p.Clients = n
			return p, fmt.Sprintf("clients %d", n), ok
		},
	}
	kept := false
	for _, next := range steps {
		for _, gentle := range []bool{false, true} {
			for !sh.bounded() {
				cand, what, ok := next(sh.out.Smallest, gentle)
				if !ok || !sh.try(what, cand) {
					break
				}
				kept = true
			}
		}
	}
	return kept
}

// floorDigits rounds x > 0 down to the given number of significant
// digits, so that a shrunk rate reads short ("0.0053", not
// "0.005330850800162715").
func floorDigits(x float64, digits int) float64 {
	scale := math.Pow(10, float64(digits)-math.Ceil(math.Log10(x)))
	v, err := strconv.ParseFloat(strconv.FormatFloat(math.Floor(x*scale)/scale, 'g', digits, 64), 64)
	if err != nil || v > x {
		return x
	}
	return v
}

// noLarger reports whether p is no larger than q in any component: its
// faults a subset of q's, every rate, time, percentage and count at most
// q's, every knob on in p also on in q, and faults no more often.
func noLarger(p, q Plan) bool {
	for _, f := range p.Faults {
		if !q.Has(f) {
			return false
		}
	}
	if len(p.Faults) > 0 && (p.Interval < q.Interval || p.Duration > q.Duration) {
		return false
	}
	return p.FaultTime <= q.FaultTime && p.Clients <= q.Clients &&
		p.Loss <= q.Loss && p.Dup <= q.Dup && p.Replay <= q.Replay && p.ReplayDelay <= q.ReplayDelay &&
		(!p.Reorder || q.Reorder) && (!p.Buggify || q.Buggify) &&
		p.TornPercent <= q.TornPercent && p.DiskSyncLatency <= q.DiskSyncLatency &&
		p.ClockRatePPM <= q.ClockRatePPM && p.ClockStep <= q.ClockStep && p.ClockBound == q.ClockBound && p.ClockJump == q.ClockJump &&
		p.DiskWriteErrorRate <= q.DiskWriteErrorRate && p.DiskReadErrorRate <= q.DiskReadErrorRate &&
		p.LatencyMin <= q.LatencyMin && p.LatencyMean <= q.LatencyMean
}

// Smaller reports whether s found a plan strictly smaller than the
// original.
func (s *Shrunk) Smaller() bool {
	return s.Smallest.Text() != s.Original.Text() && noLarger(s.Smallest, s.Original)
}

// Summary is what a search prints at its end: how it went, the original
// and the smallest plan, how the smallest fails, and replay, the command
// that reruns it.
func (s *Shrunk) Summary(replay string) string {
	var b strings.Builder
	stop := "no single reduction keeps the failure"
	if s.Bounded {
		stop = "stopped at a bound"
	}
	fmt.Fprintf(&b, "shrink: %d runs, %d kept, %.1fs wall; %s\n", s.Runs, s.Accepted, s.Wall.Seconds(), stop)
	fmt.Fprintf(&b, "shrink: original  (%s)\n    -plan='%s'\n", planSize(s.Original, s.First), s.Original.Text())
	if !s.Smaller() {
		fmt.Fprintf(&b, "shrink: no smaller plan fails the same way\n")
	} else {
		fmt.Fprintf(&b, "shrink: smallest  (%s)\n    -plan='%s'\n", planSize(s.Smallest, s.Last), s.Smallest.Text())
	}
	fmt.Fprintf(&b, "shrink: fails in %s: %s\n", s.Last.Phase, firstLineOf(s.Last.Err.Error()))
	fmt.Fprintf(&b, "shrink: replay: %s\n", replay)
	return b.String()
}
