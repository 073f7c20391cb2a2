package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestServePgbench is issue 15's acceptance run: pgbench -i, then each
// builtin script (tpcb-like, simple-update, select-only) in the simple
// and the prepared protocol, against one node and against three
// processes: no transaction fails, and afterwards pgbench's invariants
// hold (the accounts' balances sum to the history's deltas; the tellers'
// to the branches', which only tpcb-like changes).
func TestServePgbench(t *testing.T) {
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		t.Skip("pgbench is not installed (scripts/install-test-deps.sh installs it)")
	}
	if testing.Short() {
		t.Skip("loads 100,000 rows twice")
	}
	bin := buildOrbit(t)
	for _, nodes := range []int{1, 3} {
		t.Run(map[int]string{1: "one node", 3: "three nodes"}[nodes], func(t *testing.T) {
			ns := startCluster(t, bin, nodes)
			addr := ns[0].pgAddr
			host, port, _ := strings.Cut(addr, ":")
			run := func(args ...string) string {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				out, err := exec.CommandContext(ctx, pgbench, append([]string{"-h", host, "-p", port, "-U", "postgres", "-n"}, append(args, "postgres")...)...).CombinedOutput()
				if err != nil {
					t.Fatalf("pgbench %v: %v\n%s", args, err, out)
				}
				return string(out)
			}
			run("-i", "-q")
			for _, script := range []string{"tpcb-like", "simple-update", "select-only"} {
				for _, mode := range []string{"simple", "prepared"} {
					out := run("-b", script, "-M", mode, "-t", "30")
					if !strings.Contains(out, "number of transactions actually processed: 30/30") || !strings.Contains(out, "number of failed transactions: 0 ") {
						t.Errorf("pgbench -b %s -M %s:\n%s", script, mode, out)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn := connectSQL(t, ctx, addr)
			var accounts, tellers, branches, history int64
			err := conn.QueryRow(ctx, `SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),
				(SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(delta) FROM pgbench_history)`).Scan(&accounts, &tellers, &branches, &history)
			// simple-update changes accounts and history only: tellers and
			// branches move together, by the tpcb-like deltas.
			if err != nil || accounts != history || tellers != branches || tellers == 0 {
				t.Errorf("balances: accounts %d, tellers %d, branches %d, history %d (%v)", accounts, tellers, branches, history, err)
			}
		})
	}
}
