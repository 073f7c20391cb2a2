package actorapi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/orbitkernel/orbit/kernel/actor"
)

// Client is a Go client of ActorService. It numbers its calls (a random
// identity, a sequence number per call) and sends a call whose outcome is
// unknown again under the same numbers, so each runs at most once. Safe
// for concurrent use.
type Client struct {
	conn   *grpc.ClientConn
	caller uint64
	seq    atomic.Uint64
	// AttemptTimeout bounds one attempt (default 10 s).
	AttemptTimeout time.Duration
}

// Dial returns a client of the service at target (a node's --grpc-addr);
// opts carry the transport's credentials.
func Dial(target string, opts ...grpc.DialOption) (*Client, error) {
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, AttemptTimeout: 10 * time.Second}
	var b [8]byte
	for c.caller == 0 {
		_, _ = rand.Read(b[:]) // never fails since Go 1.24
		c.caller = binary.LittleEndian.Uint64(b[:])
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) rpc(ctx context.Context, method string, in *dynamicpb.Message, out string) (*dynamicpb.Message, error) {
	reply := newMessage(out)
	err := c.conn.Invoke(ctx, "/"+ServiceName+"/"+method, in, reply)
	return reply, err
}

// Invoke calls method on the actor (typ, key) with payload and returns
// its reply. Errors: *actor.MethodError (the actor refused; nothing
// changed), actor.ErrOverloaded, actor.ErrUnknownType,
// actor.ErrStaleRequest, or ctx's error, after which the call may or may
// not have run.
func (c *Client) Invoke(ctx context.Context, typ, key, method string, payload []byte) ([]byte, error) {
	in := newMessage("InvokeRequest")
	set(in, "type", typ)
	set(in, "key", key)
	set(in, "method", method)
	set(in, "payload", payload)
	set(in, "caller", c.caller)
	set(in, "sequence", c.seq.Add(1))
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.AttemptTimeout)
		out, err := c.rpc(actx, "Invoke", in, "InvokeResponse")
		cancel()
		if err == nil {
			return getBytes(out, "payload"), nil
		}
		if err := fromStatus(err); err != nil {
			return nil, err
		}
		select { // unknown outcome: the same call again
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(min(attempt+1, 20)) * 50 * time.Millisecond):
		}
	}
}

// fromStatus turns a definite status back into the actor error it stands
// for; nil for the ones that leave the outcome open.
func fromStatus(err error) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.FailedPrecondition:
		return &actor.MethodError{Msg: st.Message()}
	case codes.ResourceExhausted:
		return actor.ErrOverloaded
	case codes.NotFound:
		return actor.ErrUnknownType
	case codes.Aborted:
		return actor.ErrStaleRequest
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return nil
	}
	return err
}

// List names the actors active on the node the client is connected to.
func (c *Client) List(ctx context.Context) ([]actor.Ref, error) {
	out, err := c.rpc(ctx, "List", newMessage("ListRequest"), "ListResponse")
	if err != nil {
		return nil, err
	}
	list := out.Get(fd(out, "actors")).List()
	refs := make([]actor.Ref, list.Len())
	for i := range refs {
		m := list.Get(i).Message().Interface().(*dynamicpb.Message)
		refs[i] = actor.Ref{Type: getString(m, "type"), Key: getString(m, "key")}
	}
	return refs, nil
}

// Deactivate ends the actor's activation on the node the client is
// connected to, reporting whether it had one.
func (c *Client) Deactivate(ctx context.Context, typ, key string) (bool, error) {
	in := newMessage("DeactivateRequest")
	set(in, "type", typ)
	set(in, "key", key)
	out, err := c.rpc(ctx, "Deactivate", in, "DeactivateResponse")
	if err != nil {
		return false, err
	}
	return getBool(out, "deactivated"), nil
}
