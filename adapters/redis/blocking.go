package redis

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
)

// Blocking commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP, and XREAD and XREADGROUP with BLOCK (Blocks). TryBlocking
// is the step that does not block; it is a write (it pops), so it goes
// through the Raft log like any write. When it is not ready the caller
// parks the client and retries after a write to one of the command's keys
// (Keys lists them), and on timeout (BlockTimeout) replies TimeoutReply.

var blockingHandlers = map[string]func(c *ctx) (Reply, bool, error){
	"blpop":      func(c *ctx) (Reply, bool, error) { return c.bpop(true) },
	"brpop":      func(c *ctx) (Reply, bool, error) { return c.bpop(false) },
	"blmove":     cmdBLMove,
	"brpoplpush": cmdBRPopLPush,
	"bzpopmin":   func(c *ctx) (Reply, bool, error) { return c.bzpop(false) },
	"bzpopmax":   func(c *ctx) (Reply, bool, error) { return c.bzpop(true) },
	"blmpop":     func(c *ctx) (Reply, bool, error) { return c.bmpop(cmdLMPop, "left", "right") },
	"bzmpop":     func(c *ctx) (Reply, bool, error) { return c.bmpop(cmdZMPop, "min", "max") },
	"xread":      func(c *ctx) (Reply, bool, error) { return c.xreadStep(false) },
	"xreadgroup": func(c *ctx) (Reply, bool, error) { return c.xreadStep(true) },
}

// Blocks reports whether a keyed command blocks, and so runs through
// TryBlocking rather than Exec: XREAD and XREADGROUP given BLOCK (with
// arguments that parse; if they do not, Exec answers the error). Inside
// MULTI it runs through Exec, which does not block, as in Redis.
func Blocks(args [][]byte) bool {
	if len(args) == 0 {
		return false
	}
	spec, ok := lookupBytes(args[0])
	if !ok || (spec.Name != "xread" && spec.Name != "xreadgroup") || !spec.ArityOK(len(args)) {
		return false
	}
	a, err := parseXRead(args, spec.Name == "xreadgroup")
	return err == nil && a.block >= 0
}

// xreadBlockedCount is what COUNT a blocked XREAD serves without one
// (XREAD_BLOCKED_DEFAULT_COUNT).
const xreadBlockedCount = "1000"

// xreadStep is XREAD's or XREADGROUP's step: served now, or not ready with
// the command to retry as its reply (RetryArgs reads it): the same, with
// each "$" replaced by the ID it stands for now (so that the wait is for
// entries after it, not after whatever is last when the step runs again)
// and, given no COUNT, COUNT 1000, as Redis serves a blocked client.
func (c *ctx) xreadStep(readGroup bool) (Reply, bool, error) {
	r, ids, err := c.xread(readGroup)
	if err != nil || r.Kind != KindNullArray {
		return r, true, err
	}
	a, _ := parseXRead(c.args, readGroup)
	streams := len(c.args) - 2*len(a.ids) - 1 // where STREAMS is
	retry := append([][]byte(nil), c.args[:streams]...)
	if !hasCount(c.args) {
		// Before STREAMS, where it changes no key position.
		retry = append(retry, []byte("COUNT"), []byte(xreadBlockedCount))
	}
	retry = append(retry, c.args[streams:len(c.args)-len(a.ids)]...)
	for i, id := range a.ids {
		if string(cstr(id)) == "$" {
			id = []byte(ids[i].String())
		}
		retry = append(retry, id)
	}
	return bulks(retry), false, nil
}

// hasCount reports whether XREAD's options (before STREAMS) hold COUNT.
func hasCount(args [][]byte) bool {
	for i := 1; i < len(args)-1; i++ {
		switch {
		case cEqualFold(args[i], "streams"):
			return false
		case cEqualFold(args[i], "count"):
			return true
		case cEqualFold(args[i], "block"):
			i++
		case cEqualFold(args[i], "group"):
			i += 2
		}
	}
	return false
}

// RetryArgs is the command a blocking step that was not ready asks to be
// retried with instead of its own (XREAD's, see TryBlocking), or nil.
func RetryArgs(notReady Reply) [][]byte {
	if notReady.Kind != KindArray || len(notReady.Elems) == 0 {
		return nil
	}
	args := make([][]byte, len(notReady.Elems))
	for i, e := range notReady.Elems {
		if e.Kind != KindBulk {
			return nil
		}
		args[i] = e.Str
	}
	return args
}

// timeoutArg is where a blocking command's timeout is: first for BLMPOP
// and BZMPOP, last for the others.
func timeoutArg(args [][]byte) []byte {
	if name := string(bytes.ToLower(args[0])); name == "blmpop" || name == "bzmpop" {
		return args[1]
	}
	return args[len(args)-1]
}

// TryBlocking runs the non-blocking step of a blocking command (args[0] is
// its name) on st at time now (unix ms, from the leader). ready is true when
// the reply is final: an element was moved, or an error. When ready is
// false nothing was written, and the reply is meaningless, but for XREAD
// and XREADGROUP, whose reply is the command to retry with (RetryArgs).
func TryBlocking(st Store, now int64, args [][]byte) (r Reply, ready bool) {
	return tryBlocking(st, now, args, nil)
}

func tryBlocking(st Store, now int64, args [][]byte, ev *events) (r Reply, ready bool) {
	if len(args) == 0 {
		return Error("ERR empty command"), true
	}
	spec, ok := lookupBytes(args[0])
	if !ok || blockingHandlers[spec.Name] == nil {
		return unknownCommand(args), true
	}
	if !spec.ArityOK(len(args)) {
		return arityError(spec.Name), true
	}
	c := &ctx{st: st, now: now, args: args, spec: spec, write: true, ev: ev}
	defer func() {
		if p := recover(); p != nil {
			rethrowCrash(p)
			r, ready = internalError(fmt.Errorf("redis: panic in %s: %v", spec.Name, p)), true
		}
	}()
	reply, ready, err := blockingHandlers[spec.Name](c)
	if err != nil {
		var ue userError
		if errors.As(err, &ue) {
			return Error(string(ue)), true
		}
		return internalError(err), true
	}
	return reply, ready
}

// TimeoutReply is what a blocking command answers when its timeout passes:
// a null array, for every list, sorted set and stream command (Redis 7.0's
// replyToBlockedClientTimedOut), even BLMOVE whose immediate answer is a
// bulk string.
func TimeoutReply(name string) Reply { return NullArray() }

// BlockTimeout is the timeout of a blocking command whose TryBlocking was not
// ready (so its arguments are valid), in milliseconds; 0 means forever.
func BlockTimeout(args [][]byte) int64 {
	if name := string(bytes.ToLower(args[0])); name == "xread" || name == "xreadgroup" {
		a, _ := parseXRead(args, name == "xreadgroup")
		return max(a.block, 0)
	}
	ms, err := parseTimeout(timeoutArg(args))
	if err != nil {
		return 0
	}
	return ms
}

// parseTimeout is getTimeoutFromObjectOrReply in seconds: a long double
// scaled to ms and rounded up (ceill, so that a timeout under a millisecond
// still expires: 0.0001 waits 1 ms, and only 0, or a negative fraction
// that rounds up to it, waits forever), then cast as the C cast does (an
// infinity or a value beyond int64 becomes the x87 "integer indefinite",
// which is negative).
func parseTimeout(b []byte) (int64, error) {
	f, ok := parseLongDouble(b)
	if !ok {
		return 0, userError("ERR timeout is not a float or out of range")
	}
	if f.IsInf() {
		return 0, userError("ERR timeout is negative")
	}
	ms := new(big.Float).SetPrec(longDoublePrec).Mul(f, big.NewFloat(1000))
	i, acc := ms.Int64()
	if acc != big.Exact && (i == math.MinInt64 || i == math.MaxInt64) {
		return 0, userError("ERR timeout is negative")
	}
	if acc == big.Below { // truncated a positive fraction: round up
		i++
	}
	if i < 0 {
		return 0, userError("ERR timeout is negative")
	}
	return i, nil
}

// timeoutCheck validates the timeout and that the deadline fits in int64.
func (c *ctx) timeoutCheck() error {
	ms, err := parseTimeout(timeoutArg(c.args))
	if err != nil {
		return err
	}
	if ms > 0 && ms > math.MaxInt64-c.now {
		return userError("ERR timeout is out of range")
	}
	return nil
}

// bpop is blockingPopGenericCommand: the first non-empty list among the
// keys, in order, gives its head or tail; a key of another type met before
// it is WRONGTYPE.
func (c *ctx) bpop(left bool) (Reply, bool, error) {
	if err := c.timeoutCheck(); err != nil {
		return Reply{}, true, err
	}
	for _, k := range c.args[1 : len(c.args)-1] {
		o, err := c.lookupType(k, typeList)
		if err != nil {
			return Reply{}, true, err
		}
		if !o.exists {
			continue
		}
		v, err := c.pop(o, left)
		if err != nil {
			return Reply{}, true, err
		}
		return Array(Bulk(k), Bulk(v)), true, c.popped(o, left)
	}
	return NullArray(), false, nil
}

// bzpop is bzpopGenericCommand: the first non-empty sorted set among the
// keys, in order, gives its lowest (or highest) member as [key, member,
// score].
func (c *ctx) bzpop(max bool) (Reply, bool, error) {
	if err := c.timeoutCheck(); err != nil {
		return Reply{}, true, err
	}
	for _, k := range c.args[1 : len(c.args)-1] {
		o, err := c.lookupType(k, typeZSet)
		if err != nil {
			return Reply{}, true, err
		}
		if !o.exists {
			continue
		}
		res, err := c.zpopN(o, 1, max)
		if err != nil {
			return Reply{}, true, err
		}
		return Array(Bulk(k), Bulk(res[0].member), Double(res[0].score)), true, nil
	}
	return NullArray(), false, nil
}

// bmpop is BLMPOP or BZMPOP: LMPOP's or ZMPOP's arguments after the
// timeout (mpop, which reads them from args[1], sees them there), checked
// before the timeout, as lmpopGenericCommand does.
func (c *ctx) bmpop(mpop handler, first, second string) (Reply, bool, error) {
	inner := *c
	inner.args = append([][]byte{c.args[0]}, c.args[2:]...)
	if _, _, _, err := inner.mpopArgs(first, second); err != nil {
		return Reply{}, true, err
	}
	if err := c.timeoutCheck(); err != nil {
		return Reply{}, true, err
	}
	r, err := mpop(&inner)
	if err != nil {
		return Reply{}, true, err
	}
	return r, r.Kind != KindNullArray, nil
}

func cmdBLMove(c *ctx) (Reply, bool, error) {
	fromLeft, err := parseWhere(c.args[3])
	if err != nil {
		return Reply{}, true, err
	}
	toLeft, err := parseWhere(c.args[4])
	if err != nil {
		return Reply{}, true, err
	}
	return c.blmove(fromLeft, toLeft)
}

func cmdBRPopLPush(c *ctx) (Reply, bool, error) { return c.blmove(false, true) }

func (c *ctx) blmove(fromLeft, toLeft bool) (Reply, bool, error) {
	if err := c.timeoutCheck(); err != nil {
		return Reply{}, true, err
	}
	r, ok, err := c.lmove(c.args[1], c.args[2], fromLeft, toLeft)
	if err != nil {
		return Reply{}, true, err
	}
	return r, ok, nil
}
