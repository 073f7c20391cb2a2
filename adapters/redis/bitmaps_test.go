package redis

import (
	"testing"
)

// bitmapCases are command sequences (each from an empty database) that
// TestBitmapsMatchRedis runs on both sides: the corners of bitops.c that
// random sequences reach rarely.
var bitmapCases = [][]string{
	// SETBIT grows with zero bytes, answers the old bit, keeps the TTL.
	{"setbit a 7 1", "setbit a 7 1", "get a", "setbit a 17 1", "get a", "strlen a", "setbit a 17 0", "get a",
		"setbit a 0 0", "getbit a 7", "getbit a 8", "getbit a 1000", "getbit b 3",
		"expire a 3600", "setbit a 100 1", "ttl a", "strlen a"},
	{"setbit a -1 1", "setbit a x 1", "setbit a 1.5 1", "setbit a '' 1", "setbit a 01 1",
		"setbit a 0 2", "setbit a 0 -1", "setbit a 0 x", "setbit a 0 ''", "setbit a 4294967296 1",
		"setbit a 4294967296 x", "setbit a x x", "getbit a -1", "getbit a 4294967296", "getbit a x", "exists a"},
	{"setbit a 3 0", "get a", "getbit a 3", "setbit a 3 1", "setbit a 3 0", "get a", "strlen a"},
	// Interplay with the string commands.
	{"set a 5", "setbit a 6 1", "get a", "incr a", "append a x", "bitcount a", "setrange a 5 \xff", "bitcount a",
		"getrange a 0 -1", "setbit a 6 0", "get a", "incr a", "getbit a 2", "getbit a 3"},
	{"set a 12345", "getbit a 2", "bitcount a", "bitpos a 1", "bitfield a get u8 0 get i16 #1", "bitop not b a", "get b"},
	// WRONGTYPE, and the argument errors that come before it.
	{"lpush l x", "setbit l 0 1", "setbit l x 1", "setbit l 0 5", "getbit l 0", "getbit l x", "bitcount l",
		"bitcount l x y", "bitpos l 1", "bitpos l 2", "bitpos l x", "bitop and d l", "bitop and d a l",
		"bitop or d l a", "bitop bogus d l", "bitfield l get u8 0", "bitfield l", "bitfield l set u8 0 1",
		"bitfield_ro l get u8 0", "bitfield_ro l set u8 0 1", "bitfield l get u8", "bitfield l bogus",
		"bitfield l get u64 0", "bitop not d l", "bitop not d l a"},
	// BITCOUNT: ranges, units, the order of its checks.
	{"set a foobar", "bitcount a", "bitcount a 0 0", "bitcount a 1 1", "bitcount a 1 -1", "bitcount a -2 -1",
		"bitcount a -1 -2", "bitcount a -1 -2 bogus", "bitcount a 5 1", "bitcount a 0 100", "bitcount a -100 100",
		"bitcount a 0 -100", "bitcount a 1 1 bit", "bitcount a 5 30 BIT", "bitcount a 5 30 byte", "bitcount a -3 -1 bit",
		"bitcount a 0 0 bogus", "bitcount a 0", "bitcount a 0 1 bit x", "bitcount a x 1", "bitcount a 1 x",
		"bitcount a 1 x bogus", "bitcount a 9223372036854775807 -9223372036854775808", "bitcount a -9223372036854775808 -1 bit",
		"bitcount a 7 7 bit", "bitcount a 8 15 bit", "bitcount a 47 47 bit", "bitcount a 48 100 bit", "bitcount a 3 2 bit",
		"bitcount nokey", "bitcount nokey x", "bitcount nokey 0 1 bogus", "bitcount a 0 1 BYTE\x00x"},
	{"set a ''", "bitcount a", "bitcount a 0 -1", "bitcount a 0 -1 bit", "bitpos a 0", "bitpos a 1", "bitpos a 0 0",
		"bitpos a 0 0 -1", "bitpos a 1 0 -1 bit", "bitfield a get u8 0", "getbit a 0"},
	// BITPOS: the end-of-string rules, units, ranges.
	{"set a \xff\xf0\x00", "bitpos a 0", "bitpos a 1", "bitpos a 0 1", "bitpos a 1 2", "bitpos a 1 2 -1", "bitpos a 0 0 0",
		"bitpos a 0 2", "bitpos a 0 -1", "bitpos a 1 -1", "bitpos a 0 5 10", "bitpos a 0 2 1",
		"bitpos a 0 0 -1 bit", "bitpos a 0 3 11 bit", "bitpos a 0 3 7 bit", "bitpos a 1 7 15 bit", "bitpos a 1 12 23 bit",
		"bitpos a 1 -5 -1 bit", "bitpos a 0 -12 -9 bit", "bitpos a 0 -9 -12 bit", "bitpos a 1 5 5 bit", "bitpos a 1 12 12 bit",
		"bitpos a 0 12 12 bit", "bitpos a 0 9 14 bit", "bitpos a 0 0 100 bit", "bitpos a 0 0 100", "bitpos a 0 0 100 byte",
		"bitpos a 0 x", "bitpos a 0 0 x", "bitpos a 0 x x bogus", "bitpos a 0 0 x bogus", "bitpos a 0 0 1 bogus",
		"bitpos a 0 0 1 bit x", "bitpos a 2", "bitpos a -1", "bitpos a x", "bitpos a 01",
		"bitpos nokey 0", "bitpos nokey 1", "bitpos nokey 1 x y z w", "bitpos nokey 2",
		"bitpos a 1 -9223372036854775808 9223372036854775807 bit", "bitpos a 0 9223372036854775807"},
	{"set a \xff\xff\xff", "bitpos a 0", "bitpos a 0 1", "bitpos a 0 1 -1", "bitpos a 0 0 23 bit", "bitpos a 0 0 -1 bit",
		"bitpos a 0 3 2 bit", "bitpos a 1 3 2 bit", "bitpos a 1 23 23 bit"},
	{"set a \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", "bitpos a 1", "bitpos a 0", "bitpos a 1 3", "bitpos a 1 3 10",
		"bitpos a 1 1 94 bit", "bitpos a 1 1 95 bit", "bitcount a 90 95 bit"},
	// BITOP: ops, lengths, missing and empty sources, the destination.
	{"set a \x0f\xf0\xaa", "set b \xff\x0f", "bitop and d a b", "get d", "bitop or d a b", "get d", "bitop xor d a b",
		"get d", "bitop not d a", "get d", "bitop AND d a b nokey", "get d", "bitop or d a nokey", "get d",
		"bitop xor d nokey a", "get d", "bitop not d nokey", "exists d", "set d x", "expire d 3600",
		"bitop or d a", "ttl d", "get d", "bitop and d nokey nokey2", "exists d", "lpush d x", "bitop or d a", "type d",
		"lpush d x", "bitop or d nokey", "exists d", "bitop And d a a a", "get d", "bitop bogus d a",
		"bitop and\x00x d a", "bitop not d", "bitop or d", "bitop or a a b", "get a", "set e ''", "bitop or d e", "exists d"},
	// BITFIELD: types, offsets, overflow.
	{"bitfield a set u8 0 255", "get a", "bitfield a get u8 0 get i8 0 get u4 4 get i4 4 get u1 0",
		"bitfield a incrby u8 0 1", "bitfield a overflow sat incrby u8 0 300", "bitfield a overflow fail incrby u8 0 1",
		"bitfield a overflow wrap incrby u8 0 -1", "bitfield a incrby i8 0 -200", "bitfield a overflow sat incrby i8 0 -200",
		"bitfield a overflow sat incrby i8 0 200", "bitfield a overflow fail set i8 0 128", "bitfield a set i8 0 128",
		"bitfield a overflow sat set i8 0 128", "bitfield a overflow sat set u8 0 -1", "bitfield a set u8 0 -1",
		"bitfield a overflow fail set u8 0 256", "get a", "strlen a"},
	{"bitfield a set i64 0 -1", "get a", "bitfield a get i64 0 get u63 0 get u63 1 get i64 1",
		"bitfield a incrby i64 0 -9223372036854775808", "bitfield a overflow sat incrby i64 0 -9223372036854775808",
		"bitfield a overflow fail incrby i64 0 9223372036854775807", "bitfield a set i64 0 9223372036854775807",
		"bitfield a incrby i64 0 1", "bitfield a overflow sat incrby i64 0 1", "bitfield a overflow sat incrby i64 0 -1",
		"bitfield a set u63 0 9223372036854775807", "bitfield a overflow sat incrby u63 0 1", "bitfield a incrby u63 0 1",
		"bitfield a overflow fail incrby u63 0 -1", "bitfield a set u63 1 -9223372036854775808",
		"bitfield a overflow sat set u63 1 -9223372036854775808", "get a"},
	{"bitfield a set u8 #1 200 get u8 #1 set i5 #3 -3 get i5 #3 get u8 8 incrby u2 #100 5", "get a", "strlen a",
		"bitfield a get u8 #0 get i64 #0 get u4 #9223372036854775807", "bitfield a get u8 #-1", "bitfield a get u8 #",
		"bitfield a get u8 #x", "bitfield a get u8 ##1", "bitfield a set u8 # 1",
		"bitfield a get i64 #288230376151711745", "bitfield a get u8 #536870912"},
	{"bitfield a overflow fail set u2 10 5", "exists a", "get a", "bitfield b overflow fail incrby u2 30 5 get u2 30",
		"get b", "bitfield c set u2 7 0", "get c", "bitfield c set u2 7 0", "bitfield d get u8 0", "exists d",
		"bitfield d", "exists d", "bitfield_ro d get u8 0", "bitfield_ro d", "bitfield_ro c get u2 7 get i3 5",
		"bitfield_ro c set u2 7 1", "bitfield_ro c incrby u2 7 1", "bitfield_ro c overflow sat get u2 7",
		"bitfield_ro c get u2 7 bogus", "bitfield_ro c get u64 7", "bitfield_ro c get u2 x"},
	{"bitfield a get", "bitfield a get u8", "bitfield a set u8 0", "bitfield a incrby u8 0", "bitfield a overflow",
		"bitfield a overflow bogus", "bitfield a overflow wrap", "bitfield a bogus u8 0", "bitfield a get u0 0",
		"bitfield a get u64 0", "bitfield a get i65 0", "bitfield a get i0 0", "bitfield a get U8 0", "bitfield a get I8 0",
		"bitfield a get u 0", "bitfield a get x8 0", "bitfield a get '' 0", "bitfield a get u-1 0", "bitfield a get u+8 0",
		"bitfield a get u08 0", "bitfield a get u8\x00x 0", "bitfield a get u8 -1", "bitfield a get u8 x",
		"bitfield a get u8 4294967296", "bitfield a set u8 0 x", "bitfield a set u8 0 1.5", "bitfield a incrby u8 0 x",
		"bitfield a GET u8 0 SET u8 0 1 INCRBY u8 0 1 OVERFLOW FAIL incrby u8 0 1000", "get a",
		"bitfield a set u8 0 1 get u8 x", "get a", "bitfield a set u8 0 1 overflow bogus", "get a",
		"bitfield a get\x00x u8 0", "bitfield a overflow sat\x00x incrby u8 0 300"},
	// Expired keys: absent to every bit command.
	{"set a \xff px 1", "sleep", "getbit a 0", "bitcount a", "bitpos a 0", "bitfield_ro a get u8 0", "exists a",
		"set a \xff px 1", "sleep", "setbit a 1 1", "get a", "ttl a", "set b \xff px 1", "sleep", "bitop or d b", "exists d",
		"set b \xff px 1", "sleep", "bitfield b incrby u4 0 1", "get b", "ttl b"},
}

// TestBitmapsMatchRedis runs bitmapCases on a real redis-server and on
// Exec, in RESP2 and RESP3 (matchRedis).
func TestBitmapsMatchRedis(t *testing.T) { matchRedis(t, bitmapCases, matchOptions{}) }

// TestBitOffsetLimit: a bit offset's byte must lie below proto-max-bulk-len,
// which is 64 MB here (Redis: 512 MB), for reads and writes alike, with
// Redis's error.
func TestBitOffsetLimit(t *testing.T) {
	const bad = "-ERR bit offset is not an integer or out of range\r\n"
	runTranscript(t, 1000, []step{
		{"GETBIT k 536870911", ":0\r\n"},
		{"GETBIT k 536870912", bad},
		{"SETBIT k 536870912 1", bad},
		{"BITFIELD k GET u8 536870904", "*1\r\n:0\r\n"},
		{"BITFIELD k GET u8 536870912", bad},
		{"BITFIELD k SET u8 #67108864 1", bad},
		{"BITFIELD_RO k GET u8 #67108864", bad},
		{"EXISTS k", ":0\r\n"},
		// "#n" multiplies with wrap-around, as the C code does.
		{"SETBIT k 8 1", ":0\r\n"},
		{"BITFIELD k GET u8 #2305843009213693953", "*1\r\n:128\r\n"},
	})
}
