package query

import (
	"maps"
	"slices"
	"strings"
)

// The system catalogs clients read (psql's \d, \dt, \l, \du, \dn; drivers'
// type and table probes): pg_catalog's and information_schema's tables,
// computed from the table descriptors the statement's transaction sees.
// Only the columns clients use in practice are there; array-typed columns
// (ACLs, options) are NULL. A catalog Orbit has no objects for
// (policies, publications, inheritance, triggers) is an empty table, so
// that the queries that probe them run.

// virtualTable is a system catalog table.
type virtualTable struct {
	cols []scopeCol
	rows func(c *catalogView) [][]any
}

// catalogView is what the catalog tables are computed from.
type catalogView struct {
	s         *Session
	tables    []*TableDesc
	sequences []*sequence
	views     []*ViewDesc
	roles     []*RoleDesc
}

// OIDs of the objects that exist in every database.
const (
	oidPgCatalog         = 11
	oidPublic            = 2200
	oidInformationSchema = 13000
	oidSuperuser         = 10
	oidDatabase          = 5
	oidHeapAM            = 2
	oidBtreeAM           = 403
	oidDefaultTablespace = 1663
	oidGlobalTablespace  = 1664
)

// TypeChar is PostgreSQL's one-byte "char" type (pg_class.relkind).
var TypeChar = Type{OID: 18, Name: `"char"`, Size: 1, Mod: -1}

func cols(spec string) []scopeCol {
	var out []scopeCol
	for _, f := range strings.Fields(spec) {
		name, typ, _ := strings.Cut(f, ":")
		elem, array := strings.CutSuffix(typ, "[]")
		t, ok := map[string]Type{"oid": TypeOid, "name": TypeName, "int2": TypeInt2, "int4": TypeInt4, "int8": TypeInt8,
			"float4": TypeFloat4, "bool": TypeBool, "char": TypeChar, "text": TypeText}[elem]
		if !ok {
			panic("query: catalog column type " + typ)
		}
		if array {
			var err error
			if t, err = arrayOf(t); err != nil {
				panic("query: catalog column type " + typ)
			}
		}
		out = append(out, scopeCol{name: name, t: t})
	}
	return out
}

func empty(*catalogView) [][]any { return nil }

// indexOID is the OID of a table's primary-key index.
func indexOID(t *TableDesc) int64 { return int64(tableOID(t)) + 50000 }

// constraintOID is the OID of a table's primary-key constraint.
func constraintOID(t *TableDesc) int64 { return int64(tableOID(t)) + 60000 }

// secondaryOID is the OID of a secondary index; secondaryConstraintOID
// of the UNIQUE constraint it backs.
func secondaryOID(t *TableDesc, ix *IndexDesc) int64 {
	return 1_000_000 + int64(t.ID)*1000 + int64(ix.ID)
}
func secondaryConstraintOID(t *TableDesc, ix *IndexDesc) int64 {
	return 2_000_000 + int64(t.ID)*1000 + int64(ix.ID)
}

// foreignKeyOID is the OID of t's i-th foreign key.
func foreignKeyOID(t *TableDesc, i int) int64 { return 7_000_000 + int64(t.ID)*1000 + int64(i) }

// checkOID is the OID of t's i-th CHECK constraint.
func checkOID(t *TableDesc, i int) int64 { return 3_000_000 + int64(t.ID)*1000 + int64(i) }

var pgCatalog = map[string]*virtualTable{
	"pg_namespace": {cols("oid:oid nspname:name nspowner:oid nspacl:text[]"), func(*catalogView) [][]any {
		return [][]any{
			{int64(oidPgCatalog), "pg_catalog", int64(oidSuperuser), nil},
			{int64(oidPublic), "public", int64(oidSuperuser), nil},
			{int64(oidInformationSchema), "information_schema", int64(oidSuperuser), nil},
		}
	}},
	"pg_am": {cols("oid:oid amname:name amhandler:text amtype:char"), func(*catalogView) [][]any {
		return [][]any{{int64(oidHeapAM), "heap", "heap_tableam_handler", "t"}, {int64(oidBtreeAM), "btree", "bthandler", "i"}}
	}},
	"pg_class": {cols("oid:oid relname:name relnamespace:oid reltype:oid reloftype:oid relowner:oid relam:oid relfilenode:oid " +
		"reltablespace:oid relpages:int4 reltuples:float4 relallvisible:int4 reltoastrelid:oid relhasindex:bool relisshared:bool " +
		"relpersistence:char relkind:char relnatts:int2 relchecks:int2 relhasrules:bool relhastriggers:bool relhassubclass:bool " +
		"relrowsecurity:bool relforcerowsecurity:bool relispopulated:bool relreplident:char relispartition:bool relrewrite:oid " +
		"relacl:text[] reloptions:text[] relpartbound:text"), func(c *catalogView) [][]any {
		var out [][]any
		for _, t := range c.tables {
			visible := 0
			for _, col := range t.Columns {
				if !col.Hidden {
					visible++
				}
			}
			out = append(out, []any{int64(tableOID(t)), t.Name, int64(oidPublic), int64(0), int64(0), int64(oidSuperuser), int64(oidHeapAM), int64(tableOID(t)),
				int64(0), int64(0), float64(-1), int64(0), int64(0), !hiddenKey(t) || len(t.Indexes) > 0, false,
				"p", "r", int64(visible), int64(len(t.Checks)), false, false, false,
				false, false, true, "d", false, int64(0),
				nil, nil, nil})
			for i := range t.Indexes {
				ix := &t.Indexes[i]
				out = append(out, []any{secondaryOID(t, ix), ix.Name, int64(oidPublic), int64(0), int64(0), int64(oidSuperuser), int64(oidBtreeAM), secondaryOID(t, ix),
					int64(0), int64(0), float64(0), int64(0), int64(0), false, false,
					"p", "i", int64(len(ix.Columns)), int64(0), false, false, false,
					false, false, true, "n", false, int64(0),
					nil, nil, nil})
			}
			if !hiddenKey(t) {
				out = append(out, []any{indexOID(t), t.pkName(), int64(oidPublic), int64(0), int64(0), int64(oidSuperuser), int64(oidBtreeAM), indexOID(t),
					int64(0), int64(0), float64(0), int64(0), int64(0), false, false,
					"p", "i", int64(len(t.PrimaryKey)), int64(0), false, false, false,
					false, false, true, "n", false, int64(0),
					nil, nil, nil})
			}
		}
		return append(append(out, sequenceRelations(c)...), viewRelations(c)...)
	}},
	"pg_attribute": {cols("attrelid:oid attname:name atttypid:oid attstattarget:int4 attlen:int2 attnum:int2 attndims:int4 " +
		"attcacheoff:int4 atttypmod:int4 attbyval:bool attalign:char attstorage:char attcompression:char attnotnull:bool " +
		"atthasdef:bool atthasmissing:bool attidentity:char attgenerated:char attisdropped:bool attislocal:bool " +
		"attinhcount:int4 attcollation:oid attacl:text[] attoptions:text[] attfdwoptions:text[]"), func(c *catalogView) [][]any {
		var out [][]any
		for _, t := range c.tables {
			for i, col := range t.Columns {
				if col.Hidden {
					continue
				}
				collation := int64(0)
				if col.Type.family() == famString {
					collation = 100
				}
				out = append(out, []any{int64(tableOID(t)), col.Name, int64(col.Type.OID), int64(-1), int64(col.Type.Size), int64(i + 1), int64(0),
					int64(-1), int64(typmod(col.Type)), col.Type.Size > 0 && col.Type.Size <= 8, "i", "p", "", col.NotNull,
					col.Default != "" || col.Serial, false, "", "", false, true,
					int64(0), collation, nil, nil, nil})
			}
		}
		for _, v := range c.views {
			for i, name := range v.Columns {
				typ, ok := typesByOID[v.Types[i]]
				if !ok {
					continue
				}
				typ = typ.withMod(v.Mods[i])
				out = append(out, []any{viewOID(v), name, int64(typ.OID), int64(-1), int64(typ.Size), int64(i + 1), int64(0),
					int64(-1), int64(typmod(typ)), typ.Size > 0 && typ.Size <= 8, "i", "p", "", false,
					false, false, "", "", false, true,
					int64(0), int64(0), nil, nil, nil})
			}
		}
		return out
	}},
	"pg_attrdef": {cols("oid:oid adrelid:oid adnum:int2 adbin:text"), func(c *catalogView) [][]any {
		var out [][]any
		for _, t := range c.tables {
			for i, col := range t.Columns {
				if d := defaultText(t, col); d != "" {
					out = append(out, []any{int64(tableOID(t))*100 + int64(i), int64(tableOID(t)), int64(i + 1), d})
				}
			}
		}
		return out
	}},
	"pg_index": {cols("indexrelid:oid indrelid:oid indnatts:int2 indnkeyatts:int2 indisunique:bool indisprimary:bool indisexclusion:bool " +
		"indimmediate:bool indisclustered:bool indisvalid:bool indcheckxmin:bool indisready:bool indislive:bool indisreplident:bool"), func(c *catalogView) [][]any {
		var out [][]any
		for _, t := range c.tables {
			if !hiddenKey(t) {
				n := int64(len(t.PrimaryKey))
				out = append(out, []any{indexOID(t), int64(tableOID(t)), n, n, true, true, false, true, false, true, false, true, true, false})
			}
			for i := range t.Indexes {
				ix := &t.Indexes[i]
				n := int64(len(ix.Columns))
				out = append(out, []any{secondaryOID(t, ix), int64(tableOID(t)), n, n, ix.Unique, false, false, true, false, true, false, true, true, false})
			}
		}
		return out
	}},
	"pg_constraint": {cols("oid:oid conname:name connamespace:oid contype:char condeferrable:bool condeferred:bool convalidated:bool " +
		"conrelid:oid contypid:oid conindid:oid conparentid:oid confrelid:oid confupdtype:char confdeltype:char confmatchtype:char " +
		"conislocal:bool coninhcount:int4 connoinherit:bool"), func(c *catalogView) [][]any {
		var out [][]any
		for _, t := range c.tables {
			if !hiddenKey(t) {
				out = append(out, []any{constraintOID(t), t.pkName(), int64(oidPublic), "p", false, false, true,
					int64(tableOID(t)), int64(0), indexOID(t), int64(0), int64(0), " ", " ", " ", true, int64(0), true})
			}
			for i := range t.Indexes {
				if ix := &t.Indexes[i]; ix.Constraint {
					out = append(out, []any{secondaryConstraintOID(t, ix), ix.Name, int64(oidPublic), "u", false, false, true,
						int64(tableOID(t)), int64(0), secondaryOID(t, ix), int64(0), int64(0), " ", " ", " ", true, int64(0), true})
				}
			}
			for i := range t.Checks {
				out = append(out, []any{checkOID(t, i), t.Checks[i].Name, int64(oidPublic), "c", false, false, true,
					int64(tableOID(t)), int64(0), int64(0), int64(0), int64(0), " ", " ", " ", true, int64(0), false})
			}
			for i, fk := range t.ForeignKeys {
				parent := int64(0)
				for _, p := range c.tables {
					if p.Name == fk.Parent {
						parent = int64(tableOID(p))
					}
				}
				out = append(out, []any{foreignKeyOID(t, i), fk.Name, int64(oidPublic), "f", fk.Deferrable, fk.InitiallyDeferred, true,
					int64(tableOID(t)), int64(0), int64(0), int64(0), parent, fk.OnUpdate, fk.OnDelete, "s", true, int64(0), true})
			}
		}
		return out
	}},
	"pg_type": {cols("oid:oid typname:name typnamespace:oid typowner:oid typlen:int2 typbyval:bool typtype:char typcategory:char " +
		"typispreferred:bool typisdefined:bool typdelim:char typrelid:oid typelem:oid typarray:oid typinput:text typoutput:text " +
		"typreceive:text typsend:text typalign:char typstorage:char typnotnull:bool typbasetype:oid typtypmod:int4 typndims:int4 " +
		"typcollation:oid typdefault:text typacl:text[]"), func(*catalogView) [][]any {
		var out [][]any
		for _, t := range catalogTypes {
			name := pgTypeName(t)
			collation := int64(0)
			if t.family() == famString {
				collation = 100
			}
			out = append(out, []any{int64(t.OID), name, int64(oidPgCatalog), int64(oidSuperuser), int64(t.Size), t.Size > 0 && t.Size <= 8, "b", typeCategory(t),
				false, true, ",", int64(0), int64(0), int64(0), name + "in", name + "out",
				name + "recv", name + "send", "i", "p", false, int64(0), int64(-1), int64(0),
				collation, nil, nil})
		}
		return out
	}},
	"pg_database": {cols("oid:oid datname:name datdba:oid encoding:int4 datlocprovider:char datistemplate:bool datallowconn:bool " +
		"datconnlimit:int4 dattablespace:oid datcollate:text datctype:text daticulocale:text datcollversion:text datacl:text[]"), func(*catalogView) [][]any {
		return [][]any{{int64(oidDatabase), defaultDatabase, int64(oidSuperuser), int64(6), "c", false, true, int64(-1), int64(oidDefaultTablespace), "C.UTF-8", "C.UTF-8", nil, nil, nil}}
	}},
	"pg_roles": {cols("oid:oid rolname:name rolsuper:bool rolinherit:bool rolcreaterole:bool rolcreatedb:bool rolcanlogin:bool " +
		"rolreplication:bool rolconnlimit:int4 rolpassword:text rolvaliduntil:text rolbypassrls:bool rolconfig:text[]"), roleRows},
	"pg_user": {cols("usename:name usesysid:oid usecreatedb:bool usesuper:bool userepl:bool usebypassrls:bool passwd:text valuntil:text useconfig:text[]"), func(c *catalogView) [][]any {
		var out [][]any
		for _, r := range c.roles {
			if r.Login {
				out = append(out, []any{r.Name, roleOID(r), r.Superuser, r.Superuser, r.Superuser, r.Superuser, "********", nil, nil})
			}
		}
		return out
	}},
	"pg_tablespace": {cols("oid:oid spcname:name spcowner:oid spcacl:text[] spcoptions:text[]"), func(*catalogView) [][]any {
		return [][]any{{int64(oidDefaultTablespace), "pg_default", int64(oidSuperuser), nil, nil}, {int64(oidGlobalTablespace), "pg_global", int64(oidSuperuser), nil, nil}}
	}},
	"pg_settings": {cols("name:text setting:text unit:text category:text short_desc:text context:text vartype:text source:text"), func(c *catalogView) [][]any {
		var out [][]any
		for _, k := range sortedKeys(c.s.params) {
			out = append(out, []any{strings.ToLower(k), c.s.params[k], nil, "", "", "user", "string", "default"})
		}
		return out
	}},
	"pg_collation":             {cols("oid:oid collname:name collnamespace:oid collowner:oid collprovider:char collisdeterministic:bool collencoding:int4 collcollate:text collctype:text"), empty},
	"pg_auth_members":          {cols("roleid:oid member:oid grantor:oid admin_option:bool"), empty},
	"pg_policy":                {cols("oid:oid polname:name polrelid:oid polcmd:char polpermissive:bool polroles:oid[] polqual:text polwithcheck:text"), empty},
	"pg_statistic_ext":         {cols("oid:oid stxrelid:oid stxname:name stxnamespace:oid stxowner:oid stxstattarget:int4 stxkeys:int2[] stxkind:char[]"), empty},
	"pg_inherits":              {cols("inhrelid:oid inhparent:oid inhseqno:int4 inhdetachpending:bool"), empty},
	"pg_publication":           {cols("oid:oid pubname:name pubowner:oid puballtables:bool pubinsert:bool pubupdate:bool pubdelete:bool pubtruncate:bool pubviaroot:bool"), empty},
	"pg_publication_rel":       {cols("oid:oid prpubid:oid prrelid:oid prqual:text prattrs:int2[]"), empty},
	"pg_publication_namespace": {cols("oid:oid pnpubid:oid pnnspid:oid"), empty},
	"pg_description":           {cols("objoid:oid classoid:oid objsubid:int4 description:text"), empty},
	"pg_trigger":               {cols("oid:oid tgrelid:oid tgparentid:oid tgname:name tgfoid:oid tgtype:int2 tgenabled:char tgisinternal:bool"), empty},
	"pg_rewrite":               {cols("oid:oid rulename:name ev_class:oid ev_type:char ev_enabled:char is_instead:bool"), empty},
	"pg_foreign_table":         {cols("ftrelid:oid ftserver:oid ftoptions:text"), empty},
	"pg_extension":             {cols("oid:oid extname:name extowner:oid extnamespace:oid extrelocatable:bool extversion:text"), empty},
	"pg_enum":                  {cols("oid:oid enumtypid:oid enumsortorder:float4 enumlabel:name"), empty},
	"pg_range":                 {cols("rngtypid:oid rngsubtype:oid rngmultitypid:oid rngcollation:oid"), empty},
	"pg_proc":                  {cols("oid:oid proname:name pronamespace:oid proowner:oid prokind:char prorettype:oid"), empty},
	"pg_views":                 {cols("schemaname:name viewname:name viewowner:name definition:text"), empty},
	"pg_matviews":              {cols("schemaname:name matviewname:name matviewowner:name definition:text"), empty},
	"pg_sequence":              {cols("seqrelid:oid seqtypid:oid seqstart:int8 seqincrement:int8 seqmax:int8 seqmin:int8 seqcache:int8 seqcycle:bool"), empty},
	"pg_tables": {cols("schemaname:name tablename:name tableowner:name tablespace:name hasindexes:bool hasrules:bool hastriggers:bool rowsecurity:bool"), func(c *catalogView) [][]any {
		var out [][]any
		for _, t := range c.tables {
			out = append(out, []any{t.Schema, t.Name, defaultUser, nil, !hiddenKey(t), false, false, false})
		}
		return out
	}},
}

var informationSchema = map[string]*virtualTable{
	"schemata": {cols("catalog_name:name schema_name:name schema_owner:name"), func(c *catalogView) [][]any {
		var out [][]any
		for _, s := range []string{"information_schema", "pg_catalog", "public"} {
			out = append(out, []any{c.s.database, s, defaultUser})
		}
		return out
	}},
	"tables": {cols("table_catalog:name table_schema:name table_name:name table_type:text is_insertable_into:text"), func(c *catalogView) [][]any {
		var out [][]any
		for _, t := range c.tables {
			out = append(out, []any{t.Database, t.Schema, t.Name, "BASE TABLE", "YES"})
		}
		return out
	}},
	"columns": {cols("table_catalog:name table_schema:name table_name:name column_name:name ordinal_position:int4 column_default:text " +
		"is_nullable:text data_type:text character_maximum_length:int4 numeric_precision:int4 numeric_scale:int4 udt_name:name is_identity:text"), func(c *catalogView) [][]any {
		var out [][]any
		for _, t := range c.tables {
			for i, col := range t.Columns {
				if col.Hidden {
					continue
				}
				var def, maxLen, prec, scale any
				if d := defaultText(t, col); d != "" {
					def = d
				}
				if col.Type.Mod >= 0 && col.Type.family() == famString {
					maxLen = int64(col.Type.Mod)
				}
				if col.Type.OID == TypeNumeric.OID && col.Type.Mod >= 0 {
					prec, scale = int64(col.Type.Mod>>16), int64(col.Type.Mod&0xFFFF)
				}
				nullable := "YES"
				if col.NotNull {
					nullable = "NO"
				}
				out = append(out, []any{t.Database, t.Schema, t.Name, col.Name, int64(i + 1), def, nullable, col.Type.Name, maxLen, prec, scale, pgTypeName(col.Type), "NO"})
			}
		}
		return out
	}},
}

// hiddenKey reports whether t is keyed by a hidden rowid (no primary key).
func hiddenKey(t *TableDesc) bool {
	return len(t.PrimaryKey) == 1 && t.Columns[columnIndex(t.Columns, t.PrimaryKey[0])].Hidden
}

// defaultText is a column's default as pg_get_expr prints it.
func defaultText(t *TableDesc, c ColumnDesc) string {
	if c.Serial {
		return "nextval('" + t.Name + "_" + c.Name + "_seq'::regclass)"
	}
	return c.Default
}

// catalogTypes are the types pg_type lists.
var catalogTypes = []Type{TypeBool, TypeBytea, TypeChar, TypeName, TypeInt8, TypeInt2, TypeInt4, TypeText, TypeOid, TypeFloat4, TypeFloat8, TypeBpchar, TypeVarchar, TypeDate, TypeTimestamp, TypeTimestamptz, TypeNumeric, TypeUUID, TypeJSON, TypeJSONB, TypeInterval, TypeTime}

// pgTypeName is a type's pg_type.typname ("int4", "varchar").
func pgTypeName(t Type) string {
	switch t.OID {
	case TypeChar.OID:
		return "char"
	case TypeBpchar.OID:
		return "bpchar"
	case TypeVarchar.OID:
		return "varchar"
	case TypeInt2.OID:
		return "int2"
	case TypeInt4.OID:
		return "int4"
	case TypeInt8.OID:
		return "int8"
	case TypeFloat4.OID:
		return "float4"
	case TypeFloat8.OID:
		return "float8"
	case TypeBool.OID:
		return "bool"
	case TypeTimestamptz.OID:
		return "timestamptz"
	case TypeTimestamp.OID:
		return "timestamp"
	case TypeTime.OID:
		return "time"
	}
	return t.Name
}

func typeCategory(t Type) string {
	switch t.family() {
	case famBool:
		return "B"
	case famInt, famFloat, famNumeric:
		return "N"
	case famString:
		return "S"
	case famTime:
		return "D"
	}
	return "U"
}

func sortedKeys(m map[string]string) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return keys
}

// virtualScan reads a system catalog table.
type virtualScan struct {
	vt *virtualTable
}

func (v *virtualScan) rows(r *run) ([][]any, error) {
	tables, err := listTables(r.ctx, r.tx, r.env.session.database, "public")
	if err != nil {
		return nil, err
	}
	seqs, err := listSequences(r.ctx, r.tx, r.env.session.database, "public")
	if err != nil {
		return nil, err
	}
	views, err := listViews(r.ctx, r.tx, r.env.session.database, "public")
	if err != nil {
		return nil, err
	}
	roles, err := listRoles(r.ctx, r.tx)
	if err != nil {
		return nil, err
	}
	return v.vt.rows(&catalogView{s: r.env.session, tables: tables, sequences: seqs, views: views, roles: roles}), nil
}

// virtualTableOf finds a system catalog table: pg_catalog's are found
// unqualified too, as PostgreSQL searches pg_catalog first.
func virtualTableOf(schema, name string) (*virtualTable, bool) {
	switch schema {
	case "", "pg_catalog":
		vt, ok := pgCatalog[name]
		return vt, ok
	case "information_schema":
		vt, ok := informationSchema[name]
		return vt, ok
	}
	return nil, false
}
