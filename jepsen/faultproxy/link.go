package faultproxy

import (
	"errors"
	"net"
	"sync"
	"time"
)

// link is one ordered pair's listener, faults and connections.
//
// Every goroutine of the link's connections that waits for the link's state
// to change (a stalled reader or writer, a held connection, Cut waiting for
// writes to drain) takes changed under mu and waits for it to be closed;
// wakeLocked closes and replaces it after every change.
type link struct {
	p        *Proxy
	from, to int

	mu sync.Mutex
	// changed is closed, and replaced, whenever anything below changes.
	changed chan struct{}
	ln      net.Listener
	addr    string
	target  string
	// closed is set by Proxy.Close; no connection is accepted after it.
	closed bool

	// Faults.
	// Invariant: while cut, every socket of every connection has its
	// deadline in the past, and (once Cut has returned) writing is zero.
	cut    bool
	delay  time.Duration
	jitter time.Duration
	loss   float64

	// conns are the open connections, held ones included.
	conns map[*conn]struct{}
	// held counts the connections in conns not yet dialed.
	held int
	// writing counts writers inside a Write call on a socket of the link.
	writing int

	accepted uint64
	resets   uint64
	bytes    uint64
}

func newLink(p *Proxy, from, to int) *link {
	return &link{
		p:       p,
		from:    from,
		to:      to,
		changed: make(chan struct{}),
		conns:   make(map[*conn]struct{}),
	}
}

// wakeLocked wakes every goroutine waiting for the link to change.
func (l *link) wakeLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// waitLocked releases l.mu until the link changes or, if timeout is
// positive, until timeout has passed, then takes l.mu again. Callers
// re-check their condition in a loop.
func (l *link) waitLocked(timeout time.Duration) {
	ch := l.changed
	l.mu.Unlock()
	if timeout <= 0 {
		<-ch
	} else {
		t := time.NewTimer(timeout)
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
	l.mu.Lock()
}

// pastDeadline is what a socket's deadline is set to while its link is
// cut: any time in the past makes blocked reads and writes return at once
// and new ones fail without touching the socket.
var pastDeadline = time.Unix(1, 0)

// deadlineLocked is the deadline every socket of the link should have now.
func (l *link) deadlineLocked() time.Time {
	if l.cut {
		return pastDeadline
	}
	return time.Time{}
}

// applyDeadlinesLocked sets every socket's deadline from l.cut. Setting a
// deadline never blocks, so it is done under l.mu, which keeps the
// invariant that the deadlines match l.cut whenever l.mu is free.
func (l *link) applyDeadlinesLocked() {
	d := l.deadlineLocked()
	for c := range l.conns {
		_ = c.client.SetDeadline(d)
		if c.server != nil {
			_ = c.server.SetDeadline(d)
		}
	}
}

func (l *link) setDelayLocked(mean, jitter time.Duration) {
	l.delay, l.jitter = mean, jitter
	// Queued chunks wait no longer than the new maximum from now.
	latest := time.Now().Add(mean + jitter)
	for c := range l.conns {
		for _, pp := range c.pipes {
			if pp == nil {
				continue
			}
			for i := range pp.queue {
				if pp.queue[i].at.After(latest) {
					pp.queue[i].at = latest
				}
			}
		}
	}
	l.wakeLocked()
}

func (l *link) healLocked() {
	l.cut = false
	l.loss = 0
	l.applyDeadlinesLocked()
	l.setDelayLocked(0, 0) // wakes
}

// accept runs the link's listener until it is closed.
func (l *link) accept() {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.p.ctx.Err() != nil {
				return
			}
			// Out of file descriptors or the like: back off briefly, the
			// way net/http's server does.
			l.p.logger.Warn("faultproxy: accept", "from", l.from, "to", l.to, "err", err)
			t := time.NewTimer(10 * time.Millisecond)
			select {
			case <-l.p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		c := &conn{l: l, client: nc}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = nc.Close()
			continue
		}
		l.accepted++
		c.id = l.accepted
		if l.cut && l.held >= heldConnsMax {
			l.mu.Unlock()
			l.p.logger.Warn("faultproxy: too many held connections, resetting", "from", l.from, "to", l.to, "held", heldConnsMax)
			resetConn(nc)
			continue
		}
		l.conns[c] = struct{}{}
		l.held++
		c.held = true
		_ = nc.SetDeadline(l.deadlineLocked())
		l.mu.Unlock()
		l.p.spawn(c.serve)
	}
}

// close stops the listener and ends every connection.
func (l *link) close() error {
	l.mu.Lock()
	l.closed = true
	ln := l.ln
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.wakeLocked()
	l.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	for _, c := range conns {
		c.end(endClose)
	}
	return err
}

func (l *link) stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LinkStats{
		From:           l.from,
		To:             l.to,
		Addr:           l.addr,
		Target:         l.target,
		Conns:          l.accepted,
		Open:           len(l.conns),
		BytesForwarded: l.bytes,
		Resets:         l.resets,
		Cut:            l.cut,
		Delay:          l.delay,
		Jitter:         l.jitter,
		Loss:           l.loss,
	}
}
