// Package respwire is the wire half of Orbit's Redis adapter: a TCP listener
// (over TLS when Options.TLS is set) speaking RESP2 and RESP3 (chosen per
// connection by HELLO), commands read with tidwall/redcon's reader
// (pipelines included), executed in order by the session layer
// (adapters/redis/session), replies written in the connection's protocol.
//
// Pipelines: consecutive keyed data commands of one read batch whose keys
// are disjoint run concurrently (up to 64 at once), so that they share
// Raft's group commit; replies are still written in order, and commands on
// a common key still run in the order sent. Between commands on distinct
// keys of one pipeline, the order in which they take effect is not fixed
// (each is still linearizable: the client sent them all before any reply).
//
// Bad input is the connection's problem only: a malformed request gets
// Redis's "ERR Protocol error: ..." and that connection is closed; others
// carry on. Limits (Redis's in parentheses):
//
//   - an argument is at most redis.MaxBulkLen, 64 MB (proto-max-bulk-len,
//     512 MB): a larger declared length is "invalid bulk length";
//   - a request has at most 1,048,576 arguments (INT_MAX): more is "invalid
//     multibulk length";
//   - an inline command line is at most 64 KB, as in Redis ("too big inline
//     request");
//   - a header line ("*<count>", "$<len>") is at most 64 KB without its
//     CR ("too big mbulk count string", "too big bulk count string");
//     a zero or negative argument count is ignored, as in Redis;
//   - a connection's unsent output is at most 64 MB (client-output-buffer-
//     limit): a subscriber that does not read is disconnected;
//   - while a blocking command waits, its connection's input is read
//     ahead up to MaxQueryBuffer (client-query-buffer-limit): beyond that
//     the connection is closed.
//
// One goroutine runs a connection's commands and does its I/O, as Redis's
// event loop does: it reads the socket when it needs the next command and
// writes a reply straight to the socket when nothing else is being sent
// (a lone client's request costs no hand-offs between goroutines). Two
// more goroutines stand by: the writer sends pub/sub pushes and output
// that piles up behind a write in progress; the reader reads the socket
// only while a blocking command waits, as Redis reads a blocked client's
// socket: a client that goes away (EOF or a reset) is told to the session
// layer (session.Conn.Gone) at once, so that a BLPOP it left blocked stops
// waiting and never takes an element another client pushes later.
//
// This is the production edge, outside the runtime contract: it uses
// sockets, goroutines and the wall clock directly (internal/lint does not
// cover it; see the note in lint.go). The simulator drives the session
// layer instead.
package respwire

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/redcon"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/internal/listen"
	"github.com/orbitkernel/orbit/kernel"
)

// Limits; see the package comment.
const (
	MaxArgs   = 1 << 20
	MaxInline = 64 << 10
	MaxOutput = 64 << 20
	// MaxQueryBuffer bounds the input read ahead of a blocked command
	// (client-query-buffer-limit, 1 GB in Redis): beyond it the connection
	// is closed. It exceeds the largest request (an argument of
	// redis.MaxBulkLen).
	MaxQueryBuffer = 2*redis.MaxBulkLen + MaxInline
	outputPause    = 1 << 20 // a connection stops executing while this much is unsent
	shutdownWait   = 5 * time.Second
)

// Options configure a Listener.
type Options struct {
	// Addr is the TCP address to listen on ("127.0.0.1:6379").
	Addr string
	// TLS, if set, serves RESP over TLS with this configuration (as Redis's
	// tls-port does; redis-cli --tls). Nil (the default): plain TCP.
	TLS *tls.Config
	// Session executes the commands. Required.
	Session *session.Server
	// Runtime gives the contexts handed to the session layer. Required.
	Runtime kernel.Runtime
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Observe, if set, hears of every command executed: its name as sent
	// (args[0]), how long the session layer took, and its replies (for
	// metrics). It runs on the connection's goroutine, or on several at
	// once for a pipeline's concurrent commands: it must be safe for
	// concurrent use and must not block.
	Observe func(name []byte, elapsed time.Duration, replies []redis.Reply)
}

// Listener serves RESP on one address.
type Listener struct {
	opts   Options
	ln     net.Listener
	log    *slog.Logger
	ctx    context.Context // handed to Do; cancelled late in Shutdown
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool
	conns   map[*conn]struct{}
	wg      sync.WaitGroup

	workers *workers // run pipelined commands (doConcurrent)
}

// Listen opens the address. The error of a busy port reads "listen ADDR:
// address already in use".
func Listen(opts Options) (*Listener, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, listen.Error(opts.Addr, err)
	}
	if opts.TLS != nil {
		// The handshake runs on the connection's first read or write, on
		// its own goroutines: a slow or failed one holds up no one else.
		ln = tls.NewListener(ln, opts.TLS)
	}
	l := &Listener{opts: opts, ln: ln, log: opts.Logger, conns: map[*conn]struct{}{}}
	l.ctx, l.cancel = opts.Runtime.WithCancel(context.Background())
	l.workers = newWorkers(l.ctx)
	return l, nil
}

// Addr is the address listened on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts connections until Shutdown.
func (l *Listener) Serve() {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closing := l.closing
			l.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("redis: accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		c := &conn{l: l, nc: nc}
		c.cond = sync.NewCond(&c.mu)
		c.in.nc = nc
		c.in.cond = sync.NewCond(&c.in.mu)
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			nc.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.wg.Add(3)
		l.mu.Unlock()
		c.sess = l.opts.Session.NewConn(nc.RemoteAddr().String(), c.push)
		c.sess.SetKill(c.close)
		c.sess.SetLocalAddr(nc.LocalAddr().String())
		go c.writeLoop()
		go c.fill()
		go c.readLoop()
	}
}

// Shutdown stops accepting, lets every connection finish the commands it
// has read (up to 5 s, or until ctx ends), then cancels what still runs
// (blocked BLPOPs answer as if timed out) and closes every connection.
func (l *Listener) Shutdown(ctx context.Context) {
	l.mu.Lock()
	l.closing = true
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.ln.Close()
	for _, c := range conns {
		// Wake reads waiting for a next command; a command running goes
		// on, and its reply is written before the connection closes.
		_ = c.nc.SetReadDeadline(time.Now())
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	t := time.NewTimer(shutdownWait)
	defer t.Stop()
	select {
	case <-done:
		l.cancel()
		return
	case <-ctx.Done():
	case <-t.C:
	}
	l.cancel()
	for _, c := range conns {
		c.close()
	}
	<-done
}

// conn is one client connection: readLoop reads, parses and executes
// commands in order and writes their replies when the socket is free;
// writeLoop sends what piles up in out (pub/sub deliveries, replies made
// while a write was in progress); fill reads on while a blocking command
// waits.
type conn struct {
	l    *Listener
	nc   net.Conn
	sess *session.Conn
	in   input

	mu      sync.Mutex
	cond    *sync.Cond // signals out grew or shrank, a write ended, or closed
	out     []byte     // to send, in order
	writing bool       // a goroutine is writing to the socket: out waits for it
	sendBuf []byte     // readLoop's own buffer for the replies it writes itself
	closed  bool
	quit    bool // close once out is sent
}

func (c *conn) readLoop() {
	defer c.l.wg.Done()
	defer func() {
		c.sess.Close()
		c.finish()
	}()
	defer c.in.stop()
	rd := newRequestReader(&c.in)
	for {
		cmds, err := rd.ReadCommands()
		if err != nil {
			c.readError(err)
			return
		}
		for i := 0; i < len(cmds); {
			if n := c.concurrentRun(cmds[i:]); n > 1 {
				if !c.doConcurrent(cmds[i : i+n]) {
					return
				}
				i += n
				continue
			}
			began := time.Now()
			blocking := isBlocking(cmds[i].Args)
			if blocking {
				c.in.setBlocking(true)
			}
			replies, quit := c.sess.Do(c.l.ctx, cmds[i].Args)
			if blocking {
				c.in.setBlocking(false)
			}
			c.observe(cmds[i].Args, time.Since(began), replies)
			if !c.reply(replies) || quit {
				return
			}
			i++
		}
	}
}

// isBlocking reports whether a command may block (BLPOP and friends, XREAD
// and XREADGROUP with BLOCK; inside MULTI they do not, which only lets the
// input be read further ahead).
func isBlocking(args [][]byte) bool {
	spec, ok := redis.Lookup(string(args[0]))
	return (ok && spec.Where == redis.WhereBlocking) || redis.Blocks(args)
}

// input is a connection's socket as readLoop's parser reads it. Read reads
// the socket itself when nothing is buffered; while a blocking command
// waits, fill reads on into buf. One of them reads at a time (reading).
type input struct {
	nc       net.Conn
	mu       sync.Mutex
	cond     *sync.Cond // signals buf grew, a read ended, err was set, or a flag changed
	buf      []byte     // read by fill, not parsed yet
	err      error      // what ended the reading, returned once buf is drained
	reading  bool       // Read or fill is in the socket's Read
	blocking bool       // a blocking command runs: fill reads on
	stopped  bool       // readLoop ended: fill stops
}

// Read hands the parser buffered input, or reads the socket for it.
func (in *input) Read(p []byte) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for len(in.buf) == 0 && in.err == nil && in.reading {
		in.cond.Wait() // fill is reading: take what it gets
	}
	if len(in.buf) > 0 {
		n := copy(p, in.buf)
		in.buf = in.buf[n:]
		if len(in.buf) == 0 {
			in.buf = nil
		}
		return n, nil
	}
	if in.err != nil {
		return 0, in.err
	}
	in.reading = true
	in.mu.Unlock()
	n, err := in.nc.Read(p)
	in.mu.Lock()
	in.reading = false
	if err != nil {
		in.err = err
	}
	in.cond.Broadcast() // fill may wait for the socket
	if n > 0 {
		return n, nil // the error, if any, comes with the next Read
	}
	return 0, err
}

func (in *input) setBlocking(b bool) {
	in.mu.Lock()
	in.blocking = b
	in.cond.Broadcast()
	in.mu.Unlock()
}

func (in *input) stop() {
	in.mu.Lock()
	in.stopped = true
	in.cond.Broadcast()
	in.mu.Unlock()
}

// errQueryBuffer ends a connection whose input outgrew MaxQueryBuffer.
var errQueryBuffer = errors.New("client query buffer limit reached")

// fill reads the socket into c.in while a blocking command waits, until
// it fails or readLoop ends. A client that goes away is told to the
// session at once (Gone); a read deadline (Shutdown) is not a departure.
func (c *conn) fill() {
	defer c.l.wg.Done()
	in := &c.in
	buf := make([]byte, 16<<10)
	for {
		in.mu.Lock()
		for !in.stopped && in.err == nil && (!in.blocking || in.reading) {
			in.cond.Wait()
		}
		if in.stopped || in.err != nil {
			in.mu.Unlock()
			return
		}
		over := len(in.buf) >= MaxQueryBuffer
		in.reading = true
		in.mu.Unlock()
		var n int
		var err error
		if over {
			err = errQueryBuffer
			c.l.log.Warn("redis: closing a client whose input outgrew the query buffer limit", "remote", c.nc.RemoteAddr().String(), "limit", MaxQueryBuffer)
			c.nc.Close()
		} else {
			n, err = c.nc.Read(buf)
		}
		in.mu.Lock()
		in.reading = false
		in.buf = append(in.buf, buf[:n]...)
		if err != nil {
			in.err = err
		}
		in.cond.Broadcast()
		in.mu.Unlock()
		if err != nil {
			if !isTimeout(err) {
				c.sess.Gone()
			}
			return
		}
	}
}

// maxConcurrent bounds the commands of one pipeline in flight at once.
const maxConcurrent = 64

// concurrentRun returns how many commands at the head of cmds may run
// concurrently: keyed data commands (session.Conn.Concurrent) whose keys
// are disjoint, so that each key still sees the pipeline's order.
func (c *conn) concurrentRun(cmds []redcon.Command) int {
	if len(cmds) < 2 {
		return len(cmds)
	}
	seen := map[string]struct{}{}
	n := 0
	for _, cmd := range cmds[:min(len(cmds), maxConcurrent)] {
		keys, ok := c.sess.Concurrent(cmd.Args)
		if !ok {
			break
		}
		overlap := false
		for _, k := range keys {
			if _, dup := seen[string(k)]; dup {
				overlap = true
			}
		}
		if overlap {
			break
		}
		for _, k := range keys {
			seen[string(k)] = struct{}{}
		}
		n++
	}
	return n
}

// doConcurrent runs independent commands at once and replies in order.
func (c *conn) doConcurrent(cmds []redcon.Command) bool {
	replies := make([]redis.Reply, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Add(1)
		c.l.workers.run(func() {
			defer wg.Done()
			began := time.Now()
			replies[i] = c.sess.DoConcurrent(c.l.ctx, cmd.Args)
			c.observe(cmd.Args, time.Since(began), replies[i:i+1])
		})
	}
	wg.Wait()
	return c.reply(replies)
}

func (c *conn) observe(args [][]byte, elapsed time.Duration, replies []redis.Reply) {
	if c.l.opts.Observe != nil && len(args) > 0 {
		c.l.opts.Observe(args[0], elapsed, replies)
	}
}

// readError answers a protocol error; EOF, a closed socket or a shutdown
// just end the connection.
func (c *conn) readError(err error) {
	msg := err.Error()
	var pe *protoError
	switch {
	case errors.As(err, &pe):
		msg = "Protocol error: " + pe.msg
	case strings.HasPrefix(msg, "Protocol error: "): // redcon's own
	default:
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
			c.l.log.Debug("redis: read", "remote", c.nc.RemoteAddr().String(), "err", err)
		}
		return
	}
	c.reply([]redis.Reply{redis.Error("ERR " + msg)})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// reply sends replies in the connection's protocol: straight to the
// socket when nothing is being sent, else after what is queued (waiting
// while too much is unsent). It returns false once the connection is
// closed.
func (c *conn) reply(rs []redis.Reply) bool {
	proto := c.sess.Proto()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.out) > outputPause && !c.closed {
		c.cond.Wait()
	}
	if c.closed {
		return false
	}
	if c.writing {
		for _, r := range rs {
			c.out = encode(c.out, r, proto)
		}
		c.cond.Broadcast()
		return true
	}
	// Nothing on its way: send what is queued (pushes the writer has not
	// taken yet) and the replies from here.
	buf := append(c.sendBuf[:0], c.out...)
	c.out = c.out[:0]
	for _, r := range rs {
		buf = encode(buf, r, proto)
	}
	c.writing = true
	c.mu.Unlock()
	_, err := c.nc.Write(buf)
	c.mu.Lock()
	c.writing = false
	if cap(buf) <= outputPause {
		c.sendBuf = buf[:0] // keep it, unless a huge reply made it huge
	}
	if err != nil {
		c.closed = true
	}
	c.cond.Broadcast() // the writer may have output waiting for this write
	return err == nil
}

func encode(dst []byte, r redis.Reply, proto int) []byte {
	if proto == 3 {
		return redis.AppendRESP3(dst, r)
	}
	return redis.AppendRESP2(dst, r)
}

// push queues a pub/sub message; a connection too far behind is closed.
func (c *conn) push(r redis.Reply) {
	proto := c.sess.Proto()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if len(c.out) > MaxOutput {
		c.closed = true
		c.nc.Close()
		c.cond.Broadcast()
		return
	}
	c.out = encode(c.out, r, proto)
	c.cond.Broadcast()
}

// finish closes the connection once its output is sent.
func (c *conn) finish() {
	c.mu.Lock()
	c.quit = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

// close closes the connection at once.
func (c *conn) close() {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.nc.Close()
}

func (c *conn) writeLoop() {
	defer c.l.wg.Done()
	defer func() {
		c.nc.Close()
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	}()
	var buf []byte
	for {
		c.mu.Lock()
		for !c.closed && (c.writing || (len(c.out) == 0 && !c.quit)) {
			c.cond.Wait()
		}
		if c.closed || len(c.out) == 0 { // closed, or quit with all sent
			c.closed = true
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		buf, c.out = c.out, buf[:0]
		c.writing = true
		c.cond.Broadcast() // room for a paused reply
		c.mu.Unlock()
		_, err := c.nc.Write(buf)
		c.mu.Lock()
		c.writing = false
		c.cond.Broadcast()
		c.mu.Unlock()
		if err != nil {
			c.close()
			return
		}
	}
}
