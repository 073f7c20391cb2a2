package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestServeSQLScram: roles made while the server trusts its clients log
// in with their passwords (SCRAM-SHA-256, pgx and libpq's psql) once it
// runs with --pg-auth scram; a wrong password, an unknown role and a role
// without a password are refused with 28P01, alike.
func TestServeSQLScram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and restarts orbit serve")
	}
	bin := buildOrbit(t)
	ns := startCluster(t, bin, 1)
	n := ns[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := connectSQL(t, ctx, n.pgAddr)
	for _, sql := range []string{"CREATE USER alice PASSWORD 'secret'", "ALTER ROLE postgres PASSWORD 'pw'", "CREATE ROLE quiet", "CREATE USER nopass"} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var roles string
	if err := conn.QueryRow(ctx, "SELECT string_agg(rolname, ',') FROM pg_roles").Scan(&roles); err != nil || roles != "postgres,alice,nopass,quiet" {
		t.Fatalf("pg_roles: %q, %v", roles, err)
	}
	conn.Close(ctx)

	// Restart with SCRAM required.
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	<-n.exited
	n.extra = append(n.extra, "--pg-auth", "scram")
	n.start(t, bin)
	waitNodeReady(t, n, 30*time.Second)

	login := func(user, password string) error {
		c, err := pgx.Connect(ctx, "postgres://"+user+":"+password+"@"+n.pgAddr+"/postgres?sslmode=disable")
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var one int
		return c.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	for _, ok := range [][2]string{{"alice", "secret"}, {"postgres", "pw"}} {
		if err := login(ok[0], ok[1]); err != nil {
			t.Errorf("%s with the right password: %v", ok[0], err)
		}
	}
	for _, bad := range [][2]string{{"alice", "wrong"}, {"bob", "secret"}, {"nopass", ""}, {"quiet", "x"}} {
		err := login(bad[0], bad[1])
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28P01" {
			t.Errorf("%s with password %q: %v, want 28P01", bad[0], bad[1], err)
		}
	}
	if got := failureCount(t, http.DefaultClient, "http://"+n.httpAddr, "postgres"); got != "4" {
		t.Errorf("orbit_auth_failures_total{listener=\"postgres\"} = %s, want 4", got)
	}
	if psql, err := exec.LookPath("psql"); err == nil {
		host, port, _ := strings.Cut(n.pgAddr, ":")
		cmd := exec.CommandContext(ctx, psql, "-h", host, "-p", port, "-U", "alice", "-d", "postgres", "-Atc", "SELECT 40 + 2")
		cmd.Env = append(os.Environ(), "PGPASSWORD=secret", "PGSSLMODE=disable")
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "42" {
			t.Errorf("psql as alice: %q, %v", out, err)
		}
	}
}
