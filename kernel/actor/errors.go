package actor

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/orbitkernel/orbit/internal/codec"
	"github.com/orbitkernel/orbit/kernel"
)

// Errors a call can end with; check them with errors.Is / errors.As.
var (
	// ErrOverloaded: the actor's mailbox is full. Definite: the call did
	// not run.
	ErrOverloaded = errors.New("actor: mailbox full")
	// ErrStaleRequest: the actor already ran a later call of this client,
	// so this one (a late duplicate) is refused. Definite.
	ErrStaleRequest = errors.New("actor: a later request of this client already ran")
	// ErrUnknownType: no host runs actors of this type. Definite.
	ErrUnknownType = errors.New("actor: unknown actor type")
	// errAgain: the host could not run the call now (its activation was
	// deposed, deactivated, or its transaction's outcome is unknown); the
	// client sends it again with the same request number.
	errAgain     = errors.New("actor: try again")
	errMalformed = codec.ErrMalformed
)

// NotHereError: another node holds the actor's activation. The client
// sends the call there.
type NotHereError struct{ Node kernel.NodeID }

func (e *NotHereError) Error() string {
	return fmt.Sprintf("actor: activated on node %d", e.Node)
}

// MethodError is the actor's own error: the turn ran, refused, and changed
// nothing. Definite.
type MethodError struct{ Msg string }

func (e *MethodError) Error() string { return e.Msg }

// Codes on the wire (kernel.CodedError).
const (
	codeNotHere    = "actor.not-here"
	codeOverloaded = "actor.overloaded"
	codeStale      = "actor.stale"
	codeUnknown    = "actor.unknown-type"
	codeMethod     = "actor.method"
	codeAgain      = "actor.again"
)

// wireError is a host's error as it crosses the network.
type wireError struct {
	code   string
	detail []byte
	err    error
}

func (e *wireError) Error() string        { return e.err.Error() }
func (e *wireError) RemoteCode() string   { return e.code }
func (e *wireError) RemoteDetail() []byte { return e.detail }

// toWire codes a host's error for the caller.
func toWire(err error) error {
	var nh *NotHereError
	var me *MethodError
	switch {
	case errors.As(err, &nh):
		return &wireError{codeNotHere, binary.AppendUvarint(nil, uint64(nh.Node)), err}
	case errors.As(err, &me):
		return &wireError{codeMethod, nil, err}
	case errors.Is(err, ErrOverloaded):
		return &wireError{codeOverloaded, nil, err}
	case errors.Is(err, ErrStaleRequest):
		return &wireError{codeStale, nil, err}
	case errors.Is(err, ErrUnknownType):
		return &wireError{codeUnknown, nil, err}
	}
	return &wireError{codeAgain, nil, fmt.Errorf("%w: %v", errAgain, err)}
}

// fromWire turns a host's coded error back into the typed one; other
// errors (a timeout, a lost reply) come back as they are.
func fromWire(err error) error {
	var re *kernel.RemoteError
	if !errors.As(err, &re) {
		return err
	}
	switch re.Code {
	case codeNotHere:
		n, w := binary.Uvarint(re.Detail)
		if w <= 0 {
			return errAgain
		}
		return &NotHereError{Node: kernel.NodeID(n)}
	case codeMethod:
		return &MethodError{Msg: re.Msg}
	case codeOverloaded:
		return ErrOverloaded
	case codeStale:
		return ErrStaleRequest
	case codeUnknown:
		return ErrUnknownType
	}
	return errAgain
}
