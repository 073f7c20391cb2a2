package main

import (
	"bytes"
	"regexp"
	"testing"
)

// The demo is what `make run` shows a newcomer: it must pass, and the same
// seed must print the same trace.
func TestDemoPassesAndReplays(t *testing.T) {
	trace := regexp.MustCompile(`seed=\d+ trace=[0-9a-f]{16}`)
	for _, seed := range []uint64{1, 2, 3} {
		var a, b bytes.Buffer
		if code := runDemo(&a, seed, false); code != 0 {
			t.Fatalf("seed %d: demo failed:\n%s", seed, a.String())
		}
		runDemo(&b, seed, false)
		ta, tb := trace.FindString(a.String()), trace.FindString(b.String())
		if ta == "" || ta != tb {
			t.Fatalf("seed %d: trace lines %q and %q", seed, ta, tb)
		}
	}
}
