package redis

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Lists: items at positions head .. head+count-1 (see doc.go). Index i of
// the list is position head+i.

// errListFull is an internal error for a list whose positions would leave
// int64: it takes 2^63 pushes on one side, so it means corruption.
var errListFull = errors.New("redis: list positions exhausted")

// listRange reads items [from, to] (0-based, inclusive, within bounds) and
// checks that their positions are contiguous.
func (c *ctx) listRange(o *obj, from, to int64) ([][]byte, error) {
	if from > to {
		return nil, nil
	}
	out := make([][]byte, 0, min(to-from+1, 1024))
	want := o.m.head + from
	end := listKey(o.rk, o.m.head+to+1)
	if o.m.head+to+1 == o.m.head+o.m.count {
		end = prefixEnd(listPrefix(o.rk))
	}
	err := c.each(listKey(o.rk, want), end, func(kv KV) (bool, error) {
		if len(kv.Key) != len(o.rk)+9 || int64(binary.BigEndian.Uint64(kv.Key[len(o.rk)+1:])^(1<<63)) != want {
			return false, corruptf("list %q: item record %x out of place", o.key, kv.Key)
		}
		out = append(out, kv.Value)
		want++
		return true, nil
	})
	if err == nil && int64(len(out)) != to-from+1 {
		err = corruptf("list %q: %d items where %d expected", o.key, len(out), to-from+1)
	}
	return out, err
}

func (c *ctx) listIndex(o *obj, i int64) ([]byte, error) {
	v, found, err := c.st.Get(listKey(o.rk, o.m.head+i))
	if err == nil && !found {
		err = corruptf("list %q: item %d missing", o.key, i)
	}
	return v, err
}

// push adds one item at the head (left) or tail; the caller saves o.
func (c *ctx) push(o *obj, left bool, item []byte) error {
	var pos int64
	if left {
		if o.m.head == minInt64 {
			return errListFull
		}
		o.m.head--
		pos = o.m.head
	} else {
		if o.m.head+o.m.count == maxInt64 {
			return errListFull
		}
		pos = o.m.head + o.m.count
	}
	o.m.count++
	return c.st.Set(listKey(o.rk, pos), item)
}

// pop removes one item from the head (left) or tail; the caller saves or
// removes o.
func (c *ctx) pop(o *obj, left bool) ([]byte, error) {
	i := o.m.count - 1
	if left {
		i = 0
	}
	v, err := c.listIndex(o, i)
	if err != nil {
		return nil, err
	}
	if err := c.st.Delete(listKey(o.rk, o.m.head+i)); err != nil {
		return nil, err
	}
	if left {
		o.m.head++
	}
	o.m.count--
	return v, nil
}

// popped is Redis's listElementsRemoved: it saves the list items were
// popped from (left: at its head), or deletes it once empty, with the
// pop's event, then "del".
func (c *ctx) popped(o *obj, left bool) error {
	if err := c.removed(o, NotifyList, popEvent(left)); err != nil {
		return err
	}
	return nil
}

func popEvent(left bool) string {
	if left {
		return "lpop"
	}
	return "rpop"
}

func pushEvent(left bool) string {
	if left {
		return "lpush"
	}
	return "rpush"
}

// rewriteList replaces all items of o by items, starting at the same head.
func (c *ctx) rewriteList(o *obj, items [][]byte) error {
	p := listPrefix(o.rk)
	if err := c.st.DeleteRange(p, prefixEnd(p)); err != nil {
		return err
	}
	o.m.count = 0
	for _, it := range items {
		if err := c.push(o, false, it); err != nil {
			return err
		}
	}
	return c.saveOrRemove(o)
}

func (c *ctx) pushGeneric(left, onlyExisting bool) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		if onlyExisting {
			return Int(0), nil
		}
		o.m = meta{typ: typeList}
	}
	for _, it := range c.args[2:] {
		if err := c.push(o, left, it); err != nil {
			return Reply{}, err
		}
	}
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyList, pushEvent(left), o.key)
	return Int(o.m.count), nil
}

func cmdLPush(c *ctx) (Reply, error)  { return c.pushGeneric(true, false) }
func cmdRPush(c *ctx) (Reply, error)  { return c.pushGeneric(false, false) }
func cmdLPushX(c *ctx) (Reply, error) { return c.pushGeneric(true, true) }
func cmdRPushX(c *ctx) (Reply, error) { return c.pushGeneric(false, true) }

func (c *ctx) popGeneric(left bool) (Reply, error) {
	if len(c.args) > 3 {
		return Reply{}, c.arityErr()
	}
	hasCount := len(c.args) == 3
	var count int64
	if hasCount {
		var err error
		if count, err = argPositive(c.args[2], ""); err != nil {
			return Reply{}, err
		}
	}
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		if hasCount {
			return NullArray(), nil
		}
		return Null(), nil
	}
	if !hasCount {
		v, err := c.pop(o, left)
		if err != nil {
			return Reply{}, err
		}
		return Bulk(v), c.popped(o, left)
	}
	if count == 0 {
		return Array(), nil
	}
	count = min(count, o.m.count)
	var items [][]byte
	if left {
		items, err = c.listRange(o, 0, count-1)
	} else {
		items, err = c.listRange(o, o.m.count-count, o.m.count-1)
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	if err != nil {
		return Reply{}, err
	}
	first, last := o.m.head, o.m.head+count
	if !left {
		first, last = o.m.head+o.m.count-count, o.m.head+o.m.count
	}
	if err := c.st.DeleteRange(listKey(o.rk, first), listKeyEnd(o.rk, last)); err != nil {
		return Reply{}, err
	}
	if left {
		o.m.head += count
	}
	o.m.count -= count
	return bulks(items), c.popped(o, left)
}

// listKeyEnd is the exclusive end bound for positions below pos.
func listKeyEnd(rk []byte, pos int64) []byte {
	if pos == maxInt64 {
		return prefixEnd(listPrefix(rk))
	}
	return listKey(rk, pos)
}

func cmdLPop(c *ctx) (Reply, error) { return c.popGeneric(true) }

// cmdLMPop is LMPOP numkeys key... LEFT|RIGHT [COUNT count]: the first
// non-empty list among the keys gives up to count elements from the
// chosen end, as [key, [element, ...]]; none, a null array.
func cmdLMPop(c *ctx) (Reply, error) {
	keys, right, count, err := c.mpopArgs("left", "right")
	if err != nil {
		return Reply{}, err
	}
	for _, k := range keys {
		o, err := c.lookupType(k, typeList)
		if err != nil {
			return Reply{}, err
		}
		if !o.exists {
			continue
		}
		var items []Reply
		for range min(count, o.m.count) {
			v, err := c.pop(o, !right)
			if err != nil {
				return Reply{}, err
			}
			items = append(items, Bulk(v))
		}
		return Array(Bulk(k), Array(items...)), c.popped(o, !right)
	}
	return NullArray(), nil
}

// mpopArgs parses "numkeys key... WHERE [COUNT count]" from args[1] as
// lmpopGenericCommand and zmpopGenericCommand do: the keys, whether WHERE
// is the second of the two ends named (RIGHT, MAX), and the count
// (default 1).
func (c *ctx) mpopArgs(first, second string) (keys [][]byte, isSecond bool, count int64, err error) {
	numkeys, ok := parseInt(c.args[1])
	if !ok || numkeys < 1 {
		return nil, false, 0, userError("ERR numkeys should be greater than 0")
	}
	where := 2 + numkeys
	if where >= int64(len(c.args)) {
		return nil, false, 0, errSyntax
	}
	switch {
	case eqFold(c.args[where], first):
	case eqFold(c.args[where], second):
		isSecond = true
	default:
		return nil, false, 0, errSyntax
	}
	count = -1
	for j := int(where) + 1; j < len(c.args); j++ {
		if count != -1 || !eqFold(c.args[j], "count") || j+1 >= len(c.args) {
			return nil, false, 0, errSyntax
		}
		j++
		if n, ok := parseInt(c.args[j]); ok && n >= 1 {
			count = n
		} else {
			return nil, false, 0, userError("ERR count should be greater than 0")
		}
	}
	if count == -1 {
		count = 1
	}
	return c.args[2:where], isSecond, count, nil
}
func cmdRPop(c *ctx) (Reply, error) { return c.popGeneric(false) }

func cmdLLen(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil {
		return Reply{}, err
	}
	return Int(o.m.count), nil
}

// clampRange turns Redis start/stop indexes into [from, to] within a list
// of n items, or ok false for an empty range (LRANGE and ZRANGE's rule).
func clampRange(start, stop, n int64) (from, to int64, ok bool) {
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	if start < 0 {
		start = 0
	}
	if start > stop || start >= n {
		return 0, 0, false
	}
	if stop >= n {
		stop = n - 1
	}
	return start, stop, true
}

func cmdLRange(c *ctx) (Reply, error) {
	start, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	stop, err := argInt(c.args[3])
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil || !o.exists {
		return Array(), err
	}
	from, to, ok := clampRange(start, stop, o.m.count)
	if !ok {
		return Array(), nil
	}
	items, err := c.listRange(o, from, to)
	return bulks(items), err
}

func cmdLIndex(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil || !o.exists {
		return Null(), err
	}
	i, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if i < 0 {
		i += o.m.count
	}
	if i < 0 || i >= o.m.count {
		return Null(), nil
	}
	v, err := c.listIndex(o, i)
	return Bulk(v), err
}

func cmdLSet(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		return Reply{}, errNoKey
	}
	i, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if i < 0 {
		i += o.m.count
	}
	if i < 0 || i >= o.m.count {
		return Reply{}, errOutOfRange
	}
	if err := c.st.Set(listKey(o.rk, o.m.head+i), c.args[3]); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyList, "lset", o.key)
	return OK(), nil
}

func cmdLRem(c *ctx) (Reply, error) {
	count, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil || !o.exists {
		return Int(0), err
	}
	items, err := c.listRange(o, 0, o.m.count-1)
	if err != nil {
		return Reply{}, err
	}
	elem := c.args[3]
	remove := make([]bool, len(items))
	var removed int64
	if count >= 0 {
		for i := range items {
			if bytes.Equal(items[i], elem) {
				remove[i] = true
				removed++
				if removed == count && !mutation.On(MutLRemIgnoresCount) {
					break
				}
			}
		}
	} else {
		for i := len(items) - 1; i >= 0; i-- {
			if bytes.Equal(items[i], elem) {
				remove[i] = true
				removed++
				if removed == -count {
					break
				}
			}
		}
	}
	if removed == 0 {
		return Int(0), nil
	}
	kept := make([][]byte, 0, len(items)-int(removed))
	for i, it := range items {
		if !remove[i] {
			kept = append(kept, it)
		}
	}
	if err := c.rewriteList(o, kept); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyList, "lrem", o.key)
	if !o.exists {
		c.notify(NotifyGeneric, "del", o.key)
	}
	return Int(removed), nil
}

func cmdLTrim(c *ctx) (Reply, error) {
	start, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	stop, err := argInt(c.args[3])
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil || !o.exists {
		return OK(), err
	}
	n := o.m.count
	from, to, ok := clampRange(start, stop, n)
	if !ok {
		if err := c.remove(o); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyList, "ltrim", o.key)
		c.notify(NotifyGeneric, "del", o.key)
		return OK(), nil
	}
	if from > 0 {
		if err := c.st.DeleteRange(listKey(o.rk, o.m.head), listKey(o.rk, o.m.head+from)); err != nil {
			return Reply{}, err
		}
	}
	if to < n-1 {
		if err := c.st.DeleteRange(listKey(o.rk, o.m.head+to+1), listKeyEnd(o.rk, o.m.head+n)); err != nil {
			return Reply{}, err
		}
	}
	o.m.head += from
	o.m.count = to - from + 1
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyList, "ltrim", o.key)
	return OK(), nil
}

func cmdLInsert(c *ctx) (Reply, error) {
	var after bool
	switch {
	case eqFold(c.args[2], "after"):
		after = true
	case eqFold(c.args[2], "before"):
	default:
		return Reply{}, errSyntax
	}
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil || !o.exists {
		return Int(0), err
	}
	items, err := c.listRange(o, 0, o.m.count-1)
	if err != nil {
		return Reply{}, err
	}
	at := -1
	for i, it := range items {
		if bytes.Equal(it, c.args[3]) {
			at = i
			break
		}
	}
	if at < 0 {
		return Int(-1), nil
	}
	if after {
		at++
	}
	// Shift the shorter side by one position to open a gap at index at.
	elem := c.args[4]
	if at < len(items)-at {
		if o.m.head == minInt64 {
			return Reply{}, errListFull
		}
		for i := 0; i < at; i++ {
			if err := c.st.Set(listKey(o.rk, o.m.head+int64(i)-1), items[i]); err != nil {
				return Reply{}, err
			}
		}
		o.m.head--
	} else {
		if o.m.head+o.m.count == maxInt64 {
			return Reply{}, errListFull
		}
		for i := len(items) - 1; i >= at; i-- {
			if err := c.st.Set(listKey(o.rk, o.m.head+int64(i)+1), items[i]); err != nil {
				return Reply{}, err
			}
		}
	}
	if err := c.st.Set(listKey(o.rk, o.m.head+int64(at)), elem); err != nil {
		return Reply{}, err
	}
	o.m.count++
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyList, "linsert", o.key)
	return Int(o.m.count), nil
}

func cmdLPos(c *ctx) (Reply, error) {
	rank, count, maxLen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(c.args); j++ {
		more := j+1 < len(c.args)
		switch {
		case eqFold(c.args[j], "rank") && more:
			j++
			v, err := argInt(c.args[j])
			if err != nil {
				return Reply{}, err
			}
			if v == 0 {
				return Reply{}, userError("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
			}
			rank = v
		case eqFold(c.args[j], "count") && more:
			j++
			v, err := argPositive(c.args[j], "COUNT can't be negative")
			if err != nil {
				return Reply{}, err
			}
			count = v
		case eqFold(c.args[j], "maxlen") && more:
			j++
			v, err := argPositive(c.args[j], "MAXLEN can't be negative")
			if err != nil {
				return Reply{}, err
			}
			maxLen = v
		default:
			return Reply{}, errSyntax
		}
	}
	fromTail := rank < 0
	// Redis negates the rank in C: -LONG_MIN stays LONG_MIN, so every
	// match qualifies and COUNT never stops the walk.
	wrapped := rank == minInt64
	if fromTail && !wrapped {
		rank = -rank
	}
	o, err := c.lookupType(c.args[1], typeList)
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		if count != -1 {
			return Array(), nil
		}
		return Null(), nil
	}
	items, err := c.listRange(o, 0, o.m.count-1)
	if err != nil {
		return Reply{}, err
	}
	var found []Reply
	var matches int64
	n := int64(len(items))
	for k := int64(0); k < n && (maxLen == 0 || k < maxLen); k++ {
		i := k
		if fromTail {
			i = n - 1 - k
		}
		if !bytes.Equal(items[i], c.args[2]) {
			continue
		}
		matches++
		if !wrapped && matches < rank {
			continue
		}
		found = append(found, Int(i))
		if count == -1 || (!wrapped && count != 0 && matches-rank+1 >= count) {
			break
		}
	}
	if count != -1 {
		return Array(found...), nil
	}
	if len(found) == 0 {
		return Null(), nil
	}
	return found[0], nil
}

func parseWhere(b []byte) (left bool, err error) {
	switch {
	case eqFold(b, "left"):
		return true, nil
	case eqFold(b, "right"):
		return false, nil
	}
	return false, errSyntax
}

// lmove is lmoveGenericCommand; it returns a null reply and ok false when
// the source is empty (what the blocking forms wait on).
func (c *ctx) lmove(src, dst []byte, fromLeft, toLeft bool) (Reply, bool, error) {
	so, err := c.lookupType(src, typeList)
	if err != nil {
		return Reply{}, false, err
	}
	if !so.exists {
		return Null(), false, nil
	}
	if bytes.Equal(src, dst) {
		v, err := c.pop(so, fromLeft)
		if err != nil {
			return Reply{}, false, err
		}
		if err := c.push(so, toLeft, v); err != nil {
			return Reply{}, false, err
		}
		if err := c.save(so); err != nil {
			return Reply{}, false, err
		}
		c.notify(NotifyList, pushEvent(toLeft), so.key)
		c.notify(NotifyList, popEvent(fromLeft), so.key)
		return Bulk(v), true, nil
	}
	do, err := c.lookupType(dst, typeList)
	if err != nil {
		return Reply{}, false, err
	}
	v, err := c.pop(so, fromLeft)
	if err != nil {
		return Reply{}, false, err
	}
	// As Redis: the push to the destination, then the pop's events.
	c.create(do, typeList)
	if err := c.push(do, toLeft, v); err != nil {
		return Reply{}, false, err
	}
	if err := c.save(do); err != nil {
		return Reply{}, false, err
	}
	c.notify(NotifyList, pushEvent(toLeft), do.key)
	return Bulk(v), true, c.popped(so, fromLeft)
}

func cmdLMove(c *ctx) (Reply, error) {
	fromLeft, err := parseWhere(c.args[3])
	if err != nil {
		return Reply{}, err
	}
	toLeft, err := parseWhere(c.args[4])
	if err != nil {
		return Reply{}, err
	}
	r, _, err := c.lmove(c.args[1], c.args[2], fromLeft, toLeft)
	return r, err
}

func cmdRPopLPush(c *ctx) (Reply, error) {
	r, _, err := c.lmove(c.args[1], c.args[2], false, true)
	return r, err
}
