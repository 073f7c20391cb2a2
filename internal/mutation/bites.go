//go:build orbit_mutations

package mutation

import "testing"

// Bites plants the bug name, runs check (which says what went wrong, ""
// if nothing did), and fails t unless check caught it: a package's own
// test that pins a planted bug down where the simulator's sweep does not
// reach it (sim/mutation_test.go, outsideTheSweep), or sooner.
func Bites(t testing.TB, name string, check func() string) {
	t.Helper()
	Set(name)
	defer Set("")
	if msg := check(); msg == "" {
		t.Fatalf("%s planted, and nothing caught it", name)
	} else {
		t.Logf("caught: %s", msg)
	}
}
