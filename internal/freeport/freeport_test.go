package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrsAreDistinctAndBindable(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is not bindable: %v", addr, err)
		}
		_ = ln.Close()
		if p := ln.Addr().(*net.TCPAddr).Port; p < low || p >= high {
			t.Fatalf("port %d is outside [%d, %d)", p, low, high)
		}
	}
}

func TestATakenPortIsSkipped(t *testing.T) {
	addr, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	_ = addr
	// Hold the port that would come next; Addr must step over it.
	mu.Lock()
	held := net.JoinHostPort("127.0.0.1", strconv.Itoa(next))
	mu.Unlock()
	ln, err := net.Listen("tcp", held)
	if err != nil {
		t.Skipf("cannot hold %s: %v", held, err)
	}
	defer ln.Close()
	got, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	if got == held {
		t.Fatalf("Addr returned %s, which is held", got)
	}
}
