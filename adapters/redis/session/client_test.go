package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/prod"
)

// newServer is a session server on the production runtime whose ranges
// are never started: enough for the commands that touch no range
// (connection commands, MULTI queuing, SUBSCRIBE, CLIENT).
func newServer(t *testing.T) *session.Server {
	t.Helper()
	rt := prod.New(prod.Options{NodeID: 1})
	t.Cleanup(rt.Stop)
	layout, err := consensus.NewLayout(nil, []kernel.NodeID{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.New(session.Options{Runtime: rt, Layout: layout, Clients: 1, ExpirePeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do runs a command on c and returns its last reply. Any goroutine may
// call it.
func do(t *testing.T, c *session.Conn, args ...string) redis.Reply {
	t.Helper()
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	replies, _ := c.Do(context.Background(), b)
	if len(replies) == 0 {
		t.Errorf("%q: no reply", args)
		return redis.Reply{}
	}
	return replies[len(replies)-1]
}

// clientLine is c's line of CLIENT LIST as seen from other.
func clientLine(t *testing.T, other, c *session.Conn) string {
	t.Helper()
	r := do(t, other, "CLIENT", "LIST")
	prefix := fmt.Sprintf("id=%d ", c.ID())
	for _, l := range strings.Split(string(r.Str), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("CLIENT LIST has no line for id %d:\n%s", c.ID(), r.Str)
	return ""
}

// TestClientListShowsOtherConnections follows one connection through the
// states CLIENT LIST shows, as another connection sees them.
func TestClientListShowsOtherConnections(t *testing.T) {
	s := newServer(t)
	a, b := s.NewConn("10.0.0.1:1000", nil), s.NewConn("10.0.0.2:2000", nil)
	defer a.Close()
	defer b.Close()

	for _, step := range []struct {
		args []string
		want []string // fields of a's line, as b sees it
	}{
		{[]string{"CLIENT", "SETNAME", "alpha"}, []string{"addr=10.0.0.1:1000", "name=alpha", "multi=-1", "cmd=client|setname", "resp=2", "flags=N"}},
		{[]string{"MULTI"}, []string{"multi=0", "cmd=multi", "flags=x"}},
		{[]string{"SET", "k", "v"}, []string{"multi=1", "cmd=set"}},
		{[]string{"INCR", "n"}, []string{"multi=2", "cmd=incr"}},
		{[]string{"DISCARD"}, []string{"multi=-1", "cmd=discard"}},
		{[]string{"HELLO", "3", "SETNAME", "beta"}, []string{"name=beta", "resp=3"}},
		// A later bad option fails HELLO, but the name is set (Redis 7.0.15 does the same).
		{[]string{"HELLO", "2", "SETNAME", "gamma", "BOGUS"}, []string{"name=gamma", "resp=3"}},
		{[]string{"SUBSCRIBE", "x", "y"}, []string{"sub=2", "psub=0", "flags=P"}},
		{[]string{"PSUBSCRIBE", "z*"}, []string{"sub=2", "psub=1"}},
		{[]string{"RESET"}, []string{"name=", "sub=0", "psub=0", "resp=2", "flags=N"}},
		{[]string{"CLIENT", "NO-EVICT", "on"}, []string{"flags=e"}},
		{[]string{"RESET"}, []string{"flags=e"}}, // NO-EVICT stays, as in Redis 7.0.15
		{[]string{"MONITOR"}, []string{"flags=Oe", "cmd=monitor"}},
	} {
		do(t, a, step.args...)
		line := clientLine(t, b, a)
		fields := strings.Fields(line)
		for _, w := range step.want {
			if !slices.Contains(fields, w) {
				t.Errorf("after %q: CLIENT LIST line %q lacks %q", step.args, line, w)
			}
		}
	}
	if got := a.Proto(); got != 2 {
		t.Errorf("Proto after RESET = %d, want 2", got)
	}
}

// TestClientListWhileOthersWork runs CLIENT LIST, CLIENT INFO and Proto
// from other tasks while connections change everything CLIENT LIST shows
// (MULTI and its queue, name, protocol, subscriptions): under -race it
// fails if any of it is read without synchronisation.
func TestClientListWhileOthersWork(t *testing.T) {
	s := newServer(t)
	const workers, rounds, watchers = 2, 300, 2
	conns := make([]*session.Conn, workers)
	for i := range conns {
		conns[i] = s.NewConn(fmt.Sprintf("10.0.0.%d:1000", i+1), nil)
	}
	var work, watch sync.WaitGroup
	done := make(chan struct{})
	for i, c := range conns {
		work.Add(1)
		go func() {
			defer work.Done()
			for r := range rounds {
				do(t, c, "MULTI")
				for range 5 {
					do(t, c, "SET", "k", "v")
				}
				do(t, c, "DISCARD")
				do(t, c, "CLIENT", "SETNAME", fmt.Sprintf("w%d-%d", i, r))
				do(t, c, "HELLO", fmt.Sprint(2+r%2))
				do(t, c, "SUBSCRIBE", "ch")
				do(t, c, "PSUBSCRIBE", "c*")
				do(t, c, "RESET")
			}
		}()
	}
	for i := range watchers {
		w := s.NewConn(fmt.Sprintf("10.0.1.%d:1000", i+1), nil)
		watch.Add(1)
		go func() {
			defer watch.Done()
			defer w.Close()
			for {
				select {
				case <-done:
					return
				default:
				}
				if r := do(t, w, "CLIENT", "LIST"); !strings.Contains(string(r.Str), "id=") {
					t.Errorf("CLIENT LIST: %q", r.Str)
				}
				do(t, w, "CLIENT", "INFO")
				for _, c := range conns {
					if p := c.Proto(); p != 2 && p != 3 {
						t.Errorf("Proto = %d", p)
					}
				}
			}
		}()
	}
	work.Wait()
	close(done)
	watch.Wait()
	for _, c := range conns {
		c.Close()
	}
}

// TestInvalidOptionsAreRefused: New says what is wrong with its options,
// every problem at once.
func TestInvalidOptionsAreRefused(t *testing.T) {
	_, err := session.New(session.Options{BlockPoll: time.Microsecond})
	if !errors.Is(err, session.ErrInvalidOptions) {
		t.Fatalf("New: %v", err)
	}
	for _, want := range []string{"Runtime is nil", "Layout has no ranges", "BlockPoll 1µs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v; want it to say %q", err, want)
		}
	}
}
