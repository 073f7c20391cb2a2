package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// leaseDriftBoundPPM is consensus.DefaultMaxClockDrift in parts per
// million: the clock rate error leader leases assume. (The simulator
// cannot import consensus, whose tests import it; a test of this package
// checks the two agree.)
const leaseDriftBoundPPM = 50000

// Fault is a kind of trouble the fault plan can cause.
type Fault string

const (
	FaultPartition Fault = "partition" // split the targets into two sides, both ways
	FaultOneWay    Fault = "one-way"   // cut links in one direction only
	FaultIsolate   Fault = "isolate"   // cut one node off from everyone
	FaultClog      Fault = "clog"      // hold one link's messages for a while
	FaultCrash     Fault = "crash"     // kill a node; restart it later
	FaultPause     Fault = "pause"     // stop scheduling a node; resume it later
	FaultClock     Fault = "clock"     // step a node's clock and change its drift
	FaultDisk      Fault = "disk"      // make a node's disk fail I/O for a while
	// FaultCorrupt crashes a node and flips a bit of what its disk holds
	// durably (a write-ahead log, an sstable or the MANIFEST) before it
	// restarts. Only scenarios that rebuild a damaged node take it
	// (Scenario.Rebuilds).
	FaultCorrupt Fault = "corrupt"
)

// AllFaults lists every fault kind, in a fixed order.
var AllFaults = []Fault{FaultPartition, FaultOneWay, FaultIsolate, FaultClog, FaultCrash, FaultPause, FaultClock, FaultDisk, FaultCorrupt}

// Plan is one run's fault settings. Swarm testing draws a different plan for
// every seed, so that some runs hammer one fault hard while others mix many
// lightly; a bug that needs a rare combination then shows up in some seed.
type Plan struct {
	// Network knobs, in force for the whole fault phase.
	LatencyMin, LatencyMean time.Duration
	Loss, Dup               float64
	Reorder                 bool
	Replay                  float64
	ReplayDelay             time.Duration
	// Faults the nemesis chooses from; none means a calm run.
	Faults []Fault
	// Interval is the mean time between two faults; Duration the mean time
	// a fault lasts before it is undone.
	Interval, Duration time.Duration
	// ClockRatePPM bounds the drift of a clock fault (parts per million)
	// and ClockStep its step, either way.
	ClockRatePPM float64
	ClockStep    time.Duration
	// ClockBound, if set, keeps every node's clock within it of true
	// time: a step is cut short at the bound, and the drift that follows
	// points back toward true time. Two clocks are then at most twice it
	// apart (plus what drift adds before it turns), so a scenario can
	// put clocks near a maximum offset without crossing it. Set by a
	// scenario's Adjust; the shrinker leaves it alone.
	ClockBound time.Duration
	// ClockJump, if set, makes a third of the clock faults jumps: a step
	// of 1 s up to ClockJump either way, past any ClockBound, undone after
	// the fault's duration or at the heal (as the Jepsen clock nemesis's
	// offset is), or in half the cases at the node's restart. What a jump
	// tests is that no component takes a step of the wall clock for
	// elapsed time: the hybrid logical clock does not follow one
	// (kernel/hlc), leases and timeouts read the monotonic clock. A node
	// restarted with its jump in force starts with a clock beyond the
	// bound: its clock-offset check (consensus/clockoffset.go) must fence
	// it until the jump is undone, and then take the correction.
	ClockJump time.Duration
	// With ClockJump set, a sixth of the clock faults are runaways
	// instead: the node's clock is put just inside the offset at which
	// its peers' check fences it (consensus/clockoffset.go: 90% of the
	// maximum offset) from the farthest peer, and drifts away from them
	// at the drift rate leader leases assume (5%), so that it crosses
	// the fence (about 0.4 s later) and then the maximum offset (about
	// 1.4 s later) gradually, between health rounds, rather than in one
	// step as a jump does; undone 2 s plus the fault's duration later,
	// or at the heal (drift and offset both). What it tests is that the node fences itself as its clock
	// leaves the bound, and that nothing it serves meanwhile breaks the
	// checks.
	// Disk faults: error rates while a disk fault lasts, sync latency for
	// the whole fault phase, and how much unsynced data a crash may keep.
	DiskWriteErrorRate, DiskReadErrorRate float64
	DiskSyncLatency                       time.Duration
	TornPercent                           int
	// Buggify turns the components' perturbation points on.
	Buggify bool
	// FaultTime, if set, replaces the scenario's time under faults, and
	// Clients, if set, its number of clients (only a scenario with
	// SetupClients takes one). Swarm plans leave both zero; the shrinker
	// sets them to shorten a failing run.
	FaultTime time.Duration
	Clients   int
}

// Calm is a plan without faults: latency only.
func Calm() Plan {
	return Plan{LatencyMin: 500 * time.Microsecond, LatencyMean: 500 * time.Microsecond}
}

// DrawPlan draws a swarm plan from rng.
func DrawPlan(rng *rand.Rand) Plan {
	p := Plan{
		LatencyMin:   time.Duration(100+rng.IntN(2000)) * time.Microsecond,
		LatencyMean:  time.Duration(100+rng.IntN(5000)) * time.Microsecond,
		Reorder:      rng.IntN(2) == 0,
		Interval:     time.Duration(100+rng.IntN(900)) * time.Millisecond,
		Duration:     time.Duration(50+rng.IntN(950)) * time.Millisecond,
		ClockRatePPM: float64(rng.IntN(500)),
		ClockStep:    time.Duration(rng.IntN(500)) * time.Millisecond,
		Buggify:      rng.IntN(4) != 0,
	}
	if rng.IntN(2) == 0 {
		p.Loss = rng.Float64() * 0.1
	}
	if rng.IntN(2) == 0 {
		p.Dup = rng.Float64() * 0.1
	}
	if rng.IntN(3) == 0 {
		p.Replay = rng.Float64() * 0.02
		p.ReplayDelay = time.Duration(50+rng.IntN(950)) * time.Millisecond
	}
	common := AllFaults[:len(AllFaults)-1] // all but corrupt, drawn last
	for _, f := range common {
		if rng.IntN(2) == 0 {
			p.Faults = append(p.Faults, f)
		}
	}
	if len(p.Faults) == 0 {
		p.Faults = []Fault{common[rng.IntN(len(common))]}
	}
	if p.Has(FaultDisk) {
		p.DiskWriteErrorRate = rng.Float64() * 0.05
		p.DiskReadErrorRate = rng.Float64() * 0.02
	}
	if rng.IntN(3) == 0 {
		p.DiskSyncLatency = time.Duration(rng.IntN(2000)) * time.Microsecond
	}
	if rng.IntN(2) == 0 {
		p.TornPercent = rng.IntN(101)
	}
	// Drawn last, so that adding it left every other draw as it was.
	if rng.IntN(4) == 0 {
		p.Faults = append(p.Faults, FaultCorrupt)
	}
	// A third of the seeds get clocks far off — drift up to 5%, steps up
	// to 5 s, beyond what NTP leaves. Steps have no bound; the drift's is
	// the one leader leases assume (consensus.DefaultMaxClockDrift), and
	// the seeds go right up to it.
	if rng.IntN(3) == 0 {
		p.ClockRatePPM = float64(rng.IntN(leaseDriftBoundPPM))
		p.ClockStep = time.Duration(rng.IntN(5000)) * time.Millisecond
	}
	return p
}

// Has reports whether the plan uses fault f.
func (p Plan) Has(f Fault) bool { return slices.Contains(p.Faults, f) }

func (p Plan) String() string {
	fs := make([]string, len(p.Faults))
	for i, f := range p.Faults {
		fs[i] = string(f)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "faults=[%s] every~%v for~%v\n", strings.Join(fs, " "), p.Interval, p.Duration)
	fmt.Fprintf(&b, "network: latency=%v+exp(%v) loss=%.3f dup=%.3f reorder=%v replay=%.3f after~%v\n", p.LatencyMin, p.LatencyMean, p.Loss, p.Dup, p.Reorder, p.Replay, p.ReplayDelay)
	fmt.Fprintf(&b, "clock: drift<=%.0fppm step<=%v bound=%v jump<=%v (0: none)\n", p.ClockRatePPM, p.ClockStep, p.ClockBound, p.ClockJump)
	fmt.Fprintf(&b, "disk: write-errors=%.4f read-errors=%.4f sync-latency=%v torn=%d%%\n", p.DiskWriteErrorRate, p.DiskReadErrorRate, p.DiskSyncLatency, p.TornPercent)
	fmt.Fprintf(&b, "buggify=%v", p.Buggify)
	if p.FaultTime != 0 || p.Clients != 0 {
		fmt.Fprintf(&b, "\nrun: fault-time=%v clients=%d (0: the scenario's)", p.FaultTime, p.Clients)
	}
	return b.String()
}

// The text form of a plan, for -plan on the command line: space-separated
// key=value fields in a fixed order, a bare key for a true boolean, and
// nothing for a zero field (so the empty text is the zero plan, which has
// no faults and no latency). Durations are Go durations ("us" for µs),
// rates are decimal fractions written with as many digits as it takes to
// read back the same float64, and faults keep their order (the nemesis
// draws from the list by index). For example:
//
//	faults=crash,partition interval=350ms duration=120ms latency=1.2ms latency-mean=3ms loss=0.0123 reorder buggify fault-time=2s
//
// Plan.Text and ParsePlan round-trip every valid plan exactly, so a run
// under ParsePlan(p.Text()) is the run under p.
var planKeys = []string{
	"faults", "interval", "duration",
	"latency", "latency-mean", "loss", "dup", "reorder", "replay", "replay-delay",
	"clock-drift", "clock-step", "clock-bound", "clock-jump",
	"disk-write-errors", "disk-read-errors", "sync-latency", "torn",
	"buggify", "fault-time", "clients",
}

// planFields binds each key of the text form to its field in p.
func planFields(p *Plan) map[string]any {
	return map[string]any{
		"faults": &p.Faults, "interval": &p.Interval, "duration": &p.Duration,
		"latency": &p.LatencyMin, "latency-mean": &p.LatencyMean, "loss": &p.Loss, "dup": &p.Dup,
		"reorder": &p.Reorder, "replay": &p.Replay, "replay-delay": &p.ReplayDelay,
		"clock-drift": &p.ClockRatePPM, "clock-step": &p.ClockStep, "clock-bound": &p.ClockBound,
		"clock-jump": &p.ClockJump, "disk-write-errors": &p.DiskWriteErrorRate, "disk-read-errors": &p.DiskReadErrorRate,
		"sync-latency": &p.DiskSyncLatency, "torn": &p.TornPercent,
		"buggify": &p.Buggify, "fault-time": &p.FaultTime, "clients": &p.Clients,
	}
}

// Text is the plan's one-line text form (see planKeys); ParsePlan reads it.
func (p Plan) Text() string {
	fields := planFields(&p)
	var out []string
	for _, k := range planKeys {
		switch v := fields[k].(type) {
		case *[]Fault:
			if len(*v) > 0 {
				fs := make([]string, len(*v))
				for i, f := range *v {
					fs[i] = string(f)
				}
				out = append(out, k+"="+strings.Join(fs, ","))
			}
		case *time.Duration:
			if *v != 0 {
				out = append(out, k+"="+strings.ReplaceAll(v.String(), "µ", "u"))
			}
		case *float64:
			if *v != 0 {
				out = append(out, k+"="+strconv.FormatFloat(*v, 'g', -1, 64))
			}
		case *int:
			if *v != 0 {
				out = append(out, k+"="+strconv.Itoa(*v))
			}
		case *bool:
			if *v {
				out = append(out, k)
			}
		}
	}
	return strings.Join(out, " ")
}

// ParsePlan reads a plan's text form (see planKeys) and validates it. It
// reports every problem at once.
func ParsePlan(text string) (Plan, error) {
	var p Plan
	fields := planFields(&p)
	var errs []error
	seen := map[string]bool{}
	for _, tok := range strings.Fields(text) {
		k, v, hasValue := strings.Cut(tok, "=")
		field, ok := fields[k]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown field %q (fields: %s)", k, strings.Join(planKeys, " ")))
			continue
		}
		if seen[k] {
			errs = append(errs, fmt.Errorf("field %q given twice", k))
			continue
		}
		seen[k] = true
		if _, isBool := field.(*bool); !hasValue && !isBool {
			errs = append(errs, fmt.Errorf("field %q needs a value (%s=...)", k, k))
			continue
		}
		var err error
		switch f := field.(type) {
		case *[]Fault:
			for _, name := range strings.Split(v, ",") {
				*f = append(*f, Fault(name))
			}
		case *time.Duration:
			*f, err = time.ParseDuration(v)
		case *float64:
			*f, err = strconv.ParseFloat(v, 64)
		case *int:
			*f, err = strconv.Atoi(v)
		case *bool:
			*f = true
			if hasValue {
				*f, err = strconv.ParseBool(v)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("field %q: %w", k, err))
		}
	}
	if err := errors.Join(append(errs, p.Validate())...); err != nil {
		return Plan{}, fmt.Errorf("plan %q: %w", text, err)
	}
	return p, nil
}

// Validate reports every problem with the plan at once: unknown or
// repeated faults, negative times, rates outside [0, 1], and faults
// without an interval between them (the nemesis would never stop).
func (p Plan) Validate() error {
	var errs []error
	for i, f := range p.Faults {
		if !slices.Contains(AllFaults, f) {
			errs = append(errs, fmt.Errorf("unknown fault %q (faults: %v)", f, AllFaults))
		} else if slices.Index(p.Faults, f) < i {
			errs = append(errs, fmt.Errorf("fault %q listed twice", f))
		}
	}
	if len(p.Faults) > 0 && p.Interval <= 0 {
		errs = append(errs, errors.New("faults need an interval > 0"))
	}
	for name, d := range map[string]time.Duration{
		"interval": p.Interval, "duration": p.Duration, "latency": p.LatencyMin, "latency-mean": p.LatencyMean,
		"replay-delay": p.ReplayDelay, "clock-step": p.ClockStep, "sync-latency": p.DiskSyncLatency, "fault-time": p.FaultTime,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s is negative: %v", name, d))
		}
	}
	for name, r := range map[string]float64{
		"loss": p.Loss, "dup": p.Dup, "replay": p.Replay,
		"disk-write-errors": p.DiskWriteErrorRate, "disk-read-errors": p.DiskReadErrorRate,
	} {
		if !(r >= 0 && r <= 1) {
			errs = append(errs, fmt.Errorf("%s is not a rate in [0, 1]: %v", name, r))
		}
	}
	if !(p.ClockRatePPM >= 0 && p.ClockRatePPM < 1e6) {
		errs = append(errs, fmt.Errorf("clock-drift is not in [0, 1e6) ppm: %v", p.ClockRatePPM))
	}
	if p.TornPercent < 0 || p.TornPercent > 100 {
		errs = append(errs, fmt.Errorf("torn is not a percentage: %d", p.TornPercent))
	}
	if p.Clients < 0 {
		errs = append(errs, fmt.Errorf("clients is negative: %d", p.Clients))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// nemesis carries out a plan against a set of target nodes, from the
// scheduler, until healed.
type nemesis struct {
	s       *Sim
	plan    Plan
	targets []kernel.NodeID
	// canLose, if set, says whether the cluster can afford to lose node's
	// data now (FaultCorrupt; see Rebuilder).
	canLose func(node kernel.NodeID) bool
	healed  bool
	// netFault counts network faults; an undo heals only its own.
	netFault int
	// jumped is each node's clock jump in force (Plan.ClockJump), and
	// runaway each node's runaway clock in force, with what to restore.
	jumped  map[kernel.NodeID]time.Duration
	runaway map[kernel.NodeID]runawayClock
	// Log lists every fault applied, with its virtual time.
	log []string
}

// startNemesis applies the plan's global knobs and starts causing faults.
func (s *Sim) startNemesis(p Plan, w Workload) *nemesis {
	nm := &nemesis{s: s, plan: p, targets: slices.Clone(w.Targets()), jumped: map[kernel.NodeID]time.Duration{},
		runaway: map[kernel.NodeID]runawayClock{}}
	if r, ok := w.(Rebuilder); ok {
		nm.canLose = r.CanLoseData
	}
	s.net.LatencyMin, s.net.LatencyMean = p.LatencyMin, p.LatencyMean
	s.net.Loss, s.net.Dup, s.net.Reorder = p.Loss, p.Dup, p.Reorder
	s.net.Replay, s.net.ReplayDelay = p.Replay, p.ReplayDelay
	s.EnableBuggify(p.Buggify)
	for _, id := range nm.targets {
		n := s.nodes[id]
		n.disk.SetSyncLatency(p.DiskSyncLatency)
		n.disk.SetTornPercent(p.TornPercent)
		n.onDown = nm.restartLater
	}
	if len(p.Faults) > 0 && len(nm.targets) > 0 {
		nm.scheduleNext()
	}
	return nm
}

func (nm *nemesis) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	nm.log = append(nm.log, fmt.Sprintf("%12v %s", nm.s.Elapsed(), msg))
	nm.s.logf(0, "nemesis: %s", msg)
}

func (nm *nemesis) exp(mean time.Duration) time.Duration {
	return time.Duration(nm.s.rng.ExpFloat64() * float64(mean))
}

func (nm *nemesis) scheduleNext() {
	nm.s.After(nm.exp(nm.plan.Interval), "nemesis", func() {
		if nm.healed {
			return
		}
		nm.act()
		nm.scheduleNext()
	})
}

// undoLater runs undo after a drawn fault duration, unless healed first.
func (nm *nemesis) undoLater(label string, undo func()) {
	nm.s.After(nm.exp(nm.plan.Duration), label, func() {
		if !nm.healed {
			undo()
		}
	})
}

func (nm *nemesis) pick() *Node {
	return nm.s.nodes[nm.targets[nm.s.rng.IntN(len(nm.targets))]]
}

// pickOther picks any node other than not, clients included: a link from a
// server to a client clogs as well.
func (nm *nemesis) pickOther(not *Node) *Node {
	nodes := nm.s.Nodes()
	if len(nodes) < 2 {
		return not
	}
	for {
		if n := nodes[nm.s.rng.IntN(len(nodes))]; n != not {
			return n
		}
	}
}

func (nm *nemesis) act() {
	s, net := nm.s, nm.s.net
	switch f := nm.plan.Faults[s.rng.IntN(len(nm.plan.Faults))]; f {
	case FaultPartition, FaultOneWay:
		// Split every node, clients included: a client cut off from a
		// server is as real as two servers cut off from each other.
		var ids []kernel.NodeID
		for _, n := range s.Nodes() {
			ids = append(ids, n.id)
		}
		s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		cut := 1 + s.rng.IntN(max(1, len(ids)-1))
		a, b := ids[:cut], ids[cut:]
		net.Heal()
		if f == FaultPartition {
			nm.note("partition %v | %v", a, b)
			net.Partition(a, b)
		} else {
			nm.note("one-way cut %v -> %v", a, b)
			net.PartitionOneWay(a, b)
		}
		nm.healNetworkLater()
	case FaultIsolate:
		n := nm.pick()
		net.Heal()
		nm.note("isolate n%d", n.id)
		net.Isolate(n.id)
		nm.healNetworkLater()
	case FaultClog:
		from := nm.pick()
		to := nm.pickOther(from)
		d := nm.exp(nm.plan.Duration)
		nm.note("clog n%d -> n%d for %v", from.id, to.id, d)
		net.Clog(from.id, to.id, d)
	case FaultCrash:
		n := nm.pick()
		if n.up {
			nm.note("crash n%d", n.id)
			n.Crash() // restartLater brings it back
		}
	case FaultPause:
		n := nm.pick()
		if n.up && !n.paused {
			nm.note("pause n%d", n.id)
			n.Pause()
			nm.undoLater("nemesis resume", func() { nm.note("resume n%d", n.id); n.Resume() })
		}
	case FaultClock:
		n := nm.pick()
		if nm.jumped[n.id] != 0 || nm.runaway[n.id] != (runawayClock{}) {
			break // one clock fault beyond the bound at a time
		}
		kind := 3 // a step within the bound
		if nm.plan.ClockJump > 0 {
			kind = s.rng.IntN(6)
		}
		if kind == 2 {
			nm.runAway(n)
			break
		}
		if kind < 2 {
			jump := time.Second + time.Duration(s.rng.Int64N(int64(max(nm.plan.ClockJump-time.Second, 1))))
			if s.rng.IntN(2) == 0 {
				jump = -jump
			}
			nm.note("clock n%d: jump %v", n.id, jump)
			n.ShiftClock(jump)
			nm.jumped[n.id] = jump
			nm.undoLater("nemesis clock jump back", func() { nm.jumpBack(n) })
			if n.up && s.rng.IntN(2) == 0 {
				// Restarted under the jump, as a node is after a
				// crash while NTP has its clock wrong (restartLater
				// keeps the jump half the time).
				nm.note("crash n%d", n.id)
				n.Crash()
			}
			break
		}
		rate := 1 + (s.rng.Float64()*2-1)*nm.plan.ClockRatePPM*1e-6
		step := time.Duration((s.rng.Float64()*2 - 1) * float64(nm.plan.ClockStep))
		if b := nm.plan.ClockBound; b > 0 {
			off := n.plannedOffset() - nm.jumped[n.id]
			step = max(-b-off, min(b-off, step))
			if (off+step > 0) == (rate > 1) {
				rate = 2 - rate // drift back toward true time
			}
		}
		nm.note("clock n%d: step %v, rate %.6f", n.id, step, rate)
		n.ShiftClock(step)
		n.SetClockRate(rate)
	case FaultCorrupt:
		// One damaged disk at a time, as TigerBeetle's VOPR keeps its
		// faults within what the cluster can repair: a range whose
		// majority lost its data cannot be rebuilt from its peers.
		n := nm.pick()
		if nm.canLose == nil || !nm.canLose(n.id) {
			break
		}
		for _, id := range nm.targets {
			if s.nodes[id].disk.Corrupted() {
				n = s.nodes[id]
			}
		}
		if n.disk.Corrupted() && n.up {
			break // being rebuilt, or rotted where no read goes
		}
		if n.up {
			n.Crash() // restartLater brings it back
		}
		nm.note("corrupt n%d: %s", n.id, n.disk.Corrupt(s.rng, "/data"))
	case FaultDisk:
		n := nm.pick()
		nm.note("disk faults on n%d (write %.3f, read %.3f)", n.id, nm.plan.DiskWriteErrorRate, nm.plan.DiskReadErrorRate)
		n.disk.SetErrorRates(nm.plan.DiskWriteErrorRate, nm.plan.DiskReadErrorRate)
		nm.undoLater("nemesis disk heal", func() { nm.note("heal disk n%d", n.id); n.disk.HealErrors() })
	}
}

// healNetworkLater undoes the network fault just made, unless a newer one
// has replaced it by then.
func (nm *nemesis) healNetworkLater() {
	nm.netFault++
	mine := nm.netFault
	nm.undoLater("nemesis heal", func() {
		if nm.netFault == mine {
			nm.note("heal network")
			nm.s.net.Heal()
		}
	})
}

// restartLater brings back a crashed node after a drawn downtime, whether
// the nemesis crashed it or it crashed itself (a disk fault).
//
// Half the time the downtime is a few milliseconds, as under a supervisor
// that restarts a crashed process at once: messages sent to the node just
// before it died then reach its next incarnation (a vote request from a
// rival candidate, say, that a node must not grant after forgetting its
// vote).
func (nm *nemesis) restartLater(n *Node) {
	d := nm.exp(nm.plan.Duration)
	if nm.s.rng.IntN(2) == 0 {
		d = nm.exp(5 * time.Millisecond)
	}
	if nm.healed {
		d = 0
	}
	nm.s.After(d, "nemesis restart", func() {
		if !n.up {
			// Half the nodes restarted with a jump in force keep it: they
			// start with a clock beyond the bound, which their offset
			// check must fence until the jump is undone.
			if nm.jumped[n.id] != 0 && nm.s.rng.IntN(2) == 0 {
				nm.jumpBack(n)
			}
			nm.note("restart n%d", n.id)
			n.Restart()
		}
	})
}

// runawayClock is what a runaway clock fault changed: the node's offset
// and rate before it.
type runawayClock struct {
	offset time.Duration
	rate   float64
}

// runAway starts a runaway clock on n (Plan.ClockJump): put just inside
// the fence from its farthest peer, drifting away from them at 5%.
func (nm *nemesis) runAway(n *Node) {
	s := nm.s
	dir := time.Duration(1)
	if s.rng.IntN(2) == 0 {
		dir = -1
	}
	// From the peer farthest that way (so just inside the fence from
	// every peer); the fence is 90% of the maximum offset
	// (hlc.DefaultMaxOffset, 500 ms: sim cannot import consensus).
	far, first := time.Duration(0), true
	for _, id := range nm.targets {
		if off := s.nodes[id].plannedOffset(); id != n.id && (first || (dir > 0) == (off > far)) {
			far, first = off, false
		}
	}
	const justInside = 430 * time.Millisecond
	prev := runawayClock{offset: n.plannedOffset(), rate: n.clock.rate}
	nm.runaway[n.id] = prev
	// There in steps of at most 200 ms, 50 ms apart: the hybrid logical
	// clock follows no step above half the maximum offset (kernel/hlc),
	// and a runaway it did not follow would test nothing.
	dist := far + dir*justInside - prev.offset
	steps := int((dist.Abs() + 200*time.Millisecond - 1) / (200 * time.Millisecond))
	rate := 1 + float64(dir)*leaseDriftBoundPPM*1e-6
	nm.note("clock n%d: runaway, %v in %d steps, then rate %.6f", n.id, dist, steps, rate)
	away := func() bool { return !nm.healed && nm.runaway[n.id] == prev }
	for i := range steps {
		step := dist / time.Duration(steps)
		s.After(time.Duration(i)*50*time.Millisecond, "nemesis clock runaway step", func() {
			if away() {
				n.ShiftClock(step)
			}
		})
	}
	s.After(time.Duration(steps)*50*time.Millisecond, "nemesis clock runaway drift", func() {
		if away() {
			n.SetClockRate(rate)
		}
	})
	s.After(2*time.Second+nm.exp(nm.plan.Duration), "nemesis clock runaway back", func() {
		if away() {
			nm.jumpBack(n)
		}
	})
}

// jumpBack undoes n's clock jump or runaway, if one is in force.
func (nm *nemesis) jumpBack(n *Node) {
	if r, ok := nm.runaway[n.id]; ok {
		back := r.offset - n.plannedOffset()
		nm.note("clock n%d: runaway undone, step %v, rate %.6f", n.id, back, r.rate)
		n.ShiftClock(back)
		n.SetClockRate(r.rate)
		delete(nm.runaway, n.id)
	}
	if j := nm.jumped[n.id]; j != 0 {
		nm.note("clock n%d: jump %v undone", n.id, j)
		n.ShiftClock(-j)
		delete(nm.jumped, n.id)
	}
}

// heal ends every fault: the network is whole and lossless, every node runs,
// every disk works. Clock drift stays, as it would in life.
func (nm *nemesis) heal() {
	nm.healed = true
	nm.note("heal everything")
	s := nm.s
	s.net.Heal()
	s.net.Loss, s.net.Dup, s.net.Replay = 0, 0, 0
	// The perturbation points go quiet too, as FoundationDB's BUGGIFY does
	// once its simulation stops injecting faults: the checks after the heal
	// (every client served, expired keys gone, no crash loop) ask whether
	// the system recovers, and a site that keeps crashing nodes after
	// every vote would keep it from recovering for reasons of its own.
	s.EnableBuggify(false)
	for _, id := range nm.targets {
		n := s.nodes[id]
		n.disk.HealErrors()
		n.disk.SetSyncLatency(0)
		n.Resume()
		nm.jumpBack(n)
		n.Restart()
	}
}
