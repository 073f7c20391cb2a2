package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/orbitkernel/orbit/kernel/actor"
)

// SQL tools: sql_query, describe_schema, explain.

type sqlIn struct {
	SQL     string `json:"sql" jsonschema:"one SQL statement (PostgreSQL dialect)"`
	Params  []any  `json:"params,omitempty" jsonschema:"values for $1, $2, ... in the statement"`
	MaxRows int    `json:"max_rows,omitempty" jsonschema:"return at most this many rows (capped by the server's limit)"`
}

// SQLResult is a statement's outcome: its columns (name and type), its
// rows as PostgreSQL's text (null as null), and its command tag.
type SQLResult struct {
	Columns   []Column    `json:"columns"`
	Rows      [][]*string `json:"rows"`
	Truncated bool        `json:"truncated" jsonschema:"more rows were left out than max_rows allowed"`
	Tag       string      `json:"tag" jsonschema:"the command tag, e.g. SELECT 3 or INSERT 0 1"`
}

// Column names a result column and its type.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (s *Server) addSQLTools() {
	mode := "in a READ ONLY transaction: writes fail with 25006 (the server was not started with writes allowed)"
	if s.opts.AllowWrites {
		mode = "in a transaction of its own, committed if it succeeds (writes are allowed)"
	}
	tool(s, "sql_query", "Run one SQL statement (PostgreSQL dialect; every transaction is serializable) "+mode+
		". Values come back as PostgreSQL's text.", !s.opts.AllowWrites,
		func(ctx context.Context, in sqlIn) (SQLResult, error) {
			return s.query(ctx, in.SQL, in.Params, s.limit(in.MaxRows), s.opts.AllowWrites)
		})
	type explainIn struct {
		SQL string `json:"sql" jsonschema:"the statement to explain (it is not run)"`
	}
	type explainOut struct {
		Plan []string `json:"plan" jsonschema:"the plan, one step per line, as EXPLAIN prints it"`
	}
	tool(s, "explain", "Show the plan Orbit would run a SQL statement with (EXPLAIN), without running it.", true,
		func(ctx context.Context, in explainIn) (explainOut, error) {
			r, err := s.query(ctx, "EXPLAIN "+in.SQL, nil, s.opts.MaxRows, false)
			if err != nil {
				return explainOut{}, err
			}
			var out explainOut
			for _, row := range r.Rows {
				if len(row) > 0 && row[0] != nil {
					out.Plan = append(out.Plan, *row[0])
				}
			}
			return out, nil
		})
	type schemaIn struct {
		Table string `json:"table,omitempty" jsonschema:"describe only this table (default: every table)"`
	}
	type schemaOut struct {
		Tables []Table `json:"tables"`
	}
	tool(s, "describe_schema", "List the tables of the database with their columns: name, type, nullability, default.", true,
		func(ctx context.Context, in schemaIn) (schemaOut, error) {
			q := `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
				WHERE table_schema = 'public'`
			var params []any
			if in.Table != "" {
				q += ` AND table_name = $1`
				params = append(params, in.Table)
			}
			r, err := s.query(ctx, q+` ORDER BY table_name, ordinal_position`, params, -1, false)
			if err != nil {
				return schemaOut{}, err
			}
			var out schemaOut
			for _, row := range r.Rows {
				if len(out.Tables) == 0 || out.Tables[len(out.Tables)-1].Name != text(row[0]) {
					out.Tables = append(out.Tables, Table{Name: text(row[0])})
				}
				t := &out.Tables[len(out.Tables)-1]
				t.Columns = append(t.Columns, TableColumn{Name: text(row[1]), Type: text(row[2]), Nullable: text(row[3]) == "YES", Default: row[4]})
			}
			if in.Table != "" && len(out.Tables) == 0 {
				return out, fmt.Errorf("no table %q", in.Table)
			}
			return out, nil
		})
}

// Table is a table and its columns, in order.
type Table struct {
	Name    string        `json:"name"`
	Columns []TableColumn `json:"columns"`
}

// TableColumn is one column of a table.
type TableColumn struct {
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	Nullable bool    `json:"nullable"`
	Default  *string `json:"default,omitempty"`
}

func text(v *string) string {
	if v == nil {
		return ""
	}
	return *v
}

// query runs one statement in a transaction (READ ONLY unless write)
// over the simple protocol, so that every value arrives as PostgreSQL's
// text; at most max rows are kept (negative: all).
func (s *Server) query(ctx context.Context, sql string, params []any, max int, write bool) (SQLResult, error) {
	if strings.TrimSpace(sql) == "" {
		return SQLResult{}, errors.New("no SQL statement given")
	}
	access := pgx.ReadOnly
	if write {
		access = pgx.ReadWrite
	}
	tx, err := s.sql.BeginTx(ctx, pgx.TxOptions{AccessMode: access})
	if err != nil {
		return SQLResult{}, sqlError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after a Commit: nothing left to roll back
	rows, err := tx.Query(ctx, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, params...)...)
	if err != nil {
		return SQLResult{}, sqlError(err)
	}
	defer rows.Close()
	types := tx.Conn().TypeMap()
	var out SQLResult
	for _, f := range rows.FieldDescriptions() {
		typ := strconv.FormatUint(uint64(f.DataTypeOID), 10)
		if t, ok := types.TypeForOID(f.DataTypeOID); ok {
			typ = t.Name
		}
		out.Columns = append(out.Columns, Column{Name: f.Name, Type: typ})
	}
	out.Rows = [][]*string{}
	for rows.Next() {
		if max >= 0 && len(out.Rows) == max {
			out.Truncated = true
			continue // read the rest, so that the statement completes
		}
		row := make([]*string, len(out.Columns))
		for i, raw := range rows.RawValues() {
			if raw != nil {
				v := string(raw)
				row[i] = &v
			}
		}
		out.Rows = append(out.Rows, row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return SQLResult{}, sqlError(err)
	}
	out.Tag = rows.CommandTag().String()
	if write {
		if err := tx.Commit(ctx); err != nil {
			return SQLResult{}, sqlError(err)
		}
	}
	return out, nil
}

// sqlError says a server error with its SQLSTATE, as psql would.
func sqlError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := fmt.Sprintf("ERROR %s: %s", pe.Code, pe.Message)
		if pe.Detail != "" {
			msg += "\nDETAIL: " + pe.Detail
		}
		if pe.Hint != "" {
			msg += "\nHINT: " + pe.Hint
		}
		return errors.New(msg)
	}
	return err
}

// Key tools: kv_get, kv_scan.

// KeyValue is a key of the Redis key space and what it holds.
type KeyValue struct {
	Key    string `json:"key"`
	Exists bool   `json:"exists"`
	Type   string `json:"type,omitempty" jsonschema:"string, list, set, zset, hash or stream"`
	TTLms  int64  `json:"ttl_ms,omitempty" jsonschema:"milliseconds until it expires; absent: no expiry"`
	// Value is the string, the list's or set's elements, the hash's
	// fields and values, the sorted set's members and scores, or the
	// stream's entries.
	Value     any  `json:"value,omitempty"`
	Truncated bool `json:"truncated,omitempty" jsonschema:"more elements were left out than max_rows allowed"`
}

func (s *Server) addKVTools() {
	type getIn struct {
		Key     string `json:"key"`
		MaxRows int    `json:"max_rows,omitempty" jsonschema:"return at most this many elements of a list, set, hash, sorted set or stream"`
	}
	tool(s, "kv_get", "Read a key of the Redis-compatible key space: its type, time to live and value (a string, or the elements of a list, set, hash, sorted set or stream).", true,
		func(ctx context.Context, in getIn) (KeyValue, error) { return s.get(ctx, in.Key, s.limit(in.MaxRows)) })
	type scanIn struct {
		Match   string `json:"match,omitempty" jsonschema:"a glob pattern, as SCAN MATCH takes (default *)"`
		Cursor  string `json:"cursor,omitempty" jsonschema:"where to go on from: the cursor a previous call returned (default: the start)"`
		MaxRows int    `json:"max_rows,omitempty" jsonschema:"return at most about this many keys"`
	}
	type scanOut struct {
		Keys   []string `json:"keys"`
		Cursor string   `json:"cursor" jsonschema:"pass it back to go on; 0 when the scan is complete"`
	}
	tool(s, "kv_scan", "List keys of the Redis-compatible key space (SCAN): a page of keys matching a pattern and the cursor to go on from.", true,
		func(ctx context.Context, in scanIn) (scanOut, error) {
			cursor := uint64(0)
			if in.Cursor != "" {
				c, err := strconv.ParseUint(in.Cursor, 10, 64)
				if err != nil {
					return scanOut{}, fmt.Errorf("cursor %q: not a SCAN cursor", in.Cursor)
				}
				cursor = c
			}
			match, want := in.Match, s.limit(in.MaxRows)
			if match == "" {
				match = "*"
			}
			out := scanOut{Keys: []string{}}
			for {
				keys, next, err := s.kv.Scan(ctx, cursor, match, int64(min(want, 1000))).Result()
				if err != nil {
					return scanOut{}, err
				}
				out.Keys, cursor = append(out.Keys, keys...), next
				if cursor == 0 || len(out.Keys) >= want {
					break
				}
			}
			out.Cursor = strconv.FormatUint(cursor, 10)
			return out, nil
		})
}

// get reads key with the command its type takes, at most max elements.
func (s *Server) get(ctx context.Context, key string, max int) (KeyValue, error) {
	out := KeyValue{Key: key}
	typ, err := s.kv.Type(ctx, key).Result()
	if err != nil || typ == "none" {
		return out, err
	}
	out.Exists, out.Type = true, typ
	if ttl, err := s.kv.PTTL(ctx, key).Result(); err == nil && ttl > 0 {
		out.TTLms = ttl.Milliseconds()
	}
	n := int64(max)
	switch typ {
	case "string":
		out.Value, err = s.kv.Get(ctx, key).Result()
	case "list":
		var l int64
		if l, err = s.kv.LLen(ctx, key).Result(); err == nil {
			out.Truncated = l > n
			out.Value, err = s.kv.LRange(ctx, key, 0, n-1).Result()
		}
	case "set":
		var members []string
		if members, _, err = s.kv.SScan(ctx, key, 0, "*", n).Result(); err == nil {
			out.Value, out.Truncated = members[:min(len(members), max)], len(members) > max
			if card, cerr := s.kv.SCard(ctx, key).Result(); cerr == nil && card > int64(len(members)) {
				out.Truncated = true
			}
		}
	case "hash":
		var l int64
		if l, err = s.kv.HLen(ctx, key).Result(); err == nil {
			var fields map[string]string
			if l <= n {
				fields, err = s.kv.HGetAll(ctx, key).Result()
			} else {
				fields, err = s.hashPage(ctx, key, max)
				out.Truncated = true
			}
			out.Value = fields
		}
	case "zset":
		var l int64
		if l, err = s.kv.ZCard(ctx, key).Result(); err == nil {
			out.Truncated = l > n
			var zs []redis.Z
			if zs, err = s.kv.ZRangeWithScores(ctx, key, 0, n-1).Result(); err == nil {
				members := make([]map[string]any, len(zs))
				for i, z := range zs {
					members[i] = map[string]any{"member": z.Member, "score": z.Score}
				}
				out.Value = members
			}
		}
	case "stream":
		var l int64
		if l, err = s.kv.XLen(ctx, key).Result(); err == nil {
			out.Truncated = l > n
			out.Value, err = s.kv.XRangeN(ctx, key, "-", "+", n).Result()
		}
	default:
		err = fmt.Errorf("key %q holds a %s, which kv_get does not read", key, typ)
	}
	return out, err
}

// hashPage is up to max fields of a hash too large to return whole.
func (s *Server) hashPage(ctx context.Context, key string, max int) (map[string]string, error) {
	fields := map[string]string{}
	var cursor uint64
	for {
		kvs, next, err := s.kv.HScan(ctx, key, cursor, "*", int64(max)).Result()
		if err != nil {
			return nil, err
		}
		for i := 0; i+1 < len(kvs) && len(fields) < max; i += 2 {
			fields[kvs[i]] = kvs[i+1]
		}
		if cursor = next; cursor == 0 || len(fields) >= max {
			return fields, nil
		}
	}
}

// Actor tools: actor_invoke, actor_list.

func (s *Server) addActorTools() {
	type invokeIn struct {
		Type    string `json:"type" jsonschema:"the actor type, e.g. account"`
		Key     string `json:"key" jsonschema:"the actor's key within its type"`
		Method  string `json:"method"`
		Payload string `json:"payload,omitempty" jsonschema:"the call's payload: JSON, or any text the type reads"`
	}
	type invokeOut struct {
		Reply string `json:"reply" jsonschema:"the actor's reply, as it sent it (JSON for the bank example)"`
	}
	tool(s, "actor_invoke", "Call a method of a virtual actor (activated on demand somewhere in the cluster; its state changes at most once per call). "+
		"An actor's refusal comes back as an error.", false,
		func(ctx context.Context, in invokeIn) (invokeOut, error) {
			out, err := s.actors.Invoke(ctx, in.Type, in.Key, in.Method, []byte(in.Payload))
			var me *actor.MethodError
			if errors.As(err, &me) {
				return invokeOut{}, fmt.Errorf("%s %s refused %s: %s", in.Type, in.Key, in.Method, me.Msg)
			}
			return invokeOut{Reply: string(out)}, err
		})
	type listOut struct {
		Actors []map[string]string `json:"actors" jsonschema:"the actors active on the node, each with its type and key"`
	}
	tool(s, "actor_list", "List the virtual actors active on the node the server talks to.", true,
		func(ctx context.Context, _ struct{}) (listOut, error) {
			refs, err := s.actors.List(ctx)
			out := listOut{Actors: []map[string]string{}}
			for _, r := range refs {
				out.Actors = append(out.Actors, map[string]string{"type": r.Type, "key": r.Key})
			}
			return out, err
		})
}

// Cluster tools: cluster_status.

func (s *Server) addClusterTools() {
	tool(s, "cluster_status", "The cluster as the node sees it (GET /cluster): its nodes and their health, its ranges with their replicas and leaders.", true,
		func(ctx context.Context, _ struct{}) (map[string]any, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.opts.HTTPURL, "/")+"/cluster", nil)
			if err != nil {
				return nil, err
			}
			resp, err := s.opts.HTTPClient.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("GET /cluster: %s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			var out map[string]any
			if err := json.Unmarshal(body, &out); err != nil {
				return nil, fmt.Errorf("GET /cluster: %v", err)
			}
			return out, nil
		})
}
