package sim

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The command line of the simulator:
//
//	go test ./sim -seed=N          run exactly seed N (twice: the traces must match)
//	go test ./sim -seeds=K         sweep K seeds from a random start (printed)
//	go test ./sim -seed=N -seeds=K sweep K seeds from N
//	-twice                         run every seed twice; the traces must match
//	-v                             also show each run's plan, faults and last events
//	-plan='faults=crash ...'       run under this fault plan instead of the one each
//	                               seed draws (text form: Plan.Text; alone, on seed 1)
//	-shrink                        on a failure, search for a smaller plan that fails
//	                               the same way and print its replay (shrink.go)
//	-shrink-runs=60 -shrink-time=10m  the search's bounds
//	-log                           print what the simulator does (faults, crashes
//	                               and their reasons) as each run goes
//	-trace-dir=DIR                 write every run's event trace to
//	                               DIR/<scenario>-<seed>.<run>.trace (to diff
//	                               the two runs of a seed that diverges)
//
// With -seed, -seeds or -plan, only the sweep runs (TestSim and the
// scenario tests that replay a seed); the long default suites skip.
var (
	flagSeed       = flag.Uint64("seed", 1, "the seed to run, or the first seed of a sweep")
	flagSeeds      = flag.Int("seeds", 0, "how many seeds to sweep (0: just -seed)")
	flagTwice      = flag.Bool("twice", false, "run every seed of the sweep twice and require the same trace")
	flagPlan       = flag.String("plan", "", "run under this fault plan (Plan.Text form) instead of the seed's")
	flagShrink     = flag.Bool("shrink", false, "shrink the first failing seed's fault plan and print its replay")
	flagShrinkRuns = flag.Int("shrink-runs", 60, "the most runs a -shrink search makes")
	flagShrinkTime = flag.Duration("shrink-time", 10*time.Minute, "the most wall time a -shrink search takes")
	flagLog        = flag.Bool("log", false, "print the simulator's log (faults, crashes and why) to stderr")
	flagTraceDir   = flag.String("trace-dir", "", "write every run's event trace into this directory")

	seedSet, seedsSet, planSet bool
	// chosenPlan is -plan, read.
	chosenPlan Plan
)

func TestMain(m *testing.M) {
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		seedSet = seedSet || f.Name == "seed"
		seedsSet = seedsSet || f.Name == "seeds"
		planSet = planSet || f.Name == "plan"
	})
	if planSet {
		p, err := ParsePlan(*flagPlan)
		if err != nil {
			fmt.Fprintf(os.Stderr, "-plan: %v\n", err)
			os.Exit(2)
		}
		chosenPlan = p
	}
	os.Exit(m.Run())
}

// replaying reports whether the command line asked for particular seeds
// or a plan.
func replaying() bool { return seedSet || seedsSet || planSet }

// chosenSeeds is the seeds the command line asks for, or def without flags.
func chosenSeeds(def []uint64) []uint64 {
	if !replaying() {
		return def
	}
	first, count := *flagSeed, max(*flagSeeds, 1)
	if seedsSet && !seedSet {
		first = uint64(time.Now().UnixNano()) % 1_000_000_000
		fmt.Printf("sweeping %d seeds from random start %d\n", count, first)
	}
	out := make([]uint64, count)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}

// runSeed runs sc on seed under -plan if given, else under the seed's plan.
func runSeed(sc Scenario, seed uint64) *Result {
	s := New(seed)
	p := DrawPlan(s.rng) // drawn even under -plan: see RunPlan
	if planSet {
		p = chosenPlan
	}
	if *flagLog {
		s.SetLog(os.Stderr)
	}
	if *flagTraceDir != "" {
		name := fmt.Sprintf("%s-%d.%d.trace", sc.Name, seed, traceRuns.Add(1))
		f, err := os.Create(filepath.Join(*flagTraceDir, name))
		if err != nil {
			panic(fmt.Sprintf("-trace-dir: %v", err))
		}
		w := bufio.NewWriter(f)
		defer func() {
			if err := errors.Join(s.FlushTrace(), w.Flush(), f.Close()); err != nil {
				panic(fmt.Sprintf("-trace-dir: %v", err))
			}
		}()
		s.TraceTo(w)
	}
	return s.Run(sc, p)
}

// traceRuns numbers the runs that write a trace (-trace-dir).
var traceRuns atomic.Int64

func seedRange(first uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}

// sweep runs sc on every seed, on as many workers as there are cores (each
// run is single-threaded and shares nothing), and returns results in seed
// order.
func sweep(sc Scenario, seeds []uint64) []*Result {
	return sweepWith(func(seed uint64) *Result { return Run(sc, seed) }, seeds)
}

// sweepWith is sweep with run for running one seed.
func sweepWith(run func(seed uint64) *Result, seeds []uint64) []*Result {
	results := make([]*Result, len(seeds))
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				j := i
				i++
				next.Unlock()
				if j >= len(seeds) {
					return
				}
				results[j] = run(seeds[j])
			}
		}()
	}
	wg.Wait()
	return results
}

// replayEnv and replayTags are what a replay command needs besides its
// seed: under the orbit_mutations tag, with ORBIT_MUTATION planting a bug
// (shrink_mutation_test.go), "ORBIT_MUTATION=name " and " -tags
// orbit_mutations".
var replayEnv, replayTags string

// replayCommand is the command that reruns one seed of a test.
func replayCommand(test string, seed uint64) string {
	return fmt.Sprintf("%sgo test%s ./sim -run '^%s$' -seed=%d -v", replayEnv, replayTags, test, seed)
}

// replayPlanCommand is the command that reruns one seed of a test under
// plan p.
func replayPlanCommand(test string, seed uint64, p Plan) string {
	return fmt.Sprintf("%sgo test%s ./sim -run '^%s$' -seed=%d -plan='%s' -v", replayEnv, replayTags, test, seed, p.Text())
}

// replayOf is the command that reruns r, under -plan if one was given.
func replayOf(test string, r *Result) string {
	if planSet {
		return replayPlanCommand(test, r.Seed, chosenPlan)
	}
	return replayCommand(test, r.Seed)
}

// report prints a run's line (always) and, with -v or on failure, its story.
func report(t *testing.T, r *Result) {
	t.Helper()
	if r.Scenario == defaultScenario.Name {
		fmt.Println(r.Line())
	} else {
		fmt.Println(r.Scenario + " " + r.Line())
	}
	if r.Err != nil || testing.Verbose() {
		fmt.Println(indent(r.Report(replayOf(t.Name(), r))))
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// defaultScenario is what `go test ./sim -seed=N` runs: the replicated
// key-value store under swarm faults.
var defaultScenario = kvScenario

// TestSim runs the default scenario: seeds 1–50 by default, or those the
// command line names. A single named seed runs twice and must give the same
// trace.
func TestSim(t *testing.T) {
	runScenario(t, defaultScenario, seedRange(1, 50))
}

// TestSimFiveNodes runs the five-node variant of the KV scenario (replicas
// move between nodes): seeds 1–15 by default, or those named.
func TestSimFiveNodes(t *testing.T) {
	runScenario(t, kv5Scenario, seedRange(1, 15))
}

// TestRegister runs the correct single-node register: seeds 1–10 by default
// (TestCorrectRegisterPasses1000Seeds runs 1,000), or those named.
func TestRegister(t *testing.T) {
	runScenario(t, registerScenario, seedRange(1, 10))
}

func runScenario(t *testing.T, sc Scenario, def []uint64) {
	t.Helper()
	if testing.Short() {
		// make race: the race detector slows the simulator ~20x; a few
		// seeds still run every code path it instruments.
		def = def[:min(len(def), 3)]
	}
	def = slices.DeleteFunc(slices.Clone(def), func(seed uint64) bool { return sc.KnownFailures[seed] != "" })
	if !testing.Short() {
		def = append(def, sc.regressionSeeds()...)
	}
	seeds := chosenSeeds(def)
	run := func(seed uint64) *Result { return runSeed(sc, seed) }
	results := sweepWith(run, seeds)
	var again []*Result
	if *flagTwice {
		again = sweepWith(run, seeds)
	}
	var firstFailed *Result
	for i, r := range results {
		report(t, r)
		if r.Err != nil {
			t.Errorf("seed %d failed in %s: %v\nreplay: %s", r.Seed, r.Phase, r.Err, replayOf(t.Name(), r))
			if firstFailed == nil {
				firstFailed = r
			}
		}
		if again != nil && again[i].Trace != r.Trace {
			t.Errorf("seed %d is not reproducible: traces %016x and %016x; diff two runs with Sim.TraceTo", r.Seed, r.Trace, again[i].Trace)
		}
	}
	if (seedSet || planSet) && !seedsSet {
		first, again := runSeed(sc, *flagSeed), runSeed(sc, *flagSeed)
		if first.Trace != again.Trace {
			t.Errorf("seed %d is not reproducible: traces %016x and %016x", *flagSeed, first.Trace, again.Trace)
		}
	}
	if *flagShrink && firstFailed != nil {
		shrinkAndReport(t, sc, firstFailed)
	}
}

// shrinkAndReport shrinks a failed run's plan (-shrink) and prints each
// step, the original and smallest plans and the smallest plan's replay.
func shrinkAndReport(t *testing.T, sc Scenario, failed *Result) {
	t.Helper()
	fmt.Printf("shrink: seed %d of %s fails with %q; at most %d runs or %v\n",
		failed.Seed, sc.Name, FailureClass(failed), *flagShrinkRuns, *flagShrinkTime)
	sh, err := Shrink(sc, failed, ShrinkOptions{
		MaxRuns: *flagShrinkRuns,
		MaxWall: *flagShrinkTime,
		Logf:    func(format string, args ...any) { fmt.Printf(format+"\n", args...) },
	})
	if err != nil {
		t.Errorf("shrink: %v", err)
		return
	}
	fmt.Print(sh.Summary(replayPlanCommand(t.Name(), sh.Seed, sh.Smallest)))
}

// TestCorrectRegisterPasses1000Seeds: the correct register must survive
// every fault plan.
func TestCorrectRegisterPasses1000Seeds(t *testing.T) {
	if replaying() {
		t.Skip("seeds named on the command line: only the sweep runs")
	}
	if testing.Short() {
		t.Skip("-short (make race): the full sweep runs in make test")
	}
	start := time.Now()
	results := sweep(registerScenario, seedRange(1, 1000))
	ops, failed := 0, 0
	var virtual time.Duration
	for _, r := range results {
		virtual += r.Virtual
		if r.Err != nil {
			failed++
			if failed <= 3 {
				report(t, r)
				t.Errorf("seed %d failed in %s: %v\nreplay: %s", r.Seed, r.Phase, r.Err, replayCommand("TestRegister", r.Seed))
			}
		}
		ops += int(r.Events)
	}
	fmt.Printf("correct register: %d/%d seeds passed; %.0f virtual s in %.1f wall s (%.0fx real time)\n",
		len(results)-failed, len(results), virtual.Seconds(), time.Since(start).Seconds(), virtual.Seconds()/time.Since(start).Seconds())
}

// TestBrokenRegisterIsCaught: the broken register must be found
// non-linearizable within 100 seeds, with a visualization and a replay
// command.
func TestBrokenRegisterIsCaught(t *testing.T) {
	seeds := chosenSeeds(seedRange(1, 100))
	for n, seed := range seeds {
		r := Run(brokenScenario, seed)
		if r.Err == nil {
			if replaying() {
				fmt.Println(r.Scenario + " " + r.Line() + " (not caught)")
			}
			continue
		}
		fmt.Printf("broken register caught at seed %d, after %d seed(s): %s: %v\n", seed, n+1, r.Phase, r.Err)
		if testing.Verbose() {
			fmt.Println(indent(r.Scenario + " " + r.Line()))
			fmt.Println(indent(r.Report(replayCommand(t.Name(), seed))))
		}
		fmt.Printf("replay: %s\n", replayCommand(t.Name(), seed))
		if r.Phase != "check" || r.Viz == "" {
			t.Fatalf("caught, but not as a linearizability failure with a visualization: %s: %v", r.Phase, r.Err)
		}
		if _, err := os.Stat(r.Viz); err != nil || !strings.Contains(r.Report("x"), r.Viz) {
			t.Fatalf("visualization %q missing from disk or report: %v", r.Viz, err)
		}
		return
	}
	t.Fatalf("the broken register passed %d seeds: the simulator or the checker does not bite", len(seeds))
}

// TestDeterminism runs a sample of seeds twice, for both scenarios, and
// requires identical traces.
func TestDeterminism(t *testing.T) {
	if replaying() {
		t.Skip("seeds named on the command line: TestSim checks them")
	}
	seeds := []uint64{1, 2, 3, 42, 1000}
	scenarios := []Scenario{registerScenario, brokenScenario, kvScenario, kv5Scenario, kvSplitScenario, kvSplit5Scenario, redisScenario, availScenario}
	if testing.Short() {
		// make race: one seed each, and not the availability scenario
		// (minutes a seed under the race detector).
		seeds, scenarios = seeds[:1], scenarios[:len(scenarios)-1]
	}
	for _, sc := range scenarios {
		if sc.Name == availScenario.Name {
			seeds = seeds[:1] // ~30x heavier per seed
		}
		for _, seed := range seeds {
			a, b := Run(sc, seed), Run(sc, seed)
			if a.Trace != b.Trace || a.Events != b.Events {
				t.Errorf("%s seed %d is not reproducible: %s vs %s", sc.Name, seed, a.Line(), b.Line())
			}
		}
	}
}

// TestUnsyncedRegisterIsCaughtByCrashes: a register that acknowledges
// writes before syncing them is correct until a crash, so the calm plan must
// pass it and the swarm plans must catch it: proof that the crash fault and
// the durability it tests bite.
func TestUnsyncedRegisterIsCaughtByCrashes(t *testing.T) {
	if replaying() {
		t.Skip("seeds named on the command line: only the sweep runs")
	}
	for seed := uint64(1); seed <= 10; seed++ {
		s := New(seed)
		if r := s.Run(unsyncedScenario, Calm()); r.Err != nil {
			t.Fatalf("calm seed %d failed the unsynced register, so something other than crashes catches it: %v", seed, r.Err)
		}
	}
	for seed := uint64(1); seed <= 100; seed++ {
		r := Run(unsyncedScenario, seed)
		if r.Err == nil {
			continue
		}
		if !r.Plan.Has(FaultCrash) && !r.Plan.Has(FaultDisk) { // disk errors crash the node too
			t.Fatalf("seed %d caught the unsynced register without crashes: %v", seed, r.Err)
		}
		fmt.Printf("unsynced register caught at seed %d: %s: %v\n", seed, r.Phase, r.Err)
		return
	}
	t.Fatal("the unsynced register passed 100 seeds: crashes do not test durability")
}
