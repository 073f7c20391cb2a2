package query

import (
	"slices"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// Window functions (docs/sql.md, "Window functions"): row_number, rank,
// dense_rank, percent_rank, cume_dist, lag, lead, first_value,
// last_value, and the aggregates, OVER (PARTITION BY ... ORDER BY ...)
// with the default frame (the partition's rows up to the current row's
// last peer when there is an ORDER BY, the whole partition without).
// Each call's values are computed over the query's rows after WHERE and
// appended to them as one more column, which the select list and ORDER
// BY read. Explicit frames, named windows and window functions in a
// grouped query are refused (0A000).

// winContext collects the window calls of a query's select list and
// ORDER BY; base is the width of the rows they are appended to.
type winContext struct {
	base  int
	funcs []*windowFunc
}

// windowFunc is one window call.
type windowFunc struct {
	name      string
	args      []expr // lag/lead: value, offset, default; first/last_value: value
	agg       *aggregate
	partition []expr
	order     []windowOrder
	t         Type
}

type windowOrder struct {
	x          expr
	desc       bool
	nullsFirst bool
}

var windowOnlyFuncs = map[string]bool{"row_number": true, "rank": true, "dense_rank": true, "percent_rank": true,
	"cume_dist": true, "lag": true, "lead": true, "first_value": true, "last_value": true}

// defaultFrame is the frame options the parser gives an OVER clause that
// names no frame.
var defaultFrame = sync.OnceValue(func() int32 {
	tree, err := pg.Parse("SELECT count(*) OVER ()")
	if err != nil {
		panic("query: the parser fails on a window call: " + err.Error())
	}
	return tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val.GetFuncCall().Over.FrameOptions
})

// windowCall analyses name(args) OVER (...): its values become a column
// appended to the query's rows.
func (a *analyzer) windowCall(name string, f *pg.FuncCall, sc *scope) (expr, error) {
	if a.win == nil && a.agg != nil {
		return nil, withPosition(errorf("0A000", "window functions in a grouped query are not supported"), f.Location)
	}
	if a.win == nil {
		where := "here"
		if a.inWhere {
			where = "in WHERE"
		}
		return nil, withPosition(errorf("42P20", "window functions are not allowed %s", where), f.Location)
	}
	over := f.Over
	switch {
	case over.Name != "" || over.Refname != "":
		return nil, withPosition(errorf("0A000", "named windows are not supported"), f.Location)
	case over.FrameOptions != defaultFrame():
		return nil, withPosition(errorf("0A000", "window frames other than the default are not supported"), f.Location)
	case f.AggFilter != nil:
		return nil, withPosition(errorf("0A000", "FILTER in a window call is not supported"), f.Location)
	}
	win := a.win
	a.win = nil // a window call's arguments hold none
	defer func() { a.win = win }()
	w := &windowFunc{name: name}
	for _, n := range over.PartitionClause {
		x, err := a.expr(n, sc)
		if err != nil {
			return nil, err
		}
		w.partition = append(w.partition, x)
	}
	for _, n := range over.OrderClause {
		sb := n.GetSortBy()
		x, err := a.expr(sb.Node, sc)
		if err != nil {
			return nil, err
		}
		o := windowOrder{x: x, desc: sb.SortbyDir == pg.SortByDir_SORTBY_DESC}
		o.nullsFirst = o.desc
		switch sb.SortbyNulls {
		case pg.SortByNulls_SORTBY_NULLS_FIRST:
			o.nullsFirst = true
		case pg.SortByNulls_SORTBY_NULLS_LAST:
			o.nullsFirst = false
		}
		w.order = append(w.order, o)
	}
	switch {
	case aggregateFuncs[name]:
		saved := a.agg
		a.agg = &aggContext{groupCols: map[int]bool{}}
		_, err := a.aggregateCall(name, f, sc)
		if err == nil {
			w.agg = a.agg.aggs[0]
			w.t = w.agg.t
		}
		a.agg = saved
		if err != nil {
			return nil, err
		}
	case !windowOnlyFuncs[name]:
		return nil, withPosition(errorf("42809", "OVER specified, but %s is not a window function nor an aggregate function", name), f.Location)
	default:
		for _, n := range f.Args {
			x, err := a.expr(n, sc)
			if err != nil {
				return nil, err
			}
			w.args = append(w.args, x)
		}
		if err := a.windowArgs(w, f); err != nil {
			return nil, err
		}
	}
	win.funcs = append(win.funcs, w)
	return &windowRef{i: win.base + len(win.funcs) - 1, t: w.t}, nil
}

// windowRef reads a window call's value, appended to the row at i.
type windowRef struct {
	i int
	t Type
}

func (w *windowRef) eval(_ *env, row []any) (any, error) { return row[w.i], nil }
func (w *windowRef) typ() Type                           { return w.t }

// windowArgs checks a window-only function's arguments and sets its type.
func (a *analyzer) windowArgs(w *windowFunc, f *pg.FuncCall) error {
	arity := func(lo, hi int) error {
		if len(w.args) < lo || len(w.args) > hi {
			return withPosition(errorf("42883", "function %s with %d arguments does not exist", w.name, len(w.args)), f.Location)
		}
		return nil
	}
	switch w.name {
	case "row_number", "rank", "dense_rank":
		w.t = TypeInt8
		return arity(0, 0)
	case "percent_rank", "cume_dist":
		w.t = TypeFloat8
		return arity(0, 0)
	case "first_value", "last_value":
		w.t = w.args[0].typ()
		return arity(1, 1)
	}
	// lag and lead: value [, offset [, default]].
	if err := arity(1, 3); err != nil {
		return err
	}
	if len(w.args) > 1 {
		off, err := a.coerce(w.args[1], TypeInt4)
		if err != nil {
			return err
		}
		if off.typ().family() != famInt {
			return withPosition(errorf("42883", "function %s(%s, %s) does not exist", w.name, w.args[0].typ().shortName(), off.typ().shortName()), f.Location)
		}
		w.args[1] = off
	}
	if len(w.args) > 2 {
		d, err := a.coerce(w.args[2], w.args[0].typ())
		if err != nil {
			return err
		}
		w.args[2] = d
	}
	w.t = w.args[0].typ()
	if w.t.family() == famUnknown {
		w.t = TypeText
	}
	return nil
}

// computeWindows appends each window call's value to every row.
func computeWindows(r *run, funcs []*windowFunc, rows [][]any) ([][]any, error) {
	values := make([][]any, len(funcs))
	for k, w := range funcs {
		vals, err := w.compute(r, rows)
		if err != nil {
			return nil, err
		}
		values[k] = vals
	}
	out := make([][]any, len(rows))
	for i, row := range rows {
		ext := append(slices.Clip(row), make([]any, len(funcs))...)
		for k := range funcs {
			ext[len(row)+k] = values[k][i]
		}
		out[i] = ext
	}
	return out, nil
}

// compute is w's value for each row.
func (w *windowFunc) compute(r *run, rows [][]any) ([]any, error) {
	keys := make([][]any, len(rows)) // each row's ORDER BY values
	var parts []string
	members := map[string][]int{}
	for i, row := range rows {
		var pk []byte
		for _, x := range w.partition {
			v, err := x.eval(r.env, row)
			if err != nil {
				return nil, err
			}
			pk = appendDistinctKey(pk, v)
		}
		if _, ok := members[string(pk)]; !ok {
			parts = append(parts, string(pk))
		}
		members[string(pk)] = append(members[string(pk)], i)
		for _, o := range w.order {
			v, err := o.x.eval(r.env, row)
			if err != nil {
				return nil, err
			}
			keys[i] = append(keys[i], v)
		}
	}
	out := make([]any, len(rows))
	for _, p := range parts {
		idx := members[p]
		slices.SortStableFunc(idx, func(x, y int) int { return w.compareKeys(keys[x], keys[y]) })
		if err := w.computePartition(r, rows, keys, idx, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (w *windowFunc) compareKeys(a, b []any) int {
	for i, o := range w.order {
		if c := compareSorted(a[i], b[i], o.desc, o.nullsFirst); c != 0 {
			return c
		}
	}
	return 0
}

// computePartition fills out for the rows at idx (one partition, in
// window order).
func (w *windowFunc) computePartition(r *run, rows, keys [][]any, idx []int, out []any) error {
	n := len(idx)
	// peerEnd[j] is one past the last position of j's peer group.
	peerEnd := make([]int, n)
	for j := n - 1; j >= 0; j-- {
		if j == n-1 || w.compareKeys(keys[idx[j]], keys[idx[j+1]]) != 0 {
			peerEnd[j] = j + 1
		} else {
			peerEnd[j] = peerEnd[j+1]
		}
	}
	arg := func(k, pos int) (any, error) { return w.args[k].eval(r.env, rows[idx[pos]]) }
	rank, dense := 1, 0
	var acc *accumulator
	accUpTo := 0 // the rows added to acc so far
	for j := 0; j < n; j++ {
		if j == 0 || w.compareKeys(keys[idx[j]], keys[idx[j-1]]) != 0 {
			rank, dense = j+1, dense+1
		}
		var v any
		var err error
		switch w.name {
		case "row_number":
			v = int64(j + 1)
		case "rank":
			v = int64(rank)
		case "dense_rank":
			v = int64(dense)
		case "percent_rank":
			v = 0.0
			if n > 1 {
				v = float64(rank-1) / float64(n-1)
			}
		case "cume_dist":
			v = float64(peerEnd[j]) / float64(n)
		case "first_value":
			v, err = arg(0, 0)
		case "last_value":
			end := n
			if len(w.order) > 0 {
				end = peerEnd[j]
			}
			v, err = arg(0, end-1)
		case "lag", "lead":
			v, err = w.shifted(r, rows, idx, j)
		default: // an aggregate over the frame
			end := n
			if len(w.order) > 0 {
				end = peerEnd[j]
			}
			if acc == nil {
				acc = &accumulator{ag: w.agg}
			}
			for ; accUpTo < end; accUpTo++ {
				if err := addToAccumulator(r, acc, rows[idx[accUpTo]]); err != nil {
					return err
				}
			}
			v, err = acc.result()
		}
		if err != nil {
			return err
		}
		out[idx[j]] = v
	}
	return nil
}

// shifted is lag's or lead's value at position j.
func (w *windowFunc) shifted(r *run, rows [][]any, idx []int, j int) (any, error) {
	offset := int64(1)
	if len(w.args) > 1 {
		o, err := w.args[1].eval(r.env, rows[idx[j]])
		if err != nil || o == nil {
			return nil, err
		}
		offset = o.(int64)
	}
	if w.name == "lag" {
		offset = -offset
	}
	if pos := int64(j) + offset; pos >= 0 && pos < int64(len(idx)) {
		return w.args[0].eval(r.env, rows[idx[pos]])
	}
	if len(w.args) > 2 {
		return w.args[2].eval(r.env, rows[idx[j]])
	}
	return nil, nil
}

// addToAccumulator adds row's argument (and separator) to acc: one row of
// a group, or of a window's frame.
func addToAccumulator(r *run, acc *accumulator, row []any) error {
	var v any
	if acc.ag.arg != nil {
		var err error
		if v, err = acc.ag.arg.eval(r.env, row); err != nil {
			return err
		}
	}
	if acc.ag.sep != nil {
		sep, err := acc.ag.sep.eval(r.env, row)
		if err != nil {
			return err
		}
		acc.pendingSep, _ = sep.(string) // a NULL separator adds nothing
	}
	return acc.add(v)
}
