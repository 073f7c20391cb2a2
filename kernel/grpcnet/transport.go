package grpcnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/orbitkernel/orbit/kernel"
)

// ErrClosed is returned by SetPeer on a closed Transport.
var ErrClosed = errors.New("grpcnet: transport closed")

// Transport is one node's end of the gRPC network. It implements
// prod.Network (Attach); the kernel.Network it hands the runtime sends
// through it.
type Transport struct {
	opts Options
	log  *slog.Logger
	lis  net.Listener
	srv  *grpc.Server
	// ctx ends at Close; every peer's context derives from it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the goroutines Close waits for: the server and one per peer.
	wg sync.WaitGroup
	// inboxes is the attached runtime's receiving half; nil while no
	// runtime is attached, and then arriving messages are dropped.
	inboxes atomic.Pointer[kernel.Inboxes]

	mu     sync.RWMutex
	closed bool
	// Invariant: no entry for Self or for node 0.
	peers map[kernel.NodeID]*peer
	// inbound holds the receive counters of every node that opened an
	// accepted stream here.
	inbound map[kernel.NodeID]*inboundStats

	local, noRoute, inboxDropped, refused, malformed atomic.Uint64
}

// New validates opts, listens on opts.Listen and starts dialling the peers.
func New(opts Options) (*Transport, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("grpcnet: invalid options: %w", err)
	}
	lis, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("grpcnet: listen: %w", err)
	}
	t := &Transport{
		opts:    opts,
		log:     opts.Logger.With("node", uint64(opts.Self), "component", "grpcnet"),
		lis:     lis,
		peers:   map[kernel.NodeID]*peer{},
		inbound: map[kernel.NodeID]*inboundStats{},
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	srvOpts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.maxFrameBytes()),
		grpc.MaxSendMsgSize(opts.maxFrameBytes()),
		grpc.ConnectionTimeout(opts.DialTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    opts.KeepaliveInterval,
			Timeout: opts.KeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			// Below the client's floor of 10s, so that no setting of
			// KeepaliveInterval gets a peer's connection closed for
			// pinging too often.
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
	}
	if opts.ServerTLS != nil {
		srvOpts = append(srvOpts, grpc.Creds(credentials.NewTLS(opts.ServerTLS)))
	}
	t.srv = grpc.NewServer(srvOpts...)
	t.srv.RegisterService(&serviceDesc, t)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if err := t.srv.Serve(lis); err != nil {
			t.log.Error("grpcnet: server stopped", "err", err)
		}
	}()
	t.mu.Lock()
	for _, id := range sortedIDs(opts.Peers) {
		if id != opts.Self {
			t.addPeerLocked(id, opts.Peers[id])
		}
	}
	t.mu.Unlock()
	t.log.Info("grpcnet: listening", "addr", t.Addr(), "cluster", opts.ClusterID, "peers", len(t.peers))
	return t, nil
}

// Addr is the address the Transport listens on, with the port the OS chose
// if Options.Listen asked for port 0.
func (t *Transport) Addr() string { return t.lis.Addr().String() }

// Self is the node this Transport belongs to.
func (t *Transport) Self() kernel.NodeID { return t.opts.Self }

// SetPeer adds a peer or changes its address. A changed address ends the
// current stream to it; messages still queued go to the new address.
func (t *Transport) SetPeer(id kernel.NodeID, addr string) error {
	if err := checkPeer(id, addr); err != nil {
		return fmt.Errorf("grpcnet: SetPeer: %w", err)
	}
	if id == t.opts.Self {
		return fmt.Errorf("grpcnet: SetPeer: node %d is this node", id)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if p := t.peers[id]; p != nil {
		p.setAddr(addr)
		return nil
	}
	t.addPeerLocked(id, addr)
	return nil
}

// RemovePeer forgets a peer: its stream ends and its queued messages are
// dropped. Sends to it are then counted in Stats.NoRoute.
func (t *Transport) RemovePeer(id kernel.NodeID) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

func (t *Transport) addPeerLocked(id kernel.NodeID, addr string) {
	p := newPeer(t, id, addr)
	t.peers[id] = p
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		p.run()
	}()
}

// Close ends every stream and goroutine of the Transport and stops
// listening. Messages still queued are lost. Close the Transport after
// stopping the runtime attached to it. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.peers = map[kernel.NodeID]*peer{}
	t.mu.Unlock()
	t.cancel()
	t.srv.Stop() // closes the listener and every inbound stream
	t.wg.Wait()
	t.log.Info("grpcnet: closed")
	return nil
}

// Attach implements prod.Network: it connects the runtime of node Self to
// the Transport. One runtime at a time; detach makes room for the next
// (a node restarted in the same process).
func (t *Transport) Attach(rt kernel.Runtime) (kernel.Network, func()) {
	if rt.NodeID() != t.opts.Self {
		panic(fmt.Sprintf("grpcnet: the runtime of node %d attached to the transport of node %d", rt.NodeID(), t.opts.Self))
	}
	in := kernel.NewInboxes(rt)
	if !t.inboxes.CompareAndSwap(nil, in) {
		panic(fmt.Sprintf("grpcnet: a second runtime attached to the transport of node %d", t.opts.Self))
	}
	detach := func() {
		t.inboxes.CompareAndSwap(in, nil)
		in.Close()
	}
	return &endpoint{t: t, in: in}, detach
}

// endpoint is the kernel.Network of an attached runtime.
type endpoint struct {
	t  *Transport
	in *kernel.Inboxes
}

func (e *endpoint) Send(to kernel.NodeID, port string, body []byte) { e.t.send(to, port, body) }

func (e *endpoint) Listen(port string) *kernel.Mailbox[kernel.Envelope] { return e.in.Listen(port) }
func (e *endpoint) ListenNew(port string) (string, *kernel.Mailbox[kernel.Envelope]) {
	return e.in.ListenNew(port)
}

// send never blocks: it queues, delivers locally, or drops and counts.
func (t *Transport) send(to kernel.NodeID, port string, body []byte) {
	if to == t.opts.Self {
		t.local.Add(1)
		t.deliver(kernel.Envelope{From: to, Port: port, Body: body})
		return
	}
	t.mu.RLock()
	p := t.peers[to]
	t.mu.RUnlock()
	if p == nil {
		t.noRoute.Add(1)
		return
	}
	p.enqueue(port, body)
}

func (t *Transport) deliver(env kernel.Envelope) {
	in := t.inboxes.Load()
	if in == nil || !in.Deliver(env) {
		t.inboxDropped.Add(1)
	}
}

// serve runs one inbound stream: the hello, then batches until the stream
// ends.
func (t *Transport) serve(ss grpc.ServerStream) error {
	var f frame
	if err := ss.RecvMsg(&f); err != nil {
		return err
	}
	h, err := decodeHello(f.b)
	if err != nil {
		err = helloStatus(err)
	} else {
		err = t.checkHello(h)
	}
	if err != nil {
		t.refused.Add(1)
		t.log.Warn("grpcnet: refused a stream", "err", err)
		return err
	}
	if err := ss.SendMsg(&frame{b: encodeWelcome()}); err != nil {
		return err
	}
	in := t.inboundFor(h.from)
	var msgs []inMsg
	// A node uses a handful of ports: intern their names rather than
	// allocate one string per message.
	ports := map[string]string{}
	for {
		if err := ss.RecvMsg(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		msgs, err = decodeBatch(f.b, msgs[:0])
		if err != nil {
			t.malformed.Add(1)
			t.log.Error("grpcnet: ending a stream with a malformed frame", "from", uint64(h.from), "err", err)
			return status.Error(codes.InvalidArgument, err.Error())
		}
		in.frames.Add(1)
		in.bytes.Add(uint64(len(f.b)))
		in.messages.Add(uint64(len(msgs)))
		for i, m := range msgs {
			port, ok := ports[string(m.port)]
			if !ok {
				port = string(m.port)
				if len(ports) < maxInternedPorts {
					ports[port] = port
				}
			}
			t.deliver(kernel.Envelope{From: h.from, Port: port, Body: m.body})
			msgs[i] = inMsg{}
		}
	}
}

// maxInternedPorts bounds the port names one inbound stream remembers.
const maxInternedPorts = 64

// checkHello returns the gRPC status that refuses h, or nil.
func (t *Transport) checkHello(h hello) error {
	switch {
	case h.cluster != t.opts.ClusterID:
		return status.Errorf(codes.FailedPrecondition,
			"grpcnet: node %d is in cluster %#x but node %d (at %s) is in cluster %#x; refusing its stream",
			h.from, h.cluster, t.opts.Self, t.Addr(), t.opts.ClusterID)
	case h.to != t.opts.Self:
		return status.Errorf(codes.FailedPrecondition,
			"grpcnet: node %d dialled %s for node %d, but node %d listens there; check its peer addresses",
			h.from, t.Addr(), h.to, t.opts.Self)
	case h.from == 0 || h.from == t.opts.Self:
		return status.Errorf(codes.InvalidArgument, "grpcnet: a stream claims to come from node %d", h.from)
	}
	return nil
}

func (t *Transport) inboundFor(from kernel.NodeID) *inboundStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	in := t.inbound[from]
	if in == nil {
		in = &inboundStats{}
		t.inbound[from] = in
	}
	return in
}

// helloStatus is the status that refuses a hello that did not decode.
func helloStatus(err error) error {
	if errors.Is(err, errVersion) {
		return status.Error(codes.Unimplemented, err.Error())
	}
	return status.Error(codes.InvalidArgument, err.Error())
}
