// Package mcp serves an Orbit cluster to AI agents over the Model Context
// Protocol (the official Go SDK, github.com/modelcontextprotocol/go-sdk):
// tools that read and change the cluster through one node's public
// listeners — SQL over the PostgreSQL wire (pgx), keys over RESP
// (go-redis), actors over the actor service (adapters/actorapi), the
// cluster's state over HTTP (/cluster). It is a client of the node, with
// the node's own authentication and TLS, so an agent may do what those
// credentials may do and no more; on top of that, sql_query runs in a
// READ ONLY transaction unless Options.AllowWrites, every tool returns at
// most Options.MaxRows rows (saying when it cut), and every call ends
// after Options.Timeout. `orbit mcp` serves it on stdio or streamable
// HTTP (docs/mcp.md).
package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/orbitkernel/orbit/adapters/actorapi"
)

// Options say which of the node's listeners the tools use (each tool
// group only when its listener is given) and the limits they keep.
type Options struct {
	// PostgresURL is a pgx connection string for the node's PostgreSQL
	// listener (user, password, sslmode as psql takes them); "": no SQL
	// tools (sql_query, describe_schema, explain).
	PostgresURL string
	// Redis reaches the node's RESP listener (Addr, Username, Password,
	// TLSConfig); nil: no key tools (kv_get, kv_scan).
	Redis *redis.Options
	// ActorAddr is the node's actor service (--grpc-addr), dialed with
	// ActorDial; "": no actor tools (actor_invoke, actor_list).
	ActorAddr string
	ActorDial []grpc.DialOption
	// HTTPURL is the node's HTTP base URL (http://host:port, or https),
	// fetched with HTTPClient (nil: http.DefaultClient); "": no
	// cluster_status.
	HTTPURL    string
	HTTPClient *http.Client

	// AllowWrites lets sql_query write; otherwise it runs in a READ ONLY
	// transaction and a write fails with PostgreSQL's 25006.
	AllowWrites bool
	// MaxRows bounds the rows (keys, elements) a tool returns; a call may
	// ask for fewer. Default 1,000.
	MaxRows int
	// Timeout bounds one tool call. Default 10 s.
	Timeout time.Duration
	// Version is reported to clients as the server's.
	Version string
}

// ErrInvalidOptions wraps every error of Options.Validate.
var ErrInvalidOptions = errors.New("mcp: invalid options")

// EnsureDefaults fills in the zero limits.
func (o *Options) EnsureDefaults() {
	if o.MaxRows == 0 {
		o.MaxRows = 1000
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Version == "" {
		o.Version = "dev"
	}
}

// Validate reports what is out of range.
func (o *Options) Validate() error {
	switch {
	case o.MaxRows < 0 || o.Timeout < 0:
		return fmt.Errorf("%w: negative limit", ErrInvalidOptions)
	case o.PostgresURL == "" && o.Redis == nil && o.ActorAddr == "" && o.HTTPURL == "":
		return fmt.Errorf("%w: no listener of the node given: no tool to serve", ErrInvalidOptions)
	}
	return nil
}

// Server is the MCP server and the clients its tools use.
type Server struct {
	*sdk.Server
	opts   Options
	sql    *pgxpool.Pool
	kv     *redis.Client
	actors *actorapi.Client
}

// New makes the server and its clients (connections are made as tools
// need them). Close releases them.
func New(opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, Server: sdk.NewServer(&sdk.Implementation{Name: "orbit", Title: "Orbit", Version: opts.Version},
		&sdk.ServerOptions{Instructions: instructions})}
	if opts.PostgresURL != "" {
		cfg, err := pgxpool.ParseConfig(opts.PostgresURL)
		if err != nil {
			return nil, fmt.Errorf("%w: PostgresURL: %v", ErrInvalidOptions, err)
		}
		cfg.MaxConns = 4
		if s.sql, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
			return nil, err
		}
		s.addSQLTools()
	}
	if opts.Redis != nil {
		s.kv = redis.NewClient(opts.Redis)
		s.addKVTools()
	}
	if opts.ActorAddr != "" {
		var err error
		if s.actors, err = actorapi.Dial(opts.ActorAddr, opts.ActorDial...); err != nil {
			s.Close()
			return nil, err
		}
		s.addActorTools()
	}
	if opts.HTTPURL != "" {
		s.addClusterTools()
	}
	return s, nil
}

// Close releases the tools' clients.
func (s *Server) Close() error {
	var errs []error
	if s.sql != nil {
		s.sql.Close()
	}
	if s.kv != nil {
		errs = append(errs, s.kv.Close())
	}
	if s.actors != nil {
		errs = append(errs, s.actors.Close())
	}
	return errors.Join(errs...)
}

const instructions = `Orbit is a replicated database: SQL (PostgreSQL dialect, every transaction serializable), a Redis-compatible key space, and virtual actors. ` +
	`Use describe_schema before writing SQL; sql_query is read-only unless the server was started with writes allowed. ` +
	`Results are capped (a "truncated" flag says when); ask for fewer rows or narrow the query.`

// tool registers a typed tool whose calls end after Options.Timeout.
func tool[In, Out any](s *Server, name, description string, readOnly bool, h func(context.Context, In) (Out, error)) {
	t := &sdk.Tool{Name: name, Description: description, Annotations: &sdk.ToolAnnotations{ReadOnlyHint: readOnly}}
	sdk.AddTool(s.Server, t, func(ctx context.Context, _ *sdk.CallToolRequest, in In) (*sdk.CallToolResult, Out, error) {
		ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		defer cancel()
		out, err := h(ctx, in)
		return nil, out, err
	})
}

// limit is the rows a call may return: what it asked for, within MaxRows.
func (s *Server) limit(asked int) int {
	if asked <= 0 || asked > s.opts.MaxRows {
		return s.opts.MaxRows
	}
	return asked
}
