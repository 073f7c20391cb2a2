package jepsen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/report"
)

// Config is one run.
type Config struct {
	Binary      string        // the orbit binary to test
	Nodes       int           // 3 or 5
	Duration    time.Duration // of the workload under faults
	Workload    string        // one of AllWorkloads
	Nemeses     []string      // some of AllNemeses; empty: none
	Rate        float64       // operations per second, all clients together
	Concurrency int           // client processes
	Seed        int64
	OutDir      string        // the run's directory (created)
	Mutation    string        // a planted bug ($ORBIT_MUTATION) of a test build
	Recovery    time.Duration // how long the healed cluster may take to serve again
	OpTimeout   time.Duration // a client's read timeout: longer counts as info
	Logf        func(format string, args ...any)
}

func (c *Config) defaults() {
	setDefault(&c.Nodes, 3)
	setDefault(&c.Duration, 60*time.Second)
	setDefault(&c.Workload, "register")
	setDefault(&c.Rate, 200)
	setDefault(&c.Concurrency, 10)
	setDefault(&c.Recovery, 30*time.Second)
	setDefault(&c.OpTimeout, 3*time.Second)
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

func setDefault[T comparable](f *T, v T) {
	var zero T
	if *f == zero {
		*f = v
	}
}

// Outcome is what a run found.
type Outcome struct {
	Valid   bool
	Dir     string // holds index.html, summary.txt, history.jsonl, ...
	Results []check.Result
	Notes   []string
}

// Run starts a cluster of cfg.Nodes `orbit serve` processes, runs the
// workload while the nemeses inject faults, heals everything, requires the
// cluster to serve again within cfg.Recovery, takes the final reads, checks
// the history and writes the report. An error means the run could not be
// carried out (the verdict is then unknown); a violation is an invalid
// Outcome.
func Run(ctx context.Context, cfg Config) (Outcome, error) {
	cfg.defaults()
	out := Outcome{Dir: cfg.OutDir}
	if cfg.Nodes < 3 {
		return out, errors.New("jepsen: at least 3 nodes")
	}
	for _, n := range cfg.Nemeses {
		if !slices.Contains(AllNemeses, n) {
			return out, fmt.Errorf("jepsen: unknown nemesis %q (have %s)", n, strings.Join(AllNemeses, ", "))
		}
	}
	wl, err := newWorkload(cfg.Workload, 3)
	if err != nil {
		return out, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return out, err
	}
	start := time.Now()
	histFile, err := os.Create(filepath.Join(cfg.OutDir, "history.jsonl"))
	if err != nil {
		return out, err
	}
	defer histFile.Close()
	faultFile, err := os.Create(filepath.Join(cfg.OutDir, "faults.log"))
	if err != nil {
		return out, err
	}
	defer faultFile.Close()
	rec := history.NewRecorder(histFile, start)
	faults := history.NewFaultLog(faultFile, start)

	var env []string
	if cfg.Mutation != "" {
		env = append(env, "ORBIT_MUTATION="+cfg.Mutation)
	}
	proxyFile, err := os.Create(filepath.Join(cfg.OutDir, "proxy.log"))
	if err != nil {
		return out, err
	}
	defer proxyFile.Close()
	proxyLog := slog.New(slog.NewTextHandler(proxyFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := newCluster(cfg.Binary, cfg.OutDir, cfg.Nodes, cfg.Seed, env, proxyLog)
	if err != nil {
		return out, err
	}
	defer c.stop()
	for _, n := range c.nodes {
		if err := c.start(n); err != nil {
			return out, err
		}
	}
	if err := waitReady(ctx, c.nodes, 60*time.Second); err != nil {
		return out, fmt.Errorf("jepsen: the cluster never became ready: %w", err)
	}
	faults.Note("cluster of %d nodes ready", cfg.Nodes)
	cfg.Logf("jepsen: %d nodes ready; %s under %v for %v", cfg.Nodes, cfg.Workload, cfg.Nemeses, cfg.Duration)

	clients := make([]*client, cfg.Concurrency)
	for i := range clients {
		clients[i] = newClient(i, c.nodes[i%len(c.nodes)], cfg.Seed, cfg.OpTimeout)
		defer clients[i].rdb.Close()
	}

	// The workload and the nemesis, for cfg.Duration.
	runCtx, stopRun := context.WithTimeout(ctx, cfg.Duration)
	var wg sync.WaitGroup
	nm := &nemesis{c: c, kinds: cfg.Nemeses, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6e656d)), log: faults, logf: cfg.Logf}
	wg.Add(1)
	go func() { defer wg.Done(); nm.run(runCtx) }()
	interval := time.Duration(float64(time.Second) * float64(cfg.Concurrency) / cfg.Rate)
	for _, p := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				op := history.Op{Process: p.id, Node: p.node.id, Invoke: rec.Since()}
				err := wl.op(runCtx, p, &op)
				op.Complete = rec.Since()
				if runCtx.Err() != nil && err != nil {
					op.Type = history.TypeInfo // cut short by the end of the run
				} else {
					op.Type = outcome(err)
				}
				if err != nil && !errors.Is(err, context.Canceled) {
					op.Error = err.Error()
				}
				rec.Record(op)
				// Paced, with jitter, so the clients do not march in step.
				_ = sleep(runCtx, time.Duration(float64(interval)*(0.5+p.rng.Float64())))
			}
		}()
	}
	wg.Wait()
	stopRun()

	// Heal, then require the cluster to serve again within cfg.Recovery.
	healed := time.Now()
	if err := c.healAll(ctx); err != nil {
		faults.Note("heal: %v", err)
	}
	faults.Note("healed every fault")
	recovered := true
	if err := waitReady(ctx, c.nodes, cfg.Recovery); err != nil {
		recovered = false
		out.Notes = append(out.Notes, fmt.Sprintf("the cluster did not recover within %v of the heal: %v", cfg.Recovery, err))
		faults.Note("NOT RECOVERED within %v: %v", cfg.Recovery, err)
	} else {
		took := time.Since(healed).Round(time.Millisecond)
		out.Notes = append(out.Notes, fmt.Sprintf("every node ready %v after the heal (bound %v)", took, cfg.Recovery))
		faults.Note("every node ready %v after the heal", took)
	}

	// Final reads through every node (retried: a node may still be catching up).
	for _, n := range c.nodes {
		p := newClient(1000+n.id, n, cfg.Seed, 10*time.Second)
		for _, f := range wl.finals() {
			op := f
			op.Process, op.Node = p.id, n.id
			deadline := time.Now().Add(cfg.Recovery)
			for {
				op.Invoke = rec.Since()
				err := read(ctx, p, &op)
				op.Complete = rec.Since()
				op.Type, op.Error = outcome(err), ""
				if err != nil {
					op.Error, op.Type = err.Error(), history.TypeFail // a read: no effect
				}
				rec.Record(op)
				if err == nil || time.Now().After(deadline) {
					if err != nil {
						recovered = false
						out.Notes = append(out.Notes, fmt.Sprintf("final read %s through %s failed: %v", op.F, n, err))
					}
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		p.rdb.Close()
	}

	c.stop()
	ops := rec.Ops()
	vizPath := filepath.Join(cfg.OutDir, "porcupine.html")
	out.Results = wl.check(ops, vizPath)
	if !recovered {
		out.Results = append(out.Results, check.Result{Name: "recovery", Valid: false,
			Summary: "the cluster must serve every node within the recovery bound after the heal", Problems: out.Notes})
	} else {
		out.Results = append(out.Results, check.Result{Name: "recovery", Valid: true, Summary: out.Notes[0]})
	}

	files := []string{"history.jsonl", "faults.log", "proxy.log"}
	if cfg.Workload == "register" {
		files = append(files, "porcupine.html")
	}
	for _, n := range c.nodes {
		files = append(files, filepath.Base(n.logPath))
	}
	nemeses := strings.Join(cfg.Nemeses, "+")
	if nemeses == "" {
		nemeses = "none"
	}
	replay := fmt.Sprintf("orbit jepsen --nodes %d --duration %v --workload %s --nemesis %s --rate %g --concurrency %d --seed %d",
		cfg.Nodes, cfg.Duration, cfg.Workload, nemeses, cfg.Rate, cfg.Concurrency, cfg.Seed)
	in := report.Input{
		Title: fmt.Sprintf("orbit jepsen: %s, %s, %d nodes, seed %d", cfg.Workload, nemeses, cfg.Nodes, cfg.Seed),
		Config: [][2]string{
			{"nodes", fmt.Sprint(cfg.Nodes)}, {"duration", cfg.Duration.String()}, {"workload", cfg.Workload},
			{"nemesis", nemeses}, {"rate", fmt.Sprintf("%g ops/s", cfg.Rate)}, {"concurrency", fmt.Sprint(cfg.Concurrency)},
			{"seed", fmt.Sprint(cfg.Seed)}, {"planted bug", orNone(cfg.Mutation)}, {"started", start.UTC().Format(time.RFC3339)},
			{"replay (the same fault schedule; real timing differs)", replay},
		},
		Ops: ops, Faults: faults.Faults(), Results: out.Results, Notes: out.Notes, Files: files,
	}
	valid, err := report.Write(cfg.OutDir, in)
	out.Valid = valid
	if err != nil {
		return out, err
	}
	if err := errors.Join(rec.Err(), faults.Err()); err != nil {
		return out, fmt.Errorf("jepsen: writing the history: %w", err)
	}
	return out, nil
}

// ParseNemeses reads a nemesis list as the flags give it: comma-separated
// names, "all", or "none" (or empty).
func ParseNemeses(s string) []string {
	switch s {
	case "all":
		return slices.Clone(AllNemeses)
	case "none", "":
		return nil
	}
	return strings.Split(s, ",")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Summary is the report's summary.txt, for printing.
func (o Outcome) Summary() string {
	b, err := os.ReadFile(filepath.Join(o.Dir, "summary.txt"))
	if err != nil {
		return err.Error()
	}
	return string(b)
}
