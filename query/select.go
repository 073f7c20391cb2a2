package query

import (
	"context"
	"slices"
	"strconv"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/orbitkernel/orbit/txn"
)

// run is what executing a plan needs.
type run struct {
	ctx  context.Context
	tx   *txn.Tx
	env  *env
	rows int // rows materialized so far, against MaxRows
}

// take counts n more rows held in memory and refuses beyond the limit.
func (r *run) take(n int, limit int) error {
	r.rows += n
	if r.rows > limit {
		return errorf("54000", "query holds more than %d rows in memory", limit)
	}
	return nil
}

// source produces a relation's rows.
type source interface {
	rows(r *run) ([][]any, error)
}

// selectPlan is an analysed SELECT. Its outputs are the visible columns
// followed by hidden ones ORDER BY needs.
type selectPlan struct {
	from     source // nil: one row of no columns
	where    expr
	grouped  bool
	groupBy  []expr
	aggs     []*aggregate
	having   expr
	outputs  []expr
	visible  int
	names    []string
	srcCols  []scopeCol // where each visible output comes from (RowDescription)
	distinct bool
	order    []sortKey
	limit    expr
	offset   expr
	maxRows  int
	// windows are the window calls, whose values are appended to the
	// rows after WHERE (window.go).
	windows []*windowFunc
}

type sortKey struct {
	i          int // output position
	desc       bool
	nullsFirst bool
}

func (p *selectPlan) columns() []Column {
	cols := make([]Column, p.visible)
	for i := range cols {
		t := p.outputs[i].typ()
		cols[i] = Column{Name: p.names[i], TypeOID: t.OID, TypeSize: t.Size, TypeMod: typmod(t), TableOID: p.srcCols[i].tableOID, Attr: p.srcCols[i].attr}
	}
	return cols
}

// typmod is the type modifier as pg_attribute.atttypmod holds it (a
// varchar(n)'s is n+4).
func typmod(t Type) int32 {
	if t.Mod >= 0 && (t.OID == TypeVarchar.OID || t.OID == TypeBpchar.OID || t.OID == TypeNumeric.OID) {
		return t.Mod + 4
	}
	return -1
}

// analyzeSelect analyses a SELECT (or VALUES) statement.
func (a *analyzer) analyzeSelect(st *pg.SelectStmt) (*selectPlan, error) {
	restore, err := a.with(st.WithClause)
	defer restore()
	if err != nil {
		return nil, err
	}
	if st.IntoClause != nil {
		return nil, errorf("0A000", "SELECT INTO is not supported")
	}
	if len(st.WindowClause) > 0 {
		return nil, errorf("0A000", "window functions are not supported")
	}
	if st.Op != pg.SetOperation_SETOP_NONE && st.Op != pg.SetOperation_SET_OPERATION_UNDEFINED {
		return a.analyzeSetOp(st)
	}
	p := &selectPlan{maxRows: a.s.e.opts.MaxRows}
	sc := &scope{}
	if len(st.ValuesLists) > 0 {
		vs, err := a.values(st.ValuesLists, nil)
		if err != nil {
			return nil, err
		}
		p.from = vs
		for i, t := range vs.types {
			sc.cols = append(sc.cols, scopeCol{name: "column" + strconv.Itoa(i+1), t: t})
		}
		for i, c := range sc.cols {
			p.outputs = append(p.outputs, &colExpr{i: i, t: c.t})
			p.names = append(p.names, c.name)
			p.srcCols = append(p.srcCols, scopeCol{})
		}
		p.visible = len(p.outputs)
		return p, a.orderAndLimit(p, st, sc)
	}
	if len(st.FromClause) > 0 {
		var err error
		if p.from, sc, err = a.fromList(st.FromClause); err != nil {
			return nil, err
		}
	}
	if st.WhereClause != nil {
		a.inWhere = true
		w, err := a.expr(st.WhereClause, sc)
		a.inWhere = false
		if err != nil {
			return nil, err
		}
		if p.where, err = a.boolean(w, "argument of WHERE"); err != nil {
			return nil, err
		}
		switch from := p.from.(type) {
		case *tableScan:
			from.pushdown(p.where)
		case *joinSource:
			// FROM a, b WHERE a.x = b.y: the cross join pairs only the
			// rows whose keys match (WHERE still checks every pair).
			if from.on == nil && from.kind == pg.JoinType_JOIN_INNER {
				from.keys = equiKeys(p.where, from.leftWidth)
			}
		}
	}
	p.grouped = len(st.GroupClause) > 0 || hasAggregate(st.TargetList) || st.HavingClause != nil || hasAggregateSorts(st.SortClause)
	if p.grouped {
		a.agg = &aggContext{groupCols: map[int]bool{}}
		defer func() { a.agg = nil }()
		a.agg.inAgg = true // GROUP BY expressions read the input
		for _, n := range st.GroupClause {
			if c := n.GetAConst(); c != nil && c.GetIval() != nil {
				return nil, errorf("0A000", "GROUP BY a column position is not supported")
			}
			g, err := a.expr(n, sc)
			if err != nil {
				a.agg.inAgg = false
				return nil, err
			}
			if c, ok := g.(*colExpr); ok {
				a.agg.groupCols[c.i] = true
			}
			p.groupBy = append(p.groupBy, g)
			a.agg.groupNodes = append(a.agg.groupNodes, withoutLocations(n))
		}
		a.agg.inAgg = false
	}
	if !p.grouped {
		saved := a.win
		a.win = &winContext{base: len(sc.cols)}
		defer func() { p.windows, a.win = a.win.funcs, saved }()
	}
	if err := a.targets(p, st.TargetList, sc); err != nil {
		return nil, err
	}
	if st.HavingClause != nil {
		h, err := a.expr(st.HavingClause, sc)
		if err != nil {
			return nil, err
		}
		if p.having, err = a.boolean(h, "argument of HAVING"); err != nil {
			return nil, err
		}
	}
	if len(st.DistinctClause) > 0 {
		if st.DistinctClause[0].GetNode() != nil { // plain DISTINCT is one empty node
			return nil, errorf("0A000", "SELECT DISTINCT ON is not supported")
		}
		p.distinct = true
	}
	if err := a.orderAndLimit(p, st, sc); err != nil {
		return nil, err
	}
	if p.grouped {
		p.aggs = a.agg.aggs
	}
	return p, nil
}

// hasAggregate reports whether an aggregate call appears in nodes
// outside a subquery.
func hasAggregate(nodes []*pg.Node) bool {
	for _, n := range nodes {
		if n != nil && nodeHasAggregate(n) {
			return true
		}
	}
	return false
}

func hasAggregateSorts(nodes []*pg.Node) bool {
	for _, n := range nodes {
		if sb := n.GetSortBy(); sb != nil && nodeHasAggregate(sb.Node) {
			return true
		}
	}
	return false
}

func nodeHasAggregate(n *pg.Node) bool {
	switch {
	case n == nil:
		return false
	case n.GetFuncCall() != nil:
		f := n.GetFuncCall()
		if aggregateFuncs[stringOf(f.Funcname[len(f.Funcname)-1])] && f.Over == nil {
			return true
		}
		return hasAggregate(f.Args)
	case n.GetResTarget() != nil:
		return nodeHasAggregate(n.GetResTarget().Val)
	case n.GetAExpr() != nil:
		e := n.GetAExpr()
		return nodeHasAggregate(e.Lexpr) || nodeHasAggregate(e.Rexpr)
	case n.GetList() != nil:
		return hasAggregate(n.GetList().Items)
	case n.GetTypeCast() != nil:
		return nodeHasAggregate(n.GetTypeCast().Arg)
	case n.GetBoolExpr() != nil:
		return hasAggregate(n.GetBoolExpr().Args)
	case n.GetNullTest() != nil:
		return nodeHasAggregate(n.GetNullTest().Arg)
	case n.GetCoalesceExpr() != nil:
		return hasAggregate(n.GetCoalesceExpr().Args)
	case n.GetCaseExpr() != nil:
		c := n.GetCaseExpr()
		return nodeHasAggregate(c.Arg) || hasAggregate(c.Args) || nodeHasAggregate(c.Defresult)
	case n.GetCaseWhen() != nil:
		return nodeHasAggregate(n.GetCaseWhen().Expr) || nodeHasAggregate(n.GetCaseWhen().Result)
	}
	return false
}

// targets analyses the select list, expanding *.
func (a *analyzer) targets(p *selectPlan, list []*pg.Node, sc *scope) error {
	for _, n := range list {
		rt := n.GetResTarget()
		if cr := rt.Val.GetColumnRef(); cr != nil && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			table := ""
			if len(cr.Fields) == 2 {
				table = stringOf(cr.Fields[0])
				if !sc.hasTable(table) {
					return withPosition(errorf("42P01", "missing FROM-clause entry for table %q", table), cr.Location)
				}
			}
			if len(sc.cols) == 0 && table == "" {
				return withPosition(errorf("42601", "SELECT * with no tables specified is not valid"), cr.Location)
			}
			for i, c := range sc.cols {
				if c.hidden || (table != "" && c.table != table) {
					continue
				}
				if a.agg != nil && !a.agg.groupCols[i] {
					return withPosition(errorf("42803", "column %q must appear in the GROUP BY clause or be used in an aggregate function", c.table+"."+c.name), cr.Location)
				}
				p.outputs = append(p.outputs, &colExpr{i: i, t: c.t})
				p.names = append(p.names, c.name)
				p.srcCols = append(p.srcCols, c)
			}
			continue
		}
		x, err := a.expr(rt.Val, sc)
		if err != nil {
			return err
		}
		if x.typ().OID == TypeUnknown.OID {
			if x, err = a.cast(x, TypeText); err != nil {
				return err
			}
		}
		name := rt.Name
		var src scopeCol
		if c, ok := x.(*colExpr); ok {
			src = sc.cols[c.i]
		}
		if name == "" {
			name = columnName(rt.Val)
		}
		p.outputs = append(p.outputs, x)
		p.names = append(p.names, name)
		p.srcCols = append(p.srcCols, src)
	}
	p.visible = len(p.outputs)
	return nil
}

// columnName is the name PostgreSQL gives an output column with no alias
// (FigureColname).
func columnName(n *pg.Node) string {
	name, _ := figureName(n)
	return name
}

// figureName is FigureColnameInternal: a name and its strength (2: a
// column's or function's own name, 1: a type's or keyword's, 0: none).
func figureName(n *pg.Node) (string, int) {
	switch {
	case n == nil:
	case n.GetColumnRef() != nil:
		f := n.GetColumnRef().Fields
		if name := stringOf(f[len(f)-1]); name != "" {
			return name, 2
		}
	case n.GetAIndirection() != nil:
		return figureName(n.GetAIndirection().Arg)
	case n.GetFuncCall() != nil:
		f := n.GetFuncCall().Funcname
		return stringOf(f[len(f)-1]), 2
	case n.GetAExpr() != nil:
		if n.GetAExpr().Kind == pg.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2
		}
	case n.GetTypeCast() != nil:
		if name, strength := figureName(n.GetTypeCast().Arg); strength > 1 {
			return name, strength
		}
		if t, err := typeOf(n.GetTypeCast().TypeName); err == nil {
			return pgTypeName(t), 1
		}
	case n.GetCaseExpr() != nil:
		if name, strength := figureName(n.GetCaseExpr().Defresult); strength > 1 {
			return name, strength
		}
		return "case", 1
	case n.GetCoalesceExpr() != nil:
		return "coalesce", 2
	case n.GetAArrayExpr() != nil:
		return "array", 2
	case n.GetSqlvalueFunction() != nil:
		switch n.GetSqlvalueFunction().Op {
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP:
			return "current_timestamp", 2
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_DATE:
			return "current_date", 2
		case pg.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP:
			return "localtimestamp", 2
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_USER:
			return "current_user", 2
		case pg.SQLValueFunctionOp_SVFOP_SESSION_USER:
			return "session_user", 2
		case pg.SQLValueFunctionOp_SVFOP_USER:
			return "user", 2
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:
			return "current_schema", 2
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:
			return "current_catalog", 2
		case pg.SQLValueFunctionOp_SVFOP_CURRENT_ROLE:
			return "current_role", 2
		}
	case n.GetSubLink() != nil:
		sl := n.GetSubLink()
		switch sl.SubLinkType {
		case pg.SubLinkType_EXISTS_SUBLINK:
			return "exists", 2
		case pg.SubLinkType_ARRAY_SUBLINK:
			return "array", 2
		case pg.SubLinkType_EXPR_SUBLINK:
			// The subquery's own first column's name.
			if sel := sl.Subselect.GetSelectStmt(); sel != nil && len(sel.TargetList) > 0 {
				rt := sel.TargetList[0].GetResTarget()
				if rt.Name != "" {
					return rt.Name, 2
				}
				return figureName(rt.Val)
			}
		}
	}
	return "?column?", 0
}

// orderAndLimit analyses ORDER BY, LIMIT and OFFSET.
func (a *analyzer) orderAndLimit(p *selectPlan, st *pg.SelectStmt, sc *scope) error {
	for _, n := range st.SortClause {
		sb := n.GetSortBy()
		if len(sb.UseOp) > 0 {
			return errorf("0A000", "ORDER BY ... USING is not supported")
		}
		key := sortKey{i: -1, desc: sb.SortbyDir == pg.SortByDir_SORTBY_DESC}
		key.nullsFirst = key.desc
		switch sb.SortbyNulls {
		case pg.SortByNulls_SORTBY_NULLS_FIRST:
			key.nullsFirst = true
		case pg.SortByNulls_SORTBY_NULLS_LAST:
			key.nullsFirst = false
		}
		if c := sb.Node.GetAConst(); c != nil && c.GetIval() == nil && !c.Isnull {
			return withPosition(errorf("42601", "non-integer constant in ORDER BY"), c.Location)
		}
		if c := sb.Node.GetAConst(); c != nil && c.GetIval() != nil {
			pos := int(c.GetIval().Ival)
			if pos < 1 || pos > p.visible {
				return withPosition(errorf("42P10", "ORDER BY position %d is not in select list", pos), c.Location)
			}
			key.i = pos - 1
		} else if cr := sb.Node.GetColumnRef(); cr != nil && len(cr.Fields) == 1 {
			name := stringOf(cr.Fields[0])
			for i := 0; i < p.visible; i++ {
				if p.names[i] == name {
					key.i = i
					break
				}
			}
		}
		if key.i < 0 {
			x, err := a.expr(sb.Node, sc)
			if err != nil {
				return err
			}
			if p.distinct {
				return errorf("42P10", "for SELECT DISTINCT, ORDER BY expressions must appear in select list")
			}
			p.outputs = append(p.outputs, x)
			key.i = len(p.outputs) - 1
		}
		p.order = append(p.order, key)
	}
	for _, lim := range []struct {
		n    *pg.Node
		dst  *expr
		what string
	}{{st.LimitCount, &p.limit, "LIMIT"}, {st.LimitOffset, &p.offset, "OFFSET"}} {
		if lim.n == nil {
			continue
		}
		if c := lim.n.GetAConst(); c != nil && c.Isnull {
			continue // LIMIT NULL / LIMIT ALL
		}
		x, err := a.expr(lim.n, &scope{})
		if err != nil {
			return err
		}
		if x, err = a.coerce(x, TypeInt8); err != nil {
			return err
		}
		if x.typ().family() != famInt {
			return errorf("42804", "argument of %s must be type bigint, not type %s", lim.what, x.typ().shortName())
		}
		*lim.dst = x
	}
	if st.LimitOption == pg.LimitOption_LIMIT_OPTION_WITH_TIES {
		return errorf("0A000", "FETCH ... WITH TIES is not supported")
	}
	return nil
}

// execute runs the plan: the visible columns of its result rows.
func (p *selectPlan) execute(r *run) ([][]any, error) {
	in := [][]any{{}}
	if p.from != nil {
		var err error
		if in, err = p.from.rows(r); err != nil {
			return nil, err
		}
	}
	if p.where != nil {
		kept := in[:0]
		for _, row := range in {
			v, err := p.where.eval(r.env, row)
			if err != nil {
				return nil, err
			}
			if v == true {
				kept = append(kept, row)
			}
		}
		in = kept
	}
	var out [][]any
	var err error
	if len(p.windows) > 0 {
		if in, err = computeWindows(r, p.windows, in); err != nil {
			return nil, err
		}
	}
	if p.grouped {
		out, err = p.group(r, in)
	} else {
		out = make([][]any, 0, len(in))
		for _, row := range in {
			o, err := evalAll(r.env, p.outputs, row)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
	}
	if err != nil {
		return nil, err
	}
	if p.distinct {
		out = distinctRows(out, p.visible)
	}
	if len(p.order) > 0 {
		sortRows(out, p.order)
	}
	if out, err = p.window(r, out); err != nil {
		return nil, err
	}
	for i, row := range out {
		out[i] = row[:p.visible]
	}
	return out, nil
}

func evalAll(env *env, xs []expr, row []any) ([]any, error) {
	out := make([]any, len(xs))
	for i, x := range xs {
		v, err := x.eval(env, row)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// group computes a grouped query's output rows: one per group (one for
// no GROUP BY, even over no rows).
func (p *selectPlan) group(r *run, in [][]any) ([][]any, error) {
	type group struct {
		first []any
		accs  []*accumulator
	}
	var order []string
	groups := map[string]*group{}
	newGroup := func(first []any) *group {
		g := &group{first: first}
		for _, ag := range p.aggs {
			g.accs = append(g.accs, &accumulator{ag: ag})
		}
		return g
	}
	for _, row := range in {
		var k []byte
		for _, gx := range p.groupBy {
			v, err := gx.eval(r.env, row)
			if err != nil {
				return nil, err
			}
			k = appendDistinctKey(k, v)
		}
		g, ok := groups[string(k)]
		if !ok {
			g = newGroup(row)
			groups[string(k)] = g
			order = append(order, string(k))
		}
		for _, acc := range g.accs {
			if err := addToAccumulator(r, acc, row); err != nil {
				return nil, err
			}
		}
	}
	if len(p.groupBy) == 0 && len(groups) == 0 {
		groups[""] = newGroup(nil)
		order = append(order, "")
	}
	out := make([][]any, 0, len(order))
	for _, k := range order {
		g := groups[k]
		aggs := make([]any, len(g.accs))
		for i, acc := range g.accs {
			v, err := acc.result()
			if err != nil {
				return nil, err
			}
			aggs[i] = v
		}
		genv := *r.env
		genv.aggs = aggs
		if p.having != nil {
			v, err := p.having.eval(&genv, g.first)
			if err != nil {
				return nil, err
			}
			if v != true {
				continue
			}
		}
		o, err := evalAll(&genv, p.outputs, g.first)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func distinctRows(rows [][]any, n int) [][]any {
	seen := map[string]bool{}
	out := rows[:0]
	for _, row := range rows {
		var k []byte
		for _, v := range row[:n] {
			k = appendDistinctKey(k, v)
		}
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		out = append(out, row)
	}
	return out
}

// sortRows sorts stably by keys, NULLs where each key says.
func sortRows(rows [][]any, keys []sortKey) {
	slices.SortStableFunc(rows, func(x, y []any) int {
		for _, k := range keys {
			if c := compareSorted(x[k.i], y[k.i], k.desc, k.nullsFirst); c != 0 {
				return c
			}
		}
		return 0
	})
}

// compareSorted orders two values as ORDER BY does: descending or not,
// NULLs first or last.
func compareSorted(a, b any, desc, nullsFirst bool) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil, b == nil:
		if (a == nil) == nullsFirst {
			return -1
		}
		return 1
	}
	c := compareValues(a, b)
	if desc {
		c = -c
	}
	return c
}

// window applies OFFSET and LIMIT.
func (p *selectPlan) window(r *run, rows [][]any) ([][]any, error) {
	if p.offset != nil {
		v, err := p.offset.eval(r.env, nil)
		if err != nil {
			return nil, err
		}
		if v != nil {
			n := v.(int64)
			if n < 0 {
				return nil, errorf("2201X", "OFFSET must not be negative")
			}
			rows = rows[min(int(min(n, int64(len(rows)))), len(rows)):]
		}
	}
	if p.limit != nil {
		v, err := p.limit.eval(r.env, nil)
		if err != nil {
			return nil, err
		}
		if v != nil {
			n := v.(int64)
			if n < 0 {
				return nil, errorf("2201W", "LIMIT must not be negative")
			}
			if n < int64(len(rows)) {
				rows = rows[:n]
			}
		}
	}
	return rows, nil
}
