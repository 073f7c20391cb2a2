package pgwire_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/orbitkernel/orbit/adapters/pgwire"
)

// start serves a fake engine on a loopback port; the listener is shut
// down at the end of the test.
func start(t *testing.T, tlsConfig *tls.Config) (*pgwire.Listener, *fakeEngine, string) {
	t.Helper()
	e := newFakeEngine()
	l, err := pgwire.Listen(pgwire.Options{Addr: "127.0.0.1:0", TLS: tlsConfig, Open: e.open})
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.Shutdown(ctx)
	})
	return l, e, l.Addr().String()
}

func connect(t *testing.T, addr, params string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, "postgres://u@"+addr+"/db?"+params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestQueries runs the same statements in every exec mode, with TLS
// disabled and with the default sslmode (prefer: refused, then plain).
func TestQueries(t *testing.T) {
	_, _, addr := start(t, nil)
	modes := map[string]pgx.QueryExecMode{
		"cache_statement": pgx.QueryExecModeCacheStatement,
		"cache_describe":  pgx.QueryExecModeCacheDescribe,
		"describe_exec":   pgx.QueryExecModeDescribeExec,
		"exec":            pgx.QueryExecModeExec,
		"simple_protocol": pgx.QueryExecModeSimpleProtocol,
	}
	for _, ssl := range []string{"sslmode=disable", ""} {
		for name, mode := range modes {
			t.Run(name+"/"+ssl, func(t *testing.T) {
				c := connect(t, addr, ssl)
				ctx := context.Background()
				var one int32
				if err := c.QueryRow(ctx, "SELECT 1", mode).Scan(&one); err != nil || one != 1 {
					t.Fatalf("SELECT 1: %v, %v", one, err)
				}
				var s string
				if err := c.QueryRow(ctx, "SELECT $1::text", mode, "it's ok").Scan(&s); err != nil || s != "it's ok" {
					t.Fatalf("SELECT $1::text: %q, %v", s, err)
				}
				var null *string
				if err := c.QueryRow(ctx, "SELECT $1::text", mode, nil).Scan(&null); err != nil || null != nil {
					t.Fatalf("SELECT NULL: %v, %v", null, err)
				}
				rows, err := c.Query(ctx, "SELECT generate_series(1, 1000)", mode)
				if err != nil {
					t.Fatal(err)
				}
				var n, sum int64
				for rows.Next() {
					var v int32
					if err := rows.Scan(&v); err != nil {
						t.Fatal(err)
					}
					n++
					sum += int64(v)
				}
				if rows.Err() != nil || n != 1000 || sum != 500500 || rows.CommandTag().String() != "SELECT 1000" {
					t.Fatalf("generate_series: %d rows, sum %d, tag %q, %v", n, sum, rows.CommandTag(), rows.Err())
				}
				// An error, then the connection still works.
				_, err = c.Exec(ctx, "SELECT * FROM missing", mode)
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != "42P01" || pe.Position != 15 || pe.Severity != "ERROR" {
					t.Fatalf("missing table: %#v", err)
				}
				if err := c.QueryRow(ctx, "SELECT 1", mode).Scan(&one); err != nil {
					t.Fatalf("after an error: %v", err)
				}
			})
		}
	}
}

// TestSimpleMultiStatement: several statements in one Query, the first
// error skipping the rest; an empty query.
func TestSimpleMultiStatement(t *testing.T) {
	_, _, addr := start(t, nil)
	c := connect(t, addr, "sslmode=disable")
	ctx := context.Background()
	res, err := c.PgConn().Exec(ctx, "SELECT 1; SELECT generate_series(1, 3); SELECT * FROM missing; SELECT 1").ReadAll()
	if pgCode(err) != "42P01" || len(res) != 2 || len(res[1].Rows) != 3 {
		t.Fatalf("results %d, err %v", len(res), err)
	}
	res, err = c.PgConn().Exec(ctx, " -- nothing\n; ").ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 0 || res[0].CommandTag.String() != "" {
		t.Fatalf("empty query: %v, %v", res, err)
	}
	if _, err := c.Exec(ctx, "SELEKT", pgx.QueryExecModeSimpleProtocol); pgCode(err) != "42601" {
		t.Fatalf("syntax error: %v", err)
	}
}

// TestPreparedStatements: named statements, duplicates, unknown names.
func TestPreparedStatements(t *testing.T) {
	_, _, addr := start(t, nil)
	c := connect(t, addr, "sslmode=disable")
	ctx := context.Background()
	pc := c.PgConn()
	sd, err := pc.Prepare(ctx, "s1", "SELECT $1::text", nil)
	if err != nil || len(sd.ParamOIDs) != 1 || sd.ParamOIDs[0] != 25 || len(sd.Fields) != 1 {
		t.Fatalf("prepare: %+v, %v", sd, err)
	}
	if _, err := pc.Prepare(ctx, "s1", "SELECT 1", nil); pgCode(err) != "42P05" {
		t.Fatalf("duplicate: %v", err)
	}
	r := pc.ExecPrepared(ctx, "s1", [][]byte{[]byte("x")}, nil, nil).Read()
	if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != "x" {
		t.Fatalf("exec prepared: %+v", r)
	}
	if r := pc.ExecPrepared(ctx, "nope", nil, nil, nil).Read(); pgCode(r.Err) != "26000" {
		t.Fatalf("unknown statement: %v", r.Err)
	}
	if err := pc.Deallocate(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if r := pc.ExecPrepared(ctx, "s1", [][]byte{[]byte("x")}, nil, nil).Read(); pgCode(r.Err) != "26000" {
		t.Fatalf("deallocated statement: %v", r.Err)
	}
	// Binary formats pass through: int4 asked in binary is 4 bytes.
	r = pc.ExecParams(ctx, "SELECT 1", nil, nil, nil, []int16{1}).Read()
	if r.Err != nil || len(r.Rows) != 1 || len(r.Rows[0][0]) != 4 || r.FieldDescriptions[0].Format != 1 {
		t.Fatalf("binary: %+v", r)
	}
	r = pc.ExecParams(ctx, "SELECT $1::text", [][]byte{[]byte("bin")}, []uint32{25}, []int16{1}, []int16{1}).Read()
	if r.Err != nil || string(r.Rows[0][0]) != "bin" {
		t.Fatalf("binary text: %+v", r)
	}
	// pgx's own statement cache with a named prepare.
	if _, err := c.Prepare(ctx, "p2", "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	var one int32
	if err := c.QueryRow(ctx, "p2").Scan(&one); err != nil || one != 1 {
		t.Fatalf("pgx prepared: %v %v", one, err)
	}
}

// TestCancel: a CancelRequest stops the statement running (57014) and the
// connection goes on; pgx's context handling sends one too.
func TestCancel(t *testing.T) {
	_, e, addr := start(t, nil)
	c := connect(t, addr, "sslmode=disable")
	ctx := context.Background()
	go func() {
		<-e.sleeping
		if err := c.PgConn().CancelRequest(ctx); err != nil {
			t.Error(err)
		}
	}()
	_, err := c.Exec(ctx, "SELECT pg_sleep(100)")
	if pgCode(err) != "57014" {
		t.Fatalf("cancelled: %v", err)
	}
	var one int32
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("after cancel: %v", err)
	}

	// Through a context, with pgx sending the CancelRequest.
	cfg, err := pgx.ParseConfig("postgres://u@" + addr + "/db?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, CancelRequestDelay: 0, DeadlineDelay: 5 * time.Second}
	}
	c2, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err = c2.Exec(qctx, "SELECT pg_sleep(100)", mode)
		cancel()
		<-e.sleeping
		if pgCode(err) != "57014" && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("context cancel (%v): %v", mode, err)
		}
		if err := c2.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("after context cancel: %v", err)
		}
	}
}

// TestNoticesAndParameters: NoticeResponse reaches the client, and a
// changed parameter is reported with ParameterStatus.
func TestNoticesAndParameters(t *testing.T) {
	_, _, addr := start(t, nil)
	cfg, err := pgx.ParseConfig("postgres://u@" + addr + "/db?sslmode=disable&application_name=first")
	if err != nil {
		t.Fatal(err)
	}
	notices := make(chan string, 4)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n.Severity + " " + n.Message }
	ctx := context.Background()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	pc := c.PgConn()
	if v := pc.ParameterStatus("application_name"); v != "first" {
		t.Fatalf("application_name at start-up: %q", v)
	}
	if pc.ParameterStatus("server_version") != "15.0" || pc.PID() == 0 {
		t.Fatalf("start-up: version %q pid %d", pc.ParameterStatus("server_version"), pc.PID())
	}
	if _, err := c.Exec(ctx, "SET application_name = 'second'"); err != nil {
		t.Fatal(err)
	}
	if v := pc.ParameterStatus("application_name"); v != "second" {
		t.Fatalf("application_name after SET: %q", v)
	}
	if _, err := c.Exec(ctx, "SELECT notice()"); err != nil {
		t.Fatal(err)
	}
	if n := <-notices; n != "NOTICE hello from notice()" {
		t.Fatalf("notice: %q", n)
	}
	if _, err := c.Exec(ctx, "BEGIN", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if s := pc.TxStatus(); s != 'T' {
		t.Fatalf("status in a transaction: %c", s)
	}
	if _, err := c.Exec(ctx, "COMMIT"); err != nil || pc.TxStatus() != 'I' {
		t.Fatalf("commit: %v %c", err, pc.TxStatus())
	}
}

// TestStartupRefusals: Open's error is a FATAL with its code; a start-up
// without user, and one of protocol 2.0, are refused as PostgreSQL does.
func TestStartupRefusals(t *testing.T) {
	_, e, addr := start(t, nil)
	ctx := context.Background()
	_, err := pgx.Connect(ctx, "postgres://u@"+addr+"/nosuchdb?sslmode=disable")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "3D000" || pe.Severity != "FATAL" {
		t.Fatalf("no such database: %v", err)
	}

	fe, nc := rawDial(t, addr)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"database": "db"}})
	if got := exchange(t, fe); got != "E FATAL 28000 no PostgreSQL user name specified in startup packet|EOF" {
		t.Fatalf("no user: %s", got)
	}
	nc.Close()

	fe, nc = rawDial(t, addr)
	if _, err := nc.Write([]byte{0, 0, 0, 8, 0, 2, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, fe); !strings.HasPrefix(got, "E FATAL 0A000 unsupported frontend protocol 2.0") {
		t.Fatalf("protocol 2.0: %s", got)
	}
	nc.Close()

	// 3.2 with a protocol option: negotiated down to 3.0.
	fe, nc = rawDial(t, addr)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion32, Parameters: map[string]string{"user": "u", "_pq_.x": "1"}})
	if got := exchange(t, fe); !strings.HasPrefix(got, "v 0 [_pq_.x]|R|S ") || !strings.HasSuffix(got, "|K|Z I") {
		t.Fatalf("3.2: %s", got)
	}
	nc.Close()

	waitFor(t, func() bool { o, c := e.counts(); return o == c && o > 0 })
}

// TestExtendedCorners drives the extended protocol message by message.
func TestExtendedCorners(t *testing.T) {
	_, _, addr := start(t, nil)
	fe, nc := rawStartup(t, addr)
	defer nc.Close()

	// Row limits: PortalSuspended, then the rest.
	fe.Send(&pgproto3.Parse{Query: "SELECT generate_series(1, 3)"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Describe{ObjectType: 'P'})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Execute{MaxRows: 2})
	fe.Send(&pgproto3.Sync{})
	want := "1|2|T generate_series|D 1|D 2|s|D 3|C SELECT 1|Z I"
	if got := exchange(t, fe); got != want {
		t.Fatalf("max rows:\n got %s\nwant %s", got, want)
	}

	// An error discards everything up to Sync; Close of nothing is fine;
	// the unnamed portal is gone after Sync.
	fe.Send(&pgproto3.Parse{Name: "a", Query: "SELECT * FROM missing"})
	fe.Send(&pgproto3.Bind{PreparedStatement: "a"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Send(&pgproto3.Close{ObjectType: 'S', Name: "nothing"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	want = "E ERROR 42P01 relation \"missing\" does not exist|Z I|3|E ERROR 34000 portal \"\" does not exist|Z I"
	if got := exchange(t, fe, 2); got != want {
		t.Fatalf("error and skip:\n got %s\nwant %s", got, want)
	}

	// Describe of a statement; an empty query; several statements refused.
	fe.Send(&pgproto3.Parse{Name: "e", Query: "SELECT $1::text"})
	fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: "e"})
	fe.Send(&pgproto3.Parse{Query: " "})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Describe{ObjectType: 'P'})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Parse{Query: "SELECT 1; SELECT 1"})
	fe.Send(&pgproto3.Sync{})
	want = "1|t [25]|T text|1|2|n|I|E ERROR 42601 cannot insert multiple commands into a prepared statement|Z I"
	if got := exchange(t, fe); got != want {
		t.Fatalf("describe:\n got %s\nwant %s", got, want)
	}

	// Flush sends what is pending without a Sync.
	fe.Send(&pgproto3.Bind{PreparedStatement: "e", Parameters: [][]byte{[]byte("v")}})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		got = append(got, summary(t, fe))
	}
	if strings.Join(got, "|") != "2|D v|C SELECT 1" {
		t.Fatalf("flush: %s", got)
	}
	fe.Send(&pgproto3.FunctionCall{Function: 1})
	if got := exchange(t, fe); got != "E ERROR 0A000 function call protocol is not supported|Z I" {
		t.Fatalf("function call: %s", got)
	}
	fe.Send(&pgproto3.CopyDone{})
	fe.Send(&pgproto3.Query{String: "SELECT 1"})
	if got := exchange(t, fe); got != "T ?column?|D 1|C SELECT 1|Z I" {
		t.Fatalf("after CopyDone: %s", got)
	}
	fe.Send(&pgproto3.Terminate{})
	if got := exchange(t, fe); got != "EOF" {
		t.Fatalf("terminate: %s", got)
	}
}

// TestGarbage: a malformed message ends that connection only, with a
// FATAL 08P01.
func TestGarbage(t *testing.T) {
	_, e, addr := start(t, nil)
	other := connect(t, addr, "sslmode=disable")
	for _, bad := range [][]byte{
		[]byte("garbage!"),                 // unknown message type 'g'
		{'Q', 0, 0, 0, 3},                  // a length below 4
		{'B', 0, 0, 0, 6, 'x', 'y'},        // a Bind without its fields
		{'Q', 0x7f, 0xff, 0xff, 0xff, 'x'}, // beyond MaxMessage
	} {
		fe, nc := rawStartup(t, addr)
		if _, err := nc.Write(bad); err != nil {
			t.Fatal(err)
		}
		got := exchange(t, fe)
		if !strings.HasPrefix(got, "E FATAL 08P01 ") || !strings.HasSuffix(got, "|EOF") {
			t.Fatalf("%q: %s", bad, got)
		}
		nc.Close()
		var one int32
		if err := other.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("other connection after %q: %v", bad, err)
		}
	}
	// Every session closed but the other connection's.
	waitFor(t, func() bool { o, c := e.counts(); return o == c+1 })
}

// TestBigResult streams a result larger than any buffer.
func TestBigResult(t *testing.T) {
	_, _, addr := start(t, nil)
	c := connect(t, addr, "sslmode=disable")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		rows, err := c.Query(context.Background(), "SELECT generate_series(1, 300000)", mode)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || n != 300000 {
			t.Fatalf("%d rows, %v", n, rows.Err())
		}
	}
}

// TestTLS: with Options.TLS, sslmode=require gets TLS; without a TLS
// config it is refused.
func TestTLS(t *testing.T) {
	_, _, addr := start(t, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
	c := connect(t, addr, "sslmode=require")
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("not TLS: %T", c.PgConn().Conn())
	}
	var one int32
	if err := c.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	// Cancel over TLS: pgx encrypts the cancel connection too.
	if err := c.PgConn().CancelRequest(context.Background()); err != nil {
		t.Fatal(err)
	}

	_, _, plain := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := pgx.Connect(ctx, "postgres://u@"+plain+"/db?sslmode=require"); err == nil {
		t.Fatal("sslmode=require accepted without TLS")
	}
}

// TestPsql runs the real psql, if installed.
func TestPsql(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed")
	}
	_, _, addr := start(t, nil)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(psql, "-h", host, "-p", port, "-U", "u", "-d", "db", "-X", "-A", "-t", "-c", "SELECT 1")
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5", "PGPASSWORD=")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("psql: %v: %s", err, out)
	}
	cmd = exec.Command(psql, "-h", host, "-p", port, "-U", "u", "-d", "db", "-X", "-c", "SELECT * FROM missing")
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), `relation "missing" does not exist`) {
		t.Fatalf("psql error: %s", out)
	}
}

// TestShutdown: an idle connection is told 57P01, a running statement is
// cancelled and its connection told 57P01, every session is closed.
func TestShutdown(t *testing.T) {
	l, e, addr := start(t, nil)
	fe, nc := rawStartup(t, addr)
	defer nc.Close()
	busy := connect(t, addr, "sslmode=disable")
	errc := make(chan error, 1)
	go func() {
		_, err := busy.Exec(context.Background(), "SELECT pg_sleep(100)")
		errc <- err
	}()
	<-e.sleeping
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.Shutdown(ctx)
	if got := exchange(t, fe); got != "E FATAL 57P01 terminating connection due to administrator command|EOF" {
		t.Fatalf("idle connection: %s", got)
	}
	if err := <-errc; pgCode(err) != "57P01" {
		t.Fatalf("busy connection: %v", err)
	}
	if o, c := e.counts(); o != 2 || c != 2 {
		t.Fatalf("sessions opened %d, closed %d", o, c)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting")
	}
}

func TestListenError(t *testing.T) {
	l, _, addr := start(t, nil)
	_ = l
	_, err := pgwire.Listen(pgwire.Options{Addr: addr, Open: newFakeEngine().open})
	if err == nil || err.Error() != "listen "+addr+": address already in use" {
		t.Fatalf("busy port: %v", err)
	}
	if _, err := pgwire.Listen(pgwire.Options{Addr: "127.0.0.1:0"}); err == nil {
		t.Fatal("no Open accepted")
	}
}

// rawDial opens a socket with a pgproto3 frontend on it.
func rawDial(t *testing.T, addr string) (*pgproto3.Frontend, net.Conn) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return pgproto3.NewFrontend(nc, nc), nc
}

// rawStartup is rawDial and a start-up through to ReadyForQuery.
func rawStartup(t *testing.T, addr string) (*pgproto3.Frontend, net.Conn) {
	t.Helper()
	fe, nc := rawDial(t, addr)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "u"}})
	if got := exchange(t, fe); !strings.HasPrefix(got, "R|S ") || !strings.HasSuffix(got, "|K|Z I") {
		t.Fatalf("start-up: %s", got)
	}
	return fe, nc
}

// exchange flushes what fe has to send and reads the replies up to the
// syncs-th ReadyForQuery (1 by default) or the end of the connection,
// summarised.
func exchange(t *testing.T, fe *pgproto3.Frontend, syncs ...int) string {
	t.Helper()
	want := 1
	if len(syncs) > 0 {
		want = syncs[0]
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		s := summary(t, fe)
		got = append(got, s)
		if s == "EOF" {
			break
		}
		if strings.HasPrefix(s, "Z ") {
			if want--; want == 0 {
				break
			}
		}
	}
	return strings.Join(got, "|")
}

// summary reads one message and words it shortly ("EOF" at the end).
func summary(t *testing.T, fe *pgproto3.Frontend) string {
	t.Helper()
	msg, err := fe.Receive()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal(err)
		}
		return "EOF"
	}
	switch m := msg.(type) {
	case *pgproto3.ErrorResponse:
		return fmt.Sprintf("E %s %s %s", m.Severity, m.Code, m.Message)
	case *pgproto3.ReadyForQuery:
		return "Z " + string(m.TxStatus)
	case *pgproto3.RowDescription:
		names := make([]string, len(m.Fields))
		for i, f := range m.Fields {
			names[i] = string(f.Name)
		}
		return "T " + strings.Join(names, ",")
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			vals[i] = string(v)
		}
		return "D " + strings.Join(vals, ",")
	case *pgproto3.CommandComplete:
		return "C " + string(m.CommandTag)
	case *pgproto3.ParameterStatus:
		return "S " + m.Name
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("t %v", m.ParameterOIDs)
	case *pgproto3.NegotiateProtocolVersion:
		return fmt.Sprintf("v %d %v", m.NewestMinorProtocol, m.UnrecognizedOptions)
	case *pgproto3.AuthenticationOk:
		return "R"
	case *pgproto3.BackendKeyData:
		return "K"
	case *pgproto3.ParseComplete:
		return "1"
	case *pgproto3.BindComplete:
		return "2"
	case *pgproto3.CloseComplete:
		return "3"
	case *pgproto3.NoData:
		return "n"
	case *pgproto3.PortalSuspended:
		return "s"
	case *pgproto3.EmptyQueryResponse:
		return "I"
	}
	return fmt.Sprintf("%T", msg)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 5 s")
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
