package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/orbitkernel/orbit/kernel"
)

// Errors cross the network as kernel.RemoteError with a code and a binary
// detail (kernel.CodedError), and the client reads them back by code, never
// by matching their text.
const (
	codeNotLeader = "consensus.not-leader"
	codeRetry     = "consensus.retry"
	codeTooLarge  = "consensus.too-large"
	codeMalformed = "consensus.malformed"
	codeMismatch  = "consensus.range-mismatch"
)

// errRetry marks a refusal of a membership step that cannot be taken yet
// (a change in progress, a learner catching up, a leader too new): the
// leader proposed nothing, and the caller comes back.
var errRetry = errors.New("retry")

// retryf is a refusal of a membership step, to be retried: it wraps
// errRetry and crosses the network as codeRetry.
func retryf(format string, args ...any) error {
	return coded{code: codeRetry, err: fmt.Errorf("%w: "+format, append([]any{errRetry}, args...)...)}
}

// malformed gives err, if it says a request is malformed (errMalformed),
// the code of a definite refusal: every copy of the request meets it.
// Other errors pass unchanged.
func malformed(err error) error {
	if err == nil || !errors.Is(err, errMalformed) {
		return err
	}
	return coded{code: codeMalformed, err: fmt.Errorf("%w: %w", ErrMalformed, err)}
}

// coded gives an error a code for the network.
type coded struct {
	code   string
	err    error
	detail []byte
}

func (c coded) Error() string        { return c.err.Error() }
func (c coded) Unwrap() error        { return c.err }
func (c coded) RemoteCode() string   { return c.code }
func (c coded) RemoteDetail() []byte { return c.detail }

// crossRange refuses a request whose keys reach outside d, the range that
// holds its routing key; d goes along for the client's range cache.
func crossRange(d Descriptor, what string) error {
	return coded{code: codeCrossRange, err: fmt.Errorf("%w: %s reaches outside %v", ErrCrossRange, what, d), detail: d.appendTo(nil)}
}

// remoteDetail is the detail of err if it is a remote failure, or nil.
func remoteDetail(err error) []byte {
	var remote *kernel.RemoteError
	if errors.As(err, &remote) {
		return remote.Detail
	}
	return nil
}

// remoteCode is the code of err if it is a remote failure, or "".
func remoteCode(err error) string {
	var remote *kernel.RemoteError
	if errors.As(err, &remote) {
		return remote.Code
	}
	return ""
}

// NotLeaderError is a replica's refusal of a request it cannot serve
// because it does not lead the range: Leader is the leader it knows of (0:
// none) in Term. It crosses the network with its leader and term as the
// remote error's detail, and is read back with AsNotLeader.
type NotLeaderError struct {
	Leader kernel.NodeID
	Term   uint64
}

func (e NotLeaderError) Error() string {
	return fmt.Sprintf("not leader; try %d term %d", e.Leader, e.Term)
}

// RemoteCode implements kernel.CodedError.
func (NotLeaderError) RemoteCode() string { return codeNotLeader }

// RemoteDetail implements kernel.CodedError: leader and term, uvarints.
func (e NotLeaderError) RemoteDetail() []byte {
	return binary.AppendUvarint(binary.AppendUvarint(nil, uint64(e.Leader)), e.Term)
}

// AsNotLeader reads a NotLeaderError out of err, local or remote. A remote
// one whose detail does not parse still counts, with no leader known.
func AsNotLeader(err error) (NotLeaderError, bool) {
	var nl NotLeaderError
	if errors.As(err, &nl) {
		return nl, true
	}
	var remote *kernel.RemoteError
	if !errors.As(err, &remote) || remote.Code != codeNotLeader {
		return NotLeaderError{}, false
	}
	leader, w := binary.Uvarint(remote.Detail)
	if w <= 0 {
		return NotLeaderError{}, true
	}
	term, w2 := binary.Uvarint(remote.Detail[w:])
	if w2 <= 0 {
		return NotLeaderError{}, true
	}
	return NotLeaderError{Leader: kernel.NodeID(leader), Term: term}, true
}

// RangeMismatchError is a node's refusal of a request routed to a range
// that does not hold its key (any more: the range split, or the client's
// range cache is stale). Ranges are the newer descriptors the node knows:
// the one the request named and the one holding its key, as far as the
// node has replicas of them; the client's range cache (Router) learns them
// and the client retries at once. The request was not applied.
type RangeMismatchError struct {
	Key    []byte
	Ranges []Descriptor
}

func (e RangeMismatchError) Error() string {
	return fmt.Sprintf("key %q is not in the range the request was routed to; ranges now %v", e.Key, e.Ranges)
}

// RemoteCode implements kernel.CodedError.
func (RangeMismatchError) RemoteCode() string { return codeMismatch }

// RemoteDetail implements kernel.CodedError: the key and the descriptors.
func (e RangeMismatchError) RemoteDetail() []byte {
	b := appendBytes(nil, e.Key)
	b = binary.AppendUvarint(b, uint64(len(e.Ranges)))
	for _, d := range e.Ranges {
		b = d.appendTo(b)
	}
	return b
}

// AsRangeMismatch reads a RangeMismatchError out of err, local or remote.
// A remote one whose detail does not parse still counts, with no ranges.
func AsRangeMismatch(err error) (RangeMismatchError, bool) {
	var rm RangeMismatchError
	if errors.As(err, &rm) {
		return rm, true
	}
	var remote *kernel.RemoteError
	if !errors.As(err, &remote) || remote.Code != codeMismatch {
		return RangeMismatchError{}, false
	}
	key, b, err := readBytes(remote.Detail)
	if err != nil {
		return RangeMismatchError{}, true
	}
	rm.Key = append([]byte{}, key...)
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return rm, true
	}
	b = b[w:]
	for range n {
		var d Descriptor
		if d, b, err = readDescriptor(b); err != nil {
			return RangeMismatchError{Key: rm.Key}, true
		}
		rm.Ranges = append(rm.Ranges, d)
	}
	return rm, true
}
