//go:build linux && cgo

package cmem

/*
#include <malloc.h>
*/
import "C"

// Supported reports whether LimitArenas and Release act.
const Supported = true

// LimitArenas caps the number of malloc arenas at n. Call it before the
// allocations it should shape (first thing in main).
func LimitArenas(n int) {
	C.mallopt(C.M_ARENA_MAX, C.int(n))
}

// Release gives the C heaps' free pages back to the system.
func Release() {
	C.malloc_trim(0)
}
