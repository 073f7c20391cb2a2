package grpcnet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// Options configure a Transport. Zero fields take the defaults that
// EnsureDefaults lists.
type Options struct {
	// Self is this node. Required.
	Self kernel.NodeID
	// Listen is the host:port this node accepts peer streams on. Port 0
	// lets the OS choose; Transport.Addr reports the bound address.
	// Required.
	Listen string
	// Peers are the other nodes' Listen addresses. An entry for Self is
	// ignored, so every node of a cluster may be given the same map.
	// SetPeer and RemovePeer change the set later.
	Peers map[kernel.NodeID]string
	// ClusterID is the same on every node of a cluster; a stream from a node
	// of another cluster is refused.
	ClusterID uint64

	// ServerTLS, if set, makes the listener speak TLS with this
	// configuration; for mutual TLS its ClientAuth is
	// tls.RequireAndVerifyClientCert. Nil (the default): plaintext, for a
	// trusted network. Set with ClientTLS or not at all.
	ServerTLS *tls.Config
	// ClientTLS, if set, gives the TLS configuration of each connection to
	// a peer; it is called at every dial, so that reloaded certificates
	// serve the next connection, and must return a config of its own (the
	// Transport may set its ServerName). An empty ServerName becomes the
	// host of the peer's address, which the peer's certificate must then
	// name.
	// Nil (the default): plaintext.
	ClientTLS func() *tls.Config

	// QueueMessages bounds each peer's send queue, in messages. Default 4096.
	QueueMessages int
	// QueueBytes bounds each peer's send queue, in bytes of port and body.
	// Default 64 MiB; at least MaxMessageBytes.
	QueueBytes int
	// BatchBytes bounds one batch frame; a single message larger than this
	// goes in a frame of its own. Default 1 MiB; at most MaxMessageBytes.
	BatchBytes int
	// MaxQueueAge is how long a message may wait in a send queue: older
	// ones are dropped when the stream would take them, and counted as
	// stale. A peer that was unreachable for a while then gets what is
	// current, not a backlog of expired heartbeats and replies that it
	// would answer one by one (issue 11: such a backlog once made a
	// leader resend its log tail ~300 times). The network contract allows
	// losing any message. Default 1s.
	MaxQueueAge time.Duration
	// MaxMessageBytes is the largest message, port plus body, the transport
	// carries; Send refuses larger ones and counts them. gRPC's message
	// size limits derive from it, so every node of a cluster must use the
	// same value. Default 16 MiB.
	MaxMessageBytes int

	// DialTimeout bounds connecting to a peer and the handshake on the new
	// stream. Default 5s.
	DialTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait before dialling a peer again
	// after a failure; it doubles from BackoffMin up to BackoffMax, and each
	// wait is drawn uniformly from [w/2, w) so that nodes that lost a peer
	// together do not dial it in lockstep. Defaults 100ms and 5s.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// KeepaliveInterval is how long a connection may be silent before a
	// ping checks it, and KeepaliveTimeout how long the ping may go
	// unanswered before the connection is declared dead. gRPC's client
	// never pings more often than every 10s. Defaults 10s and 5s.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration

	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultQueueMessages     = 4096
	DefaultQueueBytes        = 64 << 20
	DefaultBatchBytes        = 1 << 20
	DefaultMaxMessageBytes   = 16 << 20
	DefaultMaxQueueAge       = time.Second
	DefaultDialTimeout       = 5 * time.Second
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = 5 * time.Second
	DefaultKeepaliveInterval = 10 * time.Second
	DefaultKeepaliveTimeout  = 5 * time.Second
)

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	setDefault(&o.QueueMessages, DefaultQueueMessages)
	setDefault(&o.QueueBytes, DefaultQueueBytes)
	setDefault(&o.BatchBytes, DefaultBatchBytes)
	setDefault(&o.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&o.MaxQueueAge, DefaultMaxQueueAge)
	setDefault(&o.DialTimeout, DefaultDialTimeout)
	setDefault(&o.BackoffMin, DefaultBackoffMin)
	setDefault(&o.BackoffMax, DefaultBackoffMax)
	setDefault(&o.KeepaliveInterval, DefaultKeepaliveInterval)
	setDefault(&o.KeepaliveTimeout, DefaultKeepaliveTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// Validate reports every problem with o at once. Call it after
// EnsureDefaults.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Self == 0 {
		bad("Self is required (node 0 is never valid)")
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		bad("Listen %q: %v", o.Listen, err)
	}
	for id, addr := range o.Peers {
		if err := checkPeer(id, addr); err != nil {
			bad("Peers: %v", err)
		}
	}
	if o.QueueMessages < 1 {
		bad("QueueMessages %d: want at least 1", o.QueueMessages)
	}
	if o.MaxMessageBytes < 1 || o.MaxMessageBytes > 1<<30 {
		bad("MaxMessageBytes %d: want 1 to 1 GiB", o.MaxMessageBytes)
	}
	if o.QueueBytes < o.MaxMessageBytes {
		bad("QueueBytes %d: want at least MaxMessageBytes (%d)", o.QueueBytes, o.MaxMessageBytes)
	}
	if o.BatchBytes < 1 || o.BatchBytes > o.MaxMessageBytes {
		bad("BatchBytes %d: want 1 to MaxMessageBytes (%d)", o.BatchBytes, o.MaxMessageBytes)
	}
	if o.MaxQueueAge <= 0 {
		bad("MaxQueueAge %v: want positive", o.MaxQueueAge)
	}
	if o.DialTimeout <= 0 {
		bad("DialTimeout %v: want positive", o.DialTimeout)
	}
	if o.BackoffMin <= 0 || o.BackoffMax < o.BackoffMin {
		bad("BackoffMin %v, BackoffMax %v: want 0 < min <= max", o.BackoffMin, o.BackoffMax)
	}
	if (o.ServerTLS == nil) != (o.ClientTLS == nil) {
		bad("ServerTLS and ClientTLS: set both or neither (a node must dial its peers as they listen)")
	}
	if o.KeepaliveInterval <= 0 || o.KeepaliveTimeout <= 0 {
		bad("KeepaliveInterval %v, KeepaliveTimeout %v: want positive", o.KeepaliveInterval, o.KeepaliveTimeout)
	}
	return errors.Join(errs...)
}

func checkPeer(id kernel.NodeID, addr string) error {
	if id == 0 {
		return fmt.Errorf("node 0 (at %q) is never valid", addr)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("node %d: address %q: %v", id, addr, err)
	}
	return nil
}

// maxFrameBytes is the gRPC message size limit: a batch holds at most
// max(BatchBytes, one message) of encoded messages, and a message's length
// varints add at most 2*MaxVarintLen64 to its MaxMessageBytes.
func (o *Options) maxFrameBytes() int {
	return frameOverhead + o.MaxMessageBytes + 2*10
}
