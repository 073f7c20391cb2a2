package redis

import (
	"strings"
	"testing"
)

// scriptValues are the scripts of scriptCases, as libraries write them.
var scriptValues = map[string]string{
	// Redlock's release: delete the lock only if it is still ours.
	"unlock": `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`,
	// A fixed-window rate limiter.
	"limit": `local n = redis.call('incr', KEYS[1]) if n == 1 then redis.call('expire', KEYS[1], ARGV[1]) end return n`,
	// A job queue's move: pop from one list, push to another, record.
	"move":     `local job = redis.call('rpop', KEYS[1]) if not job then return false end redis.call('lpush', KEYS[2], job) redis.call('hset', KEYS[3], job, ARGV[1]) return job`,
	"table":    `return {1, 2, 'three', {4, 'five'}, redis.call('lrange', KEYS[1], 0, -1)}`,
	"nilmid":   `return {1, nil, 3}`,
	"float":    `return 3.99`,
	"negfloat": `return -2.5`,
	"bools":    `return {true, false, 1}`,
	"status":   `return redis.status_reply('FINE')`,
	"err":      `return redis.error_reply('MY own error')`,
	"pcall":    `local r = redis.pcall('incr', KEYS[1]) return r`,
	"pcallerr": `local r = redis.pcall('incr', KEYS[1]) return r['err']`,
	"call":     `return redis.call('incr', KEYS[1])`,
	"nums":     `redis.call('set', KEYS[1], 10) redis.call('incrbyfloat', KEYS[1], 1.5) return redis.call('get', KEYS[1])`,
	"zset":     `redis.call('zadd', KEYS[1], 1, 'a', 2.5, 'b') return redis.call('zrange', KEYS[1], 0, -1, 'withscores')`,
	"hgetall":  `return redis.call('hgetall', KEYS[1])`,
	"count":    `return {#KEYS, #ARGV, KEYS[1], ARGV[2]}`,
	"strings":  `return string.format('%s-%d', ARGV[1], tonumber(ARGV[2]) * 2) .. string.rep('x', 3) .. string.upper('ab')`,
	"concat":   `local t = {} for i = 1, 5 do t[#t + 1] = tostring(i * i) end return table.concat(t, ',')`,
	"sha":      `return redis.sha1hex('')`,
	"global":   `return nosuchvar`,
	"setglob":  `x = 1 return x`,
	"ok":       `return redis.call('set', KEYS[1], 'v')`,
	"get":      `return redis.call('get', KEYS[1])`,
	"write":    `return redis.call('set', KEYS[1], 'x')`,
	"type":     `return redis.call('type', KEYS[1])`,
	"empty":    `return`,
	"unpack":   `return redis.call('mget', unpack(KEYS))`,
	"loop":     `local s = 0 for i = 1, 100000 do s = s + i end return s`,
}

var scriptCases = [][]string{
	{"set lock me", "eval $unlock 1 lock you", "get lock", "eval $unlock 1 lock me", "exists lock"},
	{"eval $limit 1 rl 100", "eval $limit 1 rl 100", "eval $limit 1 rl 100", "ttl rl"},
	{"rpush q j1 j2", "eval $move 3 q active jobs t1", "eval $move 3 q active jobs t2", "eval $move 3 q active jobs t3", "lrange active 0 -1", "hgetall jobs"},
	{"rpush l a b", "eval $table 1 l", "eval $nilmid 0", "eval $float 0", "eval $negfloat 0", "eval $bools 0"},
	{"eval $status 0", "eval $err 0", "eval $empty 0", "eval $sha 0", "eval $loop 0"},
	{"set k notanumber", "eval $pcall 1 k", "eval $pcallerr 1 k", "eval $call 1 k", "set n 5", "eval $call 1 n"},
	{"eval $nums 1 f", "eval $zset 1 z", "hset h a 1 b 2", "eval $hgetall 1 h", "eval $count 2 k1 k2 a1 a2 a3"},
	{"eval $strings 0 abc 21", "eval $concat 0"},
	{"eval $global 0", "eval $setglob 0"},
	{"eval $ok 1 s", "eval_ro $get 1 s", "eval_ro $write 1 s", "get s"},
	{"lpush l x", "eval $type 1 l", "eval $call 1 l"},
	{"mset a 1 b 2", "eval $unpack 3 a b c"},
	{"eval $get 2 k", "eval $get -1 k", "eval $get x k", "eval $get 1"},
}

// TestScriptsMatchRedis runs scripts as libraries write them (a lock's
// release, a rate limiter, a job queue's move) and Redis's conversions
// and errors, against a real redis-server.
func TestScriptsMatchRedis(t *testing.T) {
	matchRedis(t, scriptCases, matchOptions{values: scriptValues})
}

// TestScriptsOnlyTouchDeclaredKeys: a script is placed by its keys, so a
// key it did not declare is refused (a departure from standalone Redis,
// Redis Cluster's rule), and nothing it did is kept when it fails.
func TestScriptsOnlyTouchDeclaredKeys(t *testing.T) {
	st := NewMemStore()
	r := Exec(st, 1, 1, toArgs([]string{"eval", "redis.call('set', KEYS[1], 'x') return redis.call('get', 'other')", "1", "k"}))
	if r.Kind != KindError || !strings.Contains(string(r.Str), "did not declare") {
		t.Fatalf("undeclared key: %q", AppendRESP2(nil, r))
	}
}

// TestScriptsAreBounded: a script that never ends is stopped after
// ScriptInstructionLimit instructions, and strings it builds are bounded.
func TestScriptsAreBounded(t *testing.T) {
	st := NewMemStore()
	for _, script := range []string{"while true do end", "return string.rep('x', 1024*1024*1024)"} {
		r := Exec(st, 1, 1, toArgs([]string{"eval", script, "0"}))
		if r.Kind != KindError || r.Err != nil {
			t.Fatalf("%s: %q (%v)", script, AppendRESP2(nil, r), r.Err)
		}
	}
	// The state the stopped script ran in is not reused; the next one runs.
	if r := Exec(st, 1, 1, toArgs([]string{"eval", "return 7", "0"})); r.Kind != KindInt || r.Int != 7 {
		t.Fatalf("after a stopped script: %q", AppendRESP2(nil, r))
	}
}

// TestScriptRandomIsSeeded: math.random follows the seed Exec is given
// (the leader's draw), so a replayed run draws the same numbers.
func TestScriptRandomIsSeeded(t *testing.T) {
	run := func(seed uint64) string {
		r := Exec(NewMemStore(), 1, seed, toArgs([]string{"eval", "return {math.random(1000000), math.random(1000000)}", "0"}))
		return string(AppendRESP2(nil, r))
	}
	a, b, c := run(5), run(5), run(6)
	if a != b || a == c {
		t.Fatalf("seed 5: %q, %q; seed 6: %q", a, b, c)
	}
}
