package query

import (
	"context"
	"encoding/json"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// Views: a named query, stored as its SQL text in the catalog, that a
// FROM clause reads as a subquery (analysed afresh in each statement's
// transaction, so it always reads the tables as they are). Views are read
// only. Nothing records what a view reads: dropping or altering a table
// a view reads succeeds (PostgreSQL refuses without CASCADE), and the
// view then fails when used (42P01, 42703).
//
//	sql/viewdesc/<database>\0<schema>\0<name>  a view's descriptor (JSON)

// ViewDesc describes a view.
type ViewDesc struct {
	ID       uint64 `json:"id"`
	Database string `json:"database"`
	Schema   string `json:"schema"`
	Name     string `json:"name"`
	// Query is the SELECT's SQL text; Columns its output names (the
	// view's column list, or the query's own).
	Query   string   `json:"query"`
	Columns []string `json:"columns"`
	// Types and Mods are the columns' types when the view was made (the
	// catalog shows them; a query reads the types its analysis finds).
	Types []uint32 `json:"types"`
	Mods  []int32  `json:"mods"`
}

const viewDescPrefix = "sql/viewdesc/"

func viewDescKey(database, schema, name string) []byte {
	return []byte(viewDescPrefix + database + "\x00" + schema + "\x00" + name)
}

// viewOID is the OID clients see for a view.
func viewOID(v *ViewDesc) int64 { return 6_000_000 + int64(v.ID) }

// lookupView reads a view's descriptor in the statement's transaction
// (nil: none).
func (a *analyzer) lookupView(schema, name string) (*ViewDesc, error) {
	if a.tx == nil {
		return nil, nil
	}
	b, found, err := a.tx.Get(a.ctx, viewDescKey(a.s.database, schema, name))
	if err != nil || !found {
		return nil, err
	}
	var v ViewDesc
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, errorf("XX001", "could not decode a view descriptor: %v", err)
	}
	return &v, nil
}

// listViews reads every view of a schema, in name order.
func listViews(ctx context.Context, tx *txn.Tx, database, schema string) ([]*ViewDesc, error) {
	var out []*ViewDesc
	err := scanSpan(ctx, tx, viewDescKey(database, schema, ""), append(viewDescKey(database, schema, ""), 0xFF), func(kv storage.KeyValue) error {
		var v ViewDesc
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return errorf("XX001", "could not decode a view descriptor: %v", err)
		}
		out = append(out, &v)
		return nil
	})
	return out, err
}

// viewQuery analyses a view's query for a FROM clause that names it as
// alias ("" for its own name).
func (a *analyzer) viewQuery(v *ViewDesc, alias string) (source, *scope, error) {
	tree, err := pg.Parse(v.Query)
	if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt() == nil {
		return nil, nil, errorf("XX001", "view %q has a query that does not parse: %v", v.Name, err)
	}
	// A view's query sees no CTE and no outer query of the statement
	// that reads it.
	sub := &analyzer{ctx: a.ctx, s: a.s, tx: a.tx}
	p, err := sub.analyzeSelect(tree.Stmts[0].Stmt.GetSelectStmt())
	if err != nil {
		return nil, nil, err
	}
	if p.visible != len(v.Columns) {
		return nil, nil, errorf("42P10", "view %q: its query now has %d columns, not %d (a table it reads changed)", v.Name, p.visible, len(v.Columns))
	}
	a.failed = append(a.failed, sub.failed...)
	if alias == "" {
		alias = v.Name
	}
	sc := &scope{}
	for i := 0; i < p.visible; i++ {
		sc.cols = append(sc.cols, scopeCol{table: alias, name: v.Columns[i], t: p.outputs[i].typ()})
	}
	return p, sc, nil
}

// createView runs CREATE [OR REPLACE] VIEW.
func (a *analyzer) createView(st *pg.ViewStmt) (string, error) {
	switch {
	case st.WithCheckOption != pg.ViewCheckOption_NO_CHECK_OPTION && st.WithCheckOption != pg.ViewCheckOption_VIEW_CHECK_OPTION_UNDEFINED:
		return "", errorf("0A000", "WITH CHECK OPTION is not supported (views are read only)")
	case len(st.Options) > 0:
		return "", errorf("0A000", "view options are not supported")
	case st.View.Relpersistence == "t":
		return "", errorf("0A000", "temporary views are not supported")
	}
	schema := st.View.Schemaname
	if schema == "" {
		schema = "public"
	}
	if schema != "public" {
		return "", errorf("3F000", "schema %q does not exist", schema)
	}
	sel := st.Query.GetSelectStmt()
	if sel == nil {
		return "", errorf("0A000", "a view's query must be a SELECT")
	}
	sub := &analyzer{ctx: a.ctx, s: a.s, tx: a.tx}
	p, err := sub.analyzeSelect(sel)
	if err != nil {
		return "", err
	}
	if len(sub.params) > 0 {
		return "", errorf("42P02", "there is no parameter $1")
	}
	if len(st.Aliases) > p.visible {
		return "", errorf("42601", "CREATE VIEW specifies more column names than columns")
	}
	v := ViewDesc{Database: a.s.database, Schema: schema, Name: st.View.Relname}
	seen := map[string]bool{}
	for i := 0; i < p.visible; i++ {
		name := p.names[i]
		if i < len(st.Aliases) {
			name = stringOf(st.Aliases[i])
		}
		if seen[name] {
			return "", errorf("42701", "column %q specified more than once", name)
		}
		seen[name] = true
		v.Columns = append(v.Columns, name)
		t := p.outputs[i].typ()
		v.Types, v.Mods = append(v.Types, t.OID), append(v.Mods, t.Mod)
	}
	text, err := pg.Deparse(&pg.ParseResult{Version: parserVersion(), Stmts: []*pg.RawStmt{{Stmt: st.Query}}})
	if err != nil {
		return "", errorf("0A000", "could not store the view's query: %v", err)
	}
	v.Query = text
	old, err := a.lookupView(schema, v.Name)
	if err != nil {
		return "", err
	}
	switch {
	case old != nil && !st.Replace:
		return "", errorf("42P07", "relation %q already exists", v.Name)
	case old != nil:
		// PostgreSQL keeps the old columns' names and types and only
		// lets new ones be added; we check the names.
		for i, c := range old.Columns {
			if i >= len(v.Columns) {
				return "", errorf("42P16", "cannot drop columns from view")
			}
			if v.Columns[i] != c {
				return "", errorf("42P16", "cannot change name of view column %q to %q", c, v.Columns[i])
			}
		}
		v.ID = old.ID
	default:
		if exists, err := a.relationExists(schema, v.Name); err != nil {
			return "", err
		} else if exists {
			return "", errorf("42P07", "relation %q already exists", v.Name)
		}
		id, err := nextCounter(a.ctx, a.tx, []byte(idKey))
		if err != nil {
			return "", err
		}
		v.ID = uint64(id)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return "CREATE VIEW", a.tx.Put(a.ctx, viewDescKey(v.Database, v.Schema, v.Name), b)
}

// dropViews runs DROP VIEW.
func (a *analyzer) dropViews(st *pg.DropStmt) (string, error) {
	for _, o := range st.Objects {
		schema, name := objectName(o)
		v, err := a.lookupView(schema, name)
		if err != nil {
			return "", err
		}
		if v == nil {
			if st.MissingOk {
				a.s.notice("00000", "view %q does not exist, skipping", name)
				continue
			}
			return "", errorf("42P01", "view %q does not exist", name)
		}
		if err := a.tx.Delete(a.ctx, viewDescKey(v.Database, v.Schema, v.Name)); err != nil {
			return "", err
		}
	}
	return "DROP VIEW", nil
}

// viewRelations are pg_class's rows for the schema's views.
func viewRelations(c *catalogView) [][]any {
	var out [][]any
	for _, v := range c.views {
		out = append(out, []any{viewOID(v), v.Name, int64(oidPublic), int64(0), int64(0), int64(oidSuperuser), int64(0), int64(0),
			int64(0), int64(0), float64(-1), int64(0), int64(0), false, false,
			"p", "v", int64(len(v.Columns)), int64(0), true, false, false,
			false, false, true, "n", false, int64(0),
			nil, nil, nil})
	}
	return out
}

// viewDef is pg_get_viewdef's text: the query, without its trailing
// semicolon, as psql's \d+ prints it.
func viewDef(v *ViewDesc) string { return " " + strings.TrimSuffix(v.Query, ";") + ";" }

func init() {
	scalarFuncs["pg_get_viewdef"] = func(a *analyzer, args []expr) (expr, error) {
		if len(args) < 1 || len(args) > 2 {
			return nil, nil
		}
		return &funcExpr{args: args[:1], t: TypeText, strict: true, fn: func(env *env, v []any) (any, error) {
			oid, ok := v[0].(int64)
			if !ok {
				return nil, nil
			}
			views, err := listViews(env.run.ctx, env.run.tx, env.session.database, "public")
			if err != nil {
				return nil, err
			}
			for _, view := range views {
				if viewOID(view) == oid {
					return viewDef(view), nil
				}
			}
			return nil, nil
		}}, nil
	}
}
