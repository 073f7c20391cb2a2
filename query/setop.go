package query

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

// setOpPlan is UNION, INTERSECT or EXCEPT [ALL] of two queries whose
// columns are converted to their common types.
type setOpPlan struct {
	op          pg.SetOperation
	all         bool
	left, right *selectPlan
	types       []Type
}

// analyzeSetOp analyses a set operation: the result is a query over its
// rows, to which the statement's ORDER BY and LIMIT apply (by output
// column name or position, as PostgreSQL allows).
func (a *analyzer) analyzeSetOp(st *pg.SelectStmt) (*selectPlan, error) {
	left, err := a.analyzeSelect(st.Larg)
	if err != nil {
		return nil, err
	}
	right, err := a.analyzeSelect(st.Rarg)
	if err != nil {
		return nil, err
	}
	name := map[pg.SetOperation]string{pg.SetOperation_SETOP_UNION: "UNION", pg.SetOperation_SETOP_INTERSECT: "INTERSECT", pg.SetOperation_SETOP_EXCEPT: "EXCEPT"}[st.Op]
	if left.visible != right.visible {
		return nil, errorf("42601", "each %s query must have the same number of columns", name)
	}
	so := &setOpPlan{op: st.Op, all: st.All, left: left, right: right}
	sc := &scope{}
	for i := 0; i < left.visible; i++ {
		t, err := commonType([]expr{left.outputs[i], right.outputs[i]}, name)
		if err != nil {
			return nil, err
		}
		so.types = append(so.types, t)
		sc.cols = append(sc.cols, scopeCol{name: left.names[i], t: t})
	}
	p := &selectPlan{from: so, maxRows: a.s.e.opts.MaxRows}
	for i, c := range sc.cols {
		p.outputs = append(p.outputs, &colExpr{i: i, t: c.t})
		p.names = append(p.names, c.name)
		p.srcCols = append(p.srcCols, scopeCol{})
	}
	p.visible = len(p.outputs)
	return p, a.orderAndLimit(p, st, sc)
}

func (s *setOpPlan) rows(r *run) ([][]any, error) {
	side := func(p *selectPlan) ([][]any, error) {
		rows, err := p.execute(r)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			for i, v := range row {
				if v == nil {
					continue
				}
				if row[i], err = castValue(v, p.outputs[i].typ(), s.types[i]); err != nil {
					return nil, err
				}
			}
		}
		return rows, nil
	}
	l, err := side(s.left)
	if err != nil {
		return nil, err
	}
	rt, err := side(s.right)
	if err != nil {
		return nil, err
	}
	key := func(row []any) string {
		var k []byte
		for _, v := range row {
			k = appendDistinctKey(k, v)
		}
		return string(k)
	}
	switch s.op {
	case pg.SetOperation_SETOP_UNION:
		out := append(l, rt...)
		if !s.all {
			out = distinctRows(out, len(s.types))
		}
		return out, nil
	case pg.SetOperation_SETOP_INTERSECT, pg.SetOperation_SETOP_EXCEPT:
		counts := map[string]int{}
		for _, row := range rt {
			counts[key(row)]++
		}
		var out [][]any
		seen := map[string]bool{}
		for _, row := range l {
			k := key(row)
			in := counts[k] > 0
			if s.all {
				if in {
					counts[k]--
				}
			} else {
				if seen[k] {
					continue
				}
				seen[k] = true
			}
			if in == (s.op == pg.SetOperation_SETOP_INTERSECT) {
				out = append(out, row)
			}
		}
		return out, nil
	}
	return nil, errorf("0A000", "set operation %s is not supported", s.op)
}
