package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server is a loopback TCP server that runs handle on each connection and,
// at cleanup, closes every connection and waits for its goroutines.
type server struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	// accepted counts connections accepted.
	accepted atomic.Int64
}

func startServer(t testing.TB, handle func(i int, c net.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			i := len(s.conns)
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.accepted.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				handle(i, c)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

func (s *server) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// echo is a server that writes back whatever it reads, and closes the
// connection when the client has finished sending.
type echo struct {
	*server
	// received counts bytes read from every connection.
	received atomic.Int64
}

func startEcho(t testing.TB) *echo {
	e := &echo{}
	e.server = startServer(t, func(_ int, c net.Conn) {
		defer c.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				e.received.Add(int64(n))
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	return e
}

// sink is a server that records what each connection sent and when.
type sink struct {
	*server
	mu       sync.Mutex
	got      map[int][]byte
	arrivals map[int][]arrival
}

type arrival struct {
	at   time.Time
	data []byte
}

func startSink(t testing.TB) *sink {
	k := &sink{got: make(map[int][]byte), arrivals: make(map[int][]arrival)}
	k.server = startServer(t, func(i int, c net.Conn) {
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				now := time.Now()
				k.mu.Lock()
				k.got[i] = append(k.got[i], buf[:n]...)
				k.arrivals[i] = append(k.arrivals[i], arrival{now, bytes.Clone(buf[:n])})
				k.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	})
	return k
}

// total is the number of bytes received on every connection.
func (k *sink) total() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, b := range k.got {
		n += len(b)
	}
	return n
}

// conn returns a copy of what connection i (in accept order) sent.
func (k *sink) conn(i int) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return bytes.Clone(k.got[i])
}

func (k *sink) arrivalsOf(i int) []arrival {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]arrival(nil), k.arrivals[i]...)
}

// newProxy returns a Proxy closed at cleanup, logging to the test.
func newProxy(t testing.TB) *Proxy {
	p := New(1, nil)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func mustLink(t testing.TB, p *Proxy, from, to int, target string) string {
	t.Helper()
	addr, err := p.Link(from, to, target)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads its echo within timeout.
func roundTrip(c net.Conn, msg []byte, timeout time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still not %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// linkStats returns the stats of link from→to.
func linkStats(t testing.TB, p *Proxy, from, to int) LinkStats {
	t.Helper()
	for _, s := range p.Stats() {
		if s.From == from && s.To == to {
			return s
		}
	}
	t.Fatalf("no stats for link %d->%d", from, to)
	return LinkStats{}
}

// pattern is the byte at offset i of every test stream, so that a stream
// can be checked for loss, duplication and reordering by position alone.
func pattern(i int) byte { return byte(i % 251) }

func fillPattern(b []byte, off int) {
	for i := range b {
		b[i] = pattern(off + i)
	}
}

// checkPattern reports the first offset where b is not the pattern.
func checkPattern(b []byte, off int) error {
	for i, x := range b {
		if x != pattern(off+i) {
			return fmt.Errorf("byte %d is %d, want %d", off+i, x, pattern(off+i))
		}
	}
	return nil
}

// streamer writes the pattern to c until stopped, counting what it wrote.
type streamer struct {
	written atomic.Int64
	stop    chan struct{}
	done    chan error
}

func startStreamer(c net.Conn) *streamer {
	s := &streamer{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		off := 0
		for {
			select {
			case <-s.stop:
				s.done <- nil
				return
			default:
			}
			fillPattern(buf, off)
			n, err := c.Write(buf)
			off += n
			s.written.Add(int64(n))
			if err != nil {
				s.done <- err
				return
			}
		}
	}()
	return s
}

// finish stops the streamer and returns its error, waiting at most
// timeout.
func (s *streamer) finish(t testing.TB, timeout time.Duration) {
	t.Helper()
	close(s.stop)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("streamer: %v", err)
		}
	case <-time.After(timeout):
		t.Fatalf("streamer still blocked after %v", timeout)
	}
}
