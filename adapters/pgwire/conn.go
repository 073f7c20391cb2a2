package pgwire

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/orbitkernel/orbit/query"
)

// conn is one client connection, served by one goroutine (serve): it
// reads a message, handles it, and reads the next. Only CancelRequest and
// Shutdown reach it from other goroutines, through mu.
type conn struct {
	l   *Listener
	nc  net.Conn      // the socket
	rw  io.ReadWriter // nc, or the TLS connection over it
	log *slog.Logger
	be  *pgproto3.Backend // set once the StartupMessage arrives

	sess   Session
	pid    uint32
	secret [4]byte

	dirty     bool  // messages are buffered in be, unsent
	unflushed int   // bytes of rows buffered since the last flush
	ioErr     error // the socket failed (read or write): the connection is over

	stmts    map[string]*prepared // prepared statements by name ("" unnamed)
	portals  map[string]*portal
	nextID   uint64
	reported map[string]string // run-time parameters as last sent
	skipping bool              // an extended-protocol error: discard until Sync

	mu          sync.Mutex
	stmtCancel  context.CancelFunc // the running statement's, nil when idle
	userCancel  bool               // stmtCancel was called by a CancelRequest
	terminating bool               // Shutdown: end the connection
}

// prepared is a prepared statement; empty when its text held none (its
// Execute answers EmptyQueryResponse, as PostgreSQL's).
type prepared struct {
	id    uint64
	stmt  query.Statement
	empty bool
}

// portal is a bound statement and the prepared statement it came from.
type portal struct {
	stmtID uint64
	p      query.Portal
	empty  bool
}

// errTerminate ends a connection at the client's Terminate.
var errTerminate = errors.New("terminate")

func (c *conn) serve() {
	defer c.l.wg.Done()
	defer func() {
		c.l.forget(c)
		c.nc.Close()
	}()
	if !c.startup() {
		return
	}
	defer c.sess.Close()
	c.stmts, c.portals = map[string]*prepared{}, map[string]*portal{}
	for {
		msg, err := c.be.Receive()
		if err != nil {
			switch {
			case c.isTerminating():
				c.sendFatal(errShutdown)
			case c.ioErr != nil:
				if !errors.Is(c.ioErr, io.EOF) && !errors.Is(c.ioErr, net.ErrClosed) {
					c.log.Debug("pgwire: read", "err", c.ioErr)
				}
			default:
				c.sendFatal(protocolViolation(err))
			}
			return
		}
		if c.skipping {
			switch msg.(type) {
			case *pgproto3.Sync, *pgproto3.Terminate:
			default:
				continue
			}
		}
		err = c.handle(msg)
		var qe *query.Error
		if errors.As(err, &qe) && c.ioErr == nil {
			c.sendFatal(qe)
		}
		if err != nil || c.ioErr != nil {
			return
		}
	}
}

// handle answers one message. Errors of a statement go to the client and
// leave a nil error; a non-nil one ends the connection (a *query.Error is
// first sent as FATAL).
func (c *conn) handle(msg pgproto3.FrontendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.Query:
		return c.simpleQuery(m.String)
	case *pgproto3.Parse:
		return c.parse(m)
	case *pgproto3.Bind:
		return c.bind(m)
	case *pgproto3.Describe:
		return c.describe(m)
	case *pgproto3.Execute:
		return c.execute(m)
	case *pgproto3.Close:
		return c.close(m)
	case *pgproto3.Sync:
		c.skipping = false
		return c.ready()
	case *pgproto3.Flush:
		return c.flush()
	case *pgproto3.Terminate:
		return errTerminate
	case *pgproto3.FunctionCall:
		// Fast-path function calls are a simple-protocol exchange: an
		// error, then ReadyForQuery.
		if err := c.report(newError("ERROR", codeFeatureNotSupported, "function call protocol is not supported")); err != nil {
			return err
		}
		return c.ready()
	case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
		// Ignored outside COPY, as PostgreSQL does: a client may still be
		// sending data for a COPY that already failed.
		return nil
	default:
		return newError("FATAL", codeProtocolViolation, "unexpected message %T", msg)
	}
}

// simpleQuery runs a Query message: each statement of the string in turn,
// the first error skipping the rest, then ReadyForQuery.
func (c *conn) simpleQuery(sql string) error {
	// As in PostgreSQL, a simple query destroys the unnamed statement and
	// portal.
	delete(c.stmts, "")
	delete(c.portals, "")
	ctx, end := c.begin()
	defer end()
	texts, err := c.sess.Split(sql)
	switch {
	case err != nil:
		if err := c.report(err); err != nil {
			return err
		}
	case len(texts) == 0:
		c.send(&pgproto3.EmptyQueryResponse{})
	}
	implicit := len(texts) > 1
	if implicit {
		c.sess.BeginImplicit()
	}
	failed := false
	for _, text := range texts {
		if err := c.runSimple(ctx, text); err != nil {
			failed = true
			if err := c.report(err); err != nil {
				return err
			}
			break
		}
	}
	if implicit {
		if err := c.sess.EndImplicit(ctx, failed); err != nil {
			if err := c.report(err); err != nil {
				return err
			}
		}
	}
	return c.ready()
}

// runSimple runs one statement of a simple query.
func (c *conn) runSimple(ctx context.Context, text string) error {
	stmt, err := c.sess.Prepare(ctx, text, nil)
	if err != nil {
		return err
	}
	p, err := stmt.Bind(nil, nil, nil)
	if err != nil {
		return err
	}
	if cp := p.Copy(); cp != nil {
		tag, err := c.copy(ctx, p, cp)
		if err != nil {
			return err
		}
		c.sendNotices()
		c.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
		return nil
	}
	if cols := p.Columns(); cols != nil {
		c.send(rowDescription(cols))
	}
	tag, _, err := p.Execute(ctx, 0, c.emitRow)
	if err != nil {
		return err
	}
	c.sendNotices()
	c.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	c.sendParameters()
	return nil
}

func (c *conn) parse(m *pgproto3.Parse) error {
	if _, ok := c.stmts[m.Name]; ok && m.Name != "" {
		return c.extError(newError("ERROR", codeDuplicatePrepared, "prepared statement \"%s\" already exists", m.Name))
	}
	ctx, end := c.begin()
	defer end()
	// Split first, as PostgreSQL's parser does: an empty text is a valid
	// statement (EmptyQueryResponse), several are refused.
	texts, err := c.sess.Split(m.Query)
	if err != nil {
		return c.extError(err)
	}
	c.nextID++
	ps := &prepared{id: c.nextID}
	switch len(texts) {
	case 0:
		ps.empty = true
	case 1:
		ps.stmt, err = c.sess.Prepare(ctx, m.Query, slices.Clone(m.ParameterOIDs))
		if err != nil {
			return c.extError(err)
		}
	default:
		return c.extError(newError("ERROR", codeSyntaxError, "cannot insert multiple commands into a prepared statement"))
	}
	c.stmts[m.Name] = ps // an unnamed one replaces the last
	c.send(&pgproto3.ParseComplete{})
	return nil
}

func (c *conn) bind(m *pgproto3.Bind) error {
	ps, ok := c.stmts[m.PreparedStatement]
	if !ok {
		return c.extError(undefinedStatement(m.PreparedStatement))
	}
	if _, ok := c.portals[m.DestinationPortal]; ok && m.DestinationPortal != "" {
		return c.extError(newError("ERROR", codeDuplicateCursor, "cursor \"%s\" already exists", m.DestinationPortal))
	}
	pt := &portal{stmtID: ps.id, empty: ps.empty}
	if !ps.empty {
		n := len(m.Parameters)
		if want := len(ps.stmt.Params()); n != want {
			return c.extError(newError("ERROR", codeProtocolViolation,
				"bind message supplies %d parameters, but prepared statement \"%s\" requires %d", n, m.PreparedStatement, want))
		}
		if f := len(m.ParameterFormatCodes); f > 1 && f != n {
			return c.extError(newError("ERROR", codeProtocolViolation,
				"bind message has %d parameter formats but %d parameters", f, n))
		}
		// The values point into the read buffer, which the next message
		// overwrites; the portal may keep them until it is executed.
		params := make([][]byte, n)
		for i, v := range m.Parameters {
			if v != nil {
				params[i] = slices.Clone(v)
			}
		}
		p, err := ps.stmt.Bind(params, slices.Clone(m.ParameterFormatCodes), slices.Clone(m.ResultFormatCodes))
		if err != nil {
			return c.extError(err)
		}
		pt.p = p
	}
	c.portals[m.DestinationPortal] = pt // an unnamed one replaces the last
	c.send(&pgproto3.BindComplete{})
	return nil
}

func (c *conn) describe(m *pgproto3.Describe) error {
	switch m.ObjectType {
	case 'S':
		ps, ok := c.stmts[m.Name]
		if !ok {
			return c.extError(undefinedStatement(m.Name))
		}
		if ps.empty {
			c.send(&pgproto3.ParameterDescription{})
			c.send(&pgproto3.NoData{})
			return nil
		}
		c.send(&pgproto3.ParameterDescription{ParameterOIDs: ps.stmt.Params()})
		c.describeRows(ps.stmt.Columns())
	case 'P':
		pt, ok := c.portals[m.Name]
		if !ok {
			return c.extError(undefinedPortal(m.Name))
		}
		if pt.empty {
			c.send(&pgproto3.NoData{})
			return nil
		}
		c.describeRows(pt.p.Columns())
	default:
		return c.extError(newError("ERROR", codeProtocolViolation, "invalid DESCRIBE message subtype %d", m.ObjectType))
	}
	return nil
}

func (c *conn) describeRows(cols []query.Column) {
	if cols == nil {
		c.send(&pgproto3.NoData{})
		return
	}
	c.send(rowDescription(cols))
}

func (c *conn) execute(m *pgproto3.Execute) error {
	pt, ok := c.portals[m.Portal]
	if !ok {
		return c.extError(undefinedPortal(m.Portal))
	}
	if pt.empty {
		c.send(&pgproto3.EmptyQueryResponse{})
		return nil
	}
	ctx, end := c.begin()
	defer end()
	if cp := pt.p.Copy(); cp != nil {
		tag, err := c.copy(ctx, pt.p, cp)
		if err != nil {
			return c.extError(err)
		}
		c.sendNotices()
		c.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
		return nil
	}
	maxRows := int(m.MaxRows)
	if maxRows < 0 { // above MaxInt32 on a 32-bit int
		maxRows = 0
	}
	tag, suspended, err := pt.p.Execute(ctx, maxRows, c.emitRow)
	if err != nil {
		return c.extError(err)
	}
	c.sendNotices()
	if suspended {
		c.send(&pgproto3.PortalSuspended{})
	} else {
		c.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	}
	c.sendParameters()
	return nil
}

// close answers Close: CloseComplete even for a name that does not exist.
// Closing a statement closes the portals bound from it, as in PostgreSQL.
func (c *conn) close(m *pgproto3.Close) error {
	switch m.ObjectType {
	case 'S':
		if ps, ok := c.stmts[m.Name]; ok {
			delete(c.stmts, m.Name)
			for name, pt := range c.portals {
				if pt.stmtID == ps.id {
					delete(c.portals, name)
				}
			}
		}
	case 'P':
		delete(c.portals, m.Name)
	default:
		return c.extError(newError("ERROR", codeProtocolViolation, "invalid CLOSE message subtype %d", m.ObjectType))
	}
	c.send(&pgproto3.CloseComplete{})
	return nil
}

// ready ends a simple query, a Sync or a function call: leftover notices
// and changed parameters, then ReadyForQuery, flushed. Outside a
// transaction block the portals are dropped, as PostgreSQL drops them at
// the end of the transaction they were made in.
func (c *conn) ready() error {
	c.sendNotices()
	c.sendParameters()
	status := c.sess.Status()
	if status == query.StatusIdle {
		clear(c.portals)
	}
	c.send(&pgproto3.ReadyForQuery{TxStatus: status})
	return c.flush()
}

// extError reports an extended-protocol message's error and discards the
// messages that follow until Sync.
func (c *conn) extError(err error) error {
	c.skipping = true
	return c.report(err)
}

// report sends a statement's error (with the notices raised before it). It
// returns non-nil when the connection is to end instead: the socket failed,
// the listener shuts down, or the error is FATAL.
func (c *conn) report(err error) error {
	if c.ioErr != nil {
		return c.ioErr
	}
	if c.isTerminating() {
		return errShutdown
	}
	c.mu.Lock()
	userCancel := c.userCancel
	c.mu.Unlock()
	e := asQueryError(err, userCancel)
	c.sendNotices()
	if fatal(e) {
		return e
	}
	c.send(errorResponse(e))
	return nil
}

// sendFatal sends e and flushes: the connection closes next.
func (c *conn) sendFatal(e *query.Error) {
	e2 := *e
	e2.Severity = "FATAL"
	c.send(errorResponse(&e2))
	_ = c.flush()
}

func (c *conn) sendNotices() {
	for _, n := range c.sess.Notices() {
		c.send(noticeResponse(n))
	}
}

// sendParameters sends the run-time parameters whose values changed since
// last sent (all of them the first time), in name order.
func (c *conn) sendParameters() {
	params := c.sess.Parameters()
	names := make([]string, 0, len(params))
	for k, v := range params {
		if old, ok := c.reported[k]; !ok || old != v {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		c.send(&pgproto3.ParameterStatus{Name: k, Value: params[k]})
		c.reported[k] = params[k]
	}
}

// emitRow sends a row; the engine may reuse row's buffers once it returns
// (Send encodes at once). Every flushEvery bytes the rows are flushed, so a
// big result streams to the client (and a client that does not read stops
// the statement by TCP's push-back).
func (c *conn) emitRow(row [][]byte) error {
	c.send(&pgproto3.DataRow{Values: row})
	n := 7
	for _, v := range row {
		n += 4 + len(v)
	}
	c.unflushed += n
	if c.unflushed >= flushEvery {
		return c.flush()
	}
	return nil
}

func (c *conn) send(m pgproto3.BackendMessage) {
	c.be.Send(m)
	c.dirty = true
}

// flush writes the buffered messages.
func (c *conn) flush() error {
	if !c.dirty {
		return nil
	}
	c.dirty, c.unflushed = false, 0
	if err := c.be.Flush(); err != nil {
		if c.ioErr == nil {
			c.ioErr = err
		}
		return err
	}
	return nil
}

// begin makes the context of a message's statements, which a
// CancelRequest or Shutdown cancels; end releases it.
func (c *conn) begin() (ctx context.Context, end func()) {
	ctx, cancel := context.WithCancel(c.l.ctx)
	c.mu.Lock()
	c.stmtCancel, c.userCancel = cancel, false
	c.mu.Unlock()
	return ctx, func() {
		c.mu.Lock()
		c.stmtCancel = nil
		c.mu.Unlock()
		cancel()
	}
}

// cancelStatement cancels the running statement, if any (CancelRequest).
func (c *conn) cancelStatement() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stmtCancel != nil {
		c.userCancel = true
		c.stmtCancel()
	}
}

// terminate asks the connection to end (Shutdown): a statement running is
// cancelled (through the listener's context), a read waiting wakes, and
// writes to a client that does not read give up after shutdownWrite.
func (c *conn) terminate() {
	c.mu.Lock()
	c.terminating = true
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now())
	_ = c.nc.SetWriteDeadline(time.Now().Add(shutdownWrite))
}

func (c *conn) isTerminating() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.terminating
}

// sockReader is what the connection reads through. Before it waits for the
// client's bytes it flushes what is buffered for the client (the client
// may be waiting for it), and once Shutdown began it reads nothing more.
// It records the first socket error, to tell a client gone from a message
// that is malformed.
type sockReader struct{ c *conn }

func (r sockReader) Read(p []byte) (int, error) {
	c := r.c
	if c.ioErr != nil {
		return 0, c.ioErr
	}
	if c.be != nil {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	if c.isTerminating() {
		c.ioErr = errShutdown
		return 0, errShutdown
	}
	n, err := c.rw.Read(p)
	if err != nil {
		c.ioErr = err
	}
	return n, err
}

// protocolViolation words a message pgproto3 could not read.
func protocolViolation(err error) *query.Error {
	var big *pgproto3.ExceededMaxBodyLenErr
	if errors.As(err, &big) {
		return newError("FATAL", codeProtocolViolation, "invalid message length %d (the limit is %d)", big.ActualBodyLen, big.MaxExpectedBodyLen)
	}
	if t, ok := strings.CutPrefix(err.Error(), "unknown message type: "); ok && len(t) > 0 {
		return newError("FATAL", codeProtocolViolation, "invalid frontend message type %d", t[0])
	}
	return newError("FATAL", codeProtocolViolation, "invalid message format: %s", err.Error())
}

func undefinedStatement(name string) *query.Error {
	if name == "" {
		return newError("ERROR", codeUndefinedPrepared, "unnamed prepared statement does not exist")
	}
	return newError("ERROR", codeUndefinedPrepared, "prepared statement \"%s\" does not exist", name)
}

func undefinedPortal(name string) *query.Error {
	return newError("ERROR", codeUndefinedCursor, "portal \"%s\" does not exist", name)
}

// rowDescription describes cols as RowDescription does.
func rowDescription(cols []query.Column) *pgproto3.RowDescription {
	fields := make([]pgproto3.FieldDescription, len(cols))
	for i, col := range cols {
		fields[i] = pgproto3.FieldDescription{
			Name:                 []byte(col.Name),
			TableOID:             col.TableOID,
			TableAttributeNumber: uint16(col.Attr),
			DataTypeOID:          col.TypeOID,
			DataTypeSize:         col.TypeSize,
			TypeModifier:         col.TypeMod,
			Format:               col.Format,
		}
	}
	return &pgproto3.RowDescription{Fields: fields}
}

// copy runs a COPY statement's sub-protocol: CopyOutResponse, a CopyData
// per line and CopyDone for COPY TO STDOUT; CopyInResponse, then the
// client's CopyData until CopyDone (or CopyFail) for COPY FROM STDIN.
// Flush and Sync met during COPY IN are ignored, as PostgreSQL does.
func (c *conn) copy(ctx context.Context, p query.Portal, cp *query.Copy) (string, error) {
	format := byte(0)
	if cp.Binary {
		format = 1
	}
	codes := make([]uint16, cp.Columns)
	for i := range codes {
		codes[i] = uint16(format)
	}
	if !cp.In {
		c.send(&pgproto3.CopyOutResponse{OverallFormat: format, ColumnFormatCodes: codes})
		tag, _, err := p.Execute(ctx, 0, func(row [][]byte) error {
			c.send(&pgproto3.CopyData{Data: row[0]})
			c.unflushed += 5 + len(row[0])
			if c.unflushed >= flushEvery {
				return c.flush()
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		c.send(&pgproto3.CopyDone{})
		return tag, nil
	}
	c.send(&pgproto3.CopyInResponse{OverallFormat: format, ColumnFormatCodes: codes})
	if err := c.flush(); err != nil {
		return "", err
	}
	// If the engine stops early (an error), what the client still sends
	// of this COPY is ignored: handle drops stray CopyData and CopyDone.
	return p.CopyIn(ctx, func() ([]byte, error) {
		for {
			msg, err := c.be.Receive()
			if err != nil {
				return nil, err
			}
			switch m := msg.(type) {
			case *pgproto3.CopyData:
				return append([]byte(nil), m.Data...), nil
			case *pgproto3.CopyDone:
				return nil, io.EOF
			case *pgproto3.CopyFail:
				return nil, newError("ERROR", codeQueryCanceled, "COPY from stdin failed: %s", m.Message)
			case *pgproto3.Flush, *pgproto3.Sync:
			default:
				return nil, newError("ERROR", codeProtocolViolation, "unexpected message %T during COPY from stdin", msg)
			}
		}
	})
}
