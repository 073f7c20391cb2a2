package redis

import (
	"strconv"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/consensus"
)

// ints returns "prefix" followed by n integers from first on, spaced.
func ints(prefix string, first, n int) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i := range n {
		b.WriteString(" " + strconv.Itoa(first+i))
	}
	return b.String()
}

// pairsOf returns "prefix" followed by n "<a>i <b>i" pairs.
func pairsOf(prefix, a, b string, n int) string {
	var s strings.Builder
	s.WriteString(prefix)
	for i := range n {
		s.WriteString(" " + a + strconv.Itoa(i) + " " + b + strconv.Itoa(i))
	}
	return s.String()
}

var (
	x44, x45 = strings.Repeat("x", 44), strings.Repeat("x", 45)
	v64, v65 = strings.Repeat("v", 64), strings.Repeat("v", 65)
)

// objectCases are OBJECT's corners: every encoding on both sides of its
// default threshold, REFCOUNT's shared integers, the subcommand and arity
// errors, missing and expired keys.
var objectCases = [][]string{
	{"set a " + x44, "object encoding a", "set a " + x45, "object encoding a", "object refcount a",
		"set a 12345678901234567890", "object encoding a", "set a 9223372036854775807", "object encoding a",
		"set a -9223372036854775808", "object encoding a", "object refcount a", "set a 9223372036854775808", "object encoding a",
		"set a 0", "object refcount a", "set a 9999", "object refcount a", "object encoding a", "set a 10000", "object refcount a",
		"set a -1", "object refcount a", "set a -0", "object encoding a", "set a 01", "object encoding a", "set a +1",
		"object encoding a", "set a ''", "object encoding a", "object refcount a", "set a 1.5", "object encoding a",
		"set a " + strings.Repeat("9", 20), "object encoding a"},
	// History: Redis's encoding after these is "raw" or "embstr"; both
	// sides answer the value's fresh encoding (freshen, object.go).
	{"set a 5", "append a 1", "object encoding a", "object refcount a", "incrbyfloat a 1", "object encoding a",
		"setrange a 0 7", "object encoding a", "setbit a 0 0", "object encoding a", "incr a", "object encoding a"},
	{"rpush l a", "object encoding l", "object refcount l", ints("rpush l", 0, 600), "object encoding l"},
	{ints("sadd s", 1, 512), "object encoding s", "sadd s 0", "object encoding s", "srem s 0", "object encoding s",
		"sadd s x", "object encoding s", "srem s x", "object encoding s", "sadd t -1 01", "object encoding t",
		"sadd u 9223372036854775807 -9223372036854775808", "object encoding u", "sadd u 9223372036854775808",
		"object encoding u", "object refcount u"},
	{pairsOf("hset h", "f", "v", 512), "object encoding h", "hset h g 1", "object encoding h", "hdel h g",
		"object encoding h", "hset k f " + v64, "object encoding k", "hset k f " + v65, "object encoding k",
		"hset k f v", "object encoding k", "hset k " + v65 + " v", "object encoding k", "hdel k " + v65, "object encoding k"},
	{pairsOf("zadd z", "", "m", 128), "object encoding z", "zadd z 1 n", "object encoding z", "zrem z n",
		"object encoding z", "zadd y 1 " + v64, "object encoding y", "zadd y 1 " + v65, "object encoding y", "object refcount y"},
	{"set a x", "object", "object foo", "object foo a", "OBJECT Bogus a b", "object encoding", "object encoding a b",
		"object help x", "object help", "OBJECT HELP", "object Encoding a", "object ENCODING nokey", "object refcount nokey",
		"object freq a", "object freq nokey", "object idletime a", "object idletime nokey", "object freq", "object idletime a b",
		// Not "object encoding\x00 a": Redis finds a subcommand in a hash
		// table hashed over the whole name (NUL included, with a seed
		// drawn at start-up) and compared with strcasecmp (up to the NUL),
		// so it answers "unknown subcommand" or the encoding depending on
		// the seed. Orbit answers "unknown subcommand", Redis's usual reply.
		"object " + strings.Repeat("q", 200)},
	{"set a x px 1", "hset h f v", "pexpire h 1", "sleep", "object encoding a", "object refcount h", "object freq a",
		"object idletime h", "exists a h"},
	{"set a " + x45, "expire a 3600", "object encoding a", "ttl a"},
}

func TestObjectMatchesRedis(t *testing.T) { matchRedis(t, objectCases, matchOptions{}) }

// TestObjectConfigMatchesRedis: the thresholds and maxmemory-policy as
// CONFIG SET changes them, on a real server and in ObjectConfig.
func TestObjectConfigMatchesRedis(t *testing.T) {
	cfg := ObjectConfig{HashMaxListpackEntries: 2, HashMaxListpackValue: 3, SetMaxIntsetEntries: 1,
		ZSetMaxListpackEntries: 0, ZSetMaxListpackValue: 5, LFU: true}
	matchRedis(t, [][]string{
		{"hset h a 1 b 2", "object encoding h", "hset h c 3", "object encoding h", "hset k f abcd", "object encoding k",
			"hset k f abc", "object encoding k", "hset j abcd v", "object encoding j",
			"sadd s 1", "object encoding s", "sadd s 2", "object encoding s", "sadd t x", "object encoding t",
			"zadd z 1 a", "object encoding z", "object freq h", "object freq nokey", "object idletime h",
			"object idletime nokey", "object refcount s", "set a x", "object freq a"},
		// Not "SET a 1; OBJECT FREQ a": Redis's shared integers carry
		// whatever LRU clock they were created with at start-up, so their
		// FREQ under LFU is arbitrary.
	}, matchOptions{objCfg: &cfg, config: []string{"hash-max-listpack-entries", "2", "hash-max-listpack-value", "3", "set-max-intset-entries", "1",
		"zset-max-listpack-entries", "0", "zset-max-listpack-value", "5", "maxmemory-policy", "volatile-lfu"}})
	cfg = ObjectConfig{HashMaxListpackEntries: 0, HashMaxListpackValue: 0, SetMaxIntsetEntries: 0,
		ZSetMaxListpackEntries: 1, ZSetMaxListpackValue: 0, LFU: false}
	matchRedis(t, [][]string{
		{"hset h '' ''", "object encoding h", "hset k a ''", "object encoding k", "sadd s 1", "object encoding s",
			"zadd z 1 ''", "object encoding z", "zadd y 1 a", "object encoding y", "object freq h"},
	}, matchOptions{objCfg: &cfg, config: []string{"hash-max-listpack-entries", "0", "hash-max-listpack-value", "0", "set-max-intset-entries", "0",
		"zset-max-listpack-entries", "1", "zset-max-listpack-value", "0", "maxmemory-policy", "allkeys-lru"}})
}

// TestObjectConfigEnvelope: WithObjectConfig carries the configuration
// through the state machine's command encoding, around InDB and MULTI.
func TestObjectConfigEnvelope(t *testing.T) {
	cfg := ObjectConfig{HashMaxListpackEntries: 1, HashMaxListpackValue: 1 << 40, SetMaxIntsetEntries: 3,
		ZSetMaxListpackEntries: 7, ZSetMaxListpackValue: 0, LFU: true}
	for _, inner := range [][]byte{ExecCommand(toArgs([]string{"object", "freq", "k"})), InDB(3, ExecCommand(nil)),
		MultiCommand(nil, nil)} {
		b := WithObjectConfig(cfg, inner)
		got, rest, ok := readObjectConfig(b)
		if !ok || *got != cfg || string(rest) != string(inner) {
			t.Fatalf("%x: got %+v %x %v", b, got, rest, ok)
		}
		for n := 2; n < len(b)-len(inner); n++ {
			if _, _, ok := readObjectConfig(b[:n]); ok {
				t.Fatalf("truncated %x read as valid", b[:n])
			}
		}
	}
}

// TestObjectThroughStateMachine: OBJECT as the session sends it, wrapped
// with the node's configuration around its database (and inside MULTI),
// answers under that configuration, as a query and as a write.
func TestObjectThroughStateMachine(t *testing.T) {
	m := &memRange{kv: map[string][]byte{}}
	sm := &StateMachine{}
	meta := consensus.CommandMeta{NowMillis: 1000}
	args := func(s string) [][]byte { return splitCmd(s) }
	if _, err := sm.Apply(m, InDB(2, ExecCommand(args("hset h a 1 b 2"))), meta); err != nil {
		t.Fatal(err)
	}
	small := ObjectConfig{HashMaxListpackEntries: 1, LFU: true}
	for _, c := range []struct {
		cmd   []byte
		write bool
		want  Reply
	}{
		{InDB(2, ExecCommand(args("object encoding h"))), false, BulkString("listpack")},
		{WithObjectConfig(small, InDB(2, ExecCommand(args("object encoding h")))), false, BulkString("hashtable")},
		{WithObjectConfig(small, ExecCommand(args("object encoding h"))), false, Null()}, // database 0
		{WithObjectConfig(small, InDB(2, ExecCommand(args("object freq h")))), false, Int(5)},
		{InDB(2, ExecCommand(args("object freq h"))), false, Error(string(errLFUNotSelected))},
		{WithObjectConfig(small, InDB(2, MultiCommand(nil, [][][]byte{args("object encoding h"), args("object idletime h")}))), true,
			Array(BulkString("hashtable"), Error(string(errLFUSelected)))},
	} {
		run := sm.Query
		if c.write {
			run = sm.Apply
		}
		b, err := run(m, c.cmd, meta)
		if err != nil {
			t.Fatalf("%x: %v", c.cmd, err)
		}
		got, err := DecodeReply(b)
		if err != nil || string(AppendRESP3(nil, got)) != string(AppendRESP3(nil, c.want)) {
			t.Fatalf("%x: got %q (%v), want %q", c.cmd, AppendRESP3(nil, got), err, AppendRESP3(nil, c.want))
		}
	}
	for _, bad := range [][]byte{WithObjectConfig(small, nil), WithObjectConfig(small, WithObjectConfig(small, ExecCommand(args("object help"))))} {
		if _, err := sm.Query(m, bad, meta); err == nil {
			t.Fatalf("%x: accepted", bad)
		}
	}
}

// TestCopyAcrossDatabasesMatchesRedis: COPY ... DB n, with and without
// REPLACE, read back in database n (the differential test compares
// database 0 only).
func TestCopyAcrossDatabasesMatchesRedis(t *testing.T) {
	matchRedis(t, [][]string{
		{"set a x", "expire a 3600", "copy a a", "copy a a db 0", "copy a a db 1", "copy a b db 1", "copy a a DB 1",
			"select 1", "get a", "ttl a", "get b", "ttl b", "type a", "set a y", "copy a a db 0", "copy a a db 0 replace",
			"copy b c", "select 0", "get a", "ttl a", "exists b c"},
		{"rpush a 1 2 3", "sadd b x y", "zadd c 1 m 2 n", "copy a a db 15", "copy b b db 15", "copy c c db 15",
			"select 15", "lrange a 0 -1", "smembers b", "zrange c 0 -1 withscores", "copy a b replace", "type b",
			"lrange b 0 -1", "copy c a db 0 replace", "select 0", "zrange a 0 -1 withscores", "copy a a db 16",
			"copy a a db -1", "copy a a db x", "copy nokey a db 1", "copy a a db 1 bogus", "copy a a db"},
		{"hset a f v g w", "copy a b db 3 replace", "select 3", "hgetall b", "hset b f z", "select 0", "hgetall a"},
		{"set a x px 1", "sleep", "copy a a db 1", "select 1", "exists a"},
	}, matchOptions{})
}
