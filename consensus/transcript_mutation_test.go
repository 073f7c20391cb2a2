//go:build orbit_mutations

package consensus

import (
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// TestTranscriptMutations checks that the transcripts bite: with each
// planted bug active, the transcript that pins down the decision the bug
// breaks must fail (its output differs, or the run itself breaks).
func TestTranscriptMutations(t *testing.T) {
	if f := flag.Lookup("rewrite"); f != nil && f.Value.String() == "true" {
		t.Skip("-rewrite: the planted bugs would be written into the transcripts")
	}
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
			if failed, msg := runTranscriptRecorded(t, runners[filepath.Base(filepath.Dir(f))], f); failed {
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
		MutApplyRetriesTwice:   {"transcripts/2_retry.txt"},
		MutAckBeforeSync:       {"transcripts/3_persist_before_send.txt"},
		MutForgetVote:          {"transcripts/3_persist_before_send.txt", "core/01_plan.txt"},
		MutLocalReads:          {"transcripts/4_deposed_leader_reads.txt"},
		MutSendBeforePersist:   {"transcripts/3_persist_before_send.txt", "core/01_plan.txt"},
		MutLeaseNeverExpires:   {"core/02_reads.txt"},
		MutSplitDropsWrites:    {"core/06_admission.txt", "core/08_split.txt"},
		MutSplitForgetsClients: {"transcripts/7_split.txt"},
		MutMergeForgetsClients: {"transcripts/9_merge.txt"},
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
				t.Logf("%s (%s): caught by %v; first failure:%s", b.Name, b.Class, caught, firstLines(msg, 10))
			}
		})
	}
	for bug := range required {
		if _, ok := mutation.Lookup(bug); !ok {
			t.Errorf("required bug %s is not planted", bug)
		}
	}
}

// runTranscriptRecorded runs a transcript and reports whether it failed,
// with the failure, instead of failing t.
func runTranscriptRecorded(t *testing.T, run func(testing.TB, string), path string) (failed bool, msg string) {
	rec := &recordingTB{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != (stopTranscript{}) {
				rec.failed = true
				rec.msgs = append(rec.msgs, fmt.Sprintf("panic: %v", p))
			}
		}()
		run(rec, path)
	}()
	return rec.failed, strings.Join(rec.msgs, "\n")
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return "\n" + strings.Join(lines, "\n")
}

// recordingTB is a testing.TB that records failures instead of reporting
// them; FailNow (and so Fatal) unwinds with stopTranscript.
type recordingTB struct {
	testing.TB
	failed bool
	msgs   []string
}

type stopTranscript struct{}

func (r *recordingTB) Helper()      {}
func (r *recordingTB) Fail()        { r.failed = true }
func (r *recordingTB) Failed() bool { return r.failed }
func (r *recordingTB) FailNow()     { r.failed = true; panic(stopTranscript{}) }
func (r *recordingTB) Error(args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprint(args...))
}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Fatal(args ...any) { r.Error(args...); r.FailNow() }
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.FailNow()
}
func (r *recordingTB) Skip(args ...any)                 { r.Fatal(append([]any{"skip: "}, args...)...) }
func (r *recordingTB) Skipf(format string, args ...any) { r.Fatalf("skip: "+format, args...) }
func (r *recordingTB) SkipNow()                         { r.Fatal("skip") }
func (r *recordingTB) Logf(string, ...any)              {}
func (r *recordingTB) Log(...any)                       {}
