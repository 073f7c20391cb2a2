package redis

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/kernel"
)

// step is one command of a transcript and its expected RESP2 reply.
type step struct {
	cmd  string // space-separated; "" is an empty argument written ''
	want string
}

func splitCmd(s string) [][]byte {
	var args [][]byte
	for _, f := range strings.Fields(s) {
		if f == "''" {
			f = ""
		}
		args = append(args, []byte(f))
	}
	return args
}

// runTranscript runs steps on a fresh MemStore at time now. A readonly
// command runs on a read-only view, which proves it never writes.
func runTranscript(t *testing.T, now int64, steps []step) *MemStore {
	t.Helper()
	st := NewMemStore()
	for i, s := range steps {
		args := splitCmd(s.cmd)
		var store Store = st
		if spec, ok := Lookup(string(args[0])); ok && spec.readonly {
			store = ReadOnly(st)
		}
		r := Exec(store, now, uint64(i), args)
		if r.Err != nil {
			t.Fatalf("%s: internal error %v", s.cmd, r.Err)
		}
		if got := AppendRESP2(nil, r); string(got) != s.want {
			t.Fatalf("step %d: %s\n got %q\nwant %q", i, s.cmd, got, s.want)
		}
	}
	return st
}

func TestStrings(t *testing.T) {
	runTranscript(t, 1000, []step{
		{"GET k", "$-1\r\n"},
		{"SET k v", "+OK\r\n"},
		{"get k", "$1\r\nv\r\n"},
		{"SET k w NX", "$-1\r\n"},
		{"SET k w XX GET", "$1\r\nv\r\n"},
		{"SET k w NX XX", "-ERR syntax error\r\n"},
		{"SET k w EX 0", "-ERR invalid expire time in 'set' command\r\n"},
		{"SET k w EX 10 PX 10", "-ERR syntax error\r\n"},
		{"SET k", "-ERR wrong number of arguments for 'set' command\r\n"},
		{"SET n 10 PX 500", "+OK\r\n"},
		{"PTTL n", ":500\r\n"},
		{"INCR n", ":11\r\n"},
		{"PTTL n", ":500\r\n"},
		{"INCRBY n 9223372036854775800", "-ERR increment or decrement would overflow\r\n"},
		{"DECRBY n -9223372036854775808", "-ERR decrement would overflow\r\n"},
		{"INCR k", "-ERR value is not an integer or out of range\r\n"},
		{"SET f 10.5", "+OK\r\n"},
		{"INCRBYFLOAT f 0.1", "$4\r\n10.6\r\n"},
		// x87 long double arithmetic, printed with %.17Lf, as Redis 7.0 does.
		{"INCRBYFLOAT f 5.0e3", "$22\r\n5010.60000000000000009\r\n"},
		{"INCRBYFLOAT f inf", "-ERR increment would produce NaN or Infinity\r\n"},
		{"APPEND k xyz", ":4\r\n"},
		{"STRLEN k", ":4\r\n"},
		{"GETRANGE k 1 -2", "$2\r\nxy\r\n"},
		{"SETRANGE k 6 !", ":7\r\n"},
		{"GET k", "$7\r\nwxyz\x00\x00!\r\n"},
		{"SETRANGE k -1 x", "-ERR offset is out of range\r\n"},
		{"MSET a 1 b 2", "+OK\r\n"},
		{"MSET a 1 b", "-ERR wrong number of arguments for 'mset' command\r\n"},
		{"MSETNX a 1 c 3", ":0\r\n"},
		{"MGET a b c", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"},
		{"GETDEL a", "$1\r\n1\r\n"},
		{"GETEX b PX 100", "$1\r\n2\r\n"},
		{"PTTL b", ":100\r\n"},
		{"GETEX b PERSIST", "$1\r\n2\r\n"},
		{"TTL b", ":-1\r\n"},
		{"GETSET b 3", "$1\r\n2\r\n"},
		{"SETNX b 4", ":0\r\n"},
	})
}

func TestExpiryIsLazyAndSwept(t *testing.T) {
	st := NewMemStore()
	exec := func(now int64, cmd string) string {
		return string(AppendRESP2(nil, Exec(st, now, 0, splitCmd(cmd))))
	}
	exec(0, "SET a 1 PX 100")
	exec(0, "RPUSH l x y")
	exec(0, "PEXPIRE l 100")
	exec(0, "SET keep 1")
	if got := exec(99, "GET a"); got != "$1\r\n1\r\n" {
		t.Fatalf("before expiry: %q", got)
	}
	// A read at the expiry instant sees nothing and, on a read-only store,
	// writes nothing.
	if r := Exec(ReadOnly(st), 100, 0, splitCmd("GET a")); r.Err != nil || r.Kind != KindNull {
		t.Fatalf("read of an expired key: %#v", r)
	}
	if got := exec(100, "LLEN l"); got != ":0\r\n" {
		t.Fatalf("expired list: %q", got)
	}
	// A write meets the expired key and deletes it first.
	if got := exec(100, "RPUSH l z"); got != ":1\r\n" {
		t.Fatalf("push onto an expired list: %q", got)
	}
	n, err := ExpireSweep(st, 100, 0)
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	keys, next, err := ScanRange(st, 100, nil, 0, ScanOptions{})
	slices.SortFunc(keys, bytes.Compare) // route keys are in slot order
	if err != nil || next != nil || len(keys) != 2 || string(keys[0]) != "keep" || string(keys[1]) != "l" {
		t.Fatalf("after sweep: %q %q %v", keys, next, err)
	}
}

func TestKeys(t *testing.T) {
	runTranscript(t, 1_000_000, []step{
		{"SET a 1", "+OK\r\n"},
		{"EXPIRE a 10 NX", ":1\r\n"},
		{"EXPIRE a 20 NX", ":0\r\n"},
		{"EXPIRE a 5 GT", ":0\r\n"},
		{"EXPIRE a 5 LT", ":1\r\n"},
		{"TTL a", ":5\r\n"},
		{"EXPIRETIME a", ":1005\r\n"},
		{"EXPIRE a 5 NX XX", "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"},
		{"EXPIRE a 5 GT LT", "-ERR GT and LT options at the same time are not compatible\r\n"},
		{"EXPIRE a 5 foo", "-ERR Unsupported option foo\r\n"},
		{"PERSIST a", ":1\r\n"},
		{"TYPE a", "+string\r\n"},
		{"TYPE nope", "+none\r\n"},
		{"RENAME nope b", "-ERR no such key\r\n"},
		{"HSET h f v", ":1\r\n"},
		{"RENAME h h2", "+OK\r\n"},
		{"HGET h2 f", "$1\r\nv\r\n"},
		{"EXISTS h h2 h2", ":2\r\n"},
		{"RENAMENX a h2", ":0\r\n"},
		{"EXPIRE a -1", ":1\r\n"},
		{"DEL a h2 nope", ":1\r\n"},
		{"TOUCH a", ":0\r\n"},
		{"FOO bar", "-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n"},
	})
}

func TestHashes(t *testing.T) {
	runTranscript(t, 0, []step{
		{"HSET h a 1 b 2", ":2\r\n"},
		{"HSET h a 3", ":0\r\n"},
		{"HSET h a", "-ERR wrong number of arguments for 'hset' command\r\n"},
		{"HGETALL h", "*4\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{"HMGET h a x", "*2\r\n$1\r\n3\r\n$-1\r\n"},
		{"HINCRBY h a 5", ":8\r\n"},
		{"HINCRBYFLOAT h a 0.5", "$3\r\n8.5\r\n"},
		{"HINCRBY h a 1", "-ERR hash value is not an integer\r\n"},
		{"HSETNX h a 1", ":0\r\n"},
		{"HLEN h", ":2\r\n"},
		{"HSTRLEN h a", ":3\r\n"},
		{"HDEL h a b c", ":2\r\n"},
		{"EXISTS h", ":0\r\n"},
		{"SET s x", "+OK\r\n"},
		{"HGET s a", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{"HSCAN nope 0", "*2\r\n$1\r\n0\r\n*0\r\n"},
	})
}

func TestLists(t *testing.T) {
	runTranscript(t, 0, []step{
		{"RPUSH l a b c", ":3\r\n"},
		{"LPUSH l z", ":4\r\n"},
		{"LRANGE l 0 -1", "*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"LINSERT l BEFORE a y", ":5\r\n"},
		{"LINSERT l AFTER c d", ":6\r\n"},
		{"LRANGE l 0 -1", "*6\r\n$1\r\nz\r\n$1\r\ny\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"},
		{"LINDEX l -1", "$1\r\nd\r\n"},
		{"LSET l 9 x", "-ERR index out of range\r\n"},
		{"LPOS l b", ":3\r\n"},
		{"LTRIM l 1 -2", "+OK\r\n"},
		{"LRANGE l 0 -1", "*4\r\n$1\r\ny\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"RPOP l 2", "*2\r\n$1\r\nc\r\n$1\r\nb\r\n"},
		{"LMOVE l m LEFT RIGHT", "$1\r\ny\r\n"},
		{"RPOPLPUSH l l", "$1\r\na\r\n"},
		{"LREM m 0 y", ":1\r\n"},
		{"EXISTS m", ":0\r\n"},
		{"LPOP nope 1", "*-1\r\n"},
		{"LPOP l -1", "-ERR value is out of range, must be positive\r\n"},
	})
}

func TestSets(t *testing.T) {
	runTranscript(t, 0, []step{
		{"SADD s a b c", ":3\r\n"},
		{"SADD t b c d", ":3\r\n"},
		{"SINTER s t", "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"SUNIONSTORE u s t", ":4\r\n"},
		{"SDIFF s t", "*1\r\n$1\r\na\r\n"},
		{"SMISMEMBER s a d", "*2\r\n:1\r\n:0\r\n"},
		{"SMOVE s t a", ":1\r\n"},
		{"SCARD t", ":4\r\n"},
		{"SREM s b c", ":2\r\n"},
		{"EXISTS s", ":0\r\n"},
		{"SINTERSTORE u s t", ":0\r\n"},
		{"EXISTS u", ":0\r\n"},
		{"SPOP t 10", "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"},
		{"EXISTS t", ":0\r\n"},
	})
}

func TestSortedSets(t *testing.T) {
	runTranscript(t, 0, []step{
		{"ZADD z 1 a 2 b 3 c", ":3\r\n"},
		{"ZADD z XX CH 5 a 1 x", ":1\r\n"},
		{"ZADD z NX XX 1 a", "-ERR XX and NX options at the same time are not compatible\r\n"},
		{"ZADD z 1 a 2", "-ERR syntax error\r\n"},
		{"ZADD z nan a", "-ERR value is not a valid float\r\n"},
		{"ZINCRBY z 1.5 b", "$3\r\n3.5\r\n"},
		{"ZSCORE z b", "$3\r\n3.5\r\n"},
		{"ZRANGE z 0 -1 WITHSCORES", "*6\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nb\r\n$3\r\n3.5\r\n$1\r\na\r\n$1\r\n5\r\n"},
		{"ZRANGE z (3 +inf BYSCORE LIMIT 0 1", "*1\r\n$1\r\nb\r\n"},
		{"ZREVRANGEBYSCORE z +inf -inf", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"ZRANK z a", ":2\r\n"},
		{"ZREVRANK z a", ":0\r\n"},
		{"ZCOUNT z (3 5", ":2\r\n"},
		{"ZRANGESTORE d z 0 0", ":1\r\n"},
		{"ZUNIONSTORE u 2 z d WEIGHTS 1 2", ":3\r\n"},
		{"ZSCORE u c", "$1\r\n9\r\n"},
		{"ZINTERSTORE i 2 z d AGGREGATE MAX", ":1\r\n"},
		{"ZPOPMIN z", "*2\r\n$1\r\nc\r\n$1\r\n3\r\n"},
		{"ZPOPMAX z 5", "*4\r\n$1\r\na\r\n$1\r\n5\r\n$1\r\nb\r\n$3\r\n3.5\r\n"},
		{"EXISTS z", ":0\r\n"},
		// -0 is stored as 0, but the reply of the command that set it keeps
		// the sign, as Redis's does.
		{"ZINCRBY z -0 m", "$2\r\n-0\r\n"},
		{"ZSCORE z m", "$1\r\n0\r\n"},
		{"ZRANGE z 0 -1 LIMIT 0 1", "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX\r\n"},
	})
}

// Readonly-flagged commands must run on a read-only Store, and Exec must
// never answer with an internal error for bad input.
func TestRESP3Shapes(t *testing.T) {
	st := NewMemStore()
	for _, c := range []string{"ZADD z 1.5 a", "HSET h f v", "SADD s m"} {
		Exec(st, 0, 0, splitCmd(c))
	}
	for cmd, want := range map[string]string{
		"ZSCORE z a":                "," + "1.5\r\n",
		"ZRANGE z 0 -1 WITHSCORES":  "*1\r\n*2\r\n$1\r\na\r\n,1.5\r\n",
		"HGETALL h":                 "%1\r\n$1\r\nf\r\n$1\r\nv\r\n",
		"SMEMBERS s":                "~1\r\n$1\r\nm\r\n",
		"GET nope":                  "_\r\n",
		"HRANDFIELD h 1 WITHVALUES": "*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
	} {
		if got := AppendRESP3(nil, Exec(ReadOnly(st), 0, 0, splitCmd(cmd))); string(got) != want {
			t.Errorf("%s: got %q, want %q", cmd, got, want)
		}
	}
}

func TestCorruptRecordIsAnErrorNotAPanic(t *testing.T) {
	st := NewMemStore()
	for _, bad := range [][]byte{nil, {9}, {FormatVersion, 99, 0, 0, 0, 0, 0, 0, 0, 0}, {FormatVersion, byte(typeList), 0, 0, 0, 0, 0, 0, 0, 0, 1}} {
		_ = st.Set(RouteKey([]byte("k")), bad)
		for _, cmd := range []string{"GET k", "LPUSH k x", "HGETALL k", "ZADD k 1 a", "TYPE k", "DEL k"} {
			r := Exec(st, 0, 0, splitCmd(cmd))
			if string(r.Str) != "ERR corrupt value" || r.Err == nil {
				t.Fatalf("%x, %s: %#v", bad, cmd, r)
			}
		}
	}
	// A set whose count disagrees with its records.
	st = NewMemStore()
	Exec(st, 0, 0, splitCmd("SADD s a b"))
	_ = st.Delete(memberKey(RouteKey([]byte("s")), []byte("a")))
	if r := Exec(st, 0, 0, splitCmd("SMEMBERS s")); r.Err == nil {
		t.Fatalf("count mismatch not caught: %s", r)
	}
}

func TestRouteKeyOrderAndContainment(t *testing.T) {
	// Keys sharing a hash tag share a slot; within a slot, route keys keep
	// the order of the Redis keys.
	keys := []string{"{t}", "{t}\x00", "{t}\x00\x00", "{t}\x00\x01", "{t}a", "{t}a\x00", "{t}a\x00b", "{t}a\x01", "{t}ab", "{t}b"}
	for i := 1; i < len(keys); i++ {
		a, b := RouteKey([]byte(keys[i-1])), RouteKey([]byte(keys[i]))
		if bytes.Compare(a, b) >= 0 {
			t.Fatalf("RouteKey(%q) >= RouteKey(%q)", keys[i-1], keys[i])
		}
		// Every record of key i-1 sorts before key i's route key.
		if bytes.Compare(prefixEnd(a), b) > 0 {
			t.Fatalf("records of %q reach past RouteKey(%q)", keys[i-1], keys[i])
		}
		k, n, _, ok := decodeRouteKey(append(b, 'M', 'x'))
		if !ok || string(k) != keys[i] || n != len(b) {
			t.Fatalf("decodeRouteKey(%q) = %q %d %v", b, k, n, ok)
		}
	}
}

func TestSlot(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16 = %#x, want 0x31c3 (XMODEM check value)", got)
	}
	// CLUSTER KEYSLOT on a real Redis.
	for key, want := range map[string]uint16{
		"foo": 12182, "bar": 5061, "hello": 866, "": 0,
		"{bar}": 5061, "foo{bar}{zap}": 5061, "x{bar}": 5061, // the tag is hashed
		"foo{}{bar}":    crc16([]byte("foo{}{bar}")) & 16383, // an empty tag: the whole key
		"foo{{bar}}zap": crc16([]byte("{bar")) & 16383,       // from the first '{' to the first '}'
		"{foo":          crc16([]byte("{foo")) & 16383,
	} {
		if got := Slot([]byte(key)); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	if s := SlotSplits(4); len(s) != 3 || string(s[0]) != string(SlotKey(4096)) {
		t.Fatalf("SlotSplits(4) = %x", s)
	}
	rk := RouteKey([]byte("foo"))
	if rk[0] != byte(12182>>8) || rk[1] != byte(12182&0xff) {
		t.Fatalf("RouteKey(foo) = %x: no slot prefix", rk)
	}
}

func TestKeysHelper(t *testing.T) {
	for cmd, want := range map[string]string{
		"GET a":                           "a",
		"MSET a 1 b 2":                    "a b",
		"ZUNIONSTORE d 2 a b WEIGHTS 1 2": "d a b",
		"ZINTERSTORE d 9 a b":             "",
		"BLPOP a b 0":                     "a b",
		"LMOVE a b LEFT RIGHT":            "a b",
		"BITOP AND d a b":                 "d a b",
		"BITOP NOT d":                     "",
		"BITFIELD_RO k GET u8 0":          "k",
		"SETBIT k 7 1":                    "k",
		"PFMERGE d a b":                   "d a b",
		"PFCOUNT a b c":                   "a b c",
		"PFADD k":                         "k",
		"GEOADD k 1 1 m":                  "k",
		"GEOSEARCHSTORE d s FROMLONLAT 0 0 BYRADIUS 1 m": "d s",
		"GEOSEARCH k FROMMEMBER m BYBOX 1 1 km":          "k",
		"GEODIST k a b":                                  "k",
		"LCS a b IDX":                                    "a b",
		"OBJECT ENCODING k":                              "k",
		"object Refcount k":                              "k",
		"OBJECT HELP":                                    "",
		"OBJECT ENCODING":                                "",
		"OBJECT ENCODING k x":                            "",
		"OBJECT BOGUS k":                                 "",
		"XADD k * f v":                                   "k",
		"XREAD COUNT 1 STREAMS a b 0 0":                  "a b",
		"XREAD STREAMS a b 0":                            "a",
		"XREAD COUNT 1 STREAMS a":                        "",
		"XREADGROUP GROUP g c STREAMS a >":               "a",
		"XREADGROUP GROUP g STREAMS STREAMS a 0":         "a",
		"XGROUP CREATE k g $":                            "k",
		"XGROUP HELP":                                    "",
		"XINFO STREAM k":                                 "k",
		"XINFO GROUPS":                                   "",
		"PING":                                           "",
		"SCAN 0":                                         "",
	} {
		var got []string
		for _, k := range Keys(splitCmd(cmd)) {
			got = append(got, string(k))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("Keys(%s) = %q, want %q", cmd, got, want)
		}
	}
}

func TestTable(t *testing.T) {
	names := map[string]bool{}
	for _, n := range tableCommands() {
		names[n] = true
	}
	for _, s := range Commands() {
		if !names[s.Name] {
			t.Errorf("%s is in the table but not in tableCommands", s.Name)
		}
		if s.write == s.readonly && s.Where == WhereKeyed {
			t.Errorf("%s: keyed command must be exactly one of write and readonly", s.Name)
		}
		if s.InfoReply().Kind != KindArray || s.DocsReply().Kind != KindMap {
			t.Errorf("%s: bad COMMAND INFO or DOCS entry", s.Name)
		}
	}
	for _, n := range keyedCommands {
		if s, ok := Lookup(n); !ok || s.run == nil {
			t.Errorf("%s: listed as keyed but not executable", n)
		}
	}
	if s, ok := Lookup("ZADD"); !ok || s.Arity != -4 || !s.HasFlag("denyoom") || s.FirstKey != 1 {
		t.Errorf("zadd: %+v", s)
	}
}

func TestBlocking(t *testing.T) {
	st := NewMemStore()
	if _, ready := TryBlocking(st, 0, splitCmd("BLPOP a b 1.5")); ready {
		t.Fatal("ready on empty lists")
	}
	if ms := BlockTimeout(splitCmd("BLPOP a b 1.5")); ms != 1500 {
		t.Fatalf("timeout %d", ms)
	}
	Exec(st, 0, 0, splitCmd("RPUSH b x y"))
	r, ready := TryBlocking(st, 0, splitCmd("BRPOP a b 0"))
	if !ready || r.String() != "*2\r\n$1\r\nb\r\n$1\r\ny\r\n" {
		t.Fatalf("BRPOP: %v %q", ready, r.String())
	}
	r, ready = TryBlocking(st, 0, splitCmd("BLMOVE b c LEFT LEFT -1"))
	if !ready || r.String() != "-ERR timeout is negative\r\n" {
		t.Fatalf("negative timeout: %v %q", ready, r.String())
	}
	r, ready = TryBlocking(st, 0, splitCmd("BLMOVE b c LEFT LEFT 0"))
	if !ready || r.String() != "$1\r\nx\r\n" {
		t.Fatalf("BLMOVE: %v %q", ready, r.String())
	}
	if TimeoutReply("blpop").Kind != KindNullArray || TimeoutReply("blmove").Kind != KindNullArray {
		t.Fatal("timeout replies")
	}
}

// A big hash is scanned in several calls, and every field present
// throughout comes back even while fields are deleted between calls.
func TestHScanLargeKey(t *testing.T) {
	st := NewMemStore()
	const n = 1000
	args := []string{"HSET", "h"}
	for i := range n {
		f := "field:" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('0'+i%10)) + string(rune('A'+i/26%26))
		args = append(args, f, "v")
	}
	Exec(st, 0, 0, toArgs(args))
	all := Exec(st, 0, 0, splitCmd("HKEYS h"))
	seen := map[string]bool{}
	cursor := "0"
	calls := 0
	for {
		r := Exec(st, 0, 0, toArgs([]string{"HSCAN", "h", cursor, "COUNT", "50"}))
		if r.IsError() {
			t.Fatal(r.String())
		}
		for i := 0; i < len(r.Elems[1].Elems); i += 2 {
			seen[string(r.Elems[1].Elems[i].Str)] = true
		}
		calls++
		cursor = string(r.Elems[0].Str)
		if cursor == "0" {
			break
		}
		// Delete a field that was already returned: nothing else may be lost.
		for f := range seen {
			if strings.HasPrefix(f, "deleted:") {
				continue // (picking one of these lost the record that f was seen)
			}
			Exec(st, 0, 0, toArgs([]string{"HDEL", "h", f}))
			delete(seen, f)
			seen["deleted:"+f] = true
			break
		}
		if calls > n {
			t.Fatal("HSCAN does not end")
		}
	}
	if calls < 5 {
		t.Fatalf("a %d-field hash was scanned in %d calls", n, calls)
	}
	for _, f := range all.Elems {
		if !seen[string(f.Str)] && !seen["deleted:"+string(f.Str)] {
			t.Fatalf("field %q never returned", f.Str)
		}
	}
}

func TestScanRangeAndCursorTable(t *testing.T) {
	st := NewMemStore()
	for _, c := range []string{"SET a 1", "SET b 2", "RPUSH c x", "SET d 4 PX 10", "HSET e f v"} {
		Exec(st, 0, 0, splitCmd(c))
	}
	tab := NewCursorTable(2)
	var got []string
	cursor := uint64(0)
	for range 10 {
		from, ok := tab.Get(cursor)
		if !ok {
			t.Fatal("cursor lost")
		}
		keys, next, err := ScanRange(st, 100, from, 2, ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			got = append(got, string(k))
		}
		if next == nil {
			break
		}
		cursor = tab.Put(next)
	}
	slices.Sort(got) // route keys are in slot order
	if strings.Join(got, ",") != "a,b,c,e" {
		t.Fatalf("scan: %q", got)
	}
	tab.Put([]byte("x"))
	if _, ok := tab.Get(1); ok || tab.Len() != 2 {
		t.Fatalf("table holds %d, cursor 1 should be evicted", tab.Len())
	}
	keys, _, _ := ScanRange(st, 0, nil, 0, ScanOptions{Match: []byte("[a-c]"), Type: []byte("STRING")})
	if len(keys) != 2 {
		t.Fatalf("match and type: %q", keys)
	}
	if n, _ := CountKeys(st, 100); n != 4 {
		t.Fatalf("CountKeys %d", n)
	}
	if k, ok, err := RandomKey(st, 100, 7); err != nil || !ok || len(k) != 1 {
		t.Fatalf("RandomKey %q %v %v", k, ok, err)
	}
	if _, _, bad, ok := ParseScan(splitCmd("SCAN x")); ok || bad.String() != "-ERR invalid cursor\r\n" {
		t.Fatalf("ParseScan: %q", bad.String())
	}
	if err := Flush(st); err != nil || st.Len() != 0 {
		t.Fatalf("flush: %v, %d records", err, st.Len())
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", false}, // as Redis's stringmatchlen; KEYS and SCAN skip matching for "*" {"a*", "abc", true}, {"a?c", "abc", true}, {"a[bc]d", "acd", true},
		{"a[^b]d", "abd", false}, {"a[a-c]", "ab", true}, {"a[c-a]", "ab", true}, {"\\*", "*", true},
		{"\\*", "a", false}, {"[abc", "a", true}, {"h*llo", "heeello", true}, {"*x*y*", "axbyc", true},
		{"a[\\]]", "a]", true}, {"*a", "ba", true}, {"*a", "ab", false},
	} {
		if got := globMatch([]byte(c.pattern), []byte(c.s)); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pattern, c.s, got)
		}
	}
}

func TestParseReplyRoundTrip(t *testing.T) {
	r := Array(Int(1), Null(), Double(1.5), Map(BulkString("k"), Set(Bool(true))), Verbatim("txt", "hi"), NullArray(), Error("ERR x"))
	enc := AppendRESP3(nil, r)
	back, n, err := ParseReply(enc)
	if err != nil || n != len(enc) || !bytes.Equal(AppendRESP3(nil, back), enc) {
		t.Fatalf("round trip: %q %v", enc, err)
	}
}

// crashingStore fails every read the way a node's failing disk does: the
// consensus layer's RangeData stops the node (kernel.Crash).
type crashingStore struct{ *MemStore }

func (crashingStore) Get(key []byte) ([]byte, bool, error) {
	kernel.Crash("read: injected error")
	return nil, false, nil
}

// A node crash under a command unwinds through Exec (the node stops); a
// bug's panic would be an internal error reply instead.
func TestExecLetsNodeCrashesThrough(t *testing.T) {
	defer func() {
		if _, ok := recover().(kernel.NodeCrash); !ok {
			t.Fatal("Exec swallowed a node crash")
		}
	}()
	Exec(crashingStore{NewMemStore()}, 0, 0, [][]byte{[]byte("GET"), []byte("k")})
}
