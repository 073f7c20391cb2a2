package sim

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/orbitkernel/orbit/adapters/redis"
)

// The sequential specification of Redis keys that the Redis scenario's
// history is checked against, and the history itself (History is specific
// to KVInput). String commands (rGet .. rCAS) are specified here; the
// command families (rCmd, rBlock, rWatch) by the mini-Redis of
// redis_mini_test.go, with expiry judged by bounds on the leader's stamp
// (stampClock).
//
// A key's state is "" when the key is missing and "=" followed by its value
// for a string without TTL, so that a missing key and an empty string stay
// apart; any other value starts with '#' (mkey.encode), followed by the
// views the clients watching the key saw at their WATCH (splitState).

// redisOp is a string command the scenario's clients send.
type redisOp uint8

const (
	rGet    redisOp = iota + 1 // GET k
	rSet                       // SET k v
	rSetNX                     // SET k v NX
	rSetXX                     // SET k v XX
	rDel                       // DEL k
	rIncr                      // INCR k
	rGetSet                    // GETSET k v
	// rCAS is the EXEC of WATCH k; GET k (-> Expect); MULTI; SET k v; EXEC.
	// The scenario runs it only on keys whose every write stores a value
	// never stored before (no DEL, no INCR), so a key changes back to a
	// state it had never: WATCH's digest then changes exactly when a write
	// applied after the WATCH, and a successful EXEC means the key still
	// held what GET read. An aborted EXEC (a null array) is always allowed:
	// the model cannot know the key's state at WATCH time.
	rCAS
	// rCmd is one command of the command families (Args), checked by the
	// mini-Redis of redis_mini_test.go: every reply, whatever the key's
	// type and TTL.
	rCmd
	// rBlock is the EXEC of MULTI; Block...; EXEC on one key, after a
	// WATCH of the key (rWatch) if Watch is set. Every reply in the EXEC
	// array is checked; a block that queued a command of the wrong arity
	// must be answered EXECABORT and change nothing; a watched block must
	// run only if the key looks as it did at the WATCH (its type, value
	// and TTL: what the digest covers). An aborted watched block is always
	// allowed, as for rCAS.
	rBlock
	// rWatch is WATCH k: the model remembers how the key looked, per
	// WATCH (WatchID), until the rBlock it guards.
	rWatch
)

// redisInput is an operation as called. Expect (rCAS) is a state.
type redisInput struct {
	Op         redisOp
	Key, Value string
	Expect     string
	Args       []string   // rCmd
	Block      [][]string // rBlock
	Watch      bool       // rBlock: after an rWatch of the same client
	// WatchID names an rWatch, and the rBlock whose EXEC it guards: the
	// view a WATCH saw belongs to that WATCH, not to its client. A
	// client's EXEC whose outcome it never learned may apply after the
	// client's next WATCH, checking the digests of its own.
	WatchID int
	// now bounds the stamp the leader gave the operation (see
	// stampClock), filled in before the check; only rCmd, rBlock and
	// rWatch read it.
	now             stamp
	client, rangeNo int // for reports; not compared
	// script says a string command was sent as a Lua script that runs it
	// (redisScript); the model treats it as the command itself.
	script bool
}

// redisOutput is an operation's outcome.
type redisOutput struct {
	State   string      // rGet, rGetSet: what it read, as a state
	Int     int64       // rDel: keys removed; rIncr: the new value
	OK      bool        // rSetNX, rSetXX: whether it set; rCAS: whether EXEC ran
	Err     bool        // rIncr: "ERR value is not an integer or out of range"
	Unknown bool        // the client cannot know what happened
	Reply   redis.Reply // rCmd, rBlock: the reply as the client got it
}

func (in redisInput) String() string {
	switch in.Op {
	case rGet:
		return "GET " + in.Key
	case rSet:
		return fmt.Sprintf("SET %s %s", in.Key, in.Value)
	case rSetNX:
		return fmt.Sprintf("SET %s %s NX", in.Key, in.Value)
	case rSetXX:
		return fmt.Sprintf("SET %s %s XX", in.Key, in.Value)
	case rDel:
		return "DEL " + in.Key
	case rIncr:
		return "INCR " + in.Key
	case rGetSet:
		return fmt.Sprintf("GETSET %s %s", in.Key, in.Value)
	case rCAS:
		return fmt.Sprintf("WATCH-EXEC %s %s->%s", in.Key, describeState(in.Expect), in.Value)
	case rCmd:
		return strings.Join(in.Args, " ")
	case rBlock:
		var cmds []string
		for _, a := range in.Block {
			cmds = append(cmds, strings.Join(a, " "))
		}
		w := ""
		if in.Watch {
			w = "WATCH " + in.Key + "; "
		}
		return w + "MULTI; " + strings.Join(cmds, "; ") + "; EXEC"
	case rWatch:
		return "WATCH " + in.Key
	}
	return "?"
}

func describeState(st string) string {
	if st == "" {
		return "(nil)"
	}
	if st[0] != '=' {
		key, snaps := splitState(st)
		d := decodeKey(key).describe()
		for _, id := range slices.Sorted(maps.Keys(snaps)) {
			d += fmt.Sprintf(" [watch %d saw %s]", id, decodeKey(snaps[id]).describe())
		}
		return d
	}
	return strconv.Quote(st[1:])
}

// splitState separates a key's state from the views its WATCHes saw:
// key, then "\x1e" watch ID ":" view for each open WATCH, by ID.
func splitState(st string) (string, map[int]string) {
	parts := strings.Split(st, "\x1e")
	snaps := map[int]string{}
	for _, p := range parts[1:] {
		id, view, _ := strings.Cut(p, ":")
		n, _ := strconv.Atoi(id)
		snaps[n] = view
	}
	return parts[0], snaps
}

func joinState(key string, snaps map[int]string) string {
	var b strings.Builder
	b.WriteString(key)
	for _, id := range slices.Sorted(maps.Keys(snaps)) {
		fmt.Fprintf(&b, "\x1e%d:%s", id, snaps[id])
	}
	return b.String()
}

// stepFamily is the model's step for rCmd, rBlock and rWatch.
func stepFamily(st string, in redisInput, out redisOutput) []any {
	key, snaps := splitState(st)
	k := decodeKey(key)
	if in.Op == rWatch {
		live, expired := k.views(in.now)
		var next []any
		if live {
			next = append(next, joinState(key, with(snaps, in.WatchID, key)))
		}
		if expired {
			next = append(next, joinState(key, with(snaps, in.WatchID, "")))
		}
		return next
	}
	block := in.Block
	if in.Op == rCmd {
		block = [][]string{in.Args}
	}
	var watched *mkey
	if in.Watch {
		v, ok := snaps[in.WatchID]
		if !ok {
			return nil // an EXEC after a WATCH the model never saw
		}
		watched = decodeKey(v)
	}
	if in.Op == rBlock {
		snaps = maps.Clone(snaps)
		delete(snaps, in.WatchID) // EXEC ends its WATCH
	}
	unchanged := joinState(key, snaps)
	if in.Op == rBlock && blockAborts(block) {
		if out.Unknown || (out.Reply.Kind == redis.KindError && strings.HasPrefix(string(out.Reply.Str), "EXECABORT ")) {
			return []any{unchanged}
		}
		return nil
	}
	if in.Watch && !out.Unknown && out.Reply.Kind == redis.KindNullArray {
		return []any{unchanged}
	}
	var next []any
	if out.Unknown {
		next = append(next, unchanged)
	}
	for _, r := range runBlock(k, block, in.now) {
		if watched != nil && !sameView(r.view, watched) {
			continue // the digests differ: EXEC cannot run on this view
		}
		if !out.Unknown && !repliesMatch(in.Op, r.replies, out.Reply) {
			continue
		}
		next = append(next, joinState(r.next.encode(), snaps))
	}
	return next
}

// with is snaps with watch's view set (a copy).
func with(snaps map[int]string, watch int, view string) map[int]string {
	m := maps.Clone(snaps)
	m[watch] = view
	return m
}

func repliesMatch(op redisOp, want []expect, got redis.Reply) bool {
	if op == rCmd {
		return want[0].match(got)
	}
	if got.Kind != redis.KindArray || len(got.Elems) != len(want) {
		return false
	}
	for i, w := range want {
		if !w.match(got.Elems[i]) {
			return false
		}
	}
	return true
}

func present(v string) string { return "=" + v }

// incrOf is INCR's effect on state st: the new value, or ok false when the
// value is not a (canonical) 64-bit integer or would overflow.
func incrOf(st string) (int64, bool) {
	if st == "" {
		return 1, true
	}
	n, err := strconv.ParseInt(st[1:], 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != st[1:] || n == math.MaxInt64 {
		return 0, false
	}
	return n + 1, true
}

var redisModel = porcupine.NondeterministicModel{
	Partition: partitionByKey(func(op porcupine.Operation) string { return op.Input.(redisInput).Key }),
	Init:      func() []any { return []any{""} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(string), input.(redisInput), output.(redisOutput)
		switch in.Op {
		case rCmd, rBlock, rWatch:
			return stepFamily(st, in, out)
		}
		next := st // the state after the operation takes effect
		switch in.Op {
		case rGet:
			if out.Unknown || out.State == st {
				return []any{st}
			}
			return nil
		case rSet:
			next = present(in.Value)
		case rSetNX, rSetXX:
			set := (st == "") == (in.Op == rSetNX)
			if !out.Unknown && out.OK != set {
				return nil
			}
			if set {
				next = present(in.Value)
			}
		case rDel:
			n := int64(0)
			if st != "" {
				n = 1
			}
			if !out.Unknown && out.Int != n {
				return nil
			}
			next = ""
		case rIncr:
			n, ok := incrOf(st)
			if !out.Unknown && (out.Err == ok || (ok && out.Int != n)) {
				return nil
			}
			if ok {
				next = present(strconv.FormatInt(n, 10))
			}
		case rGetSet:
			if !out.Unknown && out.State != st {
				return nil
			}
			next = present(in.Value)
		case rCAS:
			if !out.Unknown && !out.OK {
				return []any{st} // aborted: see rCAS
			}
			if st != in.Expect {
				if out.Unknown {
					return []any{st}
				}
				return nil
			}
			next = present(in.Value)
		default:
			return nil
		}
		if out.Unknown && next != st {
			return []any{st, next}
		}
		return []any{next}
	},
	Hash: func(state any) uint64 { return strHash(state.(string)) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(redisInput), output.(redisOutput)
		var res string
		switch {
		case out.Unknown:
			res = "?"
		case in.Op == rGet || in.Op == rGetSet:
			res = describeState(out.State)
		case in.Op == rDel:
			res = strconv.FormatInt(out.Int, 10)
		case in.Op == rIncr && out.Err:
			res = "ERR not an integer"
		case in.Op == rIncr:
			res = strconv.FormatInt(out.Int, 10)
		case in.Op == rSetNX || in.Op == rSetXX || in.Op == rCAS:
			res = strconv.FormatBool(out.OK)
		case in.Op == rCmd || in.Op == rBlock:
			res = describeReply(out.Reply)
		case in.Op == rWatch:
			res = "OK"
		default:
			res = "OK"
		}
		stampNote := ""
		if in.Op == rCmd || in.Op == rBlock || in.Op == rWatch {
			stampNote = fmt.Sprintf(", stamp in [%d, %d] ms", in.now.lo-epochMillis, in.now.hi-epochMillis)
		}
		return fmt.Sprintf("%s -> %s (client %d, range %d%s)", in, res, in.client, in.rangeNo, stampNote)
	},
	DescribeState: func(state any) string { return describeState(state.(string)) },
	DescribeOperationMetadata: func(info any) string {
		return fmt.Sprintf("called at %v (virtual)", info)
	},
}

// RedisModel is the model the Redis scenario is checked against.
var RedisModel = redisModel.ToModel()

// redisHistory is History for redisInput: the same logical clock, the same
// treatment of unknown outcomes (a read is dropped; a write stays open
// until Bound closes it).
type redisHistory struct {
	s     *Sim
	clock int64
	ops   []porcupine.Operation
	// at is the virtual time of each tick of clock; stamps, if set, the
	// servers' clock readings (for the stamp bounds of rCmd, rBlock and
	// rWatch).
	at     []int64
	stamps *stampClock
}

func (h *redisHistory) tick() int64 {
	h.clock++
	if h.s != nil {
		h.at = append(h.at, h.s.now)
	}
	return h.clock
}

// virtual is the virtual time of tick t (math.MaxInt64: the end).
func (h *redisHistory) virtual(t int64) int64 {
	if t <= 0 || t > int64(len(h.at)) {
		return h.s.now
	}
	return h.at[t-1]
}

// fillStamps bounds the stamp of every operation that reads it, from the
// virtual times of its call and return (for an unknown outcome: the bound
// that closed it, or the end of the run).
func (h *redisHistory) fillStamps() {
	if h.stamps == nil {
		return
	}
	h.stamps.finish()
	for i := range h.ops {
		in := h.ops[i].Input.(redisInput)
		if in.Op != rCmd && in.Op != rBlock && in.Op != rWatch {
			continue
		}
		in.now = h.stamps.bounds(h.virtual(h.ops[i].Call), h.virtual(h.ops[i].Return))
		h.ops[i].Input = in
	}
}

// stampClock records every reading of a server node's clock (unix ms), as
// the smallest and largest per millisecond of virtual time. Consensus
// stamps a command with a reading its leader makes while the command is in
// flight, raised to the range's last applied stamp (an earlier reading), so
// an operation's stamp is at least the smallest reading made between its
// call and return and at most the largest made until it returned.
type stampClock struct {
	lo, hi []int64 // per virtual ms; lo 0: no reading
	prefix []int64 // finish: the running maximum of hi
}

func (c *stampClock) note(virtual, ms int64) {
	b := int(virtual / int64(time.Millisecond))
	for len(c.lo) <= b {
		c.lo, c.hi = append(c.lo, 0), append(c.hi, 0)
	}
	if c.lo[b] == 0 || ms < c.lo[b] {
		c.lo[b] = ms
	}
	c.hi[b] = max(c.hi[b], ms)
}

func (c *stampClock) finish() {
	c.prefix = make([]int64, len(c.hi))
	m := int64(math.MinInt64 / 4)
	for i, v := range c.hi {
		if c.lo[i] != 0 {
			m = max(m, v)
		}
		c.prefix[i] = m
	}
}

func (c *stampClock) bounds(call, ret int64) stamp {
	first, last := int(call/int64(time.Millisecond)), int(ret/int64(time.Millisecond))
	last = min(last, len(c.lo)-1)
	st := stamp{lo: math.MaxInt64 / 4, hi: math.MinInt64 / 4}
	for b := first; b <= last; b++ {
		if c.lo[b] != 0 {
			st.lo = min(st.lo, c.lo[b])
		}
	}
	if last >= 0 {
		st.hi = c.prefix[last]
	}
	if st.lo > st.hi {
		// No reading in flight (cannot happen for an operation that
		// reached a server): know nothing.
		st.lo = math.MinInt64 / 4
	}
	return st
}

type redisPending struct {
	h  *redisHistory
	op porcupine.Operation
}

func (h *redisHistory) Call(client int, in redisInput) *redisPending {
	in.client = client
	return &redisPending{h: h, op: porcupine.Operation{ClientId: client, Input: in, Call: h.tick(), Metadata: h.s.Elapsed()}}
}

func (p *redisPending) Return(out redisOutput) int64 {
	p.op.Output = out
	p.op.Return = p.h.tick()
	p.h.ops = append(p.h.ops, p.op)
	return p.op.Return
}

func (p *redisPending) Unknown() int {
	if in := p.op.Input.(redisInput); in.Op == rGet || in.Op == rWatch || (in.Op == rCmd && !commandWrites(in.Args[0])) {
		return -1
	}
	p.op.Output = redisOutput{Unknown: true}
	p.op.Return = math.MaxInt64
	p.h.ops = append(p.h.ops, p.op)
	return len(p.h.ops) - 1
}

// Len is the number of recorded operations.
func (h *redisHistory) Len() int { return len(h.ops) }

// Bound closes an unknown write: it cannot take effect after ret (see
// History.Bound).
func (h *redisHistory) Bound(op int, ret int64) {
	if op >= 0 && h.ops[op].Return == math.MaxInt64 {
		h.ops[op].Return = ret
	}
}

// checkRedisLinearizable is CheckLinearizable for the Redis model.
func checkRedisLinearizable(h *redisHistory, vizPath string) error {
	h.fillStamps()
	res, info := porcupine.CheckOperationsVerbose(RedisModel, h.ops, CheckTimeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return fmt.Errorf("linearizability: the check of %d operations did not finish in %v", len(h.ops), CheckTimeout)
	}
	err := &LinearizabilityError{Ops: len(h.ops)}
	if vizPath != "" {
		if werr := os.MkdirAll(filepath.Dir(vizPath), 0o755); werr == nil {
			if werr = porcupine.VisualizePath(RedisModel, info, vizPath); werr == nil {
				err.Path = vizPath
			}
		}
	}
	return err
}

// Steps of the model's tests for the command families, at stamps in ms.
func cmd(at int64, reply string, args ...string) struct {
	in  redisInput
	out redisOutput
} {
	return cmdAt(at, at, reply, args...)
}

func cmdAt(lo, hi int64, reply string, args ...string) struct {
	in  redisInput
	out redisOutput
} {
	return struct {
		in  redisInput
		out redisOutput
	}{redisInput{Op: rCmd, Key: miniKeyOf(args), Args: args, now: stamp{lo, hi}}, redisOutput{Reply: redis.Reply{Str: []byte(reply)}}}
}

func block(at int64, watched bool, reply string, cmds ...[]string) struct {
	in  redisInput
	out redisOutput
} {
	return struct {
		in  redisInput
		out redisOutput
	}{redisInput{Op: rBlock, Key: cmds[0][1], Block: cmds, Watch: watched, now: stamp{at, at}}, redisOutput{Reply: redis.Reply{Str: []byte(reply)}}}
}

// modelStep is one call and its outcome in the model's tests.
type modelStep = struct {
	in  redisInput
	out redisOutput
}

// watchID is watch with a WATCH ID; blockID sets a block's; unknownBlock
// also makes its outcome unknown.
func watchID(at int64, id int) modelStep {
	w := watch(at)
	w.in.WatchID = id
	return w
}

func blockID(b modelStep, id int) modelStep {
	b.in.WatchID = id
	return b
}

func unknownBlock(b modelStep, id int) modelStep {
	b = blockID(b, id)
	b.out.Unknown = true
	return b
}

func watch(at int64) struct {
	in  redisInput
	out redisOutput
} {
	return struct {
		in  redisInput
		out redisOutput
	}{redisInput{Op: rWatch, Key: "k", now: stamp{at, at}}, redisOutput{Reply: redis.Reply{Str: []byte("+OK")}}}
}

// parseTestReply reads a test's reply: RESP2, with "=n" for ":n", "$v"
// for a bulk string v and "_" for a null bulk, the last CRLF left out.
func parseTestReply(t *testing.T, b []byte) redis.Reply {
	s := strings.TrimSuffix(string(b), "\r\n")
	switch {
	case s == "_":
		s = "$-1"
	case strings.HasPrefix(s, "="):
		s = ":" + s[1:]
	case strings.HasPrefix(s, "$"):
		s = fmt.Sprintf("$%d\r\n%s", len(s)-1, s[1:])
	}
	r, n, err := redis.ParseReply([]byte(s + "\r\n"))
	if err != nil || n != len(s)+2 {
		t.Fatalf("test reply %q: %v", s, err)
	}
	return r
}

// The model's own tests: what it must accept and refuse.
func TestRedisModel(t *testing.T) {
	type step struct {
		in  redisInput
		out redisOutput
	}
	cases := []struct {
		name  string
		steps []step // sequential: each returns before the next is called
		ok    bool
	}{
		{"set get", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=1"}}}, true},
		{"stale get", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{}}}, false},
		{"incr missing", []step{{redisInput{Op: rIncr, Key: "k"}, redisOutput{Int: 1}}, {redisInput{Op: rIncr, Key: "k"}, redisOutput{Int: 2}}}, true},
		{"incr lost", []step{{redisInput{Op: rIncr, Key: "k"}, redisOutput{Int: 1}}, {redisInput{Op: rIncr, Key: "k"}, redisOutput{Int: 1}}}, false},
		{"incr not integer", []step{{redisInput{Op: rSet, Key: "k", Value: "c1"}, redisOutput{}}, {redisInput{Op: rIncr, Key: "k"}, redisOutput{Err: true}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=c1"}}}, true},
		{"incr error on integer", []step{{redisInput{Op: rSet, Key: "k", Value: "5"}, redisOutput{}}, {redisInput{Op: rIncr, Key: "k"}, redisOutput{Err: true}}}, false},
		{"nx on present", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rSetNX, Key: "k", Value: "2"}, redisOutput{OK: true}}}, false},
		{"xx on missing", []step{{redisInput{Op: rSetXX, Key: "k", Value: "2"}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{}}}, true},
		{"del counts", []step{{redisInput{Op: rDel, Key: "k"}, redisOutput{Int: 1}}}, false},
		{"getset", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rGetSet, Key: "k", Value: "2"}, redisOutput{State: "=1"}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=2"}}}, true},
		{"cas ok", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rCAS, Key: "k", Value: "2", Expect: "=1"}, redisOutput{OK: true}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=2"}}}, true},
		{"cas on changed key", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rCAS, Key: "k", Value: "2", Expect: ""}, redisOutput{OK: true}}}, false},
		{"cas abort", []step{{redisInput{Op: rCAS, Key: "k", Value: "2", Expect: ""}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{}}}, true},
		{"unknown set either way", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{Unknown: true}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=1"}}}, true},
		// The command families: every reply, with stamps in ms.
		{"hash del empties", []step{cmd(0, "=1", "HSET", "k", "f", "v"), cmd(1, "=1", "HDEL", "k", "f"), cmd(2, "=0", "EXISTS", "k"), cmd(3, "+none", "TYPE", "k")}, true},
		{"emptied list stays", []step{cmd(0, "=1", "RPUSH", "k", "a"), cmd(1, "$a", "LPOP", "k"), cmd(2, "+list", "TYPE", "k")}, false},
		{"set over hash", []step{cmd(0, "=1", "HSET", "k", "f", "v"), cmd(1, "+OK", "SET", "k", "x"), cmd(2, "+string", "TYPE", "k"), cmd(3, "-WRONGTYPE Operation against a key holding the wrong kind of value", "HGET", "k", "f")}, true},
		{"wrongtype", []step{cmd(0, "=1", "SADD", "k", "m"), cmd(1, "=1", "LPUSH", "k", "a")}, false},
		{"ttl read after", []step{cmd(0, "+OK", "SET", "k", "v", "PX", "50"), cmd(100, "_", "GET", "k")}, true},
		{"ttl read after sees", []step{cmd(0, "+OK", "SET", "k", "v", "PX", "50"), cmd(100, "$v", "GET", "k")}, false},
		{"ttl read before", []step{cmd(0, "+OK", "SET", "k", "v", "PX", "50"), cmd(20, "$v", "GET", "k")}, true},
		{"ttl read around either", []step{cmdAt(0, 0, "+OK", "SET", "k", "v", "PX", "50"), cmdAt(40, 60, "_", "GET", "k"), cmdAt(40, 60, "$v", "GET", "k")}, true},
		{"persist keeps", []step{cmd(0, "=1", "HSET", "k", "f", "v"), cmd(1, "=1", "PEXPIRE", "k", "50"), cmd(2, "=1", "PERSIST", "k"), cmd(100, "=1", "HLEN", "k")}, true},
		{"persist lost", []step{cmd(0, "=1", "HSET", "k", "f", "v"), cmd(1, "=1", "PEXPIRE", "k", "50"), cmd(2, "=1", "PERSIST", "k"), cmd(100, "=0", "HLEN", "k")}, false},
		{"pttl", []step{cmdAt(0, 5, "+OK", "SET", "k", "v", "PX", "50"), cmdAt(10, 10, "=45", "PTTL", "k"), cmd(11, "=1", "PERSIST", "k"), cmd(12, "=-1", "PTTL", "k")}, true},
		{"pttl wrong", []step{cmd(0, "+OK", "SET", "k", "v", "PX", "50"), cmd(10, "=30", "PTTL", "k")}, false},
		{"set clears ttl", []step{cmd(0, "+OK", "SET", "k", "v", "PX", "50"), cmd(1, "+OK", "SET", "k", "w"), cmd(100, "$w", "GET", "k")}, true},
		{"incr after expiry", []step{cmd(0, "+OK", "SET", "k", "5", "PX", "50"), cmd(100, "=6", "INCR", "k")}, false},
		{"sintercard limit", []step{cmd(0, "=2", "SADD", "k", "a", "b"), cmd(1, "=2", "SINTERCARD", "1", "k"), cmd(2, "=1", "SINTERCARD", "1", "k", "LIMIT", "1"),
			cmd(3, "=2", "SINTERCARD", "1", "k", "LIMIT", "0"), cmd(4, "=0", "SINTERCARD", "1", "nokey")}, true},
		{"sintercard ignores limit", []step{cmd(0, "=2", "SADD", "k", "a", "b"), cmd(1, "=2", "SINTERCARD", "1", "k", "LIMIT", "1")}, false},
		{"setbit clears", []step{cmd(0, "+OK", "SET", "k", "c"), cmd(1, "=1", "SETBIT", "k", "1", "0"), cmd(2, "=0", "GETBIT", "k", "1"), cmd(3, "$#", "GET", "k")}, true},
		{"setbit kept a one", []step{cmd(0, "+OK", "SET", "k", "c"), cmd(1, "=1", "SETBIT", "k", "1", "0"), cmd(2, "=1", "GETBIT", "k", "1")}, false},
		{"setbit grows", []step{cmd(0, "=0", "SETBIT", "k", "17", "1"), cmd(1, "$\x00\x00@", "GET", "k"), cmd(2, "=1", "BITCOUNT", "k", "-1", "-1"), cmd(3, "=0", "BITCOUNT", "k", "0", "16", "BIT")}, true},
		{"xdel counts down", []step{cmd(0, "$1-1", "XADD", "k", "1-1", "f", "a"), cmd(1, "$1-2", "XADD", "k", "1-*", "f", "b"), cmd(2, "=1", "XDEL", "k", "1-1"),
			cmd(3, "=1", "XLEN", "k"), cmd(4, "=1", "XDEL", "k", "1-2"), cmd(5, "=0", "XLEN", "k"), cmd(6, "+stream", "TYPE", "k")}, true},
		{"xdel kept the length", []step{cmd(0, "$1-1", "XADD", "k", "1-1", "f", "a"), cmd(1, "$1-2", "XADD", "k", "1-2", "f", "b"), cmd(2, "=1", "XDEL", "k", "1-1"),
			cmd(3, "=2", "XLEN", "k")}, false},
		{"xadd floor survives xdel", []step{cmd(0, "$5-0", "XADD", "k", "5-0", "f", "a"), cmd(1, "=1", "XDEL", "k", "5-0"),
			cmd(2, "-ERR The ID specified in XADD is equal or smaller than the target stream top item", "XADD", "k", "4-0", "f", "b"), cmd(3, "$5-1", "XADD", "k", "5-*", "f", "c")}, true},
		{"xadd maxlen", []step{cmd(0, "$1-0", "XADD", "k", "1-0", "f", "a"), cmd(1, "$2-0", "XADD", "k", "MAXLEN", "1", "2-0", "f", "b"),
			cmd(2, "*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nf\r\n$1\r\nb", "XRANGE", "k", "-", "+"), cmd(3, "=1", "XTRIM", "k", "MAXLEN", "0"), cmd(4, "*0", "XRANGE", "k", "-", "+")}, true},
		// 0x1e and 0x1f separate the model's encodings: such a value is quoted.
		{"setbit separator bytes", []step{cmd(0, "=0", "SETBIT", "k", "3", "1"), cmd(1, "=0", "SETBIT", "k", "4", "1"), cmd(2, "=0", "SETBIT", "k", "5", "1"),
			cmd(3, "=0", "SETBIT", "k", "6", "1"), cmd(4, "=1", "PEXPIRE", "k", "50"), cmd(5, "$\x1e", "GET", "k"), cmd(6, "=0", "SETBIT", "k", "7", "1"),
			cmd(7, "$\x1f", "GET", "k"), cmd(8, "=5", "BITCOUNT", "k"), cmd(100, "=0", "EXISTS", "k")}, true},
		{"block wrongtype slot", []step{cmd(0, "=1", "SADD", "k", "m"), block(1, false, "*3\r\n:1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:2\r\n", []string{"SADD", "k", "n"}, []string{"GET", "k"}, []string{"SCARD", "k"}), cmd(2, "=2", "SCARD", "k")}, true},
		{"block stops at error", []step{cmd(0, "=1", "SADD", "k", "m"), block(1, false, "-WRONGTYPE Operation against a key holding the wrong kind of value", []string{"GET", "k"}, []string{"SADD", "k", "n"})}, false},
		{"execabort", []step{block(0, false, "-EXECABORT Transaction discarded because of previous errors.", []string{"SADD", "k", "m"}, []string{"SADD", "k"}), cmd(1, "=0", "EXISTS", "k")}, true},
		{"execabort applied", []step{block(0, false, "-EXECABORT Transaction discarded because of previous errors.", []string{"SADD", "k", "m"}, []string{"SADD", "k"}), cmd(1, "=1", "EXISTS", "k")}, false},
		{"watch ran unchanged", []step{cmd(0, "=1", "HSET", "k", "f", "v"), watch(1), block(2, true, "*1\r\n:0\r\n", []string{"HSET", "k", "f", "w"})}, true},
		{"watch ran after change", []step{cmd(0, "=1", "HSET", "k", "f", "v"), watch(1), cmd(2, "=0", "HSET", "k", "f", "x"), block(3, true, "*1\r\n:0\r\n", []string{"HSET", "k", "f", "w"})}, false},
		{"watch aborted", []step{cmd(0, "=1", "HSET", "k", "f", "v"), watch(1), block(2, true, "*-1\r\n", []string{"HSET", "k", "f", "w"}), cmd(3, "$v", "HGET", "k", "f")}, true},
		// Client 0's EXEC of an unknown outcome applies after its next
		// WATCH, with the digests of its own WATCH (1); the next EXEC,
		// guarded by WATCH 2, aborts.
		{"late exec keeps its watch", []step{cmd(0, "=1", "HSET", "k", "f", "v"), watchID(1, 1), unknownBlock(block(2, true, "*1\r\n:0\r\n", []string{"HSET", "k", "f", "w"}), 1),
			watchID(3, 2), cmd(4, "$v", "HGET", "k", "f"), blockID(block(5, true, "*-1\r\n", []string{"HDEL", "k", "f"}), 2), cmd(6, "$w", "HGET", "k", "f")}, true},
		{"watch of expiring key", []step{cmd(0, "=1", "SADD", "k", "m"), cmd(0, "=1", "PEXPIRE", "k", "50"), watch(100), block(101, true, "*1\r\n:1\r\n", []string{"SADD", "k", "m"})}, true},
	}
	for _, c := range cases {
		s := New(1)
		h := &redisHistory{s: s}
		for i, st := range c.steps {
			if st.in.Op == rCmd || st.in.Op == rBlock || st.in.Op == rWatch {
				// Replies are written as RESP2 without the final CRLF,
				// "=n" for an integer and "_" for a null.
				c.steps[i].out.Reply = parseTestReply(t, st.out.Reply.Str)
			}
		}
		for _, st := range c.steps {
			p := h.Call(0, st.in)
			if st.out.Unknown {
				p.Unknown()
			} else {
				p.Return(st.out)
			}
		}
		err := checkRedisLinearizable(h, "")
		if (err == nil) != c.ok {
			t.Errorf("%s: check says %v, want ok=%v", c.name, err, c.ok)
		}
		s.Close()
	}
}
