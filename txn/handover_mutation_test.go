//go:build orbit_mutations

package txn

import (
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// TestHandOverMutation and TestMergeMutation: TestHandOverCarriesTheReads
// and TestMergeCarriesTheReads bite. No scenario reaches
// merge-summary-dropped, and since 2026-12-07 none reaches
// handover-summary-low within 300 seeds (sim/mutation_test.go,
// outsideTheSweep).
func TestHandOverMutation(t *testing.T) { bites(t, MutHandoverSummaryLow, handOver) }
func TestMergeMutation(t *testing.T)    { bites(t, MutMergeSummaryDropped, merge) }

// TestFutureReadMutation: TestNoReadAboveTheClock bites; no scenario
// reaches future-reads-served (sim/mutation_test.go, outsideTheSweep).
func TestFutureReadMutation(t *testing.T) {
	mutation.Set(MutFutureReadsServed)
	defer mutation.Set("")
	if msg := futureReadSurvives(); msg == "" {
		t.Fatalf("%s planted, and no read above the clock was served", MutFutureReadsServed)
	} else {
		t.Logf("caught: %s", msg)
	}
}

func bites(t *testing.T, bug string, m aMove) {
	mutation.Set(bug)
	defer mutation.Set("")
	if msg := readsSurvive(t, m); msg == "" {
		t.Fatalf("%s planted, and the cache survived %s", bug, m.what)
	} else {
		t.Logf("caught: %s", msg)
	}
}

// TestFinalizedMutation: TestAnAbortedCommitIsNotTakenForFinal bites.
func TestFinalizedMutation(t *testing.T) {
	mutation.Set(MutFinalizedBeforeDecision)
	defer mutation.Set("")
	if msg := abortedCommitTakenForFinal(t); msg == "" {
		t.Fatalf("%s planted, and the aborted commit's intents were not read", MutFinalizedBeforeDecision)
	} else {
		t.Logf("caught: %s", msg)
	}
}
