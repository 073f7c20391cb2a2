package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// pingPong starts two nodes bouncing a counter n times over the network and
// returns how many round trips completed.
func pingPong(s *Sim, rounds int) *int {
	done := new(int)
	s.AddNode(1, func(rt kernel.Runtime) {
		in := rt.Net().Listen("pong")
		rt.Go("ping", func(ctx context.Context) {
			for i := 0; i < rounds; i++ {
				rt.Net().Send(2, "ping", []byte{byte(i)})
				if _, err := in.Recv(ctx); err != nil {
					return
				}
				*done++
			}
		})
	})
	s.AddNode(2, func(rt kernel.Runtime) {
		in := rt.Net().Listen("ping")
		rt.Go("pong", func(ctx context.Context) {
			for {
				env, err := in.Recv(ctx)
				if err != nil {
					return
				}
				rt.Net().Send(env.From, "pong", env.Body)
			}
		})
	})
	return done
}

func TestPingPong(t *testing.T) {
	s := New(1)
	defer s.Close()
	done := pingPong(s, 100)
	if err := s.RunUntil(func() bool { return *done == 100 }, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Every round trip is two one-way latencies of at least 0.5 ms.
	if s.Elapsed() < 100*time.Millisecond {
		t.Fatalf("100 round trips took only %v of virtual time", s.Elapsed())
	}
}

func TestSameSeedSameTrace(t *testing.T) {
	run := func(seed uint64) uint64 {
		s := New(seed)
		defer s.Close()
		done := pingPong(s, 50)
		if err := s.RunUntil(func() bool { return *done == 50 }, time.Minute); err != nil {
			t.Fatal(err)
		}
		return s.Trace()
	}
	a, b, c := run(7), run(7), run(8)
	if a != b {
		t.Fatalf("seed 7 gave traces %x and %x", a, b)
	}
	if a == c {
		t.Fatalf("seeds 7 and 8 gave the same trace %x", a)
	}
}

func TestDeadlockReportsBlockedTasks(t *testing.T) {
	s := New(1)
	defer s.Close()
	s.AddNode(1, func(rt kernel.Runtime) {
		f := kernel.NewFuture[int](rt, "answer from nobody")
		rt.Go("waiter", func(ctx context.Context) { f.Wait(ctx) })
	})
	err := s.RunUntil(func() bool { return false }, time.Hour)
	var dl *DeadlockError
	if !errors.As(err, &dl) {
		t.Fatalf("want a deadlock, got %v", err)
	}
	if len(dl.Blocked) != 1 || !strings.Contains(dl.Blocked[0], `"waiter"`) || !strings.Contains(dl.Blocked[0], "answer from nobody") {
		t.Fatalf("report does not name the blocked task and its wait:\n%v", err)
	}
}

func TestTimeoutEndsWait(t *testing.T) {
	s := New(1)
	defer s.Close()
	var got error
	var waited time.Duration
	s.AddNode(1, func(rt kernel.Runtime) {
		in := rt.Net().Listen("silence")
		rt.Go("waiter", func(ctx context.Context) {
			start := rt.Now()
			ctx, cancel := rt.WithTimeout(ctx, 250*time.Millisecond)
			defer cancel()
			_, got = in.Recv(ctx)
			waited = rt.Now().Sub(start)
		})
	})
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(got, context.DeadlineExceeded) || waited != 250*time.Millisecond {
		t.Fatalf("Recv returned %v after %v; want a deadline after 250ms", got, waited)
	}
}

func TestTaskPanicIsReported(t *testing.T) {
	s := New(1)
	defer s.Close()
	s.AddNode(1, func(rt kernel.Runtime) {
		rt.Go("buggy", func(ctx context.Context) { panic("invariant broken") })
	})
	err := s.RunFor(time.Second)
	var tp *TaskPanic
	if !errors.As(err, &tp) || tp.Task != "buggy" {
		t.Fatalf("want the panic reported, got %v", err)
	}
}
