package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/adapters/actorapi"
)

// BenchmarkActors measures calls to the bank example's account actors
// through the gRPC actor service (the path a user's client takes), on one
// orbit serve node (in this process) and on three (processes; calls
// spread over the nodes): a read of a hot actor (a turn that writes
// nothing: one transaction reading the directory entry and the caller's
// last request), a durable write to a hot actor (a deposit: the state and
// the caller's request in one transaction, synced), and a call to a cold
// actor (activation: the directory entry taken, the state read, then the
// turn). 64 hot actors; at 1 and 16 clients. Run with
//
//	go test ./cmd/orbit -run '^$' -bench Actors -benchtime 1000x
func BenchmarkActors(b *testing.B) {
	one, _ := launchServerAddrs(b, serveConfig{nodeID: 1, dataDir: filepath.Join(b.TempDir(), "data"), redisAddr: "127.0.0.1:0",
		httpAddr: "127.0.0.1:0", actors: "bank", grpcAddr: "127.0.0.1:0"})
	waitReady(b, one.http)
	ns := startClusterWith(b, buildOrbit(b), 3, "--actors", "bank")
	clusters := []struct {
		name  string
		addrs []string
	}{{"nodes=1", []string{one.grpc}}, {"nodes=3", []string{ns[0].grpcAddr, ns[1].grpcAddr, ns[2].grpcAddr}}}
	cold := 0
	ops := []struct {
		name string
		call func(i int) (typ, key, method, payload string)
	}{
		{"hot-read", func(i int) (string, string, string, string) {
			return "account", fmt.Sprintf("hot-%d", i%64), "balance", ""
		}},
		{"hot-write", func(i int) (string, string, string, string) {
			return "account", fmt.Sprintf("hot-%d", i%64), "deposit", `{"amount": 1}`
		}},
		{"cold-activation", func(i int) (string, string, string, string) {
			cold++ // one per call: never called before
			return "account", fmt.Sprintf("cold-%d-%d", cold, i), "balance", ""
		}},
	}
	for _, cl := range clusters {
		for _, op := range ops {
			for _, clients := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%s/clients=%d", cl.name, op.name, clients), func(b *testing.B) {
					conns := make([]*actorapi.Client, len(cl.addrs))
					for j, a := range cl.addrs {
						conns[j] = dialActors(b, a)
					}
					keys := make([][4]string, b.N)
					for i := range keys {
						t, k, m, p := op.call(i)
						keys[i] = [4]string{t, k, m, p}
					}
					closedLoop(b, clients, func(i int) error {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						k := keys[i]
						_, err := conns[i%len(conns)].Invoke(ctx, k[0], k[1], k[2], []byte(k[3]))
						return err
					})
				})
			}
		}
	}
}
