//go:build orbit_mutations

package consensus

import "sync/atomic"

var active atomic.Pointer[string]

// Mutated reports whether the planted bug name is active.
func Mutated(name string) bool {
	p := active.Load()
	return p != nil && *p == name
}

// SetMutation activates one planted bug ("" for none), for the whole process.
func SetMutation(name string) { active.Store(&name) }
