package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestSlowlogMatchesRedis: SLOWLOG against redis-server 7.0.15, the same
// commands on both: which commands are logged, in which order, with
// which arguments (passwords redacted, 32 arguments at most, 128 bytes
// each), the client's name, the length bound, and SLOWLOG's own replies
// and errors byte for byte. IDs, times, durations and ports differ by
// nature and are checked for shape only.
func TestSlowlogMatchesRedis(t *testing.T) {
	realAddr, orbitAddr := startRedisServer(t), startServer(t, 1)
	long := strings.Repeat("x", 200)
	push := []string{"RPUSH", "l"}
	for i := range 40 {
		push = append(push, fmt.Sprint(i))
	}
	script := [][]string{
		{"CONFIG", "SET", "slowlog-log-slower-than", "0"},
		{"SLOWLOG", "RESET"},
		{"CLIENT", "SETNAME", "tester"},
		{"SET", "k", "v"},
		{"AUTH", "nobody", "secret"},
		{"HELLO", "2", "AUTH", "default", "secret"},
		{"ACL", "SETUSER", "bob", "on", ">pw", "~*", "+@all"},
		{"ACL", "DELUSER", "bob"},
		push,
		{"SET", "big", long},
		{"GET"},                // refused before it ran: not logged
		{"NOSUCHCOMMAND", "x"}, // likewise
		{"MULTI"}, {"SET", "a", "1"}, {"GET", "a"}, {"EXEC"},
		{"CONFIG", "SET", "slowlog-log-slower-than", "-1"},
		{"SET", "unlogged", "1"},
		{"CONFIG", "SET", "slowlog-log-slower-than", "0"},
	}
	type entry struct {
		args []string
		name string
	}
	logs := map[string][]entry{}
	for _, addr := range []string{realAddr, orbitAddr} {
		c := dialRESP(t, addr)
		for _, cmd := range script {
			if _, err := c.do(cmd...); err != nil {
				t.Fatalf("%s: %q: %v", addr, cmd, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
		got, err := rdb.SlowLogGet(ctx, -1).Result()
		if err != nil {
			t.Fatalf("%s: SLOWLOG GET -1: %v", addr, err)
		}
		local := c.c.LocalAddr().String()
		for i, e := range got {
			if i > 0 && e.ID != got[i-1].ID-1 {
				t.Errorf("%s: entry %d has ID %d after %d", addr, i, e.ID, got[i-1].ID)
			}
			if time.Since(e.Time) > time.Minute || e.Duration < 0 {
				t.Errorf("%s: entry %d: time %v, duration %v", addr, i, e.Time, e.Duration)
			}
			if host, _, _ := net.SplitHostPort(e.ClientAddr); e.ClientAddr != local && host != "127.0.0.1" {
				t.Errorf("%s: entry %d: client address %q", addr, i, e.ClientAddr)
			}
			logs[addr] = append(logs[addr], entry{args: e.Args, name: e.ClientName})
		}
		rdb.Close()
		cancel()
	}
	want, got := logs[realAddr], logs[orbitAddr]
	if len(want) != len(got) {
		t.Errorf("redis logged %d commands, orbit %d", len(want), len(got))
	}
	for i := range min(len(want), len(got)) {
		if !slices.Equal(want[i].args, got[i].args) || want[i].name != got[i].name {
			t.Errorf("entry %d:\nredis: %q (%q)\norbit: %q (%q)", i, want[i].args, want[i].name, got[i].args, got[i].name)
		}
	}
	// SLOWLOG's replies, the length bound, errors.
	r, o := dialRESP(t, realAddr), dialRESP(t, orbitAddr)
	for _, cmd := range [][]string{
		{"SLOWLOG", "HELP"}, {"SLOWLOG", "GET", "0"}, {"SLOWLOG", "GET", "-2"}, {"SLOWLOG", "GET", "abc"},
		{"SLOWLOG", "GET", "1", "2"}, {"SLOWLOG", "FOO"}, {"SLOWLOG", "LEN", "x"}, {"SLOWLOG", "RESET", "x"},
		{"SLOWLOG", "HELP", "x"}, {"SLOWLOG"},
		{"CONFIG", "SET", "slowlog-max-len", "3"}, {"SET", "x", "1"}, {"SLOWLOG", "LEN"},
		{"CONFIG", "SET", "slowlog-max-len", "-1"}, {"CONFIG", "SET", "slowlog-log-slower-than", "-2"},
		{"CONFIG", "SET", "slowlog-log-slower-than", "abc"}, {"CONFIG", "GET", "slowlog-max-len"}, {"CONFIG", "GET", "slowlog-log-slower-than"},
		{"SLOWLOG", "RESET"}, {"CONFIG", "SET", "slowlog-log-slower-than", "-1"}, {"SLOWLOG", "LEN"},
	} {
		want, got := bothReplies(t, r, o, cmd)
		if !bytes.Equal(want, got) {
			t.Errorf("%q:\nredis: %q\norbit: %q", cmd, want, got)
		}
	}
}
