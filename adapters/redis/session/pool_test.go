package session

import (
	"context"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/prod"
)

// TestClientPoolGrows: the pool starts with InitialClients, makes more
// while none is idle, up to Options.Clients, and then a command waits for
// a client to come back.
func TestClientPoolGrows(t *testing.T) {
	rt := prod.New(prod.Options{NodeID: 1})
	t.Cleanup(rt.Stop)
	layout, err := consensus.NewLayout(nil, []kernel.NodeID{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	const most = InitialClients + 3
	s, err := New(Options{Runtime: rt, Layout: layout, Clients: most, ExpirePeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s.made != InitialClients {
		t.Fatalf("made %d clients at start, want %d", s.made, InitialClients)
	}
	ctx := context.Background()
	var taken []*consensus.Client
	for range most {
		c, err := s.client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, c)
	}
	if s.made != most {
		t.Fatalf("made %d clients for %d commands in flight, want %d", s.made, most, most)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.client(short); err == nil {
		t.Fatalf("a client beyond Options.Clients (%d) was handed out", most)
	}
	s.pool.Send(taken[0])
	if c, err := s.client(ctx); err != nil || c != taken[0] {
		t.Fatalf("after one came back: %v, %v; want the returned client", c, err)
	}
	if s.made != most {
		t.Fatalf("made %d clients, want %d", s.made, most)
	}
}
