// Package kerneltest is the conformance suite of the runtime contract: the
// same checks run against the production runtime and the simulator, so that
// a component tested in one behaves the same in the other.
package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// Harness runs fn as a task on node 1 of a fresh two-node world (nodes 1 and
// 2 share a network) and returns when fn returns. serve, if not nil, boots
// node 2 first.
type Harness func(t *testing.T, serve func(rt kernel.Runtime), fn func(ctx context.Context, rt kernel.Runtime))

// Run runs every conformance check with h.
func Run(t *testing.T, h Harness) {
	t.Run("MailboxFIFOAndCapacity", func(t *testing.T) { h(t, nil, mailboxFIFO(t)) })
	t.Run("MailboxCloseDrains", func(t *testing.T) { h(t, nil, mailboxClose(t)) })
	t.Run("RecvTimeout", func(t *testing.T) { h(t, nil, recvTimeout(t)) })
	t.Run("FutureAcrossTasks", func(t *testing.T) { h(t, nil, futureAcrossTasks(t)) })
	t.Run("CancelWakesWaiter", func(t *testing.T) { h(t, nil, cancelWakes(t)) })
	t.Run("SleepAndAfterFunc", func(t *testing.T) { h(t, nil, sleepAndAfterFunc(t)) })
	t.Run("RPC", func(t *testing.T) { h(t, echoServer, rpcCalls(t)) })
	t.Run("RPCsOfOneName", func(t *testing.T) { h(t, echoServer, rpcsOfOneName(t)) })
}

func mailboxFIFO(t *testing.T) func(context.Context, kernel.Runtime) {
	return func(ctx context.Context, rt kernel.Runtime) {
		m := kernel.NewMailbox[int](rt, "fifo", 3)
		for i := range 3 {
			if !m.Send(i) {
				t.Errorf("send %d refused below capacity", i)
			}
		}
		if m.Send(99) {
			t.Errorf("a full mailbox accepted a message")
		}
		for i := range 3 {
			if v, err := m.Recv(ctx); err != nil || v != i {
				t.Errorf("recv %d: got %d, %v", i, v, err)
			}
		}
		if _, ok := m.TryRecv(); ok {
			t.Errorf("TryRecv on an empty mailbox returned a message")
		}
	}
}

func mailboxClose(t *testing.T) func(context.Context, kernel.Runtime) {
	return func(ctx context.Context, rt kernel.Runtime) {
		m := kernel.NewMailbox[string](rt, "close", 4)
		m.Send("last")
		m.Close()
		if m.Send("late") {
			t.Errorf("a closed mailbox accepted a message")
		}
		if v, err := m.Recv(ctx); v != "last" || err != nil {
			t.Errorf("a closed mailbox lost its queued message: %q, %v", v, err)
		}
		if _, err := m.Recv(ctx); !errors.Is(err, kernel.ErrClosed) {
			t.Errorf("recv on a drained closed mailbox: %v, want ErrClosed", err)
		}
	}
}

func recvTimeout(t *testing.T) func(context.Context, kernel.Runtime) {
	return func(ctx context.Context, rt kernel.Runtime) {
		m := kernel.NewMailbox[int](rt, "quiet", 1)
		start := rt.Now()
		tctx, cancel := rt.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		_, err := m.Recv(tctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("recv on a quiet mailbox: %v, want DeadlineExceeded", err)
		}
		if waited := rt.Now().Sub(start); waited < 20*time.Millisecond {
			t.Errorf("deadline of 20ms fired after %v", waited)
		}
	}
}

func futureAcrossTasks(t *testing.T) func(context.Context, kernel.Runtime) {
	return func(ctx context.Context, rt kernel.Runtime) {
		f := kernel.NewFuture[string](rt, "answer")
		rt.Go("setter", func(ctx context.Context) {
			rt.Sleep(ctx, time.Millisecond)
			f.Set("42", nil)
		})
		if v, err := f.Wait(ctx); v != "42" || err != nil {
			t.Errorf("future: %q, %v", v, err)
		}
		if f.Set("43", nil) {
			t.Errorf("a second Set took effect")
		}
	}
}

func cancelWakes(t *testing.T) func(context.Context, kernel.Runtime) {
	return func(ctx context.Context, rt kernel.Runtime) {
		cctx, cancel := rt.WithCancel(ctx)
		rt.Go("canceller", func(ctx context.Context) {
			rt.Sleep(ctx, time.Millisecond)
			cancel()
		})
		f := kernel.NewFuture[int](rt, "never")
		if _, err := f.Wait(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("wait on a cancelled context: %v, want Canceled", err)
		}
		// A child of a cancelled context is born cancelled.
		child, stop := rt.WithTimeout(cctx, time.Hour)
		defer stop()
		if child.Err() == nil {
			t.Errorf("a child of a cancelled context is live")
		}
	}
}

func sleepAndAfterFunc(t *testing.T) func(context.Context, kernel.Runtime) {
	return func(ctx context.Context, rt kernel.Runtime) {
		fired := kernel.NewMailbox[string](rt, "timers", 4)
		rt.AfterFunc(5*time.Millisecond, func() { fired.Send("late") })
		early := rt.AfterFunc(time.Millisecond, func() { fired.Send("stopped") })
		if !early.Stop() {
			t.Errorf("Stop of a pending timer reported false")
		}
		start := rt.Now()
		if err := rt.Sleep(ctx, 10*time.Millisecond); err != nil {
			t.Errorf("sleep: %v", err)
		}
		if d := rt.Now().Sub(start); d < 10*time.Millisecond {
			t.Errorf("slept %v, want at least 10ms", d)
		}
		// The 5 ms timer is due by now, but on a real runtime its callback
		// runs on a goroutine of its own that a loaded machine (make race
		// in CI) may not have scheduled yet: wait for it, boundedly.
		waitCtx, cancel := rt.WithTimeout(ctx, 10*time.Second)
		v, err := fired.Recv(waitCtx)
		cancel()
		if err != nil || v != "late" {
			t.Errorf("timers fired %q, %v; want only \"late\"", v, err)
		}
		// The stopped timer's time passed long ago: it must never fire.
		if v, ok := fired.TryRecv(); ok {
			t.Errorf("a stopped timer fired: %q", v)
		}
	}
}

// codedError is a handler error with a code and a detail (kernel.CodedError).
type codedError struct{}

func (codedError) Error() string        { return "coded, as asked" }
func (codedError) RemoteCode() string   { return "test.coded" }
func (codedError) RemoteDetail() []byte { return []byte{1, 2, 3} }

// echoServer answers "echo" with its request, "fail" with an error and
// "coded" with a kernel.CodedError; "slow" is never answered.
func echoServer(rt kernel.Runtime) {
	kernel.Serve(rt, "echo", func(ctx context.Context, from kernel.NodeID, req []byte) ([]byte, error) {
		switch string(req) {
		case "fail":
			return nil, errors.New("as asked")
		case "coded":
			return nil, fmt.Errorf("wrapped: %w", codedError{})
		case "slow":
			rt.Sleep(ctx, time.Hour)
		}
		return []byte(fmt.Sprintf("%s from %d", req, from)), nil
	})
}

func rpcCalls(t *testing.T) func(context.Context, kernel.Runtime) {
	return func(ctx context.Context, rt kernel.Runtime) {
		rpc := kernel.NewRPC(rt, "test")
		call := func(req string, d time.Duration) (string, error) {
			cctx, cancel := rt.WithTimeout(ctx, d)
			defer cancel()
			resp, err := rpc.Call(cctx, 2, "echo", []byte(req))
			return string(resp), err
		}
		// Node 2 may still be starting: retry the first call briefly.
		var got string
		var err error
		for range 50 {
			if got, err = call("hi", 20*time.Millisecond); err == nil {
				break
			}
		}
		if got != "hi from 1" || err != nil {
			t.Errorf("echo: %q, %v", got, err)
		}
		var remote *kernel.RemoteError
		if _, err := call("fail", time.Second); !errors.As(err, &remote) || remote.Msg != "as asked" || remote.Code != "" || remote.Detail != nil {
			t.Errorf("failing handler: %v, want RemoteError \"as asked\" without code or detail", err)
		}
		if _, err := call("coded", time.Second); !errors.As(err, &remote) || remote.Code != "test.coded" ||
			string(remote.Detail) != "\x01\x02\x03" || remote.Msg != "wrapped: coded, as asked" {
			t.Errorf("coded handler error: %#v, want code test.coded, detail 010203 and the message", remote)
		}
		if _, err := call("slow", 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("unanswered call: %v, want DeadlineExceeded", err)
		}
	}
}

// rpcsOfOneName: two RPC endpoints created with one name on one node each
// get their own replies, however their calls interleave (they once shared
// a reply inbox, and each dropped the replies it took for the other).
func rpcsOfOneName(t *testing.T) func(context.Context, kernel.Runtime) {
	return func(ctx context.Context, rt kernel.Runtime) {
		a, b := kernel.NewRPC(rt, "twin"), kernel.NewRPC(rt, "twin")
		call := func(rpc *kernel.RPC, req string) (string, error) {
			cctx, cancel := rt.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			resp, err := rpc.Call(cctx, 2, "echo", []byte(req))
			return string(resp), err
		}
		for range 50 { // node 2 may still be starting
			if _, err := call(a, "hi"); err == nil {
				break
			}
		}
		for i := range 20 {
			rpc := []*kernel.RPC{a, b}[i%2]
			req := fmt.Sprintf("call %d", i)
			if got, err := call(rpc, req); err != nil || got != req+" from 1" {
				t.Errorf("endpoint %d, %s: %q, %v", i%2, req, got, err)
			}
		}
	}
}
