package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// conn is one accepted connection and, once dialed, its connection to the
// target.
type conn struct {
	l      *link
	id     uint64
	client net.Conn

	// Guarded by l.mu.
	server net.Conn
	// held is true from accept until the target is dialed.
	held   bool
	closed bool
	// pipes are client→server and server→client, nil until dialed.
	pipes [2]*pipe
	// finished counts pipes that passed on a half-close; at two the
	// connection is done.
	finished int
}

// pipe is one direction of a connection: a reader fills queue from src, a
// writer drains it into dst. All but src and dst are guarded by l.mu.
type pipe struct {
	src, dst net.Conn
	// Invariant: queued is the sum of len(data) over queue, and at most
	// queueBytesMax+chunkBytes.
	queue  []chunk
	queued int
	// off is how much of queue[0] has been written.
	off int
	// drawn is set once queue[0] has drawn for Loss and survived.
	drawn bool
	// eof is set when src reached its end; the writer passes it on as a
	// half-close once queue is empty.
	eof bool
}

// chunk is what one read took off a socket.
type chunk struct {
	data []byte
	// at is when the chunk may be written; zero for at once.
	at time.Time
}

// ending says how a connection ends.
type ending int

const (
	// endClose closes both sockets normally: both directions finished,
	// or the proxy is closing.
	endClose ending = iota
	// endReset resets both sockets, passing on a failure: one side reset
	// or broke, or the target could not be dialed.
	endReset
	// endFault resets both sockets as an injected fault (Reset, Loss);
	// counted in LinkStats.Resets.
	endFault
)

// serve holds the connection while the link is cut, dials the target, and
// runs the two pipes.
func (c *conn) serve() {
	l := c.l
	l.mu.Lock()
	for l.cut && !c.closed {
		l.waitLocked(0)
	}
	if c.closed {
		l.mu.Unlock()
		return
	}
	target := l.target
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(l.p.ctx, dialTimeout)
	var d net.Dialer
	server, err := d.DialContext(ctx, "tcp", target)
	cancel()
	if err != nil {
		if l.p.ctx.Err() == nil {
			l.p.logger.Warn("faultproxy: dial target", "from", l.from, "to", l.to, "conn", c.id, "target", target, "err", err)
		}
		c.end(endReset)
		return
	}

	l.mu.Lock()
	if c.closed {
		l.mu.Unlock()
		_ = server.Close()
		return
	}
	c.server = server
	c.held = false
	l.held--
	// The link may have been cut again while dialing.
	_ = server.SetDeadline(l.deadlineLocked())
	forward := &pipe{src: c.client, dst: server}
	back := &pipe{src: server, dst: c.client}
	c.pipes = [2]*pipe{forward, back}
	l.mu.Unlock()

	l.p.spawn(func() { c.read(forward) })
	l.p.spawn(func() { c.write(forward) })
	l.p.spawn(func() { c.read(back) })
	c.write(back)
}

// read moves chunks from pp.src into pp.queue until the source ends or the
// connection closes. It does not read while the link is cut.
func (c *conn) read(pp *pipe) {
	l := c.l
	buf := make([]byte, chunkBytes)
	for {
		l.mu.Lock()
		for !c.closed && (l.cut || pp.queued >= queueBytesMax) {
			l.waitLocked(0)
		}
		if c.closed {
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()

		n, err := pp.src.Read(buf)
		if n > 0 {
			data := bytes.Clone(buf[:n])
			l.mu.Lock()
			var at time.Time
			if l.delay > 0 || l.jitter > 0 {
				at = time.Now().Add(l.p.delayFor(l.delay, l.jitter))
			}
			pp.queue = append(pp.queue, chunk{data: data, at: at})
			pp.queued += n
			if pp.queued > queueBytesMax+chunkBytes {
				panic(fmt.Sprintf("faultproxy: %d bytes queued, bound %d", pp.queued, queueBytesMax+chunkBytes))
			}
			l.wakeLocked()
			l.mu.Unlock()
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Cut interrupted the read; the loop waits for the heal.
		case errors.Is(err, io.EOF):
			l.mu.Lock()
			pp.eof = true
			l.wakeLocked()
			l.mu.Unlock()
			return
		default:
			// The source broke or was reset (or the connection is being
			// closed, which makes this a no-op): pass it on.
			c.end(endReset)
			return
		}
	}
}

// write drains pp.queue into pp.dst, in order, each chunk no earlier than
// its time, nothing while the link is cut. Once the source has ended and
// the queue is empty it half-closes pp.dst.
func (c *conn) write(pp *pipe) {
	l := c.l
	l.mu.Lock()
	for {
		if c.closed {
			l.mu.Unlock()
			return
		}
		if l.cut {
			l.waitLocked(0)
			continue
		}
		if len(pp.queue) == 0 {
			if pp.eof {
				break
			}
			l.waitLocked(0)
			continue
		}
		head := pp.queue[0]
		if wait := time.Until(head.at); !head.at.IsZero() && wait > 0 {
			l.waitLocked(wait)
			continue
		}
		if !pp.drawn {
			if l.p.lose(l.loss) {
				loss := l.loss
				l.mu.Unlock()
				l.p.logger.Info("faultproxy: loss reset", "from", l.from, "to", l.to, "conn", c.id, "prob", loss)
				c.end(endFault)
				return
			}
			pp.drawn = true
		}

		if l.cut {
			panic("faultproxy: writing on a cut link")
		}
		l.writing++
		l.mu.Unlock()
		n, err := pp.dst.Write(head.data[pp.off:])
		l.mu.Lock()
		l.writing--
		l.bytes += uint64(n)
		pp.off += n
		if pp.off == len(head.data) {
			pp.queue[0] = chunk{}
			pp.queue = pp.queue[1:]
			pp.queued -= len(head.data)
			pp.off = 0
			pp.drawn = false
		}
		l.wakeLocked()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			l.mu.Unlock()
			c.end(endReset)
			return
		}
		// A deadline error means Cut interrupted the write: the rest of
		// the chunk goes after the heal.
	}
	l.mu.Unlock()

	// The source ended and everything before its end has been written:
	// pass the end on, keeping the other direction open.
	var err error
	if tc, ok := pp.dst.(*net.TCPConn); ok {
		err = tc.CloseWrite()
	}
	if err != nil {
		c.end(endReset)
		return
	}
	l.mu.Lock()
	c.finished++
	done := c.finished == len(c.pipes)
	l.mu.Unlock()
	if done {
		c.end(endClose)
	}
}

// end closes the connection (both sockets), once; later calls do nothing.
func (c *conn) end(how ending) {
	l := c.l
	l.mu.Lock()
	if c.closed {
		l.mu.Unlock()
		return
	}
	c.closed = true
	delete(l.conns, c)
	if c.held {
		c.held = false
		l.held--
	}
	if how == endFault {
		l.resets++
	}
	server := c.server
	l.wakeLocked()
	l.mu.Unlock()

	for _, s := range []net.Conn{c.client, server} {
		if s == nil {
			continue
		}
		if how == endClose {
			_ = s.Close()
		} else {
			resetConn(s)
		}
	}
}

// resetConn closes s with a TCP reset rather than an orderly close, so that
// the peer's next read or write fails with ECONNRESET.
func resetConn(s net.Conn) {
	if tc, ok := s.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = s.Close()
}
