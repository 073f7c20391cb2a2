package fuzz

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/respwire"
)

// FuzzRESPReader feeds arbitrary bytes to the RESP request reader every
// connection uses (the limits guard, then redcon's parser), and the
// requests it reads to the command layer. Whatever the input:
//
//   - reading returns, never panics, and fails only with a protocol error
//     (what the connection answers before it closes);
//   - every request read, encoded again as a RESP array, reads back to the
//     same arguments;
//   - every request runs through Exec on a MemStore without an internal
//     error, and its reply encodes to well-formed RESP2.
func FuzzRESPReader(f *testing.F) {
	for _, seed := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"PING\r\nSET a 1\r\nINCR a\r\n",
		"*1\r\n$4\r\nPING\r\n*-1\r\n",
		"*2\r\n$4\r\nECHO\r\n$-1\r\n",
		"*100000000\r\n",
		"$5\r\nhello\r\n",
		"*1\r\n$999999999999\r\n",
		"SET \"a b\" 'c'\r\n",
		"*2\r\n$3\r\nGET\r\n$1\r\nk",
		"*-10\r\n*0\r\n*1\r\n$4\r\nPING\r\n",
		"*01\r\n$4\r\nPING\r\n",
		"*1\r\n$\x00xxxx",
		"*1\r\n$4\r\nPING\r\n*1\r\n*4\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		reqs, err := respwire.ReadRequests(bytes.NewReader(input), 64)
		if err != nil && !strings.Contains(err.Error(), "Protocol error") {
			t.Fatalf("read error that is not a protocol error: %v", err)
		}
		st := redis.NewMemStore()
		for _, args := range reqs {
			var enc []byte
			enc = fmt.Appendf(enc, "*%d\r\n", len(args))
			for _, a := range args {
				enc = fmt.Appendf(enc, "$%d\r\n%s\r\n", len(a), a)
			}
			again, err := respwire.ReadRequests(bytes.NewReader(enc), 2)
			if err != nil || len(again) != 1 || !sameArgs(again[0], args) {
				t.Fatalf("request %q re-encoded reads back as %q (%v)", args, again, err)
			}
			if len(args) == 0 {
				continue
			}
			r := redis.Exec(st, 1_700_000_000_000, 1, args)
			if r.Err != nil {
				t.Fatalf("%q: internal error %v", args, r.Err)
			}
			if !redis.WellFormed(r) {
				t.Fatalf("%q: malformed reply %+v", args, r)
			}
			if out := redis.AppendRESP2(nil, r); len(out) == 0 {
				t.Fatalf("%q: empty encoding", args)
			}
		}
	})
}

func sameArgs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
