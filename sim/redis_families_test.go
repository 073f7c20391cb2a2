package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/kernel"
)

// The command families of the Redis workload (issue 10, point 1): strings
// whose type changes, hashes, lists, sets and sorted sets, with their
// deletes and the emptying of a collection (the key must then vanish),
// overwrites and WRONGTYPE errors; TTLs (SET PX, PEXPIRE, PERSIST, PTTL);
// MULTI blocks of several commands, some failing in their slot
// (WRONGTYPE), some aborted by a queued command of the wrong arity
// (EXECABORT); WATCH on keys of every type. Each seed enables its own
// subset (swarm testing, as the fault plan does), so that a seed may
// hammer one family. Every reply goes into the history and is checked by
// the Porcupine model (rCmd, rBlock, rWatch).

type redisFamily int

const (
	famString redisFamily = iota // keys x1, x2: SET GET GETSET INCR SETBIT GETBIT BITCOUNT, other types' commands
	famHash                      // h1, h2: HSET HGET HDEL HGETALL HLEN
	famList                      // q1, q2: RPUSH LPUSH LPOP RPOP LREM LRANGE LLEN
	famSet                       // m1, m2: SADD SREM SMEMBERS SCARD SISMEMBER SINTERCARD
	famZSet                      // z1, z2: ZADD ZREM ZRANGE ZSCORE ZCARD
	famStream                    // y1, y2: XADD (explicit IDs, MAXLEN) XDEL XLEN XRANGE XTRIM
	famTTL                       // SET PX, PEXPIRE, PERSIST, PTTL on the keys above
	famMulti                     // MULTI blocks on one key of the above
	famWatch                     // WATCH k; MULTI; ...; EXEC on the keys above
	numFamilies
)

var familyNames = [numFamilies]string{"string", "hash", "list", "set", "zset", "stream", "ttl", "multi", "watch"}

// familyKeys are each type family's keys, on two ranges
// (slot/4096: x1 2, x2 1, h1 2, h2 1, q1 1, q2 2, m1 1, m2 2, z1 0, z2 3, y1 1, y2 2).
var familyKeys = [famTTL][]string{{"x1", "x2"}, {"h1", "h2"}, {"q1", "q2"}, {"m1", "m2"}, {"z1", "z2"}, {"y1", "y2"}}

// redisMix is one seed's choice of families.
type redisMix struct {
	on    [numFamilies]bool
	types []redisFamily // the type families on
	share int           // percent of a client's operations that are family ones
}

// drawMix draws the seed's families from the seed alone (not the
// scheduler's source, so that the fault plan a seed draws stays the same).
func drawMix(seed uint64) redisMix {
	rng := rand.New(rand.NewPCG(seed, 0x7265646973))
	var m redisMix
	// Streams came last: they are drawn after the rest, so that the
	// families of a seed are what they were before them, plus streams.
	for f := range numFamilies {
		if f != famStream {
			m.on[f] = rng.IntN(2) == 0
		}
	}
	for f := range famTTL {
		if m.on[f] {
			m.types = append(m.types, f)
		}
	}
	if len(m.types) == 0 {
		f := redisFamily(rng.IntN(int(famStream))) // the type families before streams
		m.on[f], m.types = true, []redisFamily{f}
	}
	m.share = 30 + rng.IntN(31)
	if m.on[famStream] = rng.IntN(2) == 0; m.on[famStream] {
		m.types = append(m.types, famStream)
	}
	return m
}

func (m redisMix) String() string {
	var on []string
	for f := range numFamilies {
		if m.on[f] {
			on = append(on, familyNames[f])
		}
	}
	return fmt.Sprintf("families [%s] at %d%%", strings.Join(on, " "), m.share)
}

// genCommand draws a command on key of type family f. uniq is a value no
// other command writes.
func genCommand(rng *rand.Rand, m redisMix, f redisFamily, key, uniq string) []string {
	r := rng.IntN(100)
	switch {
	case r < 4:
		return []string{"DEL", key}
	case r < 7:
		return []string{"EXISTS", key}
	case r < 10:
		return []string{"TYPE", key}
	case r < 13:
		// Another family's command: WRONGTYPE, or a type change.
		other := m.types[rng.IntN(len(m.types))]
		if other == f {
			other = redisFamily(rng.IntN(int(famTTL)))
		}
		return genTyped(rng, other, key, uniq)
	case r < 15 && f != famString:
		return []string{"SET", key, uniq} // overwrite a collection
	case r < 32 && m.on[famTTL]:
		return genTTL(rng, key, uniq)
	}
	return genTyped(rng, f, key, uniq)
}

// genTTL draws SET PX, PEXPIRE, PERSIST or PTTL. A TTL is short (it ends
// during the run, often between two operations on the key) or long (it
// never ends in the run: a key must outlive it).
func genTTL(rng *rand.Rand, key, uniq string) []string {
	ms := strconv.Itoa(20 + rng.IntN(130))
	if rng.IntN(3) == 0 {
		ms = "600000"
	}
	switch r := rng.IntN(4); {
	case r < 1:
		v := uniq
		if rng.IntN(3) != 0 {
			v = strconv.Itoa(rng.IntN(100)) // INCR has something to increment
		}
		return []string{"SET", key, v, "PX", ms}
	case r < 2:
		return []string{"PEXPIRE", key, ms}
	case r < 3:
		return []string{"PERSIST", key}
	}
	return []string{"PTTL", key}
}

func genTyped(rng *rand.Rand, f redisFamily, key, uniq string) []string {
	pick := func(prefix string, n int) string { return prefix + strconv.Itoa(rng.IntN(n)) }
	r := rng.IntN(100)
	switch f {
	case famString:
		switch {
		case r < 25:
			return []string{"GET", key}
		case r < 42:
			v := uniq
			if rng.IntN(2) == 0 {
				v = strconv.Itoa(rng.IntN(100))
			}
			switch rng.IntN(4) {
			case 0:
				return []string{"SET", key, v, "NX"}
			case 1:
				return []string{"SET", key, v, "XX"}
			}
			return []string{"SET", key, v}
		case r < 50:
			return []string{"GETSET", key, uniq}
		case r < 72:
			return []string{"INCR", key}
		case r < 92:
			return genBits(rng, key)
		}
		return []string{"DEL", key}
	case famHash:
		switch {
		case r < 35:
			return []string{"HSET", key, pick("f", 3), uniq}
		case r < 55:
			return []string{"HDEL", key, pick("f", 3)}
		case r < 70:
			return []string{"HGET", key, pick("f", 3)}
		case r < 90:
			return []string{"HGETALL", key}
		}
		return []string{"HLEN", key}
	case famList:
		item := pick("i", 2) // few items: LREM finds several
		switch {
		case r < 25:
			return []string{"RPUSH", key, item}
		case r < 40:
			return []string{"LPUSH", key, item}
		case r < 46:
			return []string{"LPOP", key}
		case r < 52:
			cmd := []string{"LMPOP", "1", key, []string{"LEFT", "RIGHT"}[rng.IntN(2)]}
			if rng.IntN(2) == 0 {
				cmd = append(cmd, "COUNT", strconv.Itoa(1+rng.IntN(3)))
			}
			return cmd
		case r < 62:
			return []string{"RPOP", key}
		case r < 72:
			return []string{"LREM", key, []string{"1", "-1", "2", "0"}[rng.IntN(4)], item}
		case r < 92:
			return []string{"LRANGE", key, "0", "-1"}
		}
		return []string{"LLEN", key}
	case famSet:
		switch {
		case r < 35:
			return []string{"SADD", key, pick("s", 4)}
		case r < 60:
			return []string{"SREM", key, pick("s", 4)}
		case r < 85:
			return []string{"SMEMBERS", key}
		case r < 90:
			return []string{"SISMEMBER", key, pick("s", 4)}
		case r < 95:
			// The single-key form: the set's size, capped by LIMIT (0: none).
			cmd := []string{"SINTERCARD", "1", key}
			if rng.IntN(2) == 0 {
				cmd = append(cmd, "LIMIT", strconv.Itoa(rng.IntN(4)))
			}
			return cmd
		}
		return []string{"SCARD", key}
	case famZSet:
		switch {
		case r < 35:
			return []string{"ZADD", key, strconv.Itoa(rng.IntN(6)), pick("z", 3)}
		case r < 48:
			return []string{"ZREM", key, pick("z", 3)}
		case r < 55:
			cmd := []string{"ZMPOP", "1", key, []string{"MIN", "MAX"}[rng.IntN(2)]}
			if rng.IntN(2) == 0 {
				cmd = append(cmd, "COUNT", strconv.Itoa(1+rng.IntN(3)))
			}
			return cmd
		case r < 80:
			return []string{"ZRANGE", key, "0", "-1", "WITHSCORES"}
		case r < 92:
			return []string{"ZSCORE", key, pick("z", 3)}
		}
		return []string{"ZCARD", key}
	case famStream:
		return genStream(rng, key, uniq)
	}
	panic("no such family")
}

// genStream draws XADD, XDEL, XLEN, XRANGE or XTRIM on a stream key. IDs
// are explicit ("<ms>-<seq>" or "<ms>-*"), made from uniq, which is
// c<client>.<op>[.<j>] (v<op> in TestRedisMiniMatchesExec): the op number
// grows with each client's operations, so a client's IDs grow, while the
// clients' interleave and some XADDs meet a larger top item (an error).
// XDEL names IDs the client may have added lately.
func genStream(rng *rand.Rand, key, uniq string) []string {
	var nums []int
	for _, f := range strings.FieldsFunc(uniq, func(r rune) bool { return r < '0' || r > '9' }) {
		n, _ := strconv.Atoi(f)
		nums = append(nums, n)
	}
	if len(nums) == 1 {
		nums = []int{0, nums[0]}
	}
	client, ms := nums[0], 1+4*nums[1]
	if len(nums) > 2 {
		ms += nums[2]
	}
	switch r := rng.IntN(100); {
	case r < 40:
		id := fmt.Sprintf("%d-%d", ms, client)
		if rng.IntN(3) == 0 {
			id = fmt.Sprintf("%d-*", ms)
		}
		cmd := []string{"XADD", key}
		if rng.IntN(5) == 0 {
			cmd = append(cmd, "MAXLEN", strconv.Itoa(1+rng.IntN(5)))
		}
		return append(cmd, id, "f"+strconv.Itoa(rng.IntN(2)), uniq)
	case r < 58:
		back := max(1, ms-4*(1+rng.IntN(3)))
		return []string{"XDEL", key, fmt.Sprintf("%d-%d", back, []int{client, 0}[rng.IntN(2)])}
	case r < 73:
		return []string{"XLEN", key}
	case r < 95:
		return []string{"XRANGE", key, "-", "+"}
	}
	return []string{"XTRIM", key, "MAXLEN", strconv.Itoa(rng.IntN(4))}
}

// genBits draws SETBIT, GETBIT or BITCOUNT on a string key: bits within
// the values the workload sets (a few bytes) and past them (SETBIT grows
// the string), BITCOUNT over all of it or a range, in bytes or bits, with
// negative indexes.
func genBits(rng *rand.Rand, key string) []string {
	off := strconv.Itoa(rng.IntN(64))
	switch r := rng.IntN(20); {
	case r < 8:
		return []string{"SETBIT", key, off, strconv.Itoa(rng.IntN(2))}
	case r < 13:
		return []string{"GETBIT", key, off}
	case r < 15:
		return []string{"BITCOUNT", key}
	}
	span, unit := 10, "" // bytes, or bits with BIT
	switch rng.IntN(6) {
	case 0, 1, 2:
		span, unit = 70, []string{"BIT", "bit"}[rng.IntN(2)]
	case 3:
		unit = "BYTE"
	}
	index := func() string { return strconv.Itoa(rng.IntN(2*span+1) - span) }
	cmd := []string{"BITCOUNT", key, index(), index()}
	if unit != "" {
		cmd = append(cmd, unit)
	}
	return cmd
}

// familyOp is one operation of the seed's families: a command, a MULTI
// block, or a watched block.
func (c *redisCluster) familyOp(rc redisConn, i, n int, rng *rand.Rand, open openWrites, settle func(string, int64)) bool {
	m := c.mix
	f := m.types[rng.IntN(len(m.types))]
	key := familyKeys[f][rng.IntN(len(familyKeys[f]))]
	uniq := fmt.Sprintf("c%d.%d", i, n)
	r := rng.IntN(100)
	switch {
	case m.on[famWatch] && r < 30:
		return c.blockOp(rc, i, key, c.genBlock(rng, f, key, uniq, false), true, open, settle)
	case m.on[famMulti] && r < 45:
		return c.blockOp(rc, i, key, c.genBlock(rng, f, key, uniq, rng.IntN(8) == 0), false, open, settle)
	case f == famString && m.on[famTTL] && r < 65:
		// A rate limiter, as Redis users write one: count a hit, and
		// forget the count after a quiet spell. The next hit after the
		// TTL must count from 1.
		ms := strconv.Itoa(10 + rng.IntN(50))
		return c.blockOp(rc, i, key, [][]string{{"INCR", key}, {"PEXPIRE", key, ms}}, false, open, settle)
	}
	return c.cmdOp(rc, i, key, genCommand(rng, m, f, key, uniq), open, settle)
}

// genBlock draws one to four commands on key; abort adds one of the wrong
// arity, which makes EXEC answer EXECABORT.
func (c *redisCluster) genBlock(rng *rand.Rand, f redisFamily, key, uniq string, abort bool) [][]string {
	var block [][]string
	for j := range 1 + rng.IntN(4) {
		block = append(block, genCommand(rng, c.mix, f, key, fmt.Sprintf("%s.%d", uniq, j)))
	}
	if abort {
		bad := [][]string{{"SADD", key}, {"HSET", key, "f0"}, {"GET", key, "extra"}}[rng.IntN(3)]
		at := rng.IntN(len(block) + 1)
		block = slices.Insert(block, at, bad)
	}
	return block
}

// cmdOp sends one command of a family and records it.
func (c *redisCluster) cmdOp(rc redisConn, i int, key string, args []string, open openWrites, settle func(string, int64)) bool {
	in := redisInput{Op: rCmd, Key: key, Args: args, rangeNo: int(c.rangeOf(key).ID)}
	p := c.hist.Call(i, in)
	r := rc.do(args...)
	c.familyOps++
	return c.finish(p, in, r, open, settle, commandWrites(args[0]))
}

// unanswered records a refused outcome (dropped) or an unknown one (a
// write stays open, bounded by the client's next answered write to the
// range) and reports whether r was either, and if so whether the client
// goes on with its session.
func (c *redisCluster) unanswered(p *redisPending, key string, r redis.Reply, open openWrites) (unanswered, goOn bool) {
	switch outcomeOf(r) {
	case notApplied:
		c.refused++
		return true, true
	case unknownOut:
		c.unknown++
		if op := p.Unknown(); op >= 0 {
			u := c.settleUnit(key)
			open[u] = append(open[u], op)
		}
		return true, false
	}
	return false, false
}

// finish records an operation's outcome: refused ones are dropped, unknown
// writes stay open (and are bounded by the client's next answered write
// to the range, as stringOp's), answered ones are checked by the model.
func (c *redisCluster) finish(p *redisPending, in redisInput, r redis.Reply, open openWrites, settle func(string, int64), write bool) bool {
	if unanswered, goOn := c.unanswered(p, in.Key, r, open); unanswered {
		return goOn
	}
	ret := p.Return(redisOutput{Reply: r})
	if write {
		settle(in.Key, ret)
	}
	c.ok++
	return true
}

// blockOp is [WATCH key;] MULTI; block...; EXEC. The commands are queued
// locally (QUEUED, or an arity error); EXEC sends them as one write.
func (c *redisCluster) blockOp(rc redisConn, i int, key string, block [][]string, watch bool, open openWrites, settle func(string, int64)) bool {
	rn := int(c.rangeOf(key).ID)
	c.watchIDs++
	wid := c.watchIDs // others' WATCHes take the next IDs while this one waits
	if watch {
		w := c.hist.Call(i, redisInput{Op: rWatch, Key: key, WatchID: wid, rangeNo: rn})
		r := rc.do("WATCH", key)
		if !isOK(r) {
			if outcomeOf(r) == definite {
				c.anomaly("client %d: WATCH %s: %s", i, key, describeReply(r))
			}
			c.refused++
			return outcomeOf(r) == notApplied
		}
		w.Return(redisOutput{})
		// Read the key between WATCH and MULTI, as a client that computes
		// its update does: the read is checked like any other, and the
		// window in which a write must invalidate the WATCH grows.
		read := map[string][]string{"x": {"GET", key}, "h": {"HGETALL", key}, "q": {"LRANGE", key, "0", "-1"},
			"m": {"SMEMBERS", key}, "z": {"ZRANGE", key, "0", "-1", "WITHSCORES"}, "y": {"XRANGE", key, "-", "+"}}[key[:1]]
		c.cmdOp(rc, i, key, read, open, settle)
	}
	if r := rc.do("MULTI"); !isOK(r) {
		c.anomaly("client %d: MULTI: %s", i, describeReply(r))
		return true
	}
	for _, args := range block {
		r := rc.do(args...)
		queued := r.Kind == redis.KindSimple && string(r.Str) == "QUEUED"
		if bad := blockAborts([][]string{args}); queued == bad || (bad && r.Kind != redis.KindError) {
			c.anomaly("client %d: %q in MULTI: %s", i, args, describeReply(r))
			rc.do("DISCARD")
			return true
		}
	}
	in := redisInput{Op: rBlock, Key: key, Block: block, Watch: watch, WatchID: wid, rangeNo: rn}
	p := c.hist.Call(i, in)
	r := rc.do("EXEC")
	c.blocks++
	if r.Kind == redis.KindArray {
		c.blocksRan++
	}
	// An EXECABORT never reaches the range: it settles nothing.
	return c.finish(p, in, r, open, settle, !blockAborts(block))
}

// stampRuntime is a server node's runtime that records every reading of
// its clock (see stampClock): the stamps consensus gives commands are
// among them.
type stampRuntime struct {
	kernel.Runtime
	s     *Sim
	clock *stampClock
}

func (r stampRuntime) Now() time.Time {
	t := r.Runtime.Now()
	r.clock.note(r.s.now, t.UnixMilli())
	return t
}

var epochMillis = Epoch.UnixMilli()
