package query

import (
	"fmt"
	"slices"
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
	existing, err := a.relationExists(schema, st.Relation.Relname)
	if err != nil {
		return "", err
	}
	if existing {
		if st.IfNotExists {
			a.s.notice("42P07", "relation %q already exists, skipping", st.Relation.Relname)
			return "CREATE TABLE", nil
		}
		return "", withPosition(errorf("42P07", "relation %q already exists", st.Relation.Relname), st.Relation.Location)
	}
	t := &TableDesc{Database: a.s.database, Schema: schema, Name: st.Relation.Relname, NextColumnID: 1, Version: 1, Owner: a.s.user}
	var pk []string
	var uniques []*pg.Constraint // table and column UNIQUE constraints, keys filled in
	type check struct {
		con    *pg.Constraint
		column string // "" for a table constraint
	}
	var checks []check
	var fks []check // FOREIGN KEY constraints (column: a column's own REFERENCES)
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
			if _, dup := t.columnNamed(cd.Colname); dup {
				return "", withPosition(errorf("42701", "column %q specified more than once", cd.Colname), cd.Location)
			}
			c, primary, err := a.columnDef(cd)
			if err != nil {
				return "", err
			}
			c.ID = t.NextColumnID
			t.NextColumnID++
			t.Columns = append(t.Columns, c)
			for _, n := range cd.Constraints {
				if con := n.GetConstraint(); con.Contype == pg.ConstrType_CONSTR_CHECK {
					checks = append(checks, check{con, c.Name})
				}
				if con := n.GetConstraint(); con.Contype == pg.ConstrType_CONSTR_FOREIGN {
					fks = append(fks, check{con, c.Name})
				}
				if con := n.GetConstraint(); con.Contype == pg.ConstrType_CONSTR_UNIQUE {
					uniques = append(uniques, &pg.Constraint{Contype: con.Contype, Conname: con.Conname, Location: con.Location,
						Deferrable: con.Deferrable, NullsNotDistinct: con.NullsNotDistinct, Including: con.Including,
						Keys: []*pg.Node{pg.MakeStrNode(c.Name)}})
				}
			}
			if primary {
				if err := setPK([]string{c.Name}, cd.Location); err != nil {
					return "", err
				}
			}
		case n.GetConstraint() != nil:
			con := n.GetConstraint()
			if con.Contype == pg.ConstrType_CONSTR_UNIQUE {
				uniques = append(uniques, con)
				continue
			}
			if con.Contype == pg.ConstrType_CONSTR_CHECK {
				checks = append(checks, check{con, ""})
				continue
			}
			if con.Contype == pg.ConstrType_CONSTR_FOREIGN {
				fks = append(fks, check{con, ""})
				continue
			}
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
		for _, taken := t.columnNamed(name); taken; _, taken = t.columnNamed(name) {
			name = "_" + name
		}
		t.Columns = append(t.Columns, ColumnDesc{ID: t.NextColumnID, Name: name, TypeOID: TypeInt8.OID, TypeMod: -1, Type: TypeInt8, NotNull: true, Hidden: true})
		t.NextColumnID++
		pk = []string{name}
	}
	for _, name := range pk {
		i, ok := t.columnNamed(name)
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
	taken := map[string]bool{t.pkName(): !hiddenKey(t), t.Name: true}
	for _, con := range uniques {
		var names []string
		for _, k := range con.Keys {
			names = append(names, stringOf(k))
		}
		if _, err := a.uniqueConstraint(t, con, names, taken); err != nil {
			return "", err
		}
	}
	checkNames := map[string]bool{}
	for _, c := range checks {
		if err := a.addCheck(t, c.con, c.column, checkNames, false); err != nil {
			return "", err
		}
	}
	for _, c := range fks {
		if err := a.addForeignKey(t, c.con, fkColumns(c.con, c.column), checkNames, false); err != nil {
			return "", err
		}
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
		case pg.ConstrType_CONSTR_UNIQUE, pg.ConstrType_CONSTR_CHECK, pg.ConstrType_CONSTR_FOREIGN:
			// The table's (createTable and addColumn add them).
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

// objectName is a DROP statement's object's schema ("public" unless
// named) and name.
func objectName(o *pg.Node) (schema, name string) {
	var names []string
	for _, n := range o.GetList().Items {
		names = append(names, stringOf(n))
	}
	schema, name = "public", names[len(names)-1]
	if len(names) > 1 {
		schema = names[len(names)-2]
	}
	return schema, name
}

// dropTable runs DROP TABLE: the descriptor and every row go in one
// transaction.
func (a *analyzer) dropTable(st *pg.DropStmt) (string, error) {
	switch st.RemoveType {
	case pg.ObjectType_OBJECT_INDEX:
		return a.dropIndexes(st)
	case pg.ObjectType_OBJECT_SEQUENCE:
		return a.dropSequences(st)
	case pg.ObjectType_OBJECT_VIEW:
		return a.dropViews(st)
	}
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
		if err := a.requireOwner(t); err != nil {
			return "", err
		}
		tables = append(tables, t)
	}
	if err := a.dropReferences(tables, st.Behavior == pg.DropBehavior_DROP_CASCADE); err != nil {
		return "", err
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

// deleteRows deletes every row of t, and every index entry.
func (a *analyzer) deleteRows(t *TableDesc) error {
	if err := a.deleteSpan(tablePrefix(t.ID), tablePrefix(t.ID+1)); err != nil {
		return err
	}
	for i := range t.Indexes {
		if err := a.deleteIndex(t, &t.Indexes[i]); err != nil {
			return err
		}
	}
	return nil
}

// truncate runs TRUNCATE: the rows go; serials go on from where they
// were (RESTART IDENTITY is refused).
func (a *analyzer) truncate(st *pg.TruncateStmt) (string, error) {
	if st.RestartSeqs {
		return "", errorf("0A000", "TRUNCATE ... RESTART IDENTITY is not supported")
	}
	var tables []*TableDesc
	for _, n := range st.Relations {
		t, err := a.table(n.GetRangeVar())
		if err != nil {
			return "", err
		}
		if err := a.require(t, "TRUNCATE"); err != nil {
			return "", err
		}
		tables = append(tables, t)
	}
	names := map[string]bool{}
	for _, t := range tables {
		names[t.Name] = true
	}
	for _, t := range tables {
		for _, child := range t.ReferencedBy {
			if !names[child] {
				e := errorf("0A000", "cannot truncate a table referenced in a foreign key constraint")
				e.Detail = fmt.Sprintf("Table %q references %q.", child, t.Name)
				e.Hint = fmt.Sprintf("Truncate table %q at the same time.", child)
				return "", e
			}
		}
		if err := a.deleteRows(t); err != nil {
			return "", err
		}
	}
	return "TRUNCATE TABLE", nil
}

// alterTable runs ALTER TABLE's subcommands, all in the statement's
// transaction, each changing the descriptor (and rows, where it must).
func (a *analyzer) alterTable(st *pg.AlterTableStmt) (string, error) {
	if st.Objtype != pg.ObjectType_OBJECT_TABLE {
		return "", errorf("0A000", "ALTER %s is not supported", strings.TrimPrefix(st.Objtype.String(), "OBJECT_"))
	}
	t, err := a.table(st.Relation)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == "42P01" && st.MissingOk {
			a.s.notice("00000", "relation %q does not exist, skipping", st.Relation.Relname)
			return "ALTER TABLE", nil
		}
		return "", err
	}
	if err := a.requireOwner(t); err != nil {
		return "", err
	}
	for _, n := range st.Cmds {
		cmd := n.GetAlterTableCmd()
		if err := a.alterCommand(t, cmd); err != nil {
			return "", err
		}
	}
	t.Version++
	return "ALTER TABLE", putTable(a.ctx, a.tx, t)
}

func (a *analyzer) alterCommand(t *TableDesc, cmd *pg.AlterTableCmd) error {
	col := func() (int, error) {
		i, ok := t.columnNamed(cmd.Name)
		if !ok || t.Columns[i].Hidden {
			return -1, errorf("42703", "column %q of relation %q does not exist", cmd.Name, t.Name)
		}
		return i, nil
	}
	switch cmd.Subtype {
	case pg.AlterTableType_AT_AddColumn:
		return a.addColumn(t, cmd.Def.GetColumnDef(), cmd.MissingOk)
	case pg.AlterTableType_AT_DropColumn:
		i, ok := t.columnNamed(cmd.Name)
		if !ok || t.Columns[i].Hidden {
			if cmd.MissingOk {
				a.s.notice("00000", "column %q of relation %q does not exist, skipping", cmd.Name, t.Name)
				return nil
			}
			return errorf("42703", "column %q of relation %q does not exist", cmd.Name, t.Name)
		}
		if slices.Contains(t.PrimaryKey, t.Columns[i].ID) {
			return errorf("2BP01", "cannot drop column %s of table %s because other objects depend on it", cmd.Name, t.Name)
		}
		c := t.Columns[i]
		if c.Serial {
			if err := a.tx.Delete(a.ctx, serialKey(t.ID, c.ID)); err != nil {
				return err
			}
		}
		// PostgreSQL drops the indexes (and UNIQUE constraints) that
		// name the column with it.
		t.Checks = slices.DeleteFunc(t.Checks, func(k CheckDesc) bool { return slices.Contains(k.Columns, c.ID) })
		if err := a.dropColumnReferences(t, c); err != nil {
			return err
		}
		for j := len(t.Indexes) - 1; j >= 0; j-- {
			if slices.Contains(t.Indexes[j].Columns, c.ID) {
				if err := a.deleteIndex(t, &t.Indexes[j]); err != nil {
					return err
				}
				t.Indexes = slices.Delete(t.Indexes, j, j+1)
			}
		}
		c.Missing, c.Default, c.Serial = nil, "", false
		t.Dropped = append(t.Dropped, c)
		t.Columns = slices.Delete(t.Columns, i, i+1)
		return nil
	case pg.AlterTableType_AT_ColumnDefault:
		i, err := col()
		if err != nil {
			return err
		}
		c := &t.Columns[i]
		if cmd.Def == nil {
			c.Default, c.Serial = "", false
			return nil
		}
		d, err := deparseExpr(cmd.Def)
		if err != nil {
			return err
		}
		c.Default, c.Serial = d, false
		_, err = a.defaultExpr(*c)
		return err
	case pg.AlterTableType_AT_DropNotNull:
		i, err := col()
		if err != nil {
			return err
		}
		if slices.Contains(t.PrimaryKey, t.Columns[i].ID) {
			return errorf("42P16", "column %q is in a primary key", cmd.Name)
		}
		t.Columns[i].NotNull = false
		return nil
	case pg.AlterTableType_AT_SetNotNull:
		i, err := col()
		if err != nil {
			return err
		}
		rows, err := a.allRows(t)
		if err != nil {
			return err
		}
		for _, row := range rows {
			if row[i] == nil {
				return errorf("23502", "column %q of relation %q contains null values", cmd.Name, t.Name)
			}
		}
		t.Columns[i].NotNull = true
		return nil
	case pg.AlterTableType_AT_AddConstraint:
		con := cmd.Def.GetConstraint()
		if con != nil && con.Contype == pg.ConstrType_CONSTR_CHECK {
			return a.addCheck(t, con, "", map[string]bool{}, true)
		}
		if con != nil && con.Contype == pg.ConstrType_CONSTR_FOREIGN {
			return a.addForeignKey(t, con, fkColumns(con, ""), map[string]bool{}, true)
		}
		if con != nil && con.Contype == pg.ConstrType_CONSTR_UNIQUE {
			var names []string
			for _, k := range con.Keys {
				names = append(names, stringOf(k))
			}
			ix, err := a.uniqueConstraint(t, con, names, map[string]bool{})
			if err != nil {
				return err
			}
			return a.backfill(t, ix)
		}
		if con == nil || con.Contype != pg.ConstrType_CONSTR_PRIMARY {
			return errorf("0A000", "ALTER TABLE ADD CONSTRAINT of this kind is not supported yet")
		}
		var names []string
		for _, k := range con.Keys {
			names = append(names, stringOf(k))
		}
		return a.addPrimaryKey(t, names)
	case pg.AlterTableType_AT_DropConstraint:
		if i := slices.IndexFunc(t.Checks, func(c CheckDesc) bool { return c.Name == cmd.Name }); i >= 0 {
			t.Checks = slices.Delete(t.Checks, i, i+1)
			return nil
		}
		if i := slices.IndexFunc(t.ForeignKeys, func(fk ForeignKeyDesc) bool { return fk.Name == cmd.Name }); i >= 0 {
			return a.dropForeignKey(t, i)
		}
		ix := t.indexNamed(cmd.Name)
		if ix == nil || !ix.Constraint {
			if !hiddenKey(t) && cmd.Name == t.pkName() {
				return errorf("0A000", "dropping a primary key is not supported")
			}
			if cmd.MissingOk {
				a.s.notice("00000", "constraint %q of relation %q does not exist, skipping", cmd.Name, t.Name)
				return nil
			}
			return errorf("42704", "constraint %q of relation %q does not exist", cmd.Name, t.Name)
		}
		if err := a.deleteIndex(t, ix); err != nil {
			return err
		}
		i := slices.IndexFunc(t.Indexes, func(x IndexDesc) bool { return x.ID == ix.ID })
		t.Indexes = slices.Delete(t.Indexes, i, i+1)
		return nil
	}
	return errorf("0A000", "ALTER TABLE %s is not supported", strings.TrimPrefix(cmd.Subtype.String(), "AT_"))
}

// addColumn adds a column: rows written before it read its default,
// evaluated once now (PostgreSQL's fast default), or NULL.
func (a *analyzer) addColumn(t *TableDesc, cd *pg.ColumnDef, ifNotExists bool) error {
	if _, taken := t.columnNamed(cd.Colname); taken {
		if ifNotExists {
			a.s.notice("42701", "column %q of relation %q already exists, skipping", cd.Colname, t.Name)
			return nil
		}
		return errorf("42701", "column %q of relation %q already exists", cd.Colname, t.Name)
	}
	c, primary, err := a.columnDef(cd)
	if err != nil {
		return err
	}
	if primary {
		return errorf("42P16", "multiple primary keys for table %q are not allowed", t.Name)
	}
	if c.Serial {
		return errorf("0A000", "ALTER TABLE ADD COLUMN of a serial or identity column is not supported yet")
	}
	c.ID = t.NextColumnID
	t.NextColumnID++
	var missing any
	if c.Default != "" {
		x, err := a.defaultExpr(c)
		if err != nil {
			return err
		}
		env := &env{now: a.s.now(), session: a.s}
		if missing, err = x.eval(env, nil); err != nil {
			return err
		}
	}
	if missing != nil {
		c.Missing = encodeValue(missing)
	} else if c.NotNull {
		// A NOT NULL column without a default needs an empty table.
		rows, err := a.allRows(t)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			return errorf("23502", "column %q of relation %q contains null values", c.Name, t.Name)
		}
	}
	t.Columns = append(t.Columns, c)
	for _, n := range cd.Constraints {
		if con := n.GetConstraint(); con.Contype == pg.ConstrType_CONSTR_CHECK {
			if err := a.addCheck(t, con, c.Name, map[string]bool{}, true); err != nil {
				return err
			}
		}
		if con := n.GetConstraint(); con.Contype == pg.ConstrType_CONSTR_FOREIGN {
			if err := a.addForeignKey(t, con, []string{c.Name}, map[string]bool{}, true); err != nil {
				return err
			}
		}
		if con := n.GetConstraint(); con.Contype == pg.ConstrType_CONSTR_UNIQUE {
			ix, err := a.uniqueConstraint(t, con, []string{c.Name}, map[string]bool{})
			if err != nil {
				return err
			}
			if err := a.backfill(t, ix); err != nil {
				return err
			}
		}
	}
	return nil
}

// addPrimaryKey gives a table keyed by its hidden rowid a primary key:
// every row moves to its new key, and every index is rebuilt, in this
// transaction.
func (a *analyzer) addPrimaryKey(t *TableDesc, names []string) error {
	if !hiddenKey(t) {
		return errorf("42P16", "multiple primary keys for table %q are not allowed", t.Name)
	}
	rows, err := a.allRows(t)
	if err != nil {
		return err
	}
	old := *t
	old.Columns = slices.Clone(t.Columns)
	var key []uint32
	for _, name := range names {
		i, ok := t.columnNamed(name)
		if !ok || t.Columns[i].Hidden {
			return errorf("42703", "column %q of relation %q does not exist", name, t.Name)
		}
		if !keyable(t.Columns[i].Type) {
			return errorf("0A000", "a primary key on a %s column is not supported", t.Columns[i].Type.shortName())
		}
		key = append(key, t.Columns[i].ID)
	}
	hidden := columnIndex(t.Columns, t.PrimaryKey[0])
	t.PrimaryKey = key
	for _, id := range key {
		t.Columns[columnIndex(t.Columns, id)].NotNull = true
	}
	seen := map[string]bool{}
	for _, row := range rows {
		for _, i := range t.pkIndexes() {
			if row[i] == nil {
				return errorf("23502", "column %q of relation %q contains null values", t.Columns[i].Name, t.Name)
			}
		}
		k := t.rowKey(row)
		if seen[string(k)] {
			e := errorf("23505", "could not create unique index %q", t.pkName())
			e.Detail = strings.TrimSuffix(duplicateKey(t, row).Detail, " already exists.") + " is duplicated."
			return e
		}
		seen[string(k)] = true
	}
	// The rows move: old keys out, then new keys in, without the rowid.
	dropped := t.Columns[hidden]
	t.Columns = slices.Delete(t.Columns, hidden, hidden+1)
	t.Dropped = append(t.Dropped, dropped)
	for _, row := range rows {
		if err := a.tx.Delete(a.ctx, old.rowKey(row)); err != nil {
			return err
		}
	}
	for _, row := range rows {
		row = slices.Delete(slices.Clone(row), hidden, hidden+1)
		if err := a.tx.Put(a.ctx, t.rowKey(row), encodeRow(t.Columns, row)); err != nil {
			return err
		}
	}
	// Index entries end with (and point at) the old keys: rebuilt.
	for i := range t.Indexes {
		if err := a.deleteIndex(t, &t.Indexes[i]); err != nil {
			return err
		}
		if err := a.backfill(t, &t.Indexes[i]); err != nil {
			return err
		}
	}
	return nil
}

// allRows reads every row of t in the statement's transaction.
func (a *analyzer) allRows(t *TableDesc) ([][]any, error) {
	r := &run{ctx: a.ctx, tx: a.tx, env: &env{session: a.s}}
	return (&tableScan{t: t, maxRows: a.s.e.opts.MaxRows}).rows(r)
}

// rename runs ALTER TABLE ... RENAME [COLUMN] ... TO ....
func (a *analyzer) rename(st *pg.RenameStmt) (string, error) {
	t, err := a.table(st.Relation)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == "42P01" && st.MissingOk {
			a.s.notice("00000", "relation %q does not exist, skipping", st.Relation.Relname)
			return "ALTER TABLE", nil
		}
		return "", err
	}
	if err := a.requireOwner(t); err != nil {
		return "", err
	}
	switch st.RenameType {
	case pg.ObjectType_OBJECT_COLUMN:
		i, ok := t.columnNamed(st.Subname)
		if !ok || t.Columns[i].Hidden {
			return "", errorf("42703", "column %q does not exist", st.Subname)
		}
		if _, taken := t.columnNamed(st.Newname); taken {
			return "", errorf("42701", "column %q of relation %q already exists", st.Newname, t.Name)
		}
		t.Columns[i].Name = st.Newname
	case pg.ObjectType_OBJECT_TABLE:
		other, err := lookupTable(a.ctx, a.tx, t.Database, t.Schema, st.Newname)
		if err != nil {
			return "", err
		}
		if other != nil || pgCatalog[st.Newname] != nil {
			return "", errorf("42P07", "relation %q already exists", st.Newname)
		}
		if err := a.tx.Delete(a.ctx, descKey(t.Database, t.Schema, t.Name)); err != nil {
			return "", err
		}
		if err := a.renameReferences(t, st.Newname); err != nil {
			return "", err
		}
		t.Name = st.Newname
	default:
		return "", errorf("0A000", "ALTER ... RENAME of %s is not supported", strings.TrimPrefix(st.RenameType.String(), "OBJECT_"))
	}
	t.Version++
	return "ALTER TABLE", putTable(a.ctx, a.tx, t)
}

// vacuum runs VACUUM and ANALYZE: there is nothing for them to do (old
// versions are collected by every node's garbage collection pass, and the
// planner keeps no statistics), which a notice says; the tables they name
// must exist, as in PostgreSQL.
func (a *analyzer) vacuum(st *pg.VacuumStmt) (string, error) {
	verb := "ANALYZE"
	if st.IsVacuumcmd {
		verb = "VACUUM"
	}
	for _, n := range st.Rels {
		if _, err := a.table(n.GetVacuumRelation().GetRelation()); err != nil {
			return "", err
		}
	}
	if st.IsVacuumcmd {
		a.s.notice("00000", "VACUUM does nothing in Orbit: each node collects old versions by itself (every 10 minutes, those older than 25 hours)")
	} else {
		a.s.notice("00000", "ANALYZE does nothing in Orbit: the planner keeps no statistics")
	}
	return verb, nil
}
