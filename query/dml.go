package query

import (
	"slices"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// returning is a DML statement's RETURNING list, over the table's row.
type returning struct {
	outputs []expr
	names   []string
	src     []scopeCol
}

func (r *returning) columns() []Column {
	if r == nil {
		return nil
	}
	p := &selectPlan{outputs: r.outputs, names: r.names, srcCols: r.src, visible: len(r.outputs)}
	return p.columns()
}

func (r *returning) row(env *env, row []any) ([]any, error) { return evalAll(env, r.outputs, row) }

func (a *analyzer) returning(list []*pg.Node, sc *scope) (*returning, error) {
	if len(list) == 0 {
		return nil, nil
	}
	p := &selectPlan{}
	if err := a.targets(p, list, sc); err != nil {
		return nil, err
	}
	return &returning{outputs: p.outputs, names: p.names, src: p.srcCols}, nil
}

// tableScope is a table's columns, as DML statements name them.
func tableScope(t *TableDesc, alias string) *scope {
	name := t.Name
	if alias != "" {
		name = alias
	}
	sc := &scope{}
	for i, c := range t.Columns {
		sc.cols = append(sc.cols, scopeCol{table: name, name: c.Name, t: c.Type, hidden: c.Hidden, tableOID: tableOID(t), attr: int16(i + 1)})
	}
	return sc
}

func aliasName(rv *pg.RangeVar) string {
	if rv.Alias != nil {
		return rv.Alias.Aliasname
	}
	return ""
}

// insertPlan is an analysed INSERT.
type insertPlan struct {
	t *TableDesc
	// rows are VALUES rows, each with an expression per column (nil:
	// the column's default); or source, a query's rows for targets.
	rows    [][]expr
	source  *selectPlan
	targets []int
	// defaults are each column's default (nil: NULL or a serial).
	defaults  []expr
	doNothing bool
	// arbiterAny: DO NOTHING with no conflict target skips a row that
	// any unique index refuses; arbiter is the unique index a DO NOTHING
	// target names (nil: the primary key, or any with arbiterAny).
	arbiterAny bool
	arbiter    *IndexDesc
	checks     []checkExpr
	// upsert is ON CONFLICT (key) DO UPDATE: SET expressions and WHERE
	// over the existing row followed by the proposed one (EXCLUDED).
	upsert *upsert
	ret    *returning
}

type upsert struct {
	sets  map[int]expr
	where expr
}

func (a *analyzer) analyzeInsert(st *pg.InsertStmt) (*insertPlan, error) {
	restore, err := a.with(st.WithClause)
	defer restore()
	if err != nil {
		return nil, err
	}
	t, err := a.table(st.Relation)
	if err != nil {
		return nil, err
	}
	privs := []string{"INSERT"}
	if st.OnConflictClause != nil && st.OnConflictClause.Action == pg.OnConflictAction_ONCONFLICT_UPDATE {
		privs = append(privs, "UPDATE")
	}
	if len(st.ReturningList) > 0 {
		privs = append(privs, "SELECT")
	}
	if err := a.require(t, privs...); err != nil {
		return nil, err
	}
	p := &insertPlan{t: t}
	if p.checks, err = a.checks(t); err != nil {
		return nil, err
	}
	if oc := st.OnConflictClause; oc != nil {
		if err := a.onConflict(p, oc, aliasName(st.Relation)); err != nil {
			return nil, err
		}
	}
	if len(st.Cols) == 0 {
		for i, c := range t.Columns {
			if !c.Hidden {
				p.targets = append(p.targets, i)
			}
		}
	} else {
		seen := map[int]bool{}
		for _, n := range st.Cols {
			rt := n.GetResTarget()
			i, err := targetColumn(t, rt)
			if err != nil {
				return nil, err
			}
			if seen[i] {
				return nil, withPosition(errorf("42701", "column %q specified more than once", rt.Name), rt.Location)
			}
			seen[i] = true
			p.targets = append(p.targets, i)
		}
	}
	if p.defaults, err = a.defaults(t); err != nil {
		return nil, err
	}
	sel := st.SelectStmt.GetSelectStmt()
	if len(st.Cols) == 0 && sel != nil {
		// Without a column list, the values fill the first columns and
		// the rest take their defaults.
		n := len(p.targets)
		if len(sel.ValuesLists) > 0 && len(sel.FromClause) == 0 {
			n = len(sel.ValuesLists[0].GetList().Items)
		} else if len(sel.TargetList) > 0 && !hasStar(sel.TargetList) {
			n = len(sel.TargetList)
		}
		if n < len(p.targets) {
			p.targets = p.targets[:n]
		}
	}
	switch {
	case sel == nil:
		// INSERT ... DEFAULT VALUES
	case len(sel.ValuesLists) > 0 && len(sel.FromClause) == 0:
		for _, l := range sel.ValuesLists {
			items := l.GetList().Items
			if len(items) > len(p.targets) {
				return nil, errorf("42601", "INSERT has more expressions than target columns")
			}
			if len(items) < len(p.targets) {
				return nil, errorf("42601", "INSERT has more target columns than expressions")
			}
			row := make([]expr, len(items))
			for i, n := range items {
				if n.GetSetToDefault() != nil {
					continue
				}
				x, err := a.expr(n, &scope{})
				if err != nil {
					return nil, err
				}
				if row[i], err = a.assignable(x, t.Columns[p.targets[i]]); err != nil {
					return nil, err
				}
			}
			p.rows = append(p.rows, row)
		}
	default:
		if p.source, err = a.analyzeSelect(sel); err != nil {
			return nil, err
		}
		if p.source.visible > len(p.targets) {
			return nil, errorf("42601", "INSERT has more expressions than target columns")
		}
		if p.source.visible < len(p.targets) {
			return nil, errorf("42601", "INSERT has more target columns than expressions")
		}
		for i := 0; i < p.source.visible; i++ {
			if _, err := a.assignable(p.source.outputs[i], t.Columns[p.targets[i]]); err != nil {
				return nil, err
			}
		}
	}
	if p.ret, err = a.returning(st.ReturningList, tableScope(t, aliasName(st.Relation))); err != nil {
		return nil, err
	}
	return p, nil
}

// onConflict analyses ON CONFLICT: its target must be the primary key
// (the one unique constraint tables have yet).
func (a *analyzer) onConflict(p *insertPlan, oc *pg.OnConflictClause, alias string) error {
	t := p.t
	if oc.Infer != nil {
		if oc.Infer.WhereClause != nil {
			return withPosition(errorf("0A000", "ON CONFLICT ... WHERE is not supported"), oc.Location)
		}
		match := oc.Infer.Conname == t.pkName()
		var names []string
		for _, n := range oc.Infer.IndexElems {
			names = append(names, n.GetIndexElem().GetName())
		}
		sameSet := func(keys []string) bool {
			ok := len(names) == len(keys)
			for _, n := range names {
				ok = ok && slices.Contains(keys, n)
			}
			return ok
		}
		if oc.Infer.Conname == "" {
			match = sameSet(keyColumnNames(t))
		}
		for i := range t.Indexes {
			ix := &t.Indexes[i]
			if match || !ix.Unique {
				continue
			}
			cols, _ := t.indexColumnText(ix, nil)
			if oc.Infer.Conname == ix.Name || (oc.Infer.Conname == "" && sameSet(strings.Split(cols, ", "))) {
				if oc.Action != pg.OnConflictAction_ONCONFLICT_NOTHING {
					return withPosition(errorf("0A000", "ON CONFLICT DO UPDATE on a unique index other than the primary key is not supported yet"), oc.Location)
				}
				p.arbiter, match = ix, true
			}
		}
		if !match {
			if oc.Infer.Conname != "" {
				return errorf("42704", "constraint %q for table %q does not exist", oc.Infer.Conname, t.Name)
			}
			return withPosition(errorf("42P10", "there is no unique or exclusion constraint matching the ON CONFLICT specification"), oc.Location)
		}
	}
	if oc.Action == pg.OnConflictAction_ONCONFLICT_NOTHING {
		p.doNothing, p.arbiterAny = true, oc.Infer == nil
		return nil
	}
	if oc.Infer == nil {
		e := errorf("42601", "ON CONFLICT DO UPDATE requires inference specification or constraint name")
		e.Hint = "For example, ON CONFLICT (column_name)."
		return withPosition(e, oc.Location)
	}
	sc := tableScope(t, alias)
	excluded := tableScope(t, "excluded")
	sc.cols = append(sc.cols, excluded.cols...)
	up := &upsert{sets: map[int]expr{}}
	for _, n := range oc.TargetList {
		rt := n.GetResTarget()
		i, err := targetColumn(t, rt)
		if err != nil {
			return err
		}
		if _, dup := up.sets[i]; dup {
			return withPosition(errorf("42601", "multiple assignments to same column %q", rt.Name), rt.Location)
		}
		x, err := a.expr(rt.Val, sc)
		if err != nil {
			return err
		}
		if up.sets[i], err = a.assignable(x, t.Columns[i]); err != nil {
			return err
		}
	}
	if oc.WhereClause != nil {
		w, err := a.expr(oc.WhereClause, sc)
		if err != nil {
			return err
		}
		if up.where, err = a.boolean(w, "argument of WHERE"); err != nil {
			return err
		}
	}
	p.upsert = up
	return nil
}

func keyColumnNames(t *TableDesc) []string {
	var names []string
	for _, i := range t.pkIndexes() {
		names = append(names, t.Columns[i].Name)
	}
	return names
}

// targetColumn is the position of the column an INSERT column list or a
// SET names.
func targetColumn(t *TableDesc, rt *pg.ResTarget) (int, error) {
	if len(rt.Indirection) > 0 {
		return -1, errorf("0A000", "assigning to parts of a column is not supported")
	}
	i, ok := t.columnNamed(rt.Name)
	if !ok || t.Columns[i].Hidden {
		return -1, withPosition(errorf("42703", "column %q of relation %q does not exist", rt.Name, t.Name), rt.Location)
	}
	return i, nil
}

// assignable checks x can be stored in column c and converts it.
func (a *analyzer) assignable(x expr, c ColumnDesc) (expr, error) {
	if k, ok := x.(*constExpr); ok && k.t.OID == TypeUnknown.OID {
		// A literal is read as the column's type, its length checked as
		// an assignment's (a cast would truncate).
		v, err := assignValue(k.v, TypeUnknown, c.Type)
		if err != nil {
			return nil, err
		}
		return &constExpr{v: v, t: c.Type}, nil
	}
	x, err := a.coerce(x, c.Type.withMod(-1))
	if err != nil {
		return nil, err
	}
	if !implicitCast(x.typ(), c.Type) {
		e := errorf("42804", "column %q is of type %s but expression is of type %s", c.Name, c.Type.shortName(), x.typ().shortName())
		e.Hint = "You will need to rewrite or cast the expression."
		return nil, e
	}
	from, to := x.typ(), c.Type
	return a.fold(&funcExpr{args: []expr{x}, t: to, strict: true, immutable: true, fn: func(_ *env, v []any) (any, error) {
		return assignValue(v[0], from, to)
	}}), nil
}

// defaults analyses the table's default expressions.
func (a *analyzer) defaults(t *TableDesc) ([]expr, error) {
	out := make([]expr, len(t.Columns))
	for i, c := range t.Columns {
		if c.Default == "" {
			continue
		}
		x, err := a.defaultExpr(c)
		if err != nil {
			return nil, err
		}
		out[i] = x
	}
	return out, nil
}

func (a *analyzer) defaultExpr(c ColumnDesc) (expr, error) {
	tree, err := pg.Parse("SELECT " + c.Default)
	if err != nil {
		return nil, errorf("XX000", "column %q has a default that does not parse: %v", c.Name, err)
	}
	n := tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val
	x, err := a.expr(n, &scope{})
	if err != nil {
		return nil, err
	}
	return a.assignable(x, c)
}

func (p *insertPlan) columns() []Column { return p.ret.columns() }

// execute inserts the rows; out are RETURNING's rows.
// execute inserts the rows; out are RETURNING's rows. Every row is
// computed before the first is written, so that the statement's
// expressions see the table as it was before it.
func (p *insertPlan) execute(r *run) (n int, out [][]any, err error) {
	var values [][]any
	if p.source != nil {
		if values, err = p.source.execute(r); err != nil {
			return 0, nil, err
		}
	}
	count := len(p.rows)
	if p.source != nil {
		count = len(values)
	} else if len(p.rows) == 0 {
		count = 1 // DEFAULT VALUES
	}
	rows := make([][]any, 0, count)
	for i := range count {
		row := make([]any, len(p.t.Columns))
		given := make([]bool, len(p.t.Columns))
		for j, ci := range p.targets {
			var v any
			switch {
			case p.source != nil:
				from := p.source.outputs[j].typ()
				if v, err = assignValue(values[i][j], from, p.t.Columns[ci].Type); err != nil {
					return 0, nil, err
				}
			case len(p.rows) > 0 && p.rows[i][j] != nil:
				if v, err = p.rows[i][j].eval(r.env, nil); err != nil {
					return 0, nil, err
				}
			default:
				continue // DEFAULT
			}
			row[ci], given[ci] = v, true
		}
		if err := p.fillDefaults(r, row, given); err != nil {
			return 0, nil, err
		}
		rows = append(rows, row)
	}
	touched := map[string]bool{} // the keys this statement wrote
	var changes []rowChange
	for _, row := range rows {
		written, err := p.insertRow(r, row, touched, &changes)
		if err != nil {
			return 0, nil, err
		}
		if written == nil {
			continue
		}
		n++
		if p.ret != nil {
			o, err := p.ret.row(r.env, written)
			if err != nil {
				return 0, nil, err
			}
			out = append(out, o)
		}
	}
	return n, out, r.foreignKeys(p.t, changes)
}

// fillDefaults gives the columns not given their defaults: a serial its
// next value, a hidden rowid a unique one.
func (p *insertPlan) fillDefaults(r *run, row []any, given []bool) error {
	for ci, c := range p.t.Columns {
		if given[ci] {
			continue
		}
		switch {
		case c.Hidden:
			row[ci] = r.env.rowID()
		case c.Serial:
			v, err := r.env.session.advance(r.ctx, serialSequence(p.t, c))
			if err != nil {
				return err
			}
			row[ci] = v
		case p.defaults[ci] != nil:
			v, err := p.defaults[ci].eval(r.env, nil)
			if err != nil {
				return err
			}
			row[ci] = v
		}
	}
	return nil
}

// checkRow applies the table's NOT NULL constraints.
func checkRow(t *TableDesc, row []any) error {
	for i, c := range t.Columns {
		if c.NotNull && row[i] == nil {
			e := errorf("23502", "null value in column %q of relation %q violates not-null constraint", c.Name, t.Name)
			e.Detail = "Failing row contains " + failingRow(t, row) + "."
			return e
		}
	}
	return nil
}

// failingRow is a row as PostgreSQL's error details show it.
func failingRow(t *TableDesc, row []any) string {
	var parts []string
	for i, c := range t.Columns {
		if c.Hidden {
			continue
		}
		if row[i] == nil {
			parts = append(parts, "null")
			continue
		}
		parts = append(parts, string(formatText(c.Type, row[i])))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// insertRow writes a new row, or, when its key exists, does what ON
// CONFLICT says; written is the row as written (nil: nothing was).
// touched are the keys the statement wrote so far (nil: not tracked).
func (p *insertPlan) insertRow(r *run, row []any, touched map[string]bool, changes *[]rowChange) (written []any, err error) {
	if err := checkRow(p.t, row); err != nil {
		return nil, err
	}
	if err := violatedCheck(r.env, p.t, p.checks, row); err != nil {
		return nil, err
	}
	key := p.t.rowKey(row)
	old, found, err := r.tx.Get(r.ctx, key)
	if err != nil {
		return nil, err
	}
	var existing []any // the row ON CONFLICT DO UPDATE changes
	switch {
	case !found:
		written = row
		if p.doNothing && (p.arbiterAny || p.arbiter != nil) {
			// DO NOTHING skips a row its arbiter (any unique index, or
			// the one named) refuses, as it skips a duplicate key.
			dup, err := r.uniqueViolation(p.t, nil, row)
			if err != nil {
				return nil, err
			}
			if dup != nil && (p.arbiterAny || dup == p.arbiter) {
				return nil, nil
			}
		}
	case p.doNothing && p.arbiter == nil:
		return nil, nil
	case p.upsert == nil:
		return nil, duplicateKey(p.t, row)
	default:
		if touched[string(key)] {
			e := errorf("21000", "ON CONFLICT DO UPDATE command cannot affect row a second time")
			e.Hint = "Ensure that no rows proposed for insertion within the same command have duplicate constrained values."
			return nil, e
		}
		existing, err = p.t.decode(old)
		if err != nil {
			return nil, err
		}
		both := append(slices.Clone(existing), row...)
		if p.upsert.where != nil {
			v, err := p.upsert.where.eval(r.env, both)
			if err != nil || v != true {
				return nil, err
			}
		}
		written = slices.Clone(existing)
		for i, x := range p.upsert.sets {
			if written[i], err = x.eval(r.env, both); err != nil {
				return nil, err
			}
		}
		if err := checkRow(p.t, written); err != nil {
			return nil, err
		}
		if err := violatedCheck(r.env, p.t, p.checks, written); err != nil {
			return nil, err
		}
		if string(p.t.rowKey(written)) != string(key) {
			return nil, errorf("0A000", "ON CONFLICT DO UPDATE that changes the primary key is not supported")
		}
	}
	if touched != nil {
		touched[string(key)] = true
	}
	if existing != nil {
		if err := r.removeIndexEntries(p.t, existing, written); err != nil {
			return nil, err
		}
	}
	if err := r.addIndexEntries(p.t, existing, written); err != nil {
		return nil, err
	}
	*changes = append(*changes, rowChange{old: existing, new: written})
	return written, r.tx.Put(r.ctx, key, encodeRow(p.t.Columns, written))
}

func duplicateKey(t *TableDesc, row []any) *Error {
	e := errorf("23505", "duplicate key value violates unique constraint %q", t.pkName())
	var names, vals []string
	for _, i := range t.pkIndexes() {
		names = append(names, t.Columns[i].Name)
		vals = append(vals, string(formatText(t.Columns[i].Type, row[i])))
	}
	e.Detail = "Key (" + strings.Join(names, ", ") + ")=(" + strings.Join(vals, ", ") + ") already exists."
	return e
}

// updatePlan is an analysed UPDATE or DELETE.
type updatePlan struct {
	t      *TableDesc
	scan   *tableScan
	where  expr
	sets   map[int]expr // column position -> new value (UPDATE)
	delete bool
	ret    *returning
	// from are UPDATE ... FROM's (DELETE ... USING's) other tables: a
	// target row is changed when its WHERE holds with one of their rows
	// (the first, as PostgreSQL takes an arbitrary one), and its SET,
	// WHERE and RETURNING expressions read the target row followed by it.
	from   source
	checks []checkExpr // UPDATE's
}

func (a *analyzer) analyzeUpdate(st *pg.UpdateStmt) (*updatePlan, error) {
	restore, err := a.with(st.WithClause)
	defer restore()
	if err != nil {
		return nil, err
	}
	p, sc, err := a.dmlTarget(st.Relation, st.FromClause)
	if err != nil {
		return nil, err
	}
	if err := a.require(p.t, dmlPrivileges("UPDATE", st.WhereClause, st.ReturningList)...); err != nil {
		return nil, err
	}
	if p.checks, err = a.checks(p.t); err != nil {
		return nil, err
	}
	t := p.t
	p.sets = map[int]expr{}
	for _, n := range st.TargetList {
		rt := n.GetResTarget()
		i, err := targetColumn(t, rt)
		if err != nil {
			return nil, err
		}
		if _, dup := p.sets[i]; dup {
			return nil, withPosition(errorf("42601", "multiple assignments to same column %q", rt.Name), rt.Location)
		}
		var x expr
		if rt.Val.GetSetToDefault() != nil {
			if t.Columns[i].Default == "" {
				x = &constExpr{v: nil, t: t.Columns[i].Type}
			} else if x, err = a.defaultExpr(t.Columns[i]); err != nil {
				return nil, err
			}
		} else {
			if x, err = a.expr(rt.Val, sc); err != nil {
				return nil, err
			}
			if x, err = a.assignable(x, t.Columns[i]); err != nil {
				return nil, err
			}
		}
		p.sets[i] = x
	}
	if err := a.dmlWhere(p, st.WhereClause, sc); err != nil {
		return nil, err
	}
	if p.ret, err = a.returning(st.ReturningList, sc); err != nil {
		return nil, err
	}
	return p, nil
}

func (a *analyzer) analyzeDelete(st *pg.DeleteStmt) (*updatePlan, error) {
	restore, err := a.with(st.WithClause)
	defer restore()
	if err != nil {
		return nil, err
	}
	p, sc, err := a.dmlTarget(st.Relation, st.UsingClause)
	if err != nil {
		return nil, err
	}
	if err := a.require(p.t, dmlPrivileges("DELETE", st.WhereClause, st.ReturningList)...); err != nil {
		return nil, err
	}
	p.delete = true
	if err := a.dmlWhere(p, st.WhereClause, sc); err != nil {
		return nil, err
	}
	if p.ret, err = a.returning(st.ReturningList, sc); err != nil {
		return nil, err
	}
	return p, nil
}

// dmlTarget is the table an UPDATE or DELETE changes, with the other
// tables of its FROM (USING) list, their scope and the plan's start: a
// scan that locks the rows it reads by their key.
// dmlPrivileges are what an UPDATE or DELETE needs on its table: its
// own privilege, and SELECT when it reads the table's rows (a WHERE, a
// RETURNING), as PostgreSQL asks.
func dmlPrivileges(verb string, where *pg.Node, returning []*pg.Node) []string {
	if where != nil || len(returning) > 0 {
		return []string{verb, "SELECT"}
	}
	return []string{verb}
}

func (a *analyzer) dmlTarget(rv *pg.RangeVar, from []*pg.Node) (*updatePlan, *scope, error) {
	t, err := a.table(rv)
	if err != nil {
		return nil, nil, err
	}
	p := &updatePlan{t: t, scan: &tableScan{t: t, maxRows: a.s.e.opts.MaxRows, forUpdate: true}}
	sc := tableScope(t, aliasName(rv))
	if len(from) > 0 {
		src, fsc, err := a.fromList(from)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range fsc.cols {
			if c.table != "" && c.table == sc.cols[0].table {
				return nil, nil, errorf("42712", "table name %q specified more than once", c.table)
			}
		}
		p.from = src
		sc = &scope{cols: append(slices0(sc.cols), fsc.cols...)}
	}
	return p, sc, nil
}

func (a *analyzer) dmlWhere(p *updatePlan, n *pg.Node, sc *scope) error {
	if n == nil {
		return nil
	}
	w, err := a.expr(n, sc)
	if err != nil {
		return err
	}
	if p.where, err = a.boolean(w, "argument of WHERE"); err != nil {
		return err
	}
	p.scan.pushdown(p.where)
	return nil
}

func (p *updatePlan) columns() []Column { return p.ret.columns() }

// execute finds the rows, computes every change and RETURNING row, and
// only then writes: the statement's expressions (subqueries included) see
// the table as it was before the statement, never its own writes.
func (p *updatePlan) execute(r *run) (n int, out [][]any, err error) {
	rows, err := p.scan.rows(r)
	if err != nil {
		return 0, nil, err
	}
	type change struct {
		key, newKey []byte
		old, row    []any // the row, and the new row (UPDATE)
	}
	others := [][]any{nil} // one empty row: no FROM list
	if p.from != nil {
		if others, err = p.from.rows(r); err != nil {
			return 0, nil, err
		}
	}
	var changes []change
	for _, target := range rows {
		var row []any // the target row, followed by the other tables' row it matched
		for _, other := range others {
			both := append(slices.Clip(target), other...)
			if p.where != nil {
				v, err := p.where.eval(r.env, both)
				if err != nil {
					return 0, nil, err
				}
				if v != true {
					continue
				}
			}
			row = both
			break
		}
		if row == nil {
			continue
		}
		c := change{key: p.t.rowKey(target), old: target}
		result := row
		if !p.delete {
			result = append([]any(nil), row...)
			for i, x := range p.sets {
				v, err := x.eval(r.env, row)
				if err != nil {
					return 0, nil, err
				}
				result[i] = v
			}
			if err := checkRow(p.t, result[:len(target)]); err != nil {
				return 0, nil, err
			}
			if err := violatedCheck(r.env, p.t, p.checks, result[:len(target)]); err != nil {
				return 0, nil, err
			}
			c.newKey, c.row = p.t.rowKey(result), result[:len(target):len(target)]
		}
		changes = append(changes, c)
		if p.ret != nil {
			o, err := p.ret.row(r.env, result)
			if err != nil {
				return 0, nil, err
			}
			out = append(out, o)
		}
	}
	// Rows whose primary key changes leave their old keys first, so that
	// rows trading keys (SET id = id + 1) do not collide with each other;
	// a new key that another row holds is a duplicate.
	for _, c := range changes {
		if p.delete || string(c.newKey) != string(c.key) {
			if err := r.tx.Delete(r.ctx, c.key); err != nil {
				return 0, nil, err
			}
		}
		if err := r.removeIndexEntries(p.t, c.old, c.row); err != nil {
			return 0, nil, err
		}
	}
	for _, c := range changes {
		if p.delete {
			continue
		}
		if string(c.newKey) != string(c.key) {
			_, found, err := r.tx.Get(r.ctx, c.newKey)
			if err != nil {
				return 0, nil, err
			}
			if found {
				return 0, nil, duplicateKey(p.t, c.row)
			}
		}
		if err := r.addIndexEntries(p.t, c.old, c.row); err != nil {
			return 0, nil, err
		}
		if err := r.tx.Put(r.ctx, c.newKey, encodeRow(p.t.Columns, c.row)); err != nil {
			return 0, nil, err
		}
	}
	written := make([]rowChange, len(changes))
	for i, c := range changes {
		written[i] = rowChange{old: c.old, new: c.row}
	}
	return len(changes), out, r.foreignKeys(p.t, written)
}

func tagCount(verb string, n int) string {
	if verb == "INSERT" {
		return "INSERT 0 " + strconv.Itoa(n)
	}
	return verb + " " + strconv.Itoa(n)
}

func hasStar(targets []*pg.Node) bool {
	for _, n := range targets {
		if cr := n.GetResTarget().GetVal().GetColumnRef(); cr != nil && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			return true
		}
	}
	return false
}
