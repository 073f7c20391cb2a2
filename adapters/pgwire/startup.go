package pgwire

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/orbitkernel/orbit/internal/scram"
)

// Start-up packet codes (the version field of packets that are not a
// StartupMessage).
const (
	cancelRequestCode = 80877102 // 1234.5678
	sslRequestCode    = 80877103 // 1234.5679
	gssEncRequestCode = 80877104 // 1234.5680
	maxStartupPacket  = 10000    // MAX_STARTUP_PACKET_LENGTH
)

// startup runs the connection's start-up: encryption negotiation, the
// StartupMessage, authentication, Open, and the first ReadyForQuery. It
// returns false when the connection is to be closed (a CancelRequest, a
// refusal, a failure); c.sess is set when it returns true.
//
// The start-up packets are read unbuffered, straight from the socket: after
// an SSLRequest the client's next bytes are its TLS handshake, which must
// not be swallowed by a buffer of the plain connection.
func (c *conn) startup() bool {
	_ = c.nc.SetReadDeadline(time.Now().Add(startupTimeout))
	sslDone, gssDone := false, false
	for {
		pkt, err := c.readStartupPacket()
		if err != nil {
			// As PostgreSQL, a bad start-up packet is logged, not answered:
			// the peer may not speak the protocol at all.
			c.log.Debug("pgwire: start-up", "err", err)
			return false
		}
		code := binary.BigEndian.Uint32(pkt)
		switch {
		case code == cancelRequestCode:
			var m pgproto3.CancelRequest
			if err := m.Decode(pkt); err == nil {
				c.l.cancelRequest(m.ProcessID, m.SecretKey)
			}
			return false // closed without a reply, as PostgreSQL does
		case code == sslRequestCode && !sslDone:
			sslDone = true
			if c.l.opts.TLS == nil {
				if _, err := c.nc.Write([]byte{'N'}); err != nil {
					return false
				}
				continue
			}
			if _, err := c.nc.Write([]byte{'S'}); err != nil {
				return false
			}
			// The handshake runs on the first read, under the start-up
			// deadline.
			c.rw = tls.Server(c.nc, c.l.opts.TLS)
			gssDone = true // no GSS encryption inside TLS
		case code == gssEncRequestCode && !gssDone:
			gssDone = true
			if _, err := c.rw.Write([]byte{'N'}); err != nil {
				return false
			}
		default:
			return c.startupMessage(code, pkt[4:])
		}
	}
}

// readStartupPacket reads one length-prefixed start-up packet (the length
// itself left out).
func (c *conn) readStartupPacket() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(sockReader{c}, hdr[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:]))) - 4
	if n < 4 || n > maxStartupPacket {
		return nil, fmt.Errorf("invalid length of startup packet: %d", n+4)
	}
	pkt := make([]byte, n)
	if _, err := io.ReadFull(sockReader{c}, pkt); err != nil {
		return nil, err
	}
	return pkt, nil
}

// startupMessage handles the StartupMessage of protocol version code with
// its parameters body, through to the first ReadyForQuery.
func (c *conn) startupMessage(code uint32, body []byte) bool {
	c.be = pgproto3.NewBackend(sockReader{c}, c.rw)
	c.be.SetMaxBodyLen(c.l.opts.MaxMessage)
	major, minor := code>>16, code&0xffff
	if major != 3 {
		c.sendFatal(newError("FATAL", codeFeatureNotSupported,
			"unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", major, minor))
		return false
	}
	params, err := startupParams(body)
	if err != nil {
		c.sendFatal(newError("FATAL", codeProtocolViolation, "%s", err.Error()))
		return false
	}
	// Protocol options ("_pq_.name") and minor versions after 3.0 are
	// declined with NegotiateProtocolVersion, and the connection goes on in
	// 3.0, as PostgreSQL does for what it does not know.
	var unknown []string
	for k := range params {
		if strings.HasPrefix(k, "_pq_.") {
			unknown = append(unknown, k)
			delete(params, k)
		}
	}
	if minor > 0 || len(unknown) > 0 {
		c.send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknown})
	}
	user, database := params["user"], params["database"]
	delete(params, "user")
	delete(params, "database")
	if user == "" {
		c.sendFatal(newError("FATAL", codeInvalidAuthorization, "no PostgreSQL user name specified in startup packet"))
		return false
	}
	if _, encrypted := c.rw.(*tls.Conn); c.l.opts.RequireTLS && !encrypted {
		// As a pg_hba.conf with only hostssl lines refuses it.
		c.sendFatal(newError("FATAL", codeInvalidAuthorization,
			"no encryption: this server takes only TLS connections (connect with sslmode=require, verify-ca or verify-full)"))
		return false
	}
	if database == "" {
		database = user
	}
	if err := c.authenticate(user, database); err != nil {
		c.sendFatal(asQueryError(err, false))
		return false
	}

	if _, err := rand.Read(c.secret[:]); err != nil || !c.l.register(c) {
		c.sendFatal(errShutdown)
		return false
	}
	ctx, cancel := context.WithTimeout(c.l.ctx, startupTimeout)
	sess, err := c.l.opts.Open(ctx, c.pid, user, database, params)
	cancel()
	if err != nil {
		e := *asQueryError(err, false)
		e.Severity = "FATAL" // the session is not there: the connection ends
		c.sendFatal(&e)
		return false
	}
	c.sess = sess
	c.reported = map[string]string{}
	c.sendParameters()
	c.send(&pgproto3.BackendKeyData{ProcessID: c.pid, SecretKey: c.secret[:]})
	if c.ready() != nil {
		sess.Close()
		return false
	}
	// From here a client may sit idle as long as it likes. Shutdown's
	// deadline is not lost to this reset: sockReader checks c.terminating,
	// which Shutdown sets first.
	_ = c.nc.SetReadDeadline(time.Time{})
	return true
}

// authenticate lets the user in: at once without Options.Credentials
// (trust), else after a SCRAM-SHA-256 exchange against the user's
// verifier. A user with no verifier (no such role, no password, no
// login) goes through the same exchange with a made-up one and fails it
// at the end, as PostgreSQL does, so that a client cannot tell which
// users exist.
func (c *conn) authenticate(user, database string) error {
	_ = database
	if c.l.opts.Credentials == nil {
		c.send(&pgproto3.AuthenticationOk{})
		return nil
	}
	failed := newError("FATAL", codeInvalidPassword, "password authentication failed for user %q", user)
	ctx, cancel := context.WithTimeout(c.l.ctx, startupTimeout)
	v, err := c.l.opts.Credentials(ctx, user)
	cancel()
	if err != nil {
		return err
	}
	known := v != nil
	if !known {
		fake, err := scram.NewVerifier(string(c.secret[:]), rand.Reader)
		if err != nil {
			return err
		}
		v = &fake
	}
	c.send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{scram.Mechanism}})
	if err := c.flush(); err != nil {
		return err
	}
	receive := func(authType uint32) (pgproto3.FrontendMessage, error) {
		if err := c.be.SetAuthType(authType); err != nil {
			return nil, err
		}
		msg, err := c.be.Receive()
		if err != nil {
			return nil, protocolViolation(err)
		}
		return msg, nil
	}
	msg, err := receive(pgproto3.AuthTypeSASL)
	if err != nil {
		return err
	}
	first, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok || first.AuthMechanism != scram.Mechanism {
		return newError("FATAL", codeProtocolViolation, "expected a SASLInitialResponse for %s", scram.Mechanism)
	}
	nonce := make([]byte, 18)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	ex, serverFirst, err := scram.Start(*v, first.Data, base64.StdEncoding.EncodeToString(nonce))
	if err != nil {
		return newError("FATAL", codeProtocolViolation, "%v", err)
	}
	c.send(&pgproto3.AuthenticationSASLContinue{Data: serverFirst})
	if err := c.flush(); err != nil {
		return err
	}
	if msg, err = receive(pgproto3.AuthTypeSASLContinue); err != nil {
		return err
	}
	final, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return newError("FATAL", codeProtocolViolation, "expected a SASLResponse")
	}
	serverFinal, err := ex.Finish(final.Data)
	switch {
	case errors.Is(err, scram.ErrProtocol):
		return newError("FATAL", codeProtocolViolation, "%v", err)
	case err != nil || !known:
		if c.l.opts.OnAuthFailure != nil {
			c.l.opts.OnAuthFailure(user)
		}
		return failed
	}
	c.send(&pgproto3.AuthenticationSASLFinal{Data: serverFinal})
	c.send(&pgproto3.AuthenticationOk{})
	return nil
}

// startupParams parses a StartupMessage's name/value pairs: NUL-terminated
// strings up to an empty name, which must be the packet's last byte.
func startupParams(body []byte) (map[string]string, error) {
	params := map[string]string{}
	for {
		i := bytes.IndexByte(body, 0)
		if i < 0 {
			return nil, errors.New("invalid startup packet layout: expected terminator as last byte")
		}
		if i == 0 {
			if len(body) != 1 {
				return nil, errors.New("invalid startup packet layout: expected terminator as last byte")
			}
			return params, nil
		}
		name := string(body[:i])
		body = body[i+1:]
		j := bytes.IndexByte(body, 0)
		if j < 0 {
			return nil, errors.New("invalid startup packet layout: expected terminator as last byte")
		}
		params[name] = string(body[:j])
		body = body[j+1:]
	}
}

// secretMatches compares a CancelRequest's key with the connection's, in
// constant time (the key is the only thing guarding the cancel).
func (c *conn) secretMatches(secret []byte) bool {
	return subtle.ConstantTimeCompare(secret, c.secret[:]) == 1
}
