// Command orbit is the Orbit binary.
//
//	orbit demo [-seed N] [-v]   run a small cluster in the simulator and say what happened
//	orbit serve [flags]         a server: alone by default (RESP on 127.0.0.1:6379, HTTP
//	                            /metrics, /healthz, /readyz on 127.0.0.1:9090, data in
//	                            ./orbit-data), or one node of a cluster (--node-id, --peers)
//	orbit jepsen [flags]        a Jepsen-style check of real servers under faults
//	orbit node remove ID        take a node out of its cluster
//	orbit cert create-ca|create-node|create-client   TLS certificates (cert.go)
//	orbit actor call|list|deactivate   a client of a node's actor service (actors.go)
//	orbit backup create|restore|show DEST   backups of the transactional keyspace (backup.go)
//	orbit mcp [flags]           the Model Context Protocol for AI agents (mcp.go)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
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
		os.Exit(nodeCommand(args, os.Stderr))
	case "jepsen":
		os.Exit(jepsenCmd(args, os.Stdout, os.Stderr))
	case "cert":
		os.Exit(certCommand(args, os.Stdout, os.Stderr))
	case "actor":
		os.Exit(actorCommand(args, os.Stdout, os.Stderr))
	case "backup":
		os.Exit(backupCommand(args, os.Stdout, os.Stderr))
	case "mcp":
		os.Exit(mcpCommand(args, os.Stdin, os.Stdout, os.Stderr))
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
  orbit jepsen [flags]        a Jepsen-style check of real orbit serve processes under
                              faults; orbit jepsen -h lists the flags
  orbit node list             the cluster's nodes as a node sees them: address,
                              state (alive, dead, unknown, leaving, removed),
                              replicas, leaderships, leader load (--addr as below)
  orbit node remove ID        remove a node from its cluster (--addr: a node's HTTP
                              address, default 127.0.0.1:9090; --certs-dir DIR: over
                              HTTPS); a node joins with orbit serve --join ADDR
  orbit cert create-ca --certs-dir DIR --ca-key FILE
                              a certificate authority: DIR/ca.crt, its key at FILE
  orbit cert create-node HOST... --certs-dir DIR --ca-key FILE
                              DIR/node.crt, node.key for a node reached as HOST...
  orbit cert create-client USER --certs-dir DIR --ca-key FILE
                              DIR/client.USER.crt, .key; orbit cert lists the flags;
                              orbit serve --certs-dir DIR then serves over TLS
  orbit actor call TYPE KEY METHOD [PAYLOAD]
                              call an actor through a node's actor service (orbit serve
                              --actors bank; --addr its --grpc-addr, default 127.0.0.1:9190);
                              orbit actor list, orbit actor deactivate TYPE KEY
  orbit backup create DEST [--as-of T]  a consistent backup of SQL, actors and the
                              transactional keys as of one time, to a directory or
                              s3://BUCKET/PREFIX (--addr as above); orbit backup
                              restore DEST into an empty cluster; show DEST verifies
  orbit mcp [flags]           serve AI agents the Model Context Protocol (SQL, keys,
                              actors, cluster status through a node; stdio, or
                              streamable HTTP with --listen); orbit mcp -h lists the flags
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

// nodeCommand is `orbit node list` and `orbit node remove [--addr HOST:PORT] ID`: the latter asks a node of the
// cluster (its HTTP address) to take node ID out (membership.go), and
// prints what changed.
func nodeCommand(args []string, stderr io.Writer) int {
	const usage = "usage: orbit node list [--addr HOST:PORT] [--certs-dir DIR] | orbit node remove [--addr HOST:PORT] [--certs-dir DIR] [--token T] ID  (--addr: any node's HTTP address, default 127.0.0.1:9090; --certs-dir: HTTPS, trusting DIR/ca.crt, presenting DIR/client.root.crt or node.crt; --token: the admin token, default $ORBIT_ADMIN_TOKEN)"
	if len(args) >= 1 && args[0] == "list" {
		return nodeList(args[1:], os.Stdout, stderr)
	}
	if len(args) < 1 || args[0] != "remove" {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("node remove", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:9090", "HTTP address of any node of the cluster")
	timeout := fs.Duration("timeout", membershipTimeout, "give up after this long (the removal may then be half done; run it again)")
	certsDir := fs.String("certs-dir", "", "reach the node over HTTPS, trusting this directory's ca.crt and presenting its client.root (or node) certificate")
	token := fs.String("token", os.Getenv("ORBIT_ADMIN_TOKEN"), "the cluster's admin token (orbit serve --admin-token; default $ORBIT_ADMIN_TOKEN)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	web, err := operatorWeb(*certsDir, *token)
	if err != nil {
		fmt.Fprintf(stderr, "orbit node remove: %v\n", err)
		return 2
	}
	id, err := strconv.ParseUint(fs.Arg(0), 10, 32)
	if err != nil || id == 0 {
		fmt.Fprintf(stderr, "orbit node remove: %q is not a node ID (1 to 4294967295)\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	reply, _, err := web.postJSON(ctx, web.url(*addr, fmt.Sprintf("/remove?node=%d", id)), nil)
	if err != nil {
		fmt.Fprintf(stderr, "orbit node remove: %v\n", oneLine(err))
		return 1
	}
	for _, c := range reply.Changes {
		fmt.Println(c)
	}
	fmt.Printf("node %d removed\n", id)
	return 0
}

// nodeList is `orbit node list [--addr HOST:PORT] [--certs-dir DIR]`: the
// nodes as GET /cluster on that node describes them, one line each.
func nodeList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("node list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:9090", "HTTP address of any node of the cluster")
	certsDir := fs.String("certs-dir", "", "reach the node over HTTPS, trusting this directory's ca.crt (orbit serve --certs-dir)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: orbit node list [--addr HOST:PORT] [--certs-dir DIR]")
		return 2
	}
	web, err := operatorWeb(*certsDir, "")
	if err != nil {
		fmt.Fprintf(stderr, "orbit node list: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := web.fetchCluster(ctx, *addr)
	if err != nil {
		fmt.Fprintf(stderr, "orbit node list: %v\n", oneLine(err))
		return 1
	}
	fmt.Fprint(stdout, formatNodes(info))
	return 0
}

// formatNodes is orbit node list's table: every node of info, by ID, with
// its state as the answering node sees it and what it holds.
func formatNodes(info clusterInfo) string {
	replicas, leads := map[uint64]int{}, map[uint64]int{}
	for _, r := range info.Ranges {
		for _, n := range r.Replicas {
			replicas[n]++
		}
		if r.LeaderNode != 0 {
			leads[r.LeaderNode]++
		}
	}
	var ids []uint64
	for text := range info.Nodes {
		if id, err := strconv.ParseUint(text, 10, 32); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tADDRESS\tSTATE\tREPLICAS\tLEADS\tLEADER LOAD\n")
	for _, id := range ids {
		n := info.Nodes[strconv.FormatUint(id, 10)]
		state := "unknown"
		switch {
		case n.Removed:
			state = "removed"
		case n.Leaving:
			state = "leaving"
		case n.Dead:
			state = "dead"
		case n.Alive:
			state = "alive"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%.0f/s\n", id, n.Addr, state, replicas[id], leads[id], n.LeaderLoad)
	}
	tw.Flush()
	fmt.Fprintf(&b, "(as node %d sees them; %d ranges, %d replicas each)\n", info.Node, len(info.Ranges), info.Replicas)
	return b.String()
}
