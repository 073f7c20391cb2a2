//go:build !(linux && cgo)

package cmem

// Supported reports whether LimitArenas and Release act.
const Supported = false

// LimitArenas does nothing without glibc.
func LimitArenas(int) {}

// Release does nothing without glibc.
func Release() {}
