//go:build !orbit_mutations

package main

// plantedBug: a normal build has no planted bugs (see mutation_on.go).
func plantedBug() string { return "" }
