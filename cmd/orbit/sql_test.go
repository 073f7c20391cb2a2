package main

import (
	"context"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// startSQLServer runs orbit serve in-process with a PostgreSQL listener
// on ranges ranges and returns its address.
func startSQLServer(t *testing.T, ranges int) string {
	t.Helper()
	cfg := serveConfig{ranges: ranges, pgAddr: "127.0.0.1:0"}
	cfg.nodeID, cfg.dataDir, cfg.redisAddr, cfg.httpAddr = 1, filepath.Join(t.TempDir(), "data"), "127.0.0.1:0", "127.0.0.1:0"
	a, _ := launchServer(t, cfg)
	waitReady(t, a[1])
	return a[2]
}

func connectSQL(t *testing.T, ctx context.Context, addr string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, "postgres://postgres@"+addr+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestServeSQLWithPgx: pgx's default (extended, binary) protocol through
// orbit serve: every supported type round-trips through parameters and
// results, prepared statements, RETURNING, a transaction block, and the
// SQLSTATEs of common mistakes.
func TestServeSQLWithPgx(t *testing.T) {
	addr := startSQLServer(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := connectSQL(t, ctx, addr)

	if _, err := conn.Exec(ctx, `CREATE TABLE kinds (id bigint PRIMARY KEY, i int, s smallint, b boolean, f float8, n numeric(10,3),
		t text, v varchar(5), d date, ts timestamptz, raw bytea)`); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 4, 10, 30, 15, 123456000, time.UTC)
	d := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	var id int64
	err := conn.QueryRow(ctx, `INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		int64(1<<40), int32(-7), int16(3), true, 2.5, "1234.5675", "héllo", "abc", d, ts, []byte{0, 1, 255}).Scan(&id)
	if err != nil || id != 1<<40 {
		t.Fatalf("insert: id %d, %v", id, err)
	}
	var (
		i   int32
		s   int16
		b   bool
		f   float64
		n   pgtype.Numeric
		txt string
		v   string
		gd  time.Time
		gts time.Time
		raw []byte
	)
	err = conn.QueryRow(ctx, `SELECT i, s, b, f, n, t, v, d, ts, raw FROM kinds WHERE id = $1`, int64(1<<40)).Scan(&i, &s, &b, &f, &n, &txt, &v, &gd, &gts, &raw)
	if err != nil {
		t.Fatal(err)
	}
	want := big.NewInt(1234568) // numeric(10,3) rounds 1234.5675 to 1234.568
	if i != -7 || s != 3 || !b || f != 2.5 || n.Int.Cmp(want) != 0 || n.Exp != -3 || txt != "héllo" || v != "abc" || !gd.Equal(d) || !gts.Equal(ts) || string(raw) != "\x00\x01\xff" {
		t.Errorf("read back %v %v %v %v %v/%v %q %q %v %v %x", i, s, b, f, n.Int, n.Exp, txt, v, gd, gts, raw)
	}

	// A uuid in binary, both ways.
	u := [16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	var gu [16]byte
	var gs string
	if err := conn.QueryRow(ctx, "SELECT $1::uuid, $1::uuid::text", u).Scan(&gu, &gs); err != nil || gu != u || gs != "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" {
		t.Errorf("uuid: %x %q %v", gu, gs, err)
	}

	// An interval in binary, both ways.
	var gi pgtype.Interval
	if err := conn.QueryRow(ctx, "SELECT $1::interval + interval '1 day'", pgtype.Interval{Months: 1, Days: 2, Microseconds: 3, Valid: true}).Scan(&gi); err != nil || gi.Months != 1 || gi.Days != 3 || gi.Microseconds != 3 {
		t.Errorf("interval: %+v %v", gi, err)
	}

	// jsonb in binary, both ways.
	var gj map[string]any
	var ga string
	if err := conn.QueryRow(ctx, "SELECT $1::jsonb, $1::jsonb ->> 'a'", map[string]any{"a": "x", "n": 2}).Scan(&gj, &ga); err != nil || gj["a"] != "x" || gj["n"] != 2.0 || ga != "x" {
		t.Errorf("jsonb: %v %q %v", gj, ga, err)
	}

	// A prepared statement run many times, and a transaction block.
	if _, err := conn.Prepare(ctx, "put", "INSERT INTO kinds (id, t) VALUES ($1, $2)"); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 20 {
		if _, err := tx.Exec(ctx, "put", int64(k), strings.Repeat("x", k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var count, total int64
	if err := conn.QueryRow(ctx, "SELECT count(*), sum(length(t)) FROM kinds WHERE id < 100").Scan(&count, &total); err != nil || count != 20 || total != 190 {
		t.Errorf("count %d, total %d, %v; want 20, 190", count, total, err)
	}

	// COPY FROM STDIN in pgx's binary format, then COPY TO STDOUT.
	var copyRows [][]any
	for k := range 500 {
		copyRows = append(copyRows, []any{int64(1000 + k), "copied"})
	}
	if n, err := conn.CopyFrom(ctx, pgx.Identifier{"kinds"}, []string{"id", "t"}, pgx.CopyFromRows(copyRows)); err != nil || n != 500 {
		t.Fatalf("CopyFrom: %d, %v", n, err)
	}
	var buf strings.Builder
	tag, err := conn.PgConn().CopyTo(ctx, &buf, "COPY (SELECT id, t FROM kinds WHERE id >= 1000 AND id < 1003 ORDER BY id) TO STDOUT WITH (FORMAT csv)")
	if err != nil || tag.String() != "COPY 3" || buf.String() != "1000,copied\n1001,copied\n1002,copied\n" {
		t.Errorf("CopyTo: %q, %q, %v", tag, buf.String(), err)
	}

	for _, c := range []struct {
		sql  string
		code string
	}{
		{"INSERT INTO kinds (id) VALUES (1)", "23505"},
		{"INSERT INTO kinds (id, v) VALUES (99, 'toolong')", "22001"},
		{"SELECT nope FROM kinds", "42703"},
		{"SELECT * FROM nope", "42P01"},
		{"SELECT 1/0", "22012"},
		{"SELEC 1", "42601"},
		{"CREATE TABLE kinds (a int)", "42P07"},
	} {
		_, err := conn.Exec(ctx, c.sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != c.code {
			t.Errorf("%s: %v, want SQLSTATE %s", c.sql, err, c.code)
		}
	}
}

// TestServeSQLConflictsAreSerializable: concurrent read-modify-write
// transactions on one row through pgx either commit or fail with 40001,
// and the committed increments all count.
func TestServeSQLConflictsAreSerializable(t *testing.T) {
	addr := startSQLServer(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	setup := connectSQL(t, ctx, addr)
	if _, err := setup.Exec(ctx, "CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec(ctx, "INSERT INTO counter VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	committed := 0
	for range 4 {
		conn := connectSQL(t, ctx, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					var n int64
					if err := tx.QueryRow(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "UPDATE counter SET n = $1 WHERE id = 1", n+1)
					return err
				})
				var pe *pgconn.PgError
				switch {
				case err == nil:
					mu.Lock()
					committed++
					mu.Unlock()
				case errors.As(err, &pe) && pe.Code == "40001":
				default:
					t.Errorf("transaction: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var n int64
	if err := setup.QueryRow(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != int64(committed) || committed == 0 {
		t.Errorf("counter %d after %d committed increments", n, committed)
	}
}

// TestServePsql: psql's \copy and its describe commands (which read the
// catalogs).
func TestServePsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql is not installed (scripts/install-test-deps.sh installs it)")
	}
	addr := startSQLServer(t, 1)
	host, port, _ := strings.Cut(addr, ":")
	run := func(cmds ...string) string {
		args := []string{"-h", host, "-p", port, "-U", "postgres", "-d", "postgres", "-X", "-v", "ON_ERROR_STOP=1"}
		for _, c := range cmds {
			args = append(args, "-c", c)
		}
		out, err := exec.Command(psql, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %v: %v\n%s", cmds, err, out)
		}
		return string(out)
	}
	run("CREATE TABLE accounts (id serial PRIMARY KEY, owner varchar(20) NOT NULL, balance numeric(12,2) DEFAULT 0)")
	// psql's \copy sends COPY ... FROM STDIN with the file's lines.
	data := filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(data, []byte("ann,10.50\nbob,\n\"cy, jr\",7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run(`\copy accounts (owner, balance) FROM '` + data + `' WITH (FORMAT csv)`); !strings.Contains(out, "COPY 3") {
		t.Errorf("\\copy: %s", out)
	}
	if out := run("SELECT id, owner, balance FROM accounts ORDER BY id"); !strings.Contains(out, "3 | cy, jr |    7.00") || !strings.Contains(out, "2 | bob    |        ") {
		t.Errorf("after \\copy:\n%s", out)
	}
	for cmd, want := range map[string][]string{
		`\dt`:         {"public | accounts | table | postgres"},
		`\d accounts`: {`Table "public.accounts"`, "owner   | character varying(20) |           | not null |", "numeric(12,2)", `"accounts_pkey" PRIMARY KEY, btree (id)`},
		`\l`:          {"postgres | postgres | UTF8"},
		`\du`:         {"postgres  | Superuser"},
		`\dn`:         {"public | postgres"},
	} {
		out := run(cmd)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("psql %s: no %q in\n%s", cmd, w, out)
			}
		}
	}
}
