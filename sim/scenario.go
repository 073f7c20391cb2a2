package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// SettleTime bounds how much longer than its QuiesceTime a scenario whose
// workload reports Settled runs until it does.
const SettleTime = 10 * time.Second

// Scenario is the shape of every simulated run, after FoundationDB's tests:
// set up → run under faults → heal → require progress → quiesce → check.
type Scenario struct {
	// Name identifies the scenario in file names and reports.
	Name string
	// Setup builds the world (nodes, clients) and returns its workload.
	Setup func(s *Sim) Workload
	// SetupClients, if set, replaces Setup for a scenario whose number of
	// clients may vary: it builds the world with that many clients,
	// Clients by default, or Plan.Clients when a plan sets it (the
	// shrinker tries fewer).
	SetupClients func(s *Sim, clients int) Workload
	Clients      int
	// Adjust, if set, shapes the drawn plan for what the scenario can take;
	// say why where it is set. It cannot change the plan's FaultTime and
	// Clients.
	Adjust func(p *Plan)
	// Rebuilds says the scenario rebuilds a node whose store is found
	// damaged (checksums) from its peers; only then does a plan keep
	// FaultCorrupt.
	Rebuilds bool
	// FaultTime is how long the workload runs under the fault plan.
	FaultTime time.Duration
	// ProgressTime bounds how long, after healing, the workload may take to
	// show progress (Workload.Progressed).
	ProgressTime time.Duration
	// QuiesceTime is how long the world runs after the workload stops, so
	// that in-flight work settles before the check.
	QuiesceTime time.Duration
	// KnownFailures are seeds that fail for a bug not fixed yet, each with
	// where it is written down: the default sweeps and the mutation
	// self-test skip them (a planted bug must be caught on a seed the
	// real code passes); named on the command line, they run.
	KnownFailures map[uint64]string
	// Regressions are seeds beyond the default sweep that once found a
	// bug, each with where it is written down: the scenario's default
	// test runs them too, and the mutation self-test tries them first
	// (a planted bug of the same class must fail where the real one did).
	Regressions map[uint64]string
}

// regressionSeeds are sc's Regressions, in order.
func (sc Scenario) regressionSeeds() []uint64 {
	return slices.Sorted(maps.Keys(sc.Regressions))
}

// Rebuilder is a workload that rebuilds a node whose store is damaged
// from its peers (Scenario.Rebuilds).
type Rebuilder interface {
	// CanLoseData reports whether the cluster could rebuild node if its
	// data were lost now: FaultCorrupt damages a node only then, as
	// TigerBeetle's simulator keeps its faults within what the cluster can
	// repair (a range whose majority lost its data cannot be rebuilt).
	CanLoseData(node kernel.NodeID) bool
}

// Workload is what runs in a scenario and knows how to judge it.
type Workload interface {
	// Targets are the nodes the fault plan may hurt (servers; clients stay
	// up so that the history stays whole).
	Targets() []kernel.NodeID
	// Healed is called when the faults end; progress counts from here.
	Healed()
	// Progressed reports whether the system has served every client since
	// Healed.
	Progressed() bool
	// Stop tells the clients to issue no more operations.
	Stop()
	// Check judges the run after quiescence. vizPath is where a
	// linearizability failure should write its visualization.
	Check(vizPath string) error
}

// A Workload may also say where it stands (a Status() string method); a run
// that makes no progress prints it.

// Result is the outcome of one seed.
type Result struct {
	Scenario string
	Seed     uint64
	Plan     Plan
	Trace    uint64
	Events   uint64
	Virtual  time.Duration
	Wall     time.Duration
	// Phase is where the run failed ("setup", "faults", "progress",
	// "quiesce", "check"); Err says what failed.
	Phase string
	Err   error
	// Viz is the path of the Porcupine visualization, if one was written.
	Viz string
	// Faults is the nemesis's log; LastEvents the end of the trace;
	// Buggify the perturbation sites met.
	Faults     []string
	LastEvents []string
	Buggify    []string
	// Options are the components' options the run used (Sim.NoteOptions).
	Options []string
}

// Line is the one-line summary every run prints.
func (r *Result) Line() string {
	status := ""
	if r.Err != nil {
		status = " FAIL"
	}
	return fmt.Sprintf("seed=%d trace=%016x events=%d virtual=%.1fs wall=%.2fs%s",
		r.Seed, r.Trace, r.Events, r.Virtual.Seconds(), r.Wall.Seconds(), status)
}

// Report is the full story of a failed (or verbose) run, to print after its
// Line: plan, faults, perturbation sites, last events, the error, the
// visualization and the replay command.
func (r *Result) Report(replay string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s\nplan:\n  %s\n", r.Scenario, strings.ReplaceAll(r.Plan.String(), "\n", "\n  "))
	fmt.Fprintf(&b, "  -plan='%s'\n", r.Plan.Text())
	if len(r.Options) > 0 {
		fmt.Fprintf(&b, "options:\n  %s\n", strings.ReplaceAll(strings.TrimSpace(strings.Join(r.Options, "")), "\n", "\n  "))
	}
	if len(r.Faults) > 0 {
		fmt.Fprintf(&b, "faults (%d):\n  %s\n", len(r.Faults), strings.Join(r.Faults, "\n  "))
	}
	if len(r.Buggify) > 0 {
		fmt.Fprintf(&b, "buggify:\n  %s\n", strings.Join(r.Buggify, "\n  "))
	}
	fmt.Fprintf(&b, "last events:\n  %s\n", strings.Join(r.LastEvents, "\n  "))
	if r.Err != nil {
		fmt.Fprintf(&b, "FAILED in %s: %v\n", r.Phase, r.Err)
		if r.Viz != "" {
			fmt.Fprintf(&b, "visualization: %s\n", r.Viz)
		}
		fmt.Fprintf(&b, "replay: %s\n", replay)
	}
	return b.String()
}

// Run runs scenario sc on seed with the swarm plan the seed draws.
func Run(sc Scenario, seed uint64) *Result {
	s := New(seed)
	return s.Run(sc, DrawPlan(s.rng))
}

// RunPlan runs scenario sc on seed under plan p instead of the plan the
// seed draws; the seed still drives everything else. The seed's plan is
// drawn and dropped, so that the rest of the run consumes the same random
// stream: RunPlan(sc, seed, Run(sc, seed).Plan) is the same run as
// Run(sc, seed), trace for trace.
func RunPlan(sc Scenario, seed uint64, p Plan) *Result {
	s := New(seed)
	DrawPlan(s.rng)
	return s.Run(sc, p)
}

// Run runs scenario sc on this world under plan p.
func (s *Sim) Run(sc Scenario, p Plan) (r *Result) {
	wallStart := time.Now()
	if sc.Adjust != nil {
		faultTime, clients := p.FaultTime, p.Clients
		sc.Adjust(&p)
		p.FaultTime, p.Clients = faultTime, clients
	}
	if !sc.Rebuilds && p.Has(FaultCorrupt) {
		p.Faults = slices.DeleteFunc(slices.Clone(p.Faults), func(f Fault) bool { return f == FaultCorrupt })
	}
	faultTime := sc.FaultTime
	if p.FaultTime > 0 {
		faultTime = p.FaultTime
	}
	r = &Result{Scenario: sc.Name, Seed: s.seed, Plan: p}
	defer s.Close()
	defer func() {
		r.Trace, r.Events, r.Virtual = s.trace, s.events, s.Elapsed()
		r.Wall = time.Since(wallStart)
		r.LastEvents = s.LastEvents()
		r.Buggify = s.BuggifyReport()
		r.Options = s.options
	}()
	fail := func(phase string, err error) *Result {
		r.Phase, r.Err = phase, err
		var lin *LinearizabilityError
		if errors.As(err, &lin) {
			r.Viz = lin.Path
		}
		return r
	}

	var w Workload
	switch {
	case sc.SetupClients != nil && p.Clients > 0:
		w = sc.SetupClients(s, p.Clients)
	case sc.SetupClients != nil:
		w = sc.SetupClients(s, sc.Clients)
	case p.Clients > 0:
		return fail("setup", fmt.Errorf("the plan asks for %d clients, but scenario %s takes no client count", p.Clients, sc.Name))
	default:
		w = sc.Setup(s)
	}
	nm := s.startNemesis(p, w)
	defer func() { r.Faults = nm.log }()
	if err := s.RunFor(faultTime); err != nil {
		return fail("faults", err)
	}
	nm.heal()
	w.Healed()
	if err := s.RunUntil(w.Progressed, sc.ProgressTime); err != nil {
		if errors.Is(err, ErrTimeout) {
			err = fmt.Errorf("no progress: clients were not all served within %v of healing", sc.ProgressTime)
			if st, ok := w.(interface{ Status() string }); ok {
				err = fmt.Errorf("%w\n%s", err, st.Status())
			}
		}
		return fail("progress", err)
	}
	w.Stop()
	if err := s.RunFor(sc.QuiesceTime); err != nil {
		return fail("quiesce", err)
	}
	// A workload whose cluster keeps reorganizing itself after the
	// clients stop (merges of the ranges gone cold) gets up to SettleTime
	// more to finish; the check then judges whatever state it is in.
	if st, ok := w.(interface{ Settled() bool }); ok {
		if err := s.RunUntil(st.Settled, SettleTime); err != nil && !errors.Is(err, ErrTimeout) {
			return fail("quiesce", err)
		}
	}
	if err := w.Check(VizPath(sc.Name, s.seed)); err != nil {
		return fail("check", err)
	}
	return r
}
