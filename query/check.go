package query

import (
	"fmt"
	"slices"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// CHECK constraints: a boolean expression over a row, stored as SQL text
// in the table's descriptor, analysed with each INSERT and UPDATE (as
// defaults are) and evaluated on every row they write; false refuses the
// row (23514), true and NULL pass, as PostgreSQL's.

// CheckDesc is a CHECK constraint.
type CheckDesc struct {
	Name string `json:"name"`
	// Expr is the expression's SQL text.
	Expr string `json:"expr"`
	// Columns are the IDs of the columns it reads: dropping one drops
	// the constraint, as PostgreSQL does.
	Columns []uint32 `json:"columns"`
}

// checkExpr is an analysed CHECK constraint.
type checkExpr struct {
	name string
	x    expr
}

// checks analyses t's CHECK constraints over a row of t.
func (a *analyzer) checks(t *TableDesc) ([]checkExpr, error) {
	var out []checkExpr
	for _, c := range t.Checks {
		x, err := a.checkOf(t, c.Expr)
		if err != nil {
			return nil, err
		}
		out = append(out, checkExpr{name: c.Name, x: x})
	}
	return out, nil
}

// checkOf analyses a CHECK expression's text over a row of t.
func (a *analyzer) checkOf(t *TableDesc, text string) (expr, error) {
	tree, err := pg.Parse("SELECT " + text)
	if err != nil {
		return nil, errorf("XX000", "a check constraint of %q does not parse: %v", t.Name, err)
	}
	x, err := a.expr(tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val, tableScope(t, ""))
	if err != nil {
		return nil, err
	}
	return a.boolean(x, "CHECK")
}

// violatedCheck runs the checks on row: the first whose expression is
// false refuses it.
func violatedCheck(env *env, t *TableDesc, checks []checkExpr, row []any) error {
	for _, c := range checks {
		v, err := c.x.eval(env, row)
		if err != nil {
			return err
		}
		if v == false {
			e := errorf("23514", "new row for relation %q violates check constraint %q", t.Name, c.name)
			e.Detail = "Failing row contains " + failingRow(t, row) + "."
			return e
		}
	}
	return nil
}

// addCheck adds a CHECK constraint to t (not yet stored); column is the
// column it was written on ("" for a table constraint); taken are names
// given to others not yet stored. With validate, every row must pass
// (ALTER TABLE ADD CONSTRAINT).
func (a *analyzer) addCheck(t *TableDesc, con *pg.Constraint, column string, taken map[string]bool, validate bool) error {
	if con.SkipValidation || con.IsNoInherit {
		return withPosition(errorf("0A000", "CHECK ... NOT VALID and NO INHERIT are not supported"), con.Location)
	}
	text, err := deparseExpr(con.RawExpr)
	if err != nil {
		return err
	}
	x, err := a.checkOf(t, text)
	if err != nil {
		return err
	}
	c := CheckDesc{Name: con.Conname, Expr: text}
	names := columnRefs(con.RawExpr)
	for _, n := range names {
		if i, ok := t.columnNamed(n); ok && !slices.Contains(c.Columns, t.Columns[i].ID) {
			c.Columns = append(c.Columns, t.Columns[i].ID)
		}
	}
	if c.Name == "" {
		// PostgreSQL's: the column's name when the check reads one only.
		base := t.Name + "_check"
		if column != "" {
			base = t.Name + "_" + column + "_check"
		} else if len(c.Columns) == 1 {
			base = t.Name + "_" + t.Columns[columnIndex(t.Columns, c.Columns[0])].Name + "_check"
		}
		c.Name = base
	}
	if c.Name, err = t.constraintName(c.Name, con, taken); err != nil {
		return err
	}
	if validate {
		rows, err := a.allRows(t)
		if err != nil {
			return err
		}
		env := &env{session: a.s, now: a.s.now()}
		for _, row := range rows {
			if v, err := x.eval(env, row); err != nil {
				return err
			} else if v == false {
				return errorf("23514", "check constraint %q of relation %q is violated by some row", c.Name, t.Name)
			}
		}
	}
	t.Checks = append(t.Checks, c)
	return nil
}

// constraintName is the name a new constraint of t gets: the one it was
// given (42710 if t has it already), or base (con.Conname empty),
// numbered past the first one free, as PostgreSQL names them; taken are
// names given to others not yet stored (the name joins them).
func (t *TableDesc) constraintName(base string, con *pg.Constraint, taken map[string]bool) (string, error) {
	name := base
	if con.Conname != "" {
		if taken[name] || t.constraintNamed(name) {
			return "", withPosition(errorf("42710", "constraint %q for relation %q already exists", name, t.Name), con.Location)
		}
	} else {
		for n := 1; taken[name] || t.constraintNamed(name); n++ {
			name = fmt.Sprintf("%s%d", base, n)
		}
	}
	taken[name] = true
	return name, nil
}

// constraintNamed reports whether t has a constraint called name.
func (t *TableDesc) constraintNamed(name string) bool {
	if !hiddenKey(t) && name == t.pkName() {
		return true
	}
	if ix := t.indexNamed(name); ix != nil && ix.Constraint {
		return true
	}
	return slices.ContainsFunc(t.Checks, func(c CheckDesc) bool { return c.Name == name })
}

// columnRefs are the column names an expression's tree refers to (the
// last field of each ColumnRef).
func columnRefs(n *pg.Node) []string {
	var out []string
	if n != nil {
		walkTree(n.ProtoReflect(), func(m protoreflect.Message) bool {
			if cr, ok := m.Interface().(*pg.ColumnRef); ok && len(cr.Fields) > 0 {
				if s := cr.Fields[len(cr.Fields)-1].GetString_(); s != nil {
					out = append(out, s.Sval)
				}
			}
			return true
		})
	}
	return out
}
