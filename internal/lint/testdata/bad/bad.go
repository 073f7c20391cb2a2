// Package bad breaks every rule of the runtime contract once (or a few
// times). Each offending line ends in a "want" comment naming the rules the
// lint must report there. It only has to parse, not compile.
package bad

import (
	"context"
	cryptorand "crypto/rand" // want globalrand
	mrand "math/rand"
	"math/rand/v2"
	"os"
	. "os" // want osfile
	clock "time"
)

func wallclock(ctx context.Context) {
	_ = clock.Now()           // want wallclock
	clock.Sleep(clock.Second) // want wallclock
	now := clock.Now          // want wallclock
	_ = now
	_ = clock.Since(clock.Time{})                       // want wallclock
	_, cancel := context.WithTimeout(ctx, clock.Second) // want wallclock
	cancel()
	t := clock.NewTimer(clock.Second) // want wallclock
	_ = t
}

func goroutine() {
	go func() {}() // want goroutine
}

func channel(ch chan int, done chan struct{}) {
	ch <- 1   // want channel
	v := <-ch // want channel
	_ = v
	select { // want channel
	case <-done:
		ch <- 2 // want channel
	default:
	}
}

func globalrand() {
	_ = rand.IntN(10)    // want globalrand
	_ = mrand.Intn(10)   // want globalrand
	rand.Shuffle(3, nil) // want globalrand
	_ = rand.Uint64()    // want globalrand
	_, _ = cryptorand.Read(nil)
}

func osfile() {
	_, _ = os.ReadFile("x")           // want osfile
	_ = os.WriteFile("x", nil, 0o644) // want osfile
	_, _ = os.Open("x")               // want osfile
	_ = os.RemoveAll("x")             // want osfile
}
