package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// monitorLine is a MONITOR line: its time, the database and client
// address, and the arguments.
var monitorLine = regexp.MustCompile(`^\+(\d+)\.(\d{6}) \[(\d+) ([^\]]+)\] (.*)\r\n$`)

// TestMonitorMatchesRedis: MONITOR against redis-server 7.0.15, the same
// commands on both. What a monitor is shown, in which order, with which
// database and arguments (quoted as sdscatrepr quotes them, passwords
// redacted), and what is not shown (refused, administrative, queued
// until EXEC); then what a monitoring connection may still run, byte for
// byte: its own line after its reply, keyspace commands refused, a second
// MONITOR unanswered, RESET, MONITOR inside MULTI. Times and ports differ
// by nature and are checked for shape only. (Scripts differ on purpose:
// Redis also shows a script's calls as "[0 lua]" lines; Orbit runs them
// at the leaseholder. Not in the script.)
func TestMonitorMatchesRedis(t *testing.T) {
	realAddr, orbitAddr := startRedisServer(t), startServer(t, 3)
	script := [][]string{
		{"SET", "foo", "bar"},
		{"GET", "foo"},
		{"INCR", "n"},
		{"GET"},                // refused before it ran: not shown
		{"NOSUCHCOMMAND", "x"}, // likewise
		{"MULTI"}, {"SET", "a", "1"}, {"GET", "a"}, {"PING"}, {"EXEC"},
		{"AUTH", "nobody", "secret"},
		{"HELLO", "2", "AUTH", "default", "secret"},
		{"CONFIG", "GET", "maxmemory"}, // admin: not shown
		{"CLIENT", "LIST"},             // admin
		{"CLIENT", "ID"},               // not admin
		{"SLOWLOG", "LEN"},             // admin
		{"SELECT", "3"},
		{"SET", "k", "v\n\"\x01\xc3\xa9 \\ \t\r"},
		{"LPUSH", "l", "x"},
		{"BLPOP", "l", "0"},
		{"SUBSCRIBE", "ch"}, {"UNSUBSCRIBE", "ch"},
		{"ACL", "WHOAMI"},
		{"ACL", "LIST"}, // admin
		{"SELECT", "0"},
		{"ECHO", "end"},
	}
	shown := map[string][]string{}
	for _, addr := range []string{realAddr, orbitAddr} {
		m, c := dialRESP(t, addr), dialRESP(t, addr)
		if r, err := m.do("MONITOR"); err != nil || string(r) != "+OK\r\n" {
			t.Fatalf("%s: MONITOR: %q %v", addr, r, err)
		}
		for _, cmd := range script {
			if _, err := c.do(cmd...); err != nil {
				t.Fatalf("%s: %q: %v", addr, cmd, err)
			}
		}
		local := c.c.LocalAddr().String()
		for {
			_ = m.c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := m.r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: reading the monitor: %v (shown so far: %q)", addr, err, shown[addr])
			}
			f := monitorLine.FindStringSubmatch(line)
			if f == nil {
				t.Fatalf("%s: not a monitor line: %q", addr, line)
			}
			if sec := f[1]; sec < fmt.Sprint(time.Now().Add(-time.Minute).Unix()) || f[4] != local {
				t.Errorf("%s: line %q: time or client address (want %s) wrong", addr, line, local)
			}
			shown[addr] = append(shown[addr], "["+f[3]+"] "+f[5])
			if strings.EqualFold(f[5], `"echo" "end"`) {
				break
			}
		}
	}
	want, got := shown[realAddr], shown[orbitAddr]
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("monitors were shown\nredis:\n  %s\norbit:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}

	// The monitoring connection's own commands, byte for byte but for
	// the time and the port in its own lines.
	stamp := regexp.MustCompile(`\+\d+\.\d{6} \[(\d+) 127\.0\.0\.1:\d+\]`)
	replies := map[string][]string{}
	for _, addr := range []string{realAddr, orbitAddr} {
		m, c := dialRESP(t, addr), dialRESP(t, addr)
		if _, err := m.do("MONITOR"); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range [][]string{
			{"PING"}, {"GET", "foo"}, {"PUBLISH", "ch", "x"}, {"SELECT", "2"}, {"ECHO", "hi"}, {"DBSIZE"},
			{"EVAL", "return 1", "0"}, {"FUNCTION", "FLUSH"}, {"SCRIPT", "EXISTS", "x"},
		} {
			r, err := m.do(cmd...)
			if err != nil {
				t.Fatalf("%s: %q from the monitor: %v", addr, cmd, err)
			}
			if bytes.HasPrefix(r, []byte("+")) && !bytes.HasPrefix(r, []byte("+PONG")) && !bytes.HasPrefix(r, []byte("+OK")) {
				t.Fatalf("%s: %q from the monitor answered with a monitor line first: %q", addr, cmd, r)
			}
			// Its own line follows, unless refused.
			if !bytes.HasPrefix(r, []byte("-")) {
				line, err := m.r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				r = append(r, line...)
			}
			replies[addr] = append(replies[addr], fmt.Sprintf("%q -> %s", cmd, stamp.ReplaceAllString(string(r), "+T [$1 ADDR]")))
		}
		// A second MONITOR has no reply: the PING's reply comes next.
		out, err := m.pipeline([][]string{{"MONITOR"}, {"PING"}}) // two replies: the PING's, then its line
		if err != nil {
			t.Fatal(err)
		}
		replies[addr] = append(replies[addr], fmt.Sprintf("MONITOR, PING -> %q %q", out[0], stamp.ReplaceAllString(string(out[1]), "+T [$1 ADDR]")))
		r, err := m.do("RESET")
		if err != nil {
			t.Fatal(err)
		}
		g, err := m.do("GET", "foo")
		if err != nil {
			t.Fatal(err)
		}
		replies[addr] = append(replies[addr], fmt.Sprintf("RESET -> %q, then GET -> %q", r, g))
		multi, err := c.pipeline([][]string{{"MULTI"}, {"MONITOR"}, {"EXEC"}})
		if err != nil {
			t.Fatal(err)
		}
		replies[addr] = append(replies[addr], fmt.Sprintf("MULTI MONITOR EXEC -> %q", multi))
	}
	want, got = replies[realAddr], replies[orbitAddr]
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("a monitoring connection's commands\nredis:\n  %s\norbit:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}
}
