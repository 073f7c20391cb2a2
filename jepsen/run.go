package jepsen

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/orbitkernel/orbit/jepsen/avail"
	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/report"
	"github.com/orbitkernel/orbit/jepsen/topo"
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
	// RecoveryBound: after a kill-leader or pause-leader fault starts,
	// every other node's clients must be served again, on every range
	// they try, within it. Default 2 s: two 200 ms election timeouts plus
	// client retries come to about 1 s.
	RecoveryBound time.Duration
	// AvailabilityFloor: during a slow-leader fault, ok ops/s must stay
	// at least this fraction of the calm periods'. Default 0.5.
	AvailabilityFloor float64
	// LeaderRange: the leader nemeses hurt this range's leader; 0 (the
	// default): the node leading the most ranges.
	LeaderRange int
	// TLS runs the cluster with certificates (orbit serve --certs-dir) and
	// every client of the harness over TLS (tls.go).
	TLS  bool
	Logf func(format string, args ...any)
}

func (c *Config) defaults() {
	setDefault(&c.Nodes, 3)
	setDefault(&c.Duration, 60*time.Second)
	setDefault(&c.Workload, "register")
	setDefault(&c.Rate, 200)
	setDefault(&c.Concurrency, 10)
	setDefault(&c.Recovery, 30*time.Second)
	setDefault(&c.OpTimeout, 3*time.Second)
	setDefault(&c.RecoveryBound, 2*time.Second)
	setDefault(&c.AvailabilityFloor, 0.5)
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
	// Availability is each fault's recovery and availability analysis.
	Availability avail.Report
	// Replay is the command that runs the same schedule again.
	Replay string
}

// Result is the result of the checker or verdict called name.
func (o Outcome) Result(name string) (check.Result, bool) {
	for _, r := range o.Results {
		if r.Name == name {
			return r, true
		}
	}
	return check.Result{}, false
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
			return out, fmt.Errorf("jepsen: %w", &UnknownNemesisError{Name: n})
		}
	}
	if !slices.Contains(AllWorkloads, cfg.Workload) {
		return out, fmt.Errorf("jepsen: unknown workload %q (have %s)", cfg.Workload, strings.Join(AllWorkloads, ", "))
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
	c, err := startCluster(ctx, cfg, env, proxyLog)
	if err != nil {
		return out, err
	}
	defer c.stop()
	faults.Note("cluster of %d nodes ready", cfg.Nodes)
	cfg.Logf("jepsen: %d nodes ready; %s under %v for %v", cfg.Nodes, cfg.Workload, cfg.Nemeses, cfg.Duration)

	// The ranges' slots, to spread the register's keys over every range
	// and to tell the ranges apart in the analysis.
	ranges := c.topology(ctx)
	if ranges == nil {
		ranges = topo.EvenRanges(c.ranges)
		faults.Note("no node answered GET /cluster: assuming %d even ranges", c.ranges)
	}
	wl, err := newWorkload(cfg.Workload, ranges)
	if err != nil {
		return out, err
	}
	if err := c.createClientUsers(ctx, cfg.Recovery); err != nil {
		return out, err
	}
	faults.Note("the clients' Redis user and SQL role %q made", clientUser)

	clients := make([]*client, cfg.Concurrency)
	for i := range clients {
		clients[i] = newClient(i, c.nodes[i%len(c.nodes)], cfg.Seed, cfg.OpTimeout)
		defer clients[i].close()
	}

	// The workload and the nemesis, for cfg.Duration.
	runCtx, stopRun := context.WithTimeout(ctx, cfg.Duration)
	var wg sync.WaitGroup
	nm := &nemesis{c: c, kinds: cfg.Nemeses, leaderRange: cfg.LeaderRange, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6e656d)), log: faults, logf: cfg.Logf}
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
	// sql-bank and bank: a backup a third of the way in, under the same
	// faults.
	var backup struct {
		taken bool
		note  string
	}
	backupDir := filepath.Join(cfg.OutDir, "backup")
	backedUpWL, backs := wl.(backedUp)
	if backs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			backup.taken, backup.note = c.backupDuringRun(runCtx, backupDir, cfg.Duration/3, faults)
		}()
	}
	wg.Wait()
	stopRun()
	workloadEnd := rec.Since()

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
		took := time.Since(healed)
		out.Notes = append(out.Notes, fmt.Sprintf("every node ready %s after the heal (bound %s)", report.D(took), report.D(cfg.Recovery)))
		faults.Note("every node ready %s after the heal", report.D(took))
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
		p.close()
	}

	// Refusals for size, while the nodes still run to be asked.
	sizes := c.oversized(ctx)
	c.stop()
	ops := rec.Ops()
	vizPath := filepath.Join(cfg.OutDir, "porcupine.html")
	out.Results = wl.check(ops, vizPath)
	if backs {
		if backup.taken {
			out.Results = append(out.Results, checkRestoredBank(ctx, cfg, backupDir, backedUpWL, c.nodes[0].tls))
		} else {
			out.Results = append(out.Results, check.Result{Name: "backup", Summary: "a backup must be taken during the run", Problems: []string{backup.note}})
		}
		out.Notes = append(out.Notes, backup.note)
	}
	if !recovered {
		out.Results = append(out.Results, check.Result{Name: "recovery", Valid: false,
			Summary: "the cluster must serve every node within the recovery bound after the heal", Problems: out.Notes})
	} else {
		out.Results = append(out.Results, check.Result{Name: "recovery", Valid: true, Summary: out.Notes[0]})
	}

	// Availability: per fault, and the verdicts on the leader nemeses.
	nodeIDs := ids(c.nodes)
	out.Availability = avail.Analyze(avail.Input{Ops: ops, Faults: faults.Faults(), Nodes: nodeIDs, Ranges: ranges, End: workloadEnd})
	verdicts, notes := availabilityVerdicts(out.Availability, cfg, workloadEnd)
	out.Results = append(out.Results, verdicts...)
	out.Notes = append(out.Notes, notes...)
	out.Results = append(out.Results, messageSizeResult(sizes))
	if err := writeFaultsJSON(filepath.Join(cfg.OutDir, "faults.json"), faults.Faults()); err != nil {
		return out, err
	}

	files := []string{"history.jsonl", "faults.log", "faults.json", "proxy.log"}
	if cfg.Workload == "register" {
		files = append(files, "porcupine.html")
	}
	for _, n := range c.nodes {
		files = append(files, filepath.Base(n.logPath))
	}
	nemeses := nemesisList{&cfg.Nemeses}.String()
	out.Replay = cfg.ReplayCommand()
	replayNote := "replay (the same fault schedule; real timing differs)"
	if cfg.Mutation != "" {
		replayNote = "replay (with --binary: a server built with -tags orbit_mutations; real timing differs)"
	}
	in := report.Input{
		Title: fmt.Sprintf("orbit jepsen: %s, %s, %d nodes, seed %d", cfg.Workload, nemeses, cfg.Nodes, cfg.Seed),
		Config: [][2]string{
			{"nodes", fmt.Sprint(cfg.Nodes)}, {"duration", cfg.Duration.String()}, {"workload", cfg.Workload},
			{"nemesis", nemeses}, {"rate", fmt.Sprintf("%g ops/s", cfg.Rate)}, {"concurrency", fmt.Sprint(cfg.Concurrency)},
			{"seed", fmt.Sprint(cfg.Seed)}, {"planted bug", orNone(cfg.Mutation)}, {"tls", map[bool]string{true: "on (--certs-dir; every client over TLS)", false: "off"}[cfg.TLS]}, {"started", start.UTC().Format(time.RFC3339)},
			{"ranges", rangesText(ranges)},
			{replayNote, out.Replay},
		},
		Ops: ops, Faults: faults.Faults(), Results: out.Results, Notes: out.Notes, Files: files,
		Availability: &out.Availability,
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

// writeFaultsJSON writes the faults with everything the nemesis recorded
// (faults.log has their times, kinds and details only), so the analysis
// can be redone from the run's directory.
func writeFaultsJSON(path string, fs []history.Fault) error {
	b, err := json.MarshalIndent(fs, "", "  ")
	if err != nil {
		return fmt.Errorf("jepsen: encoding faults: %w", err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// rangesText is "1: slots 0-5460 on n1,n2,n3; 2: ...".
func rangesText(rs []topo.Range) string {
	var parts []string
	for _, r := range rs {
		p := fmt.Sprintf("%d: slots %d-%d", r.ID, r.First, r.Last)
		if r.Replicas != nil {
			p += " on " + topo.Nodes(r.Replicas)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
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

// startCluster lays out, starts and waits for a cluster. The free ports it
// picks are free when picked, not when a node binds them: another process
// (a test running beside this one) can take one in between, and the node
// then exits with "address already in use". That is the harness's race,
// not the server's, so the cluster is laid out again on new ports, up to
// three times.
func startCluster(ctx context.Context, cfg Config, env []string, proxyLog *slog.Logger) (*cluster, error) {
	var sec *clusterTLS
	if cfg.TLS {
		var err error
		if sec, err = newClusterTLS(cfg.OutDir); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		c, err := newCluster(cfg.Binary, cfg.OutDir, cfg.Nodes, cfg.Seed, env, sec, proxyLog)
		if err != nil {
			return nil, err
		}
		for _, n := range c.nodes {
			if err = c.start(n); err != nil {
				break
			}
		}
		if err == nil {
			if err = waitReady(ctx, c.nodes, 60*time.Second); err == nil {
				return c, nil
			}
			err = fmt.Errorf("jepsen: the cluster never became ready: %w", err)
		}
		c.stop()
		if attempt == 3 || !c.portTaken() {
			return nil, err
		}
		cfg.Logf("jepsen: a port was taken before a node bound it; laying the cluster out again (%v)", err)
		for _, n := range c.nodes {
			_ = os.RemoveAll(n.dir)
			_ = os.Remove(n.logPath)
		}
	}
}

// portTaken reports whether a node's log says it could not bind a port.
func (c *cluster) portTaken() bool {
	for _, n := range c.nodes {
		if b, err := os.ReadFile(n.logPath); err == nil && bytes.Contains(b, []byte("address already in use")) {
			return true
		}
	}
	return false
}
