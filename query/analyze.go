package query

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/orbitkernel/orbit/txn"
)

// analyzer turns a statement's parse tree into a plan: names resolved
// against the catalog as the statement's transaction sees it, types
// checked, parameters' types inferred.
type analyzer struct {
	ctx context.Context
	s   *Session
	tx  *txn.Tx
	// params are the parameters' types: as the client gave them, or
	// inferred where a parameter meets a typed value (TypeUnknown until
	// then; text if nothing tells).
	params []Type
	// role is the session's role, once a privilege check read it.
	role *RoleDesc
	// schemaGrants are schema public's grants, once a check read them.
	schemaGrants objectGrants
	// agg is set while analysing the output of a grouped query.
	agg *aggContext
	// outer are the enclosing queries' scopes (outermost first): a
	// subquery's names that its own FROM lacks resolve there.
	outer []*scope
	// failed are the constant expressions whose folding failed; the
	// statement fails with the first one's error once analysis succeeds.
	failed []*failExpr
	// ctes are the WITH queries visible here (cte.go), innermost last.
	ctes []*cte
	// win collects the window calls of the select list and ORDER BY
	// being analysed (window.go; nil elsewhere); inWhere is set while a
	// WHERE clause is (for the error that refuses one there).
	win     *winContext
	inWhere bool
}

// aggContext collects the aggregates of a grouped query's outputs.
type aggContext struct {
	aggs []*aggregate
	// groupCols are the input columns GROUP BY names: only those may
	// appear outside an aggregate.
	groupCols map[int]bool
	// inAgg is set while an aggregate's arguments are analysed.
	inAgg bool
	// groupNodes are the GROUP BY expressions' trees (locations cleared):
	// an output that is one of them reads the group's value.
	groupNodes []*pg.Node
}

// scope is the columns an expression may name.
type scope struct {
	cols []scopeCol
}

type scopeCol struct {
	table  string // the table's name or alias
	name   string
	t      Type
	hidden bool // not in SELECT *
	// tableOID and attr describe where it comes from (RowDescription).
	tableOID uint32
	attr     int16
}

func (sc *scope) resolve(table, name string, loc int32) (int, error) {
	found := -1
	for i, c := range sc.cols {
		if c.name != name || (table != "" && c.table != table) {
			continue
		}
		if found >= 0 {
			return 0, withPosition(errorf("42702", "column reference %q is ambiguous", name), loc)
		}
		found = i
	}
	if found < 0 {
		if table != "" {
			if !sc.hasTable(table) {
				return 0, withPosition(errorf("42P01", "missing FROM-clause entry for table %q", table), loc)
			}
			return 0, withPosition(errorf("42703", "column %s.%s does not exist", table, name), loc)
		}
		return 0, withPosition(errorf("42703", "column %q does not exist", name), loc)
	}
	return found, nil
}

func (sc *scope) hasTable(table string) bool {
	for _, c := range sc.cols {
		if c.table == table {
			return true
		}
	}
	return false
}

func withPosition(e *Error, loc int32) *Error {
	if loc >= 0 {
		e.Position = loc + 1
	}
	return e
}

func stringOf(n *pg.Node) string {
	if s := n.GetString_(); s != nil {
		return s.Sval
	}
	return ""
}

// expr analyses a scalar expression over sc, folding what it can
// compute now (fold).
func (a *analyzer) expr(n *pg.Node, sc *scope) (expr, error) {
	x, err := a.exprOf(n, sc)
	if err != nil {
		return nil, err
	}
	return a.fold(x), nil
}

// fold computes an immutable function, CASE or COALESCE of constants
// now, as PostgreSQL's planner does (eval_const_expressions): a
// computation that fails becomes a failExpr, whose error the statement
// gets once analysis succeeds (a.failed) even if no row would reach it,
// unless folding drops it (an arm a constant CASE or COALESCE does not
// take); a strict function of a NULL constant is NULL.
func (a *analyzer) fold(x expr) expr {
	switch f := x.(type) {
	case *funcExpr:
		if !f.immutable {
			return x
		}
		for _, arg := range f.args {
			if fe, ok := arg.(*failExpr); ok {
				fe.t = f.t // the failure stands for the whole expression now
				return fe
			}
			c, ok := arg.(*constExpr)
			if f.strict && ok && c.v == nil {
				return &constExpr{v: nil, t: f.t}
			}
			if !ok {
				return x
			}
		}
		v, err := f.eval(&env{}, nil)
		if err != nil {
			fe := &failExpr{err: err, t: f.t}
			a.failed = append(a.failed, fe)
			return fe
		}
		return &constExpr{v: v, t: f.t}
	case *caseExpr:
		if f.operand != nil {
			return x
		}
		for i, w := range f.whens {
			c, ok := w.(*constExpr)
			if !ok {
				return x
			}
			if c.v == true {
				for _, rest := range append(slices.Clone(f.thens[i+1:]), f.els) {
					a.drop(rest)
				}
				return f.thens[i]
			}
			a.drop(f.thens[i])
		}
		if f.els == nil {
			return &constExpr{v: nil, t: f.t}
		}
		return f.els
	case *coalesceExpr:
		for i, arg := range f.args {
			c, ok := arg.(*constExpr)
			switch {
			case !ok:
				return x
			case c.v != nil:
				for _, rest := range f.args[i+1:] {
					a.drop(rest)
				}
				return c
			}
		}
		return &constExpr{v: nil, t: f.t}
	}
	return x
}

// drop forgets a failed constant that folding dropped.
func (a *analyzer) drop(x expr) {
	if fe, ok := x.(*failExpr); ok {
		a.failed = slices.DeleteFunc(a.failed, func(g *failExpr) bool { return g == fe })
	}
}

// failExpr is a constant expression whose computation failed.
type failExpr struct {
	err error
	t   Type
}

func (e *failExpr) eval(*env, []any) (any, error) { return nil, e.err }
func (e *failExpr) typ() Type                     { return e.t }

// exprOf analyses an expression (expr folds the result).
func (a *analyzer) exprOf(n *pg.Node, sc *scope) (expr, error) {
	if a.agg != nil && !a.agg.inAgg && len(a.agg.groupNodes) > 0 && n.GetAConst() == nil {
		bare := withoutLocations(n)
		for _, g := range a.agg.groupNodes {
			if proto.Equal(bare, g) {
				// The group's value: evaluated on its first row, with
				// the column checks off (it is grouped by).
				a.agg.inAgg = true
				x, err := a.expr(n, sc)
				a.agg.inAgg = false
				return x, err
			}
		}
	}
	switch {
	case n.GetAConst() != nil:
		return constant(n.GetAConst())
	case n.GetColumnRef() != nil:
		return a.columnRef(n.GetColumnRef(), sc)
	case n.GetParamRef() != nil:
		p := n.GetParamRef()
		i := int(p.Number) - 1
		if i < 0 || i >= maxParams {
			return nil, withPosition(errorf("42P02", "there is no parameter $%d", p.Number), p.Location)
		}
		for len(a.params) <= i {
			a.params = append(a.params, TypeUnknown)
		}
		return &paramExpr{i: i, a: a}, nil
	case n.GetTypeCast() != nil:
		tc := n.GetTypeCast()
		t, err := typeOf(tc.TypeName)
		if err != nil {
			return nil, err
		}
		x, err := a.expr(tc.Arg, sc)
		if err != nil {
			return nil, err
		}
		return a.cast(x, t)
	case n.GetAExpr() != nil:
		return a.aExpr(n.GetAExpr(), sc)
	case n.GetBoolExpr() != nil:
		return a.boolExpr(n.GetBoolExpr(), sc)
	case n.GetNullTest() != nil:
		nt := n.GetNullTest()
		x, err := a.expr(nt.Arg, sc)
		if err != nil {
			return nil, err
		}
		isNull := nt.Nulltesttype == pg.NullTestType_IS_NULL
		return &funcExpr{args: []expr{x}, t: TypeBool, fn: func(_ *env, v []any) (any, error) {
			return (v[0] == nil) == isNull, nil
		}}, nil
	case n.GetBooleanTest() != nil:
		return a.booleanTest(n.GetBooleanTest(), sc)
	case n.GetFuncCall() != nil:
		return a.funcCall(n.GetFuncCall(), sc)
	case n.GetCoalesceExpr() != nil:
		args, t, err := a.common(n.GetCoalesceExpr().Args, sc, "COALESCE")
		if err != nil {
			return nil, err
		}
		return &coalesceExpr{args: args, t: t}, nil
	case n.GetCaseExpr() != nil:
		return a.caseExpr(n.GetCaseExpr(), sc)
	case n.GetSqlvalueFunction() != nil:
		return a.sqlValueFunction(n.GetSqlvalueFunction())
	case n.GetSubLink() != nil:
		return a.subLink(n.GetSubLink(), sc)
	case n.GetAIndirection() != nil:
		return a.subscript(n.GetAIndirection(), sc)
	case n.GetAArrayExpr() != nil:
		return a.arrayExpr(n.GetAArrayExpr(), sc)
	case n.GetCollateClause() != nil:
		cc := n.GetCollateClause()
		var names []string
		for _, c := range cc.Collname {
			names = append(names, stringOf(c))
		}
		switch strings.Join(names, ".") {
		case "default", "pg_catalog.default", "C", "pg_catalog.C", "POSIX", "pg_catalog.POSIX":
			// Orbit compares strings bytewise, which is the C collation.
			return a.expr(cc.Arg, sc)
		}
		return nil, withPosition(errorf("0A000", "collation %q is not supported (strings compare as in the C collation)", strings.Join(names, ".")), cc.Location)
	}
	return nil, errorf("0A000", "expression %s is not supported", nodeName(n))
}

// maxParams is PostgreSQL's limit on a statement's parameters.
const maxParams = 65535

// nodeName names a parse node's kind for a "not supported" error.
func nodeName(n *pg.Node) string {
	s := strings.TrimPrefix(strings.TrimPrefix(strings.SplitN(n.String(), ":", 2)[0], "node:"), "{")
	return strings.TrimSpace(s)
}

func constant(c *pg.A_Const) (expr, error) {
	if c.Isnull {
		return &constExpr{v: nil, t: TypeUnknown}, nil
	}
	switch v := c.Val.(type) {
	case *pg.A_Const_Ival:
		return &constExpr{v: int64(v.Ival.Ival), t: TypeInt4}, nil
	case *pg.A_Const_Fval:
		// Integers too large for int4 arrive as floats (so does
		// -2147483648, its sign folded in by the parser): int4 when they
		// fit, int8, else numeric, as PostgreSQL's make_const types them.
		if n, err := strconv.ParseInt(v.Fval.Fval, 10, 64); err == nil {
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				return &constExpr{v: n, t: TypeInt4}, nil
			}
			return &constExpr{v: n, t: TypeInt8}, nil
		}
		d, err := parseText(TypeNumeric, v.Fval.Fval)
		if err != nil {
			return nil, err
		}
		return &constExpr{v: d, t: TypeNumeric}, nil
	case *pg.A_Const_Boolval:
		return &constExpr{v: v.Boolval.Boolval, t: TypeBool}, nil
	case *pg.A_Const_Sval:
		return &constExpr{v: v.Sval.Sval, t: TypeUnknown}, nil
	case *pg.A_Const_Bsval:
		return nil, errorf("0A000", "bit-string constants are not supported")
	}
	return nil, errorf("0A000", "constant %v is not supported", c)
}

func (a *analyzer) columnRef(c *pg.ColumnRef, sc *scope) (expr, error) {
	var table, name string
	switch len(c.Fields) {
	case 1:
		name = stringOf(c.Fields[0])
	case 2:
		table, name = stringOf(c.Fields[0]), stringOf(c.Fields[1])
	default:
		return nil, withPosition(errorf("0A000", "qualified column names with a schema are not supported"), c.Location)
	}
	if name == "" {
		return nil, withPosition(errorf("42601", "\"*\" is not allowed here"), c.Location)
	}
	i, err := sc.resolve(table, name, c.Location)
	if err != nil {
		if e, ok := err.(*Error); ok && (e.Code == "42703" || e.Code == "42P01") {
			for level := len(a.outer) - 1; level >= 0; level-- {
				if j, oerr := a.outer[level].resolve(table, name, c.Location); oerr == nil {
					return &outerRef{level: level, i: j, t: a.outer[level].cols[j].t}, nil
				}
			}
		}
		return nil, err
	}
	if a.agg != nil && !a.agg.inAgg && !a.agg.groupCols[i] {
		col := name
		if sc.cols[i].table != "" {
			col = sc.cols[i].table + "." + name
		}
		return nil, withPosition(errorf("42803", "column %q must appear in the GROUP BY clause or be used in an aggregate function", col), c.Location)
	}
	return &colExpr{i: i, t: sc.cols[i].t}, nil
}

// typeOf reads a TypeName.
func typeOf(tn *pg.TypeName) (Type, error) {
	if len(tn.ArrayBounds) > 0 {
		elem := proto.Clone(tn).(*pg.TypeName)
		elem.ArrayBounds = nil
		t, err := typeOf(elem)
		if err != nil {
			return Type{}, err
		}
		at, err := arrayOf(t)
		if err != nil {
			return Type{}, withPosition(err.(*Error), tn.Location)
		}
		return at, nil
	}
	var names []string
	for _, n := range tn.Names {
		names = append(names, stringOf(n))
	}
	name := names[len(names)-1]
	if len(names) == 2 && names[0] != "pg_catalog" {
		return Type{}, withPosition(errorf("42704", "type %q does not exist", strings.Join(names, ".")), tn.Location)
	}
	t, ok := typeNames[name]
	if !ok {
		switch name {
		case "json", "jsonb", "uuid", "interval", "time", "timetz", "bit", "varbit", "money", "inet", "cidr", "xml", "point":
			return Type{}, withPosition(errorf("0A000", "type %s is not supported", name), tn.Location)
		}
		return Type{}, withPosition(errorf("42704", "type %q does not exist", name), tn.Location)
	}
	if len(tn.Typmods) > 0 && t.OID == TypeNumeric.OID {
		return numericType(tn)
	}
	if len(tn.Typmods) > 0 && t.OID != TypeVarchar.OID && t.OID != TypeBpchar.OID {
		return Type{}, withPosition(errorf("0A000", "a type modifier on %s is not supported", t.Name), tn.Location)
	}
	if len(tn.Typmods) > 0 && (t.OID == TypeVarchar.OID || t.OID == TypeBpchar.OID) {
		c := tn.Typmods[0].GetAConst()
		if c == nil || c.GetIval() == nil || c.GetIval().Ival < 1 {
			return Type{}, withPosition(errorf("22023", "length for type %s must be at least 1", name), tn.Location)
		}
		t = t.withMod(c.GetIval().Ival)
	} else if t.OID == TypeBpchar.OID && len(names) == 1 {
		t = t.withMod(1) // char alone is char(1)
	}
	return t, nil
}

// cast converts x to t: a literal or parameter of unknown type takes t.
func (a *analyzer) cast(x expr, t Type) (expr, error) {
	from := x.typ()
	if from.OID == TypeRegclass.OID && t.family() == famString {
		return &funcExpr{args: []expr{x}, t: t, strict: true, fn: func(env *env, v []any) (any, error) {
			return regclassText(env, v[0].(int64))
		}}, nil
	}
	if t.OID == TypeRegclass.OID && (from.family() == famString || from.family() == famUnknown) {
		return &funcExpr{args: []expr{x}, t: t, strict: true, fn: func(env *env, v []any) (any, error) {
			return regclassOf(env, v[0].(string))
		}}, nil
	}
	if p, ok := x.(*paramExpr); ok && from.OID == TypeUnknown.OID {
		a.params[p.i] = t
		return x, nil
	}
	if c, ok := x.(*constExpr); ok {
		if c.v == nil {
			return &constExpr{v: nil, t: t}, nil
		}
		v, err := castValue(c.v, from, t)
		if err != nil {
			return nil, err
		}
		return &constExpr{v: v, t: t}, nil
	}
	if from.OID == t.OID && from.Mod == t.Mod {
		return x, nil
	}
	if _, err := checkCast(from, t); err != nil {
		return nil, err
	}
	return &funcExpr{args: []expr{x}, t: t, strict: true, immutable: true, fn: func(_ *env, v []any) (any, error) {
		return castValue(v[0], from, t)
	}}, nil
}

// checkCast refuses a cast PostgreSQL has no conversion for.
func checkCast(from, to Type) (bool, error) {
	ff, tf := from.family(), to.family()
	switch {
	case ff == tf, ff == famUnknown, ff == famString, tf == famString:
		return true, nil
	case (ff == famInt || ff == famFloat || ff == famNumeric) && (tf == famInt || tf == famFloat || tf == famNumeric):
		return true, nil
	case ff == famInt && tf == famBool && from.OID == TypeInt4.OID, ff == famBool && tf == famInt && to.OID == TypeInt4.OID:
		return true, nil
	}
	return false, errCannotCast(from, to)
}

// coerce makes x usable where a value of type t is wanted (an operator's
// other side, a column): unknown literals and parameters take t.
func (a *analyzer) coerce(x expr, t Type) (expr, error) {
	if x.typ().family() == famUnknown || x.typ().OID == TypeUnknown.OID {
		return a.cast(x, t)
	}
	return x, nil
}

// unify finds the type two operands are compared or combined in, as
// PostgreSQL's operator resolution would for the common cases, and
// converts them to it.
func (a *analyzer) unify(l, r expr, op string) (expr, expr, Type, error) {
	lt, rt := l.typ(), r.typ()
	lu, ru := lt.OID == TypeUnknown.OID, rt.OID == TypeUnknown.OID
	var t Type
	switch {
	case lu && ru:
		t = TypeText
	case lu:
		t = rt
	case ru:
		t = lt
	case lt.family() == rt.family():
		t = wider(lt, rt)
	case numericFamily(lt) && numericFamily(rt):
		t = TypeNumeric
		if lt.family() == famFloat || rt.family() == famFloat {
			t = TypeFloat8
		}
	default:
		return nil, nil, Type{}, errUndefinedOperator(op, lt, rt)
	}
	t = t.withMod(-1) // operators compare values, not a column's length limit
	var err error
	if l, err = a.convertTo(l, t); err != nil {
		return nil, nil, Type{}, err
	}
	if r, err = a.convertTo(r, t); err != nil {
		return nil, nil, Type{}, err
	}
	return l, r, t, nil
}

func (a *analyzer) convertTo(x expr, t Type) (expr, error) {
	xt := x.typ()
	if xt.OID == t.OID || (xt.family() == famString && t.family() == famString) {
		return x, nil
	}
	return a.cast(x, t)
}

func numericFamily(t Type) bool {
	f := t.family()
	return f == famInt || f == famFloat || f == famNumeric
}

// wider is the type of two of one family that holds both.
func wider(a, b Type) Type {
	switch a.family() {
	case famInt:
		if a.Size >= b.Size {
			return a
		}
		return b
	case famFloat:
		if a.OID == TypeFloat8.OID || b.OID == TypeFloat8.OID {
			return TypeFloat8
		}
		return a
	case famString:
		// PostgreSQL keeps the first type when each converts to the
		// other implicitly (varchar, text, char), as they do.
		return a.withMod(-1)
	case famTime:
		if a.OID == TypeTimestamptz.OID || b.OID == TypeTimestamptz.OID {
			return TypeTimestamptz
		}
		if a.OID == TypeTimestamp.OID || b.OID == TypeTimestamp.OID {
			return TypeTimestamp
		}
	}
	return a
}

func opName(names []*pg.Node) string {
	if len(names) == 0 {
		return ""
	}
	return stringOf(names[len(names)-1])
}

func (a *analyzer) aExpr(e *pg.A_Expr, sc *scope) (expr, error) {
	op := opName(e.Name)
	switch e.Kind {
	case pg.A_Expr_Kind_AEXPR_OP:
	case pg.A_Expr_Kind_AEXPR_IN:
		return a.inList(e, sc, op == "<>")
	case pg.A_Expr_Kind_AEXPR_OP_ANY, pg.A_Expr_Kind_AEXPR_OP_ALL:
		return a.anyExpr(e, sc, e.Kind == pg.A_Expr_Kind_AEXPR_OP_ALL)
	case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN:
		list := e.Rexpr.GetList()
		if list == nil || len(list.Items) != 2 {
			return nil, errorf("42601", "malformed BETWEEN")
		}
		lo := &pg.A_Expr{Kind: pg.A_Expr_Kind_AEXPR_OP, Name: []*pg.Node{pg.MakeStrNode(">=")}, Lexpr: e.Lexpr, Rexpr: list.Items[0], Location: e.Location}
		hi := &pg.A_Expr{Kind: pg.A_Expr_Kind_AEXPR_OP, Name: []*pg.Node{pg.MakeStrNode("<=")}, Lexpr: e.Lexpr, Rexpr: list.Items[1], Location: e.Location}
		l, err := a.aExpr(lo, sc)
		if err != nil {
			return nil, err
		}
		r, err := a.aExpr(hi, sc)
		if err != nil {
			return nil, err
		}
		var x expr = &andExpr{l, r}
		if e.Kind == pg.A_Expr_Kind_AEXPR_NOT_BETWEEN {
			x = notOf(x)
		}
		return x, nil
	case pg.A_Expr_Kind_AEXPR_LIKE, pg.A_Expr_Kind_AEXPR_ILIKE:
		l, r, _, err := a.operands(e, sc, op)
		if err != nil {
			return nil, err
		}
		if l.typ().family() != famString {
			return nil, errUndefinedOperator(op, l.typ(), r.typ())
		}
		fold, negate := e.Kind == pg.A_Expr_Kind_AEXPR_ILIKE, strings.HasPrefix(op, "!")
		return &funcExpr{args: []expr{l, r}, t: TypeBool, strict: true, fn: func(_ *env, v []any) (any, error) {
			return likeMatch(v[0].(string), v[1].(string), fold) != negate, nil
		}}, nil
	case pg.A_Expr_Kind_AEXPR_DISTINCT, pg.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		l, r, _, err := a.operands(e, sc, "=")
		if err != nil {
			return nil, err
		}
		distinct := e.Kind == pg.A_Expr_Kind_AEXPR_DISTINCT
		return &funcExpr{args: []expr{l, r}, t: TypeBool, fn: func(_ *env, v []any) (any, error) {
			same := (v[0] == nil && v[1] == nil) || (v[0] != nil && v[1] != nil && compareValues(v[0], v[1]) == 0)
			return same != distinct, nil
		}}, nil
	case pg.A_Expr_Kind_AEXPR_NULLIF:
		l0, _, err := a.sides(e, sc)
		if err != nil {
			return nil, err
		}
		l, r, _, err := a.operands(e, sc, "=")
		if err != nil {
			return nil, err
		}
		t := l0.typ()
		if t.OID == TypeUnknown.OID {
			t = TypeText
		}
		from := l.typ()
		return &funcExpr{args: []expr{l, r}, t: t, fn: func(_ *env, v []any) (any, error) {
			if v[0] != nil && v[1] != nil && compareValues(v[0], v[1]) == 0 {
				return nil, nil
			}
			if v[0] == nil || from.OID == t.OID {
				return v[0], nil
			}
			return castValue(v[0], from, t)
		}}, nil
	default:
		return nil, withPosition(errorf("0A000", "operator kind %s is not supported", e.Kind), e.Location)
	}
	if e.Lexpr == nil {
		// A prefix operator: -x, +x, NOT is a BoolExpr.
		x, err := a.expr(e.Rexpr, sc)
		if err != nil {
			return nil, err
		}
		if c, ok := x.(*constExpr); ok && op == "-" && c.t.family() == famUnknown {
			return nil, errUndefinedOperator(op, c.t, c.t)
		}
		switch op {
		case "+":
			return x, nil
		case "-":
			if !numericFamily(x.typ()) && x.typ().OID != TypeInterval.OID {
				return nil, withPosition(errorf("42883", "operator does not exist: - %s", x.typ().shortName()), e.Location)
			}
			t := x.typ()
			if c, ok := x.(*constExpr); ok && c.v != nil {
				v, err := negate(t, c.v)
				if err != nil {
					return nil, err
				}
				// -2147483648 is an integer: the literal 2147483648 was
				// a bigint only until its sign came.
				if n, ok := v.(int64); ok && t.OID == TypeInt8.OID && n >= math.MinInt32 && n <= math.MaxInt32 {
					t = TypeInt4
				}
				return &constExpr{v: v, t: t}, nil
			}
			return &funcExpr{args: []expr{x}, t: t, strict: true, immutable: true, fn: func(_ *env, v []any) (any, error) {
				return negate(t, v[0])
			}}, nil
		}
		return nil, withPosition(errorf("0A000", "prefix operator %s is not supported", op), e.Location)
	}
	if x, ok, err := a.jsonOperator(e, sc, op); ok {
		return x, err
	}
	if cmp := compare(op); cmp != nil {
		l, r, _, err := a.operands(e, sc, op)
		if err != nil {
			return nil, err
		}
		return &funcExpr{args: []expr{l, r}, t: TypeBool, strict: true, immutable: true, eq: op == "=", fn: func(_ *env, v []any) (any, error) {
			return cmp(compareValues(v[0], v[1])), nil
		}}, nil
	}
	switch op {
	case "~", "!~", "~*", "!~*":
		l, r, _, err := a.operands(e, sc, op)
		if err != nil {
			return nil, err
		}
		if l.typ().family() != famString {
			return nil, withPosition(errUndefinedOperator(op, l.typ(), r.typ()), e.Location)
		}
		negate, fold := strings.HasPrefix(op, "!"), strings.HasSuffix(op, "*")
		return &funcExpr{args: []expr{l, r}, t: TypeBool, strict: true, fn: func(_ *env, v []any) (any, error) {
			re, err := compileRegex(v[1].(string), fold)
			if err != nil {
				return nil, err
			}
			return re.MatchString(v[0].(string)) != negate, nil
		}}, nil
	case "+", "-", "*", "/", "%":
		if x, ok, err := a.intervalArith(e, sc, op); ok || err != nil {
			return x, err
		}
		if x, ok, err := a.dateArith(e, sc, op); ok || err != nil {
			return x, err
		}
		l, r, t, err := a.operands(e, sc, op)
		if err != nil {
			return nil, err
		}
		if !numericFamily(t) {
			return nil, withPosition(errUndefinedOperator(op, l.typ(), r.typ()), e.Location)
		}
		return &funcExpr{args: []expr{l, r}, t: t, strict: true, immutable: true, fn: func(_ *env, v []any) (any, error) {
			return arith(op, t, v[0], v[1])
		}}, nil
	case "||":
		l, r, err := a.sides(e, sc)
		if err != nil {
			return nil, err
		}
		if l, err = a.coerce(l, TypeText); err != nil {
			return nil, err
		}
		if r, err = a.coerce(r, TypeText); err != nil {
			return nil, err
		}
		lt, rt := l.typ(), r.typ()
		if lt.family() != famString && rt.family() != famString {
			return nil, withPosition(errUndefinedOperator(op, lt, rt), e.Location)
		}
		return &funcExpr{args: []expr{l, r}, t: TypeText, strict: true, fn: func(_ *env, v []any) (any, error) {
			return textOf(lt, v[0]) + textOf(rt, v[1]), nil
		}}, nil
	}
	return nil, withPosition(errorf("0A000", "operator %s is not supported", op), e.Location)
}

// textOf is v as text (what a cast to text gives).
func textOf(t Type, v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	s, _ := castValue(v, t, TypeText)
	return s.(string)
}

// sides analyses an operator's two sides as they are.
func (a *analyzer) sides(e *pg.A_Expr, sc *scope) (expr, expr, error) {
	l, err := a.expr(e.Lexpr, sc)
	if err != nil {
		return nil, nil, err
	}
	r, err := a.expr(e.Rexpr, sc)
	return l, r, err
}

// operands analyses an operator's sides and converts them to the type
// the operator compares or combines them in.
func (a *analyzer) operands(e *pg.A_Expr, sc *scope, op string) (expr, expr, Type, error) {
	l, r, err := a.sides(e, sc)
	if err != nil {
		return nil, nil, Type{}, err
	}
	l, r, t, err := a.unify(l, r, op)
	if err != nil {
		if pe, ok := err.(*Error); ok && pe.Position == 0 {
			pe.Position = e.Location + 1
		}
		return nil, nil, Type{}, err
	}
	return l, r, t, nil
}

func notOf(x expr) expr {
	return &funcExpr{args: []expr{x}, t: TypeBool, strict: true, fn: func(_ *env, v []any) (any, error) {
		return !v[0].(bool), nil
	}}
}

func (a *analyzer) inList(e *pg.A_Expr, sc *scope, not bool) (expr, error) {
	x, err := a.expr(e.Lexpr, sc)
	if err != nil {
		return nil, err
	}
	list := e.Rexpr.GetList()
	if list == nil {
		return nil, errorf("0A000", "IN with a subquery here is not supported")
	}
	in := &inExpr{not: not}
	var items []expr
	for _, n := range list.Items {
		item, err := a.expr(n, sc)
		if err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	// The common type of x and every item (unknown literals take it).
	t, err := commonType(append([]expr{x}, items...), "IN")
	if err != nil {
		return nil, withPosition(errUndefinedOperator("=", x.typ(), items[0].typ()), e.Location)
	}
	t = t.withMod(-1)
	if in.x, err = a.convertTo(x, t); err != nil {
		return nil, err
	}
	for _, item := range items {
		c, err := a.convertTo(item, t)
		if err != nil {
			return nil, err
		}
		in.list = append(in.list, c)
	}
	return in, nil
}

func (a *analyzer) boolExpr(b *pg.BoolExpr, sc *scope) (expr, error) {
	var args []expr
	for _, n := range b.Args {
		x, err := a.expr(n, sc)
		if err != nil {
			return nil, err
		}
		if x, err = a.boolean(x, "argument of "+boolOpName(b.Boolop)); err != nil {
			return nil, err
		}
		args = append(args, x)
	}
	switch b.Boolop {
	case pg.BoolExprType_NOT_EXPR:
		return notOf(args[0]), nil
	case pg.BoolExprType_AND_EXPR:
		x := args[0]
		for _, y := range args[1:] {
			x = &andExpr{x, y}
		}
		return x, nil
	}
	x := args[0]
	for _, y := range args[1:] {
		x = &orExpr{x, y}
	}
	return x, nil
}

func boolOpName(op pg.BoolExprType) string {
	switch op {
	case pg.BoolExprType_NOT_EXPR:
		return "NOT"
	case pg.BoolExprType_AND_EXPR:
		return "AND"
	}
	return "OR"
}

// boolean checks x is a boolean (where: what wants it, for the error).
func (a *analyzer) boolean(x expr, where string) (expr, error) {
	x, err := a.coerce(x, TypeBool)
	if err != nil {
		return nil, err
	}
	if x.typ().OID != TypeBool.OID {
		return nil, errorf("42804", "%s must be type boolean, not type %s", where, x.typ().shortName())
	}
	return x, nil
}

func (a *analyzer) booleanTest(b *pg.BooleanTest, sc *scope) (expr, error) {
	x, err := a.expr(b.Arg, sc)
	if err != nil {
		return nil, err
	}
	if x, err = a.boolean(x, "argument of IS TRUE"); err != nil {
		return nil, err
	}
	test := b.Booltesttype
	return &funcExpr{args: []expr{x}, t: TypeBool, fn: func(_ *env, v []any) (any, error) {
		switch test {
		case pg.BoolTestType_IS_TRUE:
			return v[0] == true, nil
		case pg.BoolTestType_IS_NOT_TRUE:
			return v[0] != true, nil
		case pg.BoolTestType_IS_FALSE:
			return v[0] == false, nil
		case pg.BoolTestType_IS_NOT_FALSE:
			return v[0] != false, nil
		case pg.BoolTestType_IS_UNKNOWN:
			return v[0] == nil, nil
		}
		return v[0] != nil, nil
	}}, nil
}

// common analyses exprs that must share one type (COALESCE, CASE
// results, VALUES columns) and converts them to it.
func (a *analyzer) common(nodes []*pg.Node, sc *scope, what string) ([]expr, Type, error) {
	var xs []expr
	for _, n := range nodes {
		x, err := a.expr(n, sc)
		if err != nil {
			return nil, Type{}, err
		}
		xs = append(xs, x)
	}
	t, err := commonType(xs, what)
	if err != nil {
		return nil, Type{}, err
	}
	for i, x := range xs {
		if xs[i], err = a.convertTo(x, t); err != nil {
			return nil, Type{}, err
		}
	}
	return xs, t, nil
}

// commonType is the type a list of expressions is resolved to (unknown
// literals alone: text).
func commonType(xs []expr, what string) (Type, error) {
	t := TypeUnknown
	for _, x := range xs {
		xt := x.typ()
		switch {
		case xt.OID == TypeUnknown.OID:
		case t.OID == TypeUnknown.OID:
			t = xt
		case t.family() == xt.family():
			t = wider(t, xt)
		case numericFamily(t) && numericFamily(xt):
			if t.family() == famFloat || xt.family() == famFloat {
				t = TypeFloat8
			} else {
				t = TypeNumeric
			}
		default:
			return Type{}, errorf("42804", "%s types %s and %s cannot be matched", what, t.shortName(), xt.shortName())
		}
	}
	if t.OID == TypeUnknown.OID {
		t = TypeText
	}
	return t, nil
}

func (a *analyzer) caseExpr(c *pg.CaseExpr, sc *scope) (expr, error) {
	ce := &caseExpr{}
	var err error
	if c.Arg != nil {
		if ce.operand, err = a.expr(c.Arg, sc); err != nil {
			return nil, err
		}
	}
	var results []*pg.Node
	for _, n := range c.Args {
		w := n.GetCaseWhen()
		cond, err := a.expr(w.Expr, sc)
		if err != nil {
			return nil, err
		}
		if ce.operand != nil {
			var t Type
			if ce.operand, cond, t, err = a.unify(ce.operand, cond, "="); err != nil {
				return nil, err
			}
			_ = t
		} else if cond, err = a.boolean(cond, "argument of CASE/WHEN"); err != nil {
			return nil, err
		}
		ce.whens = append(ce.whens, cond)
		results = append(results, w.Result)
	}
	if c.Defresult != nil {
		results = append(results, c.Defresult)
	}
	xs, t, err := a.common(results, sc, "CASE")
	if err != nil {
		return nil, err
	}
	ce.thens = xs[:len(ce.whens)]
	if c.Defresult != nil {
		ce.els = xs[len(xs)-1]
	}
	ce.t = t
	return ce, nil
}

func (a *analyzer) sqlValueFunction(f *pg.SQLValueFunction) (expr, error) {
	switch f.Op {
	case pg.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP, pg.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP:
		t := TypeTimestamptz
		if f.Op == pg.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP {
			t = TypeTimestamp
		}
		return &funcExpr{t: t, fn: func(env *env, _ []any) (any, error) { return env.now, nil }}, nil
	case pg.SQLValueFunctionOp_SVFOP_CURRENT_DATE:
		return &funcExpr{t: TypeDate, fn: func(env *env, _ []any) (any, error) {
			return castValue(env.now, TypeTimestamptz, TypeDate)
		}}, nil
	case pg.SQLValueFunctionOp_SVFOP_CURRENT_USER, pg.SQLValueFunctionOp_SVFOP_SESSION_USER, pg.SQLValueFunctionOp_SVFOP_USER, pg.SQLValueFunctionOp_SVFOP_CURRENT_ROLE:
		return &constExpr{v: a.s.user, t: TypeName}, nil
	case pg.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:
		return &constExpr{v: a.s.database, t: TypeName}, nil
	case pg.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:
		return &constExpr{v: "public", t: TypeName}, nil
	}
	return nil, withPosition(errorf("0A000", "%s is not supported", f.Op), f.Location)
}

// finishParams gives every parameter nothing typed a type: text, as
// PostgreSQL does for a parameter used where text is accepted.
func (a *analyzer) finishParams() {
	for i, t := range a.params {
		if t.OID == TypeUnknown.OID {
			a.params[i] = TypeText
		}
	}
}

// withoutLocations is a copy of n with every location field zeroed, so
// that two spellings of one expression compare equal.
func withoutLocations(n *pg.Node) *pg.Node {
	c := proto.Clone(n).(*pg.Node)
	var clear func(m protoreflect.Message)
	clear = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.Name() == "location":
				m.Clear(fd)
			case fd.IsList() && fd.Message() != nil:
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					clear(l.Get(i).Message())
				}
			case fd.Message() != nil && !fd.IsMap():
				clear(v.Message())
			}
			return true
		})
	}
	clear(c.ProtoReflect())
	return c
}

// numericType reads numeric(precision[, scale]); its Mod holds both as
// PostgreSQL's typmod does, less its 4-byte header: precision<<16 | scale.
func numericType(tn *pg.TypeName) (Type, error) {
	var mods []int32
	for _, m := range tn.Typmods {
		c := m.GetAConst()
		if c == nil || c.GetIval() == nil {
			return Type{}, withPosition(errorf("22023", "type modifiers must be simple constants or identifiers"), tn.Location)
		}
		mods = append(mods, c.GetIval().Ival)
	}
	if len(mods) > 2 {
		return Type{}, withPosition(errorf("22023", "invalid NUMERIC type modifier"), tn.Location)
	}
	precision, scale := mods[0], int32(0)
	if len(mods) == 2 {
		scale = mods[1]
	}
	if precision < 1 || precision > 1000 {
		return Type{}, withPosition(errorf("22023", "NUMERIC precision %d must be between 1 and 1000", precision), tn.Location)
	}
	if scale < 0 || scale > precision {
		return Type{}, withPosition(errorf("22023", "NUMERIC scale %d must be between 0 and precision %d", scale, precision), tn.Location)
	}
	return TypeNumeric.withMod(precision<<16 | scale), nil
}

// negate is -v: a float keeps its sign bit (-0), as float8um does.
func negate(t Type, v any) (any, error) {
	if f, ok := v.(float64); ok {
		return -f, nil
	}
	if iv, ok := v.(intervalValue); ok {
		return negateInterval(iv), nil
	}
	zero, _ := castValue(int64(0), TypeInt8, t)
	return arith("-", t, zero, v)
}

// dateArith is date + integer, integer + date, date - integer (days) and
// date - date (the days between); ok is false for any other operands.
func (a *analyzer) dateArith(e *pg.A_Expr, sc *scope, op string) (expr, bool, error) {
	if op != "+" && op != "-" {
		return nil, false, nil
	}
	l, r, err := a.sides(e, sc)
	if err != nil {
		return nil, false, err
	}
	isDate := func(x expr) bool { return x.typ().OID == TypeDate.OID }
	switch {
	case isDate(l) && isDate(r) && op == "-":
		return immutable(strict([]expr{l, r}, TypeInt4, func(v []any) (any, error) {
			return int64(v[0].(time.Time).Sub(v[1].(time.Time)).Hours() / 24), nil
		})), true, nil
	case isDate(l) || (isDate(r) && op == "+"):
		d, n := l, r
		if !isDate(l) {
			d, n = r, l
		}
		if n, err = a.coerce(n, TypeInt4); err != nil {
			return nil, false, err
		}
		if n.typ().family() != famInt {
			return nil, false, nil
		}
		if n.typ().OID == TypeInt8.OID { // date + integer only: bigint does not convert to it implicitly
			return nil, false, withPosition(errUndefinedOperator(op, l.typ(), r.typ()), e.Location)
		}
		sign := 1
		if op == "-" {
			sign = -1
		}
		args := []expr{d, n}
		return immutable(strict(args, TypeDate, func(v []any) (any, error) {
			d := v[0].(time.Time).AddDate(0, 0, sign*int(v[1].(int64)))
			if y := d.Year(); y < -4712 || y > 5874897 { // PostgreSQL's dates: 4713 BC to 5874897 AD
				return nil, errorf("22008", "date out of range")
			}
			return d, nil
		})), true, nil
	}
	return nil, false, nil
}
