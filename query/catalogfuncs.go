package query

import (
	"slices"
	"strconv"
	"strings"
)

// The functions clients call on the system catalogs (psql's describe
// commands, drivers' probes).
func init() {
	constant := func(t Type, v any, arity ...int) scalarFunc {
		return func(a *analyzer, args []expr) (expr, error) {
			if !slices.Contains(arity, len(args)) {
				return nil, nil
			}
			return &funcExpr{args: args, t: t, fn: func(*env, []any) (any, error) { return v, nil }}, nil
		}
	}
	for name, f := range map[string]scalarFunc{
		"pg_table_is_visible":             constant(TypeBool, true, 1),
		"pg_type_is_visible":              constant(TypeBool, true, 1),
		"pg_relation_is_publishable":      constant(TypeBool, false, 1),
		"has_table_privilege":             constant(TypeBool, true, 2, 3),
		"has_schema_privilege":            constant(TypeBool, true, 2, 3),
		"has_database_privilege":          constant(TypeBool, true, 2, 3),
		"pg_is_in_recovery":               constant(TypeBool, false, 0),
		"obj_description":                 constant(TypeText, nil, 1, 2),
		"col_description":                 constant(TypeText, nil, 2),
		"shobj_description":               constant(TypeText, nil, 2),
		"pg_get_statisticsobjdef_columns": constant(TypeText, nil, 1),
		"pg_get_userbyid": func(a *analyzer, args []expr) (expr, error) {
			if len(args) != 1 {
				return nil, nil
			}
			return strict(args, TypeName, func(v []any) (any, error) {
				if id, ok := v[0].(int64); ok && id == oidSuperuser {
					return defaultUser, nil
				}
				return "unknown (OID=" + textOf(TypeOid, v[0]) + ")", nil
			}), nil
		},
		"pg_encoding_to_char": func(a *analyzer, args []expr) (expr, error) {
			if len(args) != 1 {
				return nil, nil
			}
			return strict(args, TypeName, func(v []any) (any, error) {
				if n, ok := v[0].(int64); ok && n == 6 {
					return "UTF8", nil
				}
				return "", nil
			}), nil
		},
		"format_type": func(a *analyzer, args []expr) (expr, error) {
			if len(args) != 2 {
				return nil, nil
			}
			return &funcExpr{args: args, t: TypeText, fn: func(_ *env, v []any) (any, error) {
				if v[0] == nil {
					return nil, nil
				}
				oid := uint32(v[0].(int64))
				t, ok := typesByOID[oid]
				if !ok {
					return "???", nil
				}
				if mod, ok := v[1].(int64); ok && mod >= 4 {
					t = t.withMod(int32(mod) - 4)
				}
				return t.String(), nil
			}}, nil
		},
		"pg_get_expr": func(a *analyzer, args []expr) (expr, error) {
			if len(args) < 2 || len(args) > 3 {
				return nil, nil
			}
			return strict(args[:1], TypeText, func(v []any) (any, error) { return v[0], nil }), nil
		},
		"pg_get_indexdef":      catalogText(indexDef, 1, 3),
		"pg_get_constraintdef": catalogText(constraintDef, 1, 2),
		"current_setting": func(a *analyzer, args []expr) (expr, error) {
			if len(args) < 1 || len(args) > 2 {
				return nil, nil
			}
			args, err := a.textArgs(args[:1])
			if err != nil {
				return nil, err
			}
			return &funcExpr{args: args, t: TypeText, strict: true, fn: func(env *env, v []any) (any, error) {
				return env.session.show(v[0].(string))
			}}, nil
		},
		"quote_ident": stringFunc(quoteIdent, TypeText),
	} {
		scalarFuncs[name] = f
	}
}

// catalogObject is an index or a constraint of t, as the catalog
// functions describe it: the primary key's (ix and check nil), a
// secondary index's or UNIQUE constraint's (ix), a CHECK constraint.
type catalogObject struct {
	t     *TableDesc
	ix    *IndexDesc
	check *CheckDesc
	// fk is a foreign key, whose parent is among tables.
	fk     *ForeignKeyDesc
	tables []*TableDesc
	// pretty: the function's last argument asked for the pretty form
	// (pg_get_constraintdef(oid, true), as psql asks).
	pretty bool
}

// catalogText is a function of an index's or a constraint's OID that
// reads the catalog.
func catalogText(fn func(o catalogObject) string, arities ...int) scalarFunc {
	return func(a *analyzer, args []expr) (expr, error) {
		if len(args) < arities[0] || len(args) > arities[1] {
			return nil, nil
		}
		return &funcExpr{args: args, t: TypeText, strict: true, fn: func(env *env, v []any) (any, error) {
			oid, ok := v[0].(int64)
			if !ok {
				return nil, nil
			}
			pretty := len(v) > 1 && v[len(v)-1] == true
			tables, err := listTables(env.run.ctx, env.run.tx, env.session.database, "public")
			if err != nil {
				return nil, err
			}
			for _, t := range tables {
				if oid == indexOID(t) || oid == constraintOID(t) {
					return fn(catalogObject{t: t, pretty: pretty}), nil
				}
				for i := range t.Indexes {
					if ix := &t.Indexes[i]; oid == secondaryOID(t, ix) || oid == secondaryConstraintOID(t, ix) {
						return fn(catalogObject{t: t, ix: ix, pretty: pretty}), nil
					}
				}
				for i := range t.Checks {
					if oid == checkOID(t, i) {
						return fn(catalogObject{t: t, check: &t.Checks[i], pretty: pretty}), nil
					}
				}
				for i := range t.ForeignKeys {
					if oid == foreignKeyOID(t, i) {
						return fn(catalogObject{t: t, fk: &t.ForeignKeys[i], tables: tables, pretty: pretty}), nil
					}
				}
			}
			return nil, nil
		}}, nil
	}
}

// keyColumns are the quoted names of ix's columns (nil: the primary
// key's).
func keyColumns(t *TableDesc, ix *IndexDesc) string {
	var names []string
	if ix == nil {
		for _, i := range t.pkIndexes() {
			names = append(names, quoteIdent(t.Columns[i].Name).(string))
		}
	} else {
		for _, id := range ix.Columns {
			names = append(names, quoteIdent(t.Columns[columnIndex(t.Columns, id)].Name).(string))
		}
	}
	return strings.Join(names, ", ")
}

func indexDef(o catalogObject) string {
	t, ix := o.t, o.ix
	if o.check != nil || o.fk != nil {
		return ""
	}
	name, unique := t.pkName(), "UNIQUE "
	if ix != nil {
		name = ix.Name
		if !ix.Unique {
			unique = ""
		}
	}
	return "CREATE " + unique + "INDEX " + quoteIdent(name).(string) + " ON " + t.Schema + "." + quoteIdent(t.Name).(string) + " USING btree (" + keyColumns(t, ix) + ")"
}

func constraintDef(o catalogObject) string {
	switch {
	case o.fk != nil:
		var parent *TableDesc
		for _, p := range o.tables {
			if p.Name == o.fk.Parent {
				parent = p
			}
		}
		return foreignKeyDef(o.t, o.fk, parent)
	case o.check != nil && o.pretty:
		return "CHECK (" + o.check.Expr + ")"
	case o.check != nil:
		return "CHECK ((" + o.check.Expr + "))"
	case o.ix != nil:
		return "UNIQUE (" + keyColumns(o.t, o.ix) + ")"
	}
	return "PRIMARY KEY (" + keyColumns(o.t, nil) + ")"
}

// quoteIdent quotes a name unless it is a plain lower-case identifier.
func quoteIdent(s string) any {
	plain := s != ""
	for i, c := range s {
		if !(c == '_' || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9')) {
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// regclassOf reads a table's name (or OID) as its regclass OID.
func regclassOf(env *env, name string) (any, error) {
	if n, err := strconv.ParseInt(name, 10, 64); err == nil {
		return n, nil
	}
	schema, table, ok := strings.Cut(name, ".")
	if !ok {
		schema, table = "", name
	}
	if _, ok := virtualTableOf(schema, table); ok {
		return nil, errorf("0A000", "the OIDs of system catalogs are not supported")
	}
	tables, err := listTables(env.run.ctx, env.run.tx, env.session.database, "public")
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if schema != "" && schema != t.Schema {
			continue
		}
		if t.Name == table {
			return int64(tableOID(t)), nil
		}
		if !hiddenKey(t) && t.pkName() == table {
			return indexOID(t), nil
		}
		if ix := t.indexNamed(table); ix != nil {
			return secondaryOID(t, ix), nil
		}
	}
	seqs, err := listSequences(env.run.ctx, env.run.tx, env.session.database, "public")
	if err != nil {
		return nil, err
	}
	for _, s := range seqs {
		if s.desc.Name == table {
			return s.oid, nil
		}
	}
	return nil, errorf("42P01", "relation %q does not exist", name)
}

// regclassText is a regclass's name (its OID when no table has it).
func regclassText(env *env, oid int64) (any, error) {
	tables, err := listTables(env.run.ctx, env.run.tx, env.session.database, "public")
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		switch oid {
		case int64(tableOID(t)):
			return t.Name, nil
		case indexOID(t):
			return t.pkName(), nil
		}
		for i := range t.Indexes {
			if ix := &t.Indexes[i]; oid == secondaryOID(t, ix) {
				return ix.Name, nil
			}
		}
	}
	seqs, err := listSequences(env.run.ctx, env.run.tx, env.session.database, "public")
	if err != nil {
		return nil, err
	}
	for _, s := range seqs {
		if s.oid == oid {
			return s.desc.Name, nil
		}
	}
	return strconv.FormatInt(oid, 10), nil
}
