package query

import (
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
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
// their tables), sequences, column privileges, REFERENCES and schemas.

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
	case st.Objtype != pg.ObjectType_OBJECT_TABLE:
		return "", errorf("0A000", "%s on %s is not supported (only on tables)", tag, strings.TrimPrefix(st.Objtype.String(), "OBJECT_"))
	case st.GrantOption:
		return "", errorf("0A000", "WITH GRANT OPTION is not supported")
	case st.Targtype == pg.GrantTargetType_ACL_TARGET_DEFAULTS:
		return "", errorf("0A000", "ALTER DEFAULT PRIVILEGES is not supported")
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
	var grantees []string
	for _, n := range st.Grantees {
		rs := n.GetRoleSpec()
		switch rs.GetRoletype() {
		case pg.RoleSpecType_ROLESPEC_PUBLIC:
			grantees = append(grantees, publicGrantee)
		case pg.RoleSpecType_ROLESPEC_CSTRING:
			r, err := lookupRole(a.ctx, a.tx, rs.Rolename)
			if err != nil {
				return "", err
			}
			if r == nil {
				return "", errorf("42704", "role %q does not exist", rs.Rolename)
			}
			grantees = append(grantees, r.Name)
		default:
			return "", errorf("0A000", "%s to CURRENT_USER or SESSION_USER is not supported", tag)
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
			have := t.Grants[g]
			for _, p := range privs {
				if st.IsGrant && !slices.Contains(have, p) {
					have = append(have, p)
				} else if !st.IsGrant {
					have = slices.DeleteFunc(have, func(h string) bool { return h == p })
				}
			}
			slices.SortFunc(have, func(x, y string) int { return slices.Index(tablePrivileges, x) - slices.Index(tablePrivileges, y) })
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
