package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// quiet is how long a test watches a cut link for a delivery that must not
// happen.
const quiet = 200 * time.Millisecond

func TestHealthyLinkPassesBytesUnchanged(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t)
	addr := mustLink(t, p, 1, 2, e.addr())
	c := dial(t, addr)

	msg := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	go func() { _, _ = c.Write(msg) }()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the echo differs from what was sent")
	}
	eventually(t, 2*time.Second, "every byte counted", func() bool {
		return linkStats(t, p, 1, 2).BytesForwarded == uint64(2*len(msg))
	})

	// A half-close passes through: the echo server sees the end, closes,
	// and the client reads EOF; the proxy then forgets the connection.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after half-close: read %d, %v; want 0, EOF", n, err)
	}
	eventually(t, 2*time.Second, "the connection closed", func() bool { return linkStats(t, p, 1, 2).Open == 0 })
	s := linkStats(t, p, 1, 2)
	if s.Addr != addr || s.Target != e.addr() || s.Conns != 1 || s.Resets != 0 || s.Cut || s.Delay != 0 || s.Loss != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestCutHoldsAndHealDelivers cuts a link under a continuous stream and
// checks the invariant: from the return of Cut until Heal nothing more is
// forwarded, and the receiver gets nothing beyond what was forwarded
// before. After the heal everything arrives, in order.
func TestCutHoldsAndHealDelivers(t *testing.T) {
	k := startSink(t)
	p := newProxy(t)
	c := dial(t, mustLink(t, p, 1, 2, k.addr()))
	w := startStreamer(c)
	eventually(t, 5*time.Second, "100 KB through", func() bool { return k.total() > 100<<10 })

	p.Cut(1, 2)
	forwarded := linkStats(t, p, 1, 2).BytesForwarded
	for end := time.Now().Add(quiet); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if s := linkStats(t, p, 1, 2); s.BytesForwarded != forwarded || !s.Cut {
			t.Fatalf("while cut: forwarded %d, was %d at the cut (cut=%v)", s.BytesForwarded, forwarded, s.Cut)
		}
		if got := k.total(); got > int(forwarded) {
			t.Fatalf("while cut: the sink has %d bytes, only %d were forwarded before the cut", got, forwarded)
		}
	}
	// The sender kept writing into the kernel's buffers: there is
	// something held for the heal to deliver.
	if held := w.written.Load() - int64(forwarded); held <= 0 {
		t.Fatalf("nothing held during the cut (written %d, forwarded %d)", w.written.Load(), forwarded)
	}

	p.Heal(1, 2)
	w.finish(t, 5*time.Second)
	written := int(w.written.Load())
	eventually(t, 5*time.Second, "everything delivered", func() bool { return k.total() == written })
	if err := checkPattern(k.conn(0), 0); err != nil {
		t.Fatal(err)
	}
	if s := linkStats(t, p, 1, 2); s.Resets != 0 || s.Conns != 1 || s.Cut {
		t.Fatalf("stats %+v", s)
	}
}

// TestCutFlapping cuts and heals a link ten times under a stream in both
// directions (through an echo server), checking the invariant at every
// cut and the stream's integrity at the end.
func TestCutFlapping(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t)
	c := dial(t, mustLink(t, p, 1, 2, e.addr()))
	var echoed atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 32<<10)
		off := 0
		for {
			n, err := c.Read(buf)
			if cerr := checkPattern(buf[:n], off); cerr != nil {
				readErr <- cerr
				return
			}
			off += n
			echoed.Add(int64(n))
			if err == io.EOF {
				readErr <- nil
				return
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	w := startStreamer(c)
	for range 10 {
		eventually(t, 5*time.Second, "progress", func() bool { return echoed.Load() > 0 })
		p.Cut(1, 2)
		forwarded := linkStats(t, p, 1, 2).BytesForwarded
		for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
			// Both directions count: what the echo server read plus what
			// the client read back.
			arrived := uint64(e.received.Load() + echoed.Load())
			if s := linkStats(t, p, 1, 2); s.BytesForwarded != forwarded || arrived > forwarded {
				t.Fatalf("while cut: forwarded %d, arrived %d; %d forwarded at the cut", s.BytesForwarded, arrived, forwarded)
			}
		}
		p.Heal(1, 2)
		time.Sleep(10 * time.Millisecond)
	}
	w.finish(t, 5*time.Second)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the echo never ended")
	}
	if got, want := echoed.Load(), w.written.Load(); got != want {
		t.Fatalf("echoed %d bytes, wrote %d", got, want)
	}
}

func TestConnectionOpenedDuringCutWaitsForHeal(t *testing.T) {
	k := startSink(t)
	p := newProxy(t)
	addr := mustLink(t, p, 1, 2, k.addr())
	p.Cut(1, 2)

	c := dial(t, addr) // the proxy's listener accepts at once
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(quiet)
	if n := k.accepted.Load(); n != 0 {
		t.Fatalf("the target accepted %d connections during the cut", n)
	}
	if s := linkStats(t, p, 1, 2); s.Conns != 1 || s.Open != 1 || s.BytesForwarded != 0 {
		t.Fatalf("stats during the cut %+v", s)
	}

	p.Heal(1, 2)
	eventually(t, 5*time.Second, "hello delivered", func() bool { return string(k.conn(0)) == "hello" })
	if n := k.accepted.Load(); n != 1 {
		t.Fatalf("the target accepted %d connections, want 1", n)
	}
}

func TestRoundTripDuringCutCompletesAfterHeal(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t)
	addr := mustLink(t, p, 1, 2, e.addr())
	held := dial(t, addr) // connected before the cut
	if err := roundTrip(held, []byte("before"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Cut(1, 2)
	late := dial(t, addr) // connected during the cut

	for _, c := range []net.Conn{held, late} {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(quiet))
		if n, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read during the cut: %d bytes, %v; want a timeout", n, err)
		}
	}
	p.Heal(1, 2)
	for _, c := range []net.Conn{held, late} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, 4)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
			t.Fatalf("after the heal: %q, %v", got, err)
		}
	}
}

func TestCutBeforeLinkApplies(t *testing.T) {
	k := startSink(t)
	p := newProxy(t)
	p.Cut(1, 2)
	c := dial(t, mustLink(t, p, 1, 2, k.addr()))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(quiet / 2)
	if k.accepted.Load() != 0 || !linkStats(t, p, 1, 2).Cut {
		t.Fatal("a cut named before Link was not in force")
	}
	p.HealAll()
	eventually(t, 5*time.Second, "delivered after HealAll", func() bool { return string(k.conn(0)) == "x" })
}

// TestDelayHoldsEachChunkAndKeepsOrder sends one-byte messages a few
// milliseconds apart under a jitter as large as the gaps between them, so
// that independent draws would reorder them.
func TestDelayHoldsEachChunkAndKeepsOrder(t *testing.T) {
	const (
		mean   = 60 * time.Millisecond
		jitter = 40 * time.Millisecond
		n      = 30
	)
	k := startSink(t)
	p := newProxy(t)
	c := dial(t, mustLink(t, p, 1, 2, k.addr()))
	p.Delay(1, 2, mean, jitter)
	if s := linkStats(t, p, 1, 2); s.Delay != mean || s.Jitter != jitter {
		t.Fatalf("stats %+v", s)
	}

	sent := make([]time.Time, n)
	for i := range n {
		sent[i] = time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	eventually(t, 5*time.Second, "every message delivered", func() bool { return k.total() == n })
	got := k.conn(0)
	for i := range n {
		if got[i] != byte(i) {
			t.Fatalf("delivered %v: out of order", got)
		}
	}
	i := 0
	for _, a := range k.arrivalsOf(0) {
		for range a.data {
			if waited := a.at.Sub(sent[i]); waited < mean-jitter {
				t.Errorf("message %d waited %v, want at least %v", i, waited, mean-jitter)
			}
			i++
		}
	}
}

func TestDelayAppliesBothWaysAndHealReleases(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t)
	c := dial(t, mustLink(t, p, 1, 2, e.addr()))
	p.Delay(1, 2, 50*time.Millisecond, 0)
	start := time.Now()
	if err := roundTrip(c, []byte("slow"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 100*time.Millisecond {
		t.Fatalf("round trip took %v; want at least two delays of 50ms", rtt)
	}

	// A chunk queued under a long delay is released by the heal.
	p.Delay(1, 2, time.Hour, 0)
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the chunk queued", func() bool { return linkStats(t, p, 1, 2).BytesForwarded == 8 })
	time.Sleep(20 * time.Millisecond)
	if e.received.Load() != 4 {
		t.Fatal("a chunk under an hour's delay was delivered")
	}
	p.Heal(1, 2)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "held" {
		t.Fatalf("after the heal: %q, %v", got, err)
	}
}

func TestLossOneResetsAndLossZeroNever(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t)
	addr := mustLink(t, p, 1, 2, e.addr())

	p.Loss(1, 2, 1)
	for i := range 3 {
		c := dial(t, addr)
		err := roundTrip(c, []byte("lost"), 5*time.Second)
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d under loss 1: %v; want EOF or a reset", i, err)
		}
	}
	if s := linkStats(t, p, 1, 2); s.Resets != 3 || s.Loss != 1 || s.BytesForwarded != 0 {
		t.Fatalf("stats under loss 1: %+v", s)
	}
	if e.received.Load() != 0 {
		t.Fatal("a lost chunk reached the target")
	}

	p.Loss(1, 2, 0)
	c := dial(t, addr)
	for i := range 200 {
		if err := roundTrip(c, []byte{byte(i)}, 5*time.Second); err != nil {
			t.Fatalf("round trip %d under loss 0: %v", i, err)
		}
	}
	if s := linkStats(t, p, 1, 2); s.Resets != 3 {
		t.Fatalf("resets under loss 0: %+v", s)
	}
}

func TestLossHalfResetsSome(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t)
	addr := mustLink(t, p, 1, 2, e.addr())
	p.Loss(1, 2, 0.5)
	failed := 0
	for range 40 {
		c := dial(t, addr)
		if err := roundTrip(c, []byte("?"), 5*time.Second); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			failed++
		}
		_ = c.Close()
	}
	// Each round trip survives two draws: a quarter of them, in
	// expectation. Both bounds fail with probability below 1e-5.
	if failed == 0 || failed == 40 {
		t.Fatalf("%d of 40 round trips failed under loss 0.5", failed)
	}
	eventually(t, 2*time.Second, "every reset counted", func() bool {
		return linkStats(t, p, 1, 2).Resets == uint64(failed)
	})
}

func TestResetClosesCurrentConnectionsOnly(t *testing.T) {
	e := startEcho(t)
	p := newProxy(t)
	addr := mustLink(t, p, 1, 2, e.addr())
	old := dial(t, addr)
	if err := roundTrip(old, []byte("a"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Reset(1, 2)
	_ = old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := old.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on a reset connection: %v; want ECONNRESET", err)
	}
	fresh := dial(t, addr)
	if err := roundTrip(fresh, []byte("b"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := linkStats(t, p, 1, 2); s.Resets != 1 || s.Conns != 2 || s.Open != 1 {
		t.Fatalf("stats %+v", s)
	}

	// A connection held by a cut is reset too.
	p.Cut(1, 2)
	held := dial(t, addr)
	eventually(t, 2*time.Second, "the connection held", func() bool { return linkStats(t, p, 1, 2).Open == 2 })
	p.Reset(1, 2)
	_ = held.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := held.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on a reset held connection: %v; want ECONNRESET", err)
	}
	if s := linkStats(t, p, 1, 2); s.Resets != 3 || s.Open != 0 || !s.Cut {
		t.Fatalf("stats %+v", s)
	}
}

func TestLinksAreIndependent(t *testing.T) {
	node := map[int]*echo{1: startEcho(t), 2: startEcho(t), 3: startEcho(t)}
	p := newProxy(t)
	links := [][2]int{{1, 2}, {2, 1}, {1, 3}}
	conns := map[[2]int]net.Conn{}
	for _, l := range links {
		conns[l] = dial(t, mustLink(t, p, l[0], l[1], node[l[1]].addr()))
		if err := roundTrip(conns[l], []byte("up"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	p.Cut(1, 2)
	if err := roundTrip(conns[[2]int{1, 2}], []byte("cut"), quiet); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("round trip on the cut link: %v; want a timeout", err)
	}
	for _, l := range links[1:] {
		if err := roundTrip(conns[l], []byte("still"), 5*time.Second); err != nil {
			t.Fatalf("link %v after cutting 1->2: %v", l, err)
		}
		if err := roundTrip(dial(t, linkStats(t, p, l[0], l[1]).Addr), []byte("new"), 5*time.Second); err != nil {
			t.Fatalf("new connection on link %v after cutting 1->2: %v", l, err)
		}
	}
	for _, s := range p.Stats() {
		if s.Cut != (s.From == 1 && s.To == 2) {
			t.Fatalf("stats %+v", s)
		}
	}

	p.Heal(1, 2)
	c := conns[[2]int{1, 2}]
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 3)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "cut" {
		t.Fatalf("after the heal: %q, %v", got, err)
	}
}

func TestLinkAgainKeepsAddrAndRetargets(t *testing.T) {
	a, b := startSink(t), startSink(t)
	p := newProxy(t)
	addr := mustLink(t, p, 1, 2, a.addr())
	old := dial(t, addr)
	eventually(t, 2*time.Second, "dialed a", func() bool { return a.accepted.Load() == 1 })
	if again := mustLink(t, p, 1, 2, b.addr()); again != addr {
		t.Fatalf("Link again gave %s, first %s", again, addr)
	}
	fresh := dial(t, addr)
	for _, w := range []struct {
		c    net.Conn
		msg  string
		sink *sink
	}{{old, "old", a}, {fresh, "new", b}} {
		if _, err := w.c.Write([]byte(w.msg)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, w.msg+" delivered", func() bool { return string(w.sink.conn(0)) == w.msg })
	}
	if s := linkStats(t, p, 1, 2); s.Target != b.addr() || s.Conns != 2 {
		t.Fatalf("stats %+v", s)
	}
	if _, err := p.Link(3, 4, ""); err == nil {
		t.Fatal("Link with an empty target succeeded")
	}
}

func TestStatsOrderAndFaults(t *testing.T) {
	p := newProxy(t)
	for _, l := range [][2]int{{3, 1}, {1, 3}, {2, 1}, {1, 2}} {
		mustLink(t, p, l[0], l[1], "127.0.0.1:1")
	}
	p.Loss(2, 1, 0.25)
	p.Delay(3, 1, time.Second, time.Millisecond)
	var order [][2]int
	for _, s := range p.Stats() {
		order = append(order, [2]int{s.From, s.To})
	}
	want := [][2]int{{1, 2}, {1, 3}, {2, 1}, {3, 1}}
	if len(order) != len(want) {
		t.Fatalf("stats order %v", order)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("stats order %v, want %v", order, want)
		}
	}
	if s := linkStats(t, p, 2, 1); s.Loss != 0.25 {
		t.Fatalf("stats %+v", s)
	}
	p.HealAll()
	for _, s := range p.Stats() {
		if s.Cut || s.Loss != 0 || s.Delay != 0 || s.Jitter != 0 {
			t.Fatalf("after HealAll: %+v", s)
		}
	}
}

func TestBadFaultArgumentsPanic(t *testing.T) {
	p := newProxy(t)
	for name, f := range map[string]func(){
		"negative delay":  func() { p.Delay(1, 2, -time.Second, 0) },
		"negative jitter": func() { p.Delay(1, 2, 0, -time.Second) },
		"loss above one":  func() { p.Loss(1, 2, 1.5) },
		"negative loss":   func() { p.Loss(1, 2, -0.1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// TestCloseIsPromptAndLeaksNothing closes the proxy while one link is cut
// with bytes stalled and a connection held, one delays a queued chunk by an
// hour, and one is blocked writing to a target that never reads.
func TestCloseIsPromptAndLeaksNothing(t *testing.T) {
	baseline := runtime.NumGoroutine()
	func() {
		e := startEcho(t)
		quit := make(chan struct{})
		stuck := startServer(t, func(int, net.Conn) { <-quit })
		defer stuck.close()
		defer close(quit)
		defer e.close()
		p := New(1, nil)

		cutAddr := mustLink(t, p, 1, 2, e.addr())
		stalled := dial(t, cutAddr)
		if err := roundTrip(stalled, []byte("up"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		p.Cut(1, 2)
		if _, err := stalled.Write(make([]byte, 1<<10)); err != nil {
			t.Fatal(err)
		}
		held := dial(t, cutAddr)

		delayed := dial(t, mustLink(t, p, 1, 3, e.addr()))
		p.Delay(1, 3, time.Hour, 0)
		if _, err := delayed.Write([]byte("later")); err != nil {
			t.Fatal(err)
		}

		blocked := dial(t, mustLink(t, p, 2, 1, stuck.addr()))
		w := startStreamer(blocked)
		eventually(t, 5*time.Second, "the writer to the stuck target blocked", func() bool {
			before := linkStats(t, p, 2, 1).BytesForwarded
			time.Sleep(20 * time.Millisecond)
			return before > 0 && linkStats(t, p, 2, 1).BytesForwarded == before
		})
		eventually(t, 2*time.Second, "everything queued", func() bool {
			return linkStats(t, p, 1, 2).Open == 2 && linkStats(t, p, 1, 3).BytesForwarded == 0
		})

		start := time.Now()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("Close took %v", took)
		}
		if n := p.live.Load(); n != 0 {
			t.Fatalf("%d proxy goroutines still running after Close", n)
		}
		for _, c := range []net.Conn{stalled, held, delayed} {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read after Close: %v; want EOF or a reset", err)
			}
		}
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			t.Fatal("the streamer is still blocked after Close")
		}
		for _, c := range []net.Conn{stalled, held, delayed, blocked} {
			_ = c.Close()
		}

		if err := p.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := p.Link(5, 6, e.addr()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Link after Close: %v; want ErrClosed", err)
		}
		p.Cut(1, 2) // faults after Close are harmless
		p.HealAll()
	}()
	eventually(t, 5*time.Second, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}

// BenchmarkThroughput streams through a healthy link to an echo server and
// back, reporting bytes per second one way.
func BenchmarkThroughput(b *testing.B) {
	e := startEcho(b)
	p := newProxy(b)
	c := dial(b, mustLink(b, p, 1, 2, e.addr()))
	buf := make([]byte, 64<<10)
	go func() {
		for range b.N {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	got := make([]byte, len(buf))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
}
