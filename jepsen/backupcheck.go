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

// A backup under faults (issue 18): halfway through a sql-bank run the
// harness takes a backup with `orbit backup create` through whichever
// node answers, while transfers and the nemeses go on; after the run it
// restores the backup into a new one-node cluster and reads every
// balance there. The backup is one transaction's snapshot, so the total
// must be the starting one and no balance below zero.

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
func checkRestoredBank(ctx context.Context, cfg Config, dir string, w *sqlBankWorkload, tls *clusterTLS) check.Result {
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
	op := history.Op{F: "read-sql-bank", Key: w.key()}
	if err := readSQLBank(ctx, p, &op); err != nil {
		return fail("reading the restored accounts: %v", err)
	}
	total := int64(0)
	for id, v := range op.Values {
		if v == "" {
			return fail("account %d is not in the restored table (%v)", id, op.Values)
		}
		b, err := strconv.ParseInt(v, 10, 64)
		if err != nil || b < 0 {
			return fail("account %d holds %q in the restored table", id, v)
		}
		total += b
	}
	if want := int64(w.accounts) * bankStart; total != want {
		return fail("the restored accounts hold %d, not %d: %v", total, want, op.Values)
	}
	res.Valid = true
	res.Summary = fmt.Sprintf("restored into a new node (%s): %d accounts holding the starting total %d", out, w.accounts, total)
	return res
}
