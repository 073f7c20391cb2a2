package query

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/txn"
)

// Session is one connection's state: its transaction block, run-time
// parameters and pending notices. It serves one statement at a time.
type Session struct {
	e              *Engine
	db             *txn.DB
	user, database string
	pid            uint32
	params         map[string]string
	status         byte
	// tx is the open transaction block's transaction (nil outside one,
	// and once the block failed).
	tx      *txn.Tx
	txStart time.Time
	// implicit: tx is the implicit transaction of a multi-statement
	// simple query (BeginImplicit); the status stays idle meanwhile.
	implicit bool
	// readOnly: the open block (or implicit transaction) is READ ONLY;
	// its transaction refuses writes (txn.Tx.SetReadOnly).
	readOnly bool
	notices  []*Error
	closed   bool
	// currvals are the values nextval last gave this session, by
	// sequence OID; lastval the last of all (sequence.go).
	currvals   map[int64]int64
	lastval    int64
	lastvalSet bool
	// savepoints are the block's SAVEPOINTs, innermost last.
	savepoints []savepoint
	// deferChecks are the checks deferred foreign keys left for COMMIT;
	// allConstraints is SET CONSTRAINTS ALL's mode (1 deferred, -1
	// immediate, 0 as each was made), constraintModes a named one's
	// (true: deferred). All end with the block (foreignkey.go).
	deferChecks     []deferredCheck
	allConstraints  int
	constraintModes map[string]bool
}

type savepoint struct {
	name string
	sp   *txn.Savepoint
	// checks is how many deferred checks were pending at the savepoint.
	checks int
}

// BeginImplicit starts the one transaction the statements of a
// multi-statement simple query share (outside a block; inside one they
// are the block's already).
func (s *Session) BeginImplicit() {
	if s.status == StatusIdle && s.tx == nil {
		s.tx, s.implicit = s.db.Begin(), true
		s.txStart = s.e.rt.Now().UTC().Truncate(time.Microsecond)
		s.setReadOnly(s.defaultReadOnly())
	}
}

// EndImplicit commits the implicit transaction, or rolls it back when a
// statement failed; a BEGIN, COMMIT or ROLLBACK among the statements
// has ended it already.
func (s *Session) EndImplicit(ctx context.Context, failed bool) error {
	if !s.implicit {
		return nil
	}
	tx := s.tx
	s.tx, s.implicit, s.readOnly = nil, false, false
	if failed {
		tx.Rollback(ctx)
		return nil
	}
	if err := tx.Commit(ctx); err != nil {
		tx.Rollback(ctx)
		return sqlError(err)
	}
	return nil
}

// reported are the run-time parameters a client is told of (ParameterStatus).
var reported = []string{"application_name", "client_encoding", "DateStyle", "default_transaction_read_only", "in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser", "server_encoding", "server_version", "session_authorization", "standard_conforming_strings", "TimeZone"}

func defaultParameters(user string) map[string]string {
	return map[string]string{
		"application_name":              "",
		"client_encoding":               "UTF8",
		"DateStyle":                     "ISO, MDY",
		"default_transaction_read_only": "off",
		"in_hot_standby":                "off",
		"integer_datetimes":             "on",
		"IntervalStyle":                 "postgres",
		"is_superuser":                  "on",
		"server_encoding":               "UTF8",
		"server_version":                "15.0",
		"session_authorization":         user,
		"standard_conforming_strings":   "on",
		"TimeZone":                      "UTC",
		"search_path":                   `"$user", public`,
		"transaction_isolation":         "serializable",
		"default_transaction_isolation": "serializable",
		"extra_float_digits":            "1",
		"statement_timeout":             "0",
		"max_connections":               "100",
	}
}

// Parameters returns the reported run-time parameters and their values.
func (s *Session) Parameters() map[string]string {
	out := make(map[string]string, len(reported))
	for _, k := range reported {
		out[k] = s.params[k]
	}
	return out
}

// Status is the transaction status ReadyForQuery reports.
func (s *Session) Status() byte { return s.status }

// Notices returns the notices raised since the last call.
func (s *Session) Notices() []*Error {
	n := s.notices
	s.notices = nil
	return n
}

func (s *Session) notice(code, format string, args ...any) {
	e := errorf(code, format, args...)
	e.Severity = "NOTICE"
	s.notices = append(s.notices, e)
}

func (s *Session) warning(code, format string, args ...any) {
	e := errorf(code, format, args...)
	e.Severity = "WARNING"
	s.notices = append(s.notices, e)
}

// Close ends the session: an open transaction is rolled back.
func (s *Session) Close() {
	if s.closed {
		return
	}
	s.closed = true
	if s.tx != nil {
		ctx, cancel := s.e.rt.WithTimeout(context.Background(), 5*time.Second)
		s.tx.Rollback(ctx)
		cancel()
		s.tx = nil
	}
	s.e.dbs.Put(s.db)
}

// Split cuts a simple-protocol query string into its statements.
func (s *Session) Split(sql string) ([]string, error) {
	out, err := pg.SplitWithParser(sql, true)
	if err != nil {
		return nil, syntaxError(err)
	}
	kept := out[:0]
	for _, st := range out {
		if strings.TrimSpace(st) != "" {
			kept = append(kept, st)
		}
	}
	return kept, nil
}

func syntaxError(err error) *Error {
	var pe *parser.Error
	if errors.As(err, &pe) {
		e := errorf("42601", "%s", pe.Message)
		e.Position = int32(pe.Cursorpos)
		return e
	}
	return errorf("42601", "%v", err)
}

// statement is a parsed statement (Statement).
type statement struct {
	s      *Session
	sql    string
	node   *pg.Node // nil: an empty statement
	params []Type
	cols   []Column
	copy   *Copy // a COPY's transfer
}

// Prepare parses sql (one statement) and analyses it: its parameters'
// types (paramOIDs, 0 where the client leaves it to the server) and its
// result columns.
func (s *Session) Prepare(ctx context.Context, sql string, paramOIDs []uint32) (Statement, error) {
	tree, err := pg.Parse(sql)
	if err != nil {
		return nil, syntaxError(err)
	}
	if len(tree.Stmts) > 1 {
		return nil, errorf("42601", "cannot insert multiple commands into a prepared statement")
	}
	st := &statement{s: s, sql: sql}
	for i, oid := range paramOIDs {
		t := TypeUnknown
		if oid != 0 {
			var ok bool
			if t, ok = typesByOID[oid]; !ok {
				return nil, errorf("0A000", "parameter $%d: type OID %d is not supported", i+1, oid)
			}
		}
		st.params = append(st.params, t)
	}
	if len(tree.Stmts) == 0 {
		return st, nil
	}
	st.node = tree.Stmts[0].Stmt
	if s.status == StatusFailed && !isTransactionEnd(st.node) {
		return nil, errAborted()
	}
	if err := s.describe(ctx, st); err != nil {
		return nil, s.fail(err)
	}
	return st, nil
}

func errAborted() *Error {
	return errorf("25P02", "current transaction is aborted, commands ignored until end of transaction block")
}

func isTransactionEnd(n *pg.Node) bool {
	t := n.GetTransactionStmt()
	if t == nil {
		return false
	}
	switch t.Kind {
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT, pg.TransactionStmtKind_TRANS_STMT_ROLLBACK, pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return true
	}
	return false
}

// plannable reports whether a statement is analysed against the catalog
// (and so has result columns and parameters to infer).
func plannable(n *pg.Node) bool {
	return n.GetSelectStmt() != nil || n.GetInsertStmt() != nil || n.GetUpdateStmt() != nil || n.GetDeleteStmt() != nil || n.GetCopyStmt() != nil || n.GetExplainStmt() != nil
}

// describe analyses st for its parameters' types and result columns. A
// panic fails the statement, as in execute.
func (s *Session) describe(ctx context.Context, st *statement) (err error) {
	defer func() {
		if e := s.statementPanic(recover(), st.sql); e != nil {
			err = e
		}
	}()
	if n := st.node.GetVariableShowStmt(); n != nil {
		st.cols = []Column{{Name: showName(n.Name), TypeOID: TypeText.OID, TypeSize: -1, TypeMod: -1}}
		return nil
	}
	if !plannable(st.node) {
		return nil
	}
	return s.inTxn(ctx, func(tx *txn.Tx) error {
		a := &analyzer{ctx: ctx, s: s, tx: tx, params: append([]Type(nil), st.params...)}
		p, err := a.plan(st.node)
		if err != nil {
			return err
		}
		a.finishParams()
		st.params, st.cols = a.params, p.columns()
		if cp, ok := p.(*copyPlan); ok {
			st.copy = cp.spec()
		}
		return nil
	})
}

func (st *statement) Params() []uint32 {
	out := make([]uint32, len(st.params))
	for i, t := range st.params {
		out[i] = t.OID
	}
	return out
}

func (st *statement) Columns() []Column { return st.cols }

// Bind decodes the parameters and fixes the result formats.
func (st *statement) Bind(params [][]byte, paramFormats, resultFormats []int16) (Portal, error) {
	if len(params) != len(st.params) {
		return nil, errorf("08P01", "bind message supplies %d parameters, but prepared statement %q requires %d", len(params), "", len(st.params))
	}
	formats, err := formatsFor(paramFormats, len(params))
	if err != nil {
		return nil, err
	}
	p := &portal{st: st, params: make([]any, len(params))}
	for i, b := range params {
		if b == nil {
			continue
		}
		if p.params[i], err = decodeParam(st.params[i], formats[i], b); err != nil {
			return nil, err
		}
	}
	rf, err := formatsFor(resultFormats, len(st.cols))
	if err != nil {
		return nil, err
	}
	p.cols = append([]Column(nil), st.cols...)
	for i := range p.cols {
		p.cols[i].Format = rf[i]
	}
	return p, nil
}

// formatsFor applies PostgreSQL's format-code rules: none, all text; one,
// all that; otherwise one per value.
func formatsFor(codes []int16, n int) ([]int16, error) {
	out := make([]int16, n)
	switch len(codes) {
	case 0:
	case 1:
		for i := range out {
			out[i] = codes[0]
		}
	case n:
		copy(out, codes)
	default:
		return nil, errorf("08P01", "bind message has %d format codes for %d values", len(codes), n)
	}
	for _, c := range out {
		if c != 0 && c != 1 {
			return nil, errorf("22023", "unsupported format code: %d", c)
		}
	}
	return out, nil
}

// portal is a bound statement; its rows are computed by the first
// Execute and handed out by the following ones.
type portal struct {
	st     *statement
	params []any
	cols   []Column
	ran    bool
	rows   [][][]byte
	tag    string
}

func (p *portal) Columns() []Column { return p.cols }

func (p *portal) Copy() *Copy { return p.st.copy }

// CopyIn reads the data, then inserts every row in one transaction.
func (p *portal) CopyIn(ctx context.Context, next func() ([]byte, error)) (string, error) {
	s := p.st.s
	if p.st.copy == nil || !p.st.copy.In {
		return "", errorf("08P01", "the statement is not a COPY FROM STDIN")
	}
	data, err := readCopyData(next)
	if err != nil {
		return "", s.fail(err)
	}
	var tag string
	err = s.inTxn(ctx, func(tx *txn.Tx) error {
		a := &analyzer{ctx: ctx, s: s, tx: tx}
		plan, err := a.plan(p.st.node)
		if err != nil {
			return err
		}
		r := &run{ctx: ctx, tx: tx, env: &env{now: s.now(), rowID: s.e.rowID, session: s}}
		r.env.run = r
		tag, err = plan.(*copyPlan).copyIn(r, data)
		return err
	})
	if err != nil {
		return "", s.fail(err)
	}
	return tag, nil
}

func (p *portal) Execute(ctx context.Context, maxRows int, emit func(row [][]byte) error) (string, bool, error) {
	if !p.ran {
		p.ran = true
		rows, tag, err := p.st.s.execute(ctx, p)
		if err != nil {
			return "", false, err
		}
		p.tag = tag
		for _, row := range rows {
			if p.st.copy != nil {
				p.rows = append(p.rows, [][]byte{row[0].([]byte)}) // a COPY's line
				continue
			}
			enc, err := encodeRowOut(p.cols, p.st.resultTypes(), row)
			if err != nil {
				return "", false, err
			}
			p.rows = append(p.rows, enc)
		}
	}
	n := len(p.rows)
	if maxRows > 0 && maxRows < n {
		n = maxRows
	}
	for _, row := range p.rows[:n] {
		if err := emit(row); err != nil {
			return "", false, err
		}
	}
	p.rows = p.rows[n:]
	if maxRows > 0 && len(p.rows) > 0 {
		return "", true, nil
	}
	if maxRows > 0 && n == maxRows && strings.HasPrefix(p.tag, "SELECT") {
		// Exactly maxRows left: PostgreSQL still says suspended, and the
		// next Execute completes with no rows.
		return "", true, nil
	}
	return p.tag, false, nil
}

func (st *statement) resultTypes() []Type {
	out := make([]Type, len(st.cols))
	for i, c := range st.cols {
		t := typesByOID[c.TypeOID]
		if c.TypeMod >= 4 && t.Elem == 0 {
			t = t.withMod(c.TypeMod - 4)
		}
		out[i] = t
	}
	return out
}

// statementPanic turns a panic of the engine's own (a Go runtime error,
// such as a nil dereference, or an assertion of this package) while it
// ran sql into an XX000 error, logged with its stack: one client's
// statement must not take the node down. Any other panic is not the
// engine's to stop (the simulator unwinds a crashed node's tasks with
// one, kernel.NodeCrash asks the node to die): it goes on up.
func (s *Session) statementPanic(r any, sql string) *Error {
	if r == nil {
		return nil
	}
	_, isRuntime := r.(runtime.Error)
	msg, isOwn := r.(string)
	if !isRuntime && !(isOwn && strings.HasPrefix(msg, "query: ")) {
		panic(r)
	}
	s.e.rt.Logger().Error("query: a statement panicked", "sql", sql, "panic", r, "stack", string(debug.Stack()))
	return errorf("XX000", "internal error: %v", r)
}

// execute runs the portal's statement: its result rows and command tag.
// A panic (a bug) fails the statement with XX000, not the node: one
// client's statement must not take down the others.
func (s *Session) execute(ctx context.Context, p *portal) (rows [][]any, tag string, err error) {
	defer func() {
		if e := s.statementPanic(recover(), p.st.sql); e != nil {
			rows, tag, err = nil, "", s.fail(e)
		}
	}()
	n := p.st.node
	if n == nil {
		return nil, "", nil
	}
	if s.status == StatusFailed && !isTransactionEnd(n) {
		return nil, "", errAborted()
	}
	switch {
	case n.GetTransactionStmt() != nil:
		tag, err := s.transaction(ctx, n.GetTransactionStmt())
		return nil, tag, err
	case n.GetVariableSetStmt() != nil:
		tag, err := s.set(n.GetVariableSetStmt())
		return nil, tag, s.fail(err)
	case n.GetConstraintsSetStmt() != nil:
		tag, err := s.setConstraints(ctx, n.GetConstraintsSetStmt())
		return nil, tag, s.fail(err)
	case n.GetVacuumStmt() != nil && n.GetVacuumStmt().IsVacuumcmd && s.status != StatusIdle:
		return nil, "", s.fail(errorf("25001", "VACUUM cannot run inside a transaction block"))
	case n.GetVariableShowStmt() != nil:
		v, err := s.show(n.GetVariableShowStmt().Name)
		if err != nil {
			return nil, "", s.fail(err)
		}
		return [][]any{{v}}, "SHOW", nil
	}
	if sel := n.GetSelectStmt(); sel != nil && len(sel.LockingClause) > 0 && s.readOnlyNow() {
		return nil, "", s.fail(readOnlyError(n))
	}
	err = s.inTxn(ctx, func(tx *txn.Tx) error {
		s.notices = nil // a retried attempt raises its notices again
		a := &analyzer{ctx: ctx, s: s, tx: tx, params: append([]Type(nil), p.st.params...)}
		r := &run{ctx: ctx, tx: tx, env: &env{params: p.params, now: s.now(), rowID: s.e.rowID, session: s}}
		r.env.run = r
		var err error
		rows, tag, err = a.run(n, r, p.st)
		return err
	})
	if errors.Is(err, txn.ErrReadOnly) {
		err = readOnlyError(n)
	}
	if err != nil {
		return nil, "", s.fail(err)
	}
	return rows, tag, nil
}

func (s *Session) now() time.Time {
	if s.tx != nil {
		return s.txStart
	}
	return s.e.rt.Now().UTC().Truncate(time.Microsecond)
}

// inTxn runs fn in the open transaction block, or in a transaction of its
// own (retried on conflicts, as DB.Txn does) outside one.
func (s *Session) inTxn(ctx context.Context, fn func(tx *txn.Tx) error) error {
	if s.tx != nil && !mutation.On(MutBlockStatementsAutocommit) {
		return fn(s.tx)
	}
	readOnly := s.readOnlyNow()
	return s.db.Txn(ctx, func(tx *txn.Tx) error {
		if readOnly {
			tx.SetReadOnly()
		}
		return fn(tx)
	})
}

// fail turns err into the client's error and, inside a transaction
// block, fails the block: its transaction is rolled back now and every
// statement is refused until ROLLBACK (or COMMIT, which rolls back).
func (s *Session) fail(err error) error {
	if err == nil {
		return nil
	}
	e := sqlError(err)
	if s.status == StatusInTxn {
		s.status = StatusFailed
		if len(s.savepoints) > 0 && s.tx != nil && statementError(err) {
			return e // ROLLBACK TO a savepoint undoes the statement's writes
		}
		s.endBlock()
		if s.tx != nil {
			ctx, cancel := s.e.rt.WithTimeout(context.Background(), 5*time.Second)
			s.tx.Rollback(ctx)
			cancel()
			s.tx = nil
		}
	}
	return e
}

// endBlock forgets what a transaction block kept beside its transaction.
func (s *Session) endBlock() {
	s.savepoints, s.deferChecks, s.allConstraints, s.constraintModes = nil, nil, 0, nil
	s.readOnly = false
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// statementError reports whether err is the statement's own failure (a
// constraint, a type, a name), which leaves its transaction usable once
// its writes are undone; a conflict, an unknown outcome or a node's
// failure dooms the transaction.
func statementError(err error) bool {
	var e *Error
	return errors.As(err, &e) && !strings.HasPrefix(e.Code, "40") && !strings.HasPrefix(e.Code, "57") && !strings.HasPrefix(e.Code, "XX")
}

// sqlError is err as the client sees it.
func sqlError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, txn.ErrRetry):
		e = errorf("40001", "could not serialize access due to concurrent update")
		e.Detail = err.Error()
		e.Hint = "The transaction might succeed if retried."
		return e
	case errors.Is(err, consensus.ErrTooLarge):
		e = errorf("54000", "transaction too large: its writes exceed what one replicated command carries (%d MiB)", consensus.MaxProposalBytes>>20)
		e.Hint = "Write in smaller transactions (COPY or INSERT fewer rows at a time)."
		return e
	case errors.Is(err, txn.ErrIndeterminate):
		return errorf("40003", "result is ambiguous: %v", err)
	case errors.Is(err, context.Canceled):
		return errorf("57014", "canceling statement due to user request")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf("57014", "canceling statement due to statement timeout")
	}
	return errorf("XX000", "%v", err)
}

// transaction runs BEGIN, COMMIT, ROLLBACK and their synonyms.
func (s *Session) transaction(ctx context.Context, t *pg.TransactionStmt) (string, error) {
	switch t.Kind {
	case pg.TransactionStmtKind_TRANS_STMT_BEGIN, pg.TransactionStmtKind_TRANS_STMT_START:
		readOnly, err := s.txnOptions(t.Options)
		if err != nil {
			return "", s.fail(err)
		}
		if s.status != StatusIdle {
			s.warning("25001", "there is already a transaction in progress")
			return "BEGIN", nil
		}
		if readOnly == nil {
			ro := s.defaultReadOnly()
			readOnly = &ro
		}
		if s.implicit {
			// The implicit transaction becomes the block (PostgreSQL).
			s.implicit, s.status = false, StatusInTxn
			if err := s.setReadOnly(*readOnly); err != nil {
				return "", s.fail(err)
			}
			return "BEGIN", nil
		}
		s.tx, s.status = s.db.Begin(), StatusInTxn
		s.endBlock()
		s.txStart = s.e.rt.Now().UTC().Truncate(time.Microsecond)
		s.setReadOnly(*readOnly)
		return "BEGIN", nil
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT:
		if s.implicit {
			// COMMIT ends the implicit transaction as it would a block.
			s.implicit, s.status = false, StatusInTxn
		}
		defer s.endBlock()
		switch s.status {
		case StatusIdle:
			s.warning("25P01", "there is no transaction in progress")
			return "COMMIT", nil
		case StatusFailed:
			if s.tx != nil {
				s.tx.Rollback(ctx)
			}
			s.tx, s.status = nil, StatusIdle
			return "ROLLBACK", nil
		}
		tx := s.tx
		err := s.runDeferredChecks(ctx, tx)
		s.tx, s.status = nil, StatusIdle
		if err == nil {
			err = tx.Commit(ctx)
		}
		if err != nil {
			tx.Rollback(ctx)
			return "", sqlError(err)
		}
		return "COMMIT", nil
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		if s.implicit {
			s.implicit, s.status = false, StatusInTxn
		}
		if s.status == StatusIdle {
			s.warning("25P01", "there is no transaction in progress")
			return "ROLLBACK", nil
		}
		if s.tx != nil {
			s.tx.Rollback(ctx)
		}
		s.tx, s.status = nil, StatusIdle
		s.endBlock()
		return "ROLLBACK", nil
	case pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT, pg.TransactionStmtKind_TRANS_STMT_RELEASE, pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return s.savepoint(ctx, t)
	}
	return "", s.fail(errorf("0A000", "%s is not supported", strings.TrimPrefix(t.Kind.String(), "TRANS_STMT_")))
}

// savepoint runs SAVEPOINT, RELEASE [SAVEPOINT] and ROLLBACK TO
// [SAVEPOINT] on the block's transaction (txn.Tx.Savepoint, RollbackTo).
// A block whose transaction a conflict doomed cannot roll back to a
// savepoint: it answers 40001 again, and the client retries from BEGIN.
func (s *Session) savepoint(ctx context.Context, t *pg.TransactionStmt) (string, error) {
	verb := map[pg.TransactionStmtKind]string{pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT: "SAVEPOINT",
		pg.TransactionStmtKind_TRANS_STMT_RELEASE: "RELEASE", pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO SAVEPOINT"}[t.Kind]
	if s.status == StatusIdle || s.implicit {
		return "", s.fail(errorf("25P01", "%s can only be used in transaction blocks", verb))
	}
	find := func() (int, error) {
		for i := len(s.savepoints) - 1; i >= 0; i-- {
			if s.savepoints[i].name == t.SavepointName {
				return i, nil
			}
		}
		return -1, errorf("3B001", "savepoint %q does not exist", t.SavepointName)
	}
	switch t.Kind {
	case pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		s.savepoints = append(s.savepoints, savepoint{name: t.SavepointName, sp: s.tx.Savepoint(), checks: len(s.deferChecks)})
		return "SAVEPOINT", nil
	case pg.TransactionStmtKind_TRANS_STMT_RELEASE:
		i, err := find()
		if err != nil {
			return "", s.fail(err)
		}
		s.savepoints = s.savepoints[:i]
		return "RELEASE", nil
	}
	if s.tx == nil {
		e := errorf("40001", "could not serialize access due to concurrent update")
		e.Detail = "the transaction failed with a conflict, which no savepoint undoes"
		e.Hint = "Roll back the transaction and run it again."
		return "", e
	}
	i, err := find()
	if err != nil {
		s.status = StatusInTxn // fail the block as any error does
		return "", s.fail(err)
	}
	if err := s.tx.RollbackTo(ctx, s.savepoints[i].sp); err != nil {
		s.status = StatusInTxn
		s.savepoints = nil
		return "", s.fail(err)
	}
	s.deferChecks = s.deferChecks[:min(len(s.deferChecks), s.savepoints[i].checks)]
	s.savepoints, s.status = s.savepoints[:i+1], StatusInTxn
	return "ROLLBACK", nil
}

// txnOptions reads BEGIN's and SET TRANSACTION's options: isolation
// levels are accepted (every one runs as SERIALIZABLE, the strongest, as
// CockroachDB does), READ ONLY and READ WRITE are returned (nil: not
// said), DEFERRABLE is refused (not built).
func (s *Session) txnOptions(opts []*pg.Node) (readOnly *bool, err error) {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		on := false
		if c := d.Arg.GetAConst(); c != nil && c.GetIval() != nil && c.GetIval().Ival == 1 {
			on = true
		}
		switch d.Defname {
		case "transaction_isolation":
		case "transaction_read_only":
			readOnly = &on
		case "transaction_deferrable":
			if on {
				return nil, errorf("0A000", "DEFERRABLE transactions are not supported")
			}
		default:
			return nil, errorf("0A000", "transaction option %s is not supported", d.Defname)
		}
	}
	return readOnly, nil
}

// readOnlyNow reports whether the statement running now is in a READ
// ONLY transaction: the block's (or implicit transaction's) mode, or
// outside one default_transaction_read_only.
func (s *Session) readOnlyNow() bool {
	if s.status != StatusIdle || s.implicit {
		return s.readOnly
	}
	return s.defaultReadOnly()
}

// defaultReadOnly is default_transaction_read_only.
func (s *Session) defaultReadOnly() bool { return s.params["default_transaction_read_only"] == "on" }

// setReadOnly makes the current transaction READ ONLY or READ WRITE. A
// read-only transaction cannot become read-write (PostgreSQL refuses it
// too, once it has run a query).
func (s *Session) setReadOnly(on bool) error {
	if !on && s.readOnly && s.tx != nil {
		return errorf("25006", "cannot set transaction read-write mode inside a read-only transaction")
	}
	s.readOnly = on
	if on && s.tx != nil {
		s.tx.SetReadOnly()
	}
	return nil
}

// readOnlyError is the error of a statement that tried to write in a
// read-only transaction.
func readOnlyError(n *pg.Node) *Error {
	name := nodeName(n)
	switch {
	case n.GetInsertStmt() != nil:
		name = "INSERT"
	case n.GetUpdateStmt() != nil:
		name = "UPDATE"
	case n.GetDeleteStmt() != nil:
		name = "DELETE"
	case n.GetSelectStmt() != nil && len(n.GetSelectStmt().LockingClause) > 0:
		name = "SELECT FOR UPDATE"
	case n.GetSelectStmt() != nil:
		name = "SELECT" // a function that writes (nextval), a data-modifying WITH
	case n.GetCreateStmt() != nil:
		name = "CREATE TABLE"
	case n.GetIndexStmt() != nil:
		name = "CREATE INDEX"
	case n.GetViewStmt() != nil:
		name = "CREATE VIEW"
	case n.GetCreateSeqStmt() != nil:
		name = "CREATE SEQUENCE"
	case n.GetDropStmt() != nil:
		name = "DROP"
	case n.GetAlterTableStmt() != nil:
		name = "ALTER TABLE"
	case n.GetTruncateStmt() != nil:
		name = "TRUNCATE TABLE"
	case n.GetCopyStmt() != nil:
		name = "COPY FROM"
	}
	return errorf("25006", "cannot execute %s in a read-only transaction", name)
}

// plan analyses a plannable statement; a constant expression's error
// (a.failed) fails it once the analysis itself has succeeded.
func (a *analyzer) plan(n *pg.Node) (interface{ columns() []Column }, error) {
	p, err := a.planOf(n)
	if err == nil && len(a.failed) > 0 {
		return nil, a.failed[0].err
	}
	return p, err
}

func (a *analyzer) planOf(n *pg.Node) (interface{ columns() []Column }, error) {
	switch {
	case n.GetSelectStmt() != nil:
		st := n.GetSelectStmt()
		p, err := a.analyzeSelect(st)
		if err != nil {
			return nil, err
		}
		if len(st.LockingClause) > 0 {
			if ts, ok := p.from.(*tableScan); ok {
				ts.forUpdate = true
			}
		}
		return p, nil
	case n.GetInsertStmt() != nil:
		return a.analyzeInsert(n.GetInsertStmt())
	case n.GetUpdateStmt() != nil:
		return a.analyzeUpdate(n.GetUpdateStmt())
	case n.GetDeleteStmt() != nil:
		return a.analyzeDelete(n.GetDeleteStmt())
	case n.GetCopyStmt() != nil:
		return a.analyzeCopy(n.GetCopyStmt())
	case n.GetExplainStmt() != nil:
		return a.analyzeExplain(n.GetExplainStmt())
	}
	return nil, errorf("0A000", "statement %s is not supported", nodeName(n))
}

// run analyses and executes a statement in the run's transaction.
func (a *analyzer) run(n *pg.Node, r *run, st *statement) ([][]any, string, error) {
	switch {
	case n.GetCreateStmt() != nil:
		if err := a.requireSchema(n.GetCreateStmt().Relation.GetSchemaname(), "CREATE"); err != nil {
			return nil, "", err
		}
		tag, err := a.createTable(n.GetCreateStmt())
		return nil, tag, err
	case n.GetDropStmt() != nil:
		tag, err := a.dropTable(n.GetDropStmt())
		return nil, tag, err
	case n.GetTruncateStmt() != nil:
		tag, err := a.truncate(n.GetTruncateStmt())
		return nil, tag, err
	case n.GetIndexStmt() != nil:
		tag, err := a.createIndex(n.GetIndexStmt())
		return nil, tag, err
	case n.GetCreateSeqStmt() != nil:
		if err := a.requireSchema(n.GetCreateSeqStmt().Sequence.GetSchemaname(), "CREATE"); err != nil {
			return nil, "", err
		}
		tag, err := a.createSequence(n.GetCreateSeqStmt())
		return nil, tag, err
	case n.GetViewStmt() != nil:
		if err := a.requireSchema(n.GetViewStmt().View.GetSchemaname(), "CREATE"); err != nil {
			return nil, "", err
		}
		tag, err := a.createView(n.GetViewStmt())
		return nil, tag, err
	case n.GetCreateRoleStmt() != nil:
		tag, err := a.createRole(n.GetCreateRoleStmt())
		return nil, tag, err
	case n.GetGrantStmt() != nil:
		tag, err := a.grant(n.GetGrantStmt())
		return nil, tag, err
	case n.GetAlterRoleStmt() != nil:
		tag, err := a.alterRole(n.GetAlterRoleStmt())
		return nil, tag, err
	case n.GetDropRoleStmt() != nil:
		tag, err := a.dropRoles(n.GetDropRoleStmt())
		return nil, tag, err
	case n.GetAlterTableStmt() != nil:
		tag, err := a.alterTable(n.GetAlterTableStmt())
		return nil, tag, err
	case n.GetRenameStmt() != nil:
		tag, err := a.rename(n.GetRenameStmt())
		return nil, tag, err
	case n.GetVacuumStmt() != nil:
		tag, err := a.vacuum(n.GetVacuumStmt())
		return nil, tag, err
	case !plannable(n):
		return nil, "", errorf("0A000", "statement %s is not supported", nodeName(n))
	}
	p, err := a.plan(n)
	if err != nil {
		return nil, "", err
	}
	if !sameColumns(p.columns(), st.cols) {
		return nil, "", errorf("0A000", "cached plan must not change result type")
	}
	switch p := p.(type) {
	case *selectPlan:
		rows, err := p.execute(r)
		return rows, tagCount("SELECT", len(rows)), err
	case *insertPlan:
		n, rows, err := p.execute(r)
		return rows, tagCount("INSERT", n), err
	case *updatePlan:
		n, rows, err := p.execute(r)
		verb := "UPDATE"
		if p.delete {
			verb = "DELETE"
		}
		return rows, tagCount(verb, n), err
	case *explainPlan:
		return p.rows(), "EXPLAIN", nil
	case *copyPlan:
		if p.st.IsFrom {
			return nil, "", errorf("08P01", "COPY FROM STDIN runs through the copy sub-protocol")
		}
		return p.copyOut(r)
	}
	panic(fmt.Sprintf("query: plan %T has no executor", p))
}

func sameColumns(a, b []Column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].TypeOID != b[i].TypeOID {
			return false
		}
	}
	return true
}

// set runs SET and RESET.
func (s *Session) set(st *pg.VariableSetStmt) (string, error) {
	switch st.Kind {
	case pg.VariableSetKind_VAR_SET_VALUE:
		var parts []string
		for _, n := range st.Args {
			c := n.GetAConst()
			if c == nil {
				return "", errorf("0A000", "SET %s to an expression is not supported", st.Name)
			}
			switch v := c.Val.(type) {
			case *pg.A_Const_Sval:
				parts = append(parts, v.Sval.Sval)
			case *pg.A_Const_Ival:
				parts = append(parts, fmt.Sprint(v.Ival.Ival))
			case *pg.A_Const_Fval:
				parts = append(parts, v.Fval.Fval)
			default:
				return "", errorf("22023", "invalid value for parameter %q", st.Name)
			}
		}
		return "SET", s.setParam(st.Name, strings.Join(parts, ", "))
	case pg.VariableSetKind_VAR_SET_DEFAULT, pg.VariableSetKind_VAR_RESET:
		def, ok := defaultParameters(s.user)[canonicalParam(st.Name)]
		if !ok {
			return "", errUnknownParam(st.Name)
		}
		s.params[canonicalParam(st.Name)] = def
		if st.Kind == pg.VariableSetKind_VAR_RESET {
			return "RESET", nil
		}
		return "SET", nil
	case pg.VariableSetKind_VAR_SET_MULTI:
		if st.Name == "TRANSACTION" || st.Name == "SESSION CHARACTERISTICS" {
			readOnly, err := s.txnOptions(st.Args)
			if err != nil || readOnly == nil {
				return "SET", err
			}
			if st.Name == "SESSION CHARACTERISTICS" {
				return "SET", s.setParam("default_transaction_read_only", onOff(*readOnly))
			}
			if s.status == StatusIdle && !s.implicit {
				s.warning("25P01", "SET TRANSACTION can only be used in transaction blocks")
				return "SET", nil
			}
			return "SET", s.setReadOnly(*readOnly)
		}
	case pg.VariableSetKind_VAR_RESET_ALL:
		maps.Copy(s.params, defaultParameters(s.user))
		return "RESET", nil
	}
	return "", errorf("0A000", "this form of SET is not supported")
}

func errUnknownParam(name string) *Error {
	return errorf("42704", "unrecognized configuration parameter %q", name)
}

// canonicalParam is a parameter's name as stored (they are
// case-insensitive: DateStyle, datestyle).
func canonicalParam(name string) string {
	for k := range defaultParameters("") {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return strings.ToLower(name)
}

// settable are the parameters SET may change, each with its check (nil:
// any value).
var settable = map[string]func(v string) (string, bool){
	"application_name": nil,
	"client_encoding": func(v string) (string, bool) {
		switch strings.ToUpper(strings.ReplaceAll(v, "-", "")) {
		case "UTF8", "UNICODE":
			return "UTF8", true
		case "SQL_ASCII":
			return "SQL_ASCII", true
		}
		return "", false
	},
	"DateStyle": func(v string) (string, bool) {
		if strings.HasPrefix(strings.ToUpper(v), "ISO") {
			return "ISO, MDY", true
		}
		return "", false
	},
	"TimeZone": func(v string) (string, bool) {
		switch strings.ToUpper(v) {
		case "UTC", "GMT", "ETC/UTC", "Z", "0", "+00", "00:00":
			return "UTC", true
		}
		return "", false
	},
	"search_path":        nil,
	"extra_float_digits": nil,
	"default_transaction_read_only": func(v string) (string, bool) {
		switch strings.ToLower(v) {
		case "on", "true", "yes", "1", "t":
			return "on", true
		case "off", "false", "no", "0", "f":
			return "off", true
		}
		return "", false
	},
	"statement_timeout":             nil,
	"transaction_isolation":         nil,
	"default_transaction_isolation": nil,
	"IntervalStyle": func(v string) (string, bool) {
		return "postgres", strings.EqualFold(v, "postgres")
	},
	"standard_conforming_strings": func(v string) (string, bool) {
		return "on", strings.EqualFold(v, "on")
	},
}

func (s *Session) setParam(name, value string) error {
	key := canonicalParam(name)
	check, ok := settable[key]
	if !ok {
		if _, known := s.params[key]; known {
			return errorf("55P02", "parameter %q cannot be changed now", name)
		}
		return errUnknownParam(name)
	}
	if check != nil {
		v, ok := check(value)
		if !ok {
			return errorf("22023", "invalid value for parameter %q: %q (Orbit supports: %s)", name, value, s.params[key])
		}
		value = v
	}
	s.params[key] = value
	return nil
}

// setStartup applies a start-up parameter; options ("-c name=value ...")
// are applied as SETs.
func (s *Session) setStartup(name, value string) error {
	switch name {
	case "user", "database", "replication":
		if name == "replication" && value != "false" && value != "0" && value != "off" {
			return fatal("0A000", "replication connections are not supported")
		}
		return nil
	case "client_encoding":
		if strings.EqualFold(value, "auto") {
			return nil
		}
	case "options":
		fields := strings.Fields(value)
		for i := 0; i < len(fields); i++ {
			f := fields[i]
			if f == "-c" && i+1 < len(fields) {
				i++
				f = fields[i]
			} else if strings.HasPrefix(f, "--") {
				f = f[2:]
			} else {
				f = strings.TrimPrefix(f, "-c")
			}
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				return fatal("0A000", "start-up option %q is not supported", fields[i])
			}
			if err := s.setStartup(strings.ReplaceAll(k, "-", "_"), v); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.setParam(name, value); err != nil {
		e := sqlError(err)
		e.Severity = "FATAL"
		return e
	}
	return nil
}

func showName(name string) string {
	if strings.EqualFold(name, "transaction_isolation") {
		return "transaction_isolation"
	}
	return strings.ToLower(name)
}

// show runs SHOW name.
func (s *Session) show(name string) (string, error) {
	key := canonicalParam(name)
	if key == "transaction_isolation" || key == "default_transaction_isolation" {
		return "serializable", nil
	}
	if key == "transaction_read_only" {
		if s.status != StatusIdle || s.implicit {
			return onOff(s.readOnly), nil
		}
		return s.params["default_transaction_read_only"], nil
	}
	v, ok := s.params[key]
	if !ok {
		if strings.EqualFold(name, "all") {
			return "", errorf("0A000", "SHOW ALL is not supported")
		}
		return "", errUnknownParam(name)
	}
	return v, nil
}
