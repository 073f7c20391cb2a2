package grpcnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/orbitkernel/orbit/internal/freeport"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/prod"
)

// testNode is a Transport with a production runtime attached, listening on
// port "p".
type testNode struct {
	tr *Transport
	rt *prod.Runtime
	in *kernel.Mailbox[kernel.Envelope]
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// fastOptions dial and back off quickly, so that tests of outages are short.
func fastOptions(self kernel.NodeID, listen string) Options {
	return Options{
		Self:        self,
		Listen:      listen,
		ClusterID:   7,
		DialTimeout: time.Second,
		BackoffMin:  10 * time.Millisecond,
		BackoffMax:  100 * time.Millisecond,
		Logger:      quietLogger,
	}
}

func startNode(t testing.TB, opts Options) *testNode {
	t.Helper()
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	rt := prod.New(prod.Options{NodeID: opts.Self, Net: tr, Logger: quietLogger})
	return &testNode{tr: tr, rt: rt, in: rt.Net().Listen("p")}
}

func (n *testNode) stop() {
	n.rt.Stop()
	n.tr.Close()
}

func (n *testNode) send(to kernel.NodeID, body []byte) { n.rt.Net().Send(to, "p", body) }

// mesh starts n nodes that know each other.
func mesh(t testing.TB, n int) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = startNode(t, fastOptions(kernel.NodeID(i+1), "127.0.0.1:0"))
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				if err := a.tr.SetPeer(b.tr.Self(), b.tr.Addr()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return nodes
}

// recv returns the next envelope, failing the test after d.
func (n *testNode) recv(t testing.TB, d time.Duration) kernel.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	env, err := n.in.Recv(ctx)
	if err != nil {
		t.Fatalf("node %d: nothing arrived within %v: %v\nstats: %+v", n.tr.Self(), d, err, n.tr.Stats())
	}
	return env
}

func seq(i uint64) []byte { return binary.AppendUvarint(nil, i) }

func unseq(t testing.TB, b []byte) uint64 {
	v, n := binary.Uvarint(b)
	if n != len(b) {
		t.Fatalf("not a sequence number: %x", b)
	}
	return v
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func peerStats(tr *Transport, id kernel.NodeID) PeerStats {
	ps, _ := tr.Stats().Peer(id)
	return ps
}

func TestMeshInOrder(t *testing.T) {
	nodes := mesh(t, 3)
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	const count = 2000 // below the queue and inbox bounds: nothing may drop
	for i := range uint64(count) {
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b {
					a.send(b.tr.Self(), seq(i))
				}
			}
		}
	}
	for _, b := range nodes {
		next := map[kernel.NodeID]uint64{}
		for range 2 * count {
			env := b.recv(t, 5*time.Second)
			if got, want := unseq(t, env.Body), next[env.From]; got != want {
				t.Fatalf("node %d got message %d from node %d, want %d", b.tr.Self(), got, env.From, want)
			}
			next[env.From]++
		}
	}
	for _, n := range nodes {
		s := n.tr.Stats()
		for _, ps := range s.Peers {
			if ps.Sent != count || ps.Received != count || ps.Dropped != 0 || ps.Connects != 1 {
				t.Errorf("node %d, peer %d: %+v", n.tr.Self(), ps.Node, ps)
			}
			if ps.SentBatches >= count {
				t.Errorf("node %d, peer %d: %d messages in %d batches; batching never happened", n.tr.Self(), ps.Node, ps.Sent, ps.SentBatches)
			}
		}
	}
}

func TestSendToSelf(t *testing.T) {
	a := startNode(t, fastOptions(1, "127.0.0.1:0"))
	defer a.stop()
	a.send(1, []byte("me"))
	if env := a.recv(t, time.Second); env.From != 1 || string(env.Body) != "me" {
		t.Fatalf("got %+v", env)
	}
	if s := a.tr.Stats(); s.Local != 1 || len(s.Peers) != 0 {
		t.Fatalf("stats %+v", s)
	}
	a.send(5, []byte("nobody"))
	if s := a.tr.Stats(); s.NoRoute != 1 {
		t.Fatalf("a send to an unknown node: stats %+v", s)
	}
}

// freeAddr returns a loopback address nothing listens on (for now).
func freeAddr(t testing.TB) string {
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestPeerDownThenUp(t *testing.T) {
	addrB := freeAddr(t)
	optsA := fastOptions(1, "127.0.0.1:0")
	optsA.QueueMessages = 100
	optsA.Peers = map[kernel.NodeID]string{2: addrB}
	a := startNode(t, optsA)
	defer a.stop()

	start := time.Now()
	for i := range uint64(10_000) {
		a.send(2, seq(i))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("10,000 sends to a down peer took %v", d)
	}
	eventually(t, 2*time.Second, "dial failures counted", func() bool { return peerStats(a.tr, 2).ConnectFailures >= 2 })
	ps := peerStats(a.tr, 2)
	if ps.Queued != 100 || ps.Dropped != 10_000-100 || ps.Sent != 0 || ps.Connected || ps.LastError == "" {
		t.Fatalf("down peer: %+v", ps)
	}

	b := startNode(t, fastOptions(2, addrB))
	defer b.stop()
	// The queued messages arrive first, in order, then new ones.
	for i := range uint64(100) {
		if got := unseq(t, b.recv(t, 5*time.Second).Body); got != i {
			t.Fatalf("after the peer came up: message %d, want %d", got, i)
		}
	}
	a.send(2, seq(12345))
	if got := unseq(t, b.recv(t, 5*time.Second).Body); got != 12345 {
		t.Fatalf("new message: %d", got)
	}
	if ps := peerStats(a.tr, 2); !ps.Connected || ps.Connects != 1 || ps.Sent != 101 || ps.Queued != 0 {
		t.Fatalf("after reconnecting: %+v", ps)
	}
}

func TestPeerRestartSameAddress(t *testing.T) {
	nodes := mesh(t, 2)
	a, b := nodes[0], nodes[1]
	defer a.stop()
	a.send(2, []byte("first"))
	if env := b.recv(t, 5*time.Second); string(env.Body) != "first" {
		t.Fatalf("got %q", env.Body)
	}
	addrB := b.tr.Addr()
	b.stop()
	eventually(t, 5*time.Second, "a notices that b is gone", func() bool { return !peerStats(a.tr, 2).Connected })

	b = startNode(t, fastOptions(2, addrB))
	defer b.stop()
	// Messages sent while b was away or dialling may be lost with the old
	// stream; keep sending until one arrives.
	got := make(chan struct{})
	go func() {
		defer close(got)
		for i := 0; ; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			env, err := b.in.Recv(ctx)
			cancel()
			if err != nil || string(env.Body) == "again" {
				return
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for done := false; !done; {
		a.send(2, []byte("again"))
		select {
		case <-got:
			done = true
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatalf("nothing arrived at the restarted peer: %+v", peerStats(a.tr, 2))
			}
		}
	}
	if ps := peerStats(a.tr, 2); ps.Connects != 2 || ps.Reconnects != 1 {
		t.Fatalf("after the restart: %+v", ps)
	}
}

func TestWrongClusterRefused(t *testing.T) {
	b := startNode(t, fastOptions(2, "127.0.0.1:0"))
	defer b.stop()
	optsA := fastOptions(1, "127.0.0.1:0")
	optsA.ClusterID = 8
	optsA.Peers = map[kernel.NodeID]string{2: b.tr.Addr()}
	a := startNode(t, optsA)
	defer a.stop()
	a.send(2, []byte("intruder"))
	eventually(t, 5*time.Second, "b refuses a", func() bool { return b.tr.Stats().Refused >= 1 })
	eventually(t, 5*time.Second, "a learns why", func() bool {
		return strings.Contains(peerStats(a.tr, 2).LastError, "cluster 0x8 but node 2")
	})
	ps := peerStats(a.tr, 2)
	if ps.Connects != 0 || ps.Connected || ps.Sent != 0 {
		t.Fatalf("refused peer: %+v", ps)
	}
	if n := b.in.Len(); n != 0 {
		t.Fatalf("a message from another cluster arrived")
	}
	t.Logf("the refusal as a sees it: %s", ps.LastError)
}

func TestWrongNodeRefused(t *testing.T) {
	b := startNode(t, fastOptions(2, "127.0.0.1:0"))
	defer b.stop()
	optsA := fastOptions(1, "127.0.0.1:0")
	optsA.Peers = map[kernel.NodeID]string{3: b.tr.Addr()} // b listens there, not 3
	a := startNode(t, optsA)
	defer a.stop()
	eventually(t, 5*time.Second, "a learns why", func() bool {
		return strings.Contains(peerStats(a.tr, 3).LastError, "node 2 listens there")
	})
}

func TestLargeMessages(t *testing.T) {
	nodes := mesh(t, 2)
	a, b := nodes[0], nodes[1]
	defer a.stop()
	defer b.stop()
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	a.send(2, []byte("small"))
	a.send(2, big)
	a.send(2, make([]byte, DefaultMaxMessageBytes)) // too large with its port
	a.send(2, []byte("after"))
	for _, want := range [][]byte{[]byte("small"), big, []byte("after")} {
		if env := b.recv(t, 10*time.Second); !bytes.Equal(env.Body, want) {
			t.Fatalf("got %d bytes, want %d", len(env.Body), len(want))
		}
	}
	if ps := peerStats(a.tr, 2); ps.Oversized != 1 || ps.Connects != 1 || ps.Sent != 3 {
		t.Fatalf("stats %+v", ps)
	}
}

func TestSetPeerMovesStream(t *testing.T) {
	b := startNode(t, fastOptions(2, "127.0.0.1:0"))
	defer b.stop()
	optsA := fastOptions(1, "127.0.0.1:0")
	optsA.Peers = map[kernel.NodeID]string{2: freeAddr(t)}
	a := startNode(t, optsA)
	defer a.stop()
	a.send(2, []byte("hi"))
	if err := a.tr.SetPeer(2, b.tr.Addr()); err != nil {
		t.Fatal(err)
	}
	if env := b.recv(t, 5*time.Second); string(env.Body) != "hi" {
		t.Fatalf("got %q", env.Body)
	}
	a.tr.RemovePeer(2)
	a.send(2, []byte("gone"))
	if s := a.tr.Stats(); s.NoRoute != 1 {
		t.Fatalf("after RemovePeer: %+v", s)
	}
	if err := a.tr.SetPeer(1, b.tr.Addr()); err == nil {
		t.Errorf("SetPeer accepted this node as its own peer")
	}
}

// TestStaleBacklogDropped: what waited for an unreachable peer longer than
// MaxQueueAge is dropped and counted when the peer comes back, and what is
// fresh is delivered (issue 11: a replayed backlog of heartbeat replies made
// a leader resend its log tail once per reply).
func TestStaleBacklogDropped(t *testing.T) {
	b := startNode(t, fastOptions(2, "127.0.0.1:0"))
	defer b.stop()
	optsA := fastOptions(1, "127.0.0.1:0")
	optsA.Peers = map[kernel.NodeID]string{2: freeAddr(t)} // nobody there yet
	optsA.MaxQueueAge = 200 * time.Millisecond
	a := startNode(t, optsA)
	defer a.stop()
	for range 100 {
		a.send(2, []byte("old"))
	}
	time.Sleep(400 * time.Millisecond)
	a.send(2, []byte("fresh"))
	if err := a.tr.SetPeer(2, b.tr.Addr()); err != nil {
		t.Fatal(err)
	}
	if env := b.recv(t, 5*time.Second); string(env.Body) != "fresh" {
		t.Fatalf("got %q first, want the fresh message", env.Body)
	}
	if ps := peerStats(a.tr, 2); ps.Stale != 100 {
		t.Fatalf("stale %d, want 100: %+v", ps.Stale, ps)
	}
}

func TestOptionsValidate(t *testing.T) {
	_, err := New(Options{Listen: "nowhere", QueueBytes: 1, Peers: map[kernel.NodeID]string{0: "x:1"}})
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"Self is required", "Listen", "node 0", "QueueBytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestCloseEndsGoroutines runs traffic, a down peer and a refused stream,
// closes everything, and requires the goroutine count to come back down.
func TestCloseEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	nodes := mesh(t, 3)
	if err := nodes[0].tr.SetPeer(9, freeAddr(t)); err != nil {
		t.Fatal(err)
	}
	for i := range uint64(100) {
		for _, a := range nodes {
			a.send(1, seq(i))
			a.send(2, seq(i))
			a.send(3, seq(i))
			a.send(9, seq(i))
		}
	}
	eventually(t, 5*time.Second, "traffic flows", func() bool { return peerStats(nodes[2].tr, 1).Sent == 100 })
	for _, n := range nodes {
		n.stop()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSilentPeerTimesOut dials something that accepts TCP connections but
// never speaks: the dial timeout must fail each attempt, and Close must not
// hang on it.
func TestSilentPeerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	opts := fastOptions(1, "127.0.0.1:0")
	opts.DialTimeout = 100 * time.Millisecond
	opts.Peers = map[kernel.NodeID]string{2: l.Addr().String()}
	a := startNode(t, opts)
	a.send(2, []byte("into the void"))
	eventually(t, 5*time.Second, "two dial timeouts", func() bool { return peerStats(a.tr, 2).ConnectFailures >= 2 })
	if ps := peerStats(a.tr, 2); ps.Connected || ps.Queued != 1 || ps.Sent != 0 {
		t.Fatalf("silent peer: %+v", ps)
	}
	t.Logf("last error: %s", peerStats(a.tr, 2).LastError)
	closed := make(chan struct{})
	go func() {
		a.stop()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close hung on a silent peer")
	}
}

// TestProtocolErrors speaks to a Transport with a hand-driven stream: a
// hello of an unknown version is refused as Unimplemented, and a malformed
// batch ends an accepted stream as InvalidArgument.
func TestProtocolErrors(t *testing.T) {
	b := startNode(t, fastOptions(2, "127.0.0.1:0"))
	defer b.stop()
	cc, err := grpc.NewClient("passthrough:///"+b.tr.Addr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	open := func(first []byte) grpc.ClientStream {
		s, err := cc.NewStream(ctx, &serviceDesc.Streams[0], fullMethod)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SendMsg(&frame{b: first}); err != nil {
			t.Fatal(err)
		}
		return s
	}

	h := encodeHello(hello{cluster: 7, from: 1, to: 2})
	h[0] = frameVersion + 1
	var f frame
	if err := open(h).RecvMsg(&f); status.Code(err) != codes.Unimplemented {
		t.Errorf("hello of version %d: %v, want Unimplemented", h[0], err)
	}

	s := open(encodeHello(hello{cluster: 7, from: 1, to: 2}))
	if err := s.RecvMsg(&f); err != nil || decodeWelcome(f.b) != nil {
		t.Fatalf("welcome: %x, %v", f.b, err)
	}
	if err := s.SendMsg(&frame{b: []byte{frameVersion, kindBatch, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(&f); status.Code(err) != codes.InvalidArgument {
		t.Errorf("after a malformed batch: %v, want InvalidArgument", err)
	}
	if st := b.tr.Stats(); st.Refused != 1 || st.Malformed != 1 {
		t.Errorf("stats %+v", st)
	}
}
