package query

import (
	"bytes"
	"errors"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/storage"
)

// fromList analyses FROM: several items are a cross join.
func (a *analyzer) fromList(items []*pg.Node) (source, *scope, error) {
	var src source
	sc := &scope{}
	for _, n := range items {
		s, isc, err := a.fromItem(n)
		if err != nil {
			return nil, nil, err
		}
		if src == nil {
			src, sc = s, isc
			continue
		}
		src = &joinSource{left: src, right: s, leftWidth: len(sc.cols), rightWidth: len(isc.cols), kind: pg.JoinType_JOIN_INNER}
		sc = &scope{cols: append(slices0(sc.cols), isc.cols...)}
	}
	return src, sc, nil
}

func slices0(c []scopeCol) []scopeCol { return append([]scopeCol(nil), c...) }

func (a *analyzer) fromItem(n *pg.Node) (source, *scope, error) {
	switch {
	case n.GetRangeVar() != nil:
		rv := n.GetRangeVar()
		if c := a.lookupCTE(rv.Relname); c != nil && rv.Schemaname == "" {
			alias := ""
			if rv.Alias != nil {
				alias = rv.Alias.Aliasname
			}
			src, sc, err := a.cteSource(c, alias)
			if err == nil && rv.Alias != nil {
				err = renameColumns(sc, rv.Alias)
			}
			return src, sc, err
		}
		if vt, ok := virtualTableOf(rv.Schemaname, rv.Relname); ok {
			name := rv.Relname
			if rv.Alias != nil {
				name = rv.Alias.Aliasname
			}
			sc := &scope{}
			for _, c := range vt.cols {
				c.table = name
				sc.cols = append(sc.cols, c)
			}
			if rv.Alias != nil {
				if err := renameColumns(sc, rv.Alias); err != nil {
					return nil, nil, err
				}
			}
			return &virtualScan{vt: vt}, sc, nil
		}
		t, err := a.table(rv)
		var isView *viewError
		if errors.As(err, &isView) {
			alias := ""
			if rv.Alias != nil {
				alias = rv.Alias.Aliasname
			}
			src, sc, err := a.viewQuery(isView.view, alias)
			if err == nil && rv.Alias != nil {
				err = renameColumns(sc, rv.Alias)
			}
			return src, sc, err
		}
		if err != nil {
			return nil, nil, err
		}
		if err := a.require(t, "SELECT"); err != nil {
			if e, ok := err.(*Error); ok {
				err = withPosition(e, rv.Location)
			}
			return nil, nil, err
		}
		name := t.Name
		if rv.Alias != nil {
			name = rv.Alias.Aliasname
		}
		sc := &scope{}
		for i, c := range t.Columns {
			sc.cols = append(sc.cols, scopeCol{table: name, name: c.Name, t: c.Type, hidden: c.Hidden, tableOID: tableOID(t), attr: int16(i + 1)})
		}
		if rv.Alias != nil {
			if err := renameColumns(sc, rv.Alias); err != nil {
				return nil, nil, err
			}
		}
		return &tableScan{t: t, maxRows: a.s.e.opts.MaxRows}, sc, nil
	case n.GetJoinExpr() != nil:
		return a.join(n.GetJoinExpr())
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		if rs.Lateral {
			return nil, nil, errorf("0A000", "LATERAL is not supported")
		}
		sub := &analyzer{ctx: a.ctx, s: a.s, tx: a.tx, params: a.params, outer: a.outer, ctes: a.ctes}
		p, err := sub.analyzeSelect(rs.Subquery.GetSelectStmt())
		a.params = sub.params
		a.failed = append(a.failed, sub.failed...)
		if err != nil {
			return nil, nil, err
		}
		name := ""
		if rs.Alias != nil {
			name = rs.Alias.Aliasname
		}
		sc := &scope{}
		for i := 0; i < p.visible; i++ {
			sc.cols = append(sc.cols, scopeCol{table: name, name: p.names[i], t: p.outputs[i].typ()})
		}
		if rs.Alias != nil {
			if err := renameColumns(sc, rs.Alias); err != nil {
				return nil, nil, err
			}
		}
		return p, sc, nil
	case n.GetRangeFunction() != nil:
		return a.rangeFunction(n.GetRangeFunction())
	}
	return nil, nil, errorf("0A000", "FROM item %s is not supported", nodeName(n))
}

// rows makes a subquery a source.
func (p *selectPlan) rows(r *run) ([][]any, error) { return p.execute(r) }

func renameColumns(sc *scope, alias *pg.Alias) error {
	if len(alias.Colnames) > len(sc.cols) {
		return errorf("42P10", "table %q has %d columns available but %d columns specified", alias.Aliasname, len(sc.cols), len(alias.Colnames))
	}
	for i, n := range alias.Colnames {
		sc.cols[i].name = stringOf(n)
	}
	return nil
}

// tableOID is the OID clients see for a table: its ID above the range
// PostgreSQL keeps for its own objects.
func tableOID(t *TableDesc) uint32 { return uint32(100000 + t.ID) }

// table reads a table's descriptor as the statement's transaction sees
// it.
func (a *analyzer) table(rv *pg.RangeVar) (*TableDesc, error) {
	schema := rv.Schemaname
	if schema == "" {
		schema = "public"
	}
	if rv.Catalogname != "" && rv.Catalogname != a.s.database {
		return nil, withPosition(errorf("0A000", "cross-database references are not implemented: %s.%s.%s", rv.Catalogname, schema, rv.Relname), rv.Location)
	}
	if err := a.requireSchema(schema, "USAGE"); err != nil {
		if denied := (*Error)(nil); rv.Schemaname != "" || !errors.As(err, &denied) || denied.Code != "42501" {
			return nil, err
		}
		// An unqualified name is looked up only in the schemas of the
		// search path the role may use: none, as PostgreSQL says.
		return nil, withPosition(errorf("42P01", "relation %q does not exist", rv.Relname), rv.Location)
	}
	t, err := lookupTable(a.ctx, a.tx, a.s.database, schema, rv.Relname)
	if err != nil {
		return nil, err
	}
	if t == nil {
		name := rv.Relname
		if rv.Schemaname != "" {
			name = rv.Schemaname + "." + name
		}
		if schema == "pg_catalog" || schema == "information_schema" {
			return nil, withPosition(errorf("0A000", "system catalog %s is not supported yet", name), rv.Location)
		}
		v, err := a.lookupView(schema, rv.Relname)
		if err != nil {
			return nil, err
		}
		if v != nil {
			return nil, &viewError{err: withPosition(errorf("42809", "%q is a view, and views are read only", name), rv.Location), view: v}
		}
		return nil, withPosition(errorf("42P01", "relation %q does not exist", name), rv.Location)
	}
	return t, nil
}

// viewError is table's refusal of a view: a FROM clause reads the view
// instead (fromItem), every other use fails with its error (42809).
type viewError struct {
	err  *Error
	view *ViewDesc
}

func (e *viewError) Error() string { return e.err.Error() }
func (e *viewError) Unwrap() error { return e.err }

func (a *analyzer) join(j *pg.JoinExpr) (source, *scope, error) {
	if j.IsNatural || len(j.UsingClause) > 0 {
		return nil, nil, errorf("0A000", "NATURAL and USING joins are not supported")
	}
	l, lsc, err := a.fromItem(j.Larg)
	if err != nil {
		return nil, nil, err
	}
	r, rsc, err := a.fromItem(j.Rarg)
	if err != nil {
		return nil, nil, err
	}
	js := &joinSource{left: l, right: r, leftWidth: len(lsc.cols), rightWidth: len(rsc.cols), kind: j.Jointype}
	sc := &scope{cols: append(slices0(lsc.cols), rsc.cols...)}
	switch j.Jointype {
	case pg.JoinType_JOIN_INNER, pg.JoinType_JOIN_LEFT, pg.JoinType_JOIN_RIGHT, pg.JoinType_JOIN_FULL:
	default:
		return nil, nil, errorf("0A000", "join type %s is not supported", j.Jointype)
	}
	if j.Quals != nil {
		on, err := a.expr(j.Quals, sc)
		if err != nil {
			return nil, nil, err
		}
		if js.on, err = a.boolean(on, "argument of JOIN/ON"); err != nil {
			return nil, nil, err
		}
		js.keys = equiKeys(js.on, js.leftWidth)
	}
	if j.Alias != nil {
		return nil, nil, errorf("0A000", "an alias on a join is not supported")
	}
	return js, sc, nil
}

// joinSource is a nested-loop join (the simple choice for now).
type joinSource struct {
	left, right           source
	leftWidth, rightWidth int
	kind                  pg.JoinType
	on                    expr // nil: every pair
	// keys are the (left, right) column pairs the join condition equates
	// (or, for a cross join, the WHERE clause): the join then hashes the
	// right rows by them and pairs each left row with its bucket only
	// (a hash join), instead of with every right row.
	keys [][2]int
}

// equiKeys are the column pairs, one on each side of a join of
// leftWidth columns, that the conjuncts of x equate (a = b, same type).
func equiKeys(x expr, leftWidth int) [][2]int {
	var keys [][2]int
	for _, c := range conjuncts(x) {
		f, ok := c.(*funcExpr)
		if !ok || !f.eq || len(f.args) != 2 {
			continue
		}
		a, aok := f.args[0].(*colExpr)
		b, bok := f.args[1].(*colExpr)
		if !aok || !bok || a.t.OID != b.t.OID {
			continue
		}
		if a.i > b.i {
			a, b = b, a
		}
		if a.i < leftWidth && b.i >= leftWidth {
			keys = append(keys, [2]int{a.i, b.i - leftWidth})
		}
	}
	return keys
}

// conjuncts are the terms x ANDs together (x itself if it is no AND;
// none for nil).
func conjuncts(x expr) []expr {
	if x == nil {
		return nil
	}
	if and, ok := x.(*andExpr); ok {
		return append(conjuncts(and.l), conjuncts(and.r)...)
	}
	return []expr{x}
}

// hashKey is a row's join key over cols (false: a NULL, which equals
// nothing).
func hashKey(row []any, cols [][2]int, side int) (string, bool) {
	var k []byte
	for _, c := range cols {
		v := row[c[side]]
		if v == nil {
			return "", false
		}
		k = appendDistinctKey(k, v)
	}
	return string(k), true
}

func (j *joinSource) rows(r *run) ([][]any, error) {
	ls, err := j.left.rows(r)
	if err != nil {
		return nil, err
	}
	rs, err := j.right.rows(r)
	if err != nil {
		return nil, err
	}
	var out [][]any
	rightMatched := make([]bool, len(rs))
	all := make([]int, len(rs))
	for i := range all {
		all[i] = i
	}
	var buckets map[string][]int
	if len(j.keys) > 0 {
		buckets = map[string][]int{}
		for ri, rrow := range rs {
			if k, ok := hashKey(rrow, j.keys, 1); ok {
				buckets[k] = append(buckets[k], ri)
			}
		}
	}
	for _, lrow := range ls {
		matched := false
		candidates := all
		if buckets != nil {
			k, ok := hashKey(lrow, j.keys, 0)
			candidates = nil
			if ok {
				candidates = buckets[k]
			}
		}
		for _, ri := range candidates {
			rrow := rs[ri]
			row := append(append(make([]any, 0, j.leftWidth+j.rightWidth), lrow...), rrow...)
			if j.on != nil {
				v, err := j.on.eval(r.env, row)
				if err != nil {
					return nil, err
				}
				if v != true {
					continue
				}
			}
			matched, rightMatched[ri] = true, true
			if err := r.take(1, maxJoinRows); err != nil {
				return nil, err
			}
			out = append(out, row)
		}
		if !matched && (j.kind == pg.JoinType_JOIN_LEFT || j.kind == pg.JoinType_JOIN_FULL) {
			out = append(out, append(append(make([]any, 0, j.leftWidth+j.rightWidth), lrow...), make([]any, j.rightWidth)...))
		}
	}
	if j.kind == pg.JoinType_JOIN_RIGHT || j.kind == pg.JoinType_JOIN_FULL {
		for ri, rrow := range rs {
			if !rightMatched[ri] {
				out = append(out, append(make([]any, j.leftWidth, j.leftWidth+j.rightWidth), rrow...))
			}
		}
	}
	return out, nil
}

// maxJoinRows bounds a join's output held in memory.
const maxJoinRows = 4 << 20

// tableScan reads a table's rows, as few as its pushed-down equalities
// on the primary key allow: all of the key pinned is one read, a prefix
// one span.
type tableScan struct {
	t       *TableDesc
	maxRows int
	// pinned[i] is the value the filter pins the key's i-th column to
	// (nil: not pinned); only a prefix of pinned ones is used.
	pinned    []expr
	forUpdate bool
	// index is the secondary index the scan reads through (nil: the
	// table's rows), chosen when no primary-key column is pinned.
	index *indexScan
}

// pushdown notes the conjuncts of where that pin primary-key columns to
// constants or parameters.
func (s *tableScan) pushdown(where expr) {
	s.pinned = make([]expr, len(s.t.PrimaryKey))
	pk := s.t.pkIndexes()
	pins := map[int]expr{}
	for _, x := range conjuncts(where) {
		col, val, ok := equality(x)
		if !ok || col.i >= len(s.t.Columns) || col.t.OID != s.t.Columns[col.i].Type.OID {
			continue
		}
		pins[col.i] = val
		for i, ci := range pk {
			if ci == col.i {
				s.pinned[i] = val
			}
		}
	}
	if s.pinned[0] == nil {
		s.chooseIndex(pins)
	}
}

// equality recognizes col = value (value a constant or a parameter).
func equality(x expr) (*colExpr, expr, bool) {
	f, ok := x.(*funcExpr)
	if !ok || len(f.args) != 2 || !f.eq {
		return nil, nil, false
	}
	c, ok := f.args[0].(*colExpr)
	v := f.args[1]
	if !ok {
		c, ok = f.args[1].(*colExpr)
		v = f.args[0]
	}
	if !ok {
		return nil, nil, false
	}
	switch v.(type) {
	case *constExpr, *paramExpr:
		return c, v, true
	}
	return nil, nil, false
}

func (s *tableScan) rows(r *run) ([][]any, error) {
	if s.index != nil {
		return s.indexRows(r)
	}
	start := tablePrefix(s.t.ID)
	n := 0
	for n < len(s.pinned) && s.pinned[n] != nil {
		v, err := s.pinned[n].eval(r.env, nil)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, nil // col = NULL matches nothing
		}
		start = appendKey(start, v)
		n++
	}
	if n > 0 && n == len(s.pinned) {
		get := r.tx.Get
		if s.forUpdate {
			get = r.tx.GetForUpdate
		}
		if mutation.On(MutPointReadsUnrecorded) {
			get = r.env.session.db.Get
		}
		b, found, err := get(r.ctx, start)
		if err != nil || !found {
			return nil, err
		}
		row, err := s.t.decode(b)
		if err != nil {
			return nil, err
		}
		return [][]any{row}, r.take(1, s.maxRows)
	}
	var out [][]any
	err := scanSpan(r.ctx, r.tx, start, prefixEnd(start), func(kv storage.KeyValue) error {
		row, err := s.t.decode(kv.Value)
		out = append(out, row)
		if err != nil {
			return err
		}
		return r.take(1, s.maxRows)
	})
	return out, err
}

// scanPage is how many rows one read of a scan asks for.
const scanPage = 1024

// prefixEnd is the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// valuesSource is VALUES (...), (...).
type valuesSource struct {
	rowsX [][]expr
	types []Type
}

func (v *valuesSource) rows(r *run) ([][]any, error) {
	out := make([][]any, 0, len(v.rowsX))
	for _, xs := range v.rowsX {
		row, err := evalAll(r.env, xs, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, r.take(len(out), maxJoinRows)
}

// values analyses VALUES lists; want, if set, are the column types
// (INSERT's target columns) the values are converted to.
func (a *analyzer) values(lists []*pg.Node, want []Type) (*valuesSource, error) {
	vs := &valuesSource{}
	width := -1
	var cols [][]*pg.Node
	for _, l := range lists {
		items := l.GetList().Items
		if width >= 0 && len(items) != width {
			return nil, errorf("42601", "VALUES lists must all be the same length")
		}
		width = len(items)
		cols = append(cols, items)
	}
	vs.rowsX = make([][]expr, len(cols))
	for c := range width {
		var column []expr
		for _, row := range cols {
			if row[c].GetSetToDefault() != nil {
				return nil, errorf("0A000", "DEFAULT in VALUES is only supported in INSERT")
			}
			x, err := a.expr(row[c], &scope{})
			if err != nil {
				return nil, err
			}
			column = append(column, x)
		}
		var t Type
		if want != nil && c < len(want) {
			t = want[c]
		} else {
			var err error
			if t, err = commonType(column, "VALUES"); err != nil {
				return nil, err
			}
		}
		for i, x := range column {
			cx, err := a.convertTo(x, t)
			if err != nil {
				return nil, err
			}
			vs.rowsX[i] = append(vs.rowsX[i], cx)
		}
		vs.types = append(vs.types, t)
	}
	return vs, nil
}

// rangeFunction is a function in FROM: generate_series.
func (a *analyzer) rangeFunction(rf *pg.RangeFunction) (source, *scope, error) {
	if rf.Lateral || rf.Ordinality || rf.IsRowsfrom || len(rf.Functions) != 1 {
		return nil, nil, errorf("0A000", "this form of function in FROM is not supported")
	}
	call := rf.Functions[0].GetList().Items[0].GetFuncCall()
	if call == nil || stringOf(call.Funcname[len(call.Funcname)-1]) != "generate_series" {
		return nil, nil, errorf("0A000", "only generate_series is supported as a function in FROM")
	}
	if len(call.Args) < 2 || len(call.Args) > 3 {
		return nil, nil, errorf("42883", "function generate_series with %d arguments does not exist", len(call.Args))
	}
	gs := &seriesSource{}
	for _, n := range call.Args {
		x, err := a.expr(n, &scope{})
		if err != nil {
			return nil, nil, err
		}
		if x, err = a.coerce(x, TypeInt4); err != nil {
			return nil, nil, err
		}
		if x.typ().family() != famInt {
			return nil, nil, errorf("0A000", "generate_series over %s is not supported", x.typ().shortName())
		}
		gs.args = append(gs.args, x)
	}
	t := TypeInt4
	for _, x := range gs.args {
		t = wider(t, x.typ())
	}
	name := "generate_series"
	if rf.Alias != nil {
		name = rf.Alias.Aliasname
	}
	colName := name
	if rf.Alias != nil && len(rf.Alias.Colnames) > 0 {
		colName = stringOf(rf.Alias.Colnames[0])
	}
	return gs, &scope{cols: []scopeCol{{table: name, name: colName, t: t}}}, nil
}

type seriesSource struct{ args []expr }

func (g *seriesSource) rows(r *run) ([][]any, error) {
	vals, err := evalAll(r.env, g.args, nil)
	if err != nil {
		return nil, err
	}
	for _, v := range vals {
		if v == nil {
			return nil, nil
		}
	}
	from, to, step := vals[0].(int64), vals[1].(int64), int64(1)
	if len(vals) == 3 {
		step = vals[2].(int64)
	}
	if step == 0 {
		return nil, errorf("22023", "step size cannot equal zero")
	}
	var out [][]any
	for v := from; (step > 0 && v <= to) || (step < 0 && v >= to); v += step {
		if err := r.take(1, maxJoinRows); err != nil {
			return nil, err
		}
		out = append(out, []any{v})
		if (step > 0 && v > to-step) || (step < 0 && v < to-step) {
			break // the next step would overflow
		}
	}
	return out, nil
}
