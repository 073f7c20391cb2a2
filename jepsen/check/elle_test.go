package check

import (
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// txn builds a transaction from "a x 1" (append 1 to x) and "r x 1 2"
// (read x as [1 2]) steps.
func txn(typ string, invoke, complete int64, steps ...string) Txn {
	t := Txn{Type: typ, Invoke: invoke, Complete: complete}
	for _, s := range steps {
		f := strings.Fields(s)
		if f[0] == "a" {
			t.Ops = append(t.Ops, MicroOp{Append: true, Key: f[1], Value: f[2]})
		} else {
			t.Ops = append(t.Ops, MicroOp{Key: f[1], Values: append([]string{}, f[2:]...)})
		}
	}
	return t
}

const tOK, tFail, tInfo = history.TypeOK, history.TypeFail, history.TypeInfo

// TestElleNamesTheAnomaly: each history shows one anomaly (or none), and
// Elle names it.
func TestElleNamesTheAnomaly(t *testing.T) {
	for _, c := range []struct {
		name string
		want string // "" for a valid history
		txns []Txn
	}{
		{"serial", "", []Txn{
			txn(tOK, 0, 10, "a x 1"),
			txn(tOK, 20, 30, "r x 1", "a x 2", "r x 1 2"),
			txn(tOK, 40, 50, "r x 1 2"),
			txn(tInfo, 40, 50, "a x 3"), // never seen: may not have happened
			txn(tFail, 60, 70, "a y 1"),
		}},
		{"dirty writes", "G0", []Txn{
			txn(tOK, 0, 10, "a x 1", "a y 1"),
			txn(tOK, 0, 10, "a x 2", "a y 2"),
			txn(tOK, 20, 30, "r x 1 2", "r y 2 1"),
		}},
		{"aborted read", "G1a", []Txn{
			txn(tFail, 0, 10, "a x 1"),
			txn(tOK, 20, 30, "r x 1"),
		}},
		{"intermediate read", "G1b", []Txn{
			txn(tOK, 0, 10, "a x 1", "a x 2"),
			txn(tOK, 0, 30, "r x 1"),
		}},
		{"circular information flow", "G1c", []Txn{
			txn(tOK, 0, 10, "a x 1", "r y 1"),
			txn(tOK, 0, 10, "a y 1", "r x 1"),
		}},
		{"lost update", "G-single", []Txn{
			txn(tOK, 0, 10, "r x", "a x 1"),
			txn(tOK, 0, 10, "r x", "a x 2"),
			txn(tOK, 20, 30, "r x 1 2"),
		}},
		{"write skew", "G2", []Txn{
			txn(tOK, 0, 10, "r x", "r y", "a x 1"),
			txn(tOK, 0, 10, "r x", "r y", "a y 1"),
			txn(tOK, 20, 30, "r x 1", "r y 1"),
		}},
		{"stale read", "G-single-realtime", []Txn{
			txn(tOK, 0, 10, "a x 1"),
			txn(tOK, 20, 30, "r x"),
			txn(tOK, 40, 50, "r x 1"),
		}},
		{"own write unseen", "internal", []Txn{
			txn(tOK, 0, 10, "a x 1", "r x"),
		}},
		{"diverging reads", "incompatible-order", []Txn{
			txn(tOK, 0, 10, "a x 1"),
			txn(tOK, 0, 10, "a x 2"),
			txn(tOK, 20, 30, "r x 1 2"),
			txn(tOK, 20, 30, "r x 2"),
		}},
		{"read of nothing appended", "garbage-read", []Txn{
			txn(tOK, 0, 10, "r x 9"),
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			found := ElleAnomalies(c.txns)
			if c.want == "" {
				if len(found) > 0 {
					t.Fatalf("a valid history: %v", found)
				}
				return
			}
			if len(found) == 0 || found[0].Name != c.want {
				t.Fatalf("found %v, want %s first", found, c.want)
			}
			if r := Elle(c.txns); r.Valid || !strings.Contains(r.Summary, c.want) {
				t.Fatalf("Elle: valid %t, summary %q", r.Valid, r.Summary)
			}
		})
	}
}
