// Command orbit is the Orbit binary.
//
//	orbit demo [-seed N] [-v]   run a small cluster in the simulator and say what happened
//	orbit serve [flags]         a server: alone by default (RESP on 127.0.0.1:6379, HTTP
//	                            /metrics, /healthz, /readyz on 127.0.0.1:9090, data in
//	                            ./orbit-data), or one node of a cluster (--node-id, --peers)
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "demo":
		os.Exit(demo(args))
	case "serve":
		os.Exit(serve(args, os.Stderr))
	case "node":
		os.Exit(node(args, os.Stderr))
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "orbit: unknown command %q\n", cmd)
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  orbit demo [-seed N] [-v]   run a small cluster in the deterministic simulator
  orbit serve [flags]         run a server: a single node by default (RESP on
                              127.0.0.1:6379), or a cluster node with --node-id
                              and --peers; orbit serve -h lists the flags
  orbit node remove ID        remove a node from its cluster (not supported yet)
`)
}

func demo(args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "simulation seed; the same seed replays the same run")
	verbose := fs.Bool("v", false, "print every node log line and fault")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	return runDemo(os.Stdout, *seed, *verbose)
}

// node is `orbit node remove ID`. Membership changes exist in consensus
// (Client.AddReplica, RemoveReplica), but the server does not yet persist a
// membership that differs from its --peers, so it refuses clearly.
func node(args []string, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "remove" {
		fmt.Fprintln(stderr, "usage: orbit node remove ID")
		return 2
	}
	fmt.Fprintln(stderr, "orbit node remove: not supported yet: a cluster's nodes are fixed by --peers at its first start")
	return 2
}
