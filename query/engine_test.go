package query

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/kernel/prod"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// newTestEngine is an engine on one in-memory node whose transactional
// keyspace is split in three ranges (the catalog apart from the rows, and
// the rows in two), so statements cross ranges.
func newTestEngine(t testing.TB) *Engine {
	t.Helper()
	splits := [][]byte{txn.KeyspaceStart, []byte("\x40sql/row/"), []byte("\x40sql/row/\x00\x00\x00\x00\x00\x00\x00\x02"), txn.KeyspaceEnd}
	layout, err := consensus.NewLayout(splits, []kernel.NodeID{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	rt := prod.New(prod.Options{NodeID: 1, Net: prod.NewLocalNetwork()})
	eng, err := storage.Open(vfs.NewMem(), "/n1", storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	clock := hlc.NewClock(rt, hlc.DefaultMaxOffset)
	router := consensus.NewRouter(rt, layout)
	st, err := consensus.Open(rt, eng, layout, consensus.Options{Router: router, Keyspaces: []consensus.Keyspace{txn.NewMachine(clock, txn.Options{}).Keyspace()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = st.Close(ctx)
		rt.Stop()
		_ = eng.Close()
	})
	e, err := New(Options{Runtime: rt, NewDB: func(name string) (*txn.DB, error) {
		return txn.NewDB(rt, router, clock, name, txn.Options{})
	}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// simpleQuery runs sql as the simple protocol does and prints what a
// client would see: each statement's columns and rows (text), its tag,
// notices, and an error (which ends the string).
func simpleQuery(ctx context.Context, s *Session, sql string) string {
	var b strings.Builder
	stmts, err := s.Split(sql)
	if err != nil {
		return printError(err)
	}
	if len(stmts) > 1 {
		s.BeginImplicit()
	}
	failed := false
	for _, text := range stmts {
		st, err := s.Prepare(ctx, text, nil)
		if err != nil {
			b.WriteString(printError(err))
			failed = true
			break
		}
		p, err := st.Bind(nil, nil, nil)
		if err != nil {
			b.WriteString(printError(err))
			failed = true
			break
		}
		var rows []string
		tag, _, err := p.Execute(ctx, 0, func(row [][]byte) error {
			var vals []string
			for _, v := range row {
				if v == nil {
					vals = append(vals, "NULL")
				} else {
					vals = append(vals, string(v))
				}
			}
			rows = append(rows, strings.Join(vals, " | "))
			return nil
		})
		for _, n := range s.Notices() {
			fmt.Fprintf(&b, "%s: %s\n", n.Severity, n.Message)
		}
		if err != nil {
			b.WriteString(printError(err))
			failed = true
			break
		}
		if p.Copy() != nil {
			for _, r := range rows {
				b.WriteString(strings.TrimSuffix(r, "\n") + "\n")
			}
		}
		if cols := p.Columns(); cols != nil {
			var names []string
			for _, c := range cols {
				names = append(names, c.Name+":"+typesByOID[c.TypeOID].Name)
			}
			b.WriteString(strings.Join(names, " | ") + "\n")
			for _, r := range rows {
				b.WriteString(r + "\n")
			}
		}
		b.WriteString(tag + "\n")
	}
	if len(stmts) > 1 {
		if err := s.EndImplicit(ctx, failed); err != nil {
			b.WriteString(printError(err))
		}
	}
	return b.String()
}

func printError(err error) string {
	e := sqlError(err)
	s := fmt.Sprintf("%s %s: %s\n", e.Severity, e.Code, e.Message)
	if e.Detail != "" {
		s += "DETAIL: " + e.Detail + "\n"
	}
	return s
}

// TestSQL runs the statements of testdata/* (datadriven; -rewrite
// refreshes the expected output) on one session per file, or on the
// session a "session=NAME" argument names.
func TestSQL(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e := newTestEngine(t)
		sessions := map[string]*Session{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			name, user := "default", "postgres"
			for _, arg := range d.CmdArgs {
				switch arg.Key {
				case "session":
					name = arg.Vals[0]
				case "user": // the role a new session logs in as
					user = arg.Vals[0]
				}
			}
			s, ok := sessions[name]
			if !ok {
				var err error
				if s, err = e.Open(context.Background(), uint32(len(sessions)+1), user, "postgres", nil); err != nil {
					return "ERROR opening the session: " + err.Error() + "\n"
				}
				t.Cleanup(s.Close)
				sessions[name] = s
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			switch d.Cmd {
			case "sql":
				return simpleQuery(ctx, s, d.Input)
			case "status":
				return string(s.Status()) + "\n"
			}
			t.Fatalf("unknown command %s", d.Cmd)
			return ""
		})
	})
}
