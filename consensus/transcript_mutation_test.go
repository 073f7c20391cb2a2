//go:build orbit_mutations

package consensus

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// TestTranscriptMutations checks that the transcripts bite: with each
// planted bug active, the transcript that pins down the decision the bug
// breaks must fail (its output differs, or the run itself breaks).
func TestTranscriptMutations(t *testing.T) {
	mutation.SkipWhenRewriting(t)
	// The store transcripts (testdata/transcripts) and the core
	// transcripts (testdata/core), named by their directory and file.
	runners := map[string]func(testing.TB, string){"transcripts": runTranscript, "core": runCoreTranscript}
	var files []string
	for dir := range runners {
		found, err := filepath.Glob(filepath.Join("testdata", dir, "*.txt"))
		if err != nil || len(found) == 0 {
			t.Fatalf("no transcripts in %s: %v", dir, err)
		}
		files = append(files, found...)
	}
	slices.Sort(files)
	name := func(f string) string { return filepath.Join(filepath.Base(filepath.Dir(f)), filepath.Base(f)) }
	// catches runs every transcript with bug planted and returns those
	// that fail, with the first failure's message.
	catches := func(t *testing.T, bug string) (caught []string, first string) {
		mutation.Set(bug)
		defer mutation.Set("")
		for _, f := range files {
			run := runners[filepath.Base(filepath.Dir(f))]
			if failed, msg := mutation.Record(t, func(tb testing.TB) { run(tb, f) }); failed {
				caught = append(caught, name(f))
				if first == "" {
					first = msg
				}
			}
		}
		return caught, first
	}
	// The bugs each transcript is there to catch: the transcript named
	// must fail with the bug planted.
	required := map[string][]string{
		MutTimeoutNotApplied:   {"transcripts/1_lost_leadership.txt"},
		MutRetryNewSeq:         {"transcripts/2_retry.txt"},
		MutApplyRetriesTwice:   {"transcripts/2_retry.txt", "core/10_evaluation.txt"},
		MutUncheckedEvaluation: {"core/10_evaluation.txt"},
		MutAckBeforeSync:       {"transcripts/3_persist_before_send.txt"},
		MutForgetVote:          {"transcripts/3_persist_before_send.txt", "core/01_plan.txt"},
		MutLocalReads:          {"transcripts/4_deposed_leader_reads.txt"},
		MutSendBeforePersist:   {"transcripts/3_persist_before_send.txt", "core/01_plan.txt"},
		MutLeaseNeverExpires:   {"core/02_reads.txt"},
		MutSplitDropsWrites:    {"core/06_admission.txt", "core/08_split.txt"},
		MutSplitForgetsClients: {"transcripts/7_split.txt", "core/11_split_with_data.txt"},
		MutMergeForgetsClients: {"transcripts/9_merge.txt", "core/12_merge_with_data.txt"},
		MutPagedViewKept:       {"transcripts/11_paged_split.txt"},
		MutSplitUnsynced:       {"transcripts/12_split_durable.txt"},
	}
	for _, b := range mutation.All() {
		t.Run(b.Name, func(t *testing.T) {
			caught, msg := catches(t, b.Name)
			for _, want := range required[b.Name] {
				if !slices.Contains(caught, want) {
					t.Fatalf("%s passes with %s planted (caught by %v)", want, b.Name, caught)
				}
			}
			switch {
			case len(caught) == 0:
				t.Logf("%s (%s): caught by no transcript (not required)", b.Name, b.Class)
			default:
				t.Logf("%s (%s): caught by %v; first failure:%s", b.Name, b.Class, caught, mutation.FirstLines(msg, 10))
			}
		})
	}
	for bug := range required {
		if _, ok := mutation.Lookup(bug); !ok {
			t.Errorf("required bug %s is not planted", bug)
		}
	}
}
