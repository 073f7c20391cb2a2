package session

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/kernel/prod"
)

// The ACL rules and their description; cmd/orbit's TestACLMatchRedis
// compares them with redis-server byte for byte.

// TestACLDescribeRoundTrips applies users' rules, then their description
// to a new user (as the record is read back), and requires the same user:
// the record loses nothing.
func TestACLDescribeRoundTrips(t *testing.T) {
	for _, rules := range [][]string{
		{"on", "nopass", "~*", "&*", "+@all"},
		{"on", ">a", ">b", "<a", "~k*", "%R~r*", "%W~w*", "%R~k*", "&ch", "-@all", "+@read", "-get", "+client|kill", "+select|0"},
		{"reset", "skip-sanitize-payload", "allcommands", "-@keyspace", "-hset", "+del"},
		{"on", "#" + hashPassword("x"), "resetkeys", "resetchannels", "nocommands", "+@hash", "-hset", "+config|get"},
		{"+@all", "-@dangerous", "+flushall", "-@fast", "+ping"},
	} {
		u := newACLUser("u")
		for _, r := range rules {
			if err := u.apply(r); err != nil {
				t.Fatalf("%q: %v", r, err)
			}
		}
		d := u.describe()
		v := newACLUser("u")
		for _, r := range strings.Fields(d) {
			if err := v.apply(r); err != nil {
				t.Fatalf("%q of %q: %v", r, d, err)
			}
		}
		if got := v.describe(); got != d || !slices.Equal(u.allowed, v.allowed) || u.future != v.future {
			t.Errorf("rules %q describe as %q, which describes as %q", rules, d, got)
		}
		users, err := decodeUsers(encodeUsers(map[string]*aclUser{"u": u}))
		if err != nil || users["u"].describe() != d || users["default"] == nil {
			t.Errorf("record of %q: %v %v", rules, users, err)
		}
	}
}

// TestACLRefusesSelectors: Redis 7.0's "(...)" selectors are refused.
func TestACLRefusesSelectors(t *testing.T) {
	u := newACLUser("u")
	if err := u.apply("(+get ~a)"); err != errACLSelector {
		t.Fatalf("selector: %v", err)
	}
	if err := u.apply("clearselectors"); err != nil {
		t.Fatalf("clearselectors: %v", err)
	}
}

// TestACLCheck covers the check's parts: commands, first arguments, keys
// by read and write permission (SET without GET only writes), channels.
func TestACLCheck(t *testing.T) {
	u := newACLUser("u")
	for _, r := range []string{"on", "nopass", "%R~r*", "%W~w*", "~rw*", "&news.*", "-@all", "+@string", "+select|0", "+publish", "+psubscribe", "+auth"} {
		if err := u.apply(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args string
		want aclDenial
	}{
		{"get r1", aclOK}, {"get w1", aclDeniedKey}, {"get rw1", aclOK},
		{"set w1 v", aclOK}, {"set r1 v", aclDeniedKey}, {"set w1 v get", aclDeniedKey}, {"set rw1 v get", aclOK},
		{"append w1 v", aclOK}, {"lpush w1 v", aclDeniedCmd},
		{"select 0", aclOK}, {"select 1", aclDeniedCmd},
		{"publish news.a m", aclOK}, {"publish other m", aclDeniedChannel},
		{"psubscribe news.*", aclOK}, {"psubscribe news.a", aclDeniedChannel},
		{"hello 3", aclOK}, // no_auth commands are always allowed
	} {
		var args [][]byte
		for _, a := range strings.Fields(tc.args) {
			args = append(args, []byte(a))
		}
		if got, _, _ := u.check(args); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.args, got, tc.want)
		}
	}
}

// TestACLWithoutKeyspace: a server without the transactional keyspace has
// only the default user, and says so to ACL SETUSER.
func TestACLWithoutKeyspace(t *testing.T) {
	rt := prod.New(prod.Options{NodeID: 1})
	t.Cleanup(rt.Stop)
	layout, err := consensus.NewLayout(nil, []kernel.NodeID{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Runtime: rt, Layout: layout, Clients: 1, ExpirePeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	c := s.NewConn("10.0.0.1:1", nil)
	defer c.Close()
	for _, tc := range []struct{ args, want string }{
		{"ACL SETUSER alice on", "ERR ACL users need the transactional keyspace, which this server does not have (only the default user exists)"},
		{"ACL WHOAMI", "default"},
		{"ACL LIST", "user default on nopass ~* &* +@all"},
		{"ACL USERS", "default"},
		{"ACL DELUSER alice", ""},
		{"ACL DELUSER default", "ERR The 'default' user cannot be removed"},
		{"AUTH x", "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
		{"AUTH default x", "OK"},
		{"AUTH alice x", "WRONGPASS invalid username-password pair or user is disabled."},
		{"ACL SETUSER bob (+get)", "ERR ACL users need the transactional keyspace, which this server does not have (only the default user exists)"},
		{"ACL LOAD", "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."},
	} {
		var args [][]byte
		for _, a := range strings.Fields(tc.args) {
			args = append(args, []byte(a))
		}
		replies, _ := c.Do(context.Background(), args)
		r := replies[0]
		got := string(r.Str)
		if r.Kind == redis.KindArray && len(r.Elems) > 0 {
			got = string(r.Elems[0].Str)
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestACLCacheOnlyMovesForward: of two overlapping reads of the users'
// record, the one that read earlier may finish last; the cache keeps the
// later read's users (redistxn seed 21 closed a connection that had just
// logged in, for its user "deleted", when the earlier read was stored).
func TestACLCacheOnlyMovesForward(t *testing.T) {
	var c aclCache
	before := map[string]*aclUser{"default": defaultACLUser()}
	after := map[string]*aclUser{"default": defaultACLUser(), "bank": defaultACLUser()}
	if got := c.store("after", after, hlc.Timestamp{WallNanos: 20}); got["bank"] == nil {
		t.Fatal("the first read stored was not kept")
	}
	if got := c.store("before", before, hlc.Timestamp{WallNanos: 10}); got["bank"] == nil {
		t.Fatal("a read made earlier, finishing later, replaced the users read after it")
	}
	if c.record != "after" || c.users["bank"] == nil {
		t.Fatalf("the cache holds %q", c.record)
	}
	if got := c.store("later", before, hlc.Timestamp{WallNanos: 30}); got["bank"] != nil || c.record != "later" {
		t.Fatal("a later read (the user deleted since) was not kept")
	}
}
