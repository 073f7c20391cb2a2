//go:build orbit_mutations

package sim

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// mutationScenarios are the scenarios that must catch a planted bug: the
// availability scenario for liveness bugs, the Redis one for the Redis
// state machine's and session's, both split scenarios (3 nodes, and 5
// with replicas moving) for splits and routing, the KV scenario and the
// five-node split one for snapshots, the replicated KV scenario and the
// three-node split one for the rest; the bank, txnkv, listappend and recovery for transactions; the bank and the SQL ones for clocks; redistxn for Redis
// commands across ranges; sqlbank and sqllist for the SQL engine; actors
// and sagas for actors, actoravail for how soon they come back.
func mutationScenarios(b mutation.Bug) []Scenario {
	switch b.Class {
	case mutation.Availability:
		return []Scenario{availScenario}
	case mutation.StateMachine, mutation.Session:
		return []Scenario{redisScenario}
	case mutation.Split:
		// The Redis scenario splits half its seeds, with clients whose
		// timed-out writes are retried across splits: it catches
		// split-forgets-clients at seed 70, kvsplit5 only at 243.
		return []Scenario{kvSplitScenario, kvSplit5Scenario, redisScenario}
	case mutation.Placement:
		return []Scenario{clusterScenario}
	case mutation.Txn:
		return []Scenario{bankScenario, txnKVScenario, listAppendScenario, recoveryScenario}
	case mutation.RedisTxn:
		return []Scenario{redisTxnScenario}
	case mutation.SQL:
		return []Scenario{sqlBankScenario, sqlListScenario}
	case mutation.Actors:
		return []Scenario{actorsScenario, sagasScenario}
	case mutation.Clocks:
		// Clock jumps hit server nodes: the SQL scenarios' coordinators
		// run there (the bank's run on client nodes, whose clocks do
		// not jump, but its servers restart under jumps).
		return []Scenario{bankScenario, sqlBankScenario, sqlListScenario}
	case mutation.LeasedReads:
		// Reads off the driver are made by clients on the leaseholder's
		// node: the Redis sessions' (the KV scenarios' clients run on
		// nodes of their own).
		return []Scenario{redisScenario}
	case mutation.ActorAvailability:
		return []Scenario{actorAvailScenario}
	case mutation.Snapshot:
		// Snapshots meet splits and replica moves in kvsplit5: the span a
		// snapshot clears and fills changes under them.
		return []Scenario{kvScenario, kvSplit5Scenario}
	}
	// Consensus and client bugs: kvsplit too, where ranges, and so
	// elections, are more numerous (forget-vote, which needs a vote, a
	// crash and a second vote in one term, went from kv seed 122 to
	// beyond 300 when the meta range's traffic changed the traces; kvsplit
	// catches it at 11).
	return []Scenario{kvScenario, kvSplitScenario}
}

// outsideTheSweep are the planted bugs no scenario reaches and a test
// outside the simulator's sweep pins down instead (a consensus transcript,
// a package's own test), each with that test and why the swarm misses it.
// `make mutations` runs those tests first (TestTranscriptMutations,
// txn's TestMergeMutation), which require the bug to make them fail; the
// sweep here skips them and says so. Each is a blind spot of the swarm.
var outsideTheSweep = map[string]string{
	// Survived 300 Redis seeds (2026-12-06): the window needs a leader
	// whose apply lags its commit index by more than an election timeout
	// (the right-hand range's new replicas are quiet that long), while a
	// client of its node reads the right-hand span.
	"paged-view-kept": "consensus/testdata/transcripts/11_paged_split.txt (a leader 150 entries behind, a split past its page)",
	// The bank's aimed shared steps (aimed_test.go, stepTogether) end a
	// node's step when it crashes: a quorum restarted under the step
	// would set the cluster's time there, which the scenario's clients,
	// whose clocks nothing checks, refuse. So nothing restarts two nodes
	// under one step while the third stays up.
	"fenced-clocks-vote": "consensus TestClockMutations (two nodes of three restarted under a shared step of their wall clocks)",
	// Met by the swarm at bank seed 224 (a regression seed of that
	// scenario) on the thirty-fifth session's traces; since the wait
	// queue at the leaseholder changed every transaction scenario's
	// traces (2026-12-07, thirty-sixth session) it survives 300 seeds of
	// bank, sqlbank and sqllist: the window needs an aimed shared step of
	// two nodes' wall clocks while the third's clock, drifting fast, is
	// outvoted with its wall clock near theirs.
	"step-taken-on-walls-alone": "consensus TestClockMutations (a step shared with a peer, taken for a correction)",
	// Met once by the swarm, at actors seed 305 (a regression seed of
	// that scenario since, 2026-12-07); the clock bugs' sweep runs the
	// bank and SQL scenarios, and the window needs a clock that ran slow
	// within the fence of both peers whose wall clock then steps back.
	"step-left-behind": "consensus TestClockMutations (a clock 530 ms behind true time, within the fence of its peers, whose wall clock comes back)",
	// Survived 300 seeds of bank, txnkv, listappend and recovery
	// (2026-12-06), as cache-kept-across-merge did before it: the window
	// needs a read of the right-hand range just before a merge, then a
	// write beneath it to the absorbed span from a coordinator whose
	// clock is behind.
	"merge-summary-dropped": "txn TestMergeMutation (a read of the right-hand range, a merge, a write beneath the read)",
	// Survived 300 seeds of bank, txnkv, listappend and recovery on every
	// trace since the nineteenth session but two (caught once at txnkv
	// 26, once at a seed that failed without it): the window needs a
	// leaseholder whose hybrid clock has heard from no one since a clock
	// ahead pushed a write, then a write-skew pair on its ranges
	// (docs/txn.md, "future-reads-served is a blind spot").
	"future-reads-served": "txn TestFutureReadMutation (a read 400 ms above the leaseholder's clock, a successor 200 ms behind)",
	// Caught by the swarm only by chance: at bank seed 125, then at
	// listappend seed 12 (2026-12-06); none of 300 seeds of bank, txnkv,
	// listappend and recovery once committed entries began to apply ahead
	// of their cycle's write (2026-12-07), which moved every trace. The
	// window: a hand-over whose successor writes beneath a read the old
	// leader served after its cache's low-water mark, before any newer
	// read of the key reaches the successor.
	"handover-summary-low": "txn TestHandOverMutation (a read, a hand-over, a write beneath the read)",
	// Met once by the swarm: actors seed 109 on c2eacf8, where a copy of
	// a failed compare-and-set (the seed duplicates and replays
	// messages) ran after another caller's put and applied it. Survived
	// 300 seeds of actors and sagas on the next commit, whose traces
	// moved, and again with a perturbation that sent every answered call
	// once more up to 300 ms later (not kept): the copy must also find
	// the state changed to what the failed call expected.
	"read-runs-forgotten": "kernel/node TestReadRunsMutation (a failed compare-and-set, a put that makes it succeed, then the same call again)",
	// Caught by the swarm only at redistxn seed 79, the replay of the run
	// that found the real bug, until 2026-12-07's early applies moved that
	// trace: the window is a crash after a split applies and before the
	// node's next synced write, with the new replica heard by its leader.
	"split-unsynced": "consensus/testdata/transcripts/12_split_durable.txt (a node crashes the moment it holds the split's new range)",
	// Not swept (2026-12-07): the bug needs a batch that writes a
	// range-local key itself and then applies effects that write it
	// again. Overlays and apply batches almost never do (an overlay is
	// rebuilt from effects alone; an apply batch writes range-local keys
	// itself only for splits, merges and old-format entries), so a sweep
	// would spend its 300 seeds on a window the storage test opens
	// directly.
	"local-cache-misses-effects": "storage TestLocalCacheMutation (effects applied over a key the batch wrote itself)",
	// Not swept (2026-12-07): the bug needs a hand-over with summaries
	// (a transaction keyspace) over links slower than Raft's 200 ms
	// transfer window that do not make the leader step down first. The
	// availability scenario slows leaders whose machines keep no
	// summaries; the transaction scenarios, whose machines do, slow no
	// leader's every link for long. Met in Jepsen's slow-leader runs.
	"transfer-unpersisted": "consensus TestHandOverMutations (an idle range's leader turns slow and hands the range over)",
}

// firstFailure runs the scenarios' regression seeds, then sweeps them from
// seed 1, ten seeds at a time (each seed on every scenario), and returns
// the first failing run within maxSeeds, or nil.
func firstFailure(scs []Scenario, maxSeeds uint64) *Result {
	const chunk = 10
	for _, sc := range scs {
		for _, r := range sweep(sc, sc.regressionSeeds()) {
			if r.Err != nil {
				return r
			}
		}
	}
	for first := uint64(1); first <= maxSeeds; first += chunk {
		for _, sc := range scs {
			seeds := slices.DeleteFunc(seedRange(first, chunk), func(seed uint64) bool { return sc.KnownFailures[seed] != "" })
			for _, r := range sweep(sc, seeds) {
				if r.Err != nil {
					return r
				}
			}
		}
	}
	return nil
}

// scenarioNamed is the scenario of scs called name.
func scenarioNamed(scs []Scenario, name string) Scenario {
	for _, sc := range scs {
		if sc.Name == name {
			return sc
		}
	}
	panic("sim: no scenario " + name)
}

// TestMutationsAreCaught plants each bug in turn (internal/mutation lists
// them; each package declares its own) and requires its scenario to catch
// it within 300 seeds. Run it with `make mutations` (ORBIT_MUTATION=name
// runs one).
func TestMutationsAreCaught(t *testing.T) {
	defer mutation.Set("")
	const maxSeeds = 300
	total := time.Now()
	for name := range outsideTheSweep {
		if !slices.ContainsFunc(mutation.All(), func(b mutation.Bug) bool { return b.Name == name }) {
			t.Errorf("outsideTheSweep names %s, which is not planted", name)
		}
	}
	for _, b := range mutation.All() {
		if only := os.Getenv("ORBIT_MUTATION"); only != "" && only != b.Name {
			continue
		}
		if where, ok := outsideTheSweep[b.Name]; ok {
			fmt.Printf("mutation %-24s %-20s not swept: caught by %s\n", b.Name, b.Class, where)
			continue
		}
		mutation.Set(b.Name)
		scs := mutationScenarios(b)
		start := time.Now()
		caught := firstFailure(scs, maxSeeds)
		if caught == nil {
			var names []string
			for _, sc := range scs {
				names = append(names, sc.Name)
			}
			t.Errorf("mutation %s (%s) survived %d seeds of %s", b.Name, b.Class, maxSeeds, strings.Join(names, " and "))
			continue
		}
		// The seed must pass without the bug: one that fails anyway
		// catches nothing (sqlbank seed 175 "caught" lock-read-unnoted
		// by its own failure, 2026-12-05).
		mutation.Set("")
		if clean := Run(scenarioNamed(scs, caught.Scenario), caught.Seed); clean.Err != nil {
			t.Errorf("mutation %s: %s seed %d fails without the bug too (%s: %v): list it in the scenario's KnownFailures",
				b.Name, caught.Scenario, caught.Seed, clean.Phase, strings.SplitN(clean.Err.Error(), "\n", 2)[0])
		}
		msg := strings.SplitN(caught.Err.Error(), "\n", 2)[0]
		fmt.Printf("mutation %-24s %-20s %-5s caught at seed %3d after %5.1fs wall: %s: %s\n",
			b.Name, b.Class, caught.Scenario, caught.Seed, time.Since(start).Seconds(), caught.Phase, msg)
	}
	fmt.Printf("mutations: %d planted, %.0fs wall in all\n", len(mutation.All()), time.Since(total).Seconds())
}
