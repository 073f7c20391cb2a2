// Package pgwire is the wire half of Orbit's SQL front end: a TCP listener
// speaking the PostgreSQL frontend/backend protocol 3.0 (as PostgreSQL 15
// does), messages read and written with jackc/pgx's pgproto3, statements
// handed to a Session (the SQL engine's query.Session) opened per
// connection.
//
// What it speaks:
//
//   - start-up: SSLRequest (answered 'S' and TLS when Options.TLS is set,
//     'N' otherwise), GSSEncRequest ('N'), CancelRequest, StartupMessage
//     3.0 (a later 3.x minor, or "_pq_." options, get NegotiateProtocolVersion
//     down to 3.0; another major version is FATAL 0A000 "unsupported
//     frontend protocol", as in PostgreSQL). Authentication is trust, or
//     SCRAM-SHA-256 with Options.Credentials; Options.Open may still refuse
//     the session (its *query.Error goes to the client as FATAL);
//   - the simple query protocol (several statements in one string; the
//     first error skips the rest) and the extended one (Parse, Bind,
//     Describe, Execute with a row limit and PortalSuspended, Close, Sync,
//     Flush; after an error, messages are discarded until Sync);
//   - CancelRequest: the statement running on that backend (pid and secret
//     from BackendKeyData) has its context cancelled, and fails with 57014
//     unless the engine words it otherwise;
//   - FunctionCall is refused (0A000); CopyData, CopyDone and CopyFail
//     outside COPY are ignored, as PostgreSQL does (COPY is not supported).
//
// Bad input is the connection's problem only: an unknown message type or a
// malformed message gets a FATAL 08P01 ErrorResponse and that connection is
// closed; others carry on. Limits (PostgreSQL's in parentheses):
//
//   - a message body is at most Options.MaxMessage, 64 MiB by default
//     (1 GiB, MaxAllocSize): a body is held whole in memory while it is
//     decoded, so a handful of clients sending 1 GiB each could exhaust
//     the node; 64 MiB is also the Redis adapter's largest argument;
//   - a start-up packet is at most 10,000 bytes (MAX_STARTUP_PACKET_LENGTH);
//     a bad one closes the connection without a reply, as in PostgreSQL;
//   - start-up (TLS handshake included) must finish within 60 s
//     (authentication_timeout).
//
// Output is buffered and sent at ReadyForQuery, at Flush, before waiting
// for the client's next bytes, and every 64 KiB of rows, so a large result
// streams instead of piling up in memory.
//
// This is the production edge, outside the runtime contract: it uses
// sockets, goroutines and the wall clock directly (internal/lint does not
// cover it), as adapters/respwire does.
package pgwire

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/internal/listen"
	"github.com/orbitkernel/orbit/internal/scram"
	"github.com/orbitkernel/orbit/query"
)

// Session is one connection's SQL session (query.Session).
type Session interface {
	// Split cuts a simple-protocol query string into its statements' texts
	// (none for an empty or all-comment string: answer EmptyQueryResponse).
	// A syntax error is a *query.Error.
	Split(sql string) ([]string, error)
	// BeginImplicit and EndImplicit bracket the statements of one
	// simple-protocol query string of more than one statement: they run
	// as one transaction (unless they hold their own BEGIN/COMMIT), as
	// in PostgreSQL. EndImplicit commits it, or rolls it back when failed
	// (a statement failed); its error is the commit's.
	BeginImplicit()
	EndImplicit(ctx context.Context, failed bool) error
	// Prepare parses and analyses one statement; paramOIDs are the types
	// the client gave (0: infer).
	Prepare(ctx context.Context, sql string, paramOIDs []uint32) (query.Statement, error)
	// Status is the transaction status for ReadyForQuery
	// (query.StatusIdle/InTxn/Failed).
	Status() byte
	// Notices drains the notices/warnings raised since the last call (sent
	// each as NoticeResponse, before the statement's CommandComplete).
	Notices() []*query.Error
	// Parameters is every reported run-time parameter and its current
	// value (server_version, client_encoding, DateStyle, TimeZone, ...):
	// all are sent as ParameterStatus at start-up, and after each statement
	// those that changed since last sent.
	Parameters() map[string]string
	Close()
}

// DefaultMaxMessage is Options.MaxMessage's default; see the package
// comment.
const DefaultMaxMessage = 64 << 20

const (
	startupTimeout = 60 * time.Second // PostgreSQL's authentication_timeout
	shutdownWrite  = 5 * time.Second  // how long Shutdown lets a write to a client that does not read block
	flushEvery     = 64 << 10         // rows buffered before a flush
	firstPID       = 10000            // BackendKeyData process ids count from here
)

// Options configure a Listener.
type Options struct {
	// Addr is the TCP address to listen on ("127.0.0.1:5432").
	Addr string
	// TLS, if set, is offered to clients that ask for it (SSLRequest is
	// answered 'S' and the connection goes on over TLS). Nil (the default):
	// SSLRequest is answered 'N' and the client carries on in the clear or
	// gives up, as its sslmode says. Clients that do not ask are served in
	// the clear either way, unless RequireTLS.
	TLS *tls.Config
	// RequireTLS refuses, with 28000 after the StartupMessage, a client
	// that did not switch to TLS (orbit serve sets it with --certs-dir,
	// as a pg_hba.conf of only hostssl lines would).
	RequireTLS bool
	// OnAuthFailure, if set, hears of every failed password
	// authentication (a wrong password, or a user that may not log in),
	// with the user name the client gave.
	OnAuthFailure func(user string)
	// Open starts the session of a connection once it has authenticated:
	// pid is the backend process ID the client is told (BackendKeyData;
	// pg_backend_pid() should answer it), user and database as the start-up packet gives them (database
	// defaults to user), params the packet's other parameters
	// (application_name, client_encoding, DateStyle, options, ...).
	// Its error (a *query.Error such as 53300 too_many_connections or
	// 3D000 invalid_catalog_name) goes to the client as a FATAL
	// ErrorResponse and the connection is closed. ctx ends if the
	// listener shuts down or start-up times out. Required.
	Open func(ctx context.Context, pid uint32, user, database string, params map[string]string) (Session, error)
	// Credentials, if set, makes every connection authenticate with
	// SCRAM-SHA-256 against the verifier it returns for the start-up
	// packet's user (nil: the user may not log in: no such role, no
	// password). Nil (the default): trust, every user is let in.
	Credentials func(ctx context.Context, user string) (*scram.Verifier, error)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// MaxMessage bounds a message's body in bytes; a larger one is a
	// protocol violation (FATAL 08P01) for that connection. 0:
	// DefaultMaxMessage.
	MaxMessage int
}

// Listener serves the PostgreSQL protocol on one address.
type Listener struct {
	opts   Options
	ln     net.Listener
	log    *slog.Logger
	ctx    context.Context // parent of every statement's context; cancelled by Shutdown
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool
	conns   map[*conn]struct{}
	byPID   map[uint32]*conn // started connections, for CancelRequest
	nextPID uint32
	wg      sync.WaitGroup
}

// Listen opens the address. The error of a busy port reads "listen ADDR:
// address already in use".
func Listen(opts Options) (*Listener, error) {
	if opts.Open == nil {
		return nil, errors.New("pgwire: Options.Open is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = DefaultMaxMessage
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, listen.Error(opts.Addr, err)
	}
	l := &Listener{opts: opts, ln: ln, log: opts.Logger, conns: map[*conn]struct{}{},
		byPID: map[uint32]*conn{}, nextPID: firstPID}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l, nil
}

// Addr is the address listened on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts connections until Shutdown, each served on its own
// goroutine.
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
			l.log.Warn("pgwire: accept", "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		c := &conn{l: l, nc: nc, rw: nc, log: l.log.With("remote", nc.RemoteAddr().String())}
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			nc.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go c.serve()
	}
}

// Shutdown stops accepting, cancels the statements running, and closes
// every connection: each is sent FATAL 57P01 "terminating connection due
// to administrator command" (a running statement's once it has stopped). It
// returns once every connection's goroutine has ended; if ctx ends first,
// the sockets are closed under them. A client that does not read holds
// its connection up at most 5 s.
func (l *Listener) Shutdown(ctx context.Context) {
	l.mu.Lock()
	l.closing = true
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.ln.Close()
	// Mark the connections first, so that a statement stopped by the
	// cancel below is reported as the shutdown (57P01), not as an error of
	// its own.
	for _, c := range conns {
		c.terminate()
	}
	l.cancel() // every statement's context derives from l.ctx
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.nc.Close()
	}
	<-done
}

// register gives a started connection its process id, for CancelRequest.
// It returns false if the listener is shutting down.
func (l *Listener) register(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	for {
		pid := l.nextPID
		l.nextPID++
		if l.nextPID == 0 || l.nextPID > 1<<31-1 { // stay a positive int32, as clients read it
			l.nextPID = firstPID
		}
		if _, used := l.byPID[pid]; !used {
			c.pid = pid
			l.byPID[pid] = c
			return true
		}
	}
}

// forget drops an ended connection.
func (l *Listener) forget(c *conn) {
	l.mu.Lock()
	delete(l.conns, c)
	if c.pid != 0 && l.byPID[c.pid] == c {
		delete(l.byPID, c.pid)
	}
	l.mu.Unlock()
}

// cancelRequest cancels the statement running on the backend pid, if the
// secret matches; a wrong or stale key is ignored (PostgreSQL logs it and
// replies nothing either way).
func (l *Listener) cancelRequest(pid uint32, secret []byte) {
	l.mu.Lock()
	c := l.byPID[pid]
	l.mu.Unlock()
	if c == nil || !c.secretMatches(secret) {
		l.log.Debug("pgwire: cancel request for no such backend", "pid", pid)
		return
	}
	c.cancelStatement()
}
