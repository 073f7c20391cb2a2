package grpcnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/orbitkernel/orbit/kernel"
)

// peer is the sending half towards one node: a bounded queue that Send
// fills, and run, the goroutine that owns the stream and drains the queue
// into it.
type peer struct {
	t  *Transport
	id kernel.NodeID
	// ctx ends when the peer is removed or the Transport closes.
	ctx    context.Context
	cancel context.CancelFunc
	// wake holds a token when the queue may have become non-empty.
	wake chan struct{}
	// redialNow holds a token when the address changed during a backoff.
	redialNow chan struct{}

	mu   sync.Mutex
	addr string
	// endSession ends the current session (to redial at a new address);
	// nil between sessions.
	endSession context.CancelFunc
	// queue[head:] are waiting, oldest first.
	// Invariant: len(queue)-head <= QueueMessages and queuedBytes <=
	// QueueBytes, where queuedBytes is the sum of len(port)+len(body)
	// over queue[head:].
	queue       []outMsg
	head        int
	queuedBytes int
	connected   bool
	lastErr     string

	sent, sentBatches, sentBytes atomic.Uint64
	dropped, oversized, stale    atomic.Uint64
	// warned is when a drop was last logged (unix nanoseconds): drops are
	// logged at most once per dropLogInterval per peer, with the counts.
	warned                    atomic.Int64
	connects, connectFailures atomic.Uint64
}

func newPeer(t *Transport, id kernel.NodeID, addr string) *peer {
	p := &peer{
		t:         t,
		id:        id,
		addr:      addr,
		wake:      make(chan struct{}, 1),
		redialNow: make(chan struct{}, 1),
	}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	return p
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// enqueue queues a message, or drops it and counts why. It never blocks
// for longer than the queue's lock.
func (p *peer) enqueue(port string, body []byte) {
	size := len(port) + len(body)
	if size > p.t.opts.MaxMessageBytes {
		n := p.oversized.Add(1)
		if p.mayLog() {
			p.t.log.Warn("grpcnet: refusing a message larger than MaxMessageBytes (logged at most every 10s per peer)",
				"to", uint64(p.id), "port", port, "bytes", size, "max", p.t.opts.MaxMessageBytes, "refused_total", n)
		}
		return
	}
	p.mu.Lock()
	if p.ctx.Err() != nil || len(p.queue)-p.head >= p.t.opts.QueueMessages || p.queuedBytes+size > p.t.opts.QueueBytes {
		queued, queuedBytes := len(p.queue)-p.head, p.queuedBytes
		p.mu.Unlock()
		n := p.dropped.Add(1)
		if p.ctx.Err() == nil && p.mayLog() {
			p.t.log.Warn("grpcnet: send queue full, dropping (logged at most every 10s per peer)",
				"to", uint64(p.id), "port", port, "queued", queued, "queued_bytes", queuedBytes, "dropped_total", n)
		}
		return
	}
	if p.head > 0 && len(p.queue) == cap(p.queue) {
		// Reuse the sent prefix instead of growing.
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue = p.queue[:n]
		p.head = 0
	}
	p.queue = append(p.queue, outMsg{port: port, body: body, queued: time.Now()})
	p.queuedBytes += size
	p.mu.Unlock()
	signal(p.wake)
}

// dropLogInterval spaces out a peer's warnings about dropped messages.
const dropLogInterval = 10 * time.Second

// mayLog reports whether a drop may be logged now (and if so, starts a new
// interval).
func (p *peer) mayLog() bool {
	now := time.Now().UnixNano()
	last := p.warned.Load()
	return (last == 0 || now-last >= int64(dropLogInterval)) && p.warned.CompareAndSwap(last, now)
}

// take moves the oldest queued messages into batch, as many as fit in
// BatchBytes (at least one if any is queued), and returns their encoded
// size.
func (p *peer) take(batch []outMsg) ([]outMsg, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	staleBefore := time.Now().Add(-p.t.opts.MaxQueueAge)
	var stale uint64
	defer func() {
		if stale > 0 {
			n := p.stale.Add(stale)
			if p.mayLog() {
				p.t.log.Warn("grpcnet: dropped messages that waited longer than MaxQueueAge (logged at most every 10s per peer)",
					"to", uint64(p.id), "dropped", stale, "stale_total", n, "max_age", p.t.opts.MaxQueueAge)
			}
		}
	}()
	for p.head < len(p.queue) {
		m := p.queue[p.head]
		if m.queued.Before(staleBefore) {
			stale++
			p.queue[p.head] = outMsg{}
			p.head++
			p.queuedBytes -= len(m.port) + len(m.body)
			continue
		}
		size := encodedSize(m)
		if len(batch) > 0 && total+size > p.t.opts.BatchBytes {
			break
		}
		batch = append(batch, m)
		total += size
		p.queue[p.head] = outMsg{}
		p.head++
		p.queuedBytes -= len(m.port) + len(m.body)
	}
	if p.head == len(p.queue) {
		p.queue = p.queue[:0]
		p.head = 0
	}
	return batch, total
}

func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	if p.addr == addr {
		p.mu.Unlock()
		return
	}
	p.addr = addr
	end := p.endSession
	p.mu.Unlock()
	if end != nil {
		end()
	}
	signal(p.redialNow)
}

// run keeps a stream to the peer until the peer is removed or the
// Transport closes, dialling again after each failure with a growing,
// jittered backoff.
func (p *peer) run() {
	defer p.discardQueue()
	wait := p.t.opts.BackoffMin
	failing := false // a failure was logged since the last stream
	for {
		established, err := p.session()
		if p.ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("grpcnet: stream ended")
		}
		p.mu.Lock()
		p.lastErr = err.Error()
		addr := p.addr
		p.mu.Unlock()
		level := slog.LevelWarn
		if status.Code(err) == codes.FailedPrecondition {
			level = slog.LevelError // misconfiguration: say it loudly
		}
		switch {
		case established:
			wait = p.t.opts.BackoffMin
			failing = false
			p.t.log.Info("grpcnet: stream to peer ended", "to", uint64(p.id), "addr", addr, "err", err)
		case !failing:
			failing = true
			p.t.log.Log(context.Background(), level, "grpcnet: cannot reach peer; retrying with backoff (further failures logged at debug level)",
				"to", uint64(p.id), "addr", addr, "err", err)
		default:
			p.t.log.Debug("grpcnet: cannot reach peer", "to", uint64(p.id), "addr", addr, "err", err)
		}
		if !established {
			p.connectFailures.Add(1)
		}
		// Full jitter over the upper half of the window.
		d := wait/2 + rand.N(wait/2+1)
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-p.redialNow:
			timer.Stop()
		case <-p.ctx.Done():
			timer.Stop()
			return
		}
		wait = min(2*wait, p.t.opts.BackoffMax)
	}
}

// discardQueue drops what a removed or closed peer still had queued.
func (p *peer) discardQueue() {
	p.mu.Lock()
	n := len(p.queue) - p.head
	p.queue, p.head, p.queuedBytes = nil, 0, 0
	p.mu.Unlock()
	p.dropped.Add(uint64(n))
}

// session dials the peer, says hello, and pumps the queue into the stream
// until it breaks, the address changes or the peer goes away. established
// reports whether the handshake succeeded.
func (p *peer) session() (established bool, err error) {
	opts := &p.t.opts
	sctx, end := context.WithCancel(p.ctx)
	defer end()
	p.mu.Lock()
	addr := p.addr
	p.endSession = end
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.endSession = nil
		p.connected = false
		p.mu.Unlock()
	}()

	var dialErr atomic.Pointer[error]
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(p.dialCredentials(addr, &dialErr)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: opts.DialTimeout}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				dialErr.Store(&err)
			}
			return c, err
		}),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: opts.DialTimeout}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                max(opts.KeepaliveInterval, 10*time.Second), // gRPC's floor
			Timeout:             opts.KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithDefaultCallOptions(
			grpc.CallContentSubtype(codecName),
			grpc.MaxCallSendMsgSize(opts.maxFrameBytes()),
			grpc.MaxCallRecvMsgSize(opts.maxFrameBytes()),
		),
	)
	if err != nil {
		return false, fmt.Errorf("grpcnet: client for %s: %w", addr, err)
	}
	defer cc.Close()

	// The handshake, connecting included, must finish within DialTimeout;
	// past it, sctx ends and takes the half-open stream with it.
	hctx, hcancel := context.WithTimeout(sctx, opts.DialTimeout)
	defer hcancel()
	stopTimeout := context.AfterFunc(hctx, end)
	if err := waitReady(hctx, cc); err != nil {
		if e := dialErr.Load(); e != nil {
			err = *e
		}
		return false, fmt.Errorf("grpcnet: connect to %s: %w", addr, err)
	}
	stream, err := cc.NewStream(sctx, &serviceDesc.Streams[0], fullMethod)
	if err != nil {
		return false, fmt.Errorf("grpcnet: open stream to %s: %w", addr, err)
	}
	h := encodeHello(hello{cluster: opts.ClusterID, from: opts.Self, to: p.id})
	// io.EOF means the server already ended the stream; RecvMsg says why.
	if err := stream.SendMsg(&frame{b: h}); err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("grpcnet: hello to %s: %w", addr, err)
	}
	var welcome frame
	if err := stream.RecvMsg(&welcome); err != nil {
		return false, fmt.Errorf("grpcnet: hello to %s: %w", addr, err)
	}
	if err := decodeWelcome(welcome.b); err != nil {
		return false, fmt.Errorf("grpcnet: hello to %s: %w", addr, err)
	}
	if !stopTimeout() {
		return false, fmt.Errorf("grpcnet: handshake with %s: %w", addr, context.DeadlineExceeded)
	}

	p.connects.Add(1)
	p.mu.Lock()
	p.connected = true
	p.lastErr = ""
	p.mu.Unlock()
	p.t.log.Info("grpcnet: stream to peer open", "to", uint64(p.id), "addr", addr)

	// The server sends nothing more: RecvMsg returns when the stream ends,
	// which is how an idle sender learns of it.
	ended := make(chan error, 1)
	go func() {
		var f frame
		err := stream.RecvMsg(&f)
		if err == nil {
			err = fmt.Errorf("grpcnet: %w: unexpected frame from the server", errMalformed)
			end()
		}
		ended <- err
	}()
	endedErr := func() error {
		end()
		return <-ended
	}

	var batch []outMsg
	for {
		var size int
		batch, size = p.take(batch[:0])
		if len(batch) == 0 {
			select {
			case <-p.wake:
				continue
			case err := <-ended:
				return true, err
			case <-sctx.Done():
				endedErr()
				return true, context.Cause(sctx)
			}
		}
		b := encodeBatch(batch, size)
		if err := stream.SendMsg(&frame{b: b}); err != nil {
			p.dropped.Add(uint64(len(batch)))
			if errors.Is(err, io.EOF) {
				err = endedErr() // the status that ended the stream
			} else {
				endedErr()
			}
			return true, err
		}
		p.sent.Add(uint64(len(batch)))
		p.sentBatches.Add(1)
		p.sentBytes.Add(uint64(len(b)))
		clear(batch)
	}
}

// waitReady connects cc and waits until it is ready, has failed, or ctx
// ends.
// dialCredentials is plaintext, or TLS with a fresh Options.ClientTLS
// whose ServerName defaults to addr's host. A failed TLS handshake is
// stored in handshakeErr: gRPC itself only reports TRANSIENT_FAILURE, and
// an operator needs "certificate is valid for X, not Y".
func (p *peer) dialCredentials(addr string, handshakeErr *atomic.Pointer[error]) credentials.TransportCredentials {
	if p.t.opts.ClientTLS == nil {
		return insecure.NewCredentials()
	}
	cfg := p.t.opts.ClientTLS()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	return recordingCreds{TransportCredentials: credentials.NewTLS(cfg), err: handshakeErr}
}

// recordingCreds keeps the error of a failed client handshake.
type recordingCreds struct {
	credentials.TransportCredentials
	err *atomic.Pointer[error]
}

func (c recordingCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if err != nil {
		c.err.Store(&err)
	}
	return nc, info, err
}

func (c recordingCreds) Clone() credentials.TransportCredentials {
	return recordingCreds{TransportCredentials: c.TransportCredentials.Clone(), err: c.err}
}

func waitReady(ctx context.Context, cc *grpc.ClientConn) error {
	cc.Connect()
	for {
		s := cc.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			return errors.New(s.String())
		}
		if !cc.WaitForStateChange(ctx, s) {
			return ctx.Err()
		}
	}
}
