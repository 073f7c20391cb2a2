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
	mutation.Bites(t, MutLocalCacheMissesEffects, func() string { return effectsOverOwnWrite(t) })
}
