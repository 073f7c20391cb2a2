package pgwire_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/orbitkernel/orbit/adapters/pgwire"
	"github.com/orbitkernel/orbit/query"
)

// fakeEngine is a tiny in-memory SQL engine that knows a few fixed
// statements, standing in for query.Session:
//
//	SELECT 1                       one int4 row
//	SELECT $1::text                echoes its parameter
//	SELECT generate_series(1, N)   N int4 rows, made as they are sent
//	SELECT pg_sleep(100)           blocks until its context ends
//	SELECT * FROM missing          42P01
//	SELECT notice()                one row, and a NOTICE
//	SET application_name = 'x'     changes a reported parameter
//	BEGIN / COMMIT / ROLLBACK      the transaction status
//
// anything else is a 42601 syntax error.
type fakeEngine struct {
	mu       sync.Mutex
	opened   int
	closed   int
	sleeping chan struct{}
}

func newFakeEngine() *fakeEngine { return &fakeEngine{sleeping: make(chan struct{}, 16)} }

func (e *fakeEngine) open(_ context.Context, _ uint32, user, database string, params map[string]string) (pgwire.Session, error) {
	if database == "nosuchdb" {
		return nil, &query.Error{Severity: "FATAL", Code: "3D000", Message: fmt.Sprintf("database %q does not exist", database)}
	}
	e.mu.Lock()
	e.opened++
	e.mu.Unlock()
	return &fakeSession{e: e, status: query.StatusIdle, params: map[string]string{
		"server_version":              "15.0",
		"server_encoding":             "UTF8",
		"client_encoding":             "UTF8",
		"DateStyle":                   "ISO, MDY",
		"TimeZone":                    "UTC",
		"integer_datetimes":           "on",
		"standard_conforming_strings": "on",
		"IntervalStyle":               "postgres",
		"is_superuser":                "on",
		"session_authorization":       user,
		"application_name":            params["application_name"],
	}}, nil
}

func (e *fakeEngine) counts() (opened, closed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opened, e.closed
}

type fakeSession struct {
	e       *fakeEngine
	status  byte
	params  map[string]string
	notices []*query.Error
}

func (s *fakeSession) Split(sql string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(sql, ";") {
		var lines []string
		for _, ln := range strings.Split(part, "\n") {
			if i := strings.Index(ln, "--"); i >= 0 {
				ln = ln[:i]
			}
			lines = append(lines, ln)
		}
		if t := strings.TrimSpace(strings.Join(lines, "\n")); t != "" {
			out = append(out, t)
		}
	}
	return out, nil
}

var (
	int4Col = query.Column{Name: "?column?", TypeOID: 23, TypeSize: 4, TypeMod: -1}
	textCol = query.Column{Name: "text", TypeOID: 25, TypeSize: -1, TypeMod: -1}
)

func (s *fakeSession) Prepare(ctx context.Context, sql string, paramOIDs []uint32) (query.Statement, error) {
	sql = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(sql), ";"))
	sql = strings.ReplaceAll(strings.Join(strings.Fields(sql), " "), " ::", "::") // pgx's simple protocol pads inlined values
	one := func([][]byte) int { return 1 }
	switch {
	case sql == "SELECT 1":
		return &fakeStmt{cols: []query.Column{int4Col}, n: one, val: func(_ [][]byte, i int) any { return int32(1) }}, nil
	case sql == "SELECT $1::text":
		return &fakeStmt{params: []uint32{25}, cols: []query.Column{textCol}, n: one,
			val: func(args [][]byte, _ int) any {
				if args[0] == nil {
					return nil
				}
				return string(args[0])
			}}, nil
	case strings.HasPrefix(sql, "SELECT '") && strings.HasSuffix(sql, "'::text"): // pgx's simple protocol inlines $1
		v := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(sql, "SELECT '"), "'::text"), "''", "'")
		return &fakeStmt{cols: []query.Column{textCol}, n: one, val: func([][]byte, int) any { return v }}, nil
	case sql == "SELECT null::text":
		return &fakeStmt{cols: []query.Column{textCol}, n: one, val: func([][]byte, int) any { return nil }}, nil
	case strings.HasPrefix(sql, "SELECT generate_series(1, "):
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(sql, "SELECT generate_series(1, "), ")"))
		if err != nil {
			return nil, &query.Error{Severity: "ERROR", Code: "22P02", Message: "bad count"}
		}
		col := int4Col
		col.Name = "generate_series"
		return &fakeStmt{cols: []query.Column{col}, n: func([][]byte) int { return n },
			val: func(_ [][]byte, i int) any { return int32(i + 1) }}, nil
	case sql == "SELECT pg_sleep(100)":
		return &fakeStmt{cols: []query.Column{textCol}, n: one, val: func([][]byte, int) any { return "" },
			exec: func(ctx context.Context) error {
				s.e.sleeping <- struct{}{}
				<-ctx.Done()
				return ctx.Err()
			}}, nil
	case strings.Contains(sql, "missing"):
		return nil, &query.Error{Severity: "ERROR", Code: "42P01", Message: `relation "missing" does not exist`,
			Position: int32(strings.Index(sql, "missing") + 1)}
	case sql == "SELECT notice()":
		return &fakeStmt{cols: []query.Column{int4Col}, n: one, val: func([][]byte, int) any { return int32(1) },
			exec: func(context.Context) error {
				s.notices = append(s.notices, &query.Error{Severity: "NOTICE", Code: "00000", Message: "hello from notice()"})
				return nil
			}}, nil
	case strings.HasPrefix(sql, "SET application_name = '"):
		v := strings.TrimSuffix(strings.TrimPrefix(sql, "SET application_name = '"), "'")
		return &fakeStmt{tag: "SET", exec: func(context.Context) error { s.params["application_name"] = v; return nil }}, nil
	case sql == "BEGIN":
		return &fakeStmt{tag: "BEGIN", exec: func(context.Context) error { s.status = query.StatusInTxn; return nil }}, nil
	case sql == "COMMIT" || sql == "ROLLBACK":
		return &fakeStmt{tag: sql, exec: func(context.Context) error { s.status = query.StatusIdle; return nil }}, nil
	}
	return nil, &query.Error{Severity: "ERROR", Code: "42601", Message: fmt.Sprintf("syntax error at or near %q (in %q)", strings.Fields(sql + " x")[0], sql), Position: 1}
}

func (s *fakeSession) Status() byte { return s.status }

func (s *fakeSession) BeginImplicit() {}

func (s *fakeSession) EndImplicit(context.Context, bool) error { return nil }

func (s *fakeSession) Notices() []*query.Error {
	n := s.notices
	s.notices = nil
	return n
}

func (s *fakeSession) Parameters() map[string]string {
	m := make(map[string]string, len(s.params))
	for k, v := range s.params {
		m[k] = v
	}
	return m
}

func (s *fakeSession) Close() {
	s.e.mu.Lock()
	s.e.closed++
	s.e.mu.Unlock()
}

// fakeStmt returns n rows of one value each (val), after exec, or runs
// exec and answers tag when it has no columns.
type fakeStmt struct {
	params []uint32
	cols   []query.Column
	tag    string
	n      func(args [][]byte) int
	val    func(args [][]byte, i int) any // int32, string or nil
	exec   func(ctx context.Context) error
}

func (st *fakeStmt) Params() []uint32        { return st.params }
func (st *fakeStmt) Columns() []query.Column { return st.cols }

func (st *fakeStmt) Bind(params [][]byte, paramFormats, resultFormats []int16) (query.Portal, error) {
	if len(params) != len(st.params) {
		return nil, &query.Error{Severity: "ERROR", Code: "08P01", Message: "wrong parameter count"}
	}
	p := &fakePortal{st: st, args: params}
	if st.cols != nil {
		p.cols = make([]query.Column, len(st.cols))
		for i, c := range st.cols {
			c.Format = formatOf(resultFormats, i)
			p.cols[i] = c
		}
	}
	return p, nil
}

func formatOf(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return 0
	case 1:
		return formats[0]
	}
	return formats[i]
}

type fakePortal struct {
	st      *fakeStmt
	args    [][]byte
	cols    []query.Column
	started bool
	pos     int
}

func (p *fakePortal) Columns() []query.Column { return p.cols }

func (p *fakePortal) Execute(ctx context.Context, maxRows int, emit func(row [][]byte) error) (string, bool, error) {
	if !p.started {
		p.started = true
		if p.st.exec != nil {
			if err := p.st.exec(ctx); err != nil {
				return "", false, err
			}
		}
	}
	if p.st.cols == nil {
		return p.st.tag, false, nil
	}
	n, sent := p.st.n(p.args), 0
	buf := make([][]byte, 1)
	for ; p.pos < n; p.pos++ {
		if maxRows > 0 && sent == maxRows {
			return "", true, nil
		}
		if err := ctx.Err(); err != nil {
			return "", false, err
		}
		switch v := p.st.val(p.args, p.pos).(type) {
		case nil:
			buf[0] = nil
		case string:
			buf[0] = []byte(v)
		case int32:
			if p.cols[0].Format == 1 {
				buf[0] = binary.BigEndian.AppendUint32(nil, uint32(v))
			} else {
				buf[0] = strconv.AppendInt(nil, int64(v), 10)
			}
		}
		if err := emit(buf); err != nil {
			return "", false, err
		}
		sent++
	}
	return fmt.Sprintf("SELECT %d", sent), false, nil
}

func (p *fakePortal) Copy() *query.Copy { return nil }

func (p *fakePortal) CopyIn(context.Context, func() ([]byte, error)) (string, error) {
	return "", &query.Error{Severity: "ERROR", Code: "0A000", Message: "the fake engine has no COPY"}
}
