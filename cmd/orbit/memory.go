package main

import (
	"context"
	"time"

	"github.com/orbitkernel/orbit/internal/cmem"
)

// cArenas caps the C allocator's arenas (internal/cmem): Pebble's block
// cache and memtables are its only big users, and with glibc's default (up
// to eight per core) the freed blocks of a churning cache were spread over
// six arenas of about 50 MB each.
const cArenas = 2

// releasePeriod is how often the server hands the C heaps' free pages back
// to the system (internal/cmem.Release): a few milliseconds each time.
const releasePeriod = 10 * time.Second

// releaseFreedMemory calls cmem.Release every releasePeriod until ctx ends.
func releaseFreedMemory(ctx context.Context) {
	if !cmem.Supported {
		return
	}
	t := time.NewTicker(releasePeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cmem.Release()
		}
	}
}
