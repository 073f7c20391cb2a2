package sim

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// A tiny sequential Redis for the keys of the command families (issue 10):
// one key's value of any type, with its TTL, and the commands the workload
// sends to it (redisFamilies), each computing exactly the reply Redis 7.0
// gives. The Porcupine model (redisModel) runs it on every state a key may
// be in; TestRedisMiniMatchesExec runs it against adapters/redis on random
// command sequences, so that the model and the state machine agree before
// the simulator compares them under faults.
//
// Time. The state machine judges expiry by the time the range's leader
// stamped on the command (consensus.CommandMeta.NowMillis), which the client
// never sees. The simulator records every reading of a server node's clock
// (stampClock), so an operation carries bounds on its stamp: at least the
// smallest clock reading any server made while the operation was in flight,
// at most the largest any server made until it returned (a stamp is a
// reading made in flight, or the range's last applied stamp, an earlier
// reading). A TTL set at stamp s for px ms ends at s+px, so a key's deadline
// is known within [slo+px, shi+px]. An operation whose stamp bounds lie
// wholly before the deadline sees the key; wholly after, sees nothing; in
// between, the model allows both. This holds whatever the clocks do (drift,
// steps, nodes disagreeing), because it uses the readings the servers made,
// not an assumed relation between their clocks and virtual time.

// mkey is one key in the model.
type mkey struct {
	typ  string // what TYPE answers; "" for a missing key
	str  string
	hash map[string]string
	list []string
	set  map[string]bool
	zset map[string]int64 // the workload draws integer scores only
	// A stream: its entries in ID order and its last ID (XADD's floor,
	// which XDEL and XTRIM leave). An empty stream stays a key.
	entries []mentry
	last    mid
	// ttl: the key expires at a deadline within [dlo, dhi] (unix ms).
	ttl      bool
	dlo, dhi int64
}

// mid is a stream entry ID; mentry an entry of one field (the workload's).
type mid struct{ ms, seq uint64 }

type mentry struct {
	id           mid
	field, value string
}

func (a mid) less(b mid) bool { return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq }

func (a mid) String() string { return fmt.Sprintf("%d-%d", a.ms, a.seq) }

// stamp bounds an operation's leader-assigned time (unix ms).
type stamp struct{ lo, hi int64 }

// expect is what the model requires of one reply: exactly resp (RESP2), or
// an integer in [lo, hi] (PTTL, whose exact value depends on the stamps).
type expect struct {
	resp   string
	ranged bool
	lo, hi int64
}

func exact(r redis.Reply) expect { return expect{resp: string(redis.AppendRESP2(nil, r))} }

func (e expect) match(r redis.Reply) bool {
	if e.ranged {
		return r.Kind == redis.KindInt && r.Int >= e.lo && r.Int <= e.hi
	}
	return string(redis.AppendRESP2(nil, r)) == e.resp
}

func (e expect) String() string {
	if e.ranged {
		return fmt.Sprintf("(integer) in [%d, %d]", e.lo, e.hi)
	}
	return strconv.Quote(e.resp)
}

var errWrongType = redis.Error("WRONGTYPE Operation against a key holding the wrong kind of value")

// encode is the key's state as a string, for Porcupine's equality and hash.
// A missing key is "" and a string without TTL "=value", as the string
// model has always had them; anything else starts with '#'. A string the
// separators of the encodings (0x1d, 0x1e, 0x1f) could occur in (SETBIT
// makes any byte) takes the '#' form, quoted.
func (k *mkey) encode() string {
	switch {
	case k.typ == "":
		return ""
	case k.typ == "string" && !k.ttl && !strings.ContainsAny(k.str, "\x1d\x1e\x1f"):
		return "=" + k.str
	}
	var b strings.Builder
	b.WriteString("#" + k.typ)
	sep := func(s string) { b.WriteByte(0x1f); b.WriteString(s) }
	switch k.typ {
	case "string":
		sep(strconv.Quote(k.str))
	case "hash":
		for _, f := range slices.Sorted(maps.Keys(k.hash)) {
			sep(f)
			sep(k.hash[f])
		}
	case "list":
		for _, e := range k.list {
			sep(e)
		}
	case "set":
		for _, m := range slices.Sorted(maps.Keys(k.set)) {
			sep(m)
		}
	case "zset":
		for _, m := range slices.Sorted(maps.Keys(k.zset)) {
			sep(m)
			sep(strconv.FormatInt(k.zset[m], 10))
		}
	case "stream":
		sep(k.last.String())
		for _, e := range k.entries {
			sep(e.id.String())
			sep(e.field)
			sep(e.value)
		}
	}
	if k.ttl {
		fmt.Fprintf(&b, "\x1d%d,%d", k.dlo, k.dhi)
	}
	return b.String()
}

func decodeKey(s string) *mkey {
	switch {
	case s == "":
		return &mkey{}
	case s[0] == '=':
		return &mkey{typ: "string", str: s[1:]}
	}
	k := &mkey{}
	body, ttl, hasTTL := strings.Cut(s[1:], "\x1d")
	if hasTTL {
		k.ttl = true
		fmt.Sscanf(ttl, "%d,%d", &k.dlo, &k.dhi)
	}
	parts := strings.Split(body, "\x1f")
	k.typ, parts = parts[0], parts[1:]
	switch k.typ {
	case "string":
		k.str, _ = strconv.Unquote(parts[0])
	case "hash":
		k.hash = map[string]string{}
		for i := 0; i+1 < len(parts); i += 2 {
			k.hash[parts[i]] = parts[i+1]
		}
	case "list":
		k.list = parts
	case "set":
		k.set = map[string]bool{}
		for _, m := range parts {
			k.set[m] = true
		}
	case "zset":
		k.zset = map[string]int64{}
		for i := 0; i+1 < len(parts); i += 2 {
			n, _ := strconv.ParseInt(parts[i+1], 10, 64)
			k.zset[parts[i]] = n
		}
	case "stream":
		k.last = parseMID(parts[0])
		for i := 1; i+2 < len(parts); i += 3 {
			k.entries = append(k.entries, mentry{id: parseMID(parts[i]), field: parts[i+1], value: parts[i+2]})
		}
	}
	return k
}

func parseMID(s string) mid {
	var id mid
	fmt.Sscanf(s, "%d-%d", &id.ms, &id.seq)
	return id
}

func (k *mkey) clone() *mkey { return decodeKey(k.encode()) }

// describe is the state for a visualization.
func (k *mkey) describe() string {
	if k.typ == "" {
		return "(nil)"
	}
	s := strings.ReplaceAll(k.encode(), "\x1f", " ")
	s = strings.ReplaceAll(s, "\x1d", " ttl@")
	return strings.TrimPrefix(s, "#")
}

// clear makes the key missing.
func (k *mkey) clear() { *k = mkey{} }

// emptied deletes a collection once its last element is gone: Redis never
// keeps an empty one.
func (k *mkey) emptied() {
	if (k.typ == "hash" && len(k.hash) == 0) || (k.typ == "list" && len(k.list) == 0) ||
		(k.typ == "set" && len(k.set) == 0) || (k.typ == "zset" && len(k.zset) == 0) {
		k.clear()
	}
}

// is reports whether the key may be used as type t (missing, or of t).
func (k *mkey) is(t string) bool { return k.typ == "" || k.typ == t }

// commandWrites reports whether a command may write (and so deletes an
// expired key it meets, lazily).
func commandWrites(name string) bool {
	spec, ok := redis.Lookup(name)
	return ok && spec.HasFlag("write")
}

// exec runs one command on a live view of the key (the caller has already
// applied expiry) at a time within now. It returns the reply required.
func (k *mkey) exec(args []string, now stamp) expect {
	name := strings.ToLower(args[0])
	if spec, ok := redis.Lookup(name); !ok || !spec.ArityOK(len(args)) {
		return exact(redis.Error("ERR wrong number of arguments for '" + name + "' command"))
	}
	arg := func(i int) string { return args[i] }
	bulk := redis.BulkString
	count := func() int {
		switch k.typ {
		case "hash":
			return len(k.hash)
		case "list":
			return len(k.list)
		case "set":
			return len(k.set)
		case "zset":
			return len(k.zset)
		}
		return 0
	}
	typed := func(t string) bool { return k.is(t) }
	switch name {
	case "get":
		if !typed("string") {
			return exact(errWrongType)
		}
		if k.typ == "" {
			return exact(redis.Null())
		}
		return exact(bulk(k.str))
	case "set":
		nx, xx, px := false, false, int64(0)
		for i := 3; i < len(args); i++ {
			switch strings.ToUpper(args[i]) {
			case "NX":
				nx = true
			case "XX":
				xx = true
			case "PX":
				if i+1 >= len(args) {
					return exact(redis.Error("ERR syntax error"))
				}
				i++
				n, err := strconv.ParseInt(args[i], 10, 64)
				if err != nil || n <= 0 {
					return exact(redis.Error("ERR invalid expire time in 'set' command"))
				}
				px = n
			default:
				return exact(redis.Error("ERR syntax error"))
			}
		}
		if nx && xx {
			return exact(redis.Error("ERR syntax error"))
		}
		if (nx && k.typ != "") || (xx && k.typ == "") {
			return exact(redis.Null())
		}
		k.clear()
		k.typ, k.str = "string", arg(2)
		if px > 0 {
			k.ttl, k.dlo, k.dhi = true, now.lo+px, now.hi+px
		}
		return exact(redis.OK())
	case "getset":
		if !typed("string") {
			return exact(errWrongType)
		}
		old := redis.Null()
		if k.typ != "" {
			old = bulk(k.str)
		}
		k.clear()
		k.typ, k.str = "string", arg(2)
		return exact(old)
	case "incr":
		if !typed("string") {
			return exact(errWrongType)
		}
		st := ""
		if k.typ != "" {
			st = present(k.str)
		}
		n, ok := incrOf(st)
		if !ok {
			return exact(redis.Error("ERR value is not an integer or out of range"))
		}
		if k.typ == "" {
			k.typ = "string" // a new key: no TTL
		}
		k.str = strconv.FormatInt(n, 10) // the TTL survives
		return exact(redis.Int(n))
	case "setbit":
		// SETBIT key offset 0|1, the workload's form: a small offset.
		off, bit := bitArgs(arg(2), arg(3))
		if !typed("string") {
			return exact(errWrongType)
		}
		b := []byte(k.str)
		for len(b) <= off/8 {
			b = append(b, 0) // grow with zero bytes
		}
		mask := byte(0x80) >> (off % 8)
		old := b[off/8]&mask != 0
		if bit == 1 {
			b[off/8] |= mask
		} else {
			b[off/8] &^= mask
		}
		if k.typ == "" {
			k.typ = "string" // a new key: no TTL
		}
		k.str = string(b) // the TTL survives
		return exact(redis.Int(b2i(old)))
	case "getbit":
		off, _ := bitArgs(arg(2), "0")
		if !typed("string") {
			return exact(errWrongType)
		}
		return exact(redis.Int(int64(bitOf(k.str, off))))
	case "bitcount":
		// BITCOUNT key [start end [BIT|BYTE]], with integer bounds.
		if !typed("string") {
			return exact(errWrongType)
		}
		if k.typ == "" {
			return exact(redis.Int(0))
		}
		return exact(redis.Int(bitCount(k.str, args[2:])))
	case "xadd":
		// XADD key [MAXLEN n] <ms>-<seq>|<ms>-* field value, the
		// workload's form (no 0-0).
		at := 2
		maxLen := -1
		if strings.EqualFold(arg(2), "maxlen") {
			maxLen, _ = strconv.Atoi(arg(3))
			at = 4
		}
		msPart, seqPart, _ := strings.Cut(arg(at), "-")
		id := mid{}
		id.ms, _ = strconv.ParseUint(msPart, 10, 64)
		if !typed("stream") {
			return exact(errWrongType)
		}
		if k.typ == "" {
			k.typ = "stream" // a new key: no TTL
		}
		switch {
		case seqPart != "*":
			id.seq, _ = strconv.ParseUint(seqPart, 10, 64)
		case id.ms == k.last.ms:
			id.seq = k.last.seq + 1
		}
		if !k.last.less(id) {
			return exact(redis.Error("ERR The ID specified in XADD is equal or smaller than the target stream top item"))
		}
		k.entries = append(k.entries, mentry{id: id, field: arg(at + 1), value: arg(at + 2)})
		k.last = id
		if maxLen >= 0 && len(k.entries) > maxLen {
			k.entries = k.entries[len(k.entries)-maxLen:]
		}
		return exact(bulk(id.String()))
	case "xdel":
		// XDEL key id, of the workload's form.
		if !typed("stream") {
			return exact(errWrongType)
		}
		id := parseMID(arg(2))
		for i, e := range k.entries {
			if e.id == id {
				k.entries = slices.Delete(slices.Clone(k.entries), i, i+1)
				return exact(redis.Int(1))
			}
		}
		return exact(redis.Int(0))
	case "xlen":
		if !typed("stream") {
			return exact(errWrongType)
		}
		return exact(redis.Int(int64(len(k.entries))))
	case "xrange":
		if !typed("stream") {
			return exact(errWrongType)
		}
		if len(args) != 4 || arg(2) != "-" || arg(3) != "+" {
			panic("model: XRANGE - + only")
		}
		out := []redis.Reply{}
		for _, e := range k.entries {
			out = append(out, redis.Array(bulk(e.id.String()), redis.Array(bulk(e.field), bulk(e.value))))
		}
		return exact(redis.Array(out...))
	case "xtrim":
		// XTRIM key MAXLEN n, exact.
		n, err := strconv.Atoi(arg(3))
		if !strings.EqualFold(arg(2), "maxlen") || err != nil || n < 0 {
			panic("model: XTRIM key MAXLEN n only")
		}
		if !typed("stream") {
			return exact(errWrongType)
		}
		removed := max(len(k.entries)-n, 0)
		k.entries = k.entries[removed:]
		return exact(redis.Int(int64(removed)))
	case "del":
		if k.typ == "" {
			return exact(redis.Int(0))
		}
		k.clear()
		return exact(redis.Int(1))
	case "exists":
		return exact(redis.Int(b2i(k.typ != "")))
	case "type":
		if k.typ == "" {
			return exact(redis.SimpleString("none"))
		}
		return exact(redis.SimpleString(k.typ))
	case "pexpire":
		px, err := strconv.ParseInt(arg(2), 10, 64)
		if err != nil || px <= 0 {
			panic("model: PEXPIRE takes a positive integer here")
		}
		if k.typ == "" {
			return exact(redis.Int(0))
		}
		k.ttl, k.dlo, k.dhi = true, now.lo+px, now.hi+px
		return exact(redis.Int(1))
	case "persist":
		if k.typ == "" || !k.ttl {
			return exact(redis.Int(0))
		}
		k.ttl, k.dlo, k.dhi = false, 0, 0
		return exact(redis.Int(1))
	case "pttl":
		switch {
		case k.typ == "":
			return exact(redis.Int(-2))
		case !k.ttl:
			return exact(redis.Int(-1))
		}
		// Live: deadline > stamp, so at least 1.
		return expect{ranged: true, lo: max(1, k.dlo-now.hi), hi: k.dhi - now.lo}
	case "hset":
		if !typed("hash") {
			return exact(errWrongType)
		}
		if k.typ == "" {
			k.typ, k.hash = "hash", map[string]string{}
		}
		var n int64
		for i := 2; i+1 < len(args); i += 2 {
			if _, ok := k.hash[args[i]]; !ok {
				n++
			}
			k.hash[args[i]] = args[i+1]
		}
		return exact(redis.Int(n))
	case "hget":
		if !typed("hash") {
			return exact(errWrongType)
		}
		if v, ok := k.hash[arg(2)]; ok {
			return exact(bulk(v))
		}
		return exact(redis.Null())
	case "hdel", "srem", "zrem":
		t := map[string]string{"hdel": "hash", "srem": "set", "zrem": "zset"}[name]
		if !typed(t) {
			return exact(errWrongType)
		}
		var n int64
		for _, f := range args[2:] {
			if k.typ == "" {
				break
			}
			var had bool
			switch t {
			case "hash":
				_, had = k.hash[f]
				delete(k.hash, f)
			case "set":
				had = k.set[f]
				delete(k.set, f)
			case "zset":
				_, had = k.zset[f]
				delete(k.zset, f)
			}
			if had {
				n++
			}
			k.emptied()
		}
		return exact(redis.Int(n))
	case "hgetall":
		if !typed("hash") {
			return exact(errWrongType)
		}
		var out []redis.Reply
		for _, f := range slices.Sorted(maps.Keys(k.hash)) {
			out = append(out, bulk(f), bulk(k.hash[f]))
		}
		return exact(redis.Map(out...))
	case "hlen", "llen", "scard", "zcard":
		t := map[string]string{"hlen": "hash", "llen": "list", "scard": "set", "zcard": "zset"}[name]
		if !typed(t) {
			return exact(errWrongType)
		}
		return exact(redis.Int(int64(count())))
	case "rpush", "lpush":
		if !typed("list") {
			return exact(errWrongType)
		}
		k.typ = "list"
		for _, e := range args[2:] {
			if name == "rpush" {
				k.list = append(k.list, e)
			} else {
				k.list = append([]string{e}, k.list...)
			}
		}
		return exact(redis.Int(int64(len(k.list))))
	case "lpop", "rpop":
		if !typed("list") {
			return exact(errWrongType)
		}
		if k.typ == "" {
			return exact(redis.Null())
		}
		var e string
		if name == "lpop" {
			e, k.list = k.list[0], k.list[1:]
		} else {
			e, k.list = k.list[len(k.list)-1], k.list[:len(k.list)-1]
		}
		k.emptied()
		return exact(bulk(e))
	case "lmpop":
		// LMPOP 1 key LEFT|RIGHT [COUNT n], the workload's form.
		if !typed("list") {
			return exact(errWrongType)
		}
		if k.typ == "" {
			return exact(redis.NullArray())
		}
		n := mpopCount(args)
		var out []redis.Reply
		for range min(n, len(k.list)) {
			var e string
			if strings.EqualFold(arg(3), "left") {
				e, k.list = k.list[0], k.list[1:]
			} else {
				e, k.list = k.list[len(k.list)-1], k.list[:len(k.list)-1]
			}
			out = append(out, bulk(e))
		}
		k.emptied()
		return exact(redis.Array(bulk(arg(2)), redis.Array(out...)))
	case "lrem":
		n, err := strconv.ParseInt(arg(2), 10, 64)
		if err != nil {
			return exact(redis.Error("ERR value is not an integer or out of range"))
		}
		if !typed("list") {
			return exact(errWrongType)
		}
		var kept []string
		var removed int64
		idx := make([]int, len(k.list))
		for i := range idx {
			idx[i] = i
		}
		if n < 0 {
			slices.Reverse(idx)
		}
		drop := map[int]bool{}
		for _, i := range idx {
			if k.list[i] == arg(3) && (n == 0 || removed < max(n, -n)) {
				drop[i] = true
				removed++
			}
		}
		for i, e := range k.list {
			if !drop[i] {
				kept = append(kept, e)
			}
		}
		if k.typ != "" {
			k.list = kept
			k.emptied()
		}
		return exact(redis.Int(removed))
	case "lrange":
		if !typed("list") {
			return exact(errWrongType)
		}
		if arg(2) != "0" || arg(3) != "-1" {
			panic("model: LRANGE 0 -1 only")
		}
		var out []redis.Reply
		for _, e := range k.list {
			out = append(out, bulk(e))
		}
		return exact(redis.Array(out...))
	case "sadd":
		if !typed("set") {
			return exact(errWrongType)
		}
		if k.typ == "" {
			k.typ, k.set = "set", map[string]bool{}
		}
		var n int64
		for _, m := range args[2:] {
			if !k.set[m] {
				n++
			}
			k.set[m] = true
		}
		return exact(redis.Int(n))
	case "smembers":
		if !typed("set") {
			return exact(errWrongType)
		}
		var out []redis.Reply
		for _, m := range slices.Sorted(maps.Keys(k.set)) {
			out = append(out, bulk(m))
		}
		return exact(redis.Set(out...))
	case "sintercard":
		// SINTERCARD 1 key [LIMIT n], the workload's form: the set's size,
		// at most n unless n is 0.
		if !typed("set") {
			return exact(errWrongType)
		}
		n := len(k.set)
		if len(args) == 5 {
			limit, err := strconv.Atoi(args[4])
			if err != nil || limit < 0 {
				panic("model: SINTERCARD takes a LIMIT of 0 or more here")
			}
			if limit > 0 {
				n = min(n, limit)
			}
		}
		return exact(redis.Int(int64(n)))
	case "sismember":
		if !typed("set") {
			return exact(errWrongType)
		}
		return exact(redis.Int(b2i(k.set[arg(2)])))
	case "zadd":
		if len(args) != 4 {
			panic("model: ZADD key score member only")
		}
		score, err := strconv.ParseInt(arg(2), 10, 64)
		if err != nil {
			return exact(redis.Error("ERR value is not a valid float"))
		}
		if !typed("zset") {
			return exact(errWrongType)
		}
		if k.typ == "" {
			k.typ, k.zset = "zset", map[string]int64{}
		}
		_, had := k.zset[arg(3)]
		k.zset[arg(3)] = score
		return exact(redis.Int(b2i(!had)))
	case "zscore":
		if !typed("zset") {
			return exact(errWrongType)
		}
		if s, ok := k.zset[arg(2)]; ok {
			return exact(bulk(strconv.FormatInt(s, 10)))
		}
		return exact(redis.Null())
	case "zmpop":
		// ZMPOP 1 key MIN|MAX [COUNT n], the workload's form.
		if !typed("zset") {
			return exact(errWrongType)
		}
		if k.typ == "" {
			return exact(redis.NullArray())
		}
		ms := k.zsetOrder()
		if strings.EqualFold(arg(3), "max") {
			slices.Reverse(ms)
		}
		var out []redis.Reply
		for _, m := range ms[:min(mpopCount(args), len(ms))] {
			out = append(out, redis.Array(bulk(m), bulk(strconv.FormatInt(k.zset[m], 10))))
			delete(k.zset, m)
		}
		k.emptied()
		return exact(redis.Array(bulk(arg(2)), redis.Array(out...)))
	case "zrange":
		if !typed("zset") {
			return exact(errWrongType)
		}
		if len(args) != 5 || arg(2) != "0" || arg(3) != "-1" || !strings.EqualFold(arg(4), "withscores") {
			panic("model: ZRANGE 0 -1 WITHSCORES only")
		}
		var out []redis.Reply
		for _, m := range k.zsetOrder() {
			out = append(out, bulk(m), bulk(strconv.FormatInt(k.zset[m], 10)))
		}
		return exact(redis.Array(out...))
	}
	panic("model: no command " + name)
}

// bitArgs reads SETBIT's or GETBIT's offset and value as the workload
// sends them: an offset below 1000, a bit 0 or 1.
func bitArgs(offset, value string) (off int, bit int) {
	off, err := strconv.Atoi(offset)
	if err != nil || off < 0 || off >= 1000 || (value != "0" && value != "1") {
		panic("model: SETBIT and GETBIT take a small offset and 0 or 1 here")
	}
	return off, int(value[0] - '0')
}

// bitOf is bit off of s (bit 0 is the first byte's most significant), 0
// past the end.
func bitOf(s string, off int) int {
	if off/8 >= len(s) {
		return 0
	}
	return int(s[off/8]>>(7-off%8)) & 1
}

// bitCount is BITCOUNT's answer for a live string s and the arguments
// after the key, as Redis 7.0 documents it: negative indexes count from
// the end, the range is clipped to the string, and an empty range (or
// -1 -2: both negative, start after end) counts 0. It counts bit by bit.
func bitCount(s string, args []string) int64 {
	units := len(s) // bytes, or bits with BIT
	perUnit := 8
	start, end := 0, units-1
	if len(args) > 0 {
		var err1, err2 error
		start, err1 = strconv.Atoi(args[0])
		end, err2 = strconv.Atoi(args[1])
		if err1 != nil || err2 != nil || len(args) > 3 {
			panic("model: BITCOUNT takes integer bounds here")
		}
		if start < 0 && end < 0 && start > end {
			return 0
		}
		if len(args) == 3 && strings.EqualFold(args[2], "bit") {
			units, perUnit = len(s)*8, 1
		}
		if start < 0 {
			start += units
		}
		if end < 0 {
			end += units
		}
		start, end = max(start, 0), min(max(end, 0), units-1)
	}
	var n int64
	for i := start * perUnit; i < (end+1)*perUnit; i++ {
		n += int64(bitOf(s, i))
	}
	return n
}

// zsetOrder is the sorted set's members in Redis's order: by score, then
// by member.
func (k *mkey) zsetOrder() []string {
	return slices.SortedFunc(maps.Keys(k.zset), func(a, b string) int {
		if c := k.zset[a] - k.zset[b]; c != 0 {
			return int(max(-1, min(1, c)))
		}
		return strings.Compare(a, b)
	})
}

// mpopCount is LMPOP's or ZMPOP's COUNT (1 without one).
func mpopCount(args []string) int {
	if len(args) == 6 {
		n, err := strconv.Atoi(args[5])
		if err != nil || n < 1 {
			panic("model: a positive COUNT only")
		}
		return n
	}
	return 1
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// views are the ways the key may look to an operation stamped within now:
// live (the state as it is, its TTL not yet due) and/or expired.
func (k *mkey) views(now stamp) (live, expired bool) {
	if k.typ == "" || !k.ttl {
		return true, false
	}
	// Live if the stamp may be before the deadline; expired if it may be
	// at or after it (Redis: expired when expire-at <= now).
	return now.lo < k.dhi, now.hi >= k.dlo
}

// sameView reports whether two views may have the same WATCH digest: the
// same type and contents, and either no TTL on both or deadlines that may
// be equal.
func sameView(a, b *mkey) bool {
	if a.ttl != b.ttl {
		return false
	}
	if a.ttl && (a.dhi < b.dlo || b.dhi < a.dlo) {
		return false
	}
	x, y := *a, *b
	x.ttl, x.dlo, x.dhi, y.ttl, y.dlo, y.dhi = false, 0, 0, false, 0, 0
	return x.encode() == y.encode()
}

// blockAborts reports whether a queued command fails its arity check: the
// server then answers EXEC with EXECABORT and runs nothing.
func blockAborts(block [][]string) bool {
	for _, args := range block {
		if spec, ok := redis.Lookup(args[0]); !ok || !spec.ArityOK(len(args)) {
			return true
		}
	}
	return false
}

// runBlock runs a block of commands (one, or a MULTI/EXEC's) at one stamp,
// from state k, on each view the stamp allows, and returns the possible
// next states with the replies they require: the live view runs on k; the
// expired view runs on a missing key, and if nothing in the block wrote
// (a write meeting the expired key deletes it) or the block left the key
// missing, k may stay as it is (a later operation stamped earlier on
// another leader may still see it: stamps of reads are not ordered across
// leaders).
type blockRun struct {
	next    *mkey
	replies []expect
	view    *mkey // the key as the block's first command saw it
}

func runBlock(k *mkey, block [][]string, now stamp) []blockRun {
	live, expired := k.views(now)
	writes := false
	for _, args := range block {
		writes = writes || commandWrites(args[0])
	}
	var out []blockRun
	run := func(from *mkey) blockRun {
		view := from.clone()
		st := from.clone()
		r := blockRun{view: view}
		for _, args := range block {
			r.replies = append(r.replies, st.exec(args, now))
		}
		r.next = st
		return r
	}
	if live {
		r := run(k)
		if !writes {
			r.next = k
		}
		out = append(out, r)
	}
	if expired {
		r := run(&mkey{})
		switch {
		case !writes:
			r.next = k
		case r.next.typ == "":
			out = append(out, blockRun{next: k, replies: r.replies, view: r.view})
		}
		out = append(out, r)
	}
	return out
}

// redisMiniKeyspace runs commands on several keys, for the model's own
// test against Exec (each key its own mkey, as Porcupine partitions them).
type redisMiniKeyspace map[string]*mkey

func (ks redisMiniKeyspace) exec(args []string, now int64) expect {
	key := miniKeyOf(args)
	k := ks[key]
	if k == nil {
		k = &mkey{}
	}
	st := stamp{now, now}
	if live, _ := k.views(st); !live {
		k = &mkey{}
	}
	e := k.exec(args, st)
	ks[key] = k
	return e
}

// miniKeyOf is the one key a command of the model names: the first
// argument, or for LMPOP, ZMPOP and SINTERCARD (numkeys first; the
// workload sends one key) the second.
func miniKeyOf(args []string) string {
	switch strings.ToLower(args[0]) {
	case "lmpop", "zmpop", "sintercard":
		return args[2]
	}
	return args[1]
}

// TestRedisMiniMatchesExec runs random commands of every family through
// adapters/redis (Exec on a MemStore, with a clock that moves on between
// commands) and through the model's mini-Redis, and requires the same
// replies: the model is the state machine's specification, so the two
// must agree before the simulator compares them under faults.
func TestRedisMiniMatchesExec(t *testing.T) {
	all := redisMix{share: 100}
	for f := range numFamilies {
		all.on[f] = true
	}
	for f := range famTTL {
		all.types = append(all.types, f)
	}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		st := redis.NewMemStore()
		ks := redisMiniKeyspace{}
		now := epochMillis
		for n := range 2000 {
			f := all.types[rng.IntN(len(all.types))]
			key := familyKeys[f][rng.IntN(len(familyKeys[f]))]
			args := genCommand(rng, all, f, key, fmt.Sprintf("v%d", n))
			now += int64(rng.IntN(40))
			b := make([][]byte, len(args))
			for i, a := range args {
				b[i] = []byte(a)
			}
			got := redis.Exec(st, now, rng.Uint64(), b)
			if want := ks.exec(args, now); !want.match(got) {
				t.Fatalf("seed %d, command %d at +%d ms: %q: Exec replied %s, the model wants %s (model state %s)",
					seed, n, now-epochMillis, args, describeReply(got), want, ks[key].describe())
			}
		}
	}
}
