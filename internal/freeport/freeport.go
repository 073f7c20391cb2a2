// Package freeport hands out loopback addresses for tests and the Jepsen
// harness to give the servers they start.
//
// Asking the kernel for port 0, closing the listener and handing the number
// on is racy in two ways, and CI met both: the kernel can give the same
// number to the next request of the same process (two nodes of one test were
// told to listen on one port), and the number lies in the ephemeral range, so
// any outgoing connection may take it as its source port before the server
// binds it. Here ports come from below the ephemeral range
// (net.ipv4.ip_local_port_range starts at 32768 by default), one after
// another from a start that differs between processes, never twice in one
// process, and only after a bind shows the port free.
package freeport

import (
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
)

const (
	low  = 15000 // the first port handed out
	high = 32000 // one past the last; below the ephemeral range
)

var (
	mu   sync.Mutex
	next = low + (os.Getpid()*211)%(high-low) // processes start apart
	used = map[int]bool{}
)

// ErrExhausted is returned when every port of the range is in use or was
// already handed out by this process.
var ErrExhausted = errors.New("freeport: no free loopback port left below the ephemeral range")

// Addr returns "127.0.0.1:port" for a port that was free a moment ago and
// that this process has not handed out before.
func Addr() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	for range high - low {
		port := next
		next++
		if next == high {
			next = low
		}
		if used[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken by someone else; try the next
		}
		_ = ln.Close()
		used[port] = true
		return addr, nil
	}
	return "", ErrExhausted
}
