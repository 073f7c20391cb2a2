package query

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// Options configure an Engine.
type Options struct {
	// Runtime is the node's runtime. Required.
	Runtime kernel.Runtime
	// NewDB makes a client of the transactional keyspace (kernel/node's
	// Node.NewDB). Required.
	NewDB func(name string) (*txn.DB, error)
	// MaxConnections bounds the open sessions (max_connections): one more
	// is refused with 53300. Default 100, as PostgreSQL's.
	MaxConnections int
	// MaxRows bounds the rows one statement holds in memory (a scan's,
	// a sort's, a join's input); beyond it the statement fails with 54000
	// instead of exhausting the node. Default 1,048,576.
	MaxRows int
}

// EnsureDefaults fills in the zero fields.
func (o *Options) EnsureDefaults() {
	if o.MaxConnections == 0 {
		o.MaxConnections = 100
	}
	if o.MaxRows == 0 {
		o.MaxRows = 1 << 20
	}
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Runtime == nil {
		errs = append(errs, errors.New("query: Options.Runtime is required"))
	}
	if o.NewDB == nil {
		errs = append(errs, errors.New("query: Options.NewDB is required"))
	}
	if o.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("query: MaxConnections %d: must be at least 1", o.MaxConnections))
	}
	if o.MaxRows < 1 {
		errs = append(errs, fmt.Errorf("query: MaxRows %d: must be at least 1", o.MaxRows))
	}
	return errors.Join(errs...)
}

// Engine is a node's SQL engine: it opens sessions, each a connection's
// state (docs/sql.md).
type Engine struct {
	opts Options
	rt   kernel.Runtime
	// dbs lends a DB to each session (a DB serves one task at a time, and
	// each session is one), at most MaxConnections.
	dbs *kernel.Pool[*txn.DB]

	mu      sync.Mutex
	lastRow int64 // the last rowid's time part (rowID)
}

// New returns an engine.
func New(opts Options) (*Engine, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, rt: opts.Runtime}
	e.dbs = txn.NewPool(opts.Runtime, opts.MaxConnections, "sql", opts.NewDB)
	return e, nil
}

// The only database and role there are until CREATE DATABASE and roles
// exist (docs/sql.md, "Not yet").
const (
	defaultDatabase = "postgres"
	defaultUser     = "postgres"
)

// Open starts a session for user on database; pid is the backend process
// ID its client was told (pg_backend_pid), params the start-up message's
// run-time parameters (application_name, client_encoding, ...).
func (e *Engine) Open(ctx context.Context, pid uint32, user, database string, params map[string]string) (*Session, error) {
	if database != defaultDatabase {
		return nil, fatal("3D000", "database %q does not exist", database)
	}
	s := &Session{e: e, pid: pid, user: user, database: database, status: StatusIdle, params: defaultParameters(user)}
	for k, v := range params {
		if err := s.setStartup(k, v); err != nil {
			return nil, err
		}
	}
	if err := e.withRole(ctx, user, func(tx *txn.Tx, r *RoleDesc) error {
		switch {
		case r == nil:
			return fatal("28000", "role %q does not exist", user)
		case !r.Login:
			return fatal("28000", "role %q is not permitted to log in", user)
		}
		return mayConnect(ctx, tx, r, database)
	}); err != nil {
		return nil, err
	}
	db, err := e.takeDB()
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

// takeDB takes one of the pool's DBs; the caller gives it back with
// e.dbs.Put.
func (e *Engine) takeDB() (*txn.DB, error) {
	db, err := e.dbs.TryTake()
	if errors.Is(err, kernel.ErrPoolExhausted) {
		return nil, fatal("53300", "sorry, too many clients already")
	}
	return db, err
}

func fatal(code, format string, args ...any) *Error {
	e := errorf(code, format, args...)
	e.Severity = "FATAL"
	return e
}

// rowID is a new hidden row key, unique across the cluster: the node's
// clock in microseconds (strictly increasing on this node) above the
// node's ID, as CockroachDB's unique_rowid.
func (e *Engine) rowID() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	ts := max(e.rt.Now().UnixMicro(), e.lastRow+1)
	e.lastRow = ts
	return ts<<10 | int64(e.rt.NodeID()&1023)
}
