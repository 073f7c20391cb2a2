package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// Hand-made histories: times are in arbitrary units (ns), each op written
// as its invocation and completion.

func ok(p int, f, key string, inv, comp int64) history.Op {
	return history.Op{Process: p, Node: p%3 + 1, F: f, Key: key, Type: history.TypeOK, Invoke: inv, Complete: comp}
}

func withType(op history.Op, typ string) history.Op {
	op.Type = typ
	if typ != history.TypeOK {
		op.Error = "timeout"
	}
	return op
}

func info(op history.Op) history.Op { return withType(op, history.TypeInfo) }
func fail(op history.Op) history.Op { return withType(op, history.TypeFail) }

func write(p int, key, v string, inv, comp int64) history.Op {
	op := ok(p, "write", key, inv, comp)
	op.Value = v
	return op
}

func read(p int, key string, v string, inv, comp int64) history.Op {
	op := ok(p, "read", key, inv, comp)
	op.Found, op.Read = true, v
	return op
}

func readNil(p int, key string, inv, comp int64) history.Op {
	return ok(p, "read", key, inv, comp)
}

func cas(p int, key, expect, v string, swapped bool, inv, comp int64) history.Op {
	op := ok(p, "cas", key, inv, comp)
	op.Expect, op.Value, op.Swapped = expect, v, swapped
	return op
}

func elem(p int, f, key, e string, inv, comp int64) history.Op {
	op := ok(p, f, key, inv, comp)
	op.Value = e
	return op
}

func readAll(p int, f, key string, inv, comp int64, vs ...string) history.Op {
	op := ok(p, f, key, inv, comp)
	op.Values = vs
	return op
}

func num(p int, f, key string, v, inv, comp int64) history.Op {
	op := ok(p, f, key, inv, comp)
	op.Int = v
	return op
}

// expect checks a result's verdict and, when invalid, that some problem
// mentions each of want.
func expect(t *testing.T, r Result, valid bool, want ...string) {
	t.Helper()
	if r.Valid != valid {
		t.Fatalf("%s: valid = %v, want %v\nsummary: %s\nproblems:\n  %s", r.Name, r.Valid, valid, r.Summary, strings.Join(r.Problems, "\n  "))
	}
	all := strings.Join(r.Problems, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%s: no problem mentions %q; problems:\n  %s", r.Name, w, strings.Join(r.Problems, "\n  "))
		}
	}
	if r.Summary == "" {
		t.Errorf("%s: empty summary", r.Name)
	}
}

func TestRegister(t *testing.T) {
	cases := []struct {
		name  string
		ops   []history.Op
		valid bool
		want  []string
	}{
		{"valid", []history.Op{
			readNil(0, "x", 0, 5),
			write(0, "x", "1", 10, 20),
			read(1, "x", "1", 25, 30),
			cas(0, "x", "1", "2", true, 40, 50),
			write(1, "x", "3", 45, 70), // concurrent with the next read
			read(2, "x", "2", 55, 60),
			read(2, "x", "3", 75, 80),
			write(0, "y", "a", 0, 100), // another key
			read(1, "y", "a", 90, 95),
		}, true, nil},
		{"stale read", []history.Op{
			write(0, "x", "1", 0, 10),
			write(0, "x", "2", 20, 30),
			read(1, "x", "1", 40, 50),
		}, false, []string{"key x: not linearizable", `read x -> "1"`}},
		{"lost write", []history.Op{
			write(0, "x", "1", 0, 10),
			readNil(1, "x", 20, 30),
		}, false, []string{"key x: not linearizable"}},
		{"info write took effect", []history.Op{
			write(0, "x", "1", 0, 10),
			info(write(0, "x", "2", 20, 30)),
			read(1, "x", "2", 40, 50),
			read(1, "x", "2", 60, 70),
		}, true, nil},
		{"info write took effect late", []history.Op{
			write(0, "x", "1", 0, 10),
			info(write(0, "x", "2", 20, 30)),
			read(1, "x", "1", 40, 50),
			read(1, "x", "2", 60, 70),
		}, true, nil},
		{"info write did not take effect", []history.Op{
			write(0, "x", "1", 0, 10),
			info(write(0, "x", "2", 20, 30)),
			read(1, "x", "1", 40, 50),
			read(1, "x", "1", 60, 70),
		}, true, nil},
		{"info write took effect then vanished", []history.Op{
			write(0, "x", "1", 0, 10),
			info(write(0, "x", "2", 20, 30)),
			read(1, "x", "2", 40, 50),
			read(1, "x", "1", 60, 70),
		}, false, []string{"key x: not linearizable"}},
		{"info read and fail ops carry no information", []history.Op{
			write(0, "x", "1", 0, 10),
			info(read(1, "x", "9", 20, 30)),
			fail(write(2, "x", "7", 20, 30)),
			read(1, "x", "1", 40, 50),
		}, true, nil},
		{"failed write took effect", []history.Op{
			write(0, "x", "1", 0, 10),
			fail(write(0, "x", "2", 20, 30)),
			read(1, "x", "2", 40, 50),
		}, false, []string{"key x"}},
		{"unswapped cas when the value matched: an aborted EXEC", []history.Op{
			write(0, "x", "1", 0, 10),
			cas(1, "x", "1", "2", false, 20, 30),
			read(1, "x", "1", 40, 50),
		}, true, nil},
		{"unswapped cas that wrote", []history.Op{
			write(0, "x", "1", 0, 10),
			cas(1, "x", "1", "2", false, 20, 30),
			read(1, "x", "2", 40, 50),
		}, false, []string{"key x"}},
		{"swapped cas on the wrong value", []history.Op{
			write(0, "x", "1", 0, 10),
			cas(1, "x", "5", "2", true, 20, 30),
		}, false, []string{"key x"}},
		{"info cas either way", []history.Op{
			write(0, "x", "1", 0, 10),
			info(cas(1, "x", "1", "2", false, 20, 30)),
			read(2, "x", "1", 40, 50),
			read(2, "x", "2", 60, 70),
		}, true, nil},
		{"info cas cannot swap on the wrong value", []history.Op{
			write(0, "x", "1", 0, 10),
			info(cas(1, "x", "5", "2", false, 20, 30)),
			read(2, "x", "2", 60, 70),
		}, false, []string{"key x"}},
		{"one bad key among good ones", []history.Op{
			write(0, "a", "1", 0, 10),
			read(0, "a", "1", 20, 30),
			write(1, "b", "1", 0, 10),
			read(1, "b", "2", 20, 30),
		}, false, []string{"key b: not linearizable"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			viz := filepath.Join(t.TempDir(), "sub", "linear.html")
			faults := []history.Fault{{Start: 5, End: 25, Kind: "partition", Detail: "{1} | {2,3}"}, {Start: 30, Kind: "kill", Detail: "node 2"}}
			r := RegisterWithFaults(c.ops, faults, viz, 10*time.Second)
			expect(t, r, c.valid, c.want...)
			if r.Name != "register" || r.Unknown {
				t.Errorf("name %q unknown %v", r.Name, r.Unknown)
			}
			data, err := os.ReadFile(viz)
			if err != nil {
				t.Fatalf("visualization not written: %v", err)
			}
			if !strings.Contains(string(data), "<html") {
				t.Errorf("visualization is not HTML")
			}
		})
	}
}

func TestRegisterNoViz(t *testing.T) {
	r := Register([]history.Op{write(0, "x", "1", 0, 10)}, "", time.Second)
	expect(t, r, true)
	if !strings.Contains(r.Summary, "write: 1 ok, 0 fail, 0 info") {
		t.Errorf("summary %q lacks counts", r.Summary)
	}
}

// TestRegisterTimeout: a history Porcupine cannot refute quickly (many
// unknown writes it must try in every combination before giving up) is
// Unknown, and Unknown is not valid.
func TestRegisterTimeout(t *testing.T) {
	var ops []history.Op
	for i := range 40 {
		ops = append(ops, info(write(i, "x", string(rune('A'+i)), 0, 10)))
	}
	ops = append(ops,
		write(100, "x", "a", 0, 10),
		write(100, "x", "b", 20, 30),
		read(101, "x", "a", 40, 50), // stale: impossible, but only after the search is exhausted
	)
	start := time.Now()
	r := Register(ops, "", 100*time.Millisecond)
	if !r.Unknown || r.Valid {
		t.Fatalf("unknown %v valid %v, want unknown and not valid: %s", r.Unknown, r.Valid, r.Summary)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the check took %v after a 100ms timeout", d)
	}
	expect(t, r, false, "did not finish")
}

func TestSet(t *testing.T) {
	add := func(p int, e string, inv, comp int64) history.Op { return elem(p, "add", "s", e, inv, comp) }
	rd := func(p int, inv, comp int64, vs ...string) history.Op {
		return readAll(p, "read-set", "s", inv, comp, vs...)
	}
	cases := []struct {
		name  string
		ops   []history.Op
		valid bool
		want  []string
	}{
		{"valid", []history.Op{
			add(0, "a", 0, 10),
			add(1, "b", 5, 30),
			rd(2, 15, 20, "a"), // b concurrent: may be absent
			info(add(0, "c", 20, 40)),
			info(add(1, "d", 40, 50)),
			rd(2, 35, 45, "b", "a"),
			fail(add(0, "e", 50, 60)),
			rd(2, 100, 110, "a", "b", "c"), // c recovered, d never happened
		}, true, nil},
		{"lost add", []history.Op{
			add(0, "a", 0, 10),
			add(1, "b", 0, 10),
			rd(2, 100, 110, "a"),
		}, false, []string{`key s: lost add: process 1 (node 2) add s "b"`}},
		{"stale read", []history.Op{
			add(0, "a", 0, 10),
			rd(1, 20, 30),
			rd(1, 100, 110, "a"),
		}, false, []string{"key s: stale read", `"a" (added ok by process 0`}},
		{"element seen then gone", []history.Op{
			info(add(0, "a", 0, 10)),
			rd(1, 20, 30, "a"),
			rd(1, 40, 50),
			rd(1, 100, 110),
		}, false, []string{"stale read", `lost element "a"`}},
		{"phantom element", []history.Op{
			add(0, "a", 0, 10),
			rd(1, 100, 110, "a", "zz"),
		}, false, []string{`phantom element "zz"`}},
		{"failed add present", []history.Op{
			fail(add(0, "a", 0, 10)),
			rd(1, 100, 110, "a"),
		}, false, []string{`element "a" is present but every add of it failed`}},
		{"read from the future", []history.Op{
			rd(1, 0, 5, "a"),
			add(0, "a", 10, 20),
			rd(1, 100, 110, "a"),
		}, false, []string{"from the future"}},
		{"no final read", []history.Op{
			add(0, "a", 0, 10),
		}, false, []string{"key s: no ok read-set"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expect(t, Set(c.ops), c.valid, c.want...) })
	}
	r := Set(cases[0].ops)
	if !strings.Contains(r.Summary, "1 of 2 info adds recovered") || !strings.Contains(r.Summary, "0 of 2 ok adds lost") {
		t.Errorf("summary %q", r.Summary)
	}
}

func TestCounter(t *testing.T) {
	incr := func(p int, v, inv, comp int64) history.Op { return num(p, "incr", "c", v, inv, comp) }
	rd := func(p int, v, inv, comp int64) history.Op { return num(p, "read-counter", "c", v, inv, comp) }
	cases := []struct {
		name  string
		ops   []history.Op
		valid bool
		want  []string
	}{
		{"valid", []history.Op{
			rd(2, 0, 0, 5),
			incr(0, 1, 0, 10),
			incr(1, 2, 5, 20),
			rd(2, 1, 12, 15), // incr 2 still running
			info(incr(0, 0, 25, 30)),
			incr(1, 4, 25, 40), // the info incr took effect
			rd(2, 4, 45, 50),
			fail(incr(0, 0, 50, 60)),
			rd(2, 4, 100, 110),
		}, true, nil},
		{"info incr that did not take effect", []history.Op{
			incr(0, 1, 0, 10),
			info(incr(1, 0, 0, 10)),
			rd(2, 1, 100, 110),
		}, true, nil},
		{"double-applied incr", []history.Op{
			incr(0, 1, 0, 10),
			incr(0, 2, 20, 30),
			info(incr(1, 0, 20, 30)),
			rd(2, 4, 100, 110),
		}, false, []string{"increments applied more than once", "above the 2 ok + 1 info incrs"}},
		{"read too high", []history.Op{
			incr(0, 1, 0, 10),
			rd(2, 2, 20, 30),
			rd(2, 1, 100, 110),
		}, false, []string{"counter too high", "only 1 incrs were invoked"}},
		{"duplicate replies", []history.Op{
			incr(0, 1, 0, 10),
			incr(1, 1, 0, 10),
			rd(2, 2, 100, 110),
		}, false, []string{"two incrs returned 1"}},
		{"reply out of range", []history.Op{
			incr(0, 7, 0, 10),
			rd(2, 1, 100, 110),
		}, false, []string{"incr reply 7 outside [1, 1 incrs attempted]"}},
		{"stale read", []history.Op{
			incr(0, 1, 0, 10),
			incr(0, 2, 20, 30),
			rd(2, 1, 40, 50),
			rd(2, 2, 100, 110),
		}, false, []string{"stale counter", "shows 1, but 2 ok incrs completed"}},
		{"counter went backwards", []history.Op{
			info(incr(0, 0, 0, 10)),
			info(incr(0, 0, 0, 10)),
			rd(2, 2, 20, 30),
			rd(2, 1, 40, 50),
			rd(2, 2, 100, 110),
		}, false, []string{"counter went backwards"}},
		{"lost increments", []history.Op{
			incr(0, 1, 0, 10),
			incr(0, 2, 20, 30),
			rd(2, 1, 100, 110),
		}, false, []string{"lost increments: the final read"}},
		{"no final read", []history.Op{
			incr(0, 1, 0, 10),
		}, false, []string{"no ok read-counter"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expect(t, Counter(c.ops), c.valid, c.want...) })
	}
}

func TestListAppend(t *testing.T) {
	app := func(p int, e string, inv, comp int64) history.Op { return elem(p, "append", "l", e, inv, comp) }
	rd := func(p int, inv, comp int64, vs ...string) history.Op {
		return readAll(p, "read-list", "l", inv, comp, vs...)
	}
	cases := []struct {
		name  string
		ops   []history.Op
		valid bool
		want  []string
	}{
		{"valid", []history.Op{
			rd(2, 0, 5),
			app(0, "a", 0, 10),
			app(1, "b", 5, 30),
			rd(2, 12, 20, "a"),
			rd(3, 15, 35, "a", "b"),
			info(app(0, "c", 35, 40)),
			info(app(1, "d", 35, 40)),
			fail(app(0, "e", 50, 60)),
			app(1, "f", 50, 60),
			rd(2, 100, 110, "a", "b", "c", "f"),
			elem(0, "append", "m", "x", 0, 10), // another key
			readAll(1, "read-list", "m", 100, 110, "x"),
		}, true, nil},
		{"non-prefix reads", []history.Op{
			app(0, "a", 0, 10),
			app(1, "b", 0, 10),
			rd(2, 20, 30, "a", "b"),
			rd(3, 20, 30, "b", "a"),
		}, false, []string{"reads disagree at index 0"}},
		{"stale read by length", []history.Op{
			app(0, "a", 0, 10),
			info(app(1, "b", 0, 10)),
			rd(2, 20, 30, "a", "b"),
			rd(2, 40, 50, "a"),
			rd(2, 100, 110, "a", "b"),
		}, false, []string{"stale read", "had 2"}},
		{"stale read lacks an ok append", []history.Op{
			app(0, "a", 0, 10),
			rd(2, 20, 30),
			rd(2, 100, 110, "a"),
		}, false, []string{"lacks 1 ok append(s)", `"a" (appended ok by process 0`}},
		{"duplicate", []history.Op{
			app(0, "a", 0, 10),
			rd(2, 100, 110, "a", "a"),
		}, false, []string{`duplicate element "a" at positions 0 and 1`}},
		{"phantom", []history.Op{
			app(0, "a", 0, 10),
			rd(2, 100, 110, "a", "q"),
		}, false, []string{`phantom element "q"`}},
		{"lost append", []history.Op{
			app(0, "a", 0, 10),
			app(0, "b", 20, 30),
			rd(2, 100, 110, "a"),
		}, false, []string{`lost append: process 0 (node 1) append l "b"`}},
		{"appends out of order", []history.Op{
			app(0, "a", 0, 10),
			app(1, "b", 20, 30),
			rd(2, 100, 110, "b", "a"),
		}, false, []string{"appends out of order"}},
		{"no final read", []history.Op{
			app(0, "a", 0, 10),
		}, false, []string{"no ok read-list"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expect(t, ListAppend(c.ops), c.valid, c.want...) })
	}
}

func TestProblemsAreCapped(t *testing.T) {
	var ops []history.Op
	for i := range 100 {
		ops = append(ops, elem(0, "add", "s", "e"+string(rune('A'+i%26))+string(rune('a'+i/26)), int64(i), int64(i)+1))
	}
	ops = append(ops, readAll(1, "read-set", "s", 1000, 1001))
	r := Set(ops)
	if r.Valid || len(r.Problems) != maxProblems+1 || !strings.Contains(r.Problems[maxProblems], "and 80 more") {
		t.Fatalf("got %d problems, last %q", len(r.Problems), r.Problems[len(r.Problems)-1])
	}
}
