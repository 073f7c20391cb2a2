package storage

// The waits in this file block a task on Pebble's own goroutines, out of the
// scheduler's sight, and that is the point: while Pebble flushes, compacts or
// opens for a task, nothing else of the simulation may run, or Pebble's work
// would interleave with it at wall-clock moments (docs/consensus.md,
// "Determinism with Pebble"). internal/lint allows this file, and only it,
// a go statement and a select.

// wait returns when done is closed, or panics with kernel.NodeCrash when a
// fatal error is recorded first: the goroutine the caller waits for (a
// flush whose MANIFEST write failed) is parked for good.
func (f *fatalState) wait(done <-chan struct{}) {
	select {
	case <-done:
	case <-f.failed:
		f.check()
	}
}

// run calls fn on a goroutine of its own and waits for it as wait does, for
// a Pebble call that itself waits for Pebble's goroutines without a way
// out. A panic in fn (Pebble's Fatalf on the calling goroutine) is carried
// over to the caller.
func (f *fatalState) run(fn func()) {
	done := make(chan struct{})
	var panicked any
	go func() {
		defer close(done)
		defer func() { panicked = recover() }()
		fn()
	}()
	f.wait(done)
	if panicked != nil {
		panic(panicked)
	}
}
