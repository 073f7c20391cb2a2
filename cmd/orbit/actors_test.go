package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/orbitkernel/orbit/adapters/actorapi"
	"github.com/orbitkernel/orbit/examples/bank"
	"github.com/orbitkernel/orbit/kernel/actor"
)

func dialActors(t testing.TB, addr string) *actorapi.Client {
	t.Helper()
	cl, err := actorapi.Dial(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// TestServeActors hosts the bank example on one orbit serve node and
// calls it through the gRPC actor service, from the Go client and from
// `orbit actor`: state changes once per call, the actor's refusals come
// back as its errors and change nothing, an unknown type is refused, List
// and Deactivate act on the node, and a deactivated account reloads its
// balance.
func TestServeActors(t *testing.T) {
	cfg := serveConfig{nodeID: 1, dataDir: filepath.Join(t.TempDir(), "data"), redisAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0",
		actors: "bank", grpcAddr: "127.0.0.1:0"}
	addrs, _ := launchServerAddrs(t, cfg)
	waitReady(t, addrs.http)
	if addrs.grpc == "" {
		t.Fatal("no actor service bound")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := dialActors(t, addrs.grpc)
	call := func(method, payload string) string {
		t.Helper()
		out, err := cl.Invoke(ctx, "account", "alice", method, []byte(payload))
		if err != nil {
			t.Fatalf("%s %s: %v", method, payload, err)
		}
		return string(out)
	}
	if got := call("deposit", `{"amount": 100}`); got != `{"balance":100}` {
		t.Fatalf("deposit = %s", got)
	}
	if got := call("withdraw", `{"amount": 30}`); got != `{"balance":70}` {
		t.Fatalf("withdraw = %s", got)
	}
	_, err := cl.Invoke(ctx, "account", "alice", "withdraw", []byte(`{"amount": 1000}`))
	var me *actor.MethodError
	if !errors.As(err, &me) || !strings.Contains(me.Msg, "insufficient funds") {
		t.Fatalf("an overdraft = %v, want the account's refusal", err)
	}
	if _, err := cl.Invoke(ctx, "account", "alice", "rob", nil); !errors.As(err, &me) {
		t.Fatalf("an unknown method = %v", err)
	}
	if _, err := cl.Invoke(ctx, "vault", "x", "open", nil); !errors.Is(err, actor.ErrUnknownType) {
		t.Fatalf("an unknown type = %v, want ErrUnknownType", err)
	}
	if got := call("balance", ``); got != `{"balance":70}` {
		t.Fatalf("balance after refusals = %s", got)
	}
	refs, err := cl.List(ctx)
	if err != nil || len(refs) != 1 || refs[0] != (actor.Ref{Type: "account", Key: "alice"}) {
		t.Fatalf("List = %v, %v", refs, err)
	}
	if done, err := cl.Deactivate(ctx, "account", "alice"); err != nil || !done {
		t.Fatalf("Deactivate = %t, %v", done, err)
	}
	if got := call("balance", ``); got != `{"balance":70}` {
		t.Fatalf("balance after a deactivation = %s", got)
	}

	// A transfer saga through the service.
	if _, err := cl.Invoke(ctx, actor.SagaType, "t1", "start", bank.Transfer("alice", "dave", 20)); err != nil {
		t.Fatalf("starting a transfer saga: %v", err)
	}
	for {
		out, err := cl.Invoke(ctx, actor.SagaType, "t1", "status", nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), `"phase":"done"`) {
			break
		}
		if ctx.Err() != nil || strings.Contains(string(out), `"phase":"aborted"`) {
			t.Fatalf("the transfer saga did not finish: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := call("balance", ``); got != `{"balance":50}` {
		t.Fatalf("alice after a transfer of 20 = %s", got)
	}
	if out, err := cl.Invoke(ctx, "account", "dave", "balance", nil); err != nil || string(out) != `{"balance":20}` {
		t.Fatalf("dave after the transfer = %s, %v", out, err)
	}

	// Server reflection names the service and serves its file, as
	// grpcurl asks for them.
	conn, err := grpc.NewClient(addrs.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*reflectionpb.ServerReflectionRequest{
		{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}},
		{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: actorapi.ServiceName}},
	} {
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			t.Fatalf("reflection: %s", e.GetErrorMessage())
		}
		if l := resp.GetListServicesResponse(); l != nil && !slices.ContainsFunc(l.GetService(), func(s *reflectionpb.ServiceResponse) bool { return s.GetName() == actorapi.ServiceName }) {
			t.Fatalf("reflection lists %v, not %s", l.GetService(), actorapi.ServiceName)
		}
		if f := resp.GetFileDescriptorResponse(); f != nil && len(f.GetFileDescriptorProto()) == 0 {
			t.Fatal("reflection: no file for the service")
		}
	}

	// The CLI.
	var out, errOut bytes.Buffer
	if code := actorCommand([]string{"call", "--addr", addrs.grpc, "account", "bob", "deposit", `{"amount": 5}`}, &out, &errOut); code != 0 || out.String() != "{\"balance\":5}\n" {
		t.Fatalf("orbit actor call: exit %d, %q, %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := actorCommand([]string{"call", "--addr", addrs.grpc, "account", "bob", "withdraw", `{"amount": 6}`}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "insufficient funds") {
		t.Fatalf("orbit actor call of an overdraft: exit %d, %q, %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := actorCommand([]string{"list", "--addr", addrs.grpc}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "account\tbob") {
		t.Fatalf("orbit actor list: exit %d, %q", code, out.String())
	}
	if code := actorCommand([]string{"call", "account"}, &out, &errOut); code != 2 {
		t.Fatalf("orbit actor call with too few arguments: exit %d", code)
	}
}

// TestClusterActorsSurviveTheirNode runs the bank example on three orbit
// serve processes with 20 s actor leases: an account deposited into
// through one node reads the same through the others; a node hosting it
// that stops gracefully (SIGTERM) hands it over, so the next call through
// another node succeeds well inside the lease; it comes back, and when
// the node hosting the account is killed, the next call activates it elsewhere once the lease runs out,
// with its balance.
func TestClusterActorsSurviveTheirNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	bin := buildOrbit(t)
	ns := startClusterWith(t, bin, 3, "--actors", "bank", "--actor-lease", "20s")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cls := make([]*actorapi.Client, len(ns))
	for i, n := range ns {
		cls[i] = dialActors(t, n.grpcAddr)
	}
	if _, err := cls[0].Invoke(ctx, "account", "carol", "deposit", []byte(`{"amount": 40}`)); err != nil {
		t.Fatal(err)
	}
	for i, cl := range cls {
		out, err := cl.Invoke(ctx, "account", "carol", "balance", nil)
		if err != nil || string(out) != `{"balance":40}` {
			t.Fatalf("balance through node %d = %s, %v", i+1, out, err)
		}
	}
	hostOf := func(live []int) int {
		t.Helper()
		host := -1
		for _, i := range live {
			refs, err := cls[i].List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(refs) == 1 {
				if host >= 0 {
					t.Fatalf("carol is active on nodes %d and %d", host+1, i+1)
				}
				host = i
			}
		}
		if host < 0 {
			t.Fatal("carol is active nowhere")
		}
		return host
	}
	live := []int{0, 1, 2}
	without := func(i int) {
		live = slices.DeleteFunc(live, func(j int) bool { return j == i })
	}

	// Graceful: the lease is given up, so a call through another node
	// within 10 s (half the lease) must find carol activated afresh.
	host := hostOf(live)
	_ = ns[host].cmd.Process.Signal(syscall.SIGTERM)
	<-ns[host].exited
	without(host)
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	out, err := cls[live[0]].Invoke(sctx, "account", "carol", "deposit", []byte(`{"amount": 1}`))
	scancel()
	if err != nil || string(out) != `{"balance":41}` {
		t.Fatalf("a deposit within half a lease after node %d stopped gracefully = %s, %v", host+1, out, err)
	}
	// Back, so that a quorum outlives the next node's death.
	ns[host].start(t, bin)
	waitNodeReady(t, ns[host], 30*time.Second)
	live = append(live, host)
	slices.Sort(live)

	// Killed: the lease runs out, then the actor moves.
	host = hostOf(live)
	ns[host].kill()
	without(host)
	start := time.Now()
	out, err = cls[live[0]].Invoke(ctx, "account", "carol", "deposit", []byte(`{"amount": 1}`))
	if err != nil || string(out) != `{"balance":42}` {
		t.Fatalf("a deposit after node %d was killed = %s, %v", host+1, out, err)
	}
	t.Logf("carol's host (node %d) killed; the next deposit through node %d took %v (lease 20 s)", host+1, live[0]+1, time.Since(start).Round(time.Millisecond))
}
