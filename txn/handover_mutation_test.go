//go:build orbit_mutations

package txn

import (
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// TestHandOverMutation: TestHandOverCarriesTheReads bites. The simulator's
// transaction scenarios hand leases over under load, but a summary that
// is too low shows only when a write below a read the old leader served
// reaches the new one, which their sweeps may not reach (`make mutations`
// reports where it is caught).
func TestHandOverMutation(t *testing.T) {
	mutation.Set(MutHandoverSummaryLow)
	defer mutation.Set("")
	if msg := handOverCarriesTheReads(t); msg == "" {
		t.Fatalf("%s planted, and TestHandOverCarriesTheReads passed", MutHandoverSummaryLow)
	} else {
		t.Logf("caught: %s", msg)
	}
}

// TestMergeMutation: TestMergeCarriesTheReads bites.
func TestMergeMutation(t *testing.T) {
	mutation.Set(MutMergeSummaryDropped)
	defer mutation.Set("")
	if msg := mergeCarriesTheReads(t); msg == "" {
		t.Fatalf("%s planted, and TestMergeCarriesTheReads passed", MutMergeSummaryDropped)
	} else {
		t.Logf("caught: %s", msg)
	}
}
