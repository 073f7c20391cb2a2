package respwire_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/adapters/respwire"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/prod"
)

// listen serves RESP on a free loopback port with a session layer whose
// ranges have no replicas running: connection commands, pub/sub and
// CLIENT work; a data command fails after CommandTimeout (TRYAGAIN or
// "outcome unknown"), which still takes it through the whole wire.
func listen(t *testing.T) (l *respwire.Listener, shutdown func()) {
	t.Helper()
	rt := prod.New(prod.Options{NodeID: 1})
	layout, err := consensus.NewLayout(nil, []kernel.NodeID{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := session.New(session.Options{Runtime: rt, Layout: layout, Clients: 8,
		CommandTimeout: 20 * time.Millisecond, ExpirePeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	l, err = respwire.Listen(respwire.Options{Addr: "127.0.0.1:0", Session: sess, Runtime: rt,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { l.Serve(); close(served) }()
	var once sync.Once
	shutdown = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			l.Shutdown(ctx)
			<-served
			rt.Stop()
		})
	}
	t.Cleanup(shutdown)
	return l, shutdown
}

// client is a raw RESP connection that reads RESP2 and RESP3 values.
type client struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, l *respwire.Listener) *client {
	t.Helper()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// send writes commands as one pipeline.
func (c *client) send(cmds ...[]string) {
	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := c.nc.Write([]byte(b.String())); err != nil {
		c.t.Error(err)
	}
}

// read reads one value and returns it flattened: its type byte, then its
// elements' texts separated by spaces ("+PONG", ">message ch m1",
// "$hello", "*a b"). It returns "" when the connection fails or ends.
func (c *client) read() string {
	line, err := c.r.ReadString('\n')
	if err != nil {
		if !errors.Is(err, io.EOF) {
			c.t.Errorf("read: %v", err)
		}
		return ""
	}
	line = strings.TrimSuffix(line, "\r\n")
	kind, rest := line[0], line[1:]
	switch kind {
	case '+', '-', ':', '_', '#', ',', '(':
		return line
	case '$', '=', '!':
		n, _ := strconv.Atoi(rest)
		if n < 0 {
			return string(kind) + "nil"
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Errorf("read: %v", err)
		}
		return string(kind) + string(buf[:n])
	case '*', '>', '~', '%', '|':
		n, _ := strconv.Atoi(rest)
		if kind == '%' || kind == '|' {
			n *= 2
		}
		parts := []string{string(kind)}
		for range n {
			e := c.read()
			if e == "" {
				return ""
			}
			parts = append(parts, e[1:])
		}
		return parts[0] + strings.Join(parts[1:], " ")
	}
	c.t.Errorf("read: unexpected %q", line)
	return ""
}

// TestPushesInterleaveWithReplies publishes to a RESP3 subscriber from
// other connections while it runs commands of its own and others list the
// clients: every push and every reply arrives whole, in the subscriber's
// protocol, replies in order. Under -race it checks the wire's sharing
// between a connection's reader, its writer and the tasks that push to it.
func TestPushesInterleaveWithReplies(t *testing.T) {
	l, _ := listen(t)
	sub := dial(t, l)
	sub.send([]string{"HELLO", "3"}, []string{"SUBSCRIBE", "ch"})
	if r := sub.read(); !strings.HasPrefix(r, "%server redis") {
		t.Fatalf("HELLO 3: %q", r)
	}
	if r := sub.read(); r != ">subscribe ch 1" {
		t.Fatalf("SUBSCRIBE: %q", r)
	}
	const publishers, messages, pings = 2, 100, 100
	var wg sync.WaitGroup
	for p := range publishers {
		pub := dial(t, l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range messages {
				pub.send([]string{"PUBLISH", "ch", fmt.Sprintf("p%d-%d", p, i)})
				if r := pub.read(); r != ":1" {
					t.Errorf("PUBLISH: %q", r)
					return
				}
			}
		}()
	}
	watcher := dial(t, l)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			watcher.send([]string{"CLIENT", "LIST"})
			if r := watcher.read(); !strings.Contains(r, "sub=1") {
				t.Errorf("CLIENT LIST shows no subscriber: %q", r)
				return
			}
		}
	}()
	for i := range pings {
		sub.send([]string{"PING", strconv.Itoa(i)})
	}
	got, pongs := map[string]bool{}, 0
	for len(got) < publishers*messages || pongs < pings {
		r := sub.read()
		switch {
		case r == "":
			t.Fatalf("after %d pushes and %d replies: the connection failed", len(got), pongs)
		case strings.HasPrefix(r, ">message ch "):
			got[strings.TrimPrefix(r, ">message ch ")] = true
		case r == "$"+strconv.Itoa(pongs):
			pongs++
		default:
			t.Fatalf("after %d pushes and %d replies: unexpected %q", len(got), pongs, r)
		}
	}
	wg.Wait()
}

// TestPipelineRunsConcurrently sends pipelines of keyed commands on
// distinct keys (run concurrently by the wire, each failing here after
// CommandTimeout) mixed with connection commands, from several
// connections at once, while another lists the clients; then shuts down
// while a pipeline runs, whose replies must still arrive before the
// connection closes.
func TestPipelineRunsConcurrently(t *testing.T) {
	l, shutdown := listen(t)
	const conns, rounds, keys = 3, 3, 8
	var wg sync.WaitGroup
	for i := range conns {
		c := dial(t, l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var cmds [][]string
				for k := range keys {
					cmds = append(cmds, []string{"GET", fmt.Sprintf("k%d-%d", i, k)})
				}
				cmds = append(cmds, []string{"CLIENT", "SETNAME", fmt.Sprintf("c%d-%d", i, r)}, []string{"ECHO", "done"})
				c.send(cmds...)
				for range keys {
					if r := c.read(); !strings.HasPrefix(r, "-") {
						t.Errorf("GET with no range running: %q", r)
					}
				}
				if r := c.read(); r != "+OK" {
					t.Errorf("CLIENT SETNAME: %q", r)
				}
				if r := c.read(); r != "$done" {
					t.Errorf("ECHO: %q", r)
				}
			}
		}()
	}
	watcher := dial(t, l)
	for range 20 {
		watcher.send([]string{"CLIENT", "LIST"})
		if r := watcher.read(); !strings.Contains(r, "id=") {
			t.Errorf("CLIENT LIST: %q", r)
		}
	}
	wg.Wait()

	last := dial(t, l)
	last.send([]string{"CLIENT", "SETNAME", "last"})
	if r := last.read(); r != "+OK" {
		t.Fatalf("CLIENT SETNAME: %q", r)
	}
	var cmds [][]string
	for k := range keys {
		cmds = append(cmds, []string{"GET", fmt.Sprintf("last-%d", k)})
	}
	last.send(cmds...)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		watcher.send([]string{"CLIENT", "LIST"})
		if r := watcher.read(); strings.Contains(r, "name=last ") && strings.Contains(r, "cmd=get ") {
			break // the pipeline runs
		}
		if time.Now().After(deadline) {
			t.Fatal("the last pipeline never ran")
		}
	}
	shutdown()
	// Every command read before the shutdown is answered (all of them,
	// unless the pipeline reached the server in more than one read), then
	// the connection closes.
	n := 0
	for r := last.read(); r != ""; r = last.read() {
		if !strings.HasPrefix(r, "-") || n == keys {
			t.Fatalf("reply %d to a pipeline running at shutdown: %q", n, r)
		}
		n++
	}
	if n == 0 {
		t.Fatal("a pipeline running at shutdown got no reply")
	}
}
