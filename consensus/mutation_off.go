//go:build !orbit_mutations

package consensus

// Mutated reports whether the planted bug name is active: never, in this
// build.
func Mutated(string) bool { return false }
