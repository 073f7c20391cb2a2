package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"

	"github.com/orbitkernel/orbit/adapters/actorapi"
	"github.com/orbitkernel/orbit/examples/bank"
	"github.com/orbitkernel/orbit/internal/listen"
	"github.com/orbitkernel/orbit/kernel/actor"
	"github.com/orbitkernel/orbit/kernel/node"
	"github.com/orbitkernel/orbit/security"
)

// defaultGRPCAddr is the actor service's address when --actors is set and
// --grpc-addr is not.
const defaultGRPCAddr = "127.0.0.1:9190"

// exampleApps are the actor applications orbit serve can host, by the
// name --actors takes. Actor types are Go code: an application of one's
// own is hosted by building a binary that registers it here (or, later,
// through kernel/node directly).
var exampleApps = map[string]func() map[string]actor.Handler{
	"bank": bank.Types,
}

// actorApps is the host's options for the applications named, with
// leases of lease (nil: host none).
func actorApps(names string, lease time.Duration) (*actor.Options, error) {
	if names == "" {
		return nil, nil
	}
	types := map[string]actor.Handler{}
	for _, name := range strings.Split(names, ",") {
		app, ok := exampleApps[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("--actors: no application %q (there is: %s)", name, strings.Join(slices.Sorted(maps.Keys(exampleApps)), ", "))
		}
		maps.Copy(types, app())
	}
	if lease < 0 {
		return nil, fmt.Errorf("--actor-lease %v: negative", lease)
	}
	return &actor.Options{Types: types, LeaseDuration: lease}, nil
}

// actorPlacement parses --actor-placement.
func actorPlacement(name string) (actor.Placement, error) {
	p, ok := map[string]actor.Placement{"": actor.PlaceRandom, "random": actor.PlaceRandom, "local": actor.PlaceLocal,
		"hash": actor.PlaceHash, "least-loaded": actor.PlaceLeastLoaded}[name]
	if !ok {
		return 0, fmt.Errorf("--actor-placement %q: want random, local, hash or least-loaded", name)
	}
	return p, nil
}

// actorServiceAddr is where the actor service listens ("": nowhere).
func (cfg serveConfig) actorServiceAddr() string {
	switch {
	case cfg.grpcAddr == "off":
		return ""
	case cfg.grpcAddr == "" && cfg.actors != "":
		return defaultGRPCAddr
	}
	return cfg.grpcAddr
}

// serveActors starts the actor service (adapters/actorapi, with server
// reflection) on addr, over TLS when the node has certificates, and
// returns the server and the address it bound.
func serveActors(addr string, certs *serveTLS, nd *node.Node, placement actor.Placement) (*grpc.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", listen.Error(addr, err)
	}
	var opts []grpc.ServerOption
	if certs != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(certs.clientFacing())))
	}
	srv := grpc.NewServer(opts...)
	if _, err := actorapi.Register(srv, actorapi.Options{Host: nd.Actors,
		// An attempt at a host that died is given up after a second (a
		// turn that is merely slow, sent again, answers once: calls are
		// numbered).
		NewClient: func() (*actor.Client, error) {
			return nd.NewActorClient(actor.Options{AttemptTimeout: time.Second, Placement: placement})
		}}); err != nil {
		ln.Close()
		return nil, "", err
	}
	reflection.Register(srv)
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

// actorCommand is `orbit actor call|list|deactivate`, a client of a
// node's actor service.
func actorCommand(args []string, stdout, stderr io.Writer) int {
	const usage = `usage:
  orbit actor call TYPE KEY METHOD [PAYLOAD]   call a method (PAYLOAD: JSON or any text the type reads)
  orbit actor list                             the actors active on the node
  orbit actor deactivate TYPE KEY              end an actor's activation on the node
flags (after the subcommand): --addr HOST:PORT (the node's --grpc-addr, default ` + defaultGRPCAddr + `),
  --certs-dir DIR (TLS, trusting DIR/ca.crt), --timeout D (default 30s)`
	if len(args) < 1 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("actor "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", defaultGRPCAddr, "")
	certsDir := fs.String("certs-dir", "", "")
	timeout := fs.Duration("timeout", 30*time.Second, "")
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	arity, ok := map[string][2]int{"call": {3, 4}, "list": {0, 0}, "deactivate": {2, 2}}[sub]
	if n := fs.NArg(); !ok || n < arity[0] || n > arity[1] {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	creds := insecure.NewCredentials()
	if *certsDir != "" {
		pool, err := security.LoadCA(*certsDir)
		if err != nil {
			fmt.Fprintf(stderr, "orbit actor: --certs-dir %s: %v\n", *certsDir, err)
			return 2
		}
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool})
	}
	cl, err := actorapi.Dial(*addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		fmt.Fprintf(stderr, "orbit actor: %v\n", err)
		return 2
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	a := fs.Args()
	switch sub {
	case "call":
		var payload []byte
		if len(a) == 4 {
			payload = []byte(a[3])
		}
		out, err := cl.Invoke(ctx, a[0], a[1], a[2], payload)
		if err != nil {
			var me *actor.MethodError
			if errors.As(err, &me) {
				fmt.Fprintf(stderr, "orbit actor call: %s.%s refused: %s\n", a[0], a[2], me.Msg)
			} else {
				fmt.Fprintf(stderr, "orbit actor call: %v\n", oneLine(err))
			}
			return 1
		}
		fmt.Fprintln(stdout, string(out))
	case "list":
		refs, err := cl.List(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "orbit actor list: %v\n", oneLine(err))
			return 1
		}
		for _, r := range refs {
			fmt.Fprintf(stdout, "%s\t%s\n", r.Type, r.Key)
		}
	case "deactivate":
		done, err := cl.Deactivate(ctx, a[0], a[1])
		if err != nil {
			fmt.Fprintf(stderr, "orbit actor deactivate: %v\n", oneLine(err))
			return 1
		}
		if !done {
			fmt.Fprintf(stdout, "%s/%s was not active on that node\n", a[0], a[1])
		} else {
			fmt.Fprintf(stdout, "%s/%s deactivated\n", a[0], a[1])
		}
	}
	return 0
}
