//go:build orbit_mutations

package txn

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// TestCoordinatorTranscriptMutations checks that the coordinator's
// transcripts bite: with each bug planted in a decision the coordinator
// makes, the transcript that shows that decision must fail. (The
// simulator's sweep catches each of them too; the transcripts say where.)
func TestCoordinatorTranscriptMutations(t *testing.T) {
	mutation.SkipWhenRewriting(t)
	required := map[string][]string{
		MutRefreshSkipped:          {"04_two_phase.txt"},
		MutCommitSkipsAnIntent:     {"04_two_phase.txt"},
		MutResolveBeforeDecision:   {"04_two_phase.txt"},
		MutFinalizedBeforeDecision: {"04_two_phase.txt"},
		MutCondensedSpanShort:      {"04_two_phase.txt"},
		MutLockSkipsRefresh:        {"05_locks.txt"},
		MutRollbackToKeepsIntents:  {"06_savepoints.txt"},
	}
	for _, bug := range slices.Sorted(maps.Keys(required)) {
		t.Run(bug, func(t *testing.T) {
			mutation.Bites(t, bug, func() string {
				first := ""
				for _, name := range required[bug] {
					path := filepath.Join("testdata", "coordinator", name)
					failed, msg := mutation.Record(t, func(tb testing.TB) { runCoordinatorTranscript(tb, path) })
					if !failed {
						return ""
					}
					if first == "" {
						first = name + ":" + mutation.FirstLines(msg, 12)
					}
				}
				return first
			})
		})
	}
}
