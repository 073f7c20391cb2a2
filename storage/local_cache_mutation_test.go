//go:build orbit_mutations

package storage

import (
	"testing"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// TestLocalCacheMutation: with the own-writes cache deaf to applied
// effects, a batch reads its own older write back. The simulator's sweep
// skips this bug (sim/mutation_test.go's outsideTheSweep says why).
func TestLocalCacheMutation(t *testing.T) {
	mutation.Set(MutLocalCacheMissesEffects)
	defer mutation.Set("")
	if msg := effectsOverOwnWrite(t); msg == "" {
		t.Fatalf("%s planted, and the batch read the effects' value", MutLocalCacheMissesEffects)
	} else {
		t.Logf("caught: %s", msg)
	}
}
