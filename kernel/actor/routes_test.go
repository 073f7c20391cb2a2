package actor

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

func TestRoutes(t *testing.T) {
	r := NewRoutes()
	a, b := Ref{Type: "t", Key: "a"}, Ref{Type: "t", Key: "b"}
	hosts := []kernel.NodeID{1, 2, 3}

	r.moved(a, 2)
	if n, ok := r.lookup(a); !ok || n != 2 {
		t.Fatalf("lookup after moved: %d %v", n, ok)
	}
	r.forget(a, 3) // another node's failure: a's host is still 2
	if n, _ := r.lookup(a); n != 2 {
		t.Fatalf("forget of another node dropped a's host: %d", n)
	}
	r.forget(a, 2)
	if _, ok := r.lookup(a); ok {
		t.Fatal("forget kept a's host")
	}

	r.suspectUntil(2, 10*time.Second)
	r.suspectUntil(2, 5*time.Second) // an earlier end does not shorten it
	if got := r.healthy(hosts, 9*time.Second); !slices.Equal(got, []kernel.NodeID{1, 3}) {
		t.Fatalf("healthy while 2 is suspected: %v", got)
	}
	if !r.suspected(2, 9*time.Second) || r.suspected(2, 10*time.Second) {
		t.Fatal("the suspicion of 2 does not end at 10 s")
	}
	if got := r.healthy(hosts, 10*time.Second); !slices.Equal(got, hosts) {
		t.Fatalf("healthy after the suspicion ended: %v", got)
	}
	r.suspectUntil(1, time.Minute)
	r.suspectUntil(3, time.Minute)
	if got := r.healthy(hosts, 9*time.Second); !slices.Equal(got, hosts) {
		t.Fatalf("every host suspected: healthy should be all of them, got %v", got)
	}
	r.found(b, 1) // 1 answered
	if r.suspected(1, 0) {
		t.Fatal("a host that answered is still suspected")
	}

	for i := range maxRoutes + 1 {
		r.moved(Ref{Type: "t", Key: strconv.Itoa(i)}, 1)
	}
	if len(r.where) > maxRoutes {
		t.Fatalf("%d routes remembered, bound %d", len(r.where), maxRoutes)
	}
}
