package query

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// Common table expressions (WITH): each is a named query that the
// statement's FROM clauses (its subqueries' too) read as a table. A
// reference analyses the query afresh and runs it where it stands, as
// PostgreSQL inlines a CTE referenced once; every run reads the
// statement's snapshot, so two references see the same rows (a volatile
// function such as random() is evaluated per reference). WITH RECURSIVE
// and data-modifying CTEs are refused (0A000).

// cte is one WITH entry: its query, and the CTEs visible where it was
// defined (the earlier ones of its WITH, and the enclosing ones).
type cte struct {
	def     *pg.CommonTableExpr
	visible []*cte
	outer   []*scope
}

// with makes wc's CTEs visible to the rest of the statement's analysis,
// checking each once; the returned function hides them again.
func (a *analyzer) with(wc *pg.WithClause) (restore func(), err error) {
	saved := a.ctes
	restore = func() { a.ctes = saved }
	if wc == nil {
		return restore, nil
	}
	if wc.Recursive {
		return restore, withPosition(errorf("0A000", "WITH RECURSIVE is not supported"), wc.Location)
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
		c := &cte{def: def, visible: a.ctes, outer: a.outer}
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
	sub := &analyzer{ctx: a.ctx, s: a.s, tx: a.tx, params: a.params, outer: c.outer, ctes: c.visible}
	p, err := sub.analyzeSelect(c.def.Ctequery.GetSelectStmt())
	a.params = sub.params
	a.failed = append(a.failed, sub.failed...)
	if err != nil {
		return nil, nil, err
	}
	if alias == "" {
		alias = c.def.Ctename
	}
	if len(c.def.Aliascolnames) > p.visible {
		return nil, nil, withPosition(errorf("42P10", "WITH query %q has %d columns available but %d columns specified", c.def.Ctename, p.visible, len(c.def.Aliascolnames)), c.def.Location)
	}
	sc := &scope{}
	for i := 0; i < p.visible; i++ {
		name := p.names[i]
		if i < len(c.def.Aliascolnames) {
			name = stringOf(c.def.Aliascolnames[i])
		}
		sc.cols = append(sc.cols, scopeCol{table: alias, name: name, t: p.outputs[i].typ()})
	}
	return p, sc, nil
}
