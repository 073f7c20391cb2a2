package redis

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// matchOptions adjust matchRedis.
type matchOptions struct {
	// objCfg is what our OBJECT answers under (nil: the defaults), and
	// config, name/value pairs, CONFIG SET on the test's own real server.
	objCfg *ObjectConfig
	config []string
	// values are what "$name" arguments stand for.
	values map[string]string
	// exact compares each reply byte for byte, RESP3 doubles included
	// (differ.check reads both sides' doubles back as numbers).
	exact bool
}

// matchRedis runs command sequences (each from an empty database) on a real
// redis-server and on Exec, in RESP2 and RESP3, then compares the keys:
// "sleep" waits for PX 1 keys to expire on both sides, a pair of
// apostrophes is an empty argument, "$name" stands for o.values[name], and
// "select n" moves both sides to database n.
func matchRedis(t *testing.T, cases [][]string, o matchOptions) {
	t.Helper()
	s := startRealServer(t)
	c2, c3 := s.dial(t), s.dial(t)
	if _, err := c3.doStrings("HELLO", "3"); err != nil {
		t.Fatal(err)
	}
	if len(o.config) > 0 {
		r, err := c2.doStrings(append([]string{"CONFIG", "SET"}, o.config...)...)
		if err != nil || string(r) != "+OK\r\n" {
			t.Fatalf("CONFIG SET %q: %q %v", o.config, r, err)
		}
	}
	for _, c := range []*respClient{c2, c3} {
		for _, seq := range cases {
			if _, err := c.doStrings("FLUSHALL"); err != nil {
				t.Fatal(err)
			}
			raw := NewMemStore()
			d := &differ{t: t, real: c, raw: raw, st: viewOf(raw, 0), now: time.Now().UnixMilli(), resp3: c == c3, objCfg: o.objCfg}
			for _, line := range seq {
				if line == "sleep" {
					time.Sleep(5 * time.Millisecond)
					d.now = time.Now().UnixMilli()
					continue
				}
				if db, ok := strings.CutPrefix(line, "select "); ok {
					// Both sides go on in database db.
					n, _ := strconv.Atoi(db)
					if r, err := c.doStrings("SELECT", db); err != nil || string(r) != "+OK\r\n" {
						t.Fatalf("SELECT %s: %q %v", db, r, err)
					}
					d.st = viewOf(raw, n)
					continue
				}
				cmd := caseArgs(t, line, o.values)
				if !o.exact {
					d.check(cmd)
					continue
				}
				want, err := c.do(toArgs(cmd)...)
				if err != nil {
					t.Fatal(err)
				}
				r := d.exec(cmd)
				if r.Err != nil {
					t.Fatalf("%q: internal error: %v", line, r.Err)
				}
				if got := d.encode(r); !bytes.Equal(got, want) {
					t.Fatalf("resp3=%v %q:\nredis %q\norbit %q", d.resp3, line, want, got)
				}
			}
			d.compareState()
			if _, err := c.doStrings("SELECT", "0"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// caseArgs splits a case's line into arguments: ” is the empty argument,
// "$name" stands for values[name] ("$" alone is itself).
func caseArgs(t *testing.T, line string, values map[string]string) []string {
	var cmd []string
	for _, f := range strings.Fields(line) {
		switch {
		case f == "''":
			f = ""
		case strings.HasPrefix(f, "$") && f != "$": // "$" alone is itself (XREAD's last ID)
			v, ok := values[f[1:]]
			if !ok {
				t.Fatalf("no value %s", f)
			}
			f = v
		}
		cmd = append(cmd, f)
	}
	return cmd
}
