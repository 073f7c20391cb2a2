package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/orbitkernel/orbit/jepsen"
)

const jepsenUsage = `usage: orbit jepsen [flags]

Runs a Jepsen-style check against real orbit serve processes on loopback:
starts --nodes servers (this binary, or --binary), routes every link between
them through a fault proxy, runs --workload through go-redis clients while
the nemeses inject faults, heals everything, requires the cluster to serve
again, checks the history and writes a report directory (index.html,
summary.txt, history.jsonl, faults.log, node logs, porcupine.html).
Exits 0 when the history is valid, 1 on a violation, 2 on bad flags or a
run that could not be carried out.

Workloads: register (GET/SET/WATCH-MULTI-EXEC compare-and-set, Porcupine),
set (SADD, final SMEMBERS), counter (INCR), list (RPUSH, LRANGE prefixes).
Nemeses: partition, kill, pause, clock, delay, loss, membership; "all";
"none".

Flags:
`

// jepsenCmd runs `orbit jepsen`.
func jepsenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jepsen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg jepsen.Config
	var nemeses, out string
	fs.IntVar(&cfg.Nodes, "nodes", 3, "servers to run (3 or 5)")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long the workload runs under faults")
	fs.StringVar(&cfg.Workload, "workload", "register", "register, set, counter or list")
	fs.StringVar(&nemeses, "nemesis", "partition,kill", "comma-separated faults, \"all\" or \"none\"")
	fs.Float64Var(&cfg.Rate, "rate", 200, "operations per second, all clients together")
	fs.IntVar(&cfg.Concurrency, "concurrency", 10, "client processes (bound to nodes round-robin)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the fault schedule and the clients' choices")
	fs.StringVar(&out, "out", "", "the run's output directory (default jepsen-out/<time>-<workload>-seed<N>)")
	fs.StringVar(&cfg.Binary, "binary", "", "the orbit binary to test (default: this one)")
	fs.StringVar(&cfg.Mutation, "mutation", "", "a planted bug ($ORBIT_MUTATION) of a test build (go build -tags orbit_mutations)")
	fs.DurationVar(&cfg.Recovery, "recovery", 30*time.Second, "how long the healed cluster may take to serve again")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprint(stderr, jepsenUsage)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "orbit jepsen: %v\n", err)
		return 2
	}
	cfg.Nemeses = jepsen.ParseNemeses(nemeses)
	if cfg.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "orbit jepsen: finding this binary: %v\n", err)
			return 2
		}
		cfg.Binary = self
	}
	if out == "" {
		out = filepath.Join("jepsen-out", fmt.Sprintf("%s-%s-seed%d", time.Now().UTC().Format("20060102T150405"), cfg.Workload, cfg.Seed))
	}
	cfg.OutDir = out
	cfg.Logf = func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := jepsen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "orbit jepsen: %v\n", oneLine(err))
		return 2
	}
	fmt.Fprint(stdout, res.Summary())
	fmt.Fprintf(stdout, "\nreport: %s\n", filepath.Join(res.Dir, "index.html"))
	if !res.Valid {
		return 1
	}
	return 0
}
