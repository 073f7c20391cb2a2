package query_test

// Differential tests: the same statements run on Orbit's engine, served
// over the real PostgreSQL wire protocol (adapters/pgwire), and on a real
// PostgreSQL 15 (internal/pgtest), and their outcomes must agree: the
// rows as text, the result columns' names and types, the command tag, or
// the error's SQLSTATE.
//
//	go test ./query -run Diff                         # the default run
//	go test ./query -run TestDiffRandom -rapid.checks=2000 -rapid.seed=N
//	ORBIT_DIFF_KNOWN=1 go test ./query -run TestDiffKnownDivergences
//	ORBIT_DIFF_SQL='CREATE TABLE t (a int); SELECT a FROM t' go test ./query -run TestDiffAdhoc -v
//
// TestDiffRandom generates a random table, rows and statements with rapid
// and stops at the first divergence, printing the statements that led to
// it (rapid shrinks them first). Divergences already known are listed in
// knownDivergences (one fixed repro each, run by
// TestDiffKnownDivergences) and the generator steers around them
// (genOptions), so that a run finds new ones.
//
// Rows are compared as multisets unless the statement's ORDER BY fixes the
// order of every output row. Error messages are not compared (TestDiffCases
// logs those that differ under one SQLSTATE). Some differences are of
// evaluation order, not of meaning, and are not counted: PostgreSQL reads
// a table in insertion order and Orbit in key order, so when several rows
// would raise errors, which error comes first may differ (compare accepts
// any two errors of classes 21, 22, 23); and EXISTS, IN and LIMIT stop at
// the first rows they need, so the generator keeps predicates there from
// failing (safePred) and never draws LIMIT 0 (PostgreSQL then reads
// nothing at all).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/adapters/pgwire"
	"github.com/orbitkernel/orbit/internal/pgtest"
	"github.com/orbitkernel/orbit/query"
)

const stmtTimeout = 20 * time.Second // one statement, on either side

// outcome is what one statement did, as a client sees it.
type outcome struct {
	Code    string   // SQLSTATE of the error; "" when it succeeded
	Message string   // the error's message
	Tag     string   // command tag
	Cols    []string // "name:typeOID" per result column
	Rows    []string // each row's values as text, " | "-joined, NULL as NULL
}

func (o outcome) String() string {
	if o.Code != "" {
		return fmt.Sprintf("ERROR %s: %s", o.Code, o.Message)
	}
	var b strings.Builder
	if o.Cols != nil {
		b.WriteString(strings.Join(o.Cols, " | "))
		b.WriteString("\n")
		for _, r := range o.Rows {
			b.WriteString("  " + r + "\n")
		}
	}
	b.WriteString(o.Tag)
	return b.String()
}

// run executes sql with the simple protocol, so that both servers get the
// same text, and reads every value as the text the server sent.
func run(c *pgx.Conn, sql string) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	rows, err := c.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return errOutcome(err)
	}
	var o outcome
	for _, f := range rows.FieldDescriptions() {
		o.Cols = append(o.Cols, f.Name+":"+strconv.Itoa(int(f.DataTypeOID)))
	}
	for rows.Next() {
		var vals []string
		for _, v := range rows.RawValues() {
			if v == nil {
				vals = append(vals, "NULL")
			} else {
				vals = append(vals, string(v))
			}
		}
		o.Rows = append(o.Rows, strings.Join(vals, " | "))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return errOutcome(err)
	}
	if o.Cols != nil && o.Rows == nil {
		o.Rows = []string{}
	}
	o.Tag = rows.CommandTag().String()
	return o
}

func errOutcome(err error) outcome {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return outcome{Code: pe.Code, Message: pe.Message}
	}
	return outcome{Code: "client", Message: err.Error()}
}

// compare says how got (Orbit) differs from want (PostgreSQL), "" when it
// does not. ordered compares rows in order; otherwise as multisets.
// Error messages are not compared (see messageNote).
func compare(got, want outcome, ordered bool) string {
	if got.Code != want.Code && !(orderDependent(got.Code) && orderDependent(want.Code)) {
		return fmt.Sprintf("orbit: %s\npostgres: %s", got, want)
	}
	if got.Code != "" {
		return ""
	}
	if got.Tag != want.Tag || !slices.Equal(got.Cols, want.Cols) || (got.Rows == nil) != (want.Rows == nil) {
		return fmt.Sprintf("orbit:\n%s\npostgres:\n%s", got, want)
	}
	g, w := got.Rows, want.Rows
	if !ordered {
		g, w = slices.Clone(g), slices.Clone(w)
		slices.Sort(g)
		slices.Sort(w)
	}
	if !slices.Equal(g, w) {
		return fmt.Sprintf("orbit:\n%s\npostgres:\n%s", got, want)
	}
	return ""
}

// orderDependent: errors of classes 21 (cardinality: a subquery's second
// row), 22 (data exception: division by zero, overflow, bad input) and 23
// (integrity: not null, unique) come from one row, and which comes first
// when several rows would raise one depends on the order the rows are
// read in, which differs: PostgreSQL reads a heap in insertion order,
// Orbit in key order. Two such errors count as the same outcome.
func orderDependent(code string) bool {
	return strings.HasPrefix(code, "21") || strings.HasPrefix(code, "22") || strings.HasPrefix(code, "23")
}

// messageNote reports errors with the same SQLSTATE but other words.
func messageNote(got, want outcome) string {
	if got.Code != "" && got.Code != want.Code {
		return fmt.Sprintf("other data exception (the rows' order decides): orbit %s %q, postgres %s %q", got.Code, got.Message, want.Code, want.Message)
	}
	if got.Code != "" && got.Code == want.Code && got.Message != want.Message {
		return fmt.Sprintf("same SQLSTATE %s, other message: orbit %q, postgres %q", got.Code, got.Message, want.Message)
	}
	return ""
}

// pair is a connection to each side.
type pair struct {
	t      testing.TB
	pgDSN  string
	orbDSN string
	pg     *pgx.Conn
	orbit  *pgx.Conn
}

// newPair starts PostgreSQL (skipping t if it is not installed) and an
// Orbit engine served over pgwire, and connects to both.
func newPair(t testing.TB) *pair {
	t.Helper()
	srv := pgtest.Start(t)
	e := query.NewTestEngine(t)
	l, err := pgwire.Listen(pgwire.Options{Addr: "127.0.0.1:0", Open: func(ctx context.Context, pid uint32, user, db string, params map[string]string) (pgwire.Session, error) {
		return e.Open(ctx, pid, user, db, params)
	}})
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Shutdown(ctx)
	})
	p := &pair{t: t, pgDSN: srv.DSN(), orbDSN: "postgres://postgres@" + l.Addr().String() + "/postgres?sslmode=disable"}
	p.pg = p.connect(p.pgDSN)
	p.orbit = p.connect(p.orbDSN)
	t.Cleanup(func() {
		_ = p.pg.Close(context.Background())
		_ = p.orbit.Close(context.Background())
	})
	return p
}

func (p *pair) connect(dsn string) *pgx.Conn {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		p.t.Fatalf("connecting to %s: %v", dsn, err)
	}
	return c
}

// exec runs sql on both sides and returns Orbit's outcome and
// PostgreSQL's. A connection that broke is replaced, so that one bad
// statement does not spoil the rest of a run.
func (p *pair) exec(sql string) (orbit, pg outcome) {
	orbit = run(p.orbit, sql)
	pg = run(p.pg, sql)
	if p.orbit.IsClosed() {
		p.orbit = p.connect(p.orbDSN)
	}
	if p.pg.IsClosed() {
		p.pg = p.connect(p.pgDSN)
	}
	return orbit, pg
}

// reset drops what a check made, on both sides, and starts new sessions:
// each check begins as a new client would ("stale descriptor after DROP
// and CREATE" is why a session is not reused).
func (p *pair) reset() {
	for _, sql := range []string{"ROLLBACK", "DROP VIEW IF EXISTS w", "DROP VIEW IF EXISTS v", "DROP TABLE IF EXISTS u", "DROP TABLE IF EXISTS t", "DROP SEQUENCE IF EXISTS s"} {
		p.exec(sql)
	}
	_ = p.orbit.Close(context.Background())
	_ = p.pg.Close(context.Background())
	p.orbit = p.connect(p.orbDSN)
	p.pg = p.connect(p.pgDSN)
}

// stmt is one generated or listed statement.
type stmt struct {
	SQL string
	// Ordered: the statement's ORDER BY fixes the order of every output
	// row, so rows are compared in order.
	Ordered bool
}

// diffCase is a fixed sequence of statements whose outcomes must agree.
type diffCase struct {
	name  string
	stmts []stmt
	// note, for a known divergence: what each side answers today.
	note string
}

func s(sql string) stmt  { return stmt{SQL: sql} }
func so(sql string) stmt { return stmt{SQL: sql, Ordered: true} }

// runCase runs c's statements on both sides after a reset and reports
// each divergence with t.Errorf.
func (p *pair) runCase(t *testing.T, c diffCase) {
	t.Helper()
	p.reset()
	for i, st := range c.stmts {
		o, g := p.exec(st.SQL)
		if d := compare(o, g, st.Ordered); d != "" {
			t.Errorf("statement %d: %s\n%s", i+1, st.SQL, d)
		} else if n := messageNote(o, g); n != "" {
			t.Logf("statement %d: %s: %s", i+1, st.SQL, n)
		}
	}
}

// diffCases cover what the generator generates, with fixed statements;
// both sides agree on them.
var diffCases = []diffCase{
	{name: "types", stmts: []stmt{
		s(`CREATE TABLE t (a int4 PRIMARY KEY, b int8, c int2, d text, e varchar(5), f bool, g float8, h numeric, i numeric(6,2), j date)`),
		s(`INSERT INTO t VALUES (1, 9223372036854775807, 32767, '', 'abcde', true, 1.5, 12.345, 1234.5, '2000-01-01'),
			(-2147483648, -1, -32768, 'x y', '', false, -0.25, -7, -0.005, '1999-12-31'),
			(2147483647, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`),
		so(`SELECT * FROM t ORDER BY a`),
		so(`SELECT a, b - 1, c / 2, g * 2, h * 2, i * 2, j FROM t WHERE b IS NOT NULL ORDER BY a`),
	}},
	{name: "where", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v text, n numeric)`),
		s(`INSERT INTO t VALUES (1, 'apple', 1.5), (2, 'banana', NULL), (3, NULL, -2), (4, 'a_b', 0), (5, '', 10)`),
		s(`SELECT k FROM t WHERE v LIKE 'a%' AND NOT (n IS NULL)`),
		s(`SELECT k FROM t WHERE k IN (1, 3, 7) OR v = ''`),
		s(`SELECT k FROM t WHERE n BETWEEN -2 AND 1.5`),
		s(`SELECT k, COALESCE(v, 'none') AS v FROM t`),
		s(`SELECT k, CASE WHEN n > 0 THEN 'pos' WHEN n < 0 THEN 'neg' ELSE 'zero' END AS sign FROM t`),
		s(`SELECT k FROM t WHERE v IS NULL`),
		s(`SELECT k FROM t WHERE k % 2 = 1 AND k - 1 >= 0`),
		s(`SELECT k::text || '-' || v AS kv FROM t`),
	}},
	{name: "order limit distinct", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v int)`),
		s(`INSERT INTO t VALUES (1, 3), (2, NULL), (3, 1), (4, 3), (5, NULL)`),
		so(`SELECT k, v FROM t ORDER BY v NULLS FIRST, k`),
		so(`SELECT k, v FROM t ORDER BY v DESC NULLS LAST, k DESC`),
		so(`SELECT k, v FROM t ORDER BY v, k LIMIT 2 OFFSET 1`),
	}},
	{name: "aggregates", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, g text, v int, f float8)`),
		s(`INSERT INTO t VALUES (1, 'a', 10, 0.5), (2, 'a', NULL, 1.5), (3, 'b', 5, NULL), (4, NULL, 7, 2)`),
		s(`SELECT count(*), count(v), sum(v), avg(v), min(v), max(v), sum(f), avg(f) FROM t`),
		so(`SELECT g, count(*), sum(v) FROM t GROUP BY g ORDER BY 1 NULLS FIRST`),
		so(`SELECT g, max(v) FROM t GROUP BY g HAVING count(*) > 1 ORDER BY 1`),
		s(`SELECT count(*) FROM t WHERE false`),
		s(`SELECT sum(v) FROM t WHERE false`),
	}},
	{name: "subqueries", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v int)`),
		s(`INSERT INTO t VALUES (1, 2), (2, 3), (3, NULL)`),
		s(`SELECT k FROM t WHERE v = (SELECT max(k) FROM t)`),
		s(`SELECT k FROM t WHERE v IN (SELECT k FROM t)`),
		s(`SELECT k FROM t WHERE EXISTS (SELECT 1 FROM t AS s WHERE s.k = t.v)`),
		s(`SELECT k, (SELECT count(*) FROM t AS s WHERE s.k < t.k) AS below FROM t`),
		s(`SELECT (SELECT k FROM t)`),
	}},
	{name: "joins", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, p int)`),
		s(`INSERT INTO t VALUES (1, NULL), (2, 1), (3, 1), (4, 9)`),
		s(`SELECT a.k, b.k FROM t AS a JOIN t AS b ON b.p = a.k`),
		s(`SELECT a.k, b.k FROM t AS a LEFT JOIN t AS b ON b.p = a.k`),
		s(`SELECT a.k, b.k FROM t a LEFT JOIN t b ON b.p = a.k WHERE b.k IS NULL`),
	}},
	{name: "generate_series", stmts: []stmt{
		s(`SELECT g FROM generate_series(1, 5) AS g WHERE g % 2 = 1`),
		s(`SELECT g, g * g FROM generate_series(-2, 2) AS g`),
		s(`SELECT count(*) FROM generate_series(1, 0) AS g`),
	}},
	{name: "dml", stmts: []stmt{
		s(`CREATE TABLE t (k int, j text, v text NOT NULL, PRIMARY KEY (k, j))`),
		s(`INSERT INTO t VALUES (1, 'a', 'x'), (1, 'b', 'y') RETURNING *`),
		s(`INSERT INTO t VALUES (1, 'a', 'z')`),
		s(`INSERT INTO t VALUES (1, 'a', 'z'), (2, 'a', 'w') ON CONFLICT DO NOTHING RETURNING k, j`),
		s(`INSERT INTO t (k, j) VALUES (3, 'c')`),
		s(`UPDATE t SET v = v || '!' WHERE k = 1 RETURNING j, v`),
		s(`UPDATE t SET v = NULL WHERE k = 2`),
		s(`DELETE FROM t WHERE j = 'a' RETURNING k`),
		s(`SELECT * FROM t`),
	}},
	{name: "errors", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v varchar(3))`),
		s(`INSERT INTO t VALUES (1, 'abc')`),
		s(`SELECT k / 0 FROM t`),
		s(`SELECT 'abc'::int`),
		s(`SELECT nope FROM t`),
		s(`INSERT INTO t VALUES (2, 'abcd')`),
		s(`INSERT INTO t VALUES (NULL, 'a')`),
		s(`SELECT 2147483647 + k FROM t`),
		s(`SELECT * FROM nope`),
	}},
	// Divergences the differential tests found, fixed since.
	{name: "date out of range and date + bigint", stmts: []stmt{
		s(`CREATE TABLE t (c0 int8 PRIMARY KEY)`),
		s(`SELECT (DATE '2000-01-01' - 2147483647) AS x FROM generate_series(0, -1) AS g`),
		s(`SELECT * FROM t WHERE (DATE '1999-12-31' + c0) <= DATE '1999-12-31'`),
		s(`SELECT * FROM t WHERE (DATE '1999-12-31' + (-2147483648)) < (DATE '2000-01-01' + c0)`),
		s(`SELECT COALESCE(NULL, 2, 1 / 0), CASE WHEN false THEN 1 / 0 ELSE 3 END`),
	}},
	{name: "date arithmetic", note: "orbit: ERROR 42883 operator does not exist: date + integer (and date - integer, date - date); postgres: 2000-01-02, 1999-12-31, 1", stmts: []stmt{
		s(`SELECT DATE '2000-01-01' + 1`),
		s(`SELECT DATE '2000-01-01' - 1`),
		s(`SELECT DATE '2000-01-02' - DATE '2000-01-01'`),
	}},
	{name: "select distinct", note: "orbit: ERROR 0A000 SELECT DISTINCT ON is not supported; postgres: the distinct rows", stmts: []stmt{
		s(`SELECT DISTINCT 1`),
	}},
	{name: "int4 minimum literal", note: "orbit: column type bigint (20); postgres: integer (23) — PostgreSQL folds the minus into the constant", stmts: []stmt{
		s(`SELECT -2147483648 AS x`),
	}},
	{name: "min of varchar", note: "orbit: column type character varying (1043); postgres: text (25), as min(text) is what applies", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v varchar(3))`),
		s(`SELECT min(v), max(v) FROM t`),
	}},
	{name: "name of CASE", note: "orbit: columns named case, case; postgres: c0 (a CASE takes its ELSE's name when that is a column), text (a CAST of a CASE takes the type's name)", stmts: []stmt{
		s(`CREATE TABLE t (c0 int PRIMARY KEY)`),
		s(`SELECT CASE WHEN true THEN 1 ELSE c0 END FROM t`),
		s(`SELECT CAST(CASE WHEN true THEN 1 END AS text)`),
	}},
	{name: "NULL IN empty subquery", note: "orbit: NULL for both; postgres: NOT IN gives t, IN gives f (no row to compare with, so no NULL)", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY)`),
		s(`SELECT NULL::int NOT IN (SELECT k FROM t) AS a, NULL::int IN (SELECT k FROM t) AS b`),
	}},
	{name: "numeric division scale", note: "orbit: 1.5000000000000000, 1.0000000000000000, 10920.666666666667; postgres: 1.50000000000000000000, 1.00000000000000000000, 10920.6666666666666667 (select_div_scale adds a base-10000 digit when the dividend's first base-10000 digit is not above the divisor's); avg over integers and numerics likewise", stmts: []stmt{
		s(`SELECT 1.5 / 1 AS q, 1::numeric / 1 AS r, 32762::numeric / 3 AS s`),
		s(`SELECT avg(x) FROM generate_series(1, 1) AS x`),
	}},
	{name: "varchar and text common type", note: "orbit: COALESCE(varchar, text) is text (25); postgres: character varying (1043): select_common_type keeps the first type when each converts implicitly to the other", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v varchar(3))`),
		s(`SELECT COALESCE(v, 'x'::text) AS c FROM t`),
	}},
	{name: "literal cut to varchar length", note: "orbit: c0 = 'ab' is true for c0 = 'a' in a varchar(1) column, and '' NOT LIKE '%b%' false (the literal takes the column's varchar(1) and is cut to 'a', '%'); postgres: false, true", stmts: []stmt{
		s(`CREATE TABLE t (c0 varchar(1) PRIMARY KEY)`),
		s(`INSERT INTO t VALUES ('a'), ('')`),
		s(`SELECT c0 FROM t WHERE c0 = 'ab'`),
		s(`SELECT c0 FROM t WHERE c0 NOT LIKE '%b%'`),
	}},
	{name: "name of a scalar subquery", note: "orbit: column named ?column?; postgres: k (a scalar subquery takes its single column's name)", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY)`),
		s(`SELECT (SELECT s.k FROM t AS s) FROM t`),
		s(`SELECT (SELECT max(k) FROM t)`),
	}},
	{name: "COALESCE evaluates every argument", note: "orbit: ERROR 22012 division by zero; postgres: 0 and 1 (COALESCE stops at the first non-NULL argument)", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY)`),
		s(`INSERT INTO t VALUES (0)`),
		s(`SELECT COALESCE(k, 1 / k) FROM t`),
		s(`SELECT COALESCE(1, 1 / 0)`),
	}},
	{name: "NULL operand skips the other", note: "orbit: NULL, NULL, no row, NULL; postgres: ERROR 22012 division by zero each time (a strict operator or function evaluates all its arguments first)", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, n int)`),
		s(`INSERT INTO t VALUES (0, NULL)`),
		s(`SELECT n + 1 / k FROM t`),
		s(`SELECT n < 1 / k FROM t`),
		s(`SELECT k FROM t WHERE n <> 1 / k`),
		s(`SELECT abs(n) + 1 / k FROM t`),
	}},
	{name: "stale descriptor after DROP and CREATE", note: "orbit: ERROR 42601 INSERT has more expressions than target columns, then ERROR 0A000 cached plan must not change result type (the session keeps the dropped table's descriptor); postgres: INSERT 0 1, the row. Seen with the engine as of 2026-12-04 04:10 UTC, while the session descriptor cache was being written", stmts: []stmt{
		s(`CREATE TABLE t (a int PRIMARY KEY)`),
		s(`DROP TABLE t`),
		s(`CREATE TABLE t (a int PRIMARY KEY, b int)`),
		s(`INSERT INTO t VALUES (1, 1)`),
		s(`SELECT * FROM t`),
	}},
	{name: "numeric negative zero", note: "orbit: -0, -0.0, -0.0, -0, -0 (also from %); postgres: 0, 0.0, 0.0, 0, 0 (numeric has no negative zero)", stmts: []stmt{
		s(`SELECT 0::numeric * -1 AS a, -0.0 AS b, 0 * -1.5 AS c, abs(0::numeric) * -1 AS d, (-4)::numeric % 4 AS e`),
	}},
	{name: "float negative zero", note: "orbit: avg -0, then 0 and 0; postgres: avg 0 (float8_accum starts from +0), then -0 and -0 (negating 0 gives -0)", stmts: []stmt{
		s(`SELECT avg(x) FROM (VALUES (0 * -1::float8)) AS v(x)`),
		s(`SELECT -(0::float8) AS a, -x AS b FROM (VALUES (0::float8)) AS v(x)`),
	}},
	{name: "IN list starting with NULL", note: "orbit: ERROR 42883 operator does not exist: text = boolean (the unknown literal is taken for text); postgres: t", stmts: []stmt{
		s(`SELECT 't' IN (NULL, true) AS d`),
	}},
	{name: "type and name of NULLIF", note: "orbit: columns of type integer (23) and bigint (20), and an unnamed NULLIF is ?column?; postgres: smallint (21) and integer (23) (NULLIF is of its first argument's type), named nullif", stmts: []stmt{
		s(`SELECT NULLIF(1::int2, 7) AS a, NULLIF(1, 7::int8) AS b`),
		s(`SELECT NULLIF(1, 2)`),
	}},
	{name: "non-integer constant in ORDER BY", note: "orbit: the rows; postgres: ERROR 42601 non-integer constant in ORDER BY", stmts: []stmt{
		s(`SELECT 1 ORDER BY 1.5`),
		s(`SELECT 1 ORDER BY 'a'`),
		s(`SELECT 1 ORDER BY true`),
	}},
	{name: "unique constraints and indexes", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, email text UNIQUE, a int, b text, CONSTRAINT ab UNIQUE (a, b))`),
		s(`INSERT INTO t VALUES (1, 'x@y', 1, 'p'), (2, NULL, 1, NULL), (3, NULL, 1, NULL)`),
		s(`INSERT INTO t VALUES (4, 'x@y', 2, 'q')`),
		s(`INSERT INTO t VALUES (4, 'z@y', 1, 'p')`),
		s(`INSERT INTO t VALUES (4, 'z@y', 4, 'p'), (5, 'z@y', 5, 'p')`),
		s(`CREATE INDEX ON t (a)`),
		s(`CREATE INDEX t_b ON t (b, a)`),
		s(`CREATE INDEX IF NOT EXISTS t_b ON t (a)`),
		s(`CREATE INDEX t_b ON t (a)`),
		s(`CREATE INDEX t ON t (a)`),
		s(`SELECT k FROM t WHERE email = 'x@y'`),
		s(`SELECT k FROM t WHERE a = 1 AND b = 'p'`),
		s(`SELECT k, b FROM t WHERE a = 1`),
		s(`SELECT k FROM t WHERE b IS NULL AND a = 1`),
		s(`UPDATE t SET email = 'x@y' WHERE k = 2`),
		s(`UPDATE t SET email = 'w@y' WHERE k = 1`),
		s(`INSERT INTO t VALUES (5, 'x@y', 5, 'r')`),
		s(`SELECT k, email FROM t WHERE email = 'x@y'`),
		s(`UPDATE t SET k = k + 10 WHERE k = 5`),
		s(`SELECT k, email FROM t WHERE email = 'x@y'`),
		s(`DELETE FROM t WHERE k = 15`),
		s(`SELECT k FROM t WHERE email = 'x@y'`),
		s(`INSERT INTO t VALUES (6, 'x@y', 6, 's') ON CONFLICT DO NOTHING`),
		s(`INSERT INTO t VALUES (7, 'x@y', 7, 's') ON CONFLICT DO NOTHING`),
		s(`INSERT INTO t VALUES (8, 'x@y', 8, 's') ON CONFLICT (email) DO NOTHING`),
		s(`INSERT INTO t VALUES (8, 'x@y', 8, 's') ON CONFLICT ON CONSTRAINT t_email_key DO NOTHING`),
		s(`INSERT INTO t VALUES (6, 'v@y', 8, 's') ON CONFLICT (email) DO NOTHING`),
		s(`SELECT count(*) FROM t`),
		s(`CREATE UNIQUE INDEX t_a_u ON t (a)`),
		s(`DROP INDEX t_b`),
		s(`DROP INDEX t_b`),
		s(`DROP INDEX IF EXISTS t_b`),
		s(`DROP INDEX t_email_key`),
		s(`DROP INDEX t`),
		s(`ALTER TABLE t DROP CONSTRAINT t_email_key`),
		s(`INSERT INTO t VALUES (9, 'x@y', 9, 't')`),
		s(`ALTER TABLE t ADD CONSTRAINT t_email_key UNIQUE (email)`),
		s(`ALTER TABLE t ADD CONSTRAINT e2 UNIQUE (k, email)`),
		s(`ALTER TABLE t DROP COLUMN b`),
		s(`INSERT INTO t VALUES (10, 'q', 1)`),
		s(`TRUNCATE t`),
		s(`INSERT INTO t VALUES (1, 'x@y', 1)`),
		s(`SELECT k FROM t WHERE a = 1 AND email = 'x@y'`),
	}},
	{name: "unique index on a table keyed by rowid", stmts: []stmt{
		s(`CREATE TABLE t (a int, b text)`),
		s(`CREATE UNIQUE INDEX tu ON t (b)`),
		s(`INSERT INTO t VALUES (1, 'p'), (2, 'q'), (3, NULL), (4, NULL)`),
		s(`INSERT INTO t VALUES (5, 'p')`),
		s(`ALTER TABLE t ADD PRIMARY KEY (a)`),
		s(`INSERT INTO t VALUES (5, 'p')`),
		s(`SELECT a FROM t WHERE b = 'q'`),
		s(`ALTER TABLE t ADD COLUMN c int UNIQUE`),
		s(`ALTER TABLE t ADD COLUMN d int DEFAULT 7 UNIQUE`),
		s(`INSERT INTO t VALUES (6, 'r', 1), (7, 's', 1)`),
	}},
	{name: "WITH", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v int)`),
		s(`INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)`),
		s(`WITH big AS (SELECT k, v FROM t WHERE v > 10) SELECT k FROM big`),
		s(`WITH a AS (SELECT k FROM t), b (n) AS (SELECT k * 2 FROM a) SELECT n FROM b WHERE n > 2`),
		s(`WITH a AS (SELECT k FROM t) SELECT x.k, y.k FROM a x JOIN a y ON x.k = y.k + 1`),
		s(`WITH a AS (SELECT 1 AS one) SELECT (SELECT one FROM a) + k FROM t`),
		s(`WITH a AS (SELECT k FROM t WHERE k < 3) SELECT k FROM a UNION SELECT 9`),
		s(`WITH t AS (SELECT 42 AS k) SELECT k FROM t`),
		s(`WITH a AS (SELECT 1), a AS (SELECT 2) SELECT 1`),
		s(`WITH a (x, y) AS (SELECT 1) SELECT 1`),
		s(`WITH a AS (SELECT nope FROM t) SELECT 1`),
		s(`WITH s AS (SELECT k + 10 AS k, v FROM t) INSERT INTO t SELECT k, v FROM s`),
		s(`WITH s AS (SELECT 11 AS k) UPDATE t SET v = 0 WHERE k IN (SELECT k FROM s)`),
		s(`WITH s AS (SELECT 12 AS k) DELETE FROM t WHERE k IN (SELECT k FROM s) RETURNING k`),
		s(`SELECT * FROM t`),
	}},
	{name: "UPDATE FROM and DELETE USING", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v int)`),
		s(`CREATE TABLE u (k int PRIMARY KEY, delta int)`),
		s(`INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)`),
		s(`INSERT INTO u VALUES (1, 5), (3, 7), (4, 100)`),
		s(`UPDATE t SET v = t.v + u.delta FROM u WHERE u.k = t.k RETURNING t.k, t.v, u.delta`),
		s(`SELECT * FROM t`),
		s(`UPDATE t SET v = 0 FROM u WHERE u.delta > 1000`),
		s(`UPDATE t AS x SET v = x.v * 2 FROM u AS y WHERE y.k = x.k AND y.delta = 7`),
		s(`SELECT * FROM t`),
		s(`UPDATE t SET v = 1 FROM t`),
		s(`DELETE FROM t USING u WHERE u.k = t.k AND u.delta < 6 RETURNING t.k, u.delta`),
		s(`SELECT * FROM t`),
		s(`DELETE FROM t USING u, (SELECT 2 AS k) s WHERE t.k = s.k`),
		s(`SELECT * FROM t`),
	}},
	{name: "CHECK constraints", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, a int CHECK (a > 0), b int, c text, CHECK (b > a), CONSTRAINT short CHECK (length(c) < 4), CHECK (b < 100))`),
		s(`INSERT INTO t VALUES (1, 1, 2, 'x')`),
		s(`INSERT INTO t VALUES (2, 0, 2, 'x')`),
		s(`INSERT INTO t VALUES (2, 1, 1, 'x')`),
		s(`INSERT INTO t VALUES (2, 1, 2, 'long')`),
		s(`INSERT INTO t VALUES (2, 1, 200, 'x')`),
		s(`INSERT INTO t VALUES (2, NULL, NULL, NULL)`),
		s(`UPDATE t SET a = -1 WHERE k = 1`),
		s(`UPDATE t SET b = b + 1 RETURNING k, b`),
		s(`INSERT INTO t VALUES (1, 5, 6, 'x') ON CONFLICT (k) DO UPDATE SET b = 0`),
		s(`ALTER TABLE t ADD CONSTRAINT big CHECK (k > 1)`),
		s(`ALTER TABLE t ADD CONSTRAINT small CHECK (k < 10)`),
		s(`ALTER TABLE t ADD CONSTRAINT small CHECK (k < 20)`),
		s(`INSERT INTO t VALUES (11, 1, 2, 'x')`),
		s(`ALTER TABLE t DROP CONSTRAINT small`),
		s(`INSERT INTO t VALUES (11, 1, 2, 'x')`),
		s(`ALTER TABLE t DROP CONSTRAINT nope`),
		s(`ALTER TABLE t DROP COLUMN c`),
		s(`INSERT INTO t VALUES (12, 1, 2)`),
		s(`ALTER TABLE t ADD COLUMN d int CHECK (d <> 7)`),
		s(`INSERT INTO t VALUES (13, 1, 2, 7)`),
		s(`SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 't'::regclass ORDER BY conname`),
		s(`SELECT k, a, b, d FROM t`),
	}},
	{name: "sequences", stmts: []stmt{
		s(`CREATE SEQUENCE s`),
		s(`SELECT nextval('s'), nextval('s'), currval('s'), lastval()`),
		s(`SELECT setval('s', 10)`),
		s(`SELECT nextval('s')`),
		s(`SELECT setval('s', 20, false), nextval('s')`),
		s(`SELECT nextval('s'::regclass)`),
		s(`SELECT setval('s', 0)`),
		s(`CREATE SEQUENCE s`),
		s(`CREATE SEQUENCE IF NOT EXISTS s`),
		s(`DROP SEQUENCE s`),
		s(`DROP SEQUENCE s`),
		s(`DROP SEQUENCE IF EXISTS s`),
		s(`CREATE SEQUENCE s INCREMENT BY -2 MINVALUE -5 MAXVALUE 3 START 1 CYCLE`),
		s(`SELECT nextval('s'), nextval('s'), nextval('s'), nextval('s'), nextval('s')`),
		s(`DROP SEQUENCE s`),
		s(`CREATE SEQUENCE s AS smallint START 32766 CACHE 1`),
		s(`SELECT nextval('s'), nextval('s')`),
		s(`SELECT nextval('s')`),
		s(`DROP SEQUENCE s`),
		s(`CREATE SEQUENCE s INCREMENT 0`),
		s(`CREATE SEQUENCE s MINVALUE 5 MAXVALUE 2`),
		s(`CREATE SEQUENCE s START 0`),
		s(`SELECT nextval('nope')`),
		s(`CREATE TABLE t (k serial PRIMARY KEY, v text)`),
		s(`INSERT INTO t (v) VALUES ('a'), ('b')`),
		s(`SELECT currval('t_k_seq'), nextval('t_k_seq')`),
		s(`INSERT INTO t (v) VALUES ('c') RETURNING k`),
		s(`SELECT setval('t_k_seq', 100)`),
		s(`INSERT INTO t (v) VALUES ('d') RETURNING k`),
		s(`CREATE SEQUENCE t`),
		s(`CREATE TABLE t_k_seq (a int)`),
		s(`SELECT * FROM t`),
	}},
	{name: "views", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v int, name text)`),
		s(`INSERT INTO t VALUES (1, 10, 'a'), (2, 20, 'b'), (3, 30, 'c')`),
		s(`CREATE VIEW v AS SELECT k, v * 2 AS double FROM t WHERE k > 1`),
		s(`SELECT * FROM v`),
		s(`SELECT x.double FROM v x WHERE x.k = 3`),
		s(`CREATE VIEW w (key, total) AS SELECT k, sum(double) FROM v GROUP BY k`),
		s(`SELECT * FROM w ORDER BY key`),
		s(`SELECT t.name, w.total FROM t JOIN w ON w.key = t.k`),
		s(`INSERT INTO t VALUES (4, 40, 'd')`),
		s(`SELECT count(*) FROM v`),
		s(`CREATE VIEW v AS SELECT 1`),
		s(`CREATE OR REPLACE VIEW v AS SELECT k, v * 3 AS double, name FROM t`),
		s(`SELECT * FROM v WHERE k = 1`),
		s(`CREATE OR REPLACE VIEW v AS SELECT k FROM t`),
		s(`CREATE VIEW t AS SELECT 1`),
		s(`CREATE VIEW u (a, b) AS SELECT 1`),
		s(`DROP VIEW w`),
		s(`DROP VIEW w`),
		s(`DROP VIEW IF EXISTS w`),
		s(`SELECT relname, relkind FROM pg_class WHERE relname IN ('t', 'v')`),
	}},
	{name: "foreign keys", stmts: []stmt{
		s(`CREATE TABLE t (id int PRIMARY KEY, code text UNIQUE, name text)`),
		s(`CREATE TABLE u (id int PRIMARY KEY, tid int REFERENCES t, tcode text, CONSTRAINT by_code FOREIGN KEY (tcode) REFERENCES t (code) ON DELETE SET NULL)`),
		s(`INSERT INTO t VALUES (1, 'a', 'one'), (2, 'b', 'two'), (3, 'c', 'three')`),
		s(`INSERT INTO u VALUES (10, 1, 'a'), (11, 2, 'b'), (12, NULL, NULL), (13, 1, 'c')`),
		s(`INSERT INTO u VALUES (14, 9, NULL)`),
		s(`INSERT INTO u VALUES (14, NULL, 'z')`),
		s(`UPDATE u SET tid = 5 WHERE id = 10`),
		s(`UPDATE u SET tid = 3 WHERE id = 10`),
		s(`DELETE FROM t WHERE id = 2`),
		s(`DELETE FROM t WHERE id = 2 OR id = 4`),
		s(`UPDATE t SET id = 20 WHERE id = 2`),
		s(`UPDATE t SET name = 'zwei' WHERE id = 2`),
		s(`DELETE FROM u WHERE id = 11`),
		s(`DELETE FROM t WHERE id = 2`),
		s(`UPDATE t SET code = 'cc' WHERE id = 3`),
		s(`DELETE FROM u WHERE tid = 3`),
		s(`DELETE FROM t WHERE id = 3 RETURNING id`),
		s(`SELECT * FROM u`),
		s(`DROP TABLE t`),
		s(`TRUNCATE t`),
		s(`ALTER TABLE u DROP CONSTRAINT by_code`),
		s(`ALTER TABLE u ADD CONSTRAINT by_code FOREIGN KEY (tcode) REFERENCES t (code) ON DELETE CASCADE`),
		s(`INSERT INTO u VALUES (15, 1, 'zz')`),
		s(`ALTER TABLE u ADD FOREIGN KEY (tcode) REFERENCES t (name)`),
		s(`ALTER TABLE u ADD FOREIGN KEY (id) REFERENCES t (code)`),
		s(`SELECT conname, contype, pg_get_constraintdef(oid, true) FROM pg_constraint WHERE conrelid = 'u'::regclass ORDER BY conname`),
		s(`DELETE FROM t WHERE id = 1`),
		s(`UPDATE u SET tcode = NULL, tid = NULL WHERE id = 10`),
		s(`DELETE FROM t WHERE id = 1`),
		s(`SELECT * FROM u`),
		s(`ALTER TABLE t DROP COLUMN code`),
		s(`ALTER TABLE u DROP COLUMN tcode`),
		s(`ALTER TABLE t DROP COLUMN code`),
		s(`INSERT INTO u VALUES (16, 77)`),
		s(`DROP TABLE u`),
		s(`DROP TABLE t`),
	}},
	{name: "self-referencing foreign key and cascades", stmts: []stmt{
		s(`CREATE TABLE t (id int PRIMARY KEY, parent int REFERENCES t ON DELETE CASCADE)`),
		s(`INSERT INTO t VALUES (1, NULL), (2, 1), (3, 2), (4, 4)`),
		s(`INSERT INTO t VALUES (5, 6), (6, 5)`),
		s(`INSERT INTO t VALUES (7, 8)`),
		s(`DELETE FROM t WHERE id = 2`),
		s(`SELECT * FROM t`),
		s(`DELETE FROM t WHERE id = 4`),
		s(`CREATE TABLE u (k int PRIMARY KEY, tid int REFERENCES t (id))`),
		s(`INSERT INTO u VALUES (1, 1)`),
		s(`DROP TABLE t`),
		s(`DROP TABLE t CASCADE`),
		s(`INSERT INTO u VALUES (2, 99)`),
		s(`SELECT * FROM u`),
	}},
	{name: "savepoints", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, v int UNIQUE)`),
		s(`SAVEPOINT a`),
		s(`BEGIN`),
		s(`INSERT INTO t VALUES (1, 1)`),
		s(`SAVEPOINT a`),
		s(`INSERT INTO t VALUES (2, 2)`),
		s(`SELECT k FROM t`),
		s(`ROLLBACK TO SAVEPOINT a`),
		s(`SELECT k FROM t`),
		s(`INSERT INTO t VALUES (3, 1)`),
		s(`SELECT k FROM t`),
		s(`ROLLBACK TO a`),
		s(`SELECT k FROM t`),
		s(`SAVEPOINT b`),
		s(`UPDATE t SET v = 10 WHERE k = 1`),
		s(`SELECT k, v FROM t`),
		s(`SAVEPOINT c`),
		s(`DELETE FROM t`),
		s(`SELECT count(*) FROM t`),
		s(`ROLLBACK TO b`),
		s(`SELECT k, v FROM t`),
		s(`ROLLBACK TO c`),
		s(`RELEASE b`),
		s(`RELEASE a`),
		s(`RELEASE a`),
		s(`ROLLBACK`),
		s(`BEGIN`),
		s(`INSERT INTO t VALUES (5, 5)`),
		s(`SAVEPOINT s1`),
		s(`INSERT INTO t VALUES (6, 6)`),
		s(`RELEASE SAVEPOINT s1`),
		s(`INSERT INTO t VALUES (7, 7)`),
		s(`COMMIT`),
		s(`SELECT k, v FROM t`),
		s(`BEGIN`),
		s(`SAVEPOINT x`),
		s(`SELECT k FROM t WHERE k >= 6`),
		s(`INSERT INTO t VALUES (8, 8)`),
		s(`SELECT k FROM t WHERE k >= 6`),
		s(`ROLLBACK TO x`),
		s(`SELECT k FROM t WHERE k >= 6`),
		s(`SELECT 1/0`),
		s(`COMMIT`),
		s(`SELECT k FROM t`),
	}},
	{name: "uuid", stmts: []stmt{
		s(`CREATE TABLE t (id uuid PRIMARY KEY, other uuid UNIQUE, n int)`),
		s(`INSERT INTO t VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{A0EEBC999C0B4EF8BB6D6BB9BD380A12}', 1), ('00000000-0000-0000-0000-000000000000', NULL, 2)`),
		s(`INSERT INTO t VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1', NULL, 3)`),
		s(`INSERT INTO t VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL, 3)`),
		s(`SELECT * FROM t ORDER BY id`),
		s(`SELECT n FROM t WHERE id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`),
		s(`SELECT n FROM t WHERE other = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'::uuid`),
		s(`SELECT id::text, length(id::text) FROM t ORDER BY n`),
		s(`SELECT count(DISTINCT id), max(n) FROM t GROUP BY other IS NULL ORDER BY 2`),
		s(`SELECT length(gen_random_uuid()::text), gen_random_uuid() = gen_random_uuid()`),
		s(`SELECT 'x'::uuid`),
		s(`SELECT id < 'b0000000-0000-0000-0000-000000000000' FROM t ORDER BY n`),
	}},
	{name: "deferrable foreign keys", stmts: []stmt{
		s(`CREATE TABLE t (id int PRIMARY KEY, name varchar(20))`),
		s(`CREATE INDEX t_name_like ON t (name varchar_pattern_ops)`),
		s(`CREATE TABLE u (id int PRIMARY KEY, tid int)`),
		s(`ALTER TABLE u ADD CONSTRAINT u_tid_fk FOREIGN KEY (tid) REFERENCES t (id) DEFERRABLE INITIALLY DEFERRED`),
		s(`INSERT INTO u VALUES (1, 1)`),
		s(`BEGIN`),
		s(`INSERT INTO u VALUES (1, 1)`),
		s(`INSERT INTO t VALUES (1, 'one')`),
		s(`COMMIT`),
		s(`BEGIN`),
		s(`INSERT INTO u VALUES (2, 2)`),
		s(`COMMIT`),
		s(`BEGIN`),
		s(`INSERT INTO u VALUES (3, 3)`),
		s(`DELETE FROM u WHERE id = 3`),
		s(`COMMIT`),
		s(`BEGIN`),
		s(`DELETE FROM t WHERE id = 1`),
		s(`INSERT INTO t VALUES (1, 'again')`),
		s(`COMMIT`),
		s(`BEGIN`),
		s(`DELETE FROM t WHERE id = 1`),
		s(`COMMIT`),
		s(`BEGIN`),
		s(`INSERT INTO u VALUES (4, 4)`),
		s(`SET CONSTRAINTS ALL IMMEDIATE`),
		s(`ROLLBACK`),
		s(`BEGIN`),
		s(`SET CONSTRAINTS ALL IMMEDIATE`),
		s(`INSERT INTO u VALUES (5, 5)`),
		s(`ROLLBACK`),
		s(`BEGIN`),
		s(`SAVEPOINT a`),
		s(`INSERT INTO u VALUES (6, 6)`),
		s(`ROLLBACK TO a`),
		s(`COMMIT`),
		s(`SELECT * FROM u`),
		s(`SELECT name FROM t WHERE name = 'again'`),
		s(`SELECT conname, condeferrable, condeferred, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'u'::regclass ORDER BY 1`),
	}},
	{name: "json and jsonb", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, j json, b jsonb)`),
		s(`INSERT INTO t VALUES (1, '{"b": 1, "a": [1, 2, {"c": "x"}]}', '{"b": 1, "a": [1, 2, {"c": "x"}], "aa": null}'),
			(2, '[1, "two", 3.50, true]', '[1, "two", 3.50, true, 1e2]'), (3, '"s"', '"s"'), (4, NULL, '{"b":2,"b":3}')`),
		s(`INSERT INTO t VALUES (5, '{bad', '{}')`),
		s(`INSERT INTO t VALUES (5, '{}', '[1,')`),
		s(`SELECT k, j, b FROM t ORDER BY k`),
		s(`SELECT k, b -> 'a', b ->> 'b', j -> 'a' -> 2 ->> 'c', b -> 1, b ->> 1, b -> -1 FROM t ORDER BY k`),
		s(`SELECT k FROM t WHERE b @> '{"b": 1}' ORDER BY k`),
		s(`SELECT k FROM t WHERE b @> '[1, true]' ORDER BY k`),
		s(`SELECT k FROM t WHERE '{"b": 1}' <@ b ORDER BY k`),
		s(`SELECT k FROM t WHERE b ? 'aa' OR b ? 'two' ORDER BY k`),
		s(`SELECT k FROM t WHERE b ->> 'b' = '1'`),
		s(`SELECT '{"a":1}'::jsonb = '{"a": 1}'::jsonb, '{"x": [1,2]}'::jsonb @> '{"x": [2]}'`),
		s(`SELECT '{"z":1,"a":{"y":2,"b":3}}'::json::jsonb, '{"a":1}'::jsonb::json, '[1,2]'::jsonb::text`),
		s(`SELECT j -> 'a' FROM t WHERE k = 1`),
		s(`SELECT '{"a":[1,2],"b":{"c" :  3}}'::json -> 'a', '{"a":[1,2],"b":{"c" :  3}}'::json -> 'b', '[1,{"x":null}]'::json -> 1 ->> 'x', '[1,"q"]'::json ->> 1`),
		s(`SELECT 1 -> 'a'`),
	}},
	{name: "interval", stmts: []stmt{
		s(`SELECT interval '1 day', interval '1 year 2 months 3 days 04:05:06.5', interval '-1 day', interval '36 hours', interval '0', interval '1.5 days', interval '2 weeks ago'`),
		s(`SELECT '3 mons'::interval, 'P1Y2M3DT4H5M6S'::interval, '01:02'::interval, '-01:02:03'::interval, '1 mon -2 days'::interval`),
		s(`SELECT interval '1 day' = interval '24 hours', interval '1 mon' = interval '30 days', interval '1 day' < interval '25 hours'`),
		s(`SELECT timestamp '2026-01-31 10:00' + interval '1 month', timestamp '2026-03-01' - interval '1 day 1 hour', date '2026-02-28' + interval '1 day'`),
		s(`SELECT timestamp '2026-12-04 10:00' - timestamp '2026-12-01 08:30', interval '1 day' + interval '2 hours', interval '1 day' - interval '2 days'`),
		s(`SELECT interval '1 day' * 3, 2.5 * interval '1 hour', interval '1 month' / 2, -interval '1 hour'`),
		s(`SELECT 'nonsense'::interval`),
		s(`SELECT timestamp '2026-12-04' - '2026-12-01', timestamp '2026-12-04' + '1 day', timestamptz '2026-12-04 00:00+00' - '1 hour'::interval`),
		s(`CREATE TABLE t (k int PRIMARY KEY, d interval)`),
		s(`INSERT INTO t VALUES (1, '1 day'), (2, '24 hours'), (3, '2 days'), (4, NULL)`),
		s(`SELECT k, d FROM t ORDER BY d, k`),
		s(`SELECT count(DISTINCT d) FROM t`),
		s(`SELECT k FROM t WHERE d > interval '1 hour' AND d < '1 day 1 minute' ORDER BY k`),
	}},
	{name: "window functions", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, g text, v int)`),
		s(`INSERT INTO t VALUES (1, 'a', 10), (2, 'a', 20), (3, 'a', 20), (4, 'b', 5), (5, 'b', NULL), (6, 'c', 7)`),
		so(`SELECT k, row_number() OVER (ORDER BY k), rank() OVER (PARTITION BY g ORDER BY v), dense_rank() OVER (PARTITION BY g ORDER BY v DESC) FROM t ORDER BY k`),
		so(`SELECT k, sum(v) OVER (PARTITION BY g), sum(v) OVER (PARTITION BY g ORDER BY v), count(*) OVER (), avg(v) OVER (ORDER BY k) FROM t ORDER BY k`),
		so(`SELECT k, lag(v) OVER (ORDER BY k), lead(v, 2, -1) OVER (ORDER BY k), first_value(v) OVER (PARTITION BY g ORDER BY k), last_value(v) OVER (PARTITION BY g ORDER BY v) FROM t ORDER BY k`),
		so(`SELECT k, percent_rank() OVER (ORDER BY v), cume_dist() OVER (ORDER BY v) FROM t ORDER BY k`),
		so(`SELECT g, k, row_number() OVER (PARTITION BY g ORDER BY k DESC) AS rn FROM t ORDER BY rn, k`),
		so(`SELECT k, max(v) OVER (PARTITION BY g) - v AS gap, string_agg(g, ',') OVER (ORDER BY k) FROM t WHERE k > 1 ORDER BY k`),
		s(`SELECT k FROM t WHERE row_number() OVER () > 1`),
		s(`SELECT lower(g) OVER () FROM t`),
	}},
	{name: "WITH RECURSIVE", stmts: []stmt{
		s(`CREATE TABLE t (id int PRIMARY KEY, parent int, name text)`),
		s(`INSERT INTO t VALUES (1, NULL, 'root'), (2, 1, 'a'), (3, 1, 'b'), (4, 2, 'a1'), (5, 4, 'a11'), (6, 3, 'b1')`),
		so(`WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5) SELECT x FROM n ORDER BY x`),
		so(`WITH RECURSIVE sub AS (SELECT id, name, 0 AS depth FROM t WHERE id = 2 UNION ALL SELECT t.id, t.name, sub.depth + 1 FROM t JOIN sub ON t.parent = sub.id) SELECT * FROM sub ORDER BY id`),
		so(`WITH RECURSIVE up AS (SELECT id, parent FROM t WHERE id = 5 UNION SELECT t.id, t.parent FROM t, up WHERE t.id = up.parent) SELECT id FROM up ORDER BY id`),
		so(`WITH RECURSIVE c (n) AS (SELECT 1 UNION SELECT (n % 3) + 1 FROM c) SELECT n FROM c ORDER BY n`),
		s(`WITH RECURSIVE r AS (SELECT 1 AS v INTERSECT SELECT v FROM r) SELECT * FROM r`),
		s(`WITH RECURSIVE plain AS (SELECT 7 AS v) SELECT v FROM plain`),
	}},
	{name: "hash joins", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY, a int, b text)`),
		s(`CREATE TABLE u (k int PRIMARY KEY, a int, b text)`),
		s(`INSERT INTO t VALUES (1, 1, 'x'), (2, 2, 'y'), (3, NULL, 'z'), (4, 2, NULL)`),
		s(`INSERT INTO u VALUES (1, 2, 'y'), (2, 2, 'q'), (3, NULL, 'z'), (4, 9, NULL)`),
		s(`SELECT t.k, u.k FROM t JOIN u ON t.a = u.a`),
		s(`SELECT t.k, u.k FROM t LEFT JOIN u ON t.a = u.a AND u.b <> 'q'`),
		s(`SELECT t.k, u.k FROM t RIGHT JOIN u ON u.a = t.a`),
		s(`SELECT t.k, u.k FROM t FULL JOIN u ON t.a = u.a AND t.b = u.b`),
		s(`SELECT t.k, u.k FROM t, u WHERE t.b = u.b AND t.k < 4`),
		s(`SELECT count(*) FROM t x, t y WHERE x.a = y.a`),
	}},
	{name: "time", stmts: []stmt{
		s(`SELECT time '04:05:06', '23:59:59.5'::time, time '00:00', '24:00:00'::time, '1:2:3'::time`),
		s(`SELECT '25:00'::time`),
		s(`SELECT 'x'::time`),
		s(`SELECT timestamp '2026-12-04 10:30:15.25'::time, time '10:00' < time '9:59'`),
		s(`CREATE TABLE t (k time PRIMARY KEY, v int)`),
		s(`INSERT INTO t VALUES ('10:00', 1), ('09:30:00.5', 2), ('23:59', 3)`),
		s(`SELECT * FROM t ORDER BY k`),
		s(`SELECT v FROM t WHERE k = '10:00'`),
	}},
}

// knownDivergences are minimal repros of the divergences found so far:
// each fails until the engine is fixed. note says what each side
// answers. The generator avoids them (genOptions).
var knownDivergences = []diffCase{
	{name: "constant folding", note: "orbit: SELECT 0, the row, UPDATE 0, ERROR 22003 integer out of range; postgres: ERROR 22012 division by zero (twice), ERROR 22003 smallint out of range, SELECT 0 — PostgreSQL evaluates constant subexpressions (and the assignment cast of a constant) while planning, before reading a row, and folds a strict operator with a NULL constant operand to NULL without evaluating the other", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY)`),
		s(`SELECT 1 / 0 FROM t`),
		s(`INSERT INTO t VALUES (0)`),
		s(`SELECT CASE WHEN k > 0 THEN 1 / 0 ELSE 1 END FROM t`),
		s(`CREATE TABLE u (k int PRIMARY KEY, s int2)`),
		s(`UPDATE u SET s = 2147483647 WHERE false`),
		s(`INSERT INTO u VALUES (2147483647, 1)`),
		s(`SELECT k FROM u WHERE k + k > CASE WHEN false THEN 100 END`),
	}},
	{name: "key uniqueness checked per row", note: "orbit: UPDATE 2 (uniqueness holds at the statement's end); postgres: ERROR 23505 duplicate key value violates unique constraint \"t_pkey\" (a non-deferrable key is checked row by row, and 1 -> 2 meets the 2 not yet updated)", stmts: []stmt{
		s(`CREATE TABLE t (k int PRIMARY KEY)`),
		s(`INSERT INTO t VALUES (1), (2)`),
		s(`UPDATE t SET k = k + 1`),
		s(`SELECT k FROM t`),
	}},
}

func TestDiffCases(t *testing.T) {
	p := newPair(t)
	for _, c := range diffCases {
		t.Run(c.name, func(t *testing.T) { p.runCase(t, c) })
	}
}

func TestDiffKnownDivergences(t *testing.T) {
	if os.Getenv("ORBIT_DIFF_KNOWN") != "1" {
		var b strings.Builder
		for _, c := range knownDivergences {
			fmt.Fprintf(&b, "\n  %s: %s", c.name, c.note)
		}
		t.Skipf("set ORBIT_DIFF_KNOWN=1 to run the %d known divergences:%s", len(knownDivergences), b.String())
	}
	p := newPair(t)
	for _, c := range knownDivergences {
		t.Run(c.name, func(t *testing.T) { p.runCase(t, c) })
	}
}

// TestDiffAdhoc runs the ;-separated statements of $ORBIT_DIFF_SQL on
// both sides and prints both outcomes: a tool for narrowing a
// divergence down.
func TestDiffAdhoc(t *testing.T) {
	src := os.Getenv("ORBIT_DIFF_SQL")
	if src == "" {
		t.Skip("set ORBIT_DIFF_SQL to statements separated by ';'")
	}
	p := newPair(t)
	p.reset()
	for _, sql := range strings.Split(src, ";") {
		if strings.TrimSpace(sql) == "" {
			continue
		}
		o, g := p.exec(sql)
		t.Logf("%s\n-- orbit:\n%s\n-- postgres:\n%s", strings.TrimSpace(sql), o, g)
		if d := compare(o, g, false); d != "" {
			t.Errorf("diverges: %s", strings.TrimSpace(sql))
		}
	}
}

// TestDiffRandom compares random statements on random tables.
func TestDiffRandom(t *testing.T) {
	// A random sweep finds new divergences on its own schedule: it runs
	// in `make sql-diff` (ORBIT_DIFF_RANDOM=1), not in every `make test`,
	// whose outcome must not depend on rapid's random seed. What it found
	// is kept as fixed cases in diffCases.
	if os.Getenv("ORBIT_DIFF_RANDOM") != "1" {
		t.Skip("set ORBIT_DIFF_RANDOM=1 (make sql-diff) to sweep generated statements against PostgreSQL")
	}
	// rapid's fail files would land in testdata/, where TestSQL takes
	// every file for a datadriven script; the seed it prints replays a
	// failure as well.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rapid.nofailfile" })
	if !explicit {
		if err := flag.Set("rapid.nofailfile", "true"); err != nil {
			t.Fatal(err)
		}
	}
	p := newPair(t)
	opts := defaultGenOptions()
	rapid.Check(t, func(rt *rapid.T) {
		p.reset()
		g := &gen{t: rt, opts: opts}
		var done []string
		check := func(st stmt) {
			done = append(done, st.SQL)
			o, w := p.exec(st.SQL)
			if d := compare(o, w, st.Ordered); d != "" {
				rt.Fatalf("divergence after:\n%s;\n%s", strings.Join(done, ";\n"), d)
			}
		}
		g.table()
		check(stmt{SQL: g.createSQL()})
		if rows := g.rows(rapid.IntRange(0, 8).Draw(rt, "rows"), false); rows != "" {
			check(stmt{SQL: "INSERT INTO t VALUES " + rows})
		}
		n := rapid.IntRange(1, 6).Draw(rt, "statements")
		for range n {
			check(g.statement())
		}
	})
}

// genOptions steer the generator around known divergences: each field
// names one (see knownDivergences) and, while false, keeps the generator
// from producing it.
type genOptions struct {
	dateArith         bool // date + int, date - int ("date arithmetic")
	distinct          bool // SELECT DISTINCT ("select distinct")
	minInt4Literal    bool // the literal -2147483648 ("int4 minimum literal")
	constFolding      bool // errors in constant subexpressions ("constant folding")
	minMaxVarchar     bool // min/max of a varchar ("min of varchar")
	caseName          bool // an unnamed CASE in a select list ("name of CASE")
	nullInEmpty       bool // NULL [NOT] IN an empty subquery ("NULL IN empty subquery")
	numericDivScale   bool // numeric / and avg over numbers ("numeric division scale")
	varcharCommonType bool // COALESCE of varchar and text ("varchar and text common type")
	varcharLiteral    bool // a literal longer than the varchar(n) it meets ("literal cut to varchar length")
	subqueryName      bool // an unnamed scalar subquery in a select list ("name of a scalar subquery")
	coalesceEager     bool // COALESCE(x, y) where y fails ("COALESCE evaluates every argument")
	strictSkip        bool // x op y where x is NULL and y fails ("NULL operand skips the other")
	numericNegZero    bool // numeric * ("numeric negative zero")
	floatNegZero      bool // -0 in a float aggregate ("float negative zero")
	orderByConstant   bool // ORDER BY a constant ("non-integer constant in ORDER BY")
	inListNullFirst   bool // an IN list that starts with NULL ("IN list starting with NULL")
	nullifType        bool // NULLIF's type and name ("type and name of NULLIF")
	pkUpdate          bool // UPDATE of a key column ("key uniqueness checked per row")
}

// defaultGenOptions turns on every divergence fixed since it was found;
// the two left are a documented difference (pkUpdate: Orbit checks the
// key once the statement's rows have moved, as the SQL standard says) and
// constant folding (PostgreSQL raises a constant expression's error while
// planning, even where no row reaches it; docs/sql.md).
func defaultGenOptions() genOptions {
	return genOptions{dateArith: true, distinct: true, minInt4Literal: true, minMaxVarchar: true, caseName: true,
		nullInEmpty: true, numericDivScale: true, varcharCommonType: true, varcharLiteral: true, subqueryName: true,
		coalesceEager: true, strictSkip: true, numericNegZero: true, floatNegZero: true, orderByConstant: true,
		inListNullFirst: true, nullifType: true}
}

// kind is an expression's type family, as far as the generator cares.
type kind int

const (
	kInt kind = iota
	kFloat
	kNum
	kText
	kBool
	kDate
	nKinds
)

type column struct {
	name    string
	sqlType string
	kind    kind
	notNull bool
	// maxLen for varchar(n) (0: no limit); prec, scale for numeric(p,s)
	// (prec 0: none).
	maxLen      int
	prec, scale int
	intMax      int64 // largest value of an integer column
}

// colRef is a column as an expression in some scope ("a.c0").
type colRef struct {
	sql string
	col *column
}

type gen struct {
	t    *rapid.T
	opts genOptions
	cols []column
	pk   []int
	keys map[string]bool // primary keys inserted so far
}

func (g *gen) intn(lo, hi int, label string) int  { return rapid.IntRange(lo, hi).Draw(g.t, label) }
func (g *gen) chance(pct int) bool                { return rapid.IntRange(0, 99).Draw(g.t, "chance") < pct }
func pick[T any](g *gen, label string, xs ...T) T { return rapid.SampledFrom(xs).Draw(g.t, label) }

// table draws t's columns and primary key.
func (g *gen) table() {
	g.keys = map[string]bool{}
	n := g.intn(1, 5, "columns")
	for i := range n {
		c := column{name: fmt.Sprintf("c%d", i)}
		types := []string{"int4", "int8", "int2", "text", "varchar", "bool", "float8", "numeric", "numeric(p,s)", "date"}
		if i == 0 {
			types = []string{"int4", "int8", "int2", "text", "varchar"} // a key candidate
		}
		switch pick(g, "type", types...) {
		case "int4":
			c.sqlType, c.kind, c.intMax = "int4", kInt, 2147483647
		case "int8":
			c.sqlType, c.kind, c.intMax = "int8", kInt, 9223372036854775807
		case "int2":
			c.sqlType, c.kind, c.intMax = "int2", kInt, 32767
		case "text":
			c.sqlType, c.kind = "text", kText
		case "varchar":
			c.maxLen = g.intn(1, 6, "maxLen")
			if !g.opts.varcharLiteral {
				c.maxLen = g.intn(5, 8, "maxLen") // longer than any literal drawn
			}
			c.sqlType, c.kind = fmt.Sprintf("varchar(%d)", c.maxLen), kText
		case "bool":
			c.sqlType, c.kind = "bool", kBool
		case "float8":
			c.sqlType, c.kind = "float8", kFloat
		case "numeric":
			c.sqlType, c.kind = "numeric", kNum
		case "numeric(p,s)":
			c.prec = g.intn(1, 8, "prec")
			c.scale = g.intn(0, min(c.prec, 3), "scale")
			c.sqlType, c.kind = fmt.Sprintf("numeric(%d,%d)", c.prec, c.scale), kNum
		case "date":
			c.sqlType, c.kind = "date", kDate
		}
		c.notNull = g.chance(20)
		g.cols = append(g.cols, c)
	}
	g.pk = []int{0}
	if len(g.cols) > 1 && (g.cols[1].kind == kInt || g.cols[1].kind == kText) && g.chance(30) {
		g.pk = append(g.pk, 1)
	}
}

func (g *gen) createSQL() string {
	var defs []string
	for _, c := range g.cols {
		d := c.name + " " + c.sqlType
		if c.notNull {
			d += " NOT NULL"
		}
		defs = append(defs, d)
	}
	var pk []string
	for _, i := range g.pk {
		pk = append(pk, g.cols[i].name)
	}
	defs = append(defs, "PRIMARY KEY ("+strings.Join(pk, ", ")+")")
	return "CREATE TABLE t (" + strings.Join(defs, ", ") + ")"
}

// rows draws up to n rows of literals, "(...), (...)". Unless dups, each
// has a primary key not used before; NULLs go only into nullable columns.
func (g *gen) rows(n int, dups bool) string {
	var rows []string
	for range n {
		var vals []string
		for i := range g.cols {
			c := &g.cols[i]
			if !c.notNull && !slices.Contains(g.pk, i) && g.chance(20) {
				vals = append(vals, "NULL")
				continue
			}
			vals = append(vals, g.literal(c))
		}
		var key []string
		for _, i := range g.pk {
			key = append(key, vals[i])
		}
		k := strings.Join(key, ",")
		if g.keys[k] && !dups {
			continue
		}
		g.keys[k] = true
		rows = append(rows, "("+strings.Join(vals, ", ")+")")
	}
	return strings.Join(rows, ", ")
}

var (
	textValues  = []string{"''", "'a'", "'b'", "'abc'", "'A'", "'ab%'", "'x_y'", "' sp'", "'it''s'", "'zz'", "'Ω'"}
	floatValues = []string{"0", "1.5", "-2.25", "0.1", "1e-05", "3e+20", "123456789.125", "-1"}
	numValues   = []string{"0", "1.5", "-2.25", "12.345", "100", "0.001", "-7", "99999.99", "3"}
	dateValues  = []string{"'2000-01-01'", "'1999-12-31'", "'2024-02-29'", "'1970-01-01'", "'2038-01-19'"}
)

// literal draws a value for c that fits it.
func (g *gen) literal(c *column) string {
	switch c.kind {
	case kInt:
		return g.intLiteral(c.intMax)
	case kText:
		v := pick(g, "text", textValues...)
		if c.maxLen > 0 && len([]rune(v))-2 > c.maxLen {
			return "'a'"
		}
		return v
	case kBool:
		return pick(g, "bool", "true", "false")
	case kFloat:
		return pick(g, "float", floatValues...)
	case kNum:
		v := pick(g, "numeric", numValues...)
		if c.prec > 0 {
			// Keep it within numeric(p,s): at most p-s digits before
			// the point.
			intDigits := len(strings.TrimLeft(strings.Split(strings.TrimPrefix(v, "-"), ".")[0], "0"))
			if intDigits > c.prec-c.scale {
				return "0"
			}
		}
		return v
	case kDate:
		return pick(g, "date", dateValues...)
	}
	panic("unreachable")
}

func (g *gen) intLiteral(max int64) string {
	switch g.intn(0, 9, "intShape") {
	case 0:
		return strconv.FormatInt(max, 10)
	case 1:
		if max == 9223372036854775807 {
			return "(-9223372036854775807)" // -9223372036854775808 is numeric to the parser
		}
		if max == 2147483647 && !g.opts.minInt4Literal {
			return "(-2147483647)"
		}
		return "(" + strconv.FormatInt(-max-1, 10) + ")"
	default:
		v := g.intn(-10, 10, "int")
		if v < 0 {
			return "(" + strconv.Itoa(v) + ")"
		}
		return strconv.Itoa(v)
	}
}

// scope returns t's columns as qualified by alias ("" for none).
func (g *gen) scope(alias string) []colRef {
	var refs []colRef
	for i := range g.cols {
		c := &g.cols[i]
		name := c.name
		if alias != "" {
			name = alias + "." + name
		}
		refs = append(refs, colRef{sql: name, col: c})
	}
	return refs
}

func ofKind(scope []colRef, k kind) []colRef {
	var out []colRef
	for _, r := range scope {
		if r.col.kind == k {
			out = append(out, r)
		}
	}
	return out
}

// expr draws an expression of kind k over scope.
func (g *gen) expr(scope []colRef, k kind, depth int) string {
	cols := ofKind(scope, k)
	if depth <= 0 || g.chance(35) {
		if len(cols) > 0 && g.chance(70) {
			return pick(g, "col", cols...).sql
		}
		return g.constant(k)
	}
	d := depth - 1
	switch k {
	case kInt:
		switch g.intn(0, 7, "intExpr") {
		case 0:
			return g.binop(kInt, g.expr(scope, kInt, d), pick(g, "op", "+", "-", "*", "/", "%"), g.expr(scope, kInt, d))
		case 1:
			if g.chance(30) {
				x := g.expr(scope, kInt, d)
				if !g.opts.nullifType {
					x = "CAST(" + x + " AS int8)" // the type of both arguments
				}
				return "NULLIF(" + x + ", " + g.constant(kInt) + ")"
			}
			return g.unary(kInt, "abs(", g.expr(scope, kInt, d), ")")
		case 2:
			return "length(" + g.expr(scope, kText, d) + ")"
		case 3:
			return g.coalesce(scope, kInt, d)
		case 4:
			return "CASE WHEN " + g.expr(scope, kBool, d) + " THEN " + g.expr(scope, kInt, d) + " ELSE " + g.expr(scope, kInt, d) + " END"
		case 5:
			return g.cast(kInt, g.expr(scope, pick(g, "from", kNum, kFloat, kText, kInt), d), pick(g, "to", "int4", "int8", "int2"))
		case 6:
			return g.unary(kInt, "(- ", g.expr(scope, kInt, d), ")")
		default:
			if !g.opts.dateArith {
				return g.binop(kInt, g.expr(scope, kInt, d), "+", g.expr(scope, kInt, d))
			}
			return g.binop(kInt, g.expr(scope, kDate, d), "-", g.expr(scope, kDate, d))
		}
	case kFloat:
		switch g.intn(0, 3, "floatExpr") {
		case 0:
			return g.binop(kFloat, g.expr(scope, kFloat, d), pick(g, "op", "+", "-", "*", "/"), g.expr(scope, pick(g, "k", kFloat, kInt), d))
		case 1:
			return g.cast(kFloat, g.expr(scope, pick(g, "from", kInt, kNum), d), "float8")
		case 2:
			return "abs(" + g.expr(scope, kFloat, d) + ")"
		default:
			return g.coalesce(scope, kFloat, d)
		}
	case kNum:
		switch g.intn(0, 3, "numExpr") {
		case 0:
			ops := []string{"+", "-"}
			if g.opts.numericNegZero {
				ops = append(ops, "*", "%")
			}
			if g.opts.numericDivScale {
				ops = append(ops, "/")
			}
			return g.binop(kNum, g.expr(scope, kNum, d), pick(g, "op", ops...), g.expr(scope, pick(g, "k", kNum, kInt), d))
		case 1:
			return g.cast(kNum, g.expr(scope, kInt, d), "numeric")
		case 2:
			return "abs(" + g.expr(scope, kNum, d) + ")"
		default:
			return "CASE WHEN " + g.expr(scope, kBool, d) + " THEN " + g.expr(scope, kNum, d) + " END"
		}
	case kText:
		switch g.intn(0, 5, "textExpr") {
		case 0:
			l, r := g.expr(scope, kText, d), g.expr(scope, kText, d)
			return "(" + g.strictArgs(kText, l, r) + " || " + r + ")"
		case 1:
			return pick(g, "fn", "lower", "upper") + "(" + g.expr(scope, kText, d) + ")"
		case 2:
			return g.cast(kText, g.expr(scope, pick(g, "from", kInt, kBool, kDate, kNum), d), "text")
		case 3:
			x, y := g.expr(scope, kText, d), g.expr(scope, kText, d)
			if !g.opts.varcharCommonType {
				x, y = "("+x+" || '')", "("+y+" || '')" // text both
			}
			return "COALESCE(" + x + ", " + y + ")"
		case 4:
			return "substr(" + g.expr(scope, kText, d) + ", " + strconv.Itoa(g.intn(0, 3, "from")) + ", " + strconv.Itoa(g.intn(0, 3, "len")) + ")"
		default:
			return "replace(" + g.expr(scope, kText, d) + ", 'a', 'bb')"
		}
	case kBool:
		return "(" + g.pred(scope, d) + ")"
	case kDate:
		if !g.opts.dateArith {
			return "COALESCE(" + g.expr(scope, kDate, d) + ", " + g.expr(scope, kDate, d) + ")"
		}
		// Through binop: date + int may overflow, and PostgreSQL raises
		// that while planning when both sides are constant ("constant
		// folding"; found by make sql-diff, 2026-12-06: DATE '2024-02-29'
		// + abs(2147483647) in a statement that read no row).
		return g.binop(kDate, g.expr(scope, kDate, d), pick(g, "op", "+", "-"), g.expr(scope, kInt, d))
	}
	panic("unreachable")
}

// coalesce is COALESCE of two expressions of kind k; unless allowed, the
// second is a constant, which cannot fail ("COALESCE evaluates every
// argument").
func (g *gen) coalesce(scope []colRef, k kind, depth int) string {
	second := g.expr(scope, k, depth)
	if !g.opts.coalesceEager {
		second = g.constant(k)
	}
	return "COALESCE(" + g.expr(scope, k, depth) + ", " + second + ")"
}

// columnRef finds a column reference in generated SQL: c0, a.c1, g.
var columnRef = regexp.MustCompile(`\b(c[0-9]+|g)\b`)

// hasColumn says whether x's value may depend on a column: it names one,
// and has no CASE whose constant condition PostgreSQL would fold away.
func hasColumn(x string) bool {
	return columnRef.MatchString(x) && !strings.Contains(x, "WHEN true") && !strings.Contains(x, "WHEN false") && !strings.Contains(x, "WHEN NULL")
}

// binop is l op r. PostgreSQL folds constant subexpressions when it plans
// a statement, so their errors (division by zero, overflow) come even
// when no row is read ("constant folding"); unless allowed, a binop of
// two constants becomes a constant.
func (g *gen) binop(k kind, l, op, r string) string {
	if !g.opts.constFolding && !hasColumn(l) && !hasColumn(r) {
		return g.constant(k)
	}
	l, r = g.foldNull(k, l, r)
	l = g.strictArgs(k, l, r)
	return "(" + l + " " + op + " " + r + ")"
}

// foldNull: PostgreSQL folds a strict operator with a constant that is
// NULL (NULL::int, CASE WHEN false THEN 1 END) to NULL while planning,
// so its other operand is never evaluated and cannot fail ("constant
// folding"). Unless allowed, such a constant becomes a non-NULL one when
// the other side may fail.
func (g *gen) foldNull(k kind, l, r string) (string, string) {
	if g.opts.constFolding {
		return l, r
	}
	nonNull := func(x string) string {
		if x == "" || hasColumn(x) || !g.mayBeNull(x) {
			return x
		}
		if k == kBool {
			return "true"
		}
		return g.constant(k)
	}
	if mayFail(r) {
		l = nonNull(l)
	}
	if mayFail(l) {
		r = nonNull(r)
	}
	return l, r
}

// strictArgs returns l, or, unless allowed, COALESCE(l, constant) when l
// may be NULL and r may fail: Orbit does not evaluate r once l is NULL,
// PostgreSQL does and fails ("NULL operand skips the other").
func (g *gen) strictArgs(k kind, l, r string) string {
	if g.opts.strictSkip || !g.mayBeNull(l) || !mayFail(r) {
		return l
	}
	c := g.constant(k)
	if k == kBool {
		c = "true"
	}
	return "COALESCE(" + l + ", " + c + ")"
}

// mayBeNull says whether generated SQL may be NULL, roughly: it names a
// nullable column or a column of a LEFT JOIN's right side, NULL, a CASE
// or a subquery.
func (g *gen) mayBeNull(x string) bool {
	if strings.Contains(x, "NULL") || strings.Contains(x, "CASE") || strings.Contains(x, "SELECT") || strings.Contains(x, "b.") {
		return true
	}
	for i, c := range g.cols {
		if !c.notNull && !slices.Contains(g.pk, i) && regexp.MustCompile(`\b`+c.name+`\b`).MatchString(x) {
			return true
		}
	}
	return false
}

// mayFail says whether generated SQL may raise an error, roughly: it
// computes.
func mayFail(x string) bool {
	return strings.ContainsAny(x, "/%+*-") || strings.Contains(x, "CAST(") || strings.Contains(x, "abs(") || strings.Contains(x, "SELECT")
}

// unary is open+x+close (abs, negation), with binop's care for
// constants: abs(-2147483648) fails, and PostgreSQL raises that while
// planning even where no row is read.
func (g *gen) unary(k kind, open, x, close string) string {
	if !g.opts.constFolding && !hasColumn(x) {
		return g.constant(k)
	}
	return open + x + close
}

// cast is CAST(x AS typ), with binop's care for constants.
func (g *gen) cast(k kind, x, typ string) string {
	if !g.opts.constFolding && !hasColumn(x) {
		return g.constant(k)
	}
	return "CAST(" + x + " AS " + typ + ")"
}

func (g *gen) constant(k kind) string {
	switch k {
	case kInt:
		return g.intLiteral(2147483647)
	case kFloat:
		return "CAST(" + pick(g, "float", floatValues...) + " AS float8)"
	case kNum:
		v := pick(g, "numeric", numValues...)
		if strings.HasPrefix(v, "-") {
			v = "(" + v + ")"
		}
		return v
	case kText:
		return pick(g, "text", textValues...)
	case kBool:
		return pick(g, "bool", "true", "false", "NULL::bool")
	case kDate:
		return "DATE " + pick(g, "date", dateValues...)
	}
	panic("unreachable")
}

// comparable kinds: an expression of kind k may be compared with one of
// these.
func comparableWith(k kind) []kind {
	switch k {
	case kInt, kFloat, kNum:
		return []kind{kInt, kFloat, kNum}
	}
	return []kind{k}
}

// pred draws a boolean expression.
func (g *gen) pred(scope []colRef, depth int) string {
	d := depth - 1
	if depth <= 0 {
		d = 0
	}
	k := kind(g.intn(0, int(nKinds)-1, "kind"))
	switch g.intn(0, 9, "pred") {
	case 0, 1:
		l, r := g.expr(scope, k, d), g.expr(scope, pick(g, "k2", comparableWith(k)...), d)
		l, r = g.foldNull(k, l, r)
		return g.strictArgs(k, l, r) + " " + pick(g, "cmp", "=", "<>", "<", "<=", ">", ">=") + " " + r
	case 2:
		if depth <= 0 {
			return g.expr(scope, k, 0) + " IS NULL"
		}
		return "(" + g.pred(scope, d) + " " + pick(g, "andor", "AND", "OR") + " " + g.pred(scope, d) + ")"
	case 3:
		return "NOT (" + g.pred(scope, d) + ")"
	case 4:
		return g.expr(scope, k, d) + pick(g, "isnull", " IS NULL", " IS NOT NULL")
	case 5:
		var xs []string
		for i := range g.intn(1, 4, "in") {
			if (i > 0 || g.opts.inListNullFirst) && g.chance(10) {
				xs = append(xs, "NULL")
			} else {
				xs = append(xs, g.constant(k))
			}
		}
		x := g.expr(scope, k, d)
		if !g.opts.constFolding && len(xs) == 1 && xs[0] == "NULL" && mayFail(x) {
			// PostgreSQL plans x IN (NULL) as x = NULL and folds that to
			// NULL, never evaluating x, which may fail ("constant
			// folding"; make sql-diff, 2026-12-06: DATE '1999-12-31' - c0
			// NOT IN (NULL) over c0 = 2147483647).
			xs[0] = g.constant(k)
		}
		return x + pick(g, "notin", " IN (", " NOT IN (") + strings.Join(xs, ", ") + ")"
	case 6:
		if k == kBool {
			k = kInt
		}
		return g.expr(scope, k, d) + " BETWEEN " + g.constant(k) + " AND " + g.constant(k)
	case 7:
		return g.expr(scope, kText, d) + pick(g, "like", " LIKE ", " NOT LIKE ", " ILIKE ", " NOT ILIKE ") + pick(g, "pattern", "'a%'", "'%b%'", "'_'", "''", "'%'", "'A%'", "'x\\_y'")
	case 8:
		if g.chance(40) {
			l, r := g.expr(scope, k, d), g.expr(scope, pick(g, "k2", comparableWith(k)...), d)
			return l + pick(g, "distinct", " IS DISTINCT FROM ", " IS NOT DISTINCT FROM ") + r
		}
		if bs := ofKind(scope, kBool); len(bs) > 0 {
			return pick(g, "bcol", bs...).sql
		}
		return pick(g, "b", "true", "false")
	default:
		return g.expr(scope, k, d) + " " + pick(g, "cmp", "=", "<>", "<", ">") + " " + g.constant(k)
	}
}

// item draws a select-list item and says its kind.
func (g *gen) items(scope []colRef, n int) []string {
	var out []string
	for i := range n {
		x := g.expr(scope, kind(g.intn(0, int(nKinds)-1, "kind")), 2)
		// CASE names its column "case", or after its ELSE; a CAST of it
		// takes the type's name.
		bare := strings.TrimLeft(strings.ReplaceAll(x, "CAST(", ""), "(")
		isCase := strings.HasPrefix(bare, "CASE ")
		isNullif := strings.HasPrefix(bare, "NULLIF(")
		if g.chance(60) || (isCase && !g.opts.caseName) || (isNullif && !g.opts.nullifType) {
			x += fmt.Sprintf(" AS x%d", i)
		}
		out = append(out, x)
	}
	return out
}

// orderBy draws an ORDER BY over n output columns: when total, it ends
// with every output position, so the order is fixed.
func (g *gen) orderBy(n int, total bool) string {
	var keys []string
	var positions []int
	if total {
		positions = rapid.Permutation(seq(n)).Draw(g.t, "order")
	} else {
		positions = []int{g.intn(1, n, "pos")}
	}
	for _, p := range positions {
		k := strconv.Itoa(p)
		k += pick(g, "dir", "", " ASC", " DESC")
		k += pick(g, "nulls", "", " NULLS FIRST", " NULLS LAST")
		keys = append(keys, k)
	}
	return " ORDER BY " + strings.Join(keys, ", ")
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// statement draws one statement.
func (g *gen) statement() stmt {
	switch g.intn(0, 11, "stmt") {
	case 0, 1, 2:
		return g.selectStmt()
	case 3:
		return g.aggregateStmt()
	case 4:
		return g.subqueryStmt()
	case 5:
		return g.joinStmt()
	case 6:
		return g.seriesStmt()
	case 7:
		return g.insertStmt()
	case 8:
		return g.updateStmt()
	case 9:
		return g.deleteStmt()
	case 10:
		return g.errorStmt()
	default:
		return g.moreStmt()
	}
}

// moreStmt draws the rarer shapes: aggregates over a join or grouped by
// an expression, generate_series joined with t, INSERT ... SELECT.
func (g *gen) moreStmt() stmt {
	switch g.intn(0, 3, "more") {
	case 0:
		a, b := g.scope("a"), g.scope("b")
		both := append(slices.Clone(a), b...)
		ca := pick(g, "ca", a...)
		cb := pick(g, "cb", ofKind(b, ca.col.kind)...)
		group := pick(g, "group", a...).sql
		sql := "SELECT " + group + ", " + g.aggregate(both) + " FROM t AS a " + pick(g, "join", "JOIN", "LEFT JOIN") + " t AS b ON " + ca.sql + " = " + cb.sql + " GROUP BY " + group
		return stmt{SQL: sql + " ORDER BY 1, 2", Ordered: true}
	case 1:
		scope := g.scope("")
		ints := ofKind(scope, kInt)
		if len(ints) == 0 {
			return g.aggregateStmt()
		}
		key := "(" + pick(g, "col", ints...).sql + " % " + strconv.Itoa(g.intn(2, 4, "mod")) + ")"
		sql := "SELECT " + key + " AS grp, " + g.aggregate(scope) + " FROM t GROUP BY " + key
		if g.chance(40) {
			sql += " HAVING " + g.aggregate(scope) + " > " + g.intLiteral(5)
		}
		return stmt{SQL: sql + " ORDER BY 1 NULLS FIRST, 2", Ordered: true}
	case 2:
		scope := append(g.scope("t"), colRef{sql: "g", col: &column{name: "g", kind: kInt, notNull: true}})
		on := "g = " + pick(g, "int", append(ofKind(scope[:len(scope)-1], kInt), colRef{sql: "1"})...).sql
		sql := "SELECT " + strings.Join(g.items(scope, g.intn(1, 2, "items")), ", ") + " FROM t JOIN generate_series(" + strconv.Itoa(g.intn(-2, 1, "lo")) + ", " + strconv.Itoa(g.intn(1, 4, "hi")) + ") AS g ON " + on
		return stmt{SQL: sql}
	default:
		// Copies of t's rows with new keys; some collide.
		var vals []string
		for i, c := range g.cols {
			switch {
			case i == 0 && c.kind == kInt:
				vals = append(vals, fmt.Sprintf("CAST(%s + %d AS %s)", c.name, g.intn(-1, 2, "shift"), c.sqlType))
			case i == 0:
				vals = append(vals, "CAST(("+c.name+" || 'x') AS "+c.sqlType+")")
			default:
				vals = append(vals, c.name)
			}
		}
		sql := "INSERT INTO t SELECT " + strings.Join(vals, ", ") + " FROM t WHERE " + g.pred(g.scope(""), 1)
		if g.chance(60) {
			sql += " ON CONFLICT DO NOTHING"
		}
		return stmt{SQL: sql + g.returning(g.scope(""))}
	}
}

func (g *gen) selectStmt() stmt {
	scope := g.scope("")
	var items []string
	if g.chance(15) {
		items = []string{"*"}
	} else {
		items = g.items(scope, g.intn(1, 3, "items"))
	}
	n := len(items)
	if items[0] == "*" {
		n = len(g.cols)
	}
	sql := "SELECT "
	distinct := g.opts.distinct && g.chance(15)
	if distinct {
		sql += "DISTINCT "
	}
	sql += strings.Join(items, ", ") + " FROM t"
	if g.chance(70) {
		sql += " WHERE " + g.pred(scope, 2)
	}
	ordered := false
	switch g.intn(0, 3, "order") {
	case 1:
		sql += g.orderBy(n, false)
	case 3:
		if !distinct {
			key := g.expr(scope, kind(g.intn(0, int(nKinds)-1, "kind")), 1)
			if !hasColumn(key) && !g.opts.orderByConstant {
				key = pick(g, "col", scope...).sql
			}
			sql += " ORDER BY " + key + pick(g, "dir", "", " DESC") + pick(g, "nulls", "", " NULLS FIRST", " NULLS LAST")
		}
	case 2:
		sql += g.orderBy(n, true)
		ordered = true
		if g.chance(50) {
			// Not LIMIT 0: PostgreSQL then skips the scan, and with it
			// any error the WHERE clause would raise.
			sql += " LIMIT " + strconv.Itoa(g.intn(1, 4, "limit"))
		}
		if g.chance(30) {
			sql += " OFFSET " + strconv.Itoa(g.intn(0, 3, "offset"))
		}
	}
	return stmt{SQL: sql, Ordered: ordered}
}

func (g *gen) aggregate(scope []colRef) string {
	switch g.intn(0, 4, "agg") {
	case 0:
		return "count(*)"
	case 1:
		return "count(" + pick(g, "distinct", "", "", "DISTINCT ") + g.expr(scope, kind(g.intn(0, int(nKinds)-1, "kind")), 1) + ")"
	case 2:
		k := pick(g, "k", kInt, kFloat, kNum)
		fn := pick(g, "fn", "sum", "avg")
		x := fn + "(" + g.aggArg(scope, k) + ")"
		if k == kFloat {
			// A float sum depends on the order of its terms, and the
			// rows come in another order on each side; summed as
			// numeric, it does not.
			x = "sum(CAST(" + g.aggArg(scope, k) + " AS numeric))"
		}
		if fn == "avg" && k != kFloat && !g.opts.numericDivScale {
			x = "sum(" + g.expr(scope, k, 1) + ")"
		}
		return x
	default:
		k := pick(g, "k", kInt, kFloat, kNum, kText, kDate)
		x := g.aggArg(scope, k)
		if k == kText && !g.opts.minMaxVarchar {
			x = "(" + x + " || '')" // text, whatever x is
		}
		return pick(g, "fn", "min", "max") + "(" + x + ")"
	}
}

// aggArg draws an aggregate's argument. Unless allowed, a float one is
// a column or a constant, never -0 ("float negative zero"): avg(-0)
// differs, and min/max of 0 and -0 depend on the rows' order.
func (g *gen) aggArg(scope []colRef, k kind) string {
	if k == kFloat && !g.opts.floatNegZero {
		return g.expr(scope, k, 0)
	}
	return g.expr(scope, k, 1)
}

func (g *gen) aggregateStmt() stmt {
	scope := g.scope("")
	var groups []string
	if g.chance(70) {
		for range g.intn(1, 2, "groups") {
			groups = append(groups, pick(g, "group", scope...).sql)
		}
	}
	items := slices.Clone(groups)
	for range g.intn(1, 3, "aggs") {
		items = append(items, g.aggregate(scope))
	}
	sql := "SELECT " + strings.Join(items, ", ") + " FROM t"
	if g.chance(50) {
		sql += " WHERE " + g.pred(scope, 1)
	}
	if len(groups) > 0 {
		sql += " GROUP BY " + strings.Join(groups, ", ")
	}
	if g.chance(30) {
		sql += " HAVING " + g.aggregate(scope) + " " + pick(g, "cmp", ">", "<", "=", "<>") + " " + g.intLiteral(10)
	}
	if g.chance(50) {
		return stmt{SQL: sql + g.orderBy(len(items), true), Ordered: true}
	}
	return stmt{SQL: sql}
}

// safePred draws a predicate that cannot fail. EXISTS and IN stop at
// the first row that matches, and the rows come in another order on
// each side (PostgreSQL: insertion, Orbit: key), so a predicate that
// fails on some row would fail on one side only.
func (g *gen) safePred(scope []colRef) string {
	p := g.pred(scope, 0)
	if g.chance(50) {
		p += " AND " + g.pred(scope, 0)
	}
	return p
}

func (g *gen) subqueryStmt() stmt {
	outer, inner := g.scope("t"), g.scope("s")
	both := append(slices.Clone(outer), inner...)
	items := g.items(outer, g.intn(1, 2, "items"))
	var where string
	switch g.intn(0, 3, "sub") {
	case 0:
		c := pick(g, "col", outer...)
		ks := comparableWith(c.col.kind)
		lhs := c.sql
		if !c.col.notNull && !g.opts.nullInEmpty {
			lhs = "COALESCE(" + lhs + ", " + g.literal(c.col) + ")"
		}
		where = lhs + pick(g, "in", " IN ", " NOT IN ") + "(SELECT " + g.expr(inner, pick(g, "k", ks...), 0) + " FROM t AS s WHERE " + g.safePred(both) + ")"
	case 1:
		where = pick(g, "exists", "", "NOT ") + "EXISTS (SELECT 1 FROM t AS s WHERE " + g.safePred(both) + ")"
	case 2:
		c := pick(g, "col", outer...)
		agg := pick(g, "agg", "min", "max")
		if c.col.kind == kBool {
			c, agg = outer[0], "count"
		}
		where = c.sql + " " + pick(g, "cmp", "=", "<", ">=") + " (SELECT " + agg + "(" + pick(g, "col", ofKind(inner, c.col.kind)...).sql + ") FROM t AS s WHERE " + g.pred(inner, 1) + ")"
	default:
		// A scalar subquery in the select list; more than one row is an
		// error (21000).
		sub := "(SELECT " + pick(g, "col", inner...).sql + " FROM t AS s WHERE " + g.pred(both, 1) + ")"
		if g.opts.subqueryName && g.chance(50) {
			items = append(items, sub)
		} else {
			items = append(items, sub+" AS sub")
		}
		where = g.pred(outer, 1)
	}
	return stmt{SQL: "SELECT " + strings.Join(items, ", ") + " FROM t WHERE " + where}
}

func (g *gen) joinStmt() stmt {
	a, b := g.scope("a"), g.scope("b")
	both := append(slices.Clone(a), b...)
	ca := pick(g, "ca", a...)
	cb := pick(g, "cb", ofKind(b, ca.col.kind)...)
	on := ca.sql + " = " + cb.sql
	if g.chance(30) {
		on += " AND " + g.pred(both, 1)
	}
	items := g.items(both, g.intn(1, 3, "items"))
	sql := "SELECT " + strings.Join(items, ", ") + " FROM t AS a " + pick(g, "join", "JOIN", "INNER JOIN", "LEFT JOIN", "LEFT OUTER JOIN") + " t AS b ON " + on
	if g.chance(40) {
		sql += " WHERE " + g.pred(both, 1)
	}
	return stmt{SQL: sql}
}

func (g *gen) seriesStmt() stmt {
	lo, hi := g.intn(-3, 3, "lo"), g.intn(-3, 6, "hi")
	scope := []colRef{{sql: "g", col: &column{name: "g", kind: kInt}}}
	sql := fmt.Sprintf("SELECT %s FROM generate_series(%d, %d) AS g", strings.Join(g.items(scope, g.intn(1, 2, "items")), ", "), lo, hi)
	if g.chance(50) {
		sql += " WHERE " + g.pred(scope, 1)
	}
	return stmt{SQL: sql}
}

func (g *gen) returning(scope []colRef) string {
	if !g.chance(40) {
		return ""
	}
	if g.chance(40) {
		return " RETURNING *"
	}
	return " RETURNING " + strings.Join(g.items(scope, g.intn(1, 2, "items")), ", ")
}

func (g *gen) insertStmt() stmt {
	rows := g.rows(g.intn(1, 3, "rows"), true)
	sql := "INSERT INTO t VALUES " + rows
	if g.chance(30) {
		// The same rows, through a column list in reverse order.
		var names []string
		for i := len(g.cols) - 1; i >= 0; i-- {
			names = append(names, g.cols[i].name)
		}
		var rev []string
		for _, r := range splitRows(rows) {
			vals := splitTop(r[1:len(r)-1], ',')
			slices.Reverse(vals)
			rev = append(rev, "("+strings.Join(vals, ",")+")")
		}
		sql = "INSERT INTO t (" + strings.Join(names, ", ") + ") VALUES " + strings.Join(rev, ", ")
	}
	if g.chance(40) {
		sql += " ON CONFLICT DO NOTHING"
	}
	return stmt{SQL: sql + g.returning(g.scope(""))}
}

// splitRows cuts "(..), (..)" into its rows.
func splitRows(rows string) []string {
	var out []string
	for _, r := range splitTop(rows, ',') {
		out = append(out, strings.TrimSpace(r))
	}
	return out
}

// splitTop cuts s at sep outside parentheses and quotes.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func (g *gen) updateStmt() stmt {
	scope := g.scope("")
	c := pick(g, "set", scope...)
	if slices.Contains(g.pk, slices.IndexFunc(g.cols, func(x column) bool { return x.name == c.sql })) && (!g.opts.pkUpdate || g.chance(70)) {
		if len(g.cols) == 1 || slices.Contains(g.pk, len(g.cols)-1) {
			return g.deleteStmt() // no column outside the key
		}
		c = scope[len(scope)-1]
	}
	val := g.expr(scope, c.col.kind, 1)
	if !g.opts.constFolding && !hasColumn(val) {
		val = g.literal(c.col) // fits the column
	}
	if g.chance(10) {
		val = "NULL"
	}
	sql := "UPDATE t SET " + c.sql + " = " + val
	if g.chance(80) {
		sql += " WHERE " + g.pred(scope, 2)
	}
	return stmt{SQL: sql + g.returning(scope)}
}

func (g *gen) deleteStmt() stmt {
	scope := g.scope("")
	sql := "DELETE FROM t"
	if g.chance(90) {
		sql += " WHERE " + g.pred(scope, 2)
	}
	return stmt{SQL: sql + g.returning(scope)}
}

func (g *gen) errorStmt() stmt {
	scope := g.scope("")
	switch g.intn(0, 4, "err") {
	case 0:
		return stmt{SQL: "SELECT " + pick(g, "col", scope...).sql + ", nosuch FROM t"}
	case 1:
		x := g.expr(scope, kInt, 1)
		if !g.opts.constFolding && !hasColumn(x) {
			x = "length(CAST(c0 AS text))"
		}
		return stmt{SQL: "SELECT " + x + " / 0 FROM t"}
	case 2:
		return stmt{SQL: "SELECT CAST(" + pick(g, "bad", "'abc'", "''", "' 1'", "'1.5'", "'12a'") + " AS " + pick(g, "type", "int4", "int8", "int2", "numeric", "float8", "date", "bool") + ")"}
	case 3:
		if texts := ofKind(scope, kText); len(texts) > 0 && g.chance(70) {
			return stmt{SQL: "SELECT CAST(" + pick(g, "col", texts...).sql + " AS " + pick(g, "type", "int4", "numeric", "float8", "date", "bool") + ") FROM t"}
		}
		return stmt{SQL: "SELECT * FROM nosuch"}
	default:
		var names []string
		for _, c := range g.cols {
			names = append(names, c.name)
		}
		return stmt{SQL: "INSERT INTO t (" + names[len(names)-1] + ") VALUES (NULL)"}
	}
}
