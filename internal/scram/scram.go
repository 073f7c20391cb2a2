// Package scram is SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses
// it: the verifier a role's password is kept as (never the password),
// and the server's side of the exchange. No channel binding is offered
// (SCRAM-SHA-256, not -PLUS), so a client's GS2 header is "n" or "y".
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mechanism is the SASL mechanism's name.
const Mechanism = "SCRAM-SHA-256"

// DefaultIterations is PostgreSQL's scram_iterations default.
const DefaultIterations = 4096

// ErrAuth: the client's proof does not match (a wrong password).
var ErrAuth = errors.New("scram: authentication failed")

// ErrProtocol: a message does not follow the exchange.
var ErrProtocol = errors.New("scram: malformed message")

// Verifier is what the server keeps of a password.
type Verifier struct {
	Iterations           int
	Salt                 []byte
	StoredKey, ServerKey []byte
}

// NewVerifier derives the verifier of password with a 16-byte salt read
// from rand.
func NewVerifier(password string, rand io.Reader) (Verifier, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return Verifier{}, err
	}
	return derive(password, salt, DefaultIterations)
}

func derive(password string, salt []byte, iterations int) (Verifier, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return Verifier{}, err
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return Verifier{Iterations: iterations, Salt: salt, StoredKey: stored[:], ServerKey: mac(salted, "Server Key")}, nil
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

var b64 = base64.StdEncoding

// String is the verifier as PostgreSQL's pg_authid.rolpassword holds it.
func (v Verifier) String() string {
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", v.Iterations, b64.EncodeToString(v.Salt), b64.EncodeToString(v.StoredKey), b64.EncodeToString(v.ServerKey))
}

// ParseVerifier reads String's form.
func ParseVerifier(s string) (Verifier, error) {
	bad := fmt.Errorf("%w: not a SCRAM-SHA-256 verifier", ErrProtocol)
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return Verifier{}, bad
	}
	iterSalt, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return Verifier{}, bad
	}
	iter, salt, ok1 := strings.Cut(iterSalt, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return Verifier{}, bad
	}
	var v Verifier
	var err error
	if v.Iterations, err = strconv.Atoi(iter); err != nil || v.Iterations < 1 {
		return Verifier{}, bad
	}
	for _, f := range []struct {
		dst *[]byte
		src string
	}{{&v.Salt, salt}, {&v.StoredKey, stored}, {&v.ServerKey, server}} {
		if *f.dst, err = b64.DecodeString(f.src); err != nil {
			return Verifier{}, bad
		}
	}
	if len(v.StoredKey) != sha256.Size || len(v.ServerKey) != sha256.Size {
		return Verifier{}, bad
	}
	return v, nil
}

// Exchange is the server's side of one authentication.
type Exchange struct {
	v                      Verifier
	clientFirstBare, nonce string
	serverFirst            string
	gs2                    string
	done                   bool
}

// Start answers the client-first-message with the server-first-message;
// nonce is the server's random part (printable, no comma).
func Start(v Verifier, clientFirst []byte, nonce string) (*Exchange, []byte, error) {
	msg := string(clientFirst)
	// gs2-header: "n,," or "y,," (an authzid is refused), then the bare part.
	var gs2 string
	switch {
	case strings.HasPrefix(msg, "n,,"), strings.HasPrefix(msg, "y,,"):
		gs2, msg = msg[:3], msg[3:]
	case strings.HasPrefix(msg, "p="):
		return nil, nil, fmt.Errorf("%w: channel binding was not offered", ErrProtocol)
	default:
		return nil, nil, fmt.Errorf("%w: a client-first-message must start with n,, or y,,", ErrProtocol)
	}
	attrs := strings.Split(msg, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) < 3 {
		return nil, nil, fmt.Errorf("%w: a client-first-message needs n= and r=", ErrProtocol)
	}
	e := &Exchange{v: v, clientFirstBare: msg, gs2: gs2, nonce: attrs[1][2:] + nonce}
	e.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", e.nonce, b64.EncodeToString(v.Salt), v.Iterations)
	return e, []byte(e.serverFirst), nil
}

// Finish checks the client-final-message's proof and answers the
// server-final-message (ErrAuth: a wrong password).
func (e *Exchange) Finish(clientFinal []byte) ([]byte, error) {
	if e.done {
		return nil, fmt.Errorf("%w: the exchange is over", ErrProtocol)
	}
	e.done = true
	msg := string(clientFinal)
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, fmt.Errorf("%w: a client-final-message needs p=", ErrProtocol)
	}
	withoutProof, proof64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || attrs[0] != "c="+b64.EncodeToString([]byte(e.gs2)) || attrs[1] != "r="+e.nonce {
		return nil, fmt.Errorf("%w: the client-final-message's binding or nonce does not match", ErrProtocol)
	}
	proof, err := b64.DecodeString(proof64)
	if err != nil || len(proof) != sha256.Size {
		return nil, fmt.Errorf("%w: a malformed proof", ErrProtocol)
	}
	auth := e.clientFirstBare + "," + e.serverFirst + "," + withoutProof
	sig := mac(e.v.StoredKey, auth)
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ sig[j]
	}
	stored := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(stored[:], e.v.StoredKey) != 1 {
		return nil, ErrAuth
	}
	return []byte("v=" + b64.EncodeToString(mac(e.v.ServerKey, auth))), nil
}
