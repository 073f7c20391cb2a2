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
func TestHandOverMutation(t *testing.T) {
	mutation.Bites(t, MutHandoverSummaryLow, func() string { return readsSurvive(t, handOver) })
}

func TestMergeMutation(t *testing.T) {
	mutation.Bites(t, MutMergeSummaryDropped, func() string { return readsSurvive(t, merge) })
}

// TestFutureReadMutation: TestNoReadAboveTheClock bites; no scenario
// reaches future-reads-served (sim/mutation_test.go, outsideTheSweep).
func TestFutureReadMutation(t *testing.T) {
	mutation.Bites(t, MutFutureReadsServed, futureReadSurvives)
}

// TestFinalizedMutation: TestAnAbortedCommitIsNotTakenForFinal bites
// at once (the bank scenario catches it too, later).
func TestFinalizedMutation(t *testing.T) {
	mutation.Bites(t, MutFinalizedBeforeDecision, func() string { return abortedCommitTakenForFinal(t) })
}
