//go:build orbit_mutations

package sim

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// In a build with the orbit_mutations tag, ORBIT_MUTATION=name plants that
// bug for the whole test binary, so that a seed (and a -plan) that caught
// it replays with every scenario test, -shrink included:
//
//	ORBIT_MUTATION=ack-before-sync go test -tags orbit_mutations ./sim -run '^TestSim$' -seed=2 -shrink
//
// TestMutationsAreCaught plants each bug it checks itself, as before.
func init() {
	name := os.Getenv("ORBIT_MUTATION")
	if name == "" {
		return
	}
	if _, ok := mutation.Lookup(name); !ok {
		var names []string
		for _, b := range mutation.All() {
			names = append(names, b.Name)
		}
		fmt.Fprintf(os.Stderr, "ORBIT_MUTATION=%s: no such planted bug (planted: %v)\n", name, names)
		os.Exit(2)
	}
	mutation.Set(name)
	replayEnv, replayTags = "ORBIT_MUTATION="+name+" ", " -tags orbit_mutations"
}

// TestShrinkPlantedBug plants a consensus bug (ack-before-sync and
// send-before-persist, or the one ORBIT_MUTATION names if the KV scenario
// is the one that catches it), finds the first seed of the KV scenario
// that catches it, and shrinks that seed's plan: the smallest plan must be
// strictly smaller than the drawn one and still fail the same way, twice,
// from its text form.
//
//	go test -tags orbit_mutations ./sim -run '^TestShrinkPlantedBug$' -count=1 -v
func TestShrinkPlantedBug(t *testing.T) {
	names := []string{"ack-before-sync", "send-before-persist"}
	if only := os.Getenv("ORBIT_MUTATION"); only != "" {
		names = []string{only}
	}
	env, tags := replayEnv, replayTags
	defer func() { replayEnv, replayTags = env, tags }()
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			b, ok := mutation.Lookup(name)
			if !ok {
				t.Fatalf("no planted bug %q", name)
			}
			if !slices.ContainsFunc(mutationScenarios(b), func(sc Scenario) bool { return sc.Name == kvScenario.Name }) {
				t.Skipf("%s (%s) is not among the kv scenario's bugs", name, b.Class)
			}
			mutation.Set(name)
			defer mutation.Set(os.Getenv("ORBIT_MUTATION"))
			replayEnv, replayTags = "ORBIT_MUTATION="+name+" ", " -tags orbit_mutations"

			const maxSeeds = 300
			start := time.Now()
			failed := firstFailure([]Scenario{kvScenario}, maxSeeds)
			if failed == nil {
				t.Fatalf("%s survived %d seeds of kv", name, maxSeeds)
			}
			fmt.Printf("%s caught at seed %d after %.1fs: %s\n", name, failed.Seed, time.Since(start).Seconds(), FailureClass(failed))
			shrinkAndCheck(t, kvScenario, failed, 60, func(p Plan) string { return replayPlanCommand("TestSim", failed.Seed, p) })
		})
	}
}
