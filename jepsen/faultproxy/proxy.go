package faultproxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Link after Close.
var ErrClosed = errors.New("faultproxy: closed")

// Limits.
const (
	// chunkBytes is the most one read takes off a socket; a chunk is the
	// unit that Delay holds and Loss draws for.
	chunkBytes = 32 << 10
	// queueBytesMax bounds the bytes read but not yet written, per
	// direction of a connection; a reader waits for room. With a delay d it
	// caps a connection's throughput at queueBytesMax/d.
	queueBytesMax = 4 << 20
	// heldConnsMax bounds the connections a link holds undialed while cut.
	// A client that gives up on a held connection and dials again would
	// otherwise pile them up for as long as the cut lasts; beyond the bound
	// new ones are reset, as a full SYN backlog would refuse them.
	heldConnsMax = 64
	// dialTimeout bounds dialing the target for one accepted connection.
	dialTimeout = 5 * time.Second
)

// Proxy forwards node-to-node TCP links and injects faults into them. All
// methods are safe for concurrent use.
type Proxy struct {
	logger *slog.Logger
	// ctx is cancelled by Close; it aborts dials in progress.
	ctx    context.Context
	cancel context.CancelFunc

	// wg counts every goroutine the proxy started; Close waits for it.
	wg sync.WaitGroup
	// live mirrors wg's count, for tests and assertions.
	live atomic.Int64

	rngMu sync.Mutex
	rng   *rand.Rand // guarded by rngMu

	// mu guards links and closed. Lock order: Proxy.mu before link.mu
	// before rngMu.
	mu     sync.Mutex
	links  map[linkKey]*link
	closed bool
}

type linkKey struct{ from, to int }

// LinkStats describes one link at the time of Stats.
type LinkStats struct {
	From, To int
	// Addr is the proxy's listening address for the link ("" while only a
	// fault, and no Link call, has named the pair).
	Addr string
	// Target is where new connections are forwarded.
	Target string
	// Conns counts connections accepted, in total.
	Conns uint64
	// Open counts connections accepted and not yet closed, held ones
	// included.
	Open int
	// BytesForwarded counts bytes written to either socket of the link's
	// connections.
	BytesForwarded uint64
	// Resets counts connections reset by Reset or by Loss.
	Resets uint64
	// Cut, Delay, Jitter and Loss are the faults in force.
	Cut    bool
	Delay  time.Duration
	Jitter time.Duration
	Loss   float64
}

// New returns a Proxy with no links. seed seeds the randomness of loss and
// jitter; logger may be nil, which discards the log.
func New(seed int64, logger *slog.Logger) *Proxy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		logger: logger,
		ctx:    ctx,
		cancel: cancel,
		rng:    rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		links:  make(map[linkKey]*link),
	}
}

// Link listens on 127.0.0.1 (an OS-chosen port) for the link from→to and
// forwards each connection accepted there to target. It returns the
// listening address. Calling it again for the same pair returns the same
// address and makes new connections go to the new target; open ones keep
// theirs. Faults set on the pair before its first Link call are in force
// from the start.
func (p *Proxy) Link(from, to int, target string) (string, error) {
	if target == "" {
		return "", fmt.Errorf("faultproxy: link %d->%d: empty target", from, to)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "", ErrClosed
	}
	l := p.linkLocked(from, to)
	l.mu.Lock()
	l.target = target
	addr := l.addr
	l.mu.Unlock()
	if addr != "" {
		return addr, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("faultproxy: link %d->%d: %w", from, to, err)
	}
	l.mu.Lock()
	l.ln = ln
	l.addr = ln.Addr().String()
	addr = l.addr
	l.mu.Unlock()
	p.spawn(l.accept)
	p.logger.Info("faultproxy: link", "from", from, "to", to, "addr", addr, "target", target)
	return addr, nil
}

// linkLocked returns the link state for the pair, creating it without a
// listener if need be. p.mu must be held.
func (p *Proxy) linkLocked(from, to int) *link {
	k := linkKey{from, to}
	l := p.links[k]
	if l == nil {
		l = newLink(p, from, to)
		p.links[k] = l
	}
	return l
}

// link returns the link state for the pair, creating it if need be.
func (p *Proxy) link(from, to int) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.linkLocked(from, to)
}

// allLinks returns every link, ordered by (from, to).
func (p *Proxy) allLinks() []*link {
	p.mu.Lock()
	ls := make([]*link, 0, len(p.links))
	for _, l := range p.links {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	slices.SortFunc(ls, func(a, b *link) int {
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to))
	})
	return ls
}

// Stats reports every link, ordered by From then To.
func (p *Proxy) Stats() []LinkStats {
	ls := p.allLinks()
	out := make([]LinkStats, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.stats())
	}
	return out
}

// Close stops listening and closes every connection, then waits for every
// goroutine of the proxy to end. It is idempotent; every call returns once
// the proxy is fully stopped.
func (p *Proxy) Close() error {
	p.mu.Lock()
	first := !p.closed
	p.closed = true
	p.mu.Unlock()
	if first {
		p.cancel()
		var errs []error
		for _, l := range p.allLinks() {
			if err := l.close(); err != nil {
				errs = append(errs, err)
			}
		}
		p.wg.Wait()
		p.logger.Info("faultproxy: closed")
		return errors.Join(errs...)
	}
	p.wg.Wait()
	return nil
}

// spawn runs f on a goroutine that Close waits for.
func (p *Proxy) spawn(f func()) {
	p.wg.Add(1)
	p.live.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.live.Add(-1)
		f()
	}()
}

// lose draws whether a chunk is lost under loss probability prob.
func (p *Proxy) lose(prob float64) bool {
	switch {
	case prob <= 0:
		return false
	case prob >= 1:
		return true
	}
	p.rngMu.Lock()
	defer p.rngMu.Unlock()
	return p.rng.Float64() < prob
}

// delayFor draws one chunk's delay: mean plus a uniform offset in
// [-jitter, jitter], never negative.
func (p *Proxy) delayFor(mean, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		return mean
	}
	p.rngMu.Lock()
	off := time.Duration(p.rng.Int64N(2*int64(jitter)+1)) - jitter
	p.rngMu.Unlock()
	return max(mean+off, 0)
}
