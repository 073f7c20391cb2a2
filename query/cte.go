package query

import (
	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Common table expressions (WITH): each is a named query that the
// statement's FROM clauses (its subqueries' too) read as a table. A
// reference analyses the query afresh and runs it where it stands, as
// PostgreSQL inlines a CTE referenced once; every run reads the
// statement's snapshot, so two references see the same rows (a volatile
// function such as random() is evaluated per reference). A recursive one
// (WITH RECURSIVE, a UNION [ALL] whose right side names it) runs its left
// side, then its right side over the rows the last round added, until a
// round adds none (UNION drops rows already there), as PostgreSQL's
// working table does; bounded by MaxRows. Data-modifying CTEs are
// refused (0A000).

// cte is one WITH entry: its query, and the CTEs visible where it was
// defined (the earlier ones of its WITH, and the enclosing ones).
type cte struct {
	def       *pg.CommonTableExpr
	visible   []*cte
	outer     []*scope
	recursive bool
	// work is set on the entry that names a recursive CTE inside its own
	// right side: a reference there reads the working table.
	work *workTable
}

// workTable is a recursive CTE's rows of the last round.
type workTable struct {
	current [][]any
	types   []Type
	names   []string // the left side's
}

func (w *workTable) rows(*run) ([][]any, error) { return w.current, nil }

// with makes wc's CTEs visible to the rest of the statement's analysis,
// checking each once; the returned function hides them again.
func (a *analyzer) with(wc *pg.WithClause) (restore func(), err error) {
	saved := a.ctes
	restore = func() { a.ctes = saved }
	if wc == nil {
		return restore, nil
	}

	seen := map[string]bool{}
	for _, n := range wc.Ctes {
		def := n.GetCommonTableExpr()
		if seen[def.Ctename] {
			restore()
			return restore, withPosition(errorf("42712", "WITH query name %q specified more than once", def.Ctename), def.Location)
		}
		seen[def.Ctename] = true
		if def.Ctequery.GetSelectStmt() == nil {
			restore()
			return restore, withPosition(errorf("0A000", "data-modifying statements in WITH are not supported"), def.Location)
		}
		c := &cte{def: def, visible: a.ctes, outer: a.outer, recursive: wc.Recursive && selfReferencing(def)}
		if _, _, err := a.cteSource(c, ""); err != nil {
			restore()
			return restore, err
		}
		a.ctes = append(append([]*cte(nil), a.ctes...), c)
	}
	return restore, nil
}

// lookupCTE is the innermost visible CTE called name (nil: none).
func (a *analyzer) lookupCTE(name string) *cte {
	for i := len(a.ctes) - 1; i >= 0; i-- {
		if a.ctes[i].def.Ctename == name {
			return a.ctes[i]
		}
	}
	return nil
}

// cteSource analyses c's query for one reference (alias: the name it is
// known by there, "" for its own) and returns it as a FROM source.
func (a *analyzer) cteSource(c *cte, alias string) (source, *scope, error) {
	if alias == "" {
		alias = c.def.Ctename
	}
	if c.work != nil {
		sc := &scope{}
		for i, t := range c.work.types {
			sc.cols = append(sc.cols, scopeCol{table: alias, name: c.columnName(i, c.work.names[i]), t: t})
		}
		return c.work, sc, nil
	}
	if c.recursive {
		return a.recursiveSource(c, alias)
	}
	sub := &analyzer{ctx: a.ctx, s: a.s, tx: a.tx, params: a.params, outer: c.outer, ctes: c.visible}
	p, err := sub.analyzeSelect(c.def.Ctequery.GetSelectStmt())
	a.params = sub.params
	a.failed = append(a.failed, sub.failed...)
	if err != nil {
		return nil, nil, err
	}
	if len(c.def.Aliascolnames) > p.visible {
		return nil, nil, withPosition(errorf("42P10", "WITH query %q has %d columns available but %d columns specified", c.def.Ctename, p.visible, len(c.def.Aliascolnames)), c.def.Location)
	}
	sc := &scope{}
	for i := 0; i < p.visible; i++ {
		sc.cols = append(sc.cols, scopeCol{table: alias, name: c.columnName(i, p.names[i]), t: p.outputs[i].typ()})
	}
	return p, sc, nil
}

// columnName is the name of c's i-th column: its column list's, or the
// query's (own).
func (c *cte) columnName(i int, own string) string {
	if i < len(c.def.Aliascolnames) {
		return stringOf(c.def.Aliascolnames[i])
	}
	return own
}

// selfReferencing reports whether a CTE's query names the CTE itself.
func selfReferencing(def *pg.CommonTableExpr) bool {
	found := false
	walkTree(def.Ctequery.ProtoReflect(), func(m protoreflect.Message) bool {
		if rv, ok := m.Interface().(*pg.RangeVar); ok && rv.Schemaname == "" && rv.Relname == def.Ctename {
			found = true
		}
		return !found
	})
	return found
}

// walkTree calls visit on m and every message beneath it, in order,
// while visit says to go on.
func walkTree(m protoreflect.Message, visit func(protoreflect.Message) bool) bool {
	if !visit(m) {
		return false
	}
	more := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && more; i++ {
				more = walkTree(v.List().Get(i).Message(), visit)
			}
		case fd.Message() != nil && !fd.IsMap():
			more = walkTree(v.Message(), visit)
		}
		return more
	})
	return more
}

// recursiveCTE runs a recursive CTE (see the top of this file).
type recursiveCTE struct {
	init, step *selectPlan
	work       *workTable
	all        bool
	maxRows    int
}

func (c *recursiveCTE) rows(r *run) ([][]any, error) {
	out, err := c.init.execute(r)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	key := func(row []any) string {
		var k []byte
		for _, v := range row {
			k = appendDistinctKey(k, v)
		}
		return string(k)
	}
	fresh := func(rows [][]any) [][]any {
		if c.all {
			return rows
		}
		kept := rows[:0]
		for _, row := range rows {
			if k := key(row); !seen[k] {
				seen[k] = true
				kept = append(kept, row)
			}
		}
		return kept
	}
	for i, row := range out {
		if out[i], err = castRow(row, c.init, c.work.types); err != nil {
			return nil, err
		}
	}
	out = fresh(out)
	work := out
	for len(work) > 0 {
		if len(out) > c.maxRows {
			return nil, errorf("54000", "a recursive query holds more than %d rows in memory", c.maxRows)
		}
		c.work.current = work
		next, err := c.step.execute(r)
		if err != nil {
			return nil, err
		}
		for i, row := range next {
			if next[i], err = castRow(row, c.step, c.work.types); err != nil {
				return nil, err
			}
		}
		work = fresh(next)
		out = append(out, work...)
	}
	return out, nil
}

// castRow casts a plan's output row to the given column types.
func castRow(row []any, p *selectPlan, types []Type) ([]any, error) {
	for i, v := range row {
		if v == nil || p.outputs[i].typ().OID == types[i].OID {
			continue
		}
		var err error
		if row[i], err = castValue(v, p.outputs[i].typ(), types[i]); err != nil {
			return nil, err
		}
	}
	return row, nil
}

// recursiveSource analyses a recursive CTE for one reference: its left
// side, then its right side with the CTE's name bound to the working
// table.
func (a *analyzer) recursiveSource(c *cte, alias string) (source, *scope, error) {
	st := c.def.Ctequery.GetSelectStmt()
	if st.Op != pg.SetOperation_SETOP_UNION || len(st.SortClause) > 0 || st.LimitCount != nil || st.LimitOffset != nil {
		return nil, nil, withPosition(errorf("42P19", "recursive query %q does not have the form non-recursive-term UNION [ALL] recursive-term", c.def.Ctename), c.def.Location)
	}
	sub := &analyzer{ctx: a.ctx, s: a.s, tx: a.tx, params: a.params, outer: c.outer, ctes: c.visible}
	init, err := sub.analyzeSelect(st.Larg)
	if err != nil {
		return nil, nil, err
	}
	work := &workTable{}
	for i := 0; i < init.visible; i++ {
		t := init.outputs[i].typ()
		if t.family() == famUnknown {
			t = TypeText
		}
		work.types, work.names = append(work.types, t), append(work.names, init.names[i])
	}
	self := &cte{def: c.def, work: work}
	sub.ctes = append(append([]*cte(nil), c.visible...), self)
	step, err := sub.analyzeSelect(st.Rarg)
	a.params = sub.params
	a.failed = append(a.failed, sub.failed...)
	if err != nil {
		return nil, nil, err
	}
	if step.visible != init.visible {
		return nil, nil, errorf("42601", "each UNION query must have the same number of columns")
	}
	rec := &recursiveCTE{init: init, step: step, work: work, all: st.All, maxRows: a.s.e.opts.MaxRows}
	sc := &scope{}
	for i, t := range work.types {
		sc.cols = append(sc.cols, scopeCol{table: alias, name: c.columnName(i, init.names[i]), t: t})
	}
	return rec, sc, nil
}
