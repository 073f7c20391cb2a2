package redis

import (
	"math"
	"math/big"
	"strconv"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// maxStringBytes bounds a string value built by APPEND and SETRANGE. Redis
// allows proto-max-bulk-len (512 MB); a Raft log entry of that size would
// stall a range, so Orbit stops at 64 MB with Redis's error text.
const maxStringBytes = 64 << 20

// lookupString returns the string value of key, or nil and false.
func (c *ctx) lookupString(key []byte) (*obj, error) {
	return c.lookupType(key, typeString)
}

// setString overwrites key with a string, whatever it held. keepTTL keeps
// an existing expiry (only if the old value was live), otherwise expireAt
// (0 = none) applies.
func (c *ctx) setString(key, value []byte, keepTTL bool, expireAt int64) error {
	o, err := c.lookup(key)
	if err != nil {
		return err
	}
	return c.overwriteString(o, value, keepTTL, expireAt)
}

// overwriteString is setString for a key the command has looked up
// already (a second lookup would read the same: lookup has removed an
// expired key in this command's writes).
func (c *ctx) overwriteString(o *obj, value []byte, keepTTL bool, expireAt int64) error {
	old := o.m.expireAt
	if o.exists && o.m.typ != typeString {
		if err := c.remove(o); err != nil {
			return err
		}
		o.exists = true // overwritten, not added (dbOverwrite): no "new"
	}
	o.m = meta{typ: typeString, expireAt: expireAt, value: value}
	if (keepTTL || mutation.On(MutSetKeepsTTL)) && expireAt == 0 {
		o.m.expireAt = old
	}
	return c.save(o)
}

func cmdGet(c *ctx) (Reply, error) {
	o, err := c.lookupString(c.args[1])
	if err != nil || !o.exists {
		return Null(), err
	}
	return Bulk(o.m.value), nil
}

// Flags of SET and GETEX, as parseExtendedStringArgumentsOrReply names them.
const (
	setNX = 1 << iota
	setXX
	setGet
	setKeepTTL
	setPersist
	setEX
	setPX
	setEXAT
	setPXAT
)

// parseExtendedString is parseExtendedStringArgumentsOrReply: the options
// after the key (and value) of SET or GETEX.
func parseExtendedString(args [][]byte, forSet bool) (flags int, expire []byte, err error) {
	const anyExpire = setEX | setPX | setEXAT | setPXAT
	for j := 0; j < len(args); j++ {
		opt := args[j]
		hasNext := j+1 < len(args)
		switch {
		case eqFold(opt, "nx") && flags&setXX == 0 && forSet:
			flags |= setNX
		case eqFold(opt, "xx") && flags&setNX == 0 && forSet:
			flags |= setXX
		case eqFold(opt, "get") && forSet:
			flags |= setGet
		case eqFold(opt, "keepttl") && flags&(setPersist|anyExpire) == 0 && forSet:
			flags |= setKeepTTL
		case eqFold(opt, "persist") && !forSet && flags&(anyExpire|setKeepTTL) == 0:
			flags |= setPersist
		case eqFold(opt, "ex") && flags&(setKeepTTL|setPersist|setEXAT|setPX|setPXAT) == 0 && hasNext:
			flags |= setEX
			expire = args[j+1]
			j++
		case eqFold(opt, "px") && flags&(setKeepTTL|setPersist|setEX|setEXAT|setPXAT) == 0 && hasNext:
			flags |= setPX
			expire = args[j+1]
			j++
		case eqFold(opt, "exat") && flags&(setKeepTTL|setPersist|setEX|setPX|setPXAT) == 0 && hasNext:
			flags |= setEXAT
			expire = args[j+1]
			j++
		case eqFold(opt, "pxat") && flags&(setKeepTTL|setPersist|setEX|setEXAT|setPX) == 0 && hasNext:
			flags |= setPXAT
			expire = args[j+1]
			j++
		default:
			return 0, nil, errSyntax
		}
	}
	return flags, expire, nil
}

// expireAtFromArg is getExpireMillisecondsOrReply: the absolute expiry in
// unix ms of an EX/PX/EXAT/PXAT argument.
func (c *ctx) expireAtFromArg(arg []byte, flags int) (int64, error) {
	ms, ok := parseInt(arg)
	if !ok {
		return 0, errNotInt
	}
	seconds := flags&(setEX|setEXAT) != 0
	if ms <= 0 || (seconds && ms > math.MaxInt64/1000) {
		return 0, c.expireTimeErr()
	}
	if seconds {
		ms *= 1000
	}
	if flags&(setEX|setPX) != 0 {
		if ms > math.MaxInt64-c.now {
			return 0, c.expireTimeErr()
		}
		ms += c.now
	}
	return ms, nil
}

func (c *ctx) expireTimeErr() error {
	return userError("ERR invalid expire time in '" + c.spec.Name + "' command")
}

func cmdSet(c *ctx) (Reply, error) {
	flags, expire, err := parseExtendedString(c.args[3:], true)
	if err != nil {
		return Reply{}, err
	}
	return c.setGeneric(flags, c.args[1], c.args[2], expire, OK(), Null())
}

// setGeneric is Redis's setGenericCommand.
func (c *ctx) setGeneric(flags int, key, value, expire []byte, okReply, abortReply Reply) (Reply, error) {
	var expireAt int64
	if expire != nil {
		var err error
		if expireAt, err = c.expireAtFromArg(expire, flags); err != nil {
			return Reply{}, err
		}
	}
	o, err := c.lookup(key)
	if err != nil {
		return Reply{}, err
	}
	var getReply Reply
	if flags&setGet != 0 {
		if o.exists && o.m.typ != typeString {
			return Reply{}, errWrongType
		}
		getReply = Null()
		if o.exists {
			getReply = Bulk(o.m.value)
		}
	}
	if (flags&setNX != 0 && o.exists) || (flags&setXX != 0 && !o.exists) {
		if flags&setGet != 0 {
			return getReply, nil
		}
		return abortReply, nil
	}
	if err := c.overwriteString(o, value, flags&setKeepTTL != 0, expireAt); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyString, "set", key)
	if expire != nil {
		c.notify(NotifyGeneric, "expire", key)
	}
	if flags&setGet != 0 {
		return getReply, nil
	}
	return okReply, nil
}

func cmdSetNX(c *ctx) (Reply, error) {
	return c.setGeneric(setNX, c.args[1], c.args[2], nil, Int(1), Int(0))
}

func cmdSetEX(c *ctx) (Reply, error) {
	return c.setGeneric(setEX, c.args[1], c.args[3], c.args[2], OK(), Null())
}

func cmdPSetEX(c *ctx) (Reply, error) {
	return c.setGeneric(setPX, c.args[1], c.args[3], c.args[2], OK(), Null())
}

func cmdGetSet(c *ctx) (Reply, error) {
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	r := Null()
	if o.exists {
		r = Bulk(o.m.value)
	}
	if err := c.overwriteString(o, c.args[2], false, 0); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyString, "set", c.args[1])
	return r, nil
}

func cmdGetDel(c *ctx) (Reply, error) {
	o, err := c.lookupString(c.args[1])
	if err != nil || !o.exists {
		return Null(), err
	}
	r := Bulk(o.m.value)
	if err := c.remove(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyGeneric, "del", c.args[1])
	return r, nil
}

func cmdGetEx(c *ctx) (Reply, error) {
	flags, expire, err := parseExtendedString(c.args[2:], false)
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupString(c.args[1])
	if err != nil || !o.exists {
		return Null(), err
	}
	var expireAt int64
	if expire != nil {
		if expireAt, err = c.expireAtFromArg(expire, flags); err != nil {
			return Reply{}, err
		}
	}
	r := Bulk(o.m.value)
	switch {
	case flags&(setEXAT|setPXAT) != 0 && expireAt <= c.now:
		if err := c.remove(o); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyGeneric, "del", c.args[1])
	case expire != nil:
		o.m.expireAt = expireAt
		if err := c.save(o); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyGeneric, "expire", c.args[1])
	case flags&setPersist != 0 && o.m.expireAt != 0:
		o.m.expireAt = 0
		if err := c.save(o); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyGeneric, "persist", c.args[1])
	}
	return r, nil
}

func cmdMGet(c *ctx) (Reply, error) {
	out := make([]Reply, 0, len(c.args)-1)
	for _, k := range c.args[1:] {
		o, err := c.lookup(k)
		if err != nil {
			return Reply{}, err
		}
		if o.exists && o.m.typ == typeString {
			out = append(out, Bulk(o.m.value))
		} else {
			out = append(out, Null())
		}
	}
	return Array(out...), nil
}

func cmdMSet(c *ctx) (Reply, error) {
	if len(c.args)%2 == 0 {
		return Reply{}, c.arityErr()
	}
	for i := 1; i < len(c.args); i += 2 {
		if err := c.setString(c.args[i], c.args[i+1], false, 0); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyString, "set", c.args[i])
	}
	return OK(), nil
}

func cmdMSetNX(c *ctx) (Reply, error) {
	if len(c.args)%2 == 0 {
		return Reply{}, c.arityErr()
	}
	for i := 1; i < len(c.args); i += 2 {
		o, err := c.lookup(c.args[i])
		if err != nil {
			return Reply{}, err
		}
		if o.exists {
			return Int(0), nil
		}
	}
	for i := 1; i < len(c.args); i += 2 {
		if err := c.setString(c.args[i], c.args[i+1], false, 0); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyString, "set", c.args[i])
	}
	return Int(1), nil
}

// incrBy is incrDecrCommand; the TTL survives.
func (c *ctx) incrBy(incr int64) (Reply, error) {
	var stale []byte // the counter's record, read before lookup expires it
	if mutation.On(MutIncrSeesExpired) {
		if rec, found, err := c.st.Get(RouteKey(c.args[1])); err == nil && found {
			if m, err := decodeMeta(rec); err == nil && m.typ == typeString {
				stale = m.value
			}
		}
	}
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	var v int64
	if o.exists {
		var ok bool
		if v, ok = parseInt(o.m.value); !ok {
			return Reply{}, errNotInt
		}
	} else if stale != nil {
		v, _ = parseInt(stale)
	}
	if (incr < 0 && v < 0 && incr < math.MinInt64-v) || (incr > 0 && v > 0 && incr > math.MaxInt64-v) {
		return Reply{}, errOverflow
	}
	v += incr
	if !o.exists {
		o.m = meta{typ: typeString}
	}
	o.m.value = strconv.AppendInt(nil, v, 10)
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyString, "incrby", c.args[1])
	return Int(v), nil
}

func cmdIncr(c *ctx) (Reply, error) { return c.incrBy(1) }
func cmdDecr(c *ctx) (Reply, error) { return c.incrBy(-1) }

func cmdIncrBy(c *ctx) (Reply, error) {
	n, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	return c.incrBy(n)
}

func cmdDecrBy(c *ctx) (Reply, error) {
	n, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if n == math.MinInt64 {
		return Reply{}, userError("ERR decrement would overflow")
	}
	return c.incrBy(-n)
}

func cmdIncrByFloat(c *ctx) (Reply, error) {
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	v := new(big.Float).SetPrec(longDoublePrec)
	if o.exists {
		var ok bool
		if v, ok = parseLongDouble(o.m.value); !ok {
			return Reply{}, errNotFloat
		}
	}
	incr, ok := parseLongDouble(c.args[2])
	if !ok {
		return Reply{}, errNotFloat
	}
	sum, ok := addLongDouble(v, incr)
	if !ok {
		return Reply{}, errNaNInf
	}
	if !o.exists {
		o.m = meta{typ: typeString}
	}
	o.m.value = []byte(formatLongDouble(sum))
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyString, "incrbyfloat", c.args[1])
	return Bulk(o.m.value), nil
}

func cmdAppend(c *ctx) (Reply, error) {
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		o.m = meta{typ: typeString, value: c.args[2]}
	} else {
		if len(o.m.value)+len(c.args[2]) > maxStringBytes {
			return Reply{}, errTooBig
		}
		v := make([]byte, 0, len(o.m.value)+len(c.args[2]))
		o.m.value = append(append(v, o.m.value...), c.args[2]...)
	}
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyString, "append", c.args[1])
	return Int(int64(len(o.m.value))), nil
}

func cmdStrlen(c *ctx) (Reply, error) {
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	return Int(int64(len(o.m.value))), nil
}

func cmdGetRange(c *ctx) (Reply, error) {
	start, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	end, err := argInt(c.args[3])
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	s := o.m.value
	n := int64(len(s))
	if start < 0 && end < 0 && start > end {
		return BulkString(""), nil
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		return BulkString(""), nil
	}
	return Bulk(s[start : end+1]), nil
}

func cmdSetRange(c *ctx) (Reply, error) {
	offset, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if offset < 0 {
		return Reply{}, userError("ERR offset is out of range")
	}
	value := c.args[3]
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	if len(value) == 0 {
		return Int(int64(len(o.m.value))), nil
	}
	if offset > maxStringBytes-int64(len(value)) {
		return Reply{}, errTooBig
	}
	old := o.m.value
	size := max(int64(len(old)), offset+int64(len(value)))
	v := make([]byte, size)
	copy(v, old)
	copy(v[offset:], value)
	if !o.exists {
		o.m = meta{typ: typeString}
	}
	o.m.value = v
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyString, "setrange", c.args[1])
	return Int(size), nil
}
