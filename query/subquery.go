package query

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// outerRef reads a column of an enclosing query's current row (a
// correlated subquery's reference).
type outerRef struct {
	level int // index into env.outer: 0 is the outermost query
	i     int
	t     Type
}

func (e *outerRef) eval(env *env, _ []any) (any, error) { return env.outer[e.level][e.i], nil }
func (e *outerRef) typ() Type                           { return e.t }

// subqueryExpr is a subquery in an expression: scalar, EXISTS or IN.
type subqueryExpr struct {
	plan *selectPlan
	kind pg.SubLinkType
	test expr // IN's left side
	t    Type
}

func (e *subqueryExpr) typ() Type { return e.t }

func (e *subqueryExpr) eval(env *env, row []any) (any, error) {
	inner := *env
	inner.outer = append(append([][]any(nil), env.outer...), row)
	inner.aggs = nil
	r := &run{ctx: env.run.ctx, tx: env.run.tx, env: &inner}
	rows, err := e.plan.execute(r)
	if err != nil {
		return nil, err
	}
	switch e.kind {
	case pg.SubLinkType_EXISTS_SUBLINK:
		return len(rows) > 0, nil
	case pg.SubLinkType_ARRAY_SUBLINK:
		out := make([]any, len(rows))
		for i, r := range rows {
			out[i] = r[0]
		}
		return out, nil
	case pg.SubLinkType_EXPR_SUBLINK:
		switch len(rows) {
		case 0:
			return nil, nil
		case 1:
			return rows[0][0], nil
		}
		return nil, errorf("21000", "more than one row returned by a subquery used as an expression")
	}
	// x IN (subquery): false if there are no rows (whatever x is); true
	// if a row equals x; NULL if none does but one is NULL (or x is).
	x, err := e.test.eval(env, row)
	if err != nil || len(rows) == 0 {
		return false, err
	}
	if x == nil {
		return nil, nil
	}
	sawNull := false
	for _, r := range rows {
		if r[0] == nil {
			sawNull = true
			continue
		}
		if compareValues(x, r[0]) == 0 {
			return true, nil
		}
	}
	if sawNull {
		return nil, nil
	}
	return false, nil
}

func (a *analyzer) subLink(sl *pg.SubLink, sc *scope) (expr, error) {
	sub := &analyzer{ctx: a.ctx, s: a.s, tx: a.tx, params: a.params, outer: append(append([]*scope(nil), a.outer...), sc), ctes: a.ctes}
	plan, err := sub.analyzeSelect(sl.Subselect.GetSelectStmt())
	a.params = sub.params
	a.failed = append(a.failed, sub.failed...)
	if err != nil {
		return nil, err
	}
	e := &subqueryExpr{plan: plan, kind: sl.SubLinkType, t: TypeBool}
	switch sl.SubLinkType {
	case pg.SubLinkType_EXISTS_SUBLINK:
		return e, nil
	case pg.SubLinkType_EXPR_SUBLINK:
		if plan.visible != 1 {
			return nil, withPosition(errorf("42601", "subquery must return only one column"), sl.Location)
		}
		e.t = plan.outputs[0].typ()
		return e, nil
	case pg.SubLinkType_ARRAY_SUBLINK:
		if plan.visible != 1 {
			return nil, withPosition(errorf("42601", "subquery must return only one column"), sl.Location)
		}
		if e.t, err = arrayOf(plan.outputs[0].typ()); err != nil {
			return nil, withPosition(err.(*Error), sl.Location)
		}
		return e, nil
	case pg.SubLinkType_ANY_SUBLINK:
		if len(sl.OperName) > 0 && opName(sl.OperName) != "=" {
			break
		}
		if plan.visible != 1 {
			return nil, withPosition(errorf("42601", "subquery has too many columns"), sl.Location)
		}
		x, err := a.expr(sl.Testexpr, sc)
		if err != nil {
			return nil, err
		}
		inner := plan.outputs[0]
		if x, inner, _, err = a.unify(x, inner, "="); err != nil {
			return nil, err
		}
		plan.outputs[0] = inner
		e.test = x
		return e, nil
	}
	return nil, withPosition(errorf("0A000", "this kind of subquery (%s) is not supported", sl.SubLinkType), sl.Location)
}
