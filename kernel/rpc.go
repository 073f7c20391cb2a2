package kernel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// RemoteError is a failure the remote handler reported. Unlike a context
// error from Call, it is definite: the handler ran and said no.
//
// Code and Detail carry what a service needs to act on the failure without
// parsing Msg: a handler error that implements CodedError sends its code
// and detail along (empty otherwise), and the service's client turns them
// back into its typed error. Msg is for people.
type RemoteError struct {
	Code   string
	Detail []byte
	Msg    string
}

func (e *RemoteError) Error() string { return "remote: " + e.Msg }

// CodedError is a handler error that crosses the network as more than its
// message: a stable code naming the kind of failure (a service prefixes its
// codes with its name, "consensus.not-leader") and an optional binary
// detail (a hint: where the leader is).
type CodedError interface {
	error
	RemoteCode() string
	RemoteDetail() []byte
}

// encodeRemoteError is an error reply's body: code, detail (each
// uvarint-length-prefixed), then the message.
func encodeRemoteError(err error) []byte {
	var code string
	var detail []byte
	var coded CodedError
	if errors.As(err, &coded) {
		code, detail = coded.RemoteCode(), coded.RemoteDetail()
	}
	b := binary.AppendUvarint(nil, uint64(len(code)))
	b = append(b, code...)
	b = binary.AppendUvarint(b, uint64(len(detail)))
	b = append(b, detail...)
	return append(b, err.Error()...)
}

func decodeRemoteError(b []byte) (*RemoteError, error) {
	var fields [2][]byte
	for i := range fields {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return nil, errMalformed
		}
		fields[i], b = b[w:w+int(n)], b[w+int(n):]
	}
	e := &RemoteError{Code: string(fields[0]), Msg: string(b)}
	if len(fields[1]) > 0 {
		e.Detail = append([]byte{}, fields[1]...)
	}
	return e, nil
}

// errMalformed marks a message that does not parse; it is dropped.
var errMalformed = errors.New("kernel: malformed rpc message")

// Message kinds on the wire.
const (
	rpcRequest byte = iota + 1
	rpcReplyOK
	rpcReplyErr
)

// RPC is request/reply on top of Network. A Call returns the handler's
// reply, a *RemoteError (the handler reported a failure), or the context's
// error (a timeout: the request may or may not have run).
//
// The network may duplicate requests, so a handler may run more than once for
// one Call, and the reply that arrives may be a duplicate's. Handlers must be
// idempotent or deduplicate, and a service whose RemoteError means "did not
// happen" must answer a duplicate with the original outcome (the register in
// sim/register_test.go shows how).
type RPC struct {
	rt        Runtime
	replyPort string

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]*Future[[]byte]
}

// NewRPC starts an RPC endpoint named name on rt (one task routes replies).
// Its replies come to a port of its own: a second endpoint of the same name
// on the node gets another (ListenNew), so neither takes the other's replies
// (two txn.DBs of one name on a node once did, and their calls waited
// for replies the other had dropped: seconds per read).
func NewRPC(rt Runtime, name string) *RPC {
	r := &RPC{
		rt: rt,
		// A random start keeps a restarted node's call IDs apart from replies
		// still in flight to its previous incarnation.
		nextID:  rt.Rand().Uint64(),
		pending: map[uint64]*Future[[]byte]{},
	}
	var inbox *Mailbox[Envelope]
	r.replyPort, inbox = rt.Net().ListenNew("rpc.reply." + name)
	rt.Go("rpc-replies "+name, func(ctx context.Context) {
		for {
			env, err := inbox.Recv(ctx)
			if err != nil {
				return
			}
			kind, id, _, body, err := decodeRPC(env.Body)
			if err != nil || kind == rpcRequest {
				continue
			}
			r.mu.Lock()
			f := r.pending[id]
			r.mu.Unlock()
			if f == nil {
				continue // a late or duplicated reply
			}
			if kind == rpcReplyErr {
				remote, err := decodeRemoteError(body)
				if err != nil {
					remote = &RemoteError{Msg: "an error reply that does not parse"}
				}
				f.Set(nil, remote)
			} else {
				f.Set(body, nil)
			}
		}
	})
	return r
}

// Call sends req to port on node to and waits for the reply or ctx's end.
func (r *RPC) Call(ctx context.Context, to NodeID, port string, req []byte) ([]byte, error) {
	r.mu.Lock()
	r.nextID++
	id := r.nextID
	f := NewFuture[[]byte](r.rt, fmt.Sprintf("rpc %s to node %d", port, to))
	r.pending[id] = f
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pending, id)
		r.mu.Unlock()
	}()
	r.rt.Net().Send(to, port, encodeRPC(rpcRequest, id, r.replyPort, req))
	return f.Wait(ctx)
}

// Handler serves one request. A returned error reaches the caller as a
// *RemoteError (with its code and detail if it is a CodedError).
type Handler func(ctx context.Context, from NodeID, req []byte) ([]byte, error)

// Serve starts a task that answers requests on port with h, one at a time in
// arrival order.
func Serve(rt Runtime, port string, h Handler) {
	ServeAsync(rt, port, func(ctx context.Context, from NodeID, req []byte, reply func([]byte, error)) {
		reply(h(ctx, from, req))
	})
}

// AsyncHandler takes a request and answers it later, once, by calling reply
// (from any task). It must not block: it hands the request to the task that
// will do the work.
type AsyncHandler func(ctx context.Context, from NodeID, req []byte, reply func([]byte, error))

// ServeAsync starts a task that passes requests on port to h as they arrive.
func ServeAsync(rt Runtime, port string, h AsyncHandler) {
	inbox := rt.Net().Listen(port)
	rt.Go("rpc-serve "+port, func(ctx context.Context) {
		for {
			env, err := inbox.Recv(ctx)
			if err != nil {
				return
			}
			kind, id, replyPort, body, err := decodeRPC(env.Body)
			if err != nil || kind != rpcRequest {
				continue
			}
			from := env.From
			h(ctx, from, body, func(resp []byte, herr error) {
				if herr != nil {
					rt.Net().Send(from, replyPort, encodeRPC(rpcReplyErr, id, "", encodeRemoteError(herr)))
				} else {
					rt.Net().Send(from, replyPort, encodeRPC(rpcReplyOK, id, "", resp))
				}
			})
		}
	})
}

// Wire format: kind(1) id(8) len(replyPort)(uvarint) replyPort body.
func encodeRPC(kind byte, id uint64, replyPort string, body []byte) []byte {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(replyPort)+len(body))
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.AppendUvarint(b, uint64(len(replyPort)))
	b = append(b, replyPort...)
	return append(b, body...)
}

func decodeRPC(b []byte) (kind byte, id uint64, replyPort string, body []byte, err error) {
	if len(b) < 9 {
		return 0, 0, "", nil, errMalformed
	}
	kind, id = b[0], binary.BigEndian.Uint64(b[1:9])
	n, w := binary.Uvarint(b[9:])
	if w <= 0 || uint64(len(b)-9-w) < n {
		return 0, 0, "", nil, errMalformed
	}
	rest := b[9+w:]
	return kind, id, string(rest[:n]), rest[n:], nil
}
