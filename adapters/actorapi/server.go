// Package actorapi is the actor service over gRPC
// (orbit.actor.v1.ActorService, actor.proto): the server half that orbit
// serve registers on --grpc-addr, over the node's actor host and clients,
// and a Go client (Dial) that the CLI's `orbit actor` commands use.
package actorapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/orbitkernel/orbit/kernel/actor"
)

// Options configure the server half. NewClient is required.
type Options struct {
	// Host is the node's actor host (List, Deactivate); nil: the node
	// hosts no actors, and calls go to the nodes that do.
	Host *actor.Host
	// NewClient makes an actor client on the node (kernel/node's
	// Node.NewActorClient); the server keeps up to Clients of them.
	NewClient func() (*actor.Client, error)
	// Clients bounds the calls served at once; a call beyond it waits
	// for one to end. Default 64.
	Clients int
	// CallTimeout bounds a call whose caller set no deadline. Default 10 s.
	CallTimeout time.Duration
}

// Server serves ActorService.
type Server struct {
	opts  Options
	slots chan *actor.Client // nil entries: a client not made yet
}

// Register adds the service to srv.
func Register(srv *grpc.Server, opts Options) (*Server, error) {
	if opts.NewClient == nil {
		return nil, errors.New("actorapi: no NewClient")
	}
	if opts.Clients <= 0 {
		opts.Clients = 64
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 10 * time.Second
	}
	s := &Server{opts: opts, slots: make(chan *actor.Client, opts.Clients)}
	for range opts.Clients {
		s.slots <- nil
	}
	desc := grpc.ServiceDesc{ServiceName: ServiceName, HandlerType: (*any)(nil), Metadata: "orbit/actor/v1/actor.proto"}
	for _, m := range methods {
		name, in := m[0], m[1]
		desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: name,
			Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				req := newMessage(in)
				if err := dec(req); err != nil {
					return nil, err
				}
				run := func(ctx context.Context, req any) (any, error) { return s.handle(ctx, name, req.(*dynamicpb.Message)) }
				if icpt == nil {
					return run(ctx, req)
				}
				return icpt(ctx, req, &grpc.UnaryServerInfo{Server: s, FullMethod: "/" + ServiceName + "/" + name}, run)
			}})
	}
	srv.RegisterService(&desc, s)
	return s, nil
}

func (s *Server) handle(ctx context.Context, method string, req *dynamicpb.Message) (*dynamicpb.Message, error) {
	switch method {
	case "Invoke":
		return s.invoke(ctx, req)
	case "List":
		out := newMessage("ListResponse")
		if s.opts.Host == nil {
			return out, nil
		}
		list := out.Mutable(fd(out, "actors")).List()
		for _, r := range s.opts.Host.Activations() {
			m := newMessage("ActorRef")
			set(m, "type", r.Type)
			set(m, "key", r.Key)
			list.Append(protoreflect.ValueOfMessage(m))
		}
		return out, nil
	case "Deactivate":
		ref, err := refOf(req)
		if err != nil {
			return nil, err
		}
		out := newMessage("DeactivateResponse")
		set(out, "deactivated", s.opts.Host != nil && s.opts.Host.Deactivate(ref))
		return out, nil
	}
	return nil, status.Errorf(codes.Unimplemented, "no method %s", method)
}

func refOf(req *dynamicpb.Message) (actor.Ref, error) {
	ref := actor.Ref{Type: getString(req, "type"), Key: getString(req, "key")}
	if ref.Type == "" {
		return ref, status.Error(codes.InvalidArgument, "an actor type is required")
	}
	return ref, nil
}

func (s *Server) invoke(ctx context.Context, req *dynamicpb.Message) (*dynamicpb.Message, error) {
	ref, err := refOf(req)
	if err != nil {
		return nil, err
	}
	method, payload := getString(req, "method"), getBytes(req, "payload")
	caller, seq := getUint(req, "caller"), getUint(req, "sequence")
	if (caller == 0) != (seq == 0) {
		return nil, status.Error(codes.InvalidArgument, "caller and sequence go together: both set, or both 0")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.CallTimeout)
		defer cancel()
	}
	var cl *actor.Client
	select {
	case cl = <-s.slots:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	defer func() { s.slots <- cl }()
	if cl == nil {
		if cl, err = s.opts.NewClient(); err != nil {
			return nil, status.Errorf(codes.Unavailable, "actor client: %v", err)
		}
	}
	var reply []byte
	if caller == 0 {
		reply, err = cl.Call(ctx, ref, method, payload)
	} else {
		reply, err = cl.CallAs(ctx, ref, method, payload, caller, seq)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	out := newMessage("InvokeResponse")
	set(out, "payload", reply)
	return out, nil
}

// Status codes of actor errors; the Go client turns them back
// (fromStatus). DEADLINE_EXCEEDED and UNAVAILABLE leave a call's outcome
// open: send it again under the same numbers.
func toStatus(err error) error {
	var me *actor.MethodError
	switch {
	case errors.As(err, &me):
		return status.Error(codes.FailedPrecondition, me.Msg)
	case errors.Is(err, actor.ErrOverloaded):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, actor.ErrUnknownType):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, actor.ErrStaleRequest):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return status.Error(codes.DeadlineExceeded, fmt.Sprintf("the call's outcome is unknown: %v", err))
	}
	return status.Error(codes.Unavailable, err.Error())
}
