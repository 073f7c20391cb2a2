package main

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The points of issue 17's "What was seen", each as a new user met it
// against `orbit serve` with raw sockets, and Redis 7.0.15's behaviour
// (checked by hand against redis-server: tell it apart by its replies).

// infoField returns a field of INFO's text ("blocked_clients").
func infoField(t *testing.T, c *respConn, section, field string) string {
	t.Helper()
	r, err := c.do("INFO", section)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(r), "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v
		}
	}
	return ""
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBlockedClientThatLeavesTakesNothing: a client blocked in BLPOP that
// closes its socket is unblocked and forgotten at once, and the element a
// later RPUSH adds stays in the list.
func TestBlockedClientThatLeavesTakesNothing(t *testing.T) {
	addr := startServer(t, 1)
	admin := dialRESP(t, addr)
	for _, cmd := range [][]string{
		{"BLPOP", "q", "0"},
		{"BRPOP", "q", "0"},
		{"BLMOVE", "q", "dst", "LEFT", "RIGHT", "0"},
		{"BRPOPLPUSH", "q", "dst", "0"},
	} {
		blocked := dialRESP(t, addr)
		if _, err := blocked.c.Write(encode(cmd)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the client to block", func() bool { return infoField(t, admin, "clients", "blocked_clients") == "1" })
		blocked.c.Close()
		waitFor(t, "the client to be forgotten", func() bool {
			return infoField(t, admin, "clients", "blocked_clients") == "0" &&
				infoField(t, admin, "clients", "connected_clients") == "1"
		})
		if r, err := admin.do("RPUSH", "q", "v1"); err != nil || string(r) != ":1\r\n" {
			t.Fatalf("%s: RPUSH: %q %v", cmd[0], r, err)
		}
		time.Sleep(300 * time.Millisecond) // longer than a blocked client's poll
		if r, err := admin.do("LPOP", "q"); err != nil || string(r) != "$2\r\nv1\r\n" {
			t.Fatalf("%s: the element pushed after the blocked client left: %q %v (want it still there)", cmd[0], r, err)
		}
	}
}

func encode(args []string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

// TestSubMillisecondBlockingTimeoutsExpire: Redis rounds a blocking
// timeout up to the next millisecond; only 0 blocks forever.
func TestSubMillisecondBlockingTimeoutsExpire(t *testing.T) {
	c := dialRESP(t, startServer(t, 1))
	for _, timeout := range []string{"0.001", "0.0001", "0.0000001"} {
		start := time.Now()
		r, err := c.do("BLPOP", "nothing", timeout)
		if err != nil || string(r) != "*-1\r\n" {
			t.Errorf("BLPOP nothing %s: %q %v, want a null array", timeout, r, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("BLPOP nothing %s took %v", timeout, took)
		}
	}
}

// TestUnboundedInputIsCut: a header line that never ends is cut at 64 KB
// with Redis's error, and the server does not read on.
func TestUnboundedInputIsCut(t *testing.T) {
	addr := startServer(t, 1)
	for _, tc := range []struct{ head, want string }{
		{"*\x00", "-ERR Protocol error: too big mbulk count string\r\n"},
		{"*1\r\n$\x00", "-ERR Protocol error: too big bulk count string\r\n"},
		{"GET ", "-ERR Protocol error: too big inline request\r\n"},
	} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		// Send up to 64 MB in the background; the server must answer and
		// close long before.
		sent := make(chan int64, 1)
		go func() {
			var n int64
			chunk := []byte(strings.Repeat("x", 64<<10))
			if k, err := nc.Write([]byte(tc.head)); err == nil {
				n += int64(k)
				for n < 64<<20 {
					k, err := nc.Write(chunk)
					n += int64(k)
					if err != nil {
						break
					}
				}
			}
			sent <- n
		}()
		got, _ := io.ReadAll(nc)
		nc.Close()
		if n := <-sent; n >= 64<<20 {
			t.Errorf("%q: the server took all %d bytes", tc.head, n)
		}
		if string(got) != tc.want {
			t.Errorf("%q: got %q, want %q", tc.head, got, tc.want)
		}
	}
}

// TestRequestEdgesAsRedis: a negative or zero argument count is ignored;
// PING takes at most one argument; MULTI queues server commands.
func TestRequestEdgesAsRedis(t *testing.T) {
	addr := startServer(t, 1)
	raw := func(in string, replies int) string {
		c := dialRESP(t, addr)
		_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.c.Write([]byte(in)); err != nil {
			t.Fatal(err)
		}
		var out []string
		for range replies {
			r, err := readReply(c.r)
			if err != nil {
				t.Fatalf("%q: %v after %q", in, err, out)
			}
			out = append(out, string(r))
		}
		return strings.Join(out, "")
	}
	for in, want := range map[string]string{
		"*-10\r\n*1\r\n$4\r\nPING\r\n": "+PONG\r\n",
		"*0\r\n*1\r\n$4\r\nPING\r\n":   "+PONG\r\n",
		"PING x y z\r\n":               "-ERR wrong number of arguments for 'ping' command\r\n",
	} {
		if got := raw(in, 1); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	got := raw("SET k old\r\nMULTI\r\nCONFIG SET appendonly yes\r\nFLUSHALL\r\nSET a 1\r\nGET k\r\nPING x y\r\nEXEC\r\n", 8)
	want := "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n" +
		"*5\r\n+OK\r\n+OK\r\n+OK\r\n$-1\r\n-ERR wrong number of arguments for 'ping' command\r\n"
	if got != want {
		t.Errorf("MULTI with server commands:\n got %q\nwant %q", got, want)
	}
}

// TestInfoSections: INFO's memory, stats, commandstats and cpu sections
// say something, and keyspace counts the keys with a TTL.
func TestInfoSections(t *testing.T) {
	c := dialRESP(t, startServer(t, 1))
	for _, cmd := range [][]string{{"SET", "a", "1", "EX", "100"}, {"SET", "b", "1"}, {"GET", "a"}, {"GET"}} {
		if _, err := c.do(cmd...); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range [][3]string{
		{"memory", "used_memory", ""},
		{"cpu", "used_cpu_user", ""},
		{"stats", "total_commands_processed", ""},
		{"stats", "total_connections_received", "1"},
		{"commandstats", "cmdstat_set", "calls=2,"},
		{"commandstats", "cmdstat_get", "rejected_calls=1,"},
		{"errorstats", "errorstat_ERR", "count=1"},
	} {
		v := infoField(t, c, f[0], f[1])
		if v == "" || (f[2] != "" && !strings.Contains(v, f[2])) {
			t.Errorf("INFO %s: %s = %q, want it to hold %q", f[0], f[1], v, f[2])
		}
	}
	if v := infoField(t, c, "keyspace", "db0"); !strings.HasPrefix(v, "keys=2,expires=1,avg_ttl=") || strings.HasSuffix(v, "avg_ttl=0") {
		t.Errorf("INFO keyspace: db0:%s", v)
	}
	if v := infoField(t, c, "", "cmdstat_set"); v != "" {
		t.Errorf("INFO with no section lists commandstats (Redis leaves them to INFO all): %s", v)
	}
}

// TestNewBlockingCommandsWake: BZPOPMIN, BZPOPMAX, BLMPOP and BZMPOP block
// until another client writes, then answer as Redis does.
func TestNewBlockingCommandsWake(t *testing.T) {
	addr := startServer(t, 1)
	admin := dialRESP(t, addr)
	for _, tc := range []struct {
		block, write []string
		want         string
	}{
		{[]string{"BZPOPMIN", "z1", "z2", "0"}, []string{"ZADD", "z2", "1.5", "m"}, "*3\r\n$2\r\nz2\r\n$1\r\nm\r\n$3\r\n1.5\r\n"},
		{[]string{"BZPOPMAX", "z3", "0"}, []string{"ZADD", "z3", "1", "a", "2", "b"}, "*3\r\n$2\r\nz3\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{[]string{"BLMPOP", "0", "2", "l1", "l2", "RIGHT", "COUNT", "2"}, []string{"RPUSH", "l2", "x", "y", "z"}, "*2\r\n$2\r\nl2\r\n*2\r\n$1\r\nz\r\n$1\r\ny\r\n"},
		{[]string{"BZMPOP", "0", "1", "z4", "MIN"}, []string{"ZADD", "z4", "3", "c"}, "*2\r\n$2\r\nz4\r\n*1\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"},
	} {
		blocked := dialRESP(t, addr)
		if _, err := blocked.c.Write(encode(tc.block)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the client to block", func() bool { return infoField(t, admin, "clients", "blocked_clients") == "1" })
		if _, err := admin.do(tc.write...); err != nil {
			t.Fatal(err)
		}
		_ = blocked.c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := readReply(blocked.r)
		if err != nil || string(got) != tc.want {
			t.Errorf("%q then %q: %q %v, want %q", tc.block, tc.write, got, err, tc.want)
		}
		blocked.c.Close()
	}
}

// TestClientReply: CLIENT REPLY OFF, SKIP and ON mute replies as Redis
// 7.0.15 does (the expected stream was recorded from redis-server).
func TestClientReply(t *testing.T) {
	c := dialRESP(t, startServer(t, 1))
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	in := "CLIENT REPLY SKIP\r\nSET a 1\r\nGET a\r\nCLIENT REPLY OFF\r\nGET a\r\nCLIENT REPLY SKIP\r\nGET a\r\n" +
		"CLIENT REPLY ON\r\nGET a\r\nCLIENT REPLY SKIP\r\nCLIENT REPLY SKIP\r\nGET a\r\nCLIENT REPLY x\r\nCLIENT REPLY\r\n" +
		"CLIENT REPLY OFF\r\nRESET\r\nPING\r\n"
	want := []string{"$1\r\n1\r\n", "+OK\r\n", "$1\r\n1\r\n", "-ERR syntax error\r\n",
		"-ERR wrong number of arguments for 'client|reply' command\r\n", "+RESET\r\n", "+PONG\r\n"}
	if _, err := c.c.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		got, err := readReply(c.r)
		if err != nil || string(got) != w {
			t.Fatalf("reply %d: %q %v, want %q", i, got, err, w)
		}
	}
}
