package redis

import (
	"bytes"
	"math"

	"github.com/orbitkernel/orbit/internal/mutation"
)

func cmdDel(c *ctx) (Reply, error) {
	var n int64
	for _, k := range c.args[1:] {
		o, err := c.lookup(k)
		if err != nil {
			return Reply{}, err
		}
		if o.exists {
			if mutation.On(MutDelLeavesElements) {
				o.exists = false
				err = c.st.Delete(o.rk)
			} else {
				err = c.remove(o)
			}
			if err != nil {
				return Reply{}, err
			}
			c.notify(NotifyGeneric, "del", k)
			n++
		}
	}
	return Int(n), nil
}

// cmdExists also serves TOUCH: Orbit keeps no access times, so touching is
// counting.
func cmdExists(c *ctx) (Reply, error) {
	var n int64
	for _, k := range c.args[1:] {
		o, err := c.lookup(k)
		if err != nil {
			return Reply{}, err
		}
		if o.exists {
			n++
		}
	}
	return Int(n), nil
}

const (
	expireNX = 1 << iota
	expireXX
	expireGT
	expireLT
)

// expireGeneric is expireGenericCommand: base is added to the argument
// (now for EXPIRE and PEXPIRE, 0 for the AT forms), seconds scales it.
func (c *ctx) expireGeneric(base int64, seconds bool) (Reply, error) {
	var flags int
	for _, opt := range c.args[3:] {
		switch {
		case eqFold(opt, "nx"):
			flags |= expireNX
		case eqFold(opt, "xx"):
			flags |= expireXX
		case eqFold(opt, "gt"):
			flags |= expireGT
		case eqFold(opt, "lt"):
			flags |= expireLT
		default:
			return Reply{}, errorf("ERR Unsupported option %s", cstr(opt))
		}
	}
	if flags&expireNX != 0 && flags&(expireXX|expireGT|expireLT) != 0 {
		return Reply{}, userError("ERR NX and XX, GT or LT options at the same time are not compatible")
	}
	if flags&expireGT != 0 && flags&expireLT != 0 {
		return Reply{}, userError("ERR GT and LT options at the same time are not compatible")
	}
	when, err := argInt(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if seconds {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			return Reply{}, c.expireTimeErr()
		}
		when *= 1000
	}
	if when > math.MaxInt64-base {
		return Reply{}, c.expireTimeErr()
	}
	when += base
	o, err := c.lookup(c.args[1])
	if err != nil || !o.exists {
		return Int(0), err
	}
	cur := o.m.expireAt // 0: no expiry, "infinite"
	switch {
	case flags&expireNX != 0 && cur != 0,
		flags&expireXX != 0 && cur == 0,
		flags&expireGT != 0 && (cur == 0 || when <= cur),
		flags&expireLT != 0 && cur != 0 && when >= cur:
		return Int(0), nil
	}
	if when <= c.now {
		if err := c.remove(o); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyGeneric, "del", c.args[1])
		return Int(1), nil
	}
	o.m.expireAt = when
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyGeneric, "expire", c.args[1])
	return Int(1), nil
}

func cmdExpire(c *ctx) (Reply, error)    { return c.expireGeneric(c.now, true) }
func cmdPExpire(c *ctx) (Reply, error)   { return c.expireGeneric(c.now, false) }
func cmdExpireAt(c *ctx) (Reply, error)  { return c.expireGeneric(0, true) }
func cmdPExpireAt(c *ctx) (Reply, error) { return c.expireGeneric(0, false) }

// ttlGeneric is ttlGenericCommand.
func (c *ctx) ttlGeneric(ms, abs bool) (Reply, error) {
	o, err := c.lookup(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		return Int(-2), nil
	}
	if o.m.expireAt == 0 {
		return Int(-1), nil
	}
	ttl := o.m.expireAt
	if !abs {
		ttl = max(ttl-c.now, 0)
	}
	if !ms {
		ttl = (ttl + 500) / 1000
	}
	return Int(ttl), nil
}

func cmdTTL(c *ctx) (Reply, error)         { return c.ttlGeneric(false, false) }
func cmdPTTL(c *ctx) (Reply, error)        { return c.ttlGeneric(true, false) }
func cmdExpireTime(c *ctx) (Reply, error)  { return c.ttlGeneric(false, true) }
func cmdPExpireTime(c *ctx) (Reply, error) { return c.ttlGeneric(true, true) }

func cmdPersist(c *ctx) (Reply, error) {
	o, err := c.lookup(c.args[1])
	if err != nil || !o.exists || o.m.expireAt == 0 {
		return Int(0), err
	}
	o.m.expireAt = 0
	if !mutation.On(MutPersistNotSaved) {
		if err := c.save(o); err != nil {
			return Reply{}, err
		}
	}
	c.notify(NotifyGeneric, "persist", c.args[1])
	return Int(1), nil
}

func cmdType(c *ctx) (Reply, error) {
	o, err := c.lookup(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		return SimpleString("none"), nil
	}
	return SimpleString(o.m.typ.name()), nil
}

// renameGeneric is renameGenericCommand. The value moves record by record:
// every element key is rewritten under the new route key.
func (c *ctx) renameGeneric(nx bool) (Reply, error) {
	src, dst := c.args[1], c.args[2]
	so, err := c.lookup(src)
	if err != nil {
		return Reply{}, err
	}
	if !so.exists {
		return Reply{}, errNoKey
	}
	if bytes.Equal(src, dst) {
		if nx {
			return Int(0), nil
		}
		return OK(), nil
	}
	do, err := c.lookup(dst)
	if err != nil {
		return Reply{}, err
	}
	if do.exists {
		if nx {
			return Int(0), nil
		}
		if err := c.remove(do); err != nil {
			return Reply{}, err
		}
	}
	if err := c.copyElements(so, do); err != nil {
		return Reply{}, err
	}
	do.m = so.m
	if err := c.save(do); err != nil {
		return Reply{}, err
	}
	if err := c.remove(so); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyGeneric, "rename_from", src)
	c.notify(NotifyGeneric, "rename_to", dst)
	if nx {
		return Int(1), nil
	}
	return OK(), nil
}

// copyElements copies every element record of from under to's route key.
func (c *ctx) copyElements(from, to *obj) error {
	// Collect first: writing while scanning the same store could revisit
	// records if the destination sorts after the source.
	var kvs []KV
	err := c.each(append(append([]byte(nil), from.rk...), 0), prefixEnd(from.rk), func(kv KV) (bool, error) {
		kvs = append(kvs, KV{Key: append([]byte(nil), kv.Key[len(from.rk):]...), Value: append([]byte(nil), kv.Value...)})
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := c.st.Set(append(append([]byte(nil), to.rk...), kv.Key...), kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// cmdCopy is COPY source destination [DB db] [REPLACE]: the source's
// records (and TTL) under the destination key, in this database or db.
// Both keys share a slot's range in every database (databases.go), so the
// copy is one atomic write either way.
func cmdCopy(c *ctx) (Reply, error) {
	raw, srcDB := databaseOf(c.st)
	dstDB, replace := srcDB, false
	for j := 3; j < len(c.args); j++ {
		switch {
		case eqFold(c.args[j], "replace"):
			replace = true
		case eqFold(c.args[j], "db") && j+1 < len(c.args):
			n, ok := parseInt(c.args[j+1])
			if !ok {
				return Reply{}, errNotInt
			}
			if n < 0 || n >= Databases {
				return Reply{}, userError("ERR DB index is out of range")
			}
			dstDB = int(n)
			j++
		default:
			return Reply{}, errSyntax
		}
	}
	if srcDB == dstDB && bytes.Equal(c.args[1], c.args[2]) {
		return Reply{}, userError("ERR source and destination objects are the same")
	}
	so, err := c.lookup(c.args[1])
	if err != nil || !so.exists {
		return Int(0), err
	}
	dc := *c // the destination's database
	dc.st = viewOf(raw, dstDB)
	do, err := dc.lookup(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if do.exists {
		if !replace {
			return Int(0), nil
		}
		if err := dc.remove(do); err != nil {
			return Reply{}, err
		}
	}
	if err := c.copyKey(so, &dc, do); err != nil {
		return Reply{}, err
	}
	dc.notify(NotifyGeneric, "copy_to", c.args[2])
	return Int(1), nil
}

// copyKey makes do, in dc's database, a copy of so, in c's: every
// element record under do's route key, then the metadata (type, TTL).
func (c *ctx) copyKey(so *obj, dc *ctx, do *obj) error {
	var kvs []KV
	err := c.each(append(append([]byte(nil), so.rk...), 0), prefixEnd(so.rk), func(kv KV) (bool, error) {
		kvs = append(kvs, KV{Key: append(append([]byte(nil), do.rk...), kv.Key[len(so.rk):]...), Value: append([]byte(nil), kv.Value...)})
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := dc.st.Set(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	do.m = so.m
	return dc.save(do)
}

// cmdMove is MOVE key db (moveCommand in Redis's db.c): the key, with its
// TTL, goes to database db of the same range (its slot is the same),
// unless a live key of its name is there; 1 if it moved, else 0.
func cmdMove(c *ctx) (Reply, error) {
	raw, srcDB := databaseOf(c.st)
	n, ok := parseInt(c.args[2])
	switch {
	case !ok:
		return Reply{}, errNotInt
	case n < math.MinInt32 || n > math.MaxInt32: // getIntFromObjectOrReply
		return Reply{}, userError("ERR value is out of range, value must between -2147483648 and 2147483647")
	}
	if n < 0 || n >= Databases {
		return Reply{}, userError("ERR DB index is out of range")
	}
	if int(n) == srcDB {
		return Reply{}, userError("ERR source and destination objects are the same")
	}
	so, err := c.lookup(c.args[1])
	if err != nil || !so.exists {
		return Int(0), err
	}
	dc := *c // the destination's database
	dc.st = viewOf(raw, int(n))
	do, err := dc.lookup(c.args[1])
	if err != nil || do.exists {
		return Int(0), err
	}
	if err := c.copyKey(so, &dc, do); err != nil {
		return Reply{}, err
	}
	if err := c.remove(so); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyGeneric, "move_from", c.args[1])
	dc.notify(NotifyGeneric, "move_to", c.args[1])
	return Int(1), nil
}

func cmdRename(c *ctx) (Reply, error)   { return c.renameGeneric(false) }
func cmdRenameNX(c *ctx) (Reply, error) { return c.renameGeneric(true) }
