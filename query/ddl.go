package query

import (
	"strconv"
	"strings"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// createTable runs CREATE TABLE.
func (a *analyzer) createTable(st *pg.CreateStmt) (string, error) {
	switch {
	case len(st.InhRelations) > 0:
		return "", errorf("0A000", "table inheritance is not supported")
	case st.Partspec != nil || st.Partbound != nil:
		return "", errorf("0A000", "partitioned tables are not supported")
	case st.OfTypename != nil:
		return "", errorf("0A000", "typed tables are not supported")
	case st.Relation.Relpersistence == "t":
		return "", errorf("0A000", "temporary tables are not supported")
	}
	for _, o := range st.Options {
		// Storage parameters (fillfactor, ...) tune PostgreSQL's heap:
		// accepted and ignored, as they change nothing a client sees.
		if o.GetDefElem() == nil {
			return "", errorf("0A000", "table option %s is not supported", nodeName(o))
		}
	}
	schema := st.Relation.Schemaname
	if schema == "" {
		schema = "public"
	}
	if schema != "public" {
		return "", withPosition(errorf("3F000", "schema %q does not exist", schema), st.Relation.Location)
	}
	existing, err := lookupTable(a.ctx, a.tx, a.s.database, schema, st.Relation.Relname)
	if err != nil {
		return "", err
	}
	if existing != nil {
		if st.IfNotExists {
			a.s.notice("42P07", "relation %q already exists, skipping", st.Relation.Relname)
			return "CREATE TABLE", nil
		}
		return "", withPosition(errorf("42P07", "relation %q already exists", st.Relation.Relname), st.Relation.Location)
	}
	t := &TableDesc{Database: a.s.database, Schema: schema, Name: st.Relation.Relname, NextColumnID: 1, Version: 1}
	var pk []string
	setPK := func(names []string, loc int32) error {
		if pk != nil {
			return withPosition(errorf("42P16", "multiple primary keys for table %q are not allowed", t.Name), loc)
		}
		pk = names
		return nil
	}
	for _, n := range st.TableElts {
		switch {
		case n.GetColumnDef() != nil:
			cd := n.GetColumnDef()
			if _, dup := t.column(cd.Colname); dup {
				return "", withPosition(errorf("42701", "column %q specified more than once", cd.Colname), cd.Location)
			}
			c, primary, err := a.columnDef(cd)
			if err != nil {
				return "", err
			}
			c.ID = t.NextColumnID
			t.NextColumnID++
			t.Columns = append(t.Columns, c)
			if primary {
				if err := setPK([]string{c.Name}, cd.Location); err != nil {
					return "", err
				}
			}
		case n.GetConstraint() != nil:
			con := n.GetConstraint()
			if con.Contype != pg.ConstrType_CONSTR_PRIMARY {
				return "", withPosition(errorf("0A000", "table constraint %s is not supported yet", constraintName(con.Contype)), con.Location)
			}
			var names []string
			for _, k := range con.Keys {
				names = append(names, stringOf(k))
			}
			if err := setPK(names, con.Location); err != nil {
				return "", err
			}
		default:
			return "", errorf("0A000", "table element %s is not supported", nodeName(n))
		}
	}
	if len(t.Columns) == 0 {
		return "", errorf("0A000", "tables without columns are not supported")
	}
	if pk == nil {
		// No primary key: rows are keyed by a hidden unique rowid, as
		// CockroachDB does.
		name := "rowid"
		for _, taken := t.column(name); taken; _, taken = t.column(name) {
			name = "_" + name
		}
		t.Columns = append(t.Columns, ColumnDesc{ID: t.NextColumnID, Name: name, TypeOID: TypeInt8.OID, TypeMod: -1, Type: TypeInt8, NotNull: true, Hidden: true})
		t.NextColumnID++
		pk = []string{name}
	}
	for _, name := range pk {
		i, ok := t.column(name)
		if !ok {
			return "", errorf("42703", "column %q named in key does not exist", name)
		}
		c := &t.Columns[i]
		if !keyable(c.Type) {
			return "", errorf("0A000", "a primary key on a %s column is not supported", c.Type.shortName())
		}
		for _, id := range t.PrimaryKey {
			if id == c.ID {
				return "", errorf("42701", "column %q appears twice in primary key constraint", name)
			}
		}
		c.NotNull = true
		t.PrimaryKey = append(t.PrimaryKey, c.ID)
	}
	// Defaults must analyse now: a bad one is refused here, not at the
	// first insert.
	if _, err := a.defaults(t); err != nil {
		return "", err
	}
	id, err := nextCounter(a.ctx, a.tx, []byte(idKey))
	if err != nil {
		return "", err
	}
	t.ID = uint64(id)
	return "CREATE TABLE", putTable(a.ctx, a.tx, t)
}

func constraintName(t pg.ConstrType) string {
	return strings.TrimPrefix(t.String(), "CONSTR_")
}

// columnDef reads a column definition; primary says it is the key.
func (a *analyzer) columnDef(cd *pg.ColumnDef) (c ColumnDesc, primary bool, err error) {
	c.Name = cd.Colname
	names := cd.TypeName.Names
	last := stringOf(names[len(names)-1])
	serial := map[string]Type{"serial": TypeInt4, "serial4": TypeInt4, "bigserial": TypeInt8, "serial8": TypeInt8, "smallserial": TypeInt2, "serial2": TypeInt2}
	if t, ok := serial[last]; ok && len(names) == 1 {
		c.Type, c.Serial, c.NotNull = t, true, true
	} else if c.Type, err = typeOf(cd.TypeName); err != nil {
		return c, false, err
	}
	c.TypeOID, c.TypeMod = c.Type.OID, c.Type.Mod
	if cd.RawDefault != nil {
		return c, false, errorf("0A000", "column default form is not supported")
	}
	for _, n := range cd.Constraints {
		con := n.GetConstraint()
		switch con.Contype {
		case pg.ConstrType_CONSTR_NOTNULL:
			c.NotNull = true
		case pg.ConstrType_CONSTR_NULL:
			if c.NotNull && !c.Serial {
				return c, false, withPosition(errorf("42601", "conflicting NULL/NOT NULL declarations for column %q", c.Name), con.Location)
			}
		case pg.ConstrType_CONSTR_PRIMARY:
			primary = true
		case pg.ConstrType_CONSTR_DEFAULT:
			if c.Serial {
				return c, false, withPosition(errorf("42601", "multiple default values specified for column %q of table", c.Name), con.Location)
			}
			if c.Default, err = deparseExpr(con.RawExpr); err != nil {
				return c, false, err
			}
		case pg.ConstrType_CONSTR_IDENTITY:
			if c.Type.family() != famInt {
				return c, false, withPosition(errorf("22023", "identity column type must be smallint, integer, or bigint"), con.Location)
			}
			c.Serial, c.NotNull = true, true
		default:
			return c, false, withPosition(errorf("0A000", "column constraint %s is not supported yet", constraintName(con.Contype)), con.Location)
		}
	}
	return c, primary, nil
}

// parserVersion is the parse trees' version (Deparse checks it).
var parserVersion = sync.OnceValue(func() int32 {
	tree, err := pg.Parse("SELECT 1")
	if err != nil {
		panic("query: the parser fails on SELECT 1: " + err.Error())
	}
	return tree.Version
})

// deparseExpr is an expression's SQL text (stored as a column default).
func deparseExpr(n *pg.Node) (string, error) {
	sel := &pg.SelectStmt{TargetList: []*pg.Node{pg.MakeResTargetNodeWithVal(n, 0)}}
	out, err := pg.Deparse(&pg.ParseResult{Version: parserVersion(), Stmts: []*pg.RawStmt{{Stmt: &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: sel}}}}})
	if err != nil {
		return "", errorf("0A000", "could not store the default expression: %v", err)
	}
	return strings.TrimPrefix(out, "SELECT "), nil
}

// dropTable runs DROP TABLE: the descriptor and every row go in one
// transaction.
func (a *analyzer) dropTable(st *pg.DropStmt) (string, error) {
	if st.RemoveType != pg.ObjectType_OBJECT_TABLE {
		return "", errorf("0A000", "DROP %s is not supported", strings.TrimPrefix(st.RemoveType.String(), "OBJECT_"))
	}
	// Nothing depends on a table yet (no views, no foreign keys): CASCADE
	// drops what RESTRICT would.
	var tables []*TableDesc
	for _, o := range st.Objects {
		var names []string
		for _, n := range o.GetList().Items {
			names = append(names, stringOf(n))
		}
		rv := &pg.RangeVar{Relname: names[len(names)-1], Location: -1}
		if len(names) > 1 {
			rv.Schemaname = names[len(names)-2]
		}
		t, err := a.table(rv)
		if err != nil {
			if e, ok := err.(*Error); ok && e.Code == "42P01" && st.MissingOk {
				e.Code, e.Severity, e.Message = "00000", "NOTICE", "table "+strconv.Quote(rv.Relname)+" does not exist, skipping"
				a.s.notices = append(a.s.notices, e)
				continue
			}
			return "", err
		}
		tables = append(tables, t)
	}
	for _, t := range tables {
		if err := a.deleteRows(t); err != nil {
			return "", err
		}
		for _, c := range t.Columns {
			if c.Serial {
				if err := a.tx.Delete(a.ctx, serialKey(t.ID, c.ID)); err != nil {
					return "", err
				}
			}
		}
		if err := a.tx.Delete(a.ctx, descKey(t.Database, t.Schema, t.Name)); err != nil {
			return "", err
		}
	}
	return "DROP TABLE", nil
}

// deleteRows deletes every row of t.
func (a *analyzer) deleteRows(t *TableDesc) error {
	start, end := tablePrefix(t.ID), tablePrefix(t.ID+1)
	for {
		kvs, err := a.tx.Scan(a.ctx, start, end, scanPage)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := a.tx.Delete(a.ctx, kv.Key); err != nil {
				return err
			}
		}
		if len(kvs) < scanPage {
			break
		}
		start = append(kvs[len(kvs)-1].Key, 0)
	}
	return nil
}

// truncate runs TRUNCATE: the rows go; serials go on from where they
// were (RESTART IDENTITY is refused).
func (a *analyzer) truncate(st *pg.TruncateStmt) (string, error) {
	if st.RestartSeqs {
		return "", errorf("0A000", "TRUNCATE ... RESTART IDENTITY is not supported")
	}
	for _, n := range st.Relations {
		t, err := a.table(n.GetRangeVar())
		if err != nil {
			return "", err
		}
		if err := a.deleteRows(t); err != nil {
			return "", err
		}
	}
	return "TRUNCATE TABLE", nil
}
