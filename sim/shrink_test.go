package sim

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/kernel"
)

// TestPlanTextRoundTrip: every plan a seed draws, and every valid plan at
// all, reads back from its text form exactly.
func TestPlanTextRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 2000; seed++ {
		p := DrawPlan(rand.New(rand.NewPCG(seed, 0x6f72626974)))
		roundTrip(t, p)
	}
	rapid.Check(t, func(rt *rapid.T) {
		roundTrip(rt, genPlan(rt))
	})
}

func roundTrip(t interface {
	Helper()
	Fatalf(string, ...any)
}, p Plan) {
	t.Helper()
	text := p.Text()
	q, err := ParsePlan(text)
	if err != nil {
		t.Fatalf("plan %+v: its text %q does not read back: %v", p, text, err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("plan %+v\nwrote %q\nread  %+v", p, text, q)
	}
	if strings.ContainsAny(text, "'\"\\µ") {
		t.Fatalf("text %q needs quoting beyond single quotes", text)
	}
}

// genPlan draws any valid plan, with nanosecond times and full-precision
// rates.
func genPlan(t *rapid.T) Plan {
	dur := func(label string) time.Duration {
		return time.Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(t, label))
	}
	rate := func(label string) float64 {
		if rapid.Bool().Draw(t, label+"-zero") {
			return 0
		}
		return rapid.Float64Range(0, 1).Draw(t, label)
	}
	p := Plan{
		LatencyMin: dur("latency"), LatencyMean: dur("latency-mean"),
		Loss: rate("loss"), Dup: rate("dup"), Reorder: rapid.Bool().Draw(t, "reorder"),
		Replay: rate("replay"), ReplayDelay: dur("replay-delay"),
		Duration:           dur("duration"),
		ClockRatePPM:       rapid.Float64Range(0, 1e5).Draw(t, "clock-drift"),
		ClockStep:          dur("clock-step"),
		DiskWriteErrorRate: rate("disk-write-errors"), DiskReadErrorRate: rate("disk-read-errors"),
		DiskSyncLatency: dur("sync-latency"),
		TornPercent:     rapid.IntRange(0, 100).Draw(t, "torn"),
		Buggify:         rapid.Bool().Draw(t, "buggify"),
		FaultTime:       dur("fault-time"),
		Clients:         rapid.IntRange(0, 64).Draw(t, "clients"),
	}
	if n := rapid.IntRange(0, len(AllFaults)).Draw(t, "kinds"); n > 0 {
		p.Faults = rapid.Permutation(AllFaults).Draw(t, "faults")[:n]
		p.Interval = 1 + dur("interval")
	}
	return p
}

func TestPlanText(t *testing.T) {
	if got := (Plan{}).Text(); got != "" {
		t.Errorf("the zero plan reads %q, want the empty text", got)
	}
	p := Plan{Faults: []Fault{FaultCrash, FaultPartition}, Interval: 350 * time.Millisecond,
		LatencyMin: 150 * time.Microsecond, Loss: 0.5, Reorder: true, FaultTime: 2 * time.Second}
	const want = "faults=crash,partition interval=350ms latency=150us loss=0.5 reorder fault-time=2s"
	if got := p.Text(); got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	// Booleans may also be written out; µs may be written either way.
	q, err := ParsePlan("  latency=150µs faults=crash,partition  interval=350ms loss=0.5 reorder=true buggify=false fault-time=2s")
	if err != nil || !reflect.DeepEqual(p, q) {
		t.Errorf("ParsePlan = %+v, %v; want %+v", q, err, p)
	}
	// Every problem is reported at once.
	_, err = ParsePlan("faults=crash,crash,flood loss=2 torn=101 duration=-1s bogus interval")
	for _, want := range []string{`"crash" listed twice`, `unknown fault "flood"`, `loss is not a rate`, `torn is not a percentage`,
		`duration is negative`, `unknown field "bogus"`, `field "interval" needs a value`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePlan error %v does not say %s", err, want)
		}
	}
	if _, err := ParsePlan("faults=crash"); err == nil || !strings.Contains(err.Error(), "interval > 0") {
		t.Errorf("faults without an interval: %v, want an error", err)
	}
}

// TestRunPlanReplaysTheSeed: running a seed under its own plan, read back
// from text, is the seed's run, trace for trace (the scenario's Adjust is
// applied again and must not change it).
func TestRunPlanReplaysTheSeed(t *testing.T) {
	for _, sc := range []Scenario{registerScenario, kvScenario} {
		seed := uint64(3)
		r := Run(sc, seed)
		p, err := ParsePlan(r.Plan.Text())
		if err != nil {
			t.Fatal(err)
		}
		if again := RunPlan(sc, seed, p); again.Trace != r.Trace || again.Events != r.Events {
			t.Errorf("%s seed %d: under its plan from text %s, drawn %s", sc.Name, seed, again.Line(), r.Line())
		}
		// An explicit fault time equal to the scenario's changes nothing.
		p.FaultTime = sc.FaultTime
		if again := RunPlan(sc, seed, p); again.Trace != r.Trace {
			t.Errorf("%s seed %d: with fault-time=%v explicit %s, drawn %s", sc.Name, seed, sc.FaultTime, again.Line(), r.Line())
		}
	}
	// A plan that sets clients for a scenario without a count fails setup.
	if r := RunPlan(registerScenario, 1, Plan{Clients: 2}); r.Phase != "setup" || r.Err == nil {
		t.Errorf("clients=2 on %s: %s %v, want a setup failure", registerScenario.Name, r.Phase, r.Err)
	}
}

// unsyncedClients is the unsynced register (register_test.go) with a
// client count that a plan may lower, to shrink that too.
var unsyncedClients = Scenario{
	Name: "unsynced-register",
	SetupClients: func(s *Sim, clients int) Workload {
		const server kernel.NodeID = 1
		s.AddNode(server, registerServer(false))
		return newKVWorkload(s, []kernel.NodeID{server}, clients, func(rt kernel.Runtime, _ int) kvCaller {
			return rpcCaller(rt, func(KVInput) kernel.NodeID { return server }, nil)
		})
	},
	Clients:      4,
	FaultTime:    unsyncedScenario.FaultTime,
	ProgressTime: unsyncedScenario.ProgressTime,
	QuiesceTime:  unsyncedScenario.QuiesceTime,
}

// TestShrinkUnsyncedRegister: the register that answers before it syncs is
// caught by crashes; shrinking its first failing seed finds a strictly
// smaller plan that still loses an acknowledged write, and that plan
// replays from its text.
func TestShrinkUnsyncedRegister(t *testing.T) {
	if replaying() {
		t.Skip("seeds named on the command line: only the sweep runs")
	}
	var failed *Result
	for seed := uint64(1); seed <= 100 && failed == nil; seed++ {
		if r := Run(unsyncedClients, seed); r.Err != nil {
			failed = r
			// The same world as the register's own scenario.
			if d := Run(unsyncedScenario, seed); d.Trace != r.Trace {
				t.Fatalf("seed %d: SetupClients with the default count %s, Setup %s", seed, r.Line(), d.Line())
			}
		}
	}
	if failed == nil {
		t.Fatal("the unsynced register passed 100 seeds")
	}
	shrinkAndCheck(t, unsyncedClients, failed, 40, func(p Plan) string {
		return fmt.Sprintf("RunPlan(unsyncedClients, %d, ParsePlan(%q)) (no test runs this scenario from the command line)", failed.Seed, p.Text())
	})
}

// shrinkAndCheck shrinks failed, requires a strictly smaller plan that
// fails the same way, and replays it from its text.
func shrinkAndCheck(t *testing.T, sc Scenario, failed *Result, maxRuns int, replay func(Plan) string) *Shrunk {
	t.Helper()
	sh, err := Shrink(sc, failed, ShrinkOptions{MaxRuns: maxRuns, Logf: func(format string, args ...any) {
		if testing.Verbose() {
			fmt.Printf(format+"\n", args...)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Print(sh.Summary(replay(sh.Smallest)))
	if sh.Runs > maxRuns {
		t.Errorf("the search made %d runs, over its bound of %d", sh.Runs, maxRuns)
	}
	if !sh.Smaller() {
		t.Fatalf("no strictly smaller plan: %q from %q", sh.Smallest.Text(), sh.Original.Text())
	}
	if c := FailureClass(sh.Last); c != FailureClass(failed) {
		t.Fatalf("the smallest plan fails as %q, the original as %q", c, FailureClass(failed))
	}
	p, err := ParsePlan(sh.Smallest.Text())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r := RunPlan(sc, sh.Seed, p)
		if r.Trace != sh.Last.Trace || FailureClass(r) != sh.Class {
			t.Fatalf("the smallest plan replays as %s (%s), not as %s (%s)", r.Line(), FailureClass(r), sh.Last.Line(), sh.Class)
		}
	}
	return sh
}
