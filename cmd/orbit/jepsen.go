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
set (SADD, final SMEMBERS), counter (INCR), list (RPUSH, LRANGE prefixes),
bank and txn-list (MULTI/EXEC across ranges), sql-bank (SQL transactions),
actor-counter (account actors over the gRPC actor service).
Nemeses: partition, kill, pause, restart, clock, delay, loss, membership, and the
leader nemeses kill-leader, pause-leader, slow-leader (judged by
--recovery-bound and --availability-floor); "all"; "none".
The report prints a replay command that runs the same schedule again.

Flags:
`

// jepsenCmd runs `orbit jepsen`.
func jepsenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jepsen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg jepsen.Config
	cfg.RegisterFlags(fs) // shared with the replay command a run prints
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
	if cfg.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "orbit jepsen: finding this binary: %v\n", err)
			return 2
		}
		cfg.Binary = self
	}
	if cfg.OutDir == "" {
		cfg.OutDir = filepath.Join("jepsen-out", fmt.Sprintf("%s-%s-seed%d", time.Now().UTC().Format("20060102T150405"), cfg.Workload, cfg.Seed))
	}
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
