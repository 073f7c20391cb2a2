package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// The differential test of the whole server: rapid-generated command
// sequences (data commands, MULTI/EXEC, connection commands, pipelines)
// go over TCP to a real redis-server and to `orbit serve`, and the raw
// replies must be equal, after sorting what Redis leaves unordered.
// adapters/redis's differential test covers each command's arguments in
// depth; this one covers the path through the session layer, the state
// machine, consensus and the wire.
//
// TestDifferentialServe runs it against one range, and against four, and against four, where "a", "b" and "c" lie
// in three different ranges: every multi-key command and MULTI/EXEC block
// over them is then a cross-range transaction, which must answer as a
// single redis-server does.
func TestDifferentialServe(t *testing.T) {
	for _, ranges := range []int{1, 4} {
		t.Run(fmt.Sprintf("ranges=%d", ranges), func(t *testing.T) {
			differentialServe(t, startRedisServer(t), startServer(t, ranges)) // each a fresh CONFIG
		})
	}
}

func differentialServe(t *testing.T, real, orbit string) {
	for _, proto := range []string{"2", "3"} {
		r, o := dialRESP(t, real), dialRESP(t, orbit)
		for _, c := range []*respConn{r, o} {
			if _, err := c.do("HELLO", proto); err != nil {
				t.Fatal(err)
			}
		}
		rapid.Check(t, func(rt *rapid.T) {
			for _, c := range []*respConn{r, o} {
				if _, err := c.do("FLUSHALL"); err != nil {
					rt.Fatal(err)
				}
			}
			n := rapid.IntRange(1, 25).Draw(rt, "len")
			var batch [][]string
			for range n {
				cmd := genServeCmd(rt, false)
				if cmd[0] == "MULTI" {
					batch = append(batch, cmd)
					for range rapid.IntRange(0, 4).Draw(rt, "queued") {
						batch = append(batch, genServeCmd(rt, true))
					}
					batch = append(batch, []string{rapid.SampledFrom([]string{"EXEC", "EXEC", "DISCARD"}).Draw(rt, "end")})
					continue
				}
				batch = append(batch, cmd)
			}
			// Send the sequence as one pipeline to each side.
			want, err := r.pipeline(batch)
			if err != nil {
				rt.Fatal(err)
			}
			got, err := o.pipeline(batch)
			if err != nil {
				rt.Fatal(err)
			}
			for i := range batch {
				w, g := normalizeRaw(batch[i], want[i]), normalizeRaw(batch[i], got[i])
				if !bytes.Equal(w, g) {
					rt.Fatalf("RESP%s %q:\nredis: %q\norbit: %q", proto, batch[i], w, g)
				}
			}
		})
	}
}

var serveKeys = []string{"a", "b", "c"}

// serveGetScript is a script EVALSHA may find cached (after its EVAL) or
// not (before it, or after SCRIPT FLUSH).
const serveGetScript = "return redis.call('get', KEYS[1])"

var serveGetScriptSHA = redis.ScriptSHA([]byte(serveGetScript))

// serveLibrary is a function library FUNCTION LOAD may put in place (or
// DELETE remove) before an FCALL.
const serveLibrary = "#!lua name=served\n" +
	"redis.register_function{function_name='sget', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}\n" +
	"redis.register_function('sappend', function(keys, args) redis.call('append', keys[1], args[1]) return redis.pcall('rpush', keys[2], args[1]) end)\n"

// genServeCmd draws a command; inMulti leaves out MULTI, EXEC, DISCARD,
// KEYS and CONFIG GET.
func genServeCmd(t *rapid.T, inMulti bool) []string {
	k := rapid.SampledFrom(serveKeys).Draw(t, "key")
	k2 := rapid.SampledFrom(serveKeys).Draw(t, "key2")
	v := rapid.SampledFrom([]string{"", "x", "1", "10", "-3", "1.5", "abc"}).Draw(t, "value")
	i := strconv.Itoa(rapid.IntRange(-3, 3).Draw(t, "int"))
	cmds := [][]string{
		{"GET", k}, {"SET", k, v}, {"SET", k, v, "NX"}, {"SET", k, v, "XX", "GET"}, {"INCR", k}, {"INCRBY", k, i},
		{"APPEND", k, v}, {"STRLEN", k}, {"GETDEL", k}, {"MSET", k, v, k2, v}, {"MGET", k, k2}, {"DEL", k, k2},
		{"EXISTS", k, k2}, {"TYPE", k}, {"EXPIRE", k, "1000"}, {"TTL", k}, {"PERSIST", k}, {"RENAME", k, k2},
		{"MOVE", k, rapid.SampledFrom([]string{"0", "1", "9", "16"}).Draw(t, "movedb")},
		{"LPUSH", k, v}, {"RPUSH", k, v, v}, {"LPOP", k}, {"LRANGE", k, "0", "-1"}, {"LLEN", k}, {"LMOVE", k, k2, "LEFT", "RIGHT"},
		{"BLPOP", k, k2, "0.01"},
		{"HSET", k, v, v}, {"HGET", k, v}, {"HGETALL", k}, {"HINCRBY", k, v, i}, {"HDEL", k, v},
		{"SADD", k, v}, {"SMEMBERS", k}, {"SREM", k, v}, {"SINTERSTORE", k, k, k2}, {"SCARD", k},
		{"ZADD", k, i, v}, {"ZRANGE", k, "0", "-1", "WITHSCORES"}, {"ZINCRBY", k, i, v}, {"ZSCORE", k, v},
		{"PING"}, {"PING", v}, {"ECHO", v}, {"DBSIZE"}, {"KEYS", "*"}, {"FLUSHDB"},
		{"SELECT", rapid.SampledFrom([]string{"0", "0", "1", "9", "15", "16", "-1", "x"}).Draw(t, "db")},
		{"EXEC"}, {"DISCARD"}, {"MULTI"}, {"GET"}, {"NOSUCH", k}, {"SET", k}, {"PING", v, v},
		// What clients and test harnesses set at start-up.
		{"CONFIG", "SET", rapid.SampledFrom([]string{"hash-max-ziplist-entries", "zset-max-listpack-entries", "set-max-intset-entries", "list-max-listpack-size", "list-compress-depth", "lua-time-limit"}).Draw(t, "intcfg"), i},
		{"CONFIG", "SET", rapid.SampledFrom([]string{"hash-max-listpack-value", "zset-max-ziplist-value"}).Draw(t, "memcfg"), rapid.SampledFrom([]string{"64", "1k", "2kb", "x", "-1", "1.5", ""}).Draw(t, "mem")},
		{"CONFIG", "SET", "maxmemory-policy", rapid.SampledFrom([]string{"noeviction", "allkeys-lru", "ALLKEYS-LFU", "lru"}).Draw(t, "policy")},
		{"CONFIG", "SET", "notify-keyspace-events", rapid.SampledFrom([]string{"", "Q", "KEA", "Ex", "AKEnm", "g$lshzxetdKE", "Elm", "K"}).Draw(t, "notify")},
		// WAIT: no replica on either side (Redis would block for ever on
		// more than 0 with no timeout).
		{"WAIT", "0", "0"}, {"WAIT", "1", "5"}, {"WAIT", "x", "0"}, {"WAIT", "0", "-1"}, {"WAIT", "0", "1.5"}, {"WAIT", "0"},
		{"CONFIG", "SET", "save", ""},
		// Scripts (over keys in one range or several) and the function
		// commands a harness sends at start-up.
		{"EVAL", "return redis.call('incrby', KEYS[1], ARGV[1])", "1", k, i},
		{"EVAL", "redis.call('set', KEYS[1], ARGV[1]) return redis.pcall('lpush', KEYS[2], ARGV[1])", "2", k, k2, v},
		{"EVAL_RO", "return {redis.call('get', KEYS[1]), redis.call('type', KEYS[2])}", "2", k, k2},
		{"EVALSHA", "7a3b2fa9f1b3a9e9f0c9a0bd0a6f1a7f8d6c3d1e", "1", k},
		{"EVALSHA", serveGetScriptSHA, "1", k}, {"EVAL", serveGetScript, "1", k},
		{"SCRIPT", "EXISTS", serveGetScriptSHA}, {"SCRIPT", "FLUSH"},
		{"FUNCTION", "FLUSH"}, {"FUNCTION", "LIST"}, {"FUNCTION", "STATS"}, {"FUNCTION", "DELETE", "lib"}, {"FCALL", "f", "0"},
		{"FUNCTION", "LOAD", "REPLACE", serveLibrary}, {"FUNCTION", "DELETE", "served"},
		{"FCALL", "sget", "1", k}, {"FCALL_RO", "sget", "1", k}, {"FCALL", "sappend", "2", k, k2, v}, {"FCALL_RO", "sappend", "2", k, k2, v},
		{"CONFIG", "GET", rapid.SampledFrom([]string{"hash-max-*", "zset-max-*", "list-*", "set-max-intset-entries", "maxmemory-policy", "busy-reply-threshold", "lua-time-limit", "save", "notify-keyspace-events"}).Draw(t, "get")},
	}
	if inMulti {
		cmds = slices.DeleteFunc(cmds, func(c []string) bool {
			// KEYS, CONFIG GET and FUNCTION LIST come in Redis's dict
			// order, sorted only at the top level (normalizeRaw).
			return slices.Contains([]string{"EXEC", "DISCARD", "MULTI", "KEYS"}, c[0]) || (c[0] == "CONFIG" && c[1] == "GET") ||
				(c[0] == "FUNCTION" && c[1] == "LIST")
		})
	}
	return rapid.SampledFrom(cmds).Draw(t, "cmd")
}

// normalizeRaw sorts the replies Redis leaves unordered.
func normalizeRaw(cmd []string, raw []byte) []byte {
	r, _, err := redis.ParseReply(raw)
	if err != nil || r.Kind == redis.KindError {
		return raw
	}
	sortRaw := func(e []redis.Reply) {
		slices.SortFunc(e, func(a, b redis.Reply) int { return bytes.Compare(redis.AppendRESP3(nil, a), redis.AppendRESP3(nil, b)) })
	}
	switch strings.ToLower(cmd[0]) {
	case "smembers", "keys":
		sortRaw(r.Elems)
	case "hgetall", "config":
		if r.Kind == redis.KindMap || r.Kind == redis.KindArray {
			type pair struct{ k, v redis.Reply }
			var ps []pair
			for i := 0; i+1 < len(r.Elems); i += 2 {
				ps = append(ps, pair{r.Elems[i], r.Elems[i+1]})
			}
			slices.SortFunc(ps, func(a, b pair) int { return bytes.Compare(a.k.Str, b.k.Str) })
			for i, p := range ps {
				r.Elems[2*i], r.Elems[2*i+1] = p.k, p.v
			}
		}
	case "function":
		// A library's functions come in Redis's dictionary order.
		for _, lib := range r.Elems {
			for i := 0; i+1 < len(lib.Elems); i += 2 {
				if string(lib.Elems[i].Str) == "functions" {
					sortRaw(lib.Elems[i+1].Elems)
				}
			}
		}
	case "ttl":
		if r.Kind == redis.KindInt && r.Int > 0 {
			r.Int = 1 // only "has a TTL": the clocks moved apart
		}
	default:
		return raw
	}
	// Both sides go through the same parse and encode; the first raw byte
	// keeps the top-level type as sent.
	return append([]byte{raw[0]}, redis.AppendRESP3(nil, r)...)
}

// startRedisServer starts a private redis-server, or skips the test when
// it is not installed (fails under CI, which installs it).
func startRedisServer(t testing.TB, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on PATH, and CI is set: run scripts/install-test-deps.sh")
		}
		t.Skip("redis-server is not on PATH (scripts/install-test-deps.sh installs it)")
	}
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--logfile", "", "--loglevel", "warning", "--dir", t.TempDir(), "--hz", "500"}
	cmd := exec.Command(bin, append(args, extra...)...) // later settings win
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
	}
	t.Fatalf("redis-server did not come up on %s", addr)
	return ""
}

// respConn is a raw RESP client returning each reply's bytes.
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRESP(t *testing.T, addr string) *respConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &respConn{c: c, r: bufio.NewReader(c)}
}

// bothReplies sends cmd to the real server (r) and to Orbit (o) and
// returns their raw replies.
func bothReplies(t *testing.T, r, o *respConn, cmd []string) (want, got []byte) {
	t.Helper()
	want, err := r.do(cmd...)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = o.do(cmd...); err != nil {
		t.Fatal(err)
	}
	return want, got
}

func (c *respConn) do(args ...string) ([]byte, error) {
	out, err := c.pipeline([][]string{args})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (c *respConn) pipeline(cmds [][]string) ([][]byte, error) {
	var b []byte
	for _, args := range cmds {
		b = fmt.Appendf(b, "*%d\r\n", len(args))
		for _, a := range args {
			b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.c.Write(b); err != nil {
		return nil, err
	}
	var out [][]byte
	for range cmds {
		r, err := readReply(c.r)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// readReply reads one reply of either protocol, raw.
func readReply(r *bufio.Reader) ([]byte, error) {
	var out []byte
	for pending := 1; pending > 0; pending-- {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		if len(line) < 3 {
			return nil, errors.New("short RESP line")
		}
		out = append(out, line...)
		body := string(line[1 : len(line)-2])
		switch line[0] {
		case '$', '=':
			n, _ := strconv.Atoi(body)
			if n >= 0 {
				buf := make([]byte, n+2)
				if _, err := io.ReadFull(r, buf); err != nil {
					return nil, err
				}
				out = append(out, buf...)
			}
		case '*', '~', '>', '%':
			n, _ := strconv.Atoi(body)
			if line[0] == '%' {
				n *= 2
			}
			pending += max(n, 0)
		}
	}
	return out, nil
}
