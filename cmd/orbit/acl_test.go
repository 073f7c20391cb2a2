package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"testing"
	"time"
)

// Redis 7.0 ACL users through orbit serve, against redis-server 7.0.15,
// in both protocols and on one and four ranges: ACL SETUSER with every
// rule kind and every error, GETUSER, LIST, USERS, CAT, WHOAMI, DRYRUN,
// DELUSER; AUTH and HELLO AUTH as several users on their own connections;
// commands allowed and refused by command, category, subcommand, first
// argument, key pattern (%R and %W), and channel; NOAUTH while the
// default user has a password; a transaction refused at EXEC after its
// user changed. (ACL CAT <category> lists Redis's dictionary order, and
// a user with several single-command rules too: neither is compared.)

// aclStep is one command on one of the test's connections; shape: only
// whether both answered an error (HELLO's reply holds the client ID).
type aclStep struct {
	conn  string
	cmd   []string
	shape bool
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func aclSteps() []aclStep {
	a := func(cmd ...string) aclStep { return aclStep{conn: "admin", cmd: cmd} }
	on := func(conn string, cmd ...string) aclStep { return aclStep{conn: conn, cmd: cmd} }
	return []aclStep{
		a("ACL", "LOG"), // empty before any refusal
		a("ACL", "WHOAMI"),
		a("ACL", "USERS"),
		a("ACL", "LIST"),
		a("ACL", "GETUSER", "default"),
		a("ACL", "SETUSER", "alice"),
		a("ACL", "LIST"),
		a("ACL", "GETUSER", "alice"),
		a("ACL", "GETUSER", "nosuch"),
		a("ACL", "SETUSER", "alice", "on", ">pw1", ">pw2", ">pw1", "~k*", "%R~r*", "%W~w*", "%R~k*", "&ch*", "&ch*", "-@all", "+@read", "+@string", "-get"),
		a("ACL", "SETUSER", "alice", "<pw2"),
		a("ACL", "SETUSER", "alice", "<pw2"),
		a("ACL", "GETUSER", "alice"),
		a("ACL", "SETUSER", "bob", "on", "nopass", "allkeys", "allchannels", "+@all", "-@dangerous"),
		a("ACL", "SETUSER", "carol", "on", "#"+sha("pw3"), "resetkeys", "%RW~x*", "%R~ro*", "%W~wo*", "resetchannels", "&news.*",
			"nocommands", "+@read", "+@write", "+@pubsub", "+@transaction", "+select|0", "+select|0"),
		a("ACL", "SETUSER", "dave", "on", ">pw4", "~*", "-@all", "+@connection", "+client|kill"),
		a("ACL", "SETUSER", "eve", "reset", ">pw5", "skip-sanitize-payload", "allcommands", "-@keyspace"),
		a("ACL", "SETUSER", "frank", "on", "nopass", "~a", "~b", "resetkeys", "~c", "&x", "resetchannels", "+@all", "-@all", "+@hash", "-hset"),
		a("ACL", "LIST"),
		a("ACL", "USERS"),
		a("ACL", "GETUSER", "carol"),
		a("ACL", "GETUSER", "eve"),
		// Rule errors: nothing of the command is applied.
		a("ACL", "SETUSER", "bob", "~a"),
		a("ACL", "SETUSER", "bob", "&a"),
		a("ACL", "SETUSER", "alice", "%X~a"),
		a("ACL", "SETUSER", "alice", "+nosuch"),
		a("ACL", "SETUSER", "alice", "-nosuch"),
		a("ACL", "SETUSER", "alice", "+@nosuch"),
		a("ACL", "SETUSER", "alice", "+client|kill|x"),
		a("ACL", "SETUSER", "alice", "+client|"),
		a("ACL", "SETUSER", "alice", "+client|nosuch"),
		a("ACL", "SETUSER", "alice", "-select|0"),
		a("ACL", "SETUSER", "alice", "<nope"),
		a("ACL", "SETUSER", "alice", "!"+sha("nope")),
		a("ACL", "SETUSER", "alice", "#abc"),
		a("ACL", "SETUSER", "alice", "#"+sha("x")[:63]+"G"),
		a("ACL", "SETUSER", "alice", "off", "bogus"),
		a("ACL", "SETUSER", "a b"),
		a("ACL", "SETUSER", "alice"),
		a("ACL", "GETUSER", "alice"),
		a("ACL", "DELUSER", "default"),
		a("ACL", "CAT"),
		a("ACL", "CAT", "nosuch"),
		a("ACL", "CAT", "a", "b"),
		a("ACL", "GENPASS", "0"),
		a("ACL", "GENPASS", "x"),
		a("ACL", "LOAD"),
		a("ACL", "SAVE"),
		a("ACL", "HELP"),
		a("ACL", "NOSUCH"),
		a("ACL"),
		a("ACL", "GETUSER"),
		a("ACL", "WHOAMI", "x"),
		// DRYRUN: the check without running.
		a("ACL", "DRYRUN", "alice", "get", "k1"),
		a("ACL", "DRYRUN", "alice", "strlen", "k1"),
		a("ACL", "DRYRUN", "alice", "strlen", "x"),
		a("ACL", "DRYRUN", "alice", "set", "w1", "v"),
		a("ACL", "DRYRUN", "alice", "append", "w1", "v"),
		a("ACL", "DRYRUN", "alice", "append", "r1", "v"),
		a("ACL", "DRYRUN", "alice", "strlen", "r1"),
		a("ACL", "DRYRUN", "alice", "publish", "ch1", "m"),
		a("ACL", "DRYRUN", "nobody", "get", "x"),
		a("ACL", "DRYRUN", "alice", "nosuch"),
		a("ACL", "DRYRUN", "alice", "get"),
		a("ACL", "DRYRUN", "bob", "publish", "x", "m"),
		a("ACL", "DRYRUN", "bob", "flushall"),
		a("ACL", "DRYRUN", "carol", "publish", "news.x", "m"),
		a("ACL", "DRYRUN", "carol", "publish", "other", "m"),
		a("ACL", "DRYRUN", "carol", "subscribe", "news.a", "other"),
		a("ACL", "DRYRUN", "carol", "psubscribe", "news.*"),
		a("ACL", "DRYRUN", "carol", "psubscribe", "news.a"),
		a("ACL", "DRYRUN", "carol", "select", "0"),
		a("ACL", "DRYRUN", "carol", "select", "1"),
		a("ACL", "DRYRUN", "dave", "client", "kill", "1.2.3.4:5"),
		a("ACL", "DRYRUN", "dave", "client", "list"),
		a("ACL", "DRYRUN", "dave", "auth", "x"),
		a("ACL", "DRYRUN", "eve", "del", "x"),
		a("ACL", "DRYRUN", "eve", "hset", "x", "f", "v"),
		// alice: read and string commands, but not GET; keys by pattern.
		on("alice", "AUTH", "alice", "pw1"),
		on("alice", "AUTH", "alice", "wrong"),
		on("alice", "AUTH", "alice", "pw2"),
		on("alice", "AUTH", "nosuch", "pw1"),
		on("alice", "AUTH", "a", "b", "c"),
		on("alice", "ACL", "WHOAMI"),
		on("alice", "GET", "k1"),
		on("alice", "STRLEN", "k1"),
		on("alice", "STRLEN", "x"),
		on("alice", "SET", "w1", "v"),
		on("alice", "APPEND", "w1", "v"),
		on("alice", "APPEND", "r1", "v"),
		on("alice", "GETRANGE", "r1", "0", "1"),
		on("alice", "MGET", "k1", "r1"),
		on("alice", "MGET", "k1", "x"),
		on("alice", "PING"),
		on("alice", "PUBLISH", "ch1", "x"),
		on("alice", "LPUSH", "k1", "x"),
		// bob: everything but the dangerous commands.
		on("bob", "AUTH", "bob", "anything"),
		on("bob", "ACL", "WHOAMI"),
		on("bob", "FLUSHALL"),
		on("bob", "SET", "a", "1"),
		on("bob", "PUBLISH", "any", "x"),
		on("bob", "KEYS", "*"),
		on("bob", "CONFIG", "GET", "maxmemory"),
		on("bob", "CLIENT", "KILL", "9.9.9.9:1"),
		on("bob", "ACL", "LIST"),
		on("bob", "ACL", "GENPASS", "x"),
		// carol: through HELLO; read and write by pattern; channels.
		{conn: "carol", cmd: []string{"HELLO", "PROTO", "AUTH", "carol", "wrong"}},
		{conn: "carol", cmd: []string{"HELLO", "PROTO", "AUTH", "carol", "pw3"}, shape: true},
		on("carol", "ACL", "WHOAMI"),
		on("carol", "SET", "x1", "v"),
		on("carol", "SET", "ro1", "v"),
		on("carol", "GET", "ro1"),
		on("carol", "GET", "wo1"),
		on("carol", "LPUSH", "wo1", "a"),
		on("carol", "LPUSH", "ro1", "a"),
		on("carol", "DEL", "wo1"),
		on("carol", "SELECT", "0"),
		on("carol", "SELECT", "1"),
		on("carol", "PUBLISH", "news.a", "m"),
		on("carol", "PUBLISH", "other", "m"),
		on("carol", "SUBSCRIBE", "news.a", "other"),
		on("carol", "PSUBSCRIBE", "news.a"),
		on("carol", "EXEC"),
		on("carol", "MULTI"), on("carol", "SET", "x2", "v"), on("carol", "GET", "wo1"), on("carol", "EXEC"),
		on("carol", "MULTI"), on("carol", "SET", "x3", "v"), on("carol", "GET", "x3"), on("carol", "SET", "ro1", "v"),
		a("ACL", "SETUSER", "carol", "resetkeys", "%RW~x3"),
		on("carol", "EXEC"),
		a("ACL", "SETUSER", "carol", "resetkeys", "%RW~y*"),
		on("carol", "MULTI"), on("carol", "SET", "y1", "v"), on("carol", "GET", "x3"), on("carol", "PING"),
		on("carol", "EXEC"),
		// dave: connection commands and CLIENT KILL only.
		on("dave", "AUTH", "dave", "pw4"),
		on("dave", "PING"),
		on("dave", "ECHO", "hi"),
		on("dave", "CLIENT", "KILL", "9.9.9.9:1"),
		on("dave", "CLIENT", "SETNAME", "x"),
		on("dave", "GET", "a"),
		a("CLIENT", "KILL", "USER", "nosuch"),
		a("CLIENT", "KILL", "USER", "dave"),
		// eve is off: she cannot log in.
		on("eve", "AUTH", "eve", "pw5"),
		on("eve", "ACL", "WHOAMI"),
		// The default user with a password: new connections must AUTH.
		a("ACL", "SETUSER", "default", ">defpw"),
		a("ACL", "GETUSER", "default"),
		on("anon", "GET", "x"),
		on("anon", "PING"),
		{conn: "anon", cmd: []string{"HELLO", "PROTO"}},
		on("anon", "AUTH", "wrong"),
		on("anon", "AUTH", "defpw"),
		on("anon", "GET", "x"),
		on("admin", "GET", "x"),
		a("ACL", "SETUSER", "default", "off"),
		on("anon2", "GET", "x"),
		on("anon2", "AUTH", "defpw"),
		a("ACL", "SETUSER", "default", "on", "nopass"),
		on("anon2", "AUTH", "defpw"),
		on("anon2", "GET", "x"),
		a("ACL", "LIST"),
		a("ACL", "DELUSER", "nosuch", "frank", "eve"),
		a("ACL", "USERS"),
	}
}

func TestACLMatchRedis(t *testing.T) {
	for _, ranges := range []int{1, 4} {
		t.Run(fmt.Sprintf("ranges=%d", ranges), func(t *testing.T) {
			realAddr, orbitAddr := startRedisServer(t), startServer(t, ranges)
			for _, proto := range []string{"2", "3"} {
				conns := map[string][2]*respConn{}
				conn := func(name string) [2]*respConn {
					if c, ok := conns[name]; ok {
						return c
					}
					c := [2]*respConn{dialRESP(t, realAddr), dialRESP(t, orbitAddr)}
					conns[name] = c
					if name == "anon" || name == "anon2" {
						return c // must not run HELLO before AUTH
					}
					for _, rc := range c {
						if _, err := rc.do("HELLO", proto); err != nil {
							t.Fatal(err)
						}
					}
					return c
				}
				for _, c := range conn("admin") {
					if _, err := c.do("FLUSHALL"); err != nil {
						t.Fatal(err)
					}
					if _, err := c.do("ACL", "LOG", "RESET"); err != nil { // Redis's log of the pass before
						t.Fatal(err)
					}
				}
				for _, step := range aclSteps() {
					cmd := append([]string(nil), step.cmd...)
					for i, a := range cmd {
						if a == "PROTO" {
							cmd[i] = proto
						}
					}
					c := conn(step.conn)
					want, got := bothReplies(t, c[0], c[1], cmd)
					if step.shape {
						if (want[0] == '-') != (got[0] == '-') {
							t.Errorf("RESP%s %s %q:\nredis: %q\norbit: %q", proto, step.conn, cmd, want, got)
						}
						continue
					}
					want, got = normalizeRaw(cmd, want), normalizeRaw(cmd, got)
					if !bytes.Equal(want, got) {
						t.Errorf("RESP%s %s %q:\nredis: %q\norbit: %q", proto, step.conn, cmd, want, got)
					}
				}
				// GENPASS is random: its shape only.
				hexOf := func(n int) *regexp.Regexp {
					return regexp.MustCompile(fmt.Sprintf(`^\$%d\r\n[0-9a-f]+\r\n$`, n))
				}
				for _, tc := range []struct {
					args []string
					n    int
				}{{[]string{"ACL", "GENPASS"}, 64}, {[]string{"ACL", "GENPASS", "5"}, 2}, {[]string{"ACL", "GENPASS", "4096"}, 1024}} {
					want, got := bothReplies(t, conn("admin")[0], conn("admin")[1], tc.args)
					if !hexOf(tc.n).Match(want) || !hexOf(tc.n).Match(got) {
						t.Errorf("%q: redis %q, orbit %q", tc.args, want, got)
					}
				}
				// Deleting a user closes its connections.
				want, got := bothReplies(t, conn("admin")[0], conn("admin")[1], []string{"ACL", "DELUSER", "alice", "bob", "carol", "dave"})
				if !bytes.Equal(want, got) {
					t.Errorf("DELUSER: redis %q, orbit %q", want, got)
				}
				for _, name := range []string{"alice", "bob"} {
					for i, c := range conn(name) {
						if r, err := c.do("PING"); err == nil {
							t.Errorf("%s's connection (%d) still answers after DELUSER: %q", name, i, r)
						}
					}
				}
			}
		})
	}
}

// TestACLAcrossNodes requires a user made through one node to log in on
// another, and a user deleted through a third to be refused everywhere.
func TestACLAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	ns := startCluster(t, buildOrbit(t), 3)
	c0, c1, c2 := dialRESP(t, ns[0].redisAddr), dialRESP(t, ns[1].redisAddr), dialRESP(t, ns[2].redisAddr)
	expect := func(c *respConn, want string, args ...string) {
		t.Helper()
		var got []byte
		var err error
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			got, err = c.do(args...)
			if err == nil && string(got) == want || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || string(got) != want {
			t.Fatalf("%q: got %q (%v), want %q", args, got, err, want)
		}
	}
	expect(c0, "+OK\r\n", "ACL", "SETUSER", "zed", "on", ">pw", "~z*", "+@all")
	expect(c1, "+OK\r\n", "AUTH", "zed", "pw")
	expect(c1, "$3\r\nzed\r\n", "ACL", "WHOAMI")
	expect(c1, "+OK\r\n", "SET", "z1", "v")
	expect(c1, "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n", "SET", "a1", "v")
	expect(c2, "*2\r\n$7\r\ndefault\r\n$3\r\nzed\r\n", "ACL", "USERS")
	// A change through another node is enforced within the staleness
	// bound (100 ms) here.
	expect(c2, "+OK\r\n", "ACL", "SETUSER", "zed", "resetkeys", "~a*")
	time.Sleep(300 * time.Millisecond)
	expect(c1, "+OK\r\n", "SET", "a1", "v")
	expect(c2, ":1\r\n", "ACL", "DELUSER", "zed")
	time.Sleep(300 * time.Millisecond)
	if r, err := c1.do("PING"); err == nil {
		t.Fatalf("zed's connection on another node answers after DELUSER: %q", r)
	}
	expect(c0, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "zed", "pw")
}
