package main

import (
	"context"
	"os"
	"runtime/debug"
	rtmetrics "runtime/metrics"
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
	every(ctx, releasePeriod, func() bool { cmem.Release(); return true })
}

// every calls fn every period until ctx ends or fn returns false.
func every(ctx context.Context, period time.Duration, fn func() bool) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !fn() {
				return
			}
		}
	}
}

// The Go collector's pace. With the default GOGC of 100 a server whose
// live heap is small (Orbit's is tens of megabytes: Pebble's cache and
// memtables are C memory) collects every few megabytes of allocation, and
// under pipelined SETs the collector took about 12% of the process's CPU
// (mark workers and assists; docs/performance.md, "The collector's
// pace"). A fixed higher GOGC would multiply the heap of a node whose
// live heap is large (40–65 MB at ten million keys: the Raft entries each
// range keeps until it truncates), against the memory goal, and a soft
// memory limit turns into a collection storm once the live heap passes it.
// So the server sets GOGC from the live heap after each collection: as
// high as gcPercentMax while the heap that pace allows stays within the
// heap's budget, never below Go's default of 100 (no storm: a large live
// heap is collected as Go would by default). A GOGC in the environment is
// the operator's choice and is left alone.
//
// The heap's budget shares one allowance with Pebble's C memory (its
// block cache and memtables): gcHeapBudget less what Pebble holds, never
// below gcHeapFloor. A node whose data fits its caches (they stay mostly
// empty) keeps the fast pace; one whose cache has filled collects as Go
// does by default. Measured at ten million keys (docs/performance.md,
// "Growth and memory at ten million keys"): the fixed budget held 412–430
// MB resident with GETs and SETs no faster than GOGC 100's 302–345 MB.
const (
	gcHeapBudget  = 160 << 20
	gcHeapFloor   = 64 << 20
	gcPercentMax  = 300
	gcPercentMin  = 100
	gcTunePeriod  = time.Second
	gcLiveMetric  = "/gc/heap/live:bytes"
	gcPercentStep = 25 // smaller changes are not worth a call
)

// heapBudget is the heap the pace may allow while Pebble holds held bytes
// of C memory.
func heapBudget(held uint64) uint64 {
	if held >= gcHeapBudget-gcHeapFloor {
		return gcHeapFloor
	}
	return gcHeapBudget - held
}

// gcPercentFor is the GOGC for a live heap of live bytes while Pebble
// holds held bytes.
func gcPercentFor(live, held uint64) int {
	if live == 0 {
		return gcPercentMax
	}
	p := int(heapBudget(held)*100/live) - 100
	return min(max(p, gcPercentMin), gcPercentMax)
}

// startGCPace runs tuneGC until ctx ends or the returned stop is called;
// stop returns once tuneGC has (held reads the engine, so the engine must
// not close while it may run).
func startGCPace(ctx context.Context, held func() uint64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tuneGC(ctx, held)
	}()
	return func() {
		cancel()
		<-done
	}
}

// tuneGC sets GOGC from the live heap and from what Pebble holds (held)
// every gcTunePeriod until ctx ends, unless GOGC is set in the
// environment.
func tuneGC(ctx context.Context, held func() uint64) {
	if os.Getenv("GOGC") != "" {
		return
	}
	sample := []rtmetrics.Sample{{Name: gcLiveMetric}}
	debug.SetGCPercent(gcPercentMax)
	current := gcPercentMax
	every(ctx, gcTunePeriod, func() bool {
		rtmetrics.Read(sample)
		if sample[0].Value.Kind() != rtmetrics.KindUint64 {
			return false // not measured by this Go: keep gcPercentMax
		}
		if p := gcPercentFor(sample[0].Value.Uint64(), held()); p != current && (abs(p-current) >= gcPercentStep || p == gcPercentMin || p == gcPercentMax) {
			debug.SetGCPercent(p)
			current = p
		}
		return true
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
