//go:build !orbit_mutations

package mutation

// On reports whether the planted bug name is active: never, in this build.
func On(string) bool { return false }
