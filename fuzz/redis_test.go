package fuzz

import (
	"bytes"
	"testing"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// FuzzExec feeds arbitrary commands to the Redis command layer. The input
// is split into commands at '\n' and into arguments at ' ', and the
// commands run in turn on one MemStore, so that later commands meet the
// keys earlier ones built. Whatever the input:
//
//   - Exec and TryBlocking return, never panic (Exec would turn a panic into
//     an internal error, which is also a failure here);
//   - no reply carries an internal error: with a MemStore that only Exec
//     writes, a corrupt record or a failed write is a bug;
//   - every reply is well formed and its RESP2 and RESP3 encodings parse back
//     to exactly their own length;
//   - commands flagged readonly run on a read-only Store (a write would fail);
//   - the store still satisfies the layout invariants (redis.Verify).
func FuzzExec(f *testing.F) {
	for _, seed := range []string{
		"SET k v EX 10\nGET k\nTTL k",
		"RPUSH l a b c\nLINSERT l BEFORE b x\nLRANGE l 0 -1\nLPOS l x RANK -1 COUNT 0",
		"HSET h f 1 g 2\nHINCRBYFLOAT h f 0.5\nHSCAN h 0 MATCH * COUNT 1",
		"SADD s a b c\nSADD t c d\nSINTERSTORE u s t\nSPOP s 2\nSMEMBERS u",
		"ZADD z 1 a 2 b 3 c\nZRANGE z (1 +inf BYSCORE REV LIMIT 0 2 WITHSCORES\nZUNIONSTORE d 2 z z WEIGHTS 2 3",
		"ZADD z 0 a 0 b 0 c\nZRANGEBYLEX z [a (c\nZRANGESTORE y z - + BYLEX",
		"SET a 1\nRENAME a b\nEXPIRE b 5 GT\nINCRBYFLOAT b 1e308\nBLPOP b l 0",
		"MSET a 1 b 2\nMGET a b c\nSETRANGE a 3 xyz\nGETRANGE a -3 -1",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		st := redis.NewMemStore()
		lines := bytes.Split(input, []byte("\n"))
		if len(lines) > 32 {
			lines = lines[:32]
		}
		for i, line := range lines {
			args := bytes.Split(line, []byte(" "))
			if len(args) > 64 {
				args = args[:64]
			}
			var r redis.Reply
			spec, known := redis.Lookup(string(args[0]))
			switch {
			case known && spec.Where == redis.WhereBlocking:
				r, _ = redis.TryBlocking(st, 1_000_000, args)
			case known && spec.HasFlag("readonly"):
				r = redis.Exec(redis.ReadOnly(st), 1_000_000, uint64(i), args)
			default:
				r = redis.Exec(st, 1_000_000, uint64(i), args)
			}
			if r.Err != nil {
				t.Fatalf("%q: internal error: %v", line, r.Err)
			}
			if !redis.WellFormed(r) {
				t.Fatalf("%q: malformed reply %#v", line, r)
			}
			for _, enc := range [][]byte{redis.AppendRESP2(nil, r), redis.AppendRESP3(nil, r)} {
				if _, n, err := redis.ParseReply(enc); err != nil || n != len(enc) {
					t.Fatalf("%q: encoding %q does not parse: %v", line, enc, err)
				}
			}
			if err := redis.Verify(st); err != nil {
				t.Fatalf("after %q: %v", line, err)
			}
		}
	})
}
