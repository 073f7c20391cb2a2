package query

import (
	"context"
	"encoding/json"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/orbitkernel/orbit/internal/scram"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// Roles (docs/sql.md, "Roles and authentication"): CREATE/ALTER/DROP
// ROLE and USER keep a role's name, whether it may log in, whether it is
// a superuser, and its password as a SCRAM-SHA-256 verifier (never the
// password), replicated in the catalog:
//
//	sql/role/<name>  a role's descriptor (JSON)
//
// The postgres role exists from the first start (a superuser that may
// log in, with no password until ALTER ROLE gives it one). With
// orbit serve --pg-auth scram every connection proves its role's
// password (pgwire's SCRAM-SHA-256 exchange against Engine.Credentials);
// with trust (the default, loopback only) any role that may log in is
// let in. What a role may do to a table is privileges.go's: its own
// tables, what GRANT gave it, everything for a superuser.

// RoleDesc describes a role.
type RoleDesc struct {
	Name      string `json:"name"`
	Superuser bool   `json:"superuser,omitempty"`
	Login     bool   `json:"login,omitempty"`
	// Password is the SCRAM-SHA-256 verifier ("": none: no password
	// login).
	Password string `json:"password,omitempty"`
}

const rolePrefix = "sql/role/"

func roleKey(name string) []byte { return []byte(rolePrefix + name) }

// lookupRole reads a role in tx (nil: none). The postgres role is there
// before anything is stored for it.
func lookupRole(ctx context.Context, tx *txn.Tx, name string) (*RoleDesc, error) {
	b, found, err := tx.Get(ctx, roleKey(name))
	if err != nil {
		return nil, err
	}
	if !found {
		if name == defaultUser {
			return &RoleDesc{Name: name, Superuser: true, Login: true}, nil
		}
		return nil, nil
	}
	var r RoleDesc
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, errorf("XX001", "could not decode a role: %v", err)
	}
	return &r, nil
}

// listRoles reads every role, postgres first.
func listRoles(ctx context.Context, tx *txn.Tx) ([]*RoleDesc, error) {
	out := []*RoleDesc{}
	pgRole, err := lookupRole(ctx, tx, defaultUser)
	if err != nil {
		return nil, err
	}
	out = append(out, pgRole)
	err = scanSpan(ctx, tx, []byte(rolePrefix), prefixEnd([]byte(rolePrefix)), func(kv storage.KeyValue) error {
		var r RoleDesc
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return errorf("XX001", "could not decode a role: %v", err)
		}
		if r.Name != defaultUser {
			out = append(out, &r)
		}
		return nil
	})
	return out, err
}

// roleOID is the OID clients see for a role.
func roleOID(r *RoleDesc) int64 {
	if r.Name == defaultUser {
		return oidSuperuser
	}
	var h uint32 = 2166136261 // FNV-1a of the name: stable across nodes and restarts
	for i := 0; i < len(r.Name); i++ {
		h = (h ^ uint32(r.Name[i])) * 16777619
	}
	return 8_000_000 + int64(h%1_000_000)
}

// withRole runs fn in a read transaction of a pooled DB: for the checks
// of a connection that has no session yet.
func (e *Engine) withRole(ctx context.Context, user string, fn func(*txn.Tx, *RoleDesc) error) error {
	db, err := e.takeDB()
	if err != nil {
		return err
	}
	defer e.dbs.Put(db)
	return db.Txn(ctx, func(tx *txn.Tx) error {
		r, err := lookupRole(ctx, tx, user)
		if err != nil {
			return err
		}
		return fn(tx, r)
	})
}

// Credentials is the SCRAM-SHA-256 verifier of user's password, for
// pgwire's --pg-auth scram (nil: the user may not log in with a
// password: no such role, no LOGIN, no password).
func (e *Engine) Credentials(ctx context.Context, user string) (*scram.Verifier, error) {
	var v *scram.Verifier
	err := e.withRole(ctx, user, func(_ *txn.Tx, r *RoleDesc) error {
		if r == nil || !r.Login || r.Password == "" {
			return nil
		}
		parsed, err := scram.ParseVerifier(r.Password)
		if err != nil {
			return errorf("XX001", "role %q has a password that does not parse: %v", user, err)
		}
		v = &parsed
		return nil
	})
	return v, err
}

// roleOptions applies CREATE/ALTER ROLE's options to r.
func (a *analyzer) roleOptions(r *RoleDesc, options []*pg.Node) error {
	for _, n := range options {
		o := n.GetDefElem()
		switch o.Defname {
		case "password":
			if o.Arg == nil { // PASSWORD NULL
				r.Password = ""
				continue
			}
			pw := o.Arg.GetString_().GetSval()
			switch {
			case strings.HasPrefix(pw, "SCRAM-SHA-256$"):
				if _, err := scram.ParseVerifier(pw); err != nil {
					return errorf("22023", "%v", err)
				}
				r.Password = pw // already a verifier, as pg_dump writes them
			case strings.HasPrefix(pw, "md5") && len(pw) == 35:
				return errorf("0A000", "MD5 password hashes are not supported: give the password, or its SCRAM-SHA-256 verifier")
			default:
				v, err := scram.NewVerifier(pw, randReader{a.s.e.rt})
				if err != nil {
					return err
				}
				r.Password = v.String()
			}
		case "superuser":
			r.Superuser = o.Arg.GetBoolean().GetBoolval()
		case "canlogin":
			r.Login = o.Arg.GetBoolean().GetBoolval()
		default:
			return errorf("0A000", "role option %s is not supported", strings.ToUpper(o.Defname))
		}
	}
	return nil
}

// randReader reads the node's randomness (the simulator's seeded one
// under it).
type randReader struct{ rt kernel.Runtime }

func (r randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.rt.Rand().Uint64())
	}
	return len(p), nil
}

// createRole runs CREATE ROLE, USER and GROUP.
func (a *analyzer) createRole(st *pg.CreateRoleStmt) (string, error) {
	if existing, err := lookupRole(a.ctx, a.tx, st.Role); err != nil {
		return "", err
	} else if existing != nil {
		return "", errorf("42710", "role %q already exists", st.Role)
	}
	r := &RoleDesc{Name: st.Role, Login: st.StmtType == pg.RoleStmtType_ROLESTMT_USER}
	if err := a.roleOptions(r, st.Options); err != nil {
		return "", err
	}
	return "CREATE ROLE", a.putRole(r)
}

func (a *analyzer) putRole(r *RoleDesc) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return a.tx.Put(a.ctx, roleKey(r.Name), b)
}

// alterRole runs ALTER ROLE/USER name [WITH] options.
func (a *analyzer) alterRole(st *pg.AlterRoleStmt) (string, error) {
	name := st.Role.GetRolename()
	if name == "" {
		return "", errorf("0A000", "ALTER ROLE of CURRENT_USER, SESSION_USER or ALL is not supported")
	}
	r, err := lookupRole(a.ctx, a.tx, name)
	if err != nil {
		return "", err
	}
	if r == nil {
		return "", errorf("42704", "role %q does not exist", name)
	}
	if err := a.roleOptions(r, st.Options); err != nil {
		return "", err
	}
	return "ALTER ROLE", a.putRole(r)
}

// dropRoles runs DROP ROLE/USER.
func (a *analyzer) dropRoles(st *pg.DropRoleStmt) (string, error) {
	for _, n := range st.Roles {
		name := n.GetRoleSpec().GetRolename()
		switch {
		case name == defaultUser:
			return "", errorf("55006", "cannot drop role %s because it is required by the database system", name)
		case name == a.s.user:
			return "", errorf("55006", "current user cannot be dropped")
		}
		r, err := lookupRole(a.ctx, a.tx, name)
		if err != nil {
			return "", err
		}
		if r == nil {
			if st.MissingOk {
				a.s.notice("00000", "role %q does not exist, skipping", name)
				continue
			}
			return "", errorf("42704", "role %q does not exist", name)
		}
		what, err := grantsDependOn(a.ctx, a.tx, a.s.database, name)
		if err != nil {
			return "", err
		}
		if what != "" {
			e := errorf("2BP01", "role %q cannot be dropped because some objects depend on it", name)
			e.Detail = what
			return "", e
		}
		if err := a.tx.Delete(a.ctx, roleKey(name)); err != nil {
			return "", err
		}
	}
	return "DROP ROLE", nil
}

// roleRows are pg_roles' rows.
func roleRows(c *catalogView) [][]any {
	var out [][]any
	for _, r := range c.roles {
		out = append(out, []any{roleOID(r), r.Name, r.Superuser, true, r.Superuser, r.Superuser, r.Login, r.Superuser, int64(-1), "********", nil, r.Superuser, nil})
	}
	return out
}
