package query

import "testing"

// NewTestEngine is newTestEngine for the external tests (diff_test.go): an
// in-process single-node engine over an in-memory store, closed when t
// ends.
func NewTestEngine(t testing.TB) *Engine { return newTestEngine(t) }
