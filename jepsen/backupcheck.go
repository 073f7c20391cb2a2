package jepsen

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
)

// A backup under faults (issue 18): a third of the way through a
// sql-bank or bank run the harness takes a backup with `orbit backup
// create` through whichever node answers, while transfers and the
// nemeses go on; after the run it restores the backup into a new
// one-node cluster and reads every balance there. The SQL accounts are
// one transaction's snapshot; the Redis accounts (the bank workload's,
// in several ranges) are each range at one point with every transaction
// across ranges whole (docs/backup.md). Either way the total must be the
// starting one and no balance below zero.

// backedUp is a workload whose runs take a backup, checked by restoring
// it.
type backedUp interface {
	workload
	// restoredTotal reads every account through p (a client of the
	// restored node): how many, and their total, or what is wrong.
	restoredTotal(ctx context.Context, p *client) (accounts int, total int64, err error)
}

func (w *sqlBankWorkload) restoredTotal(ctx context.Context, p *client) (int, int64, error) {
	op := history.Op{F: "read-sql-bank", Key: w.key()}
	if err := readSQLBank(ctx, p, &op); err != nil {
		return 0, 0, fmt.Errorf("reading the restored accounts: %w", err)
	}
	total := int64(0)
	for id, v := range op.Values {
		if v == "" {
			return 0, 0, fmt.Errorf("account %d is not in the restored table (%v)", id, op.Values)
		}
		b, err := strconv.ParseInt(v, 10, 64)
		if err != nil || b < 0 {
			return 0, 0, fmt.Errorf("account %d holds %q in the restored table", id, v)
		}
		total += b
	}
	return w.accounts, total, nil
}

func (w *bankWorkload) restoredTotal(ctx context.Context, p *client) (int, int64, error) {
	op := w.finals()[0]
	if err := read(ctx, p, &op); err != nil {
		return 0, 0, fmt.Errorf("reading the restored accounts: %w", err)
	}
	total := int64(0)
	for i, v := range op.Values {
		b := int64(bankStart) // an account never written
		if v != "" {
			n, _, _ := strings.Cut(v, "/")
			var err error
			if b, err = strconv.ParseInt(n, 10, 64); err != nil || b < 0 {
				return 0, 0, fmt.Errorf("account %s holds %q in the restored node", w.accounts[i], v)
			}
		}
		total += b
	}
	return len(w.accounts), total, nil
}

// backupAttempt bounds one orbit backup create.
const backupAttempt = 30 * time.Second

// backupDuringRun waits until at, then takes a backup into dir, trying
// the nodes in turn until one succeeds or ctx ends; it says how it went.
func (c *cluster) backupDuringRun(ctx context.Context, dir string, at time.Duration, faults *history.FaultLog) (taken bool, note string) {
	if sleep(ctx, at) != nil {
		return false, "the run ended before the backup's time"
	}
	var tries []string
	for i := 0; ctx.Err() == nil; i++ {
		n := c.nodes[i%len(c.nodes)]
		faults.Note("backup: orbit backup create through %s", n)
		// An attempt the run's end overtakes still finishes.
		out, err := c.orbitCLI(context.WithoutCancel(ctx), backupAttempt, n, "backup", "create", dir)
		if err == nil {
			faults.Note("backup: taken through %s: %s", n, out)
			return true, fmt.Sprintf("backup taken through %s during the run (%s)", n, out)
		}
		faults.Note("backup: through %s failed: %v", n, err)
		tries = append(tries, fmt.Sprintf("%s: %v", n, err))
		if sleep(ctx, 500*time.Millisecond) != nil {
			break
		}
	}
	return false, "no backup could be taken during the run: " + strings.Join(tries, "; ")
}

// orbitCLI runs `orbit args... --addr n's HTTP address` (with the
// cluster's certificates when TLS is on) for at most limit, and returns
// its output's last line.
func (c *cluster) orbitCLI(ctx context.Context, limit time.Duration, n *node, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	args = append(args, "--addr", n.httpAddr)
	if n.tls != nil {
		args = append(args, "--certs-dir", n.tls.dir)
	}
	out, err := exec.CommandContext(ctx, c.bin, args...).CombinedOutput()
	text := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[i+1:]
	}
	if err != nil {
		return text, fmt.Errorf("%v: %s", err, text)
	}
	return text, nil
}

// checkRestoredBank restores the backup in dir into a new one-node
// cluster (under outDir/restore) and judges its balances.
func checkRestoredBank(ctx context.Context, cfg Config, dir string, w backedUp, tls *clusterTLS) check.Result {
	res := check.Result{Name: "backup"}
	fail := func(format string, args ...any) check.Result {
		res.Summary = "the backup taken during the run must restore to the starting total"
		res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
		return res
	}
	c, err := newCluster(cfg.Binary, filepath.Join(cfg.OutDir, "restore"), 1, cfg.Seed, nil, tls, slog.New(slog.DiscardHandler))
	if err != nil {
		return fail("laying out the restore cluster: %v", err)
	}
	defer c.stop()
	if err := os.MkdirAll(filepath.Join(cfg.OutDir, "restore"), 0o755); err != nil {
		return fail("%v", err)
	}
	n := c.nodes[0]
	if err := c.start(n); err != nil {
		return fail("starting the restore node: %v", err)
	}
	if err := waitReady(ctx, c.nodes, 60*time.Second); err != nil {
		return fail("the restore node: %v", err)
	}
	out, err := c.orbitCLI(ctx, 2*time.Minute, n, "backup", "restore", dir)
	if err != nil {
		return fail("orbit backup restore: %v (log: %s)", err, n.logPath)
	}
	p := newClient(3000, n, cfg.Seed, 10*time.Second)
	defer p.close()
	accounts, total, err := w.restoredTotal(ctx, p)
	if err != nil {
		return fail("%v", err)
	}
	if want := int64(accounts) * bankStart; total != want {
		return fail("the %d restored accounts hold %d, not %d", accounts, total, want)
	}
	res.Valid = true
	res.Summary = fmt.Sprintf("restored into a new node (%s): %d accounts holding the starting total %d", out, accounts, total)
	return res
}
