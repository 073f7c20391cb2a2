//go:build orbit_mutations

package mutation

import "sync/atomic"

var active atomic.Pointer[string]

// On reports whether the planted bug name is active.
func On(name string) bool {
	p := active.Load()
	return p != nil && *p == name
}

// Set activates one planted bug ("" for none), for the whole process.
func Set(name string) { active.Store(&name) }
