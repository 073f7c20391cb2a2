package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// How real clients and test harnesses use orbit serve (four ranges).

// TestServeHarnessStartup: what a test harness sends at start-up, as
// Redis's own test tooling and client libraries' suites do — select
// database 9, flush it and the functions, set encoding thresholds,
// notification flags and the script time limit — answers without an
// error, and the settings read back as Redis reports them.
func TestServeHarnessStartup(t *testing.T) {
	addr := startServer(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, DB: 9})
	defer rdb.Close()
	steps := [][]any{
		{"FLUSHDB"},
		{"FUNCTION", "FLUSH"},
		{"SCRIPT", "FLUSH"},
		{"CONFIG", "SET", "hash-max-ziplist-entries", "512", "list-max-ziplist-size", "-2", "set-max-intset-entries", "512"},
		{"CONFIG", "SET", "zset-max-ziplist-entries", "128", "list-compress-depth", "0"},
		{"CONFIG", "SET", "notify-keyspace-events", "KEA"},
		{"CONFIG", "SET", "lua-time-limit", "5000"},
		{"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"},
		{"CLIENT", "SETNAME", "harness"},
		{"SET", "k", "v"},
		{"WAIT", "0", "100"},
	}
	for _, s := range steps {
		if err := rdb.Do(ctx, s...).Err(); err != nil {
			t.Fatalf("%v: %v", s, err)
		}
	}
	cfg, err := rdb.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"notify-keyspace-events": "AKE", "hash-max-listpack-entries": "512",
		"maxmemory-policy": "allkeys-lru", "busy-reply-threshold": "5000", "databases": "16"} {
		if cfg[name] != want {
			t.Errorf("CONFIG GET %s = %q, want %q", name, cfg[name], want)
		}
	}
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 1 {
		t.Fatalf("DBSIZE in database 9: %d, %v", n, err)
	}
	db0 := goredis.NewClient(&goredis.Options{Addr: addr})
	defer db0.Close()
	if n, err := db0.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("database 0 sees database 9's key: %d, %v", n, err)
	}
}

// TestServeStreamConsumerGroup: go-redis's stream consumer group round
// trip — create the group with MKSTREAM, add, read as two consumers,
// acknowledge one entry, list what is pending, claim the other from its
// idle consumer, and read history again.
func TestServeStreamConsumerGroup(t *testing.T) {
	addr := startServer(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.XGroupCreateMkStream(ctx, "jobs", "workers", "$").Err(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, job := range []string{"a", "b"} {
		id, err := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: "jobs", Values: map[string]any{"job": job}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	read := func(consumer string) goredis.XMessage {
		res, err := rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "workers", Consumer: consumer,
			Streams: []string{"jobs", ">"}, Count: 1, Block: time.Second}).Result()
		if err != nil || len(res) != 1 || len(res[0].Messages) != 1 {
			t.Fatalf("XREADGROUP as %s: %v, %v", consumer, res, err)
		}
		return res[0].Messages[0]
	}
	m1, m2 := read("w1"), read("w2")
	if m1.ID != ids[0] || m2.ID != ids[1] || m1.Values["job"] != "a" || m2.Values["job"] != "b" {
		t.Fatalf("read %v and %v, want %v", m1, m2, ids)
	}
	// Nothing new: a blocking read times out with redis.Nil.
	if _, err := rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "workers", Consumer: "w1",
		Streams: []string{"jobs", ">"}, Block: 50 * time.Millisecond}).Result(); err != goredis.Nil {
		t.Fatalf("XREADGROUP with nothing new: %v", err)
	}
	if n, err := rdb.XAck(ctx, "jobs", "workers", m1.ID).Result(); err != nil || n != 1 {
		t.Fatalf("XACK: %d, %v", n, err)
	}
	pending, err := rdb.XPending(ctx, "jobs", "workers").Result()
	if err != nil || pending.Count != 1 || pending.Lower != m2.ID || pending.Consumers["w2"] != 1 {
		t.Fatalf("XPENDING: %+v, %v", pending, err)
	}
	time.Sleep(20 * time.Millisecond)
	claimed, err := rdb.XClaim(ctx, &goredis.XClaimArgs{Stream: "jobs", Group: "workers", Consumer: "w1",
		MinIdle: 10 * time.Millisecond, Messages: []string{m2.ID}}).Result()
	if err != nil || len(claimed) != 1 || claimed[0].ID != m2.ID {
		t.Fatalf("XCLAIM: %v, %v", claimed, err)
	}
	auto, _, err := rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{Stream: "jobs", Group: "workers", Consumer: "w2",
		MinIdle: time.Hour, Start: "0"}).Result()
	if err != nil || len(auto) != 0 {
		t.Fatalf("XAUTOCLAIM of nothing idle an hour: %v, %v", auto, err)
	}
	history, err := rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "workers", Consumer: "w1", Streams: []string{"jobs", "0"}}).Result()
	if err != nil || len(history) != 1 || len(history[0].Messages) != 1 || history[0].Messages[0].ID != m2.ID {
		t.Fatalf("w1's pending history: %v, %v", history, err)
	}
	groups, err := rdb.XInfoGroups(ctx, "jobs").Result()
	if err != nil || len(groups) != 1 || groups[0].Pending != 1 || groups[0].Consumers != 2 {
		t.Fatalf("XINFO GROUPS: %+v, %v", groups, err)
	}
}

// TestClientKillMatchesRedis: CLIENT KILL's replies and errors as
// redis-server 7.0.15 gives them, and what it does: a client killed by ID
// (blocked in BLPOP, which then takes nothing) loses its connection; a
// client that kills itself gets its reply first.
func TestClientKillMatchesRedis(t *testing.T) {
	realAddr, orbitAddr := startRedisServer(t), startServer(t, 1)
	for _, cmd := range [][]string{
		{"CLIENT", "KILL"}, {"CLIENT", "KILL", "1.2.3.4:5"}, {"CLIENT", "KILL", "ID"}, {"CLIENT", "KILL", "ID", "0"},
		{"CLIENT", "KILL", "ID", "x"}, {"CLIENT", "KILL", "ID", "99999"}, {"CLIENT", "KILL", "TYPE", "bogus"},
		{"CLIENT", "KILL", "TYPE", "master"}, {"CLIENT", "KILL", "TYPE", "pubsub"}, {"CLIENT", "KILL", "USER", "nobody"},
		{"CLIENT", "KILL", "SKIPME", "maybe"}, {"CLIENT", "KILL", "BOGUS", "1"}, {"CLIENT", "KILL", "ADDR", "1.2.3.4:5", "SKIPME", "yes"},
		{"CLIENT", "KILL", "LADDR", "1.2.3.4:5", "SKIPME", "yes"},
	} {
		want, got := bothReplies(t, dialRESP(t, realAddr), dialRESP(t, orbitAddr), cmd)
		if !bytes.Equal(want, got) {
			t.Errorf("%q:\nredis: %q\norbit: %q", cmd, want, got)
		}
	}
	for _, addr := range []string{realAddr, orbitAddr} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		blocked := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1})
		killer := goredis.NewClient(&goredis.Options{Addr: addr})
		id, err := blocked.ClientID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- blocked.BLPop(ctx, 0, "killq").Err() }()
		time.Sleep(100 * time.Millisecond)
		if n, err := killer.ClientKillByFilter(ctx, "ID", strconv.FormatInt(id, 10)).Result(); err != nil || n != 1 {
			t.Fatalf("%s: CLIENT KILL ID %d: %d, %v", addr, id, n, err)
		}
		if err := <-done; err == nil || err == goredis.Nil {
			t.Fatalf("%s: the killed client's BLPOP answered %v", addr, err)
		}
		if err := killer.RPush(ctx, "killq", "v").Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := killer.LRange(ctx, "killq", 0, -1).Result(); err != nil || len(v) != 1 {
			t.Fatalf("%s: the killed client took the element: %v, %v", addr, v, err)
		}
		// A client killing itself has its reply, then its connection closes.
		self := dialRESP(t, addr)
		selfID, err := self.do("CLIENT", "ID")
		if err != nil {
			t.Fatal(err)
		}
		if r, err := self.do("CLIENT", "KILL", "ID", strings.Trim(string(selfID[1:]), "\r\n"), "SKIPME", "no"); err != nil || string(r) != ":1\r\n" {
			t.Fatalf("%s: CLIENT KILL of itself: %q, %v", addr, r, err)
		}
		if r, err := self.do("PING"); err == nil {
			t.Fatalf("%s: a killed connection answered PING: %q", addr, r)
		}
		// LADDR: the address the clients connected to. A client's own
		// CLIENT INFO shows it; killing by it (SKIPME yes) closes the
		// others.
		victim, me := dialRESP(t, addr), dialRESP(t, addr)
		if info, err := me.do("CLIENT", "INFO"); err != nil || !strings.Contains(string(info), " laddr="+addr+" ") {
			t.Fatalf("%s: CLIENT INFO %q (%v) lacks laddr=%s", addr, info, err, addr)
		}
		if r, err := me.do("CLIENT", "KILL", "LADDR", addr, "SKIPME", "yes"); err != nil || !bytes.HasPrefix(r, []byte(":")) || string(r) == ":0\r\n" {
			t.Fatalf("%s: CLIENT KILL LADDR %s: %q, %v", addr, addr, r, err)
		}
		if r, err := victim.do("PING"); err == nil {
			t.Fatalf("%s: a client killed by LADDR answered PING: %q", addr, r)
		}
		if r, err := me.do("PING"); err != nil || string(r) != "+PONG\r\n" {
			t.Fatalf("%s: the killer (SKIPME yes) answered PING with %q, %v", addr, r, err)
		}
		killer.Del(ctx, "killq")
		blocked.Close()
		killer.Close()
		cancel()
	}
}

// TestOtherDatabaseWritesAcrossRanges: MOVE and COPY ... DB write a key in
// another database; inside a transaction over keys of several ranges
// (four ranges: "a", "b" and "c" lie apart), that key is locked with the
// others and the block runs as on redis-server (it was refused once, a
// case the serve differential found).
func TestOtherDatabaseWritesAcrossRanges(t *testing.T) {
	realAddr, orbitAddr := startRedisServer(t), startServer(t, 4)
	r, o := dialRESP(t, realAddr), dialRESP(t, orbitAddr)
	for _, cmd := range [][]string{
		{"FLUSHALL"},
		{"MULTI"}, {"GET", "a"}, {"SET", "c", ""}, {"MOVE", "c", "1"}, {"EXEC"},
		{"SELECT", "1"}, {"EXISTS", "c"}, {"SELECT", "0"},
		{"SET", "b", "v"},
		{"MULTI"}, {"GET", "a"}, {"COPY", "b", "c", "DB", "2"}, {"MOVE", "b", "3"}, {"EXEC"},
		{"MSET", "a", "1", "b", "2"}, {"SELECT", "2"}, {"GET", "c"}, {"SELECT", "3"}, {"GET", "b"}, {"SELECT", "0"}, {"EXISTS", "b"},
	} {
		want, got := bothReplies(t, r, o, cmd)
		if !bytes.Equal(want, got) {
			t.Errorf("%q:\nredis: %q\norbit: %q", cmd, want, got)
		}
	}
}
