//go:build orbit_mutations

package mutation

import (
	"flag"
	"fmt"
	"strings"
	"testing"
)

// SkipWhenRewriting skips a transcript mutation test run with -rewrite:
// the planted bugs would be written into the transcripts.
func SkipWhenRewriting(t testing.TB) {
	if f := flag.Lookup("rewrite"); f != nil && f.Value.String() == "true" {
		t.Skip("-rewrite: the planted bugs would be written into the transcripts")
	}
}

// Record runs check on a testing.TB that records its failures instead of
// reporting them, and says whether it failed, with what: a transcript run
// with a bug planted, which must fail without failing the test that
// planted it. A panic in check counts as a failure.
func Record(t testing.TB, check func(testing.TB)) (failed bool, msg string) {
	rec := &recordingTB{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != (stopRecording{}) {
				rec.failed = true
				rec.msgs = append(rec.msgs, fmt.Sprintf("panic: %v", p))
			}
		}()
		check(rec)
	}()
	return rec.failed, strings.Join(rec.msgs, "\n")
}

// FirstLines is s's first n lines, on a line of their own.
func FirstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return "\n" + strings.Join(lines, "\n")
}

// recordingTB is a testing.TB that records failures instead of reporting
// them; FailNow (and so Fatal) unwinds with stopRecording.
type recordingTB struct {
	testing.TB
	failed bool
	msgs   []string
}

type stopRecording struct{}

func (r *recordingTB) Helper()      {}
func (r *recordingTB) Fail()        { r.failed = true }
func (r *recordingTB) Failed() bool { return r.failed }
func (r *recordingTB) FailNow()     { r.failed = true; panic(stopRecording{}) }
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
