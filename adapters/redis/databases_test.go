package redis

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// TestDatabasesAreApart drives SET, DEL, RPUSH, EXPIRE, FLUSHDB and the
// keyspace reads through the views of four databases over one store, and
// checks each against a model of its own: no database sees another's keys,
// FLUSHDB empties one only, and the raw store's statistics and active
// expiry cover every database.
func TestDatabasesAreApart(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := NewMemStore()
		dbs := []int{0, 1, 9, 15}
		model := map[int]map[string]string{}
		for _, db := range dbs {
			model[db] = map[string]string{}
		}
		// Keys over many slots, some sharing a slot ({t}), one empty and
		// one with a NUL, the escapes that sort around the marker.
		keys := []string{"a", "b", "{t}1", "{t}2", "", "\x00x", "zz"}
		const now = 1_700_000_000_000
		for i := range rapid.IntRange(1, 60).Draw(t, "ops") {
			db := rapid.SampledFrom(dbs).Draw(t, "db")
			v := viewOf(st, db)
			k := rapid.SampledFrom(keys).Draw(t, "key")
			switch rapid.IntRange(0, 5).Draw(t, "op") {
			case 0, 1:
				val := strconv.Itoa(i)
				if r := Exec(v, now, 1, args("SET", k, val)); r.Kind != KindSimple {
					t.Fatalf("SET: %+v", r)
				}
				model[db][k] = val
			case 2:
				Exec(v, now, 1, args("DEL", k))
				delete(model[db], k)
			case 3:
				Exec(v, now, 1, args("DEL", k))
				Exec(v, now, 1, args("RPUSH", k, "x", "y"))
				model[db][k] = "list"
			case 4:
				if err := Flush(v); err != nil {
					t.Fatal(err)
				}
				model[db] = map[string]string{}
			case 5:
				got := Exec(v, now, 1, args("GET", k))
				want, ok := model[db][k]
				switch {
				case !ok && got.Kind != KindNull:
					t.Fatalf("db %d GET %q = %+v, want nil", db, k, got)
				case ok && want == "list" && got.Kind != KindError:
					t.Fatalf("db %d GET %q (a list) = %+v", db, k, got)
				case ok && want != "list" && string(got.Str) != want:
					t.Fatalf("db %d GET %q = %q, want %q", db, k, got.Str, want)
				}
			}
		}
		stats, err := CountKeyStats(st, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, db := range dbs {
			v := viewOf(st, db)
			var want []string
			for k := range model[db] {
				want = append(want, k)
			}
			slices.Sort(want)
			got, next, err := ScanRange(v, now, nil, 0, ScanOptions{})
			if err != nil || next != nil {
				t.Fatalf("db %d: scan: %v %q", db, err, next)
			}
			var gotS []string
			for _, k := range got {
				gotS = append(gotS, string(k))
			}
			slices.Sort(gotS)
			if fmt.Sprint(gotS) != fmt.Sprint(want) {
				t.Fatalf("db %d holds %q, want %q", db, gotS, want)
			}
			if n, err := CountKeys(v, now); err != nil || n != int64(len(want)) {
				t.Fatalf("db %d: DBSIZE %d %v, want %d", db, n, err, len(want))
			}
			if stats[db].Keys != int64(len(want)) {
				t.Fatalf("db %d: key statistics say %d keys, want %d", db, stats[db].Keys, len(want))
			}
		}
		if err := Verify(st); err != nil {
			t.Fatal(err)
		}
		// Every key expires: one raw sweep deletes them all, in every
		// database.
		for _, db := range dbs {
			for k := range model[db] {
				Exec(viewOf(st, db), now, 1, args("PEXPIRE", k, "1"))
			}
		}
		if _, err := ExpireSweep(st, now+10, 0); err != nil {
			t.Fatal(err)
		}
		if kvs, _ := st.Scan(nil, nil, 1); len(kvs) != 0 {
			t.Fatalf("after expiry the store still holds %q", kvs[0].Key)
		}
	})
}

func args(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, a := range s {
		out[i] = []byte(a)
	}
	return out
}
