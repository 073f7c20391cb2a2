package query

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/orbitkernel/orbit/txn"
)

// Table privileges (docs/sql.md, "Privileges"), as PostgreSQL's: a table
// belongs to the role that created it (TableDesc.Owner), which may do
// everything to it and grant or revoke SELECT, INSERT, UPDATE, DELETE and
// TRUNCATE to other roles or to PUBLIC (TableDesc.Grants, kept in the
// table's descriptor, so they change in the same transactions as the
// table). A superuser may do everything to every table. The checks run
// as statements are analysed: reading a table (SELECT, a FROM list, a
// WHERE or RETURNING of UPDATE and DELETE, COPY TO) needs SELECT; INSERT
// (and COPY FROM), UPDATE (and ON CONFLICT DO UPDATE), DELETE and TRUNCATE
// their own; DROP, ALTER, RENAME and CREATE INDEX need ownership. A
// refusal is 42501 in PostgreSQL's words. Not checked: views (grant on
// their tables), sequences, column privileges, REFERENCES. The database's
// and schema public's own privileges are below.

// tablePrivileges are the privileges GRANT gives on a table, in
// PostgreSQL's order; ALL is every one.
var tablePrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"}

// publicGrantee is the grantee PUBLIC (every role) in TableDesc.Grants:
// no role can have this name (PostgreSQL reserves it).
const publicGrantee = "public"

// currentRole is the session's role, read once per statement.
func (a *analyzer) currentRole() (*RoleDesc, error) {
	if a.role == nil {
		r, err := lookupRole(a.ctx, a.tx, a.s.user)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, errorf("28000", "role %q does not exist", a.s.user)
		}
		a.role = r
	}
	return a.role, nil
}

// owner is t's owner (a table made before owners were kept belongs to
// the superuser postgres).
func owner(t *TableDesc) string {
	if t.Owner == "" {
		return defaultUser
	}
	return t.Owner
}

// superuser reports whether the session's role is a superuser. Read only
// when the owner and the grants did not settle a check, so that a
// table's owner (postgres on its own tables, the usual case) pays no
// extra read.
func (a *analyzer) superuser() (bool, error) {
	r, err := a.currentRole()
	return err == nil && r.Superuser, err
}

// require checks that the session's role holds every one of privs on t.
func (a *analyzer) require(t *TableDesc, privs ...string) error {
	if a.s.user == owner(t) {
		return nil
	}
	granted := true
	for _, p := range privs {
		if !slices.Contains(t.Grants[a.s.user], p) && !slices.Contains(t.Grants[publicGrantee], p) {
			granted = false
		}
	}
	if granted {
		return nil
	}
	if su, err := a.superuser(); su || err != nil {
		return err
	}
	return errorf("42501", "permission denied for table %s", t.Name)
}

// requireOwner checks that the session's role owns t (DDL, GRANT).
func (a *analyzer) requireOwner(t *TableDesc) error {
	if a.s.user == owner(t) {
		return nil
	}
	if su, err := a.superuser(); su || err != nil {
		return err
	}
	return errorf("42501", "must be owner of table %s", t.Name)
}

// grant runs GRANT and REVOKE of table privileges: on named tables, or
// on ALL TABLES IN SCHEMA public.
func (a *analyzer) grant(st *pg.GrantStmt) (string, error) {
	tag := "GRANT"
	if !st.IsGrant {
		tag = "REVOKE"
	}
	switch {
	case st.Objtype != pg.ObjectType_OBJECT_TABLE && st.Objtype != pg.ObjectType_OBJECT_DATABASE && st.Objtype != pg.ObjectType_OBJECT_SCHEMA:
		return "", errorf("0A000", "%s on %s is not supported (only on tables, the database and schema public)", tag, strings.TrimPrefix(st.Objtype.String(), "OBJECT_"))
	case st.GrantOption:
		return "", errorf("0A000", "WITH GRANT OPTION is not supported")
	case st.Targtype == pg.GrantTargetType_ACL_TARGET_DEFAULTS:
		return "", errorf("0A000", "ALTER DEFAULT PRIVILEGES is not supported")
	}
	grantees, err := a.grantees(st, tag)
	if err != nil {
		return "", err
	}
	if st.Objtype != pg.ObjectType_OBJECT_TABLE {
		return a.grantOn(st, tag, grantees)
	}
	privs := slices.Clone(tablePrivileges)
	if len(st.Privileges) > 0 {
		privs = nil
		for _, n := range st.Privileges {
			ap := n.GetAccessPriv()
			name := strings.ToUpper(ap.GetPrivName())
			switch {
			case len(ap.GetCols()) > 0:
				return "", errorf("0A000", "column privileges are not supported")
			case !slices.Contains(tablePrivileges, name):
				return "", errorf("0A000", "privilege %s is not supported (tables take %s)", name, strings.Join(tablePrivileges, ", "))
			}
			privs = append(privs, name)
		}
	}
	var tables []*TableDesc
	if st.Targtype == pg.GrantTargetType_ACL_TARGET_ALL_IN_SCHEMA {
		for _, n := range st.Objects {
			if schema := n.GetString_().GetSval(); schema != "public" {
				return "", errorf("3F000", "schema %q does not exist", schema)
			}
		}
		all, err := listTables(a.ctx, a.tx, a.s.database, "public")
		if err != nil {
			return "", err
		}
		tables = all
	} else {
		for _, n := range st.Objects {
			t, err := a.table(n.GetRangeVar())
			if err != nil {
				return "", err
			}
			tables = append(tables, t)
		}
	}
	for _, t := range tables {
		if err := a.requireOwner(t); err != nil {
			return "", err
		}
		if t.Grants == nil {
			t.Grants = map[string][]string{}
		}
		for _, g := range grantees {
			have := editGrants(t.Grants[g], privs, st.IsGrant, tablePrivileges)
			if len(have) == 0 {
				delete(t.Grants, g)
			} else {
				t.Grants[g] = have
			}
		}
		if err := putTable(a.ctx, a.tx, t); err != nil {
			return "", err
		}
	}
	return tag, nil
}

// Database and schema privileges, as PostgreSQL 15's: the database
// postgres grants CONNECT and TEMPORARY to PUBLIC, the schema public
// USAGE (and, since PostgreSQL 15, not CREATE) until GRANT and REVOKE
// change them; both belong to postgres (public's owner is
// pg_database_owner, the database's owner), which holds every privilege
// on them, as does a superuser. CONNECT is checked when a session opens
// (42501 "permission denied for database"), USAGE of public when a
// statement names a table or view in it, CREATE on public when one
// creates a table, view or sequence ("permission denied for schema
// public"). TEMPORARY and the database's CREATE can be granted; nothing
// uses them (no temporary tables, one schema). The grants are kept under
// aclKey, changed in transactions like every descriptor.

// databasePrivileges and schemaPrivileges are what GRANT gives on each,
// in PostgreSQL's order; ALL is every one.
var (
	databasePrivileges = []string{"CREATE", "TEMPORARY", "CONNECT"}
	schemaPrivileges   = []string{"USAGE", "CREATE"}
)

const aclPrefix = "sql/acl/"

func databaseACLKey(database string) []byte { return []byte(aclPrefix + "database/" + database) }

func schemaACLKey(database, schema string) []byte {
	return []byte(aclPrefix + "schema/" + database + "\x00" + schema)
}

// objectGrants are a database's or a schema's grants, by grantee
// (publicGrantee: PUBLIC).
type objectGrants map[string][]string

// readGrants reads the grants at key in tx, or def if none were ever
// written.
func readGrants(ctx context.Context, tx *txn.Tx, key []byte, def objectGrants) (objectGrants, error) {
	b, found, err := tx.Get(ctx, key)
	if err != nil || !found {
		return def, err
	}
	var g objectGrants
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, errorf("XX001", "could not decode the privileges at %q: %v", key, err)
	}
	return g, nil
}

// The grants a database and a schema have until GRANT or REVOKE first
// changes them (new maps: callers edit them).
func databaseDefaults() objectGrants { return objectGrants{publicGrantee: {"TEMPORARY", "CONNECT"}} }
func schemaDefaults() objectGrants   { return objectGrants{publicGrantee: {"USAGE"}} }

func databaseGrants(ctx context.Context, tx *txn.Tx, database string) (objectGrants, error) {
	return readGrants(ctx, tx, databaseACLKey(database), databaseDefaults())
}

func schemaGrants(ctx context.Context, tx *txn.Tx, database, schema string) (objectGrants, error) {
	return readGrants(ctx, tx, schemaACLKey(database, schema), schemaDefaults())
}

// allows reports whether user, or PUBLIC, holds priv in g.
func (g objectGrants) allows(user, priv string) bool {
	return slices.Contains(g[user], priv) || slices.Contains(g[publicGrantee], priv)
}

// mayConnect checks CONNECT on database for role r (in Engine.Open).
func mayConnect(ctx context.Context, tx *txn.Tx, r *RoleDesc, database string) error {
	if r.Name == defaultUser || r.Superuser {
		return nil
	}
	g, err := databaseGrants(ctx, tx, database)
	if err != nil || g.allows(r.Name, "CONNECT") {
		return err
	}
	e := fatal("42501", "permission denied for database %q", database)
	e.Detail = "User does not have CONNECT privilege."
	return e
}

// requireSchema checks that the session's role holds priv on schema
// (USAGE to name what is in it, CREATE to make something there). Only
// public exists; other names are left to the lookups' own errors.
func (a *analyzer) requireSchema(schema, priv string) error {
	if schema != "" && schema != "public" {
		return nil
	}
	if a.s.user == defaultUser {
		return nil // the schema's owner
	}
	if a.schemaGrants == nil {
		g, err := schemaGrants(a.ctx, a.tx, a.s.database, "public")
		if err != nil {
			return err
		}
		a.schemaGrants = g
	}
	if a.schemaGrants.allows(a.s.user, priv) {
		return nil
	}
	if su, err := a.superuser(); su || err != nil {
		return err
	}
	return errorf("42501", "permission denied for schema public")
}

// grantees are the roles a GRANT or REVOKE names (publicGrantee for
// PUBLIC), each checked to exist.
func (a *analyzer) grantees(st *pg.GrantStmt, tag string) ([]string, error) {
	var out []string
	for _, n := range st.Grantees {
		rs := n.GetRoleSpec()
		switch rs.GetRoletype() {
		case pg.RoleSpecType_ROLESPEC_PUBLIC:
			out = append(out, publicGrantee)
		case pg.RoleSpecType_ROLESPEC_CSTRING:
			r, err := lookupRole(a.ctx, a.tx, rs.Rolename)
			if err != nil {
				return nil, err
			}
			if r == nil {
				return nil, errorf("42704", "role %q does not exist", rs.Rolename)
			}
			out = append(out, r.Name)
		default:
			return nil, errorf("0A000", "%s to CURRENT_USER or SESSION_USER is not supported", tag)
		}
	}
	return out, nil
}

// grantOn runs GRANT and REVOKE on the database or on schema public.
func (a *analyzer) grantOn(st *pg.GrantStmt, tag string, grantees []string) (string, error) {
	kind, all, defaults := "database", databasePrivileges, databaseDefaults
	if st.Objtype == pg.ObjectType_OBJECT_SCHEMA {
		kind, all, defaults = "schema", schemaPrivileges, schemaDefaults
	}
	privs := slices.Clone(all)
	if len(st.Privileges) > 0 {
		privs = nil
		for _, n := range st.Privileges {
			name := strings.ToUpper(n.GetAccessPriv().GetPrivName())
			if name == "TEMP" {
				name = "TEMPORARY"
			}
			if !slices.Contains(all, name) {
				return "", errorf("0LP01", "invalid privilege type %s for %s", name, kind)
			}
			privs = append(privs, name)
		}
	}
	for _, n := range st.Objects {
		name := n.GetString_().GetSval()
		var key []byte
		switch {
		case kind == "database" && name != a.s.database:
			return "", errorf("3D000", "database %q does not exist", name)
		case kind == "database":
			key = databaseACLKey(name)
		case name != "public":
			return "", errorf("3F000", "schema %q does not exist", name)
		default:
			key = schemaACLKey(a.s.database, name)
		}
		g, err := readGrants(a.ctx, a.tx, key, defaults())
		if err != nil {
			return "", err
		}
		if a.s.user != defaultUser {
			su, err := a.superuser()
			switch {
			case err != nil:
				return "", err
			case !su && len(g[a.s.user]) == 0 && len(g[publicGrantee]) == 0:
				return "", errorf("42501", "permission denied for %s %s", kind, name)
			case !su:
				// Privileges without grant options: PostgreSQL warns,
				// and changes nothing.
				if st.IsGrant {
					a.s.warning("01007", "no privileges were granted for %q", name)
				} else {
					a.s.warning("01006", "no privileges could be revoked for %q", name)
				}
				continue
			}
		}
		for _, who := range grantees {
			g[who] = editGrants(g[who], privs, st.IsGrant, all)
			if len(g[who]) == 0 {
				delete(g, who)
			}
		}
		b, err := json.Marshal(g)
		if err != nil {
			return "", err
		}
		if err := a.tx.Put(a.ctx, key, b); err != nil {
			return "", err
		}
	}
	a.schemaGrants = nil
	return tag, nil
}

// editGrants adds privs to have (grant) or takes them away, kept in
// order's order.
func editGrants(have, privs []string, grant bool, order []string) []string {
	have = slices.Clone(have)
	for _, p := range privs {
		if grant && !slices.Contains(have, p) {
			have = append(have, p)
		} else if !grant {
			have = slices.DeleteFunc(have, func(h string) bool { return h == p })
		}
	}
	slices.SortFunc(have, func(x, y string) int { return slices.Index(order, x) - slices.Index(order, y) })
	return have
}

// grantsDependOn says which of the database's and schema public's grants
// name role (DROP ROLE refuses to drop it while any does, as PostgreSQL).
func grantsDependOn(ctx context.Context, tx *txn.Tx, database, role string) (string, error) {
	var what []string
	g, err := databaseGrants(ctx, tx, database)
	if err != nil {
		return "", err
	}
	if len(g[role]) > 0 {
		what = append(what, "privileges for database "+database)
	}
	if g, err = schemaGrants(ctx, tx, database, "public"); err != nil {
		return "", err
	}
	if len(g[role]) > 0 {
		what = append(what, "privileges for schema public")
	}
	return strings.Join(what, "\n"), nil
}
