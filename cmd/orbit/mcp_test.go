package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
)

// mcpNode is an orbit serve node with every listener an MCP server uses.
func mcpNode(t *testing.T) boundAddrs {
	t.Helper()
	cfg := serveConfig{nodeID: 1, dataDir: filepath.Join(t.TempDir(), "data"), redisAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0",
		pgAddr: "127.0.0.1:0", actors: "bank", grpcAddr: "127.0.0.1:0"}
	addrs, _ := launchServerAddrs(t, cfg)
	waitReady(t, addrs.http)
	return addrs
}

// mcpConfigFor is orbit mcp's configuration for the node at addrs.
func mcpConfigFor(addrs boundAddrs, write bool, maxRows int) *mcpConfig {
	cfg := &mcpConfig{pgURL: "postgres://postgres@" + addrs.pg + "/postgres?sslmode=disable", redisAddr: addrs.redis,
		grpcAddr: addrs.grpc, httpAddr: addrs.http}
	cfg.opts.AllowWrites, cfg.opts.MaxRows, cfg.opts.Timeout = write, maxRows, 20*time.Second
	return cfg
}

// mcpSession connects an SDK client to the server cfg makes, in memory.
func mcpSession(t *testing.T, ctx context.Context, cfg *mcpConfig) *sdk.ClientSession {
	t.Helper()
	srv, err := cfg.server()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	st, ct := sdk.NewInMemoryTransports()
	if _, err := srv.Connect(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// call calls a tool and returns its structured result decoded into a
// map, or the tool's error text (isErr).
func call(t *testing.T, ctx context.Context, cs *sdk.ClientSession, name string, args map[string]any) (out map[string]any, errText string) {
	t.Helper()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v", name, err)
	}
	if res.IsError {
		var b strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(*sdk.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
		return nil, b.String()
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: structured content %s: %v", name, raw, err)
	}
	return out, ""
}

func mustCall(t *testing.T, ctx context.Context, cs *sdk.ClientSession, name string, args map[string]any) map[string]any {
	t.Helper()
	out, errText := call(t, ctx, cs, name, args)
	if errText != "" {
		t.Fatalf("%s %v: %s", name, args, errText)
	}
	return out
}

// TestMCPTools: every tool through an SDK client against a real node —
// SQL read-only unless writes are allowed (a write is PostgreSQL's
// 25006), rows capped and said so, the schema and a plan, keys of every
// type, actors (a refusal is a tool error), the cluster's state.
func TestMCPTools(t *testing.T) {
	addrs := mcpNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ro := mcpSession(t, ctx, mcpConfigFor(addrs, false, 3))
	rw := mcpSession(t, ctx, mcpConfigFor(addrs, true, 3))

	tools, err := ro.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
		if tl.InputSchema == nil {
			t.Errorf("tool %s has no input schema", tl.Name)
		}
	}
	slices.Sort(names)
	want := []string{"actor_invoke", "actor_list", "cluster_status", "describe_schema", "explain", "kv_get", "kv_scan", "sql_query"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}

	// SQL.
	if _, errText := call(t, ctx, ro, "sql_query", map[string]any{"sql": "CREATE TABLE pets (id int PRIMARY KEY, name text NOT NULL, age int)"}); !strings.Contains(errText, "25006") {
		t.Fatalf("a write through the read-only server: %q, want 25006", errText)
	}
	mustCall(t, ctx, rw, "sql_query", map[string]any{"sql": "CREATE TABLE pets (id int PRIMARY KEY, name text NOT NULL, age int)"})
	ins := mustCall(t, ctx, rw, "sql_query", map[string]any{"sql": "INSERT INTO pets VALUES (1, 'rex', 3), (2, 'tom', NULL), (3, 'kit', 1), (4, 'bo', 9), (5, 'ed', 2)"})
	if ins["tag"] != "INSERT 0 5" {
		t.Fatalf("insert tag %v", ins["tag"])
	}
	sel := mustCall(t, ctx, ro, "sql_query", map[string]any{"sql": "SELECT id, name, age FROM pets WHERE id >= $1 ORDER BY id", "params": []any{2}})
	rows, _ := sel["rows"].([]any)
	if len(rows) != 3 || sel["truncated"] != true {
		t.Fatalf("4 rows capped at 3: %v", sel)
	}
	if got, _ := json.Marshal(rows[0]); string(got) != `["2","tom",null]` {
		t.Fatalf("first row %s, want [\"2\",\"tom\",null] (PostgreSQL's text, null as null)", got)
	}
	if cols, _ := json.Marshal(sel["columns"]); !strings.Contains(string(cols), `{"name":"age","type":"int4"}`) {
		t.Fatalf("columns %s", cols)
	}
	if one := mustCall(t, ctx, ro, "sql_query", map[string]any{"sql": "SELECT name FROM pets ORDER BY id", "max_rows": 1}); len(one["rows"].([]any)) != 1 {
		t.Fatalf("max_rows 1: %v", one)
	}
	if _, errText := call(t, ctx, ro, "sql_query", map[string]any{"sql": "SELECT * FROM nowhere"}); !strings.Contains(errText, "42P01") {
		t.Fatalf("an unknown table: %q, want 42P01", errText)
	}
	schema := mustCall(t, ctx, ro, "describe_schema", map[string]any{"table": "pets"})
	if got, _ := json.Marshal(schema); !strings.Contains(string(got), `"name":"pets"`) || !strings.Contains(string(got), `{"name":"name","nullable":false,"type":"text"}`) {
		t.Fatalf("describe_schema: %s", got)
	}
	if _, errText := call(t, ctx, ro, "describe_schema", map[string]any{"table": "nowhere"}); !strings.Contains(errText, "no table") {
		t.Fatalf("describe_schema of no table: %q", errText)
	}
	plan := mustCall(t, ctx, ro, "explain", map[string]any{"sql": "SELECT * FROM pets WHERE id = 1"})
	if lines, _ := plan["plan"].([]any); len(lines) == 0 {
		t.Fatalf("explain: %v", plan)
	}

	// Keys.
	rdb := redis.NewClient(&redis.Options{Addr: addrs.redis})
	defer rdb.Close()
	if err := rdb.Set(ctx, "mcp:s", "v", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, "mcp:h", "a", "1", "b", "2")
	rdb.RPush(ctx, "mcp:l", "x", "y", "z", "w")
	rdb.ZAdd(ctx, "mcp:z", redis.Z{Score: 1.5, Member: "m"})
	s := mustCall(t, ctx, ro, "kv_get", map[string]any{"key": "mcp:s"})
	if s["type"] != "string" || s["value"] != "v" || s["ttl_ms"].(float64) <= 0 {
		t.Fatalf("kv_get string: %v", s)
	}
	if h := mustCall(t, ctx, ro, "kv_get", map[string]any{"key": "mcp:h"}); h["type"] != "hash" || h["value"].(map[string]any)["b"] != "2" {
		t.Fatalf("kv_get hash: %v", h)
	}
	if l := mustCall(t, ctx, ro, "kv_get", map[string]any{"key": "mcp:l"}); len(l["value"].([]any)) != 3 || l["truncated"] != true {
		t.Fatalf("kv_get list of 4 capped at 3: %v", l)
	}
	if z := mustCall(t, ctx, ro, "kv_get", map[string]any{"key": "mcp:z"}); z["type"] != "zset" {
		t.Fatalf("kv_get zset: %v", z)
	}
	if n := mustCall(t, ctx, ro, "kv_get", map[string]any{"key": "mcp:none"}); n["exists"] != false {
		t.Fatalf("kv_get of no key: %v", n)
	}
	var scanned []string
	for cursor := ""; ; {
		page := mustCall(t, ctx, ro, "kv_scan", map[string]any{"match": "mcp:*", "cursor": cursor})
		for _, k := range page["keys"].([]any) {
			scanned = append(scanned, k.(string))
		}
		if cursor = page["cursor"].(string); cursor == "0" {
			break
		}
	}
	slices.Sort(scanned)
	if !slices.Equal(slices.Compact(scanned), []string{"mcp:h", "mcp:l", "mcp:s", "mcp:z"}) {
		t.Fatalf("kv_scan mcp:*: %v", scanned)
	}

	// Actors.
	dep := mustCall(t, ctx, ro, "actor_invoke", map[string]any{"type": "account", "key": "ann", "method": "deposit", "payload": `{"amount": 40}`})
	if dep["reply"] != `{"balance":40}` {
		t.Fatalf("actor_invoke deposit: %v", dep)
	}
	if _, errText := call(t, ctx, ro, "actor_invoke", map[string]any{"type": "account", "key": "ann", "method": "withdraw", "payload": `{"amount": 400}`}); !strings.Contains(errText, "insufficient funds") {
		t.Fatalf("an overdraft: %q, want the account's refusal", errText)
	}
	if got, _ := json.Marshal(mustCall(t, ctx, ro, "actor_list", nil)); !strings.Contains(string(got), `{"key":"ann","type":"account"}`) {
		t.Fatalf("actor_list: %s", got)
	}

	// The cluster.
	if c := mustCall(t, ctx, ro, "cluster_status", nil); c["nodes"] == nil {
		t.Fatalf("cluster_status: %v", c)
	}
}

// TestMCPOverHTTP: orbit mcp's streamable HTTP handler refuses a request
// without the bearer token and serves a client that sends it; --listen
// without a token is refused off loopback and allowed there only with
// --insecure.
func TestMCPOverHTTP(t *testing.T) {
	addrs := mcpNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := mcpConfigFor(addrs, false, 10)
	cfg.pgURL, cfg.redisAddr, cfg.grpcAddr = "", "", "" // cluster_status alone
	srv, err := cfg.server()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(mcpHTTPHandler(srv.Server, "s3cret"))
	defer hs.Close()

	resp, err := http.Post(hs.URL+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %s, want 401", resp.Status)
	}

	client := &http.Client{Transport: bearer{token: "s3cret"}}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx,
		&sdk.StreamableClientTransport{Endpoint: hs.URL + "/mcp", HTTPClient: client, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if c := mustCall(t, ctx, cs, "cluster_status", nil); c["nodes"] == nil {
		t.Fatalf("cluster_status over HTTP: %v", c)
	}

	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--listen", "0.0.0.0:0"}, false},
		{[]string{"--listen", "127.0.0.1:0"}, false},
		{[]string{"--listen", "127.0.0.1:0", "--insecure"}, true},
		{[]string{"--listen", "0.0.0.0:0", "--insecure"}, false},
		{[]string{"--listen", "0.0.0.0:0", "--token", "t"}, true},
	} {
		t.Setenv("ORBIT_MCP_TOKEN", "")
		if _, err := parseMCPFlags(tc.args, &strings.Builder{}); (err == nil) != tc.ok {
			t.Errorf("orbit mcp %v: %v, want ok %v", tc.args, err, tc.ok)
		}
	}
}

// bearer adds the Authorization header to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMCPStdio: orbit mcp as an MCP client starts it, on stdin and
// stdout: its flags reach the tools, and it ends when its input does.
func TestMCPStdio(t *testing.T) {
	addrs := mcpNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- mcpCommand([]string{"--pg", "", "--redis", addrs.redis, "--grpc-addr", "", "--http-addr", "", "--max-rows", "2"}, inR, outW, &stderr)
	}()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, &sdk.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 2 {
		t.Fatalf("with only --redis: %d tools, want kv_get and kv_scan", len(tools.Tools))
	}
	rdb := redis.NewClient(&redis.Options{Addr: addrs.redis})
	defer rdb.Close()
	rdb.RPush(ctx, "q", "a", "b", "c")
	if l := mustCall(t, ctx, cs, "kv_get", map[string]any{"key": "q"}); len(l["value"].([]any)) != 2 {
		t.Fatalf("--max-rows 2: %v", l)
	}
	cs.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("orbit mcp exited %d: %s", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("orbit mcp did not end with its input")
	}
}
