package jepsen

import (
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// RegisterFlags defines every flag of `orbit jepsen` on fs, bound to c's
// fields, and sets those fields to the flags' defaults. The command and
// ReplayCommand both use it, so a printed replay command always parses
// (TestReplayCommandRoundTrip).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Nemeses = []string{"partition", "kill"}
	fs.IntVar(&c.Nodes, "nodes", 3, "servers to run (3 or 5)")
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "how long the workload runs under faults")
	fs.StringVar(&c.Workload, "workload", "register", "register, set, counter, list, bank, txn-list, sql-bank or actor-counter")
	fs.Var(nemesisList{&c.Nemeses}, "nemesis", "comma-separated faults ("+strings.Join(AllNemeses, ", ")+"), \"all\" or \"none\"")
	fs.Float64Var(&c.Rate, "rate", 200, "operations per second, all clients together")
	fs.IntVar(&c.Concurrency, "concurrency", 10, "client processes (bound to nodes round-robin)")
	fs.Int64Var(&c.Seed, "seed", 1, "seed of the fault schedule and the clients' choices")
	fs.StringVar(&c.OutDir, "out", "", "the run's output directory (default jepsen-out/<time>-<workload>-seed<N>)")
	fs.StringVar(&c.Binary, "binary", "", "the orbit binary to test (default: this one)")
	fs.StringVar(&c.Mutation, "mutation", "", "a planted bug ($ORBIT_MUTATION) of a test build (go build -tags orbit_mutations; give it with --binary)")
	fs.DurationVar(&c.Recovery, "recovery", 30*time.Second, "how long the healed cluster may take to serve again")
	fs.DurationVar(&c.RecoveryBound, "recovery-bound", 2*time.Second, "kill-leader and pause-leader: every surviving node's clients must be served again, on every range, within this of the fault's start")
	fs.Float64Var(&c.AvailabilityFloor, "availability-floor", 0.5, "slow-leader: ok ops/s during the fault must be at least this fraction of the calm periods'")
	fs.IntVar(&c.LeaderRange, "leader-range", 0, "leader nemeses hurt this range's leader (0: the node leading the most ranges)")
	fs.DurationVar(&c.OpTimeout, "op-timeout", 3*time.Second, "a client's read timeout: an operation taking longer counts as info (unknown outcome)")
	fs.BoolVar(&c.TLS, "tls", false, "run the servers with certificates the harness makes (--certs-dir) and every client over TLS")
}

// replayFlags are the flags ReplayCommand prints, in this order: every
// flag but --out and --binary, which name files of this machine.
var replayFlags = []string{"nodes", "duration", "workload", "nemesis", "rate", "concurrency", "seed",
	"recovery", "recovery-bound", "availability-floor", "leader-range", "op-timeout", "mutation", "tls"}

// ReplayCommand is the `orbit jepsen` command that runs c again: the same
// fault schedule and client choices (real timing differs). Every value is
// printed by its flag's own String method and shell-quoted when needed, so
// the command parses back to c (a planted bug also needs --binary with a
// test build of the server).
func (c Config) ReplayCommand() string {
	// Register the flags on a scratch config, then copy c over it: the
	// flags point into scratch, so each now prints c's value.
	var scratch Config
	fs := flag.NewFlagSet("jepsen", flag.ContinueOnError)
	scratch.RegisterFlags(fs)
	scratch = c
	parts := []string{"orbit", "jepsen"}
	for _, name := range replayFlags {
		v := fs.Lookup(name).Value.String()
		if v == "" {
			continue // an empty string is every string flag's default
		}
		if b, ok := fs.Lookup(name).Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			if v == "true" {
				parts = append(parts, "--"+name) // a bool flag takes no separate value
			}
			continue
		}
		parts = append(parts, "--"+name, shellQuote(v))
	}
	return strings.Join(parts, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:,=+@%-]+$`)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// nemesisList is the --nemesis flag: a comma-separated list, "all" or
// "none", checked against AllNemeses as it is parsed.
type nemesisList struct{ v *[]string }

func (l nemesisList) String() string {
	if l.v == nil || len(*l.v) == 0 {
		return "none"
	}
	return strings.Join(*l.v, ",")
}

func (l nemesisList) Set(s string) error {
	ns := ParseNemeses(s)
	for _, n := range ns {
		if !slices.Contains(AllNemeses, n) {
			return &UnknownNemesisError{Name: n}
		}
	}
	*l.v = ns
	return nil
}

// UnknownNemesisError: a nemesis name that is not one of AllNemeses.
type UnknownNemesisError struct{ Name string }

func (e *UnknownNemesisError) Error() string {
	return fmt.Sprintf("unknown nemesis %q (have %s)", e.Name, strings.Join(AllNemeses, ", "))
}
