package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestClientUnblockMatchesRedis: CLIENT UNBLOCK against redis-server
// 7.0.15, byte for byte: a client blocked in BLPOP, BLMOVE or XREAD
// BLOCK is answered as if timed out (TIMEOUT, the default) or with the
// UNBLOCKED error (ERROR); a client not blocked, or no such client, gives
// 0; bad reasons, IDs and arities give Redis's errors. And CLIENT LIST's
// TYPE and ID filters, compared by which connections they list.
func TestClientUnblockMatchesRedis(t *testing.T) {
	realAddr, orbitAddr := startRedisServer(t), startServer(t, 1)
	idOf := regexp.MustCompile(`:(\d+)\r\n`)
	got := map[string][]string{}
	for _, addr := range []string{realAddr, orbitAddr} {
		b, c := dialRESP(t, addr), dialRESP(t, addr)
		r, err := b.do("CLIENT", "ID")
		if err != nil {
			t.Fatal(err)
		}
		id := idOf.FindStringSubmatch(string(r))[1]
		note := func(what string, r []byte) { got[addr] = append(got[addr], fmt.Sprintf("%s -> %q", what, r)) }
		for _, blocked := range [][]string{
			{"BLPOP", "nolist", "0"},
			{"BLMOVE", "nolist", "other", "LEFT", "RIGHT", "0"},
			{"XREAD", "BLOCK", "0", "STREAMS", "s", "$"},
			{"BLPOP", "nolist", "10"},
		} {
			for _, how := range [][]string{nil, {"TIMEOUT"}, {"error"}} {
				if _, err := b.c.Write(command(blocked)); err != nil {
					t.Fatal(err)
				}
				// Unblock once the client is blocked: until then UNBLOCK
				// answers 0, and is tried again.
				var u []byte
				for try := 0; ; try++ {
					if u, err = c.do(append([]string{"CLIENT", "UNBLOCK", id}, how...)...); err != nil {
						t.Fatal(err)
					}
					if string(u) == ":1\r\n" || try == 200 {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				_ = b.c.SetDeadline(time.Now().Add(10 * time.Second))
				reply, err := readReply(b.r)
				if err != nil {
					t.Fatalf("%s: %q after UNBLOCK %q: %v", addr, blocked, how, err)
				}
				note(fmt.Sprintf("%q unblocked %q: UNBLOCK", blocked, how), u)
				note(fmt.Sprintf("%q unblocked %q: the client", blocked, how), reply)
			}
		}
		for _, cmd := range [][]string{
			{"CLIENT", "UNBLOCK", id}, // not blocked
			{"CLIENT", "UNBLOCK", "999999"},
			{"CLIENT", "UNBLOCK", id, "foo"},
			{"CLIENT", "UNBLOCK", "abc"},
			{"CLIENT", "UNBLOCK"},
			{"CLIENT", "UNBLOCK", id, "timeout", "x"},
			{"CLIENT", "LIST", "TYPE", "foo"},
			{"CLIENT", "LIST", "TYPE", "replica"},
			{"CLIENT", "LIST", "ID", "777777", "abc"},
			{"CLIENT", "LIST", "ID"},
			{"CLIENT", "LIST", "foo"},
			{"CLIENT", "LIST", "TYPE", "normal", "ID", "777777"},
			{"CLIENT", "NO-EVICT", "on"}, {"CLIENT", "NO-EVICT", "OFF"}, {"CLIENT", "NO-EVICT", "maybe"}, {"CLIENT", "NO-EVICT"},
		} {
			r, err := c.do(cmd...)
			if err != nil {
				t.Fatal(err)
			}
			note(strings.ReplaceAll(fmt.Sprintf("%q", cmd), `"`+id+`"`, `"ID"`), r)
		}
		// Which connections TYPE and ID list: the subscriber's, the others'.
		s := dialRESP(t, addr)
		sr, err := s.do("SUBSCRIBE", "ch")
		if err != nil {
			t.Fatal(err)
		}
		_ = sr
		cr, _ := c.do("CLIENT", "ID")
		cid := idOf.FindStringSubmatch(string(cr))[1]
		who := map[string]string{id: "blocker", cid: "caller"}
		listed := func(r []byte) string {
			var names []string
			for _, m := range regexp.MustCompile(`id=(\d+) .*flags=(\S+) .*cmd=(\S+) `).FindAllStringSubmatch(string(r), -1) {
				n, ok := who[m[1]]
				if !ok {
					n = "subscriber"
				}
				names = append(names, n+" "+m[2]+" "+m[3])
			}
			return strings.Join(names, ",")
		}
		// The blocker blocked, then in MULTI, then with NO-EVICT on.
		if _, err := b.c.Write(command([]string{"BLPOP", "nolist", "0"})); err != nil {
			t.Fatal(err)
		}
		for try := 0; try < 200; try++ {
			if r, _ := c.do("CLIENT", "LIST", "ID", id); strings.Contains(string(r), "flags=b") {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		r, _ = c.do("CLIENT", "LIST")
		got[addr] = append(got[addr], "blocked: "+listed(r))
		if _, err := c.do("CLIENT", "UNBLOCK", id); err != nil {
			t.Fatal(err)
		}
		if _, err := readReply(b.r); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pipeline([][]string{{"MULTI"}, {"CLIENT", "NO-EVICT", "on"}}); err != nil {
			t.Fatal(err)
		}
		r, _ = c.do("CLIENT", "LIST")
		got[addr] = append(got[addr], "in MULTI: "+listed(r))
		if _, err := b.pipeline([][]string{{"EXEC"}, {"RESET"}}); err != nil {
			t.Fatal(err)
		}
		r, _ = c.do("CLIENT", "LIST")
		got[addr] = append(got[addr], "NO-EVICT, RESET: "+listed(r))
		for _, cmd := range [][]string{
			{"CLIENT", "LIST"}, {"CLIENT", "LIST", "TYPE", "normal"}, {"CLIENT", "LIST", "TYPE", "PUBSUB"},
			{"CLIENT", "LIST", "ID", cid, id, cid, "99999"},
		} {
			r, err := c.do(cmd...)
			if err != nil {
				t.Fatal(err)
			}
			got[addr] = append(got[addr], fmt.Sprintf("%q lists %s", cmd[:min(len(cmd), 3)], listed(r)))
		}
	}
	want, have := got[realAddr], got[orbitAddr]
	if strings.Join(want, "\n") != strings.Join(have, "\n") {
		t.Errorf("redis:\n  %s\norbit:\n  %s", strings.Join(want, "\n  "), strings.Join(have, "\n  "))
	}
}

// command is args as a RESP request.
func command(args []string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}
