package respwire

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWorkersAreReusedAndEnd: tasks run on idle workers when there are
// some (a burst of sequential tasks needs one worker, not one each), and
// every worker ends when the listener's context does.
func TestWorkersAreReusedAndEnd(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	w := newWorkers(ctx)
	var mu sync.Mutex
	ran := 0
	for range 100 {
		done := make(chan struct{})
		w.run(func() {
			mu.Lock()
			ran++
			mu.Unlock()
			close(done)
		})
		<-done
		time.Sleep(time.Millisecond) // the worker goes back to waiting
	}
	if n := runtime.NumGoroutine() - before; n > 2 {
		t.Errorf("%d goroutines for 100 tasks one after another; want the one worker reused", n)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		w.run(func() { time.Sleep(10 * time.Millisecond); wg.Done() })
	}
	wg.Wait()
	if ran != 100 {
		t.Fatalf("ran %d tasks, want 100", ran)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after the workers' context ended", runtime.NumGoroutine()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
